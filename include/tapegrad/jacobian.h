/*
 * tapegrad/jacobian.h - full Jacobians and single vector-Jacobian products.
 *
 * For a function f built from ops (the same function type that tg_gradcheck
 * takes), tg_jacobian computes J = df/dx for one input x by one reverse sweep per
 * output element, seeded with a one-hot vector: row k of J is e_k^T J. It also
 * reports J's structure, which shows what the ops' backward rules exploit without
 * ever building J: an elementwise function has a diagonal Jacobian, softmax along
 * the last axis of a matrix a block-diagonal one (one block per row), softmax of a
 * vector a dense one (diag(s) - s s^T). See docs/jacobian.md.
 */
#ifndef TAPEGRAD_JACOBIAN_H
#define TAPEGRAD_JACOBIAN_H

#include "gradcheck.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The nonzero pattern of a Jacobian seen as a (rows, cols) matrix, rows = the
 * output's elements and cols = the input's, both in row-major order. */
enum tg_jacobian_structure {
    TG_JAC_ZERO = 0,           /* every entry is exactly 0 */
    TG_JAC_DIAGONAL = 1,       /* rows == cols and only the diagonal is nonzero */
    TG_JAC_BLOCK_DIAGONAL = 2, /* n_blocks > 1 equal blocks along the diagonal */
    TG_JAC_DENSE = 3           /* no block structure in this element order */
};

struct tg_jacobian_info {
    enum tg_jacobian_structure structure;
    int64_t rows, cols; /* the output's numel, the input's numel */
    int64_t nnz;        /* entries that are not exactly 0 */
    /* The finest split into equal diagonal blocks that holds every nonzero:
     * n_blocks blocks of block_rows x block_cols (rows x cols and 1 block for
     * dense; rows blocks of 1 x 1 for diagonal; 0 for zero). Blocks are
     * contiguous in row-major order: softmax along a leading axis is a block
     * matrix only after a permutation and is reported dense (see nnz). */
    int64_t n_blocks, block_rows, block_cols;
    int64_t n_sweeps; /* reverse sweeps run */
};

/*
 * The Jacobian of fn's output y with respect to `input`, as a new owned f64 leaf
 * of shape y.shape + input.shape (J[k..., j...] = dy_k / dx_j) in *out_jacobian.
 * fn is called once, with one input: a copy of `input` that requires grad (the
 * caller's tensor is only read; other operands reach fn through ctx). Leaves in
 * ctx that require grad accumulate gradients across the sweeps: zero them or
 * switch their requires-grad off. info may be NULL.
 * Errors (nothing is returned, *out_jacobian = NULL): TG_ERR_NULL (fn, input,
 * out_jacobian), whatever fn failed with, TG_ERR_RANGE when the two ranks add up
 * to more than TG_MAX_DIM, TG_ERR_NOMEM.
 */
enum tg_status tg_jacobian(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                           struct tg_tensor **out_jacobian, struct tg_jacobian_info *info);

/*
 * One vector-Jacobian product v^T J (one reverse sweep): a new owned f64 leaf of
 * input's shape in *out. v (borrowed, any dtype) must have the output's shape
 * (TG_ERR_SHAPE otherwise). Errors as tg_jacobian's; *out = NULL on error.
 */
enum tg_status tg_vjp(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                      const struct tg_tensor *v, struct tg_tensor **out);

/*
 * Classifies a row-major (rows, cols) matrix J (borrowed; rows * cols doubles)
 * into info, as tg_jacobian does: e.g. for a Jacobian estimated by finite
 * differences. Entries count as zero only when exactly 0. TG_ERR_NULL for a NULL
 * J with rows * cols > 0 or a NULL info, TG_ERR_RANGE for a negative size.
 */
enum tg_status tg_jacobian_classify(const double *J, int64_t rows, int64_t cols,
                                    struct tg_jacobian_info *info);

/* "zero", "diagonal", "block-diagonal", "dense"; "?" when out of range. */
const char *tg_jacobian_structure_name(enum tg_jacobian_structure s);

/*
 * Writes info in one line into buf, as the DOT edges and the trace print it:
 * "block-diagonal 6x4, 2 blocks of 3x2, nnz 12", "diagonal 6x6", "dense 1x6",
 * "dense 6x3, nnz 6" (not every entry nonzero), "zero 2x2". snprintf's
 * contract: at most size bytes, NUL-terminated when size > 0, returns the
 * whole length. Errors (returns -1): TG_ERR_NULL (info; buf with size > 0),
 * TG_ERR_VALUE (info->structure is not one of the enum).
 */
int tg_jacobian_format(const struct tg_jacobian_info *info, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
