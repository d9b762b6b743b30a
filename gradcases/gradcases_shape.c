/*
 * gradcases/gradcases_shape.c - gradient-check cases of the shape and indexing ops
 * (ops/shape.c, ops/index.c).
 *
 * The op parameters (target shapes, axes, slice specs, indices) are random too:
 * make() stores them in extra f64 inputs without requires-grad, which the case's
 * function reads back, so each repeat checks a new shape and a new parameter set.
 */
#include "gradcases.h"

/* A rank-1 f64 leaf holding n integers (no gradient). */
static struct tg_tensor *ints(int64_t n, const int64_t *v)
{
    double d[64];
    for (int64_t k = 0; k < n; k++) d[k] = (double)v[k];
    return tg_tensor_from_f64(TG_F64, 1, (int64_t[]){n}, d);
}
static int64_t iget(const struct tg_tensor *t, int64_t k)
{
    return (int64_t)tg_tensor_get(t, k);
}
/* Copies the n values of a parameter tensor into v[]; returns n. */
static int iread(const struct tg_tensor *t, int64_t *v)
{
    int64_t n = tg_tensor_numel(t);
    for (int64_t k = 0; k < n; k++) v[k] = iget(t, k);
    return (int)n;
}
/* A random shape of rank lo..hi; returns the rank. */
static int rand_shape(struct tg_rng *r, int lo, int hi, int64_t *s)
{
    int rank = lo + (int)tg_rng_below(r, (uint64_t)(hi - lo + 1));
    for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
    return rank;
}
/* An integer in lo..hi. */
static int64_t irand(struct tg_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)tg_rng_below(r, (uint64_t)(hi - lo + 1));
}
/* An axis of a rank-n shape, negative half of the time. */
static int64_t rand_axis(struct tg_rng *r, int n)
{
    int64_t a = irand(r, 0, n - 1);
    return tg_rng_below(r, 2) ? a - n : a;
}

/* ---- reshape: the dims reversed, some neighbours merged, 1s inserted, maybe a -1 ---- */
static int mk_reshape(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4], t[8];
    int rank = rand_shape(r, 0, 4, s), n = 0;
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    for (int d = rank - 1; d >= 0; d--) {
        if (n > 0 && tg_rng_below(r, 3) == 0)
            t[n - 1] *= s[d];
        else
            t[n++] = s[d];
        if (tg_rng_below(r, 4) == 0) t[n++] = 1;
    }
    if (n > 0 && tg_rng_below(r, 2)) t[tg_rng_below(r, (uint64_t)n)] = -1;
    in[1] = ints(n, t);
    return 2;
}
static struct tg_tensor *f_reshape(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t t[8];
    int rank = iread(x[1], t);
    return tg_reshape(T, x[0], rank, t);
}

/* ---- squeeze / unsqueeze ---- */
static int mk_squeeze_axis(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 1, 4, s);
    int64_t axis = rand_axis(r, rank);
    s[axis < 0 ? axis + rank : axis] = 1;
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(1, &axis);
    return 2;
}
static struct tg_tensor *f_squeeze(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_squeeze(T, x[0], (int)iget(x[1], 0));
}
static int mk_squeeze_all(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 0, 4, s);
    for (int d = 0; d < rank; d++)
        if (tg_rng_below(r, 2)) s[d] = 1;
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    return 1;
}
static struct tg_tensor *f_squeeze_all(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    return tg_squeeze_all(T, x[0]);
}
static int mk_unsqueeze(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 0, 4, s);
    int64_t axis = rand_axis(r, rank + 1);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(1, &axis);
    return 2;
}
static struct tg_tensor *f_unsqueeze(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_unsqueeze(T, x[0], (int)iget(x[1], 0));
}

/* ---- transpose / permute ---- */
static int mk_transpose(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 1, 4, s);
    int64_t ab[2] = {rand_axis(r, rank), rand_axis(r, rank)};
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(2, ab);
    return 2;
}
static struct tg_tensor *f_transpose(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_transpose(T, x[0], (int)iget(x[1], 0), (int)iget(x[1], 1));
}
static int mk_permute(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4], p[4];
    int rank = rand_shape(r, 0, 4, s);
    for (int d = 0; d < rank; d++) p[d] = d;
    for (int d = rank - 1; d > 0; d--) { /* Fisher-Yates */
        int k = (int)tg_rng_below(r, (uint64_t)d + 1);
        int64_t t = p[d];
        p[d] = p[k];
        p[k] = t;
    }
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(rank, p);
    return 2;
}
static struct tg_tensor *f_permute(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t p[8];
    int perm[8], rank = iread(x[1], p);
    for (int d = 0; d < rank; d++) perm[d] = (int)p[d];
    return tg_permute(T, x[0], rank, perm);
}

/* ---- broadcast_to: new leading axes, size-1 axes of x widened ---- */
static int mk_broadcast_to(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3], t[5];
    int rank = rand_shape(r, 0, 3, s), lead = (int)tg_rng_below(r, 3);
    for (int d = 0; d < lead; d++) t[d] = gc_dim(r);
    for (int d = 0; d < rank; d++) {
        if (tg_rng_below(r, 2)) s[d] = 1;
        t[lead + d] = s[d] == 1 ? gc_dim(r) : s[d];
    }
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(lead + rank, t);
    return 2;
}
/* the last axis and a leading axis both broadcast: several rows of dy land on
 * the same element of x, so backward must add, not assign */
static int mk_broadcast_to_rows(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3], t[5];
    int rank = rand_shape(r, 1, 3, s);
    s[rank - 1] = 1;
    t[0] = irand(r, 2, 4);
    for (int d = 0; d < rank; d++) t[1 + d] = s[d] == 1 ? irand(r, 2, 5) : s[d];
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(1 + rank, t);
    return 2;
}
static struct tg_tensor *f_broadcast_to(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                        void *c)
{
    int64_t t[8];
    int rank = iread(x[1], t);
    return tg_broadcast_to(T, x[0], rank, t);
}

/* ---- slice: random start/stop (beyond the ends too, or omitted) and steps of
 * either sign; empty results happen ---- */
static int64_t rand_bound(struct tg_rng *r, int64_t len)
{
    return tg_rng_below(r, 4) == 0 ? TG_SLICE_NONE : irand(r, -len - 2, len + 2);
}
static int mk_slice(struct tg_rng *r, struct tg_tensor **in)
{
    static const int64_t steps[] = {-3, -2, -1, 1, 2, 3, TG_SLICE_NONE};
    int64_t s[3], spec[9];
    int rank = rand_shape(r, 1, 3, s), n = (int)irand(r, 1, rank);
    for (int d = 0; d < n; d++) {
        spec[3 * d] = rand_bound(r, s[d]);
        spec[3 * d + 1] = rand_bound(r, s[d]);
        spec[3 * d + 2] = steps[tg_rng_below(r, 7)];
    }
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(3 * n, spec);
    return 2;
}
static struct tg_tensor *f_slice(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    struct tg_slice_spec spec[8];
    int64_t v[24];
    int k = iread(x[1], v) / 3;
    for (int d = 0; d < k; d++)
        spec[d] = (struct tg_slice_spec){v[3 * d], v[3 * d + 1], v[3 * d + 2]};
    return tg_slice(T, x[0], k, spec);
}
static int mk_slice_axis(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 1, 3, s);
    int64_t axis = rand_axis(r, rank), len = s[axis < 0 ? axis + rank : axis];
    int64_t v[4] = {axis, rand_bound(r, len), rand_bound(r, len), tg_rng_below(r, 2) ? -1 : 2};
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(4, v);
    return 2;
}
static struct tg_tensor *f_slice_axis(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_slice_axis(T, x[0], (int)iget(x[1], 0), iget(x[1], 1), iget(x[1], 2), iget(x[1], 3));
}

/* ---- index_select: 0..6 indices with repeats; in = {x, indices, axis} ---- */
static int mk_index_select(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3], idx[6];
    int rank = rand_shape(r, 1, 3, s);
    int64_t axis = rand_axis(r, rank), n = irand(r, 0, 6);
    for (int64_t k = 0; k < n; k++) idx[k] = irand(r, 0, s[axis < 0 ? axis + rank : axis] - 1);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(n, idx);
    in[2] = ints(1, &axis);
    return 3;
}
static struct tg_tensor *f_index_select(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                        void *c)
{
    int64_t idx[8];
    int k = iread(x[1], idx);
    return tg_index_select(T, x[0], (int)iget(x[2], 0), idx, k);
}
static struct tg_tensor *f_index_select_t(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                          void *c)
{
    return tg_index_select_tensor(T, x[0], (int)iget(x[2], 0), x[1]);
}

/* ---- gather: an index no larger than x off the axis; in = {x, index, axis} ---- */
static int mk_gather(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3], is[3];
    int rank = rand_shape(r, 1, 3, s);
    int64_t axis = rand_axis(r, rank), a = axis < 0 ? axis + rank : axis;
    for (int d = 0; d < rank; d++) is[d] = d == a ? gc_dim(r) : irand(r, 1, s[d]);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = tg_tensor_zeros(TG_F64, rank, is);
    for (int64_t k = 0; k < tg_tensor_numel(in[1]); k++)
        tg_tensor_set(in[1], k, (double)irand(r, 0, s[a] - 1));
    in[2] = ints(1, &axis);
    return 3;
}
static struct tg_tensor *f_gather(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t idx[7 * 7 * 7]; /* the largest index mk_gather makes */
    iread(x[1], idx);
    return tg_gather(T, x[0], (int)iget(x[2], 0), tg_tensor_rank(x[1]), tg_tensor_shape(x[1]), idx);
}
static struct tg_tensor *f_gather_t(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_gather_tensor(T, x[0], (int)iget(x[2], 0), x[1]);
}

/* ---- concat / stack of three tensors; in = {x0, x1, x2, axis} ---- */
static int mk_concat(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 1, 3, s);
    int64_t axis = rand_axis(r, rank), a = axis < 0 ? axis + rank : axis;
    for (int k = 0; k < 3; k++) {
        s[a] = k == 1 && tg_rng_below(r, 4) == 0 ? 0 : gc_dim(r); /* an empty piece at times */
        in[k] = gc_rand(r, rank, s, -2, 2, true);
    }
    in[3] = ints(1, &axis);
    return 4;
}
static struct tg_tensor *f_concat(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_concat(T, 3, x, (int)iget(x[3], 0));
}
static int mk_stack(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 0, 3, s);
    int64_t axis = rand_axis(r, rank + 1);
    for (int k = 0; k < 3; k++) in[k] = gc_rand(r, rank, s, -2, 2, true);
    in[3] = ints(1, &axis);
    return 4;
}
static struct tg_tensor *f_stack(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_stack(T, 3, x, (int)iget(x[3], 0));
}

/* ---- slice_scatter: src of the shape of a random slice of a random shape;
 * in = {src, [rank, shape..., n, (start, stop, step)...]} ---- */
static int mk_slice_scatter(struct tg_rng *r, struct tg_tensor **in)
{
    struct tg_tensor *tmp[2] = {0}, *y = NULL;
    struct tg_tape *T = tg_tape_new();
    /* a non-empty slice, most times: src's elements must reach y */
    for (int tries = 0; T && tries < 8 && !(y && tg_tensor_numel(y) > 0); tries++) {
        tg_tensor_free(tmp[0]);
        tg_tensor_free(tmp[1]);
        tmp[0] = tmp[1] = NULL;
        if (mk_slice(r, tmp) != 2) break;
        y = f_slice(T, tmp, 2, NULL);
    }
    if (!tmp[1]) {
        tg_tape_free(T);
        return 0;
    }
    int64_t v[40], spec[24];
    int k = iread(tmp[1], spec) / 3, rank = tg_tensor_rank(tmp[0]);
    int n = 0;
    v[n++] = rank;
    for (int d = 0; d < rank; d++) v[n++] = tg_tensor_shape(tmp[0])[d];
    v[n++] = k;
    for (int j = 0; j < 3 * k; j++) v[n++] = spec[j];
    in[0] = y ? gc_rand(r, rank, tg_tensor_shape(y), -2, 2, true) : NULL;
    in[1] = ints(n, v);
    tg_tape_free(T);
    tg_tensor_free(tmp[0]);
    tg_tensor_free(tmp[1]);
    return in[0] && in[1] ? 2 : 0;
}
static struct tg_tensor *f_slice_scatter(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                         void *c)
{
    int64_t v[40], shape[8];
    struct tg_slice_spec spec[8];
    iread(x[1], v);
    int rank = (int)v[0], k = (int)v[1 + rank];
    for (int d = 0; d < rank; d++) shape[d] = v[1 + d];
    for (int d = 0; d < k; d++) {
        const int64_t *p = v + 2 + rank + 3 * d;
        spec[d] = (struct tg_slice_spec){p[0], p[1], p[2]};
    }
    return tg_slice_scatter(T, x[0], rank, shape, k, spec);
}

/* ---- index_add: src with 0..6 rows along the axis, indices with repeats into
 * a random size; in = {src, indices, [axis, size]} ---- */
static int mk_index_add(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3], idx[6];
    int rank = rand_shape(r, 1, 3, s);
    int64_t axis = rand_axis(r, rank), size = gc_dim(r), n = irand(r, 0, 6);
    s[axis < 0 ? axis + rank : axis] = n;
    for (int64_t k = 0; k < n; k++) idx[k] = irand(r, 0, size - 1);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = ints(n, idx);
    in[2] = ints(2, (int64_t[]){axis, size});
    return 3;
}
static struct tg_tensor *f_index_add(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t idx[8];
    int k = iread(x[1], idx);
    return tg_index_add(T, x[0], (int)iget(x[2], 0), iget(x[2], 1), idx, k);
}

/* ---- scatter_add: src no larger than y off the axis, positions repeat;
 * in = {src, index (src's shape), [axis, y's shape...]} ---- */
static int mk_scatter_add(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t ys[3], ss[3], v[4];
    int rank = rand_shape(r, 1, 3, ys);
    int64_t axis = rand_axis(r, rank), a = axis < 0 ? axis + rank : axis;
    for (int d = 0; d < rank; d++) ss[d] = d == a ? gc_dim(r) : irand(r, 1, ys[d]);
    in[0] = gc_rand(r, rank, ss, -2, 2, true);
    in[1] = tg_tensor_zeros(TG_F64, rank, ss);
    for (int64_t k = 0; k < tg_tensor_numel(in[1]); k++)
        tg_tensor_set(in[1], k, (double)irand(r, 0, ys[a] - 1));
    v[0] = axis;
    for (int d = 0; d < rank; d++) v[1 + d] = ys[d];
    in[2] = ints(1 + rank, v);
    return 3;
}
static struct tg_tensor *f_scatter_add(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    int64_t idx[7 * 7 * 7], v[4];
    iread(x[1], idx);
    int k = iread(x[2], v);
    return tg_scatter_add(T, x[0], (int)v[0], k - 1, v + 1, idx);
}

const struct gc_case gc_cases_shape[] = {
    {TG_OP_RESHAPE, "reshape", mk_reshape, f_reshape},
    {TG_OP_SQUEEZE, "squeeze axis", mk_squeeze_axis, f_squeeze},
    {TG_OP_SQUEEZE, "squeeze all", mk_squeeze_all, f_squeeze_all},
    {TG_OP_UNSQUEEZE, "unsqueeze", mk_unsqueeze, f_unsqueeze},
    {TG_OP_TRANSPOSE, "transpose", mk_transpose, f_transpose},
    {TG_OP_PERMUTE, "permute", mk_permute, f_permute},
    {TG_OP_BROADCAST_TO, "broadcast_to", mk_broadcast_to, f_broadcast_to},
    {TG_OP_BROADCAST_TO, "broadcast_to rows", mk_broadcast_to_rows, f_broadcast_to},
    {TG_OP_SLICE, "slice", mk_slice, f_slice},
    {TG_OP_SLICE, "slice_axis", mk_slice_axis, f_slice_axis},
    {TG_OP_INDEX_SELECT, "index_select", mk_index_select, f_index_select},
    {TG_OP_INDEX_SELECT, "index_select_tensor", mk_index_select, f_index_select_t},
    {TG_OP_GATHER, "gather", mk_gather, f_gather},
    {TG_OP_GATHER, "gather_tensor", mk_gather, f_gather_t},
    {TG_OP_CONCAT, "concat", mk_concat, f_concat},
    {TG_OP_STACK, "stack", mk_stack, f_stack},
    {TG_OP_SLICE_SCATTER, "slice_scatter", mk_slice_scatter, f_slice_scatter},
    {TG_OP_INDEX_ADD, "index_add", mk_index_add, f_index_add},
    {TG_OP_SCATTER_ADD, "scatter_add", mk_scatter_add, f_scatter_add},
    {TG_OP_DETACH, "detach", gc_mk_detach, gc_f_detach},
    {TG_OP_DETACH, "detach of a node", gc_mk_detach, gc_f_detach_node},
};
const int gc_n_shape = sizeof gc_cases_shape / sizeof gc_cases_shape[0];
