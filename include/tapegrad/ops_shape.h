/*
 * tapegrad/ops_shape.h - shape and indexing ops (ops/shape.c, ops/index.c).
 * Included by tapegrad/ops.h; do not include it alone.
 *
 * Every op here copies: results are new contiguous row-major tensors, never views.
 * Axes may be negative and then count from the end (-1 is the last axis).
 * Integer indices are given as int64_t arrays (copied into the tape's arena, so
 * the caller's array may be reused at once) or, in the *_tensor variants, as an
 * f32/f64 tensor holding whole numbers. An index outside its axis, or one that is
 * not a whole number, fails with TG_ERR_RANGE and a message naming the op, the
 * position and the value. Shape misfits fail with TG_ERR_SHAPE naming the shapes.
 */
#ifndef TAPEGRAD_OPS_SHAPE_H
#define TAPEGRAD_OPS_SHAPE_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_SHAPE(X)                                                                            \
    X(RESHAPE, reshape)                                                                            \
    X(SQUEEZE, squeeze)                                                                            \
    X(UNSQUEEZE, unsqueeze)                                                                        \
    X(TRANSPOSE, transpose)                                                                        \
    X(PERMUTE, permute)                                                                            \
    X(BROADCAST_TO, broadcast_to)                                                                  \
    X(SLICE, slice)                                                                                \
    X(INDEX_SELECT, index_select)                                                                  \
    X(GATHER, gather)                                                                              \
    X(CONCAT, concat)                                                                              \
    X(STACK, stack)                                                                                \
    X(SLICE_SCATTER, slice_scatter)                                                                \
    X(INDEX_ADD, index_add)                                                                        \
    X(SCATTER_ADD, scatter_add)

/* The declarations below sit inside ops.h's extern "C" block and use its types. */

/* x with a new shape of the same numel (row-major order kept). One entry of
 * `shape` may be -1: it is inferred (numel of x must then be divisible by the
 * product of the others, which must not be 0). `shape` is borrowed.
 * TG_ERR_SHAPE ("reshape: cannot reshape (2,3) into (4,2)"), TG_ERR_RANGE for
 * rank outside 0..TG_MAX_DIM, TG_ERR_NULL for a NULL shape with rank > 0. */
struct tg_tensor *tg_reshape(struct tg_tape *T, struct tg_tensor *x, int rank,
                             const int64_t *shape);

/* x without axis `axis`, which must have size 1 (TG_ERR_SHAPE otherwise,
 * TG_ERR_RANGE for an axis out of range). */
struct tg_tensor *tg_squeeze(struct tg_tape *T, struct tg_tensor *x, int axis);
/* x without any of its size-1 axes (a tensor of ones becomes rank 0). */
struct tg_tensor *tg_squeeze_all(struct tg_tape *T, struct tg_tensor *x);
/* x with a new size-1 axis inserted at `axis`, in -(rank+1)..rank of x. */
struct tg_tensor *tg_unsqueeze(struct tg_tape *T, struct tg_tensor *x, int axis);

/* x with axes a and b swapped (a == b gives a copy). TG_ERR_RANGE for an axis
 * out of range. */
struct tg_tensor *tg_transpose(struct tg_tape *T, struct tg_tensor *x, int a, int b);
/* y with y.shape[d] = x.shape[perm[d]]: y[i_0,...] = x at index i_d on axis
 * perm[d] (torch.permute / numpy.transpose). n must equal x's rank
 * (TG_ERR_SHAPE); perm (borrowed) must name every axis once (TG_ERR_VALUE,
 * TG_ERR_RANGE for an axis out of range). */
struct tg_tensor *tg_permute(struct tg_tape *T, struct tg_tensor *x, int n, const int *perm);

/* x broadcast to `shape` (NumPy rules: shapes aligned at the last axis, each
 * axis of x equal to the target's or 1). Backward sums over the broadcast axes.
 * TG_ERR_SHAPE when x does not broadcast to shape. `shape` is borrowed. */
struct tg_tensor *tg_broadcast_to(struct tg_tape *T, struct tg_tensor *x, int rank,
                                  const int64_t *shape);

/* Python slicing start:stop:step for one axis. TG_SLICE_NONE stands for an
 * omitted value (start/stop: the end that the step's sign implies; step: 1).
 * Negative start/stop count from the end; values beyond the axis are clamped,
 * as in Python; a step of 0 is TG_ERR_VALUE. */
#define TG_SLICE_NONE INT64_MIN
struct tg_slice_spec {
    int64_t start, stop, step;
};

/* x[spec[0], spec[1], ..., spec[n-1]] with the axes from n on taken whole, like
 * x[a:b:c, d:e:f] in Python/NumPy. Results may be empty. n <= rank of x
 * (TG_ERR_RANGE otherwise); spec is borrowed (NULL allowed when n == 0). */
struct tg_tensor *tg_slice(struct tg_tape *T, struct tg_tensor *x, int n,
                           const struct tg_slice_spec *spec);
/* x sliced start:stop:step along one axis, the other axes whole (records a slice). */
struct tg_tensor *tg_slice_axis(struct tg_tape *T, struct tg_tensor *x, int axis, int64_t start,
                                int64_t stop, int64_t step);

/* Rows of x along `axis` picked by idx[0..n-1]: y has x's shape with that axis
 * of size n, and y[.., k, ..] = x[.., idx[k], ..] (torch.index_select; an
 * embedding lookup with axis 0). Each idx[k] must lie in 0..size-1 (negative
 * indices are not accepted). Repeated indices are allowed: backward adds every
 * copy's gradient into the same row (scatter-add). idx is copied (borrowed);
 * NULL is allowed when n == 0. */
struct tg_tensor *tg_index_select(struct tg_tape *T, struct tg_tensor *x, int axis,
                                  const int64_t *idx, int64_t n);
/* The same with the indices in a rank-1 f32/f64 tensor of whole numbers
 * (borrowed; a leaf or a node of T; no gradient flows into it). */
struct tg_tensor *tg_index_select_tensor(struct tg_tape *T, struct tg_tensor *x, int axis,
                                         const struct tg_tensor *index);

/* torch.gather: the index has x's rank and y has the index's shape, with
 * y[i_0,..,i_axis,..] = x[i_0,..,index[i_0,..,i_axis,..],..]. On every axis
 * other than `axis` the index's size must not exceed x's (TG_ERR_SHAPE).
 * `index` holds numel(index_shape) int64 values in row-major order, copied.
 * Backward scatter-adds: repeated positions accumulate. */
struct tg_tensor *tg_gather(struct tg_tape *T, struct tg_tensor *x, int axis, int rank,
                            const int64_t *index_shape, const int64_t *index);
/* The same with the index as an f32/f64 tensor of whole numbers (borrowed). */
struct tg_tensor *tg_gather_tensor(struct tg_tape *T, struct tg_tensor *x, int axis,
                                   const struct tg_tensor *index);

/* xs[0..n-1] (borrowed array, n >= 1, else TG_ERR_VALUE) joined along an existing
 * `axis`: all of the same rank >= 1 and dtype, with equal sizes on every other
 * axis (TG_ERR_SHAPE). */
struct tg_tensor *tg_concat(struct tg_tape *T, int n, struct tg_tensor *const *xs, int axis);
/* xs[0..n-1], all of one shape, joined along a new axis at `axis`, in
 * -(rank+1)..rank: y[.., k, ..] = xs[k]. */
struct tg_tensor *tg_stack(struct tg_tape *T, int n, struct tg_tensor *const *xs, int axis);

/* ---- the adjoints of slice, index_select and gather (their backward as ops, so
 * that a gradient through them can be differentiated again) ---- */

/* y of (rank, shape), zero except where x[spec] of an x of that shape would
 * read, which holds src: y[start + i * step] = src[i] per axis (torch's
 * slice_scatter into zeros; the adjoint of tg_slice). spec follows tg_slice
 * (n <= rank, TG_ERR_RANGE otherwise; a step of 0 is TG_ERR_VALUE); src must
 * have the slice's shape (TG_ERR_SHAPE naming both). shape and spec are
 * borrowed (spec may be NULL when n == 0). TG_ERR_RANGE for a rank outside
 * 0..TG_MAX_DIM, TG_ERR_NULL for a NULL shape with rank > 0, TG_ERR_SHAPE for
 * a negative size. Backward: dsrc += the slice of dy. */
struct tg_tensor *tg_slice_scatter(struct tg_tape *T, struct tg_tensor *src, int rank,
                                   const int64_t *shape, int n, const struct tg_slice_spec *spec);

/* y with src's shape except `size` along `axis`, zero but for
 * y[.., idx[k], ..] += src[.., k, ..] (torch's index_add into zeros; the
 * adjoint of tg_index_select): repeated indices accumulate. n must equal src's
 * size along axis (TG_ERR_SHAPE); each idx[k] lies in 0..size-1 (TG_ERR_RANGE,
 * naming the position); size >= 0 (TG_ERR_VALUE); idx is copied (NULL allowed
 * when n == 0). Backward: dsrc = index_select(dy, axis, idx). */
struct tg_tensor *tg_index_add(struct tg_tape *T, struct tg_tensor *src, int axis, int64_t size,
                               const int64_t *idx, int64_t n);

/* y of (rank, shape), zero but for y[i with i_axis replaced by index[i]] +=
 * src[i] over every position i of src (torch's scatter_add into zeros; the
 * adjoint of tg_gather). rank must equal src's rank and, on every axis other
 * than `axis`, src's size must not exceed shape's (TG_ERR_SHAPE); index holds
 * numel(src) int64 values in row-major order (copied), each in
 * 0..shape[axis]-1 (TG_ERR_RANGE). shape is borrowed. Backward:
 * dsrc = gather(dy, axis, index). */
struct tg_tensor *tg_scatter_add(struct tg_tape *T, struct tg_tensor *src, int axis, int rank,
                                 const int64_t *shape, const int64_t *index);

#endif
