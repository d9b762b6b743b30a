/*
 * tapegrad/tensor.h - tensors: the one node type of the engine.
 *
 * A tensor holds f32 or f64 elements, has rank 0..TG_MAX_DIM (rank 0 is a scalar)
 * and is contiguous row-major. Tensors come in two kinds:
 *   - leaves, made by the tg_tensor_* constructors below. The caller owns a leaf
 *     (free it with tg_tensor_free); it owns its value and, once requires-grad is
 *     set, its gradient buffer. Parameters are leaves.
 *   - nodes, the results of ops. They live in a tape's arena (see tape.h), are
 *     owned by that tape and become stale when the tape is reset (every call
 *     below then fails with TG_ERR_STALE; tape.h says for how many resets that
 *     is guaranteed) and invalid when it is freed.
 * The struct is opaque: read it through the accessors.
 */
#ifndef TAPEGRAD_TENSOR_H
#define TAPEGRAD_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_DIM 8
/* The most plain-number parameters an op node reports (tg_tensor_op_params):
 * slice reports a start and a step per axis. */
#define TG_MAX_OP_PARAMS (2 * TG_MAX_DIM)

enum tg_dtype { TG_F32 = 0, TG_F64 = 1 };

struct tg_tensor;

/* ---- random numbers: an explicit generator object, no global state ---- */

/* xoshiro256** seeded through splitmix64. A plain value: put it on the stack. */
struct tg_rng {
    uint64_t s[4];
};
/* Seeds rng; the same seed gives the same stream on every platform. rng may not be NULL. */
void tg_rng_seed(struct tg_rng *rng, uint64_t seed);
uint64_t tg_rng_next(struct tg_rng *rng);              /* 64 random bits */
double tg_rng_uniform(struct tg_rng *rng);             /* in [0, 1) */
double tg_rng_normal(struct tg_rng *rng);              /* standard normal (Box-Muller) */
uint64_t tg_rng_below(struct tg_rng *rng, uint64_t n); /* uniform in [0, n), n > 0 */

/* ---- leaf constructors: each returns an owned tensor, or NULL with the error set
 * (TG_ERR_RANGE for a rank above TG_MAX_DIM, a negative dimension or a size that
 * overflows; TG_ERR_NULL for a NULL shape with rank > 0; TG_ERR_DTYPE for an
 * unknown dtype; TG_ERR_NOMEM). `shape` is borrowed. ---- */

struct tg_tensor *tg_tensor_zeros(enum tg_dtype dt, int rank, const int64_t *shape);
struct tg_tensor *tg_tensor_ones(enum tg_dtype dt, int rank, const int64_t *shape);
struct tg_tensor *tg_tensor_full(enum tg_dtype dt, int rank, const int64_t *shape, double v);
/* Copies numel elements of type dt from `data` (float* for TG_F32, double* for TG_F64). */
struct tg_tensor *tg_tensor_from(enum tg_dtype dt, int rank, const int64_t *shape,
                                 const void *data);
/* Copies numel doubles from `data`, converting to dt. */
struct tg_tensor *tg_tensor_from_f64(enum tg_dtype dt, int rank, const int64_t *shape,
                                     const double *data);
/* A rank-0 tensor holding v. */
struct tg_tensor *tg_tensor_scalar(enum tg_dtype dt, double v);
/* 1-D tensor start, start+step, ... < stop (> stop for a negative step). step != 0. */
struct tg_tensor *tg_tensor_arange(enum tg_dtype dt, double start, double stop, double step);
/* Elements uniform in [lo, hi) / normal(mean, std) drawn from rng in row-major order. */
struct tg_tensor *tg_tensor_uniform(enum tg_dtype dt, int rank, const int64_t *shape,
                                    struct tg_rng *rng, double lo, double hi);
struct tg_tensor *tg_tensor_normal(enum tg_dtype dt, int rank, const int64_t *shape,
                                   struct tg_rng *rng, double mean, double std);
/* A new leaf with t's shape and values (no gradient, requires-grad off); t may be
 * a leaf or a node. */
struct tg_tensor *tg_tensor_copy(const struct tg_tensor *t);
/* A new leaf with t's values converted to dt. */
struct tg_tensor *tg_tensor_to(const struct tg_tensor *t, enum tg_dtype dt);

/* Frees a leaf and its buffers. NULL is a no-op; a node (owned by its tape) is
 * left alone and TG_ERR_STATE is recorded. A leaf that a live recording uses is
 * safe to free: the recording holds it until its tape is reset or freed (then
 * its memory goes), and backward still reads it; the handle is invalid for the
 * caller at once (while held, calls given it fail with TG_ERR_STALE, "was
 * freed"). After the memory is gone a use is undefined, except in a checked
 * build, which reports it (docs/errors.md, "Ownership and lifetimes"). */
void tg_tensor_free(struct tg_tensor *t);

/* ---- gradients of leaves ---- */

/* Turns gradient tracking of leaf t on (allocating a zeroed gradient) or off
 * (freeing it). TG_ERR_STATE for a node. Set it before recording ops that take
 * t: ops decide at recording time whether their result needs a gradient, so a
 * change after an op on a tape took t would give that sweep gradients that
 * depend on the op. The next tg_backward or tg_backward_apply from that
 * recording therefore fails with TG_ERR_STATE, changing nothing; reset the tape
 * and record again. */
enum tg_status tg_tensor_set_requires_grad(struct tg_tensor *t, bool on);
/* Sets t's gradient to zero (leaves accumulate across backward calls until this). */
enum tg_status tg_tensor_zero_grad(struct tg_tensor *t);

/* ---- read accessors (t borrowed; on NULL they return 0 / NULL / TG_F32 /
 * false; on a stale tape tensor they return the same and record TG_ERR_STALE) ---- */

enum tg_dtype tg_tensor_dtype(const struct tg_tensor *t);
int tg_tensor_rank(const struct tg_tensor *t);
const int64_t *tg_tensor_shape(const struct tg_tensor *t);  /* rank entries */
int64_t tg_tensor_dim(const struct tg_tensor *t, int axis); /* negative axis counts from the end */
int64_t tg_tensor_numel(const struct tg_tensor *t);
bool tg_tensor_requires_grad(const struct tg_tensor *t);
bool tg_tensor_is_leaf(const struct tg_tensor *t);
/* The element buffer (float* or double*), writable for leaves. Nodes' buffers are
 * owned by the tape. */
void *tg_tensor_data(const struct tg_tensor *t);
/* The gradient buffer for reading, same dtype and shape as the data; NULL when t
 * has none (NULL t, no requires-grad, or a node that the last backward did not
 * reach). Changes nothing (the gradient version stays). Valid until the gradient
 * is freed (requires-grad turned off, the leaf freed, the tape reset). */
const void *tg_tensor_grad(const struct tg_tensor *t);
/* The gradient buffer for writing: the same pointer as tg_tensor_grad, and for a
 * leaf the call counts as a change of its gradient (tg_tensor_grad_version
 * moves). Write through a pointer got after the engine's last use of t, not one
 * kept from earlier. NULL (nothing recorded, nothing counted) when t has none. */
void *tg_tensor_grad_mut(struct tg_tensor *t);
/* A leaf's gradient version: a number that changes whenever its gradient may
 * have changed (a backward sweep reaching it, tg_tensor_zero_grad,
 * tg_tensor_set_requires_grad, tg_tensor_grad_mut). Equal numbers at two moments
 * mean the gradient did not change in between. 0 for NULL and tape tensors. */
uint64_t tg_tensor_grad_version(const struct tg_tensor *t);
/* Element i (row-major flat index) of the value / gradient as a double.
 * NaN with TG_ERR_RANGE when i is out of range, TG_ERR_STATE when there is no
 * gradient, TG_ERR_STALE when t is stale. */
double tg_tensor_get(const struct tg_tensor *t, int64_t i);
double tg_tensor_grad_get(const struct tg_tensor *t, int64_t i);
/* Writes element i of a leaf's or a tape constant's value. TG_ERR_STATE for an
 * op's result, TG_ERR_RANGE for i out of range, TG_ERR_STALE for a constant
 * recorded before its tape's last reset (nothing is written). */
enum tg_status tg_tensor_set(struct tg_tensor *t, int64_t i, double v);
/* The value of a one-element tensor; NaN with TG_ERR_SHAPE when numel != 1,
 * NaN with TG_ERR_STALE when t is stale. */
double tg_tensor_item(const struct tg_tensor *t);
/* Writes "(3,4)" (or "()" for a scalar; "(null)" for NULL; "(stale)", recording
 * TG_ERR_STALE, for a stale tensor) into buf; returns buf. */
char *tg_tensor_shape_str(const struct tg_tensor *t, char *buf, size_t size);
/* Writes the shape of `rank` entries as "(3,4)" ("()" for rank 0) into buf of
 * `size` bytes, cut to fit; returns buf. The form every message uses. */
char *tg_tensor_format_shape(char *buf, size_t size, int rank, const int64_t *shape);
const char *tg_dtype_name(enum tg_dtype dt); /* "f32", "f64" */
size_t tg_dtype_size(enum tg_dtype dt);      /* 4 or 8 */

/* ---- the recorded node behind a tensor ----
 * These read only the node (its inputs and its op's descriptor), so they work
 * for every op; tg_tensor_op (ops.h) gives the op itself. */

/* The number of inputs of the op that produced t; 0 for leaves, constants and
 * a NULL t; 0 with TG_ERR_STALE recorded for a stale handle. */
int tg_tensor_n_inputs(const struct tg_tensor *t);
/* Input i (0-based) of the op that produced t (borrowed), or NULL when t is
 * NULL, a leaf or a constant, or i is out of range (NULL with TG_ERR_STALE
 * recorded for a stale handle). */
struct tg_tensor *tg_tensor_input(const struct tg_tensor *t, int i);
/* The plain-number parameters of the op that produced t, in the op's order
 * (docs/ops.md lists them: alpha and beta of affine, the axis of softmax, the
 * transpose flags of matmul, the axes of a reduction, ...): writes the first
 * min(n, max) of them into out and returns n, the number the op has (at most
 * TG_MAX_OP_PARAMS), so that a return above max says the output was cut.
 * Returns 0 for a NULL t, a leaf or a constant, or an op without parameters;
 * out may be NULL when max is 0. A stale handle returns 0 with TG_ERR_STALE
 * recorded. */
int tg_tensor_op_params(const struct tg_tensor *t, double *out, int max);

#ifdef __cplusplus
}
#endif
#endif
