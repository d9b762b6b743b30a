/*
 * ops/reduce_axis.c - reductions along a list of axes: sum, mean, max, min,
 * logsumexp, var (with keepdim), and argmax/argmin (indices, no gradient).
 *
 * The constructor turns the axis list into a bit mask and allocates, in the
 * tape's arena, the per-slice state that forward fills and backward reads
 * (double accumulators, the arg-max positions): `struct red_aux`, the op's aux.
 *
 * One walk serves every axis pattern: x is read once in row-major order, as
 * rows of its last (merged) axis, while an odometer tracks the offset of the
 * output element each row belongs to. Adjacent axes of the same kind (reduced or
 * kept) are merged and size-1 axes dropped first, so the walk has few levels.
 * When the reduced axes are the trailing ones (the common reduction of a
 * contiguous last axis), every row is one whole slice and the reduction runs in
 * a local accumulator over contiguous memory: the fast path. When the last axis
 * is kept (e.g. summing a (B,C) batch over B), the inner loop adds a row of x into
 * a row of accumulators, also contiguous. Accumulation is in double for f32.
 */
#include <stdio.h>
#include "ops-impl.h"

enum red_kind { R_SUM, R_MEAN, R_MAX, R_MIN, R_LSE, R_VAR, R_ARGMAX, R_ARGMIN };

/* The walk over x: merged axes, each with the stride of the output offset
 * (0 along reduced axes); x is read as `rows` rows of `n` contiguous elements. */
struct walk {
    int rank;
    int64_t shape[TG_MAX_DIM], ost[TG_MAX_DIM], idx[TG_MAX_DIM];
    int64_t n, rows, ost_n; /* row length, row count, output stride along a row */
    int64_t o;              /* output offset of the current row */
};

struct red_aux {
    enum red_kind kind;
    uint32_t mask; /* bit d set: axis d of x is reduced */
    bool keepdim;
    double correction; /* var only */
    int64_t n_red;     /* N: elements of x per output element */
    int64_t n_out;
    double *acc;  /* (n_out) sum, mean, max/min, or the final logsumexp */
    double *acc2; /* (n_out) sum of exp(x - m) (lse), of squares (var); or NULL */
    int64_t *arg; /* (n_out) flat index into x of the max/min; or NULL */
    struct walk walk;
};

static inline void walk_next(struct walk *w)
{
    for (int d = w->rank - 2; d >= 0; d--) {
        w->o += w->ost[d];
        if (++w->idx[d] < w->shape[d]) return;
        w->o -= w->ost[d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* Builds the merged walk of x for a mask. An empty x has nothing to walk (and
 * merging its other axes could overflow: (0, 1e12, 1e12) reduced over the last
 * two). */
static void walk_init(struct walk *w, const struct tg_tensor *x, uint32_t mask)
{
    if (x->numel == 0) {
        *w = (struct walk){.rank = 0, .n = 1, .rows = 0};
        return;
    }
    bool red[TG_MAX_DIM];
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        bool rd = (mask >> d) & 1;
        if (x->shape[d] == 1) continue;
        if (r > 0 && red[r - 1] == rd) {
            w->shape[r - 1] *= x->shape[d];
            continue;
        }
        red[r] = rd;
        w->shape[r++] = x->shape[d];
    }
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        w->ost[d] = red[d] ? 0 : s;
        if (!red[d]) s *= w->shape[d];
        w->idx[d] = 0;
    }
    w->rank = r;
    w->n = r ? w->shape[r - 1] : 1;
    w->ost_n = r ? w->ost[r - 1] : 0;
    w->rows = (x->numel == 0) ? 0 : x->numel / w->n;
    w->o = 0;
}

/* ---- the passes over x ----
 * Each pass is written once, reading x through tg__load with a dtype argument;
 * always_inline and the constant dtype of its two call sites make the compiler
 * emit one loop per dtype with plain float or double loads (no per-element
 * dispatch). Accumulators are double for both dtypes. */
#define KERNEL static inline __attribute__((always_inline))

/* acc[o] += x: sums (sum, mean, var's mean) */
KERNEL void pass_sum_k(struct walk w, const void *x, int dt, double *acc)
{
    for (int64_t r = 0; r < w.rows; r++, walk_next(&w)) {
        int64_t row = r * w.n;
        if (w.ost_n == 0) { /* the row is (part of) one slice: the fast path */
            double s = 0;
            for (int64_t j = 0; j < w.n; j++) s += tg__load(x, dt, row + j);
            acc[w.o] += s;
        } else {
            for (int64_t j = 0; j < w.n; j++) acc[w.o + j] += tg__load(x, dt, row + j);
        }
    }
}

/* acc[o] = sign * max(sign * x) and arg[o] its first flat index; a NaN wins */
KERNEL void pass_ext_k(struct walk w, const void *x, int dt, double *acc, int64_t *arg, double sign)
{
    for (int64_t r = 0; r < w.rows; r++, walk_next(&w)) {
        for (int64_t j = 0; j < w.n; j++) {
            int64_t o = w.o + j * w.ost_n;
            double v = sign * tg__load(x, dt, r * w.n + j), best = acc[o];
            if (arg[o] < 0 || v > best || (v != v && best == best)) {
                acc[o] = v;
                arg[o] = r * w.n + j;
            }
        }
    }
}

/* acc2[o] += exp(x - m[o]) (lse) or (x - m[o])^2 (var) */
KERNEL void pass_second_k(struct walk w, const void *x, int dt, const double *m, double *acc2,
                          bool square)
{
    for (int64_t r = 0; r < w.rows; r++, walk_next(&w)) {
        for (int64_t j = 0; j < w.n; j++) {
            int64_t o = w.o + j * w.ost_n;
            double d = tg__load(x, dt, r * w.n + j) - m[o];
            acc2[o] += square ? d * d : exp(d);
        }
    }
}

/* dx += dy[o] * c(x, o): sum, mean (c = scale), lse (exp(x - y)), var
 * (scale (x - mean)); the product is rounded to the dtype before the add, as
 * a float += float would. */
KERNEL void backward_walk_k(struct walk w, const struct red_aux *ra, const void *x, const void *g,
                            void *gx, int dt, double scale)
{
    for (int64_t r = 0; r < w.rows; r++, walk_next(&w)) {
        for (int64_t j = 0; j < w.n; j++) {
            int64_t o = w.o + j * w.ost_n, i = r * w.n + j;
            double c = scale;
            if (ra->kind == R_LSE) c = exp(tg__load(x, dt, i) - ra->acc[o]);
            if (ra->kind == R_VAR) c = scale * (tg__load(x, dt, i) - ra->acc[o]);
            double add = tg__load(g, dt, o) * c;
            if (dt == TG_F32) add = (float)add;
            tg__store(gx, dt, i, tg__load(gx, dt, i) + add);
        }
    }
}

/* Per-dtype instances of the passes. */
static void pass_sum(const struct tg_tensor *x, const struct red_aux *ra)
{
    if (x->dtype == TG_F64)
        pass_sum_k(ra->walk, x->data, TG_F64, ra->acc);
    else
        pass_sum_k(ra->walk, x->data, TG_F32, ra->acc);
}
static void pass_ext(const struct tg_tensor *x, const struct red_aux *ra, double sign)
{
    for (int64_t o = 0; o < ra->n_out; o++) ra->arg[o] = -1;
    if (x->dtype == TG_F64)
        pass_ext_k(ra->walk, x->data, TG_F64, ra->acc, ra->arg, sign);
    else
        pass_ext_k(ra->walk, x->data, TG_F32, ra->acc, ra->arg, sign);
    for (int64_t o = 0; o < ra->n_out; o++) ra->acc[o] *= sign;
}
static void pass_second(const struct tg_tensor *x, const struct red_aux *ra, bool square)
{
    if (x->dtype == TG_F64)
        pass_second_k(ra->walk, x->data, TG_F64, ra->acc, ra->acc2, square);
    else
        pass_second_k(ra->walk, x->data, TG_F32, ra->acc, ra->acc2, square);
}
static void backward_walk(struct tg_tensor *out, const struct red_aux *ra, double scale)
{
    const struct tg_tensor *x = out->in[0];
    if (x->dtype == TG_F64)
        backward_walk_k(ra->walk, ra, x->data, out->grad, x->grad, TG_F64, scale);
    else
        backward_walk_k(ra->walk, ra, x->data, out->grad, x->grad, TG_F32, scale);
}

/* The position of flat index i of x within its slice (row-major over the
 * reduced axes). */
static int64_t slice_index(const struct tg_tensor *x, uint32_t mask, int64_t i)
{
    int64_t r = 0, mult = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        int64_t c = i % x->shape[d];
        i /= x->shape[d];
        if ((mask >> d) & 1) {
            r += c * mult;
            mult *= x->shape[d];
        }
    }
    return r;
}

/* Fills ra->acc (and acc2, arg) with the kind's statistic and writes out. */
static void reduce_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    struct red_aux *ra = out->aux;
    int64_t n = ra->n_out;
    memset(ra->acc, 0, (size_t)n * sizeof *ra->acc);
    if (ra->acc2) memset(ra->acc2, 0, (size_t)n * sizeof *ra->acc2);
    switch (ra->kind) {
    case R_SUM:
    case R_MEAN:
    case R_VAR:
        pass_sum(x, ra);
        if (ra->kind != R_SUM)
            for (int64_t o = 0; o < n; o++) ra->acc[o] /= (double)ra->n_red;
        if (ra->kind == R_VAR) pass_second(x, ra, true);
        break;
    case R_MAX:
    case R_ARGMAX:
    case R_LSE:
        pass_ext(x, ra, 1.0);
        break;
    case R_MIN:
    case R_ARGMIN:
        pass_ext(x, ra, -1.0);
        break;
    }
    if (ra->kind == R_LSE) { /* lse = m + log(sum(exp(x - m))), m = 0 when infinite */
        for (int64_t o = 0; o < n; o++)
            if (isinf(ra->acc[o]) || ra->n_red == 0) ra->acc[o] = 0;
        pass_second(x, ra, false);
        for (int64_t o = 0; o < n; o++) ra->acc[o] += log(ra->acc2[o]);
    }
    for (int64_t o = 0; o < n; o++) {
        double v = ra->acc[o];
        if (ra->kind == R_VAR) v = ra->acc2[o] / ((double)ra->n_red - ra->correction);
        if (ra->kind == R_ARGMAX || ra->kind == R_ARGMIN)
            v = (double)slice_index(x, ra->mask, ra->arg[o]);
        tg__store(out->data, out->dtype, o, v);
    }
}

/* sum: dx += dy; mean: dx += dy / N; max/min: dx[arg] += dy;
 * lse: dx += dy exp(x - y); var: dx += dy 2 (x - mean) / (N - c); arg*: nothing. */
static void reduce_bwd(struct tg_tensor *out)
{
    struct tg_tensor *x = out->in[0];
    const struct red_aux *ra = out->aux;
    if (!x->requires_grad || ra->kind == R_ARGMAX || ra->kind == R_ARGMIN) return;
    if (ra->kind == R_MAX || ra->kind == R_MIN) {
        for (int64_t o = 0; o < ra->n_out; o++) {
            double g = tg__load(out->grad, out->dtype, o);
            int64_t i = ra->arg[o];
            tg__store(x->grad, x->dtype, i, tg__load(x->grad, x->dtype, i) + g);
        }
        return;
    }
    double scale = 1.0;
    if (ra->kind == R_MEAN) scale = 1.0 / (double)ra->n_red;
    if (ra->kind == R_VAR) scale = 2.0 / ((double)ra->n_red - ra->correction);
    backward_walk(out, ra, scale);
}

/* The differentiable VJP, with g = dy with the reduced axes kept (size 1):
 * sum: dx = g broadcast to x's shape; mean: the same of g / N;
 * max/min: dy added at the flat positions that forward chose (ra->arg, the
 * first at a tie, the first NaN), through index_add: exactly the elements that
 * the kernel's backward feeds; logsumexp: dx = g exp(x - y);
 * var: dx = g (x - mean_S(x)) 2 / (N - c); argmax/argmin: none (NULL). */
static enum tg_status reduce_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    struct tg_tensor *x = out->in[0];
    const struct red_aux *ra = out->aux;
    if (!need[0]) return TG_OK;
    if (ra->kind == R_ARGMAX || ra->kind == R_ARGMIN) {
        dx[0] = NULL;
        return TG_OK;
    }
    if (ra->kind == R_MAX || ra->kind == R_MIN) {
        int64_t n_out = ra->n_out;
        struct tg_tensor *flat = tg_reshape(T, dy, 1, &n_out);
        dx[0] =
            tg_reshape(T, tg_index_add(T, flat, 0, x->numel, ra->arg, n_out), x->rank, x->shape);
        return dx[0] ? TG_OK : tg__vjp_failure();
    }
    int64_t ks[TG_MAX_DIM];
    int axes[TG_MAX_DIM], na = 0;
    for (int d = 0; d < x->rank; d++) {
        bool rd = (ra->mask >> d) & 1;
        ks[d] = rd ? 1 : x->shape[d];
        if (rd) axes[na++] = d;
    }
    struct tg_tensor *g = ra->keepdim ? dy : tg_reshape(T, dy, x->rank, ks);
    switch (ra->kind) {
    case R_SUM:
        dx[0] = tg_broadcast_to(T, g, x->rank, x->shape);
        break;
    case R_MEAN:
        dx[0] = tg_broadcast_to(T, tg_mul_scalar(T, g, 1.0 / (double)ra->n_red), x->rank, x->shape);
        break;
    case R_LSE: {
        struct tg_tensor *y = ra->keepdim ? out : tg_reshape(T, out, x->rank, ks);
        dx[0] = tg_mul(T, g, tg_exp(T, tg_sub(T, x, y)));
        break;
    }
    default: { /* R_VAR */
        struct tg_tensor *m = tg_mean_axes(T, x, axes, na, true);
        double scale = 2.0 / ((double)ra->n_red - ra->correction);
        dx[0] = tg_mul(T, g, tg_mul_scalar(T, tg_sub(T, x, m), scale));
    }
    }
    return dx[0] ? TG_OK : tg__vjp_failure();
}

/* Fails with "<fn>: <what> for shape (x's shape)<rest>"; the shape is formatted
 * only here, on failure. */
static enum tg_status fail_on(enum tg_status st, const char *fn, const struct tg_tensor *x,
                              const char *what, const char *rest)
{
    char s[160];
    tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
    return tg__fail(st, "%s: %s%s%s", fn, what, s, rest);
}

/* Output shape, empty-slice checks, the walk. */
static enum tg_status reduce_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    struct red_aux *ra = out->aux;
    const char *fn = out->desc->name;
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        bool rd = (ra->mask >> d) & 1;
        if (!rd || ra->keepdim) out->shape[r++] = rd ? 1 : x->shape[d];
    }
    out->rank = (uint8_t)r;
    bool need_elem = ra->kind != R_SUM && ra->kind != R_LSE;
    if (ra->n_out > 0 && need_elem && ra->n_red == 0)
        return fail_on(TG_ERR_SHAPE, fn, x, "the reduced axes of shape ", " hold no element");
    if (ra->n_out > 0 && ra->kind == R_VAR && (double)ra->n_red - ra->correction <= 0) {
        char what[96], rest[96];
        snprintf(what, sizeof what, "%lld element(s) per slice of shape ", (long long)ra->n_red);
        snprintf(rest, sizeof rest, ", correction %g leaves no degree of freedom", ra->correction);
        return fail_on(TG_ERR_SHAPE, fn, x, what, rest);
    }
    walk_init(&ra->walk, x, ra->mask);
    return TG_OK;
}

/* The bit mask of the axes list, or an error naming fn and x's shape. */
static enum tg_status axis_mask(const char *fn, const struct tg_tensor *x, const int *axes,
                                int n_axes, uint32_t *mask)
{
    int raw[TG_MAX_DIM] = {0};
    if (n_axes < 0) return tg__fail(TG_ERR_RANGE, "%s: n_axes is %d (must be >= 0)", fn, n_axes);
    if (n_axes > 0 && !axes) return tg__fail(TG_ERR_NULL, "%s: axes is NULL", fn);
    *mask = n_axes == 0 ? (uint32_t)((1u << x->rank) - 1) : 0;
    for (int k = 0; k < n_axes; k++) {
        int a = axes[k], d = a < 0 ? a + x->rank : a;
        char what[64];
        if (d < 0 || d >= x->rank) {
            snprintf(what, sizeof what, "axis %d is out of range for shape ", a);
            return fail_on(TG_ERR_RANGE, fn, x, what, "");
        }
        if ((*mask >> d) & 1) {
            if (raw[d] == a)
                snprintf(what, sizeof what, "axis %d is listed twice for shape ", a);
            else
                snprintf(what, sizeof what, "axis %d repeats axis %d for shape ", a, raw[d]);
            return fail_on(TG_ERR_RANGE, fn, x, what, "");
        }
        raw[d] = a;
        *mask |= 1u << d;
    }
    return TG_OK;
}

/* The parameters: keepdim (0 or 1), the correction (var_axes only), then the
 * reduced axes in increasing order. */
static int reduce_params(const struct tg_tensor *out, double *vals)
{
    const struct red_aux *ra = out->aux;
    int n = 0;
    vals[n++] = ra->keepdim ? 1 : 0;
    if (ra->kind == R_VAR) vals[n++] = ra->correction;
    for (int d = 0; d < out->in[0]->rank; d++)
        if ((ra->mask >> d) & 1) vals[n++] = d;
    return n;
}

/* Builds the aux in T's arena and records the op. The result's size is checked
 * here, before the accumulators are sized from it: a tensor with no element
 * can still have kept axes whose sizes multiply past any memory. */
static struct tg_tensor *reduce(struct tg_tape *T, const struct tg_op_desc *desc,
                                enum red_kind kind, struct tg_tensor *x, const int *axes,
                                int n_axes, bool keepdim, double correction)
{
    if (!x || !T) return tg__op_record(T, desc, 1, &x, NULL, NULL); /* reports the NULL */
    if (tg__check_input(T, desc->name, x)) return NULL;
    uint32_t mask = 0;
    if (axis_mask(desc->name, x, axes, n_axes, &mask)) return NULL;
    int64_t kept[TG_MAX_DIM], n_out, n_red = 1;
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!((mask >> d) & 1))
            kept[r++] = x->shape[d];
        else if (__builtin_mul_overflow(n_red, x->shape[d], &n_red))
            n_red = INT64_MAX; /* only with a zero-size kept axis: no slice is visited */
    }
    if (tg__check_shape(desc->name, r, kept, sizeof(double), &n_out)) return NULL;
    struct red_aux *ra = tg__tape_alloc(T, sizeof *ra);
    if (!ra) return NULL;
    memset(ra, 0, sizeof *ra);
    ra->kind = kind;
    ra->mask = mask;
    ra->keepdim = keepdim;
    ra->correction = correction;
    ra->n_red = n_red;
    ra->n_out = n_out;
    size_t n = (size_t)n_out;
    bool two = kind == R_LSE || kind == R_VAR;
    bool arg =
        kind == R_MAX || kind == R_MIN || kind == R_LSE || kind == R_ARGMAX || kind == R_ARGMIN;
    if (!(ra->acc = tg__tape_alloc(T, n * sizeof(double)))) return NULL;
    if (two && !(ra->acc2 = tg__tape_alloc(T, n * sizeof(double)))) return NULL;
    if (arg && !(ra->arg = tg__tape_alloc(T, n * sizeof(int64_t)))) return NULL;
    return tg__op_record(T, desc, 1, &x, NULL, ra);
}

/* ---- the descriptors and the public constructors ---- */

const struct tg_op_desc tg_op_desc_sum_axes = {.op = TG_OP_SUM_AXES,
                                               .name = "sum_axes",
                                               .arity = 1,
                                               .formula = "y = sum_S x (S: the reduced axes)",
                                               .vjp = "dx += dy (broadcast)",
                                               .shape = reduce_shape,
                                               .forward = reduce_fwd,
                                               .backward = reduce_bwd,
                                               .params = reduce_params,
                                               .vjp_graph = reduce_vjp};
struct tg_tensor *tg_sum_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim)
{
    return reduce(T, &tg_op_desc_sum_axes, R_SUM, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_mean_axes = {.op = TG_OP_MEAN_AXES,
                                                .name = "mean_axes",
                                                .arity = 1,
                                                .formula = "y = (1/N) sum_S x",
                                                .vjp = "dx += dy / N",
                                                .shape = reduce_shape,
                                                .forward = reduce_fwd,
                                                .backward = reduce_bwd,
                                                .params = reduce_params,
                                                .vjp_graph = reduce_vjp};
struct tg_tensor *tg_mean_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                               bool keepdim)
{
    return reduce(T, &tg_op_desc_mean_axes, R_MEAN, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_max_axes = {.op = TG_OP_MAX_AXES,
                                               .name = "max_axes",
                                               .arity = 1,
                                               .formula = "y = max_S x",
                                               .vjp = "dx[argmax] += dy (first index at a tie)",
                                               .shape = reduce_shape,
                                               .forward = reduce_fwd,
                                               .backward = reduce_bwd,
                                               .params = reduce_params,
                                               .vjp_graph = reduce_vjp};
struct tg_tensor *tg_max_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim)
{
    return reduce(T, &tg_op_desc_max_axes, R_MAX, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_min_axes = {.op = TG_OP_MIN_AXES,
                                               .name = "min_axes",
                                               .arity = 1,
                                               .formula = "y = min_S x",
                                               .vjp = "dx[argmin] += dy (first index at a tie)",
                                               .shape = reduce_shape,
                                               .forward = reduce_fwd,
                                               .backward = reduce_bwd,
                                               .params = reduce_params,
                                               .vjp_graph = reduce_vjp};
struct tg_tensor *tg_min_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim)
{
    return reduce(T, &tg_op_desc_min_axes, R_MIN, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_logsumexp_axes = {
    .op = TG_OP_LOGSUMEXP_AXES,
    .name = "logsumexp_axes",
    .arity = 1,
    .formula = "y = m + log sum_S exp(x - m), m = max_S x",
    .vjp = "dx += dy * exp(x - y)",
    .shape = reduce_shape,
    .forward = reduce_fwd,
    .backward = reduce_bwd,
    .params = reduce_params,
    .vjp_graph = reduce_vjp};
struct tg_tensor *tg_logsumexp_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                    int n_axes, bool keepdim)
{
    return reduce(T, &tg_op_desc_logsumexp_axes, R_LSE, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_argmax_axes = {.op = TG_OP_ARGMAX_AXES,
                                                  .name = "argmax_axes",
                                                  .arity = 1,
                                                  .f64_output = true,
                                                  .formula =
                                                      "y = index of max_S x (f64, first at a tie)",
                                                  .vjp = "none: an index has no gradient",
                                                  .shape = reduce_shape,
                                                  .forward = reduce_fwd,
                                                  .backward = reduce_bwd,
                                                  .params = reduce_params,
                                                  .vjp_graph = reduce_vjp};
struct tg_tensor *tg_argmax_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                 int n_axes, bool keepdim)
{
    return reduce(T, &tg_op_desc_argmax_axes, R_ARGMAX, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_argmin_axes = {.op = TG_OP_ARGMIN_AXES,
                                                  .name = "argmin_axes",
                                                  .arity = 1,
                                                  .f64_output = true,
                                                  .formula =
                                                      "y = index of min_S x (f64, first at a tie)",
                                                  .vjp = "none: an index has no gradient",
                                                  .shape = reduce_shape,
                                                  .forward = reduce_fwd,
                                                  .backward = reduce_bwd,
                                                  .params = reduce_params,
                                                  .vjp_graph = reduce_vjp};
struct tg_tensor *tg_argmin_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                 int n_axes, bool keepdim)
{
    return reduce(T, &tg_op_desc_argmin_axes, R_ARGMIN, x, axes, n_axes, keepdim, 0.0);
}

const struct tg_op_desc tg_op_desc_var_axes = {.op = TG_OP_VAR_AXES,
                                               .name = "var_axes",
                                               .arity = 1,
                                               .formula = "y = sum_S (x - mean)^2 / (N - c)",
                                               .vjp = "dx += dy * 2 (x - mean) / (N - c)",
                                               .shape = reduce_shape,
                                               .forward = reduce_fwd,
                                               .backward = reduce_bwd,
                                               .params = reduce_params,
                                               .vjp_graph = reduce_vjp,
                                               .operands = "x -> y ; keepdim c"};
struct tg_tensor *tg_var_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              double correction, bool keepdim)
{
    if (!(correction >= 0) || isinf(correction)) {
        tg__fail(TG_ERR_VALUE, "var_axes: correction %g is not a finite number >= 0", correction);
        return NULL;
    }
    return reduce(T, &tg_op_desc_var_axes, R_VAR, x, axes, n_axes, keepdim, correction);
}
