/*
 * ops/index.c - indexing and joining: index_select, gather, concat, stack.
 *
 * The integer indices are copied into the tape's arena when the op is recorded
 * (from an int64 array, or from an f32/f64 tensor of whole numbers), so backward
 * reads them even after the caller has reused its array. Forward picks elements
 * or whole contiguous runs (memcpy); backward is the matching scatter-add: an
 * index used several times (an embedding row looked up twice) receives the sum
 * of the gradients of all its copies.
 */
#include <stdio.h>
#include "shape-impl.h"

/* Lets tg__op_record report a NULL input or tape with its usual message. */
static struct tg_tensor *missing(struct tg_tape *T, const struct tg_op_desc *d, struct tg_tensor *x)
{
    return tg__op_record(T, d, 1, &x, NULL, NULL);
}

/* Product of shape[from..to-1]. */
static int64_t span(const int64_t *shape, int from, int to)
{
    int64_t n = 1;
    for (int d = from; d < to; d++) n *= shape[d];
    return n;
}

/* Checks that every idx[k] lies in 0..dim-1 (dim = size of `axis` of x). */
static enum tg_status check_range(const char *fn, const int64_t *idx, int64_t n,
                                  const struct tg_tensor *x, int axis)
{
    int64_t dim = x->shape[axis];
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= dim) {
            char s[160];
            tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
            return tg__fail(TG_ERR_RANGE,
                            "%s: index %lld at position %lld is out of range for "
                            "axis %d of %s",
                            fn, (long long)idx[k], (long long)k, axis, s);
        }
    return TG_OK;
}

/* The values of an index tensor (f32/f64 whole numbers, already checked to be
 * readable on T) as int64 in the arena. */
static int64_t *index_values(struct tg_tape *T, const char *fn, const struct tg_tensor *index)
{
    int64_t *v = tg__tape_alloc(T, (size_t)(index->numel ? index->numel : 1) * sizeof *v);
    if (!v) return NULL;
    for (int64_t k = 0; k < index->numel; k++) {
        double f = tg__load(index->data, index->dtype, k);
        if (!(f == floor(f) && fabs(f) < 9.2e18)) {
            tg__fail(TG_ERR_RANGE, "%s: index %.17g at position %lld is not a whole number", fn, f,
                     (long long)k);
            return NULL;
        }
        v[k] = (int64_t)f;
    }
    return v;
}

/* ---- index_select: p.i = {axis, n}, aux = the n indices ---- */

static enum tg_status index_select_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int axis;
    if (tg__norm_axis("index_select", (int)out->p.i[0], x->rank, x->rank, x->shape, &axis) ||
        check_range("index_select", out->aux, out->p.i[1], x, axis))
        return tg_last_status();
    for (int d = 0; d < x->rank; d++) out->shape[d] = d == axis ? out->p.i[1] : x->shape[d];
    out->rank = x->rank;
    return TG_OK;
}

/* y[o, k, i] = x[o, idx[k], i] with o the axes before `axis`, i those after:
 * each (o, k) copies one contiguous run of `inner` elements. */
static void index_select_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const int64_t *idx = out->aux;
    int axis = tg__axis_of(out);
    int64_t n = out->p.i[1], dim = x->shape[axis], es = (int64_t)tg__esize(x->dtype);
    int64_t outer = span(x->shape, 0, axis), inner = span(x->shape, axis + 1, x->rank);
    const char *xb = x->data; /* (outer, dim, inner) */
    char *yb = out->data;     /* (outer, n, inner) */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++)
            memcpy(yb + (o * n + k) * inner * es, xb + (o * dim + idx[k]) * inner * es,
                   (size_t)(inner * es));
}

#define INDEX_SELECT_BWD(T)                                                                        \
    static void index_select_bwd_##T(struct tg_tensor *out)                                        \
    {                                                                                              \
        const struct tg_tensor *x = out->in[0];                                                    \
        const int64_t *idx = out->aux;                                                             \
        int axis = tg__axis_of(out);                                                               \
        int64_t n = out->p.i[1], dim = x->shape[axis];                                             \
        int64_t outer = span(x->shape, 0, axis), inner = span(x->shape, axis + 1, x->rank);        \
        T *gx = x->grad;         /* (outer, dim, inner) */                                         \
        const T *gy = out->grad; /* (outer, n, inner) */                                           \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t k = 0; k < n; k++) {                                                      \
                T *g = gx + (o * dim + idx[k]) * inner;                                            \
                const T *s = gy + (o * n + k) * inner;                                             \
                for (int64_t i = 0; i < inner; i++) g[i] += s[i];                                  \
            }                                                                                      \
    }
INDEX_SELECT_BWD(float)
INDEX_SELECT_BWD(double)

/* dx[o, idx[k], i] += dy[o, k, i]: repeated indices accumulate */
static void index_select_bwd(struct tg_tensor *out)
{
    if (!out->in[0]->requires_grad) return;
    if (out->dtype == TG_F64)
        index_select_bwd_double(out);
    else
        index_select_bwd_float(out);
}

static struct tg_tensor *index_add_record(struct tg_tape *T, struct tg_tensor *src, int axis,
                                          int64_t size, const int64_t *idx, int64_t n);

/* dx = index_add(dy): the rows of dy added at their indices (the same arena copy) */
static enum tg_status index_select_vjp(struct tg_tape *T, struct tg_tensor *out,
                                       struct tg_tensor *dy, const bool *need,
                                       struct tg_tensor **dx)
{
    int axis = tg__axis_of(out);
    if (!need[0]) return TG_OK;
    dx[0] = index_add_record(T, dy, axis, out->in[0]->shape[axis], out->aux, out->p.i[1]);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_index_select = {
    .op = TG_OP_INDEX_SELECT,
    .name = "index_select",
    .arity = 1,
    .formula = "y[.., k, ..] = x[.., idx[k], ..] along axis",
    .vjp = "dx[.., idx[k], ..] += dy[.., k, ..] (scatter-add)",
    .shape = index_select_shape,
    .forward = index_select_fwd,
    .backward = index_select_bwd,
    .params = tg__axis_param,
    .vjp_graph = index_select_vjp};

/* idx already in the arena */
static struct tg_tensor *index_select_record(struct tg_tape *T, struct tg_tensor *x, int axis,
                                             int64_t *idx, int64_t n)
{
    union tg_params p = {.i = {axis, n}};
    return tg__op_record(T, &tg_op_desc_index_select, 1, &x, &p, idx);
}

struct tg_tensor *tg_index_select(struct tg_tape *T, struct tg_tensor *x, int axis,
                                  const int64_t *idx, int64_t n)
{
    if (!T || !x) return missing(T, &tg_op_desc_index_select, x);
    if (n < 0) {
        tg__fail(TG_ERR_RANGE, "index_select: negative index count %lld", (long long)n);
        return NULL;
    }
    if (n > 0 && !idx) {
        tg__fail(TG_ERR_NULL, "index_select: idx is NULL");
        return NULL;
    }
    int64_t *copy = tg__arena_i64(T, idx, n);
    return copy ? index_select_record(T, x, axis, copy, n) : NULL;
}

struct tg_tensor *tg_index_select_tensor(struct tg_tape *T, struct tg_tensor *x, int axis,
                                         const struct tg_tensor *index)
{
    if (!T || !x) return missing(T, &tg_op_desc_index_select, x);
    if (!index) {
        tg__null_input("index_select", "index");
        return NULL;
    }
    if (tg__check_input(T, "index_select", index)) return NULL;
    if (index->rank != 1) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, index->rank, index->shape);
        tg__fail(TG_ERR_SHAPE, "index_select: the index must have rank 1, not shape %s", s);
        return NULL;
    }
    int64_t *idx = index_values(T, "index_select", index);
    return idx ? index_select_record(T, x, axis, idx, index->numel) : NULL;
}

/* ---- gather: p.i = {axis, index rank}, aux = the index's shape and values ---- */

struct gather_aux {
    int64_t shape[TG_MAX_DIM];
    int64_t *idx; /* numel(shape) values, row-major */
};

static enum tg_status gather_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const struct gather_aux *g = out->aux;
    int rank = (int)out->p.i[1], axis;
    if (rank != x->rank) {
        char si[160], sx[160];
        tg_tensor_format_shape(si, sizeof si, rank, g->shape);
        tg_tensor_format_shape(sx, sizeof sx, x->rank, x->shape);
        return tg__fail(TG_ERR_SHAPE, "gather: index shape %s and input %s differ in rank", si, sx);
    }
    if (tg__norm_axis("gather", (int)out->p.i[0], x->rank, x->rank, x->shape, &axis))
        return tg_last_status();
    for (int d = 0; d < rank; d++)
        if (d != axis && g->shape[d] > x->shape[d]) {
            char si[160], sx[160];
            tg_tensor_format_shape(si, sizeof si, rank, g->shape);
            tg_tensor_format_shape(sx, sizeof sx, x->rank, x->shape);
            return tg__fail(TG_ERR_SHAPE, "gather: index shape %s exceeds input %s on axis %d", si,
                            sx, d);
        }
    int64_t numel = span(g->shape, 0, rank);
    if (check_range("gather", g->idx, numel, x, axis)) return tg_last_status();
    for (int d = 0; d < rank; d++) out->shape[d] = g->shape[d];
    out->rank = (uint8_t)rank;
    return TG_OK;
}

/* Element (multi-index i) of y reads x at sum_{d != axis} i_d * xs[d] +
 * idx[i] * xs[axis]: the walk uses x's strides with 0 on `axis`. */
#define GATHER_KERNELS(T)                                                                          \
    static void gather_fwd_##T(struct tg_tensor *out, const int64_t *st, int64_t sa)               \
    {                                                                                              \
        const struct gather_aux *g = out->aux;                                                     \
        const T *x = out->in[0]->data;                                                             \
        T *y = out->data; /* index shape */                                                        \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, out->rank, out->shape, st, 0);                                           \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w))                                    \
            for (int64_t j = 0, f = r * w.n; j < w.n; j++, f++)                                    \
                y[f] = x[w.off + j * w.rs + g->idx[f] * sa];                                       \
    }                                                                                              \
    static void gather_bwd_##T(struct tg_tensor *out, const int64_t *st, int64_t sa)               \
    {                                                                                              \
        const struct gather_aux *g = out->aux;                                                     \
        T *gx = out->in[0]->grad;                                                                  \
        const T *gy = out->grad; /* index shape */                                                 \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, out->rank, out->shape, st, 0);                                           \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w))                                    \
            for (int64_t j = 0, f = r * w.n; j < w.n; j++, f++)                                    \
                gx[w.off + j * w.rs + g->idx[f] * sa] += gy[f];                                    \
    }
GATHER_KERNELS(float)
GATHER_KERNELS(double)

/* x's strides with 0 on the gathered axis; returns the axis's own stride. */
static int64_t gather_strides(const struct tg_tensor *out, int64_t *st)
{
    const struct tg_tensor *x = out->in[0];
    int axis = tg__axis_of(out);
    tg__strides(x->rank, x->shape, st);
    int64_t sa = st[axis];
    st[axis] = 0;
    return sa;
}

/* y[i] = x[i with i_axis replaced by idx[i]] */
static void gather_fwd(struct tg_tensor *out)
{
    int64_t st[TG_MAX_DIM], sa = gather_strides(out, st);
    if (out->dtype == TG_F64)
        gather_fwd_double(out, st, sa);
    else
        gather_fwd_float(out, st, sa);
}
/* dx[i with i_axis replaced by idx[i]] += dy[i]: repeated positions accumulate */
static void gather_bwd(struct tg_tensor *out)
{
    if (!out->in[0]->requires_grad) return;
    int64_t st[TG_MAX_DIM], sa = gather_strides(out, st);
    if (out->dtype == TG_F64)
        gather_bwd_double(out, st, sa);
    else
        gather_bwd_float(out, st, sa);
}

static struct tg_tensor *scatter_add_record(struct tg_tape *T, struct tg_tensor *src, int axis,
                                            int rank, const int64_t *shape, int64_t *idx);

/* dx = scatter_add(dy) at the same positions (the same arena copy of the index) */
static enum tg_status gather_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    const struct tg_tensor *x = out->in[0];
    const struct gather_aux *g = out->aux;
    if (!need[0]) return TG_OK;
    dx[0] = scatter_add_record(T, dy, tg__axis_of(out), x->rank, x->shape, g->idx);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_gather = {
    .op = TG_OP_GATHER,
    .name = "gather",
    .arity = 1,
    .formula = "y[i] = x[i with i_axis replaced by idx[i]] (torch.gather)",
    .vjp = "dx[i with i_axis replaced by idx[i]] += dy[i] (scatter-add)",
    .shape = gather_shape,
    .forward = gather_fwd,
    .backward = gather_bwd,
    .params = tg__axis_param,
    .vjp_graph = gather_vjp};

/* g->idx already set (in the arena) */
static struct tg_tensor *gather_record(struct tg_tape *T, struct tg_tensor *x, int axis, int rank,
                                       struct gather_aux *g)
{
    union tg_params p = {.i = {axis, rank}};
    return tg__op_record(T, &tg_op_desc_gather, 1, &x, &p, g);
}

/* An arena gather_aux holding index_shape; NULL with the error set. */
static struct gather_aux *gather_aux_new(struct tg_tape *T, int rank, const int64_t *index_shape,
                                         int64_t *numel)
{
    if (tg__check_shape("gather", rank, index_shape, sizeof(int64_t), numel)) return NULL;
    struct gather_aux *g = tg__tape_alloc(T, sizeof *g);
    if (!g) return NULL;
    for (int d = 0; d < rank; d++) g->shape[d] = index_shape[d];
    return g;
}

struct tg_tensor *tg_gather(struct tg_tape *T, struct tg_tensor *x, int axis, int rank,
                            const int64_t *index_shape, const int64_t *index)
{
    if (!T || !x) return missing(T, &tg_op_desc_gather, x);
    int64_t numel;
    struct gather_aux *g = gather_aux_new(T, rank, index_shape, &numel);
    if (!g) return NULL;
    if (numel > 0 && !index) {
        tg__fail(TG_ERR_NULL, "gather: index is NULL");
        return NULL;
    }
    if (!(g->idx = tg__arena_i64(T, index, numel))) return NULL;
    return gather_record(T, x, axis, rank, g);
}

struct tg_tensor *tg_gather_tensor(struct tg_tape *T, struct tg_tensor *x, int axis,
                                   const struct tg_tensor *index)
{
    if (!T || !x) return missing(T, &tg_op_desc_gather, x);
    if (!index) {
        tg__null_input("gather", "index");
        return NULL;
    }
    if (tg__check_input(T, "gather", index)) return NULL;
    int64_t numel;
    struct gather_aux *g = gather_aux_new(T, index->rank, index->shape, &numel);
    if (!g || !(g->idx = index_values(T, "gather", index))) return NULL;
    return gather_record(T, x, axis, index->rank, g);
}

/* ---- concat and stack: p.i[0] = the axis of y (as given) along which the inputs follow
 * each other. With `outer` = the product of y's sizes before that axis, input k
 * is (outer, chunk_k) and y is (outer, sum_k chunk_k): forward copies, for each
 * o, one run of chunk_k elements from every input in turn. ---- */

static void join_fwd(struct tg_tensor *out)
{
    int64_t outer = span(out->shape, 0, tg__axis_of(out)), es = (int64_t)tg__esize(out->dtype);
    if (outer == 0) return;
    char *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (uint32_t k = 0; k < out->n_in; k++) {
            const struct tg_tensor *x = out->in[k];
            int64_t chunk = x->numel / outer * es;
            memcpy(y, (const char *)x->data + o * chunk, (size_t)chunk);
            y += chunk;
        }
}

#define JOIN_BWD(T)                                                                                \
    static void join_bwd_##T(struct tg_tensor *out, int64_t outer)                                 \
    {                                                                                              \
        const T *gy = out->grad; /* (outer, sum_k chunk_k) */                                      \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (uint32_t k = 0; k < out->n_in; k++) {                                             \
                const struct tg_tensor *x = out->in[k];                                            \
                int64_t chunk = x->numel / outer;                                                  \
                if (x->requires_grad) {                                                            \
                    T *gx = (T *)x->grad + o * chunk; /* (outer, chunk) */                         \
                    for (int64_t i = 0; i < chunk; i++) gx[i] += gy[i];                            \
                }                                                                                  \
                gy += chunk;                                                                       \
            }                                                                                      \
    }
JOIN_BWD(float)
JOIN_BWD(double)

/* each input's gradient is its own block of dy */
static void join_bwd(struct tg_tensor *out)
{
    int64_t outer = span(out->shape, 0, tg__axis_of(out));
    if (outer == 0) return;
    if (out->dtype == TG_F64)
        join_bwd_double(out, outer);
    else
        join_bwd_float(out, outer);
}

/* dx_k = the block of dy along the axis where x_k was placed: a slice of dy
 * (stack: of length 1, reshaped to x_k's shape, without the new axis) */
static enum tg_status join_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                               const bool *need, struct tg_tensor **dx)
{
    int axis = tg__axis_of(out);
    bool stack = out->desc->op == TG_OP_STACK;
    int64_t off = 0;
    for (uint32_t k = 0; k < out->n_in; k++) {
        const struct tg_tensor *x = out->in[k];
        int64_t len = stack ? 1 : x->shape[axis];
        if (need[k]) {
            struct tg_tensor *b = tg_slice_axis(T, dy, axis, off, off + len, 1);
            dx[k] = stack ? tg_reshape(T, b, x->rank, x->shape) : b;
            if (!dx[k]) return tg__vjp_failure();
        }
        off += len;
    }
    return TG_OK;
}

static bool same_shape(const struct tg_tensor *a, const struct tg_tensor *b, int skip)
{
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (d != skip && a->shape[d] != b->shape[d]) return false;
    return true;
}

static enum tg_status concat_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x0 = out->in[0];
    int axis;
    if (tg__norm_axis("concat", (int)out->p.i[0], x0->rank, x0->rank, x0->shape, &axis))
        return tg_last_status();
    int64_t total = 0;
    for (uint32_t k = 0; k < out->n_in; k++) {
        const struct tg_tensor *x = out->in[k];
        if (!same_shape(x0, x, axis)) {
            char s0[160], s1[160];
            tg_tensor_format_shape(s0, sizeof s0, x0->rank, x0->shape);
            tg_tensor_format_shape(s1, sizeof s1, x->rank, x->shape);
            return tg__fail(TG_ERR_SHAPE,
                            "concat: shapes %s and %s (input %u) differ outside "
                            "axis %d",
                            s0, s1, k + 1, axis);
        }
        if (x->shape[axis] > INT64_MAX - total)
            return tg__fail(TG_ERR_RANGE, "concat: the joined axis %d is too large", axis);
        total += x->shape[axis];
    }
    for (int d = 0; d < x0->rank; d++) out->shape[d] = d == axis ? total : x0->shape[d];
    out->rank = x0->rank;
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_concat = {.op = TG_OP_CONCAT,
                                             .name = "concat",
                                             .arity = -1,
                                             .formula =
                                                 "y = [x_1, .., x_n] joined along an existing axis",
                                             .vjp = "dx_k += the block of dy where x_k was placed",
                                             .shape = concat_shape,
                                             .forward = join_fwd,
                                             .backward = join_bwd,
                                             .params = tg__axis_param,
                                             .vjp_graph = join_vjp};

static enum tg_status stack_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x0 = out->in[0];
    int axis;
    if (x0->rank >= TG_MAX_DIM)
        return tg__fail(TG_ERR_RANGE, "stack: inputs of rank %d leave no room for a new axis",
                        x0->rank);
    if (tg__norm_axis("stack", (int)out->p.i[0], x0->rank + 1, x0->rank, x0->shape, &axis))
        return tg_last_status();
    for (uint32_t k = 1; k < out->n_in; k++)
        if (!same_shape(x0, out->in[k], -1)) {
            char s0[160], s1[160];
            tg_tensor_format_shape(s0, sizeof s0, x0->rank, x0->shape);
            tg_tensor_format_shape(s1, sizeof s1, out->in[k]->rank, out->in[k]->shape);
            return tg__fail(TG_ERR_SHAPE, "stack: shapes %s and %s (input %u) differ", s0, s1,
                            k + 1);
        }
    for (int d = 0, j = 0; d <= x0->rank; d++)
        out->shape[d] = d == axis ? (int64_t)out->n_in : x0->shape[j++];
    out->rank = (uint8_t)(x0->rank + 1);
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_stack = {.op = TG_OP_STACK,
                                            .name = "stack",
                                            .arity = -1,
                                            .formula = "y[.., k, ..] = x_k along a new axis",
                                            .vjp = "dx_k += dy[.., k, ..]",
                                            .shape = stack_shape,
                                            .forward = join_fwd,
                                            .backward = join_bwd,
                                            .params = tg__axis_param,
                                            .vjp_graph = join_vjp};

static struct tg_tensor *join(struct tg_tape *T, const struct tg_op_desc *d, int n,
                              struct tg_tensor *const *xs, int axis)
{
    if (n <= 0) {
        tg__fail(TG_ERR_VALUE, "%s: no tensors to join (n = %d)", d->name, n);
        return NULL;
    }
    if (!xs) {
        tg__fail(TG_ERR_NULL, "%s: xs is NULL", d->name);
        return NULL;
    }
    union tg_params p = {.i = {axis, 0}};
    return tg__op_record(T, d, n, xs, &p, NULL);
}

struct tg_tensor *tg_concat(struct tg_tape *T, int n, struct tg_tensor *const *xs, int axis)
{
    return join(T, &tg_op_desc_concat, n, xs, axis);
}
struct tg_tensor *tg_stack(struct tg_tape *T, int n, struct tg_tensor *const *xs, int axis)
{
    return join(T, &tg_op_desc_stack, n, xs, axis);
}

/* ---- index_add (the adjoint of index_select): p.i = {axis, size}, aux = the n
 * indices and n ---- */

struct index_add_aux {
    const int64_t *idx;
    int64_t n;
};

static enum tg_status index_add_shape(struct tg_tensor *out)
{
    const struct tg_tensor *src = out->in[0];
    const struct index_add_aux *a = out->aux;
    int64_t size = out->p.i[1];
    int axis;
    if (tg__norm_axis("index_add", (int)out->p.i[0], src->rank, src->rank, src->shape, &axis))
        return tg_last_status();
    if (size < 0)
        return tg__fail(TG_ERR_VALUE, "index_add: size %lld is negative", (long long)size);
    if (src->shape[axis] != a->n) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, src->rank, src->shape);
        return tg__fail(TG_ERR_SHAPE, "index_add: %lld indices for axis %d of src %s",
                        (long long)a->n, axis, s);
    }
    for (int d = 0; d < src->rank; d++) out->shape[d] = d == axis ? size : src->shape[d];
    out->rank = src->rank;
    for (int64_t k = 0; k < a->n; k++)
        if (a->idx[k] < 0 || a->idx[k] >= size) {
            char s[160];
            tg_tensor_format_shape(s, sizeof s, out->rank, out->shape);
            return tg__fail(TG_ERR_RANGE,
                            "index_add: index %lld at position %lld is out of range for axis %d "
                            "of %s",
                            (long long)a->idx[k], (long long)k, axis, s);
        }
    return TG_OK;
}

/* y = 0; y[o, idx[k], i] += src[o, k, i] (fwd); dsrc[o, k, i] += dy[o, idx[k], i] (bwd) */
#define INDEX_ADD_KERNELS(T)                                                                       \
    static void index_add_run_##T(struct tg_tensor *out, bool fwd)                                 \
    {                                                                                              \
        const struct tg_tensor *src = out->in[0];                                                  \
        const struct index_add_aux *a = out->aux;                                                  \
        int axis = tg__axis_of(out);                                                               \
        int64_t size = out->shape[axis], n = a->n;                                                 \
        int64_t outer = span(src->shape, 0, axis), inner = span(src->shape, axis + 1, src->rank);  \
        T *y = fwd ? out->data : out->grad; /* (outer, size, inner) */                             \
        T *x = fwd ? src->data : src->grad; /* (outer, n, inner) */                                \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t k = 0; k < n; k++) {                                                      \
                T *yr = y + (o * size + a->idx[k]) * inner, *xr = x + (o * n + k) * inner;         \
                for (int64_t i = 0; i < inner; i++) {                                              \
                    if (fwd)                                                                       \
                        yr[i] += xr[i];                                                            \
                    else                                                                           \
                        xr[i] += yr[i];                                                            \
                }                                                                                  \
            }                                                                                      \
    }
INDEX_ADD_KERNELS(float)
INDEX_ADD_KERNELS(double)

static void index_add_fwd(struct tg_tensor *out)
{
    memset(out->data, 0, (size_t)out->numel * tg__esize(out->dtype));
    if (out->dtype == TG_F64)
        index_add_run_double(out, true);
    else
        index_add_run_float(out, true);
}
static void index_add_bwd(struct tg_tensor *out)
{
    if (!out->in[0]->requires_grad) return;
    if (out->dtype == TG_F64)
        index_add_run_double(out, false);
    else
        index_add_run_float(out, false);
}

/* dsrc = index_select(dy) with the same indices */
static enum tg_status index_add_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                    const bool *need, struct tg_tensor **dx)
{
    const struct index_add_aux *a = out->aux;
    if (!need[0]) return TG_OK;
    /* index_select reads its indices from the arena, as they are */
    dx[0] = index_select_record(T, dy, tg__axis_of(out), (int64_t *)a->idx, a->n);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_index_add = {
    .op = TG_OP_INDEX_ADD,
    .name = "index_add",
    .arity = 1,
    .formula = "y = 0; y[.., idx[k], ..] += src[.., k, ..] along axis",
    .vjp = "dsrc[.., k, ..] += dy[.., idx[k], ..] (an index_select)",
    .shape = index_add_shape,
    .forward = index_add_fwd,
    .backward = index_add_bwd,
    .params = tg__axis_param,
    .vjp_graph = index_add_vjp,
    .operands = "src -> y"};

/* idx already in the arena */
static struct tg_tensor *index_add_record(struct tg_tape *T, struct tg_tensor *src, int axis,
                                          int64_t size, const int64_t *idx, int64_t n)
{
    struct index_add_aux *a = T ? tg__tape_alloc(T, sizeof *a) : NULL;
    if (T && !a) return NULL;
    if (a) *a = (struct index_add_aux){idx, n};
    union tg_params p = {.i = {axis, size}};
    return tg__op_record(T, &tg_op_desc_index_add, 1, &src, &p, a);
}

struct tg_tensor *tg_index_add(struct tg_tape *T, struct tg_tensor *src, int axis, int64_t size,
                               const int64_t *idx, int64_t n)
{
    if (!T || !src) return missing(T, &tg_op_desc_index_add, src);
    if (n < 0) {
        tg__fail(TG_ERR_RANGE, "index_add: negative index count %lld", (long long)n);
        return NULL;
    }
    if (n > 0 && !idx) {
        tg__fail(TG_ERR_NULL, "index_add: idx is NULL");
        return NULL;
    }
    int64_t *copy = tg__arena_i64(T, idx, n);
    return copy ? index_add_record(T, src, axis, size, copy, n) : NULL;
}

/* ---- scatter_add (the adjoint of gather): p.i = {axis, rank}, aux = y's shape
 * and the index (src's shape) ---- */

static enum tg_status scatter_add_shape(struct tg_tensor *out)
{
    const struct tg_tensor *src = out->in[0];
    const struct gather_aux *g = out->aux;
    int rank = (int)out->p.i[1], axis;
    char ss[160], sy[160];
    if (rank != src->rank) {
        tg_tensor_format_shape(ss, sizeof ss, src->rank, src->shape);
        tg_tensor_format_shape(sy, sizeof sy, rank, g->shape);
        return tg__fail(TG_ERR_SHAPE, "scatter_add: src %s and shape %s differ in rank", ss, sy);
    }
    if (tg__norm_axis("scatter_add", (int)out->p.i[0], rank, rank, g->shape, &axis))
        return tg_last_status();
    for (int d = 0; d < rank; d++)
        if (d != axis && src->shape[d] > g->shape[d]) {
            tg_tensor_format_shape(ss, sizeof ss, src->rank, src->shape);
            tg_tensor_format_shape(sy, sizeof sy, rank, g->shape);
            return tg__fail(TG_ERR_SHAPE, "scatter_add: src %s exceeds shape %s on axis %d", ss, sy,
                            d);
        }
    for (int d = 0; d < rank; d++) out->shape[d] = g->shape[d];
    out->rank = (uint8_t)rank;
    int64_t dim = g->shape[axis];
    for (int64_t k = 0; k < src->numel; k++)
        if (g->idx[k] < 0 || g->idx[k] >= dim) {
            tg_tensor_format_shape(sy, sizeof sy, rank, g->shape);
            return tg__fail(TG_ERR_RANGE,
                            "scatter_add: index %lld at position %lld is out of range for axis "
                            "%d of %s",
                            (long long)g->idx[k], (long long)k, axis, sy);
        }
    return TG_OK;
}

/* Element f (multi-index i) of src meets y at sum_{d != axis} i_d * ys[d] +
 * idx[f] * ys[axis]: y = 0; y[..] += src[f] (fwd); dsrc[f] += dy[..] (bwd). */
#define SCATTER_ADD_KERNELS(T)                                                                     \
    static void scatter_add_run_##T(struct tg_tensor *out, bool fwd)                               \
    {                                                                                              \
        const struct tg_tensor *src = out->in[0];                                                  \
        const struct gather_aux *g = out->aux;                                                     \
        int axis = tg__axis_of(out);                                                               \
        int64_t st[TG_MAX_DIM];                                                                    \
        tg__strides(out->rank, out->shape, st);                                                    \
        int64_t sa = st[axis];                                                                     \
        st[axis] = 0;                                                                              \
        T *y = fwd ? out->data : out->grad;                                                        \
        T *x = fwd ? src->data : src->grad; /* src's shape */                                      \
        struct tg_walk w;                                                                          \
        tg__walk_init(&w, src->rank, src->shape, st, 0);                                           \
        for (int64_t r = 0; r < w.rows; r++, tg__walk_next(&w))                                    \
            for (int64_t j = 0, f = r * w.n; j < w.n; j++, f++) {                                  \
                T *yp = y + w.off + j * w.rs + g->idx[f] * sa;                                     \
                if (fwd)                                                                           \
                    *yp += x[f];                                                                   \
                else                                                                               \
                    x[f] += *yp;                                                                   \
            }                                                                                      \
    }
SCATTER_ADD_KERNELS(float)
SCATTER_ADD_KERNELS(double)

static void scatter_add_fwd(struct tg_tensor *out)
{
    memset(out->data, 0, (size_t)out->numel * tg__esize(out->dtype));
    if (out->in[0]->numel == 0) return;
    if (out->dtype == TG_F64)
        scatter_add_run_double(out, true);
    else
        scatter_add_run_float(out, true);
}
static void scatter_add_bwd(struct tg_tensor *out)
{
    if (!out->in[0]->requires_grad || out->in[0]->numel == 0) return;
    if (out->dtype == TG_F64)
        scatter_add_run_double(out, false);
    else
        scatter_add_run_float(out, false);
}

/* dsrc = gather(dy) at the same positions */
static enum tg_status scatter_add_vjp(struct tg_tape *T, struct tg_tensor *out,
                                      struct tg_tensor *dy, const bool *need, struct tg_tensor **dx)
{
    const struct tg_tensor *src = out->in[0];
    const struct gather_aux *g = out->aux;
    if (!need[0]) return TG_OK;
    struct gather_aux *ga = tg__tape_alloc(T, sizeof *ga);
    if (!ga) return tg__vjp_failure();
    for (int d = 0; d < src->rank; d++) ga->shape[d] = src->shape[d];
    ga->idx = g->idx;
    dx[0] = gather_record(T, dy, tg__axis_of(out), src->rank, ga);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_scatter_add = {
    .op = TG_OP_SCATTER_ADD,
    .name = "scatter_add",
    .arity = 1,
    .formula = "y = 0; y[i with i_axis replaced by idx[i]] += src[i] (torch.scatter_add)",
    .vjp = "dsrc[i] += dy[i with i_axis replaced by idx[i]] (a gather)",
    .shape = scatter_add_shape,
    .forward = scatter_add_fwd,
    .backward = scatter_add_bwd,
    .params = tg__axis_param,
    .vjp_graph = scatter_add_vjp,
    .operands = "src -> y"};

/* idx already in the arena (numel(src) values); shape copied */
static struct tg_tensor *scatter_add_record(struct tg_tape *T, struct tg_tensor *src, int axis,
                                            int rank, const int64_t *shape, int64_t *idx)
{
    struct gather_aux *g = T ? tg__tape_alloc(T, sizeof *g) : NULL;
    if (T && !g) return NULL;
    if (g) {
        for (int d = 0; d < rank && d < TG_MAX_DIM; d++) g->shape[d] = shape[d];
        g->idx = idx;
    }
    union tg_params p = {.i = {axis, rank}};
    return tg__op_record(T, &tg_op_desc_scatter_add, 1, &src, &p, g);
}

struct tg_tensor *tg_scatter_add(struct tg_tape *T, struct tg_tensor *src, int axis, int rank,
                                 const int64_t *shape, const int64_t *index)
{
    if (!T || !src) return missing(T, &tg_op_desc_scatter_add, src);
    int64_t numel;
    if (rank < 0 || rank > TG_MAX_DIM) {
        tg__fail(TG_ERR_RANGE, "scatter_add: rank %d is outside 0..%d", rank, TG_MAX_DIM);
        return NULL;
    }
    if (rank > 0 && !shape) {
        tg__fail(TG_ERR_NULL, "scatter_add: shape is NULL");
        return NULL;
    }
    if (tg__check_shape("scatter_add", rank, shape, sizeof(double), &numel) ||
        tg__check_input(T, "scatter_add", src))
        return NULL;
    if (src->numel > 0 && !index) {
        tg__fail(TG_ERR_NULL, "scatter_add: index is NULL");
        return NULL;
    }
    int64_t *idx = tg__arena_i64(T, index, src->numel);
    return idx ? scatter_add_record(T, src, axis, rank, shape, idx) : NULL;
}
