/*
 * ops/shape.c - ops that move elements without changing them: reshape, squeeze,
 * unsqueeze, transpose, permute, broadcast_to, slice.
 *
 * reshape, squeeze and unsqueeze keep the row-major order, so forward is one
 * memcpy and backward one elementwise add. The others are strided views: output
 * element i (a multi-index) reads x at off + sum_d i_d * st[d], where st may be
 * permuted (transpose, permute), scaled by the step (slice) or 0 (broadcast_to).
 * Each op only says how to build its view; one pair of kernels does the copy
 * forward and the scatter-add backward. Backward through a view is the transpose
 * of the copy: dx[off + i.st] += dy[i]; where st has zeros (broadcast) several
 * output elements meet one input element, and the += sums over the broadcast axes.
 */
#include <stdio.h>
#include "shape-impl.h"

enum tg_status tg__norm_axis(const char *fn, int axis, int n, int rank, const int64_t *shape,
                             int *out)
{
    if (axis < -n || axis >= n) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, rank, shape);
        return tg__fail(TG_ERR_RANGE, "%s: axis %d is out of range for %s", fn, axis, s);
    }
    *out = axis < 0 ? axis + n : axis;
    return TG_OK;
}

int tg__axis_param(const struct tg_tensor *out, double *vals)
{
    vals[0] = tg__axis_of(out);
    return 1;
}

int64_t *tg__arena_i64(struct tg_tape *T, const int64_t *v, int64_t n)
{
    int64_t *a = tg__tape_alloc(T, (size_t)(n > 0 ? n : 1) * sizeof *a);
    if (a && n > 0) memcpy(a, v, (size_t)n * sizeof *a);
    return a;
}

/* ---- kernels shared by the ops of this file ---- */

/* reshape, squeeze, unsqueeze: y = x in the same row-major order. */
static void copy_fwd(struct tg_tensor *out)
{
    memcpy(out->data, out->in[0]->data, (size_t)out->numel * tg__esize(out->dtype));
}
static void copy_bwd(struct tg_tensor *out) /* dx += dy */
{
    struct tg_tensor *x = out->in[0];
    if (!x->requires_grad) return;
    if (x->dtype == TG_F64) {
        double *g = x->grad;
        const double *gy = out->grad;
        for (int64_t i = 0; i < out->numel; i++) g[i] += gy[i];
    } else {
        float *g = x->grad;
        const float *gy = out->grad;
        for (int64_t i = 0; i < out->numel; i++) g[i] += gy[i];
    }
}

/* reshape, squeeze, unsqueeze: dx = dy reshaped to x's shape. */
static enum tg_status copy_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                               const bool *need, struct tg_tensor **dx)
{
    const struct tg_tensor *x = out->in[0];
    if (!need[0]) return TG_OK;
    dx[0] = tg_reshape(T, dy, x->rank, x->shape);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

/* Where output element i (multi-index) lives in x: off + sum_d i_d * st[d]. */
struct view {
    int64_t off;
    int64_t st[TG_MAX_DIM];
};

#define VIEW_KERNELS(T)                                                                            \
    static void view_fwd_##T(struct tg_tensor *out, const struct view *v)                          \
    {                                                                                              \
        const T *x = out->in[0]->data;                                                             \
        T *y = out->data; /* out->shape */                                                         \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, out->rank, out->shape, v->st, v->off);                                   \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w)) {                                  \
            const T *xr = x + w.off;                                                               \
            T *yr = y + r * w.n;                                                                   \
            if (w.rs == 1)                                                                         \
                memcpy(yr, xr, (size_t)w.n * sizeof(T));                                           \
            else                                                                                   \
                for (int64_t j = 0; j < w.n; j++) yr[j] = xr[j * w.rs];                            \
        }                                                                                          \
    }                                                                                              \
    static void view_bwd_##T(struct tg_tensor *out, const struct view *v)                          \
    {                                                                                              \
        T *gx = out->in[0]->grad;                                                                  \
        const T *gy = out->grad; /* out->shape */                                                  \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, out->rank, out->shape, v->st, v->off);                                   \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w)) {                                  \
            T *gr = gx + w.off;                                                                    \
            const T *gyr = gy + r * w.n;                                                           \
            if (w.rs == 0) { /* a broadcast row: all of it lands on one element */                 \
                T s = 0;                                                                           \
                for (int64_t j = 0; j < w.n; j++) s += gyr[j];                                     \
                gr[0] += s;                                                                        \
            } else {                                                                               \
                for (int64_t j = 0; j < w.n; j++) gr[j * w.rs] += gyr[j];                          \
            }                                                                                      \
        }                                                                                          \
    }
VIEW_KERNELS(float)
VIEW_KERNELS(double)

static void view_fwd(struct tg_tensor *out, const struct view *v)
{
    if (out->dtype == TG_F64)
        view_fwd_double(out, v);
    else
        view_fwd_float(out, v);
}
static void view_bwd(struct tg_tensor *out, const struct view *v)
{
    if (!out->in[0]->requires_grad) return;
    if (out->dtype == TG_F64)
        view_bwd_double(out, v);
    else
        view_bwd_float(out, v);
}

/* Forward and backward of a view op from its NAME##_view builder. */
#define VIEW_OP_KERNELS(NAME)                                                                      \
    static void NAME##_fwd(struct tg_tensor *out)                                                  \
    {                                                                                              \
        struct view v;                                                                             \
        NAME##_view(out, &v);                                                                      \
        view_fwd(out, &v);                                                                         \
    }                                                                                              \
    static void NAME##_bwd(struct tg_tensor *out)                                                  \
    {                                                                                              \
        struct view v;                                                                             \
        NAME##_view(out, &v);                                                                      \
        view_bwd(out, &v);                                                                         \
    }

/* Lets tg__op_record report a NULL input or tape with its usual message. */
static struct tg_tensor *missing(struct tg_tape *T, const struct tg_op_desc *d, struct tg_tensor *x)
{
    return tg__op_record(T, d, 1, &x, NULL, NULL);
}

static enum tg_status fail_shape2(enum tg_status st, const char *fmt, int ra, const int64_t *a,
                                  int rb, const int64_t *b)
{
    char sa[160], sb[160];
    tg_tensor_format_shape(sa, sizeof sa, ra, a);
    tg_tensor_format_shape(sb, sizeof sb, rb, b);
    return tg__fail(st, fmt, sa, sb);
}

/* ---- reshape: aux = the requested shape (p.i[0] entries, one may be -1) ---- */

static enum tg_status reshape_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const int64_t *want = out->aux;
    int rank = (int)out->p.i[0], infer = -1;
    bool ok = true, zero = false;
    /* the product of the given sizes, capped at numel + 1 (never overflows) */
    int64_t prod = 1, cap = x->numel + 1;
    for (int d = 0; d < rank; d++) {
        out->shape[d] = want[d];
        if (want[d] == -1) {
            ok = ok && infer < 0;
            infer = d;
        } else if (want[d] < 0) {
            ok = false;
        } else if (want[d] == 0) {
            zero = true;
        } else {
            prod = want[d] > cap / prod ? cap : prod * want[d];
        }
    }
    if (zero) prod = 0;
    if (ok && infer >= 0) {
        ok = prod != 0 && x->numel % prod == 0;
        if (ok) out->shape[infer] = x->numel / prod;
    } else if (ok) {
        ok = prod == x->numel;
    }
    if (!ok)
        return fail_shape2(TG_ERR_SHAPE, "reshape: cannot reshape %s into %s", x->rank, x->shape,
                           rank, want);
    out->rank = (uint8_t)rank;
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_reshape = {
    .op = TG_OP_RESHAPE,
    .name = "reshape",
    .arity = 1,
    .formula = "y = x with a new shape (row-major order kept)",
    .vjp = "dx += dy reshaped to x's shape",
    .shape = reshape_shape,
    .forward = copy_fwd,
    .backward = copy_bwd,
    .vjp_graph = copy_vjp,
};

struct tg_tensor *tg_reshape(struct tg_tape *T, struct tg_tensor *x, int rank, const int64_t *shape)
{
    if (!T || !x) return missing(T, &tg_op_desc_reshape, x);
    if (rank < 0 || rank > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "reshape: rank %d is outside 0..%d", rank, TG_MAX_DIM);
        return NULL;
    }
    if (rank > 0 && !shape) {
        tg__fail(TG_ERR_NULL, "reshape: shape is NULL");
        return NULL;
    }
    int64_t *aux = tg__arena_i64(T, shape, rank);
    if (!aux) return NULL;
    union tg_params p = {.i = {rank, 0}};
    return tg__op_record(T, &tg_op_desc_reshape, 1, &x, &p, aux);
}

/* ---- squeeze: p.i[0] = axis, p.i[1] = 1 to drop every size-1 axis ---- */

static enum tg_status squeeze_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int axis = -1, r = 0;
    if (!out->p.i[1]) {
        if (tg__norm_axis("squeeze", (int)out->p.i[0], x->rank, x->rank, x->shape, &axis))
            return tg_last_status();
        if (x->shape[axis] != 1) {
            char s[160];
            tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
            return tg__fail(TG_ERR_SHAPE, "squeeze: axis %d of %s has size %lld, not 1",
                            (int)out->p.i[0], s, (long long)x->shape[axis]);
        }
    }
    for (int d = 0; d < x->rank; d++)
        if (out->p.i[1] ? x->shape[d] != 1 : d != axis) out->shape[r++] = x->shape[d];
    out->rank = (uint8_t)r;
    return TG_OK;
}

/* The parameter: the axis (0..rank-1 of x); none for squeeze_all. */
static int squeeze_params(const struct tg_tensor *out, double *vals)
{
    if (out->p.i[1]) return 0;
    int64_t a = out->p.i[0];
    vals[0] = (double)(a < 0 ? a + out->in[0]->rank : a);
    return 1;
}

const struct tg_op_desc tg_op_desc_squeeze = {.op = TG_OP_SQUEEZE,
                                              .name = "squeeze",
                                              .arity = 1,
                                              .formula = "y = x without size-1 axes",
                                              .vjp = "dx += dy reshaped to x's shape",
                                              .shape = squeeze_shape,
                                              .forward = copy_fwd,
                                              .backward = copy_bwd,
                                              .params = squeeze_params,
                                              .vjp_graph = copy_vjp};

struct tg_tensor *tg_squeeze(struct tg_tape *T, struct tg_tensor *x, int axis)
{
    union tg_params p = {.i = {axis, 0}};
    return tg__op_record(T, &tg_op_desc_squeeze, 1, &x, &p, NULL);
}
struct tg_tensor *tg_squeeze_all(struct tg_tape *T, struct tg_tensor *x)
{
    union tg_params p = {.i = {0, 1}};
    return tg__op_record(T, &tg_op_desc_squeeze, 1, &x, &p, NULL);
}

/* ---- unsqueeze: p.i[0] = where the new axis goes ---- */

static enum tg_status unsqueeze_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int axis;
    if (x->rank >= TG_MAX_DIM) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
        return tg__fail(TG_ERR_RANGE, "unsqueeze: %s already has the maximum rank %d", s,
                        TG_MAX_DIM);
    }
    if (tg__norm_axis("unsqueeze", (int)out->p.i[0], x->rank + 1, x->rank, x->shape, &axis))
        return tg_last_status();
    for (int d = 0, k = 0; d <= x->rank; d++) out->shape[d] = d == axis ? 1 : x->shape[k++];
    out->rank = (uint8_t)(x->rank + 1);
    return TG_OK;
}

/* The parameter: where the new axis is (0..rank-1 of y). */
static int unsqueeze_params(const struct tg_tensor *out, double *vals)
{
    int64_t a = out->p.i[0];
    vals[0] = (double)(a < 0 ? a + out->rank : a);
    return 1;
}

const struct tg_op_desc tg_op_desc_unsqueeze = {.op = TG_OP_UNSQUEEZE,
                                                .name = "unsqueeze",
                                                .arity = 1,
                                                .formula = "y = x with a new size-1 axis",
                                                .vjp = "dx += dy reshaped to x's shape",
                                                .shape = unsqueeze_shape,
                                                .forward = copy_fwd,
                                                .backward = copy_bwd,
                                                .params = unsqueeze_params,
                                                .vjp_graph = copy_vjp};

struct tg_tensor *tg_unsqueeze(struct tg_tape *T, struct tg_tensor *x, int axis)
{
    union tg_params p = {.i = {axis, 0}};
    return tg__op_record(T, &tg_op_desc_unsqueeze, 1, &x, &p, NULL);
}

/* ---- transpose: p.i = the two axes (as given) ---- */

/* Axis k (0 or 1) of a transpose as 0..rank-1. */
static int transpose_axis(const struct tg_tensor *out, int k)
{
    int64_t a = out->p.i[k];
    return (int)(a < 0 ? a + out->rank : a);
}

static enum tg_status transpose_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int a, b;
    if (tg__norm_axis("transpose", (int)out->p.i[0], x->rank, x->rank, x->shape, &a) ||
        tg__norm_axis("transpose", (int)out->p.i[1], x->rank, x->rank, x->shape, &b))
        return tg_last_status();
    for (int d = 0; d < x->rank; d++) out->shape[d] = x->shape[d];
    out->shape[a] = x->shape[b];
    out->shape[b] = x->shape[a];
    out->rank = x->rank;
    return TG_OK;
}

/* y[.., i_a, .., i_b, ..] = x[.., i_b, .., i_a, ..]: x's strides with a and b swapped */
static void transpose_view(const struct tg_tensor *out, struct view *v)
{
    const struct tg_tensor *x = out->in[0];
    tg__strides(x->rank, x->shape, v->st);
    int a = transpose_axis(out, 0), b = transpose_axis(out, 1);
    int64_t t = v->st[a];
    v->st[a] = v->st[b];
    v->st[b] = t;
    v->off = 0;
}
VIEW_OP_KERNELS(transpose)

/* The parameters: the two axes, as 0..rank-1. */
static int transpose_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = transpose_axis(out, 0);
    vals[1] = transpose_axis(out, 1);
    return 2;
}

/* dx = dy with the same two axes swapped back */
static enum tg_status transpose_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                    const bool *need, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    dx[0] = tg_transpose(T, dy, transpose_axis(out, 0), transpose_axis(out, 1));
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_transpose = {.op = TG_OP_TRANSPOSE,
                                                .name = "transpose",
                                                .arity = 1,
                                                .formula =
                                                    "y[.., i, .., j, ..] = x[.., j, .., i, ..]",
                                                .vjp = "dx += dy transposed back",
                                                .shape = transpose_shape,
                                                .forward = transpose_fwd,
                                                .backward = transpose_bwd,
                                                .params = transpose_params,
                                                .vjp_graph = transpose_vjp};

struct tg_tensor *tg_transpose(struct tg_tape *T, struct tg_tensor *x, int a, int b)
{
    union tg_params p = {.i = {a, b}};
    return tg__op_record(T, &tg_op_desc_transpose, 1, &x, &p, NULL);
}

/* ---- permute: aux = perm (p.i[0] entries, as given) ---- */

/* Entry d of the permutation as an axis 0..rank-1 of x. */
static int perm_at(const struct tg_tensor *out, int d)
{
    int64_t a = ((const int64_t *)out->aux)[d];
    return (int)(a < 0 ? a + out->rank : a);
}

static enum tg_status permute_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const int64_t *perm = out->aux;
    int n = (int)out->p.i[0];
    char s[160]; /* x's shape, formatted only for a message */
    if (n != x->rank) {
        tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
        return tg__fail(TG_ERR_SHAPE, "permute: %d axes given for %s of rank %d", n, s, x->rank);
    }
    unsigned seen = 0;
    for (int d = 0; d < n; d++) {
        int a;
        if (tg__norm_axis("permute", (int)perm[d], n, x->rank, x->shape, &a))
            return tg_last_status();
        if (seen & (1u << a)) {
            tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
            return tg__fail(TG_ERR_VALUE, "permute: axis %d appears twice in the permutation of %s",
                            a, s);
        }
        seen |= 1u << a;
        out->shape[d] = x->shape[a];
    }
    out->rank = x->rank;
    return TG_OK;
}

/* y's axis d walks x's axis perm[d] */
static void permute_view(const struct tg_tensor *out, struct view *v)
{
    const struct tg_tensor *x = out->in[0];
    int64_t xs[TG_MAX_DIM];
    tg__strides(x->rank, x->shape, xs);
    for (int d = 0; d < x->rank; d++) v->st[d] = xs[perm_at(out, d)];
    v->off = 0;
}
VIEW_OP_KERNELS(permute)

/* The parameters: the permutation, one axis of x per axis of y. */
static int permute_params(const struct tg_tensor *out, double *vals)
{
    for (int d = 0; d < out->rank; d++) vals[d] = perm_at(out, d);
    return out->rank;
}

/* dx = dy permuted by the inverse permutation: x's axis perm[d] is y's axis d */
static enum tg_status permute_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                  const bool *need, struct tg_tensor **dx)
{
    int inv[TG_MAX_DIM];
    if (!need[0]) return TG_OK;
    for (int d = 0; d < out->rank; d++) inv[perm_at(out, d)] = d;
    dx[0] = tg_permute(T, dy, out->rank, inv);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_permute = {
    .op = TG_OP_PERMUTE,
    .name = "permute",
    .arity = 1,
    .formula = "y[i_0, .., i_n] = x at index i_d on axis perm[d]",
    .vjp = "dx += dy permuted by the inverse of perm",
    .shape = permute_shape,
    .forward = permute_fwd,
    .backward = permute_bwd,
    .params = permute_params,
    .vjp_graph = permute_vjp};

struct tg_tensor *tg_permute(struct tg_tape *T, struct tg_tensor *x, int n, const int *perm)
{
    if (!T || !x) return missing(T, &tg_op_desc_permute, x);
    if (n > 0 && !perm) {
        tg__fail(TG_ERR_NULL, "permute: perm is NULL");
        return NULL;
    }
    if (n < 0 || n > TG_MAX_DIM) {
        tg__fail(TG_ERR_SHAPE, "permute: %d axes given (0..%d allowed)", n, TG_MAX_DIM);
        return NULL;
    }
    int64_t p64[TG_MAX_DIM];
    for (int d = 0; d < n; d++) p64[d] = perm[d];
    int64_t *aux = tg__arena_i64(T, p64, n);
    if (!aux) return NULL;
    union tg_params p = {.i = {n, 0}};
    return tg__op_record(T, &tg_op_desc_permute, 1, &x, &p, aux);
}

/* ---- broadcast_to: aux = the target shape (p.i[0] entries) ---- */

static enum tg_status broadcast_to_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const int64_t *want = out->aux;
    int rank = (int)out->p.i[0], off = rank - x->rank;
    bool ok = off >= 0;
    for (int d = 0; ok && d < rank; d++) {
        int64_t xd = d >= off ? x->shape[d - off] : 1;
        ok = want[d] >= 0 && (xd == want[d] || xd == 1);
        out->shape[d] = want[d];
    }
    if (!ok)
        return fail_shape2(TG_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s", x->rank,
                           x->shape, rank, want);
    out->rank = (uint8_t)rank;
    return TG_OK;
}

/* stride 0 along the axes where x has size 1 or no axis at all */
static void broadcast_to_view(const struct tg_tensor *out, struct view *v)
{
    tg__bcast_strides(out->in[0], out, v->st);
    v->off = 0;
}
VIEW_OP_KERNELS(broadcast_to)

/* dx = dy summed over the broadcast axes */
static enum tg_status broadcast_to_vjp(struct tg_tape *T, struct tg_tensor *out,
                                       struct tg_tensor *dy, const bool *need,
                                       struct tg_tensor **dx)
{
    const struct tg_tensor *x = out->in[0];
    if (!need[0]) return TG_OK;
    dx[0] = tg__sum_to(T, dy, x->rank, x->shape);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_broadcast_to = {
    .op = TG_OP_BROADCAST_TO,
    .name = "broadcast_to",
    .arity = 1,
    .formula = "y[i] = x[i with broadcast axes at 0]",
    .vjp = "dx += dy summed over the broadcast axes",
    .shape = broadcast_to_shape,
    .forward = broadcast_to_fwd,
    .backward = broadcast_to_bwd,
    .vjp_graph = broadcast_to_vjp,
};

struct tg_tensor *tg_broadcast_to(struct tg_tape *T, struct tg_tensor *x, int rank,
                                  const int64_t *shape)
{
    if (!T || !x) return missing(T, &tg_op_desc_broadcast_to, x);
    if (rank < 0 || rank > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "broadcast_to: rank %d is outside 0..%d", rank, TG_MAX_DIM);
        return NULL;
    }
    if (rank > 0 && !shape) {
        tg__fail(TG_ERR_NULL, "broadcast_to: shape is NULL");
        return NULL;
    }
    int64_t *aux = tg__arena_i64(T, shape, rank);
    if (!aux) return NULL;
    union tg_params p = {.i = {rank, 0}};
    return tg__op_record(T, &tg_op_desc_broadcast_to, 1, &x, &p, aux);
}

/* ---- slice: aux = the per-axis specs as given (p.i[0] of them) ---- */

struct slice_aux {
    int64_t start[TG_MAX_DIM], stop[TG_MAX_DIM], step[TG_MAX_DIM];
};

/* Python's slice.indices: clamps start/stop into the axis and returns the length. */
static int64_t slice_indices(int64_t len, int64_t *start, int64_t stop, int64_t step)
{
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1;
    int64_t v[2] = {*start, stop};
    for (int k = 0; k < 2; k++) {
        if (v[k] == TG_SLICE_NONE)
            v[k] = (step > 0) == (k == 0) ? lo : hi;
        else if (v[k] < 0)
            v[k] = v[k] + len < lo ? lo : v[k] + len;
        else if (v[k] > hi)
            v[k] = hi;
    }
    *start = v[0];
    if (step > 0) return v[1] > v[0] ? (v[1] - v[0] - 1) / step + 1 : 0;
    return v[0] > v[1] ? (v[0] - v[1] - 1) / -step + 1 : 0;
}

/* Axis d of a slice resolved: its first index in x, its step (a step of 0 is
 * left for the shape rule to reject) and its length. Axes after the given ones
 * are taken whole. */
static int64_t slice_axis_of(const int64_t *xshape, const struct slice_aux *s, int n, int d,
                             int64_t *start, int64_t *step)
{
    *start = 0;
    *step = 1;
    if (d >= n) return xshape[d];
    *start = s->start[d];
    if (s->step[d] != TG_SLICE_NONE) *step = s->step[d];
    return *step ? slice_indices(xshape[d], start, s->stop[d], *step) : 0;
}
static int64_t slice_axis(const struct tg_tensor *out, int d, int64_t *start, int64_t *step)
{
    return slice_axis_of(out->in[0]->shape, out->aux, (int)out->p.i[0], d, start, step);
}

static enum tg_status slice_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int n = (int)out->p.i[0];
    if (n > x->rank) {
        char b[160];
        tg_tensor_format_shape(b, sizeof b, x->rank, x->shape);
        return tg__fail(TG_ERR_RANGE, "slice: %d axes sliced but %s has rank %d", n, b, x->rank);
    }
    for (int d = 0; d < x->rank; d++) {
        int64_t start, step;
        out->shape[d] = slice_axis(out, d, &start, &step);
        if (step == 0) return tg__fail(TG_ERR_VALUE, "slice: step 0 on axis %d", d);
    }
    out->rank = x->rank;
    return TG_OK;
}

/* y[i] = x[start + i * step] on every axis, for x of (rank, xshape) and the
 * slice's shape yshape */
static void slice_view_of(int rank, const int64_t *xshape, const struct slice_aux *s, int n,
                          const int64_t *yshape, struct view *v)
{
    tg__strides(rank, xshape, v->st);
    v->off = 0;
    for (int d = 0; d < rank; d++) {
        int64_t start, step;
        slice_axis_of(xshape, s, n, d, &start, &step);
        v->off += start * v->st[d];
        /* along an axis of length 0 or 1 the step is never taken (and may be
         * as large as INT64_MAX: the product would overflow); above that,
         * |step| < the axis length, so the product stays below numel */
        v->st[d] = yshape[d] > 1 ? v->st[d] * step : 0;
    }
}
static void slice_view(const struct tg_tensor *out, struct view *v)
{
    const struct tg_tensor *x = out->in[0];
    slice_view_of(x->rank, x->shape, out->aux, (int)out->p.i[0], out->shape, v);
}
VIEW_OP_KERNELS(slice)

/* The parameters: the start and the step of every axis of x, in turn
 * (start_0, step_0, start_1, step_1, ...), resolved as Python's slice.indices
 * does (x[-3:] of 10 elements: 7, 1). */
static int slice_params(const struct tg_tensor *out, double *vals)
{
    for (int d = 0; d < out->rank; d++) {
        int64_t start, step;
        slice_axis(out, d, &start, &step);
        vals[2 * d] = (double)start;
        vals[2 * d + 1] = (double)step;
    }
    return 2 * out->rank;
}

static struct tg_tensor *slice_scatter_record(struct tg_tape *T, struct tg_tensor *src, int rank,
                                              const int64_t *shape, int n,
                                              const struct slice_aux *s);

/* dx = zeros of x's shape with dy where the slice was taken: a slice_scatter */
static enum tg_status slice_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                const bool *need, struct tg_tensor **dx)
{
    const struct tg_tensor *x = out->in[0];
    if (!need[0]) return TG_OK;
    dx[0] = slice_scatter_record(T, dy, x->rank, x->shape, (int)out->p.i[0], out->aux);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_slice = {
    .op = TG_OP_SLICE,
    .name = "slice",
    .arity = 1,
    .formula = "y[i] = x[start + i * step] per axis (Python slicing)",
    .vjp = "dx[start + i * step] += dy[i]; 0 elsewhere",
    .shape = slice_shape,
    .forward = slice_fwd,
    .backward = slice_bwd,
    .params = slice_params,
    .vjp_graph = slice_vjp};

struct tg_tensor *tg_slice(struct tg_tape *T, struct tg_tensor *x, int n,
                           const struct tg_slice_spec *spec)
{
    if (!T || !x) return missing(T, &tg_op_desc_slice, x);
    if (n < 0 || n > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "slice: %d axes sliced (0..%d allowed)", n, TG_MAX_DIM);
        return NULL;
    }
    if (n > 0 && !spec) {
        tg__fail(TG_ERR_NULL, "slice: spec is NULL");
        return NULL;
    }
    struct slice_aux *s = tg__tape_alloc(T, sizeof *s);
    if (!s) return NULL;
    for (int d = 0; d < n; d++) {
        s->start[d] = spec[d].start;
        s->stop[d] = spec[d].stop;
        s->step[d] = spec[d].step;
    }
    union tg_params p = {.i = {n, 0}};
    return tg__op_record(T, &tg_op_desc_slice, 1, &x, &p, s);
}

struct tg_tensor *tg_slice_axis(struct tg_tape *T, struct tg_tensor *x, int axis, int64_t start,
                                int64_t stop, int64_t step)
{
    if (!T || !x) return missing(T, &tg_op_desc_slice, x);
    int a;
    if (tg__check_input(T, "slice", x) ||
        tg__norm_axis("slice", axis, x->rank, x->rank, x->shape, &a))
        return NULL;
    struct tg_slice_spec spec[TG_MAX_DIM];
    for (int d = 0; d < a; d++) spec[d] = (struct tg_slice_spec){TG_SLICE_NONE, TG_SLICE_NONE, 1};
    spec[a] = (struct tg_slice_spec){start, stop, step};
    return tg_slice(T, x, a + 1, spec);
}

/* ---- slice_scatter (the adjoint of slice): p.i[0] = the number of sliced axes,
 * aux = the specs as given and y's shape ---- */

struct slice_scatter_aux {
    struct slice_aux s;
    int64_t shape[TG_MAX_DIM];
    int rank;
};

static enum tg_status slice_scatter_shape(struct tg_tensor *out)
{
    const struct tg_tensor *src = out->in[0];
    const struct slice_scatter_aux *a = out->aux;
    int n = (int)out->p.i[0];
    int64_t want[TG_MAX_DIM];
    if (n > a->rank) {
        char b[160];
        tg_tensor_format_shape(b, sizeof b, a->rank, a->shape);
        return tg__fail(TG_ERR_RANGE, "slice_scatter: %d axes sliced but %s has rank %d", n, b,
                        a->rank);
    }
    bool ok = src->rank == a->rank;
    for (int d = 0; d < a->rank; d++) {
        int64_t start, step;
        want[d] = slice_axis_of(a->shape, &a->s, n, d, &start, &step);
        if (step == 0) return tg__fail(TG_ERR_VALUE, "slice_scatter: step 0 on axis %d", d);
        ok = ok && src->shape[d] == want[d];
    }
    if (!ok) {
        return fail_shape2(TG_ERR_SHAPE, "slice_scatter: src has shape %s, the slice has %s",
                           src->rank, src->shape, a->rank, want);
    }
    for (int d = 0; d < a->rank; d++) out->shape[d] = a->shape[d];
    out->rank = (uint8_t)a->rank;
    return TG_OK;
}

/* the slice of y that src fills, seen from src: element i of src is y[v.off + i.st] */
static void slice_scatter_view(const struct tg_tensor *out, struct view *v)
{
    const struct slice_scatter_aux *a = out->aux;
    slice_view_of(a->rank, a->shape, &a->s, (int)out->p.i[0], out->in[0]->shape, v);
}

#define SLICE_SCATTER_KERNELS(T)                                                                   \
    static void slice_scatter_fwd_##T(struct tg_tensor *out, const struct view *v)                 \
    {                                                                                              \
        const struct tg_tensor *src = out->in[0];                                                  \
        const T *x = src->data;                                                                    \
        T *y = out->data;                                                                          \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, src->rank, src->shape, v->st, v->off);                                   \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w))                                    \
            for (int64_t j = 0; j < w.n; j++) y[w.off + j * w.rs] = x[r * w.n + j];                \
    }                                                                                              \
    static void slice_scatter_bwd_##T(struct tg_tensor *out, const struct view *v)                 \
    {                                                                                              \
        const struct tg_tensor *src = out->in[0];                                                  \
        T *gx = src->grad;                                                                         \
        const T *gy = out->grad;                                                                   \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, src->rank, src->shape, v->st, v->off);                                   \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w))                                    \
            for (int64_t j = 0; j < w.n; j++) gx[r * w.n + j] += gy[w.off + j * w.rs];             \
    }
SLICE_SCATTER_KERNELS(float)
SLICE_SCATTER_KERNELS(double)

/* y = 0; y[slice] = src (the positions of a slice are distinct) */
static void slice_scatter_fwd(struct tg_tensor *out)
{
    struct view v;
    memset(out->data, 0, (size_t)out->numel * tg__esize(out->dtype));
    if (out->in[0]->numel == 0) return;
    slice_scatter_view(out, &v);
    if (out->dtype == TG_F64)
        slice_scatter_fwd_double(out, &v);
    else
        slice_scatter_fwd_float(out, &v);
}
/* dsrc += dy[slice] */
static void slice_scatter_bwd(struct tg_tensor *out)
{
    struct view v;
    if (!out->in[0]->requires_grad || out->in[0]->numel == 0) return;
    slice_scatter_view(out, &v);
    if (out->dtype == TG_F64)
        slice_scatter_bwd_double(out, &v);
    else
        slice_scatter_bwd_float(out, &v);
}

/* The parameters: as slice's, the start and the step of every axis of y. */
static int slice_scatter_params(const struct tg_tensor *out, double *vals)
{
    const struct slice_scatter_aux *a = out->aux;
    for (int d = 0; d < out->rank; d++) {
        int64_t start, step;
        slice_axis_of(a->shape, &a->s, (int)out->p.i[0], d, &start, &step);
        vals[2 * d] = (double)start;
        vals[2 * d + 1] = (double)step;
    }
    return 2 * out->rank;
}

/* dsrc = the same slice of dy */
static enum tg_status slice_scatter_vjp(struct tg_tape *T, struct tg_tensor *out,
                                        struct tg_tensor *dy, const bool *need,
                                        struct tg_tensor **dx)
{
    const struct slice_scatter_aux *a = out->aux;
    struct tg_slice_spec spec[TG_MAX_DIM];
    int n = (int)out->p.i[0];
    if (!need[0]) return TG_OK;
    for (int d = 0; d < n; d++)
        spec[d] = (struct tg_slice_spec){a->s.start[d], a->s.stop[d], a->s.step[d]};
    dx[0] = tg_slice(T, dy, n, spec);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_slice_scatter = {
    .op = TG_OP_SLICE_SCATTER,
    .name = "slice_scatter",
    .arity = 1,
    .formula = "y = 0 of a given shape; y[start + i * step] = src[i] per axis",
    .vjp = "dsrc[i] += dy[start + i * step] (the slice of dy)",
    .shape = slice_scatter_shape,
    .forward = slice_scatter_fwd,
    .backward = slice_scatter_bwd,
    .params = slice_scatter_params,
    .vjp_graph = slice_scatter_vjp,
    .operands = "src -> y"};

/* s is copied (it may be a slice node's aux) */
static struct tg_tensor *slice_scatter_record(struct tg_tape *T, struct tg_tensor *src, int rank,
                                              const int64_t *shape, int n,
                                              const struct slice_aux *s)
{
    struct slice_scatter_aux *a = T ? tg__tape_alloc(T, sizeof *a) : NULL;
    if (T && !a) return NULL;
    if (a) {
        a->s = *s;
        a->rank = rank;
        for (int d = 0; d < rank; d++) a->shape[d] = shape[d];
    }
    union tg_params p = {.i = {n, 0}};
    return tg__op_record(T, &tg_op_desc_slice_scatter, 1, &src, &p, a);
}

struct tg_tensor *tg_slice_scatter(struct tg_tape *T, struct tg_tensor *src, int rank,
                                   const int64_t *shape, int n, const struct tg_slice_spec *spec)
{
    if (!T || !src) return missing(T, &tg_op_desc_slice_scatter, src);
    int64_t numel;
    if (rank < 0 || rank > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "slice_scatter: rank %d is outside 0..%d", rank, TG_MAX_DIM);
        return NULL;
    }
    if (rank > 0 && !shape) {
        tg__fail(TG_ERR_NULL, "slice_scatter: shape is NULL");
        return NULL;
    }
    if (n < 0 || n > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "slice_scatter: %d axes sliced (0..%d allowed)", n, TG_MAX_DIM);
        return NULL;
    }
    if (n > 0 && !spec) {
        tg__fail(TG_ERR_NULL, "slice_scatter: spec is NULL");
        return NULL;
    }
    if (tg__check_shape("slice_scatter", rank, shape, sizeof(double), &numel)) return NULL;
    struct slice_aux s;
    memset(&s, 0, sizeof s);
    for (int d = 0; d < n; d++) {
        s.start[d] = spec[d].start;
        s.stop[d] = spec[d].stop;
        s.step[d] = spec[d].step;
    }
    return slice_scatter_record(T, src, rank, shape, n, &s);
}
