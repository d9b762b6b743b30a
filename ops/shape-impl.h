/*
 * ops/shape-impl.h - helpers shared by ops/shape.c and ops/index.c (never
 * installed): axis normalisation, shape messages, a row-wise strided walk and
 * the arena copies of user parameters.
 */
#ifndef TG_SHAPE_IMPL_H
#define TG_SHAPE_IMPL_H

#include "ops-impl.h"

/* Maps axis in -n..n-1 to 0..n-1 into *out, or fails with TG_ERR_RANGE naming
 * fn, the axis and the shape (rank, shape) it refers to. */
enum tg_status tg__norm_axis(const char *fn, int axis, int n, int rank, const int64_t *shape,
                             int *out);

/* Row-major element strides of a shape. */
static inline void tg__strides(int rank, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= shape[d];
    }
}

/* Walks a shape row by row (a row = the last axis) keeping the offset of the
 * row's first element in another buffer, seen through per-axis strides `st`:
 *     for (r = 0; r < w.rows; r++, tg__walk_next(&w))  element j of row r is at
 *     w.off + j * w.rs there, and at r * w.n + j in the walked (contiguous) buffer. */
struct tg_walk {
    int rank;
    int64_t n, rows, rs, off;
    int64_t st[TG_MAX_DIM], idx[TG_MAX_DIM], shape[TG_MAX_DIM];
};

static inline void tg__walk_init(struct tg_walk *w, int rank, const int64_t *shape,
                                 const int64_t *st, int64_t off)
{
    int64_t numel = 1;
    w->rank = rank;
    w->off = off;
    for (int d = 0; d < rank; d++) {
        w->idx[d] = 0;
        w->shape[d] = shape[d];
        w->st[d] = st[d];
        numel *= shape[d];
    }
    w->n = rank ? shape[rank - 1] : 1;
    w->rs = rank ? st[rank - 1] : 0;
    w->rows = w->n ? numel / w->n : 0;
}

static inline void tg__walk_next(struct tg_walk *w)
{
    for (int d = w->rank - 2; d >= 0; d--) {
        w->off += w->st[d];
        if (++w->idx[d] < w->shape[d]) return;
        w->off -= w->st[d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* Axis p.i[0] of out as given (-rank..rank-1 of out, checked by the shape
 * rule) as 0..rank-1: shape rules leave parameters as the caller gave them. */
static inline int tg__axis_of(const struct tg_tensor *out)
{
    int64_t a = out->p.i[0];
    return (int)(a < 0 ? a + out->rank : a);
}

/* A params callback (struct tg_op_desc) for ops whose one parameter is the axis
 * in p.i[0], an axis of the output: tg__axis_of. */
int tg__axis_param(const struct tg_tensor *out, double *vals);

/* An arena copy of n int64 values (NULL with the error set; T may not be NULL). */
int64_t *tg__arena_i64(struct tg_tape *T, const int64_t *v, int64_t n);

#endif
