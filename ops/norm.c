/*
 * ops/norm.c - batch_norm and layer_norm: normalization by group statistics.
 *
 * Both see x as (A, B, K) and normalize each group b (the A * K elements
 * (a, b, k), M of them) by its mean and variance:
 *     batch_norm (N, C, d...):  A = N, B = C, K = prod(d...)  (a group: a channel)
 *     layer_norm (.., last k):  A = 1, B = rows, K = prod(last k axes)
 * xhat = (x - mean_b) * rstd_b, rstd_b = 1 / sqrt(var_b + eps), and
 * y = xhat * w + bias with w and bias indexed by the channel b (batch_norm) or
 * by the position k within the normalized axes (layer_norm).
 *
 * The statistics are computed (in double) when the op is recorded and kept in
 * the node's aux, with the geometry, so that forward, backward and the
 * differentiable VJP all use the same ones: batch_norm checks them before it
 * records (a NaN batch statistic is an error) and in evaluation mode takes them
 * from the running buffers as they are at that moment. With group statistics,
 * the VJP of the normalization is
 *     dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   g = dy * w
 * (means over each group), and dx = rstd * g when the statistics are constants
 * (evaluation). Inputs: x, then weight and bias when given (aux says which).
 */
#include <stdio.h>
#include "ops-impl.h"

struct norm_aux {
    int64_t A, B, K;   /* the (A, B, K) view of x; groups along B */
    bool w_on_k;       /* weight/bias indexed by k (layer_norm), else by b */
    bool training;     /* statistics from x itself (always so for layer_norm) */
    bool has_w, has_b; /* inputs 1 and 2 (bias is input 1 without weight) */
    int k_axes;        /* layer_norm: the normalized trailing axes; batch_norm 0 */
    double eps, momentum;
    double *mean, *rstd; /* (B) */
};

static struct tg_tensor *weight_of(const struct tg_tensor *out)
{
    const struct norm_aux *a = out->aux;
    return a->has_w ? out->in[1] : NULL;
}
static struct tg_tensor *bias_of(const struct tg_tensor *out)
{
    const struct norm_aux *a = out->aux;
    return a->has_b ? out->in[a->has_w ? 2 : 1] : NULL;
}

/* TG_ERR_SHAPE / TG_ERR_DTYPE unless p (weight or bias, NULL allowed) has
 * (rank, shape) and x's dtype. */
static enum tg_status check_affine(const char *fn, const char *what, const struct tg_tensor *x,
                                   const struct tg_tensor *p, int rank, const int64_t *shape)
{
    if (!p) return TG_OK;
    bool same = p->rank == rank;
    for (int d = 0; same && d < rank; d++) same = p->shape[d] == shape[d];
    if (!same) {
        char sp[160], sx[160], sw[160];
        tg_tensor_format_shape(sp, sizeof sp, p->rank, p->shape);
        tg_tensor_format_shape(sx, sizeof sx, x->rank, x->shape);
        tg_tensor_format_shape(sw, sizeof sw, rank, shape);
        return tg__fail(TG_ERR_SHAPE, "%s: %s has shape %s, but x %s needs %s", fn, what, sp, sx,
                        sw);
    }
    if (p->dtype != x->dtype)
        return tg__fail(TG_ERR_DTYPE, "%s: %s is %s but x is %s", fn, what,
                        tg_dtype_name((enum tg_dtype)p->dtype),
                        tg_dtype_name((enum tg_dtype)x->dtype));
    return TG_OK;
}

/* x's rank is at least 2 (batch_norm needs a channel axis). */
static enum tg_status bn_check_x(const struct tg_tensor *x)
{
    if (x->rank >= 2) return TG_OK;
    char s[160];
    tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
    return tg__fail(TG_ERR_SHAPE, "batch_norm: x %s needs at least 2 axes (N, C, ...)", s);
}

/* 1 <= k <= rank of x and the normalized axes hold at least one element. */
static enum tg_status ln_check_x(const struct tg_tensor *x, int k)
{
    char s[160];
    tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
    if (k < 1 || k > x->rank)
        return tg__fail(TG_ERR_RANGE, "layer_norm: k = %d axes is outside 1..%d for x %s", k,
                        (int)x->rank, s);
    for (int d = x->rank - k; d < x->rank; d++)
        if (x->shape[d] == 0)
            return tg__fail(TG_ERR_SHAPE, "layer_norm: x %s has no element to normalize over", s);
    return TG_OK;
}

/* The (A, B, K) view of x for batch_norm (k_axes 0) or layer_norm. */
static void view_of(const struct tg_tensor *x, int k_axes, struct norm_aux *a)
{
    int first = k_axes ? x->rank - k_axes : 2; /* first axis of K */
    a->A = k_axes ? 1 : x->shape[0];
    a->B = 1;
    a->K = 1;
    for (int d = k_axes ? 0 : 1; d < first; d++) a->B *= x->shape[d];
    for (int d = first; d < x->rank; d++) a->K *= x->shape[d];
    a->w_on_k = k_axes > 0;
    a->k_axes = k_axes;
}

/* The shape rule of both: checks x, weight and bias; y has x's shape. */
static enum tg_status norm_shape(struct tg_tensor *out)
{
    const struct norm_aux *a = out->aux;
    const struct tg_tensor *x = out->in[0];
    const char *fn = out->desc->name;
    enum tg_status st = a->k_axes ? ln_check_x(x, a->k_axes) : bn_check_x(x);
    if (st) return st;
    int rank = a->k_axes ? a->k_axes : 1;
    const int64_t *shape = a->k_axes ? x->shape + x->rank - a->k_axes : x->shape + 1;
    if ((st = check_affine(fn, "weight", x, weight_of(out), rank, shape)) ||
        (st = check_affine(fn, "bias", x, bias_of(out), rank, shape)))
        return st;
    return tg__shape_same(out);
}

/* mean and biased variance of every group of x (A, B, K), in double. */
static void group_stats(const struct tg_tensor *x, const struct norm_aux *a, double *mean,
                        double *var)
{
    double M = (double)(a->A * a->K);
    for (int64_t b = 0; b < a->B; b++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < a->A; i++)
            for (int64_t k = 0; k < a->K; k++)
                s += tg__load(x->data, x->dtype, (i * a->B + b) * a->K + k);
        double m = s / M;
        for (int64_t i = 0; i < a->A; i++)
            for (int64_t k = 0; k < a->K; k++) {
                double d = tg__load(x->data, x->dtype, (i * a->B + b) * a->K + k) - m;
                q += d * d;
            }
        mean[b] = m;
        var[b] = q / M;
    }
}

#define NORM_KERNELS(T)                                                                            \
    /* y = (x - mean_b) * rstd_b * w + bias */                                                     \
    static void norm_fwd_##T(struct tg_tensor *out)                                                \
    {                                                                                              \
        const struct norm_aux *a = out->aux;                                                       \
        const T *x = out->in[0]->data; /* (A, B, K) */                                             \
        const struct tg_tensor *W = weight_of(out), *Bs = bias_of(out);                            \
        const T *w = W ? W->data : NULL;      /* (B) or (K) */                                     \
        const T *bias = Bs ? Bs->data : NULL; /* (B) or (K) */                                     \
        T *y = out->data;                     /* (A, B, K) */                                      \
        for (int64_t i = 0; i < a->A; i++)                                                         \
            for (int64_t b = 0; b < a->B; b++)                                                     \
                for (int64_t k = 0; k < a->K; k++) {                                               \
                    int64_t j = (i * a->B + b) * a->K + k, p = a->w_on_k ? k : b;                  \
                    double v = ((double)x[j] - a->mean[b]) * a->rstd[b];                           \
                    y[j] = (T)(v * (w ? w[p] : 1) + (bias ? bias[p] : 0));                         \
                }                                                                                  \
    }                                                                                              \
    /* g = dy * w; training: dx += rstd (g - mean(g) - xhat mean(g xhat)); evaluation:             \
     * dx += rstd g; dw += dy xhat; dbias += dy (sums over what the parameter is shared by) */     \
    static void norm_bwd_##T(struct tg_tensor *out)                                                \
    {                                                                                              \
        const struct norm_aux *a = out->aux;                                                       \
        struct tg_tensor *X = out->in[0], *W = weight_of(out), *Bs = bias_of(out);                 \
        const T *x = X->data, *dy = out->grad, *w = W ? W->data : NULL;                            \
        T *dx = X->requires_grad ? X->grad : NULL;                                                 \
        T *dw = W && W->requires_grad ? W->grad : NULL;                                            \
        T *db = Bs && Bs->requires_grad ? Bs->grad : NULL;                                         \
        double M = (double)(a->A * a->K);                                                          \
        for (int64_t b = 0; b < a->B; b++) {                                                       \
            double mu = a->mean[b], r = a->rstd[b], sg = 0, sgx = 0;                               \
            for (int64_t i = 0; i < a->A; i++)                                                     \
                for (int64_t k = 0; k < a->K; k++) {                                               \
                    int64_t j = (i * a->B + b) * a->K + k, p = a->w_on_k ? k : b;                  \
                    double xh = ((double)x[j] - mu) * r, g = (double)dy[j] * (w ? w[p] : 1);       \
                    sg += g;                                                                       \
                    sgx += g * xh;                                                                 \
                    if (dw) dw[p] += (T)((double)dy[j] * xh);                                      \
                    if (db) db[p] += dy[j];                                                        \
                }                                                                                  \
            if (!dx) continue;                                                                     \
            double mg = a->training ? sg / M : 0, mgx = a->training ? sgx / M : 0;                 \
            for (int64_t i = 0; i < a->A; i++)                                                     \
                for (int64_t k = 0; k < a->K; k++) {                                               \
                    int64_t j = (i * a->B + b) * a->K + k, p = a->w_on_k ? k : b;                  \
                    double xh = ((double)x[j] - mu) * r, g = (double)dy[j] * (w ? w[p] : 1);       \
                    dx[j] += (T)(r * (g - mg - xh * mgx));                                         \
                }                                                                                  \
        }                                                                                          \
    }

NORM_KERNELS(float)
NORM_KERNELS(double)
TG__DTYPE_DISPATCH(norm)

static int batch_norm_params(const struct tg_tensor *out, double *vals)
{
    const struct norm_aux *a = out->aux;
    vals[0] = a->training;
    vals[1] = a->momentum;
    vals[2] = a->eps;
    return 3;
}
static int layer_norm_params(const struct tg_tensor *out, double *vals)
{
    const struct norm_aux *a = out->aux;
    vals[0] = a->k_axes;
    vals[1] = a->eps;
    return 2;
}

/* The reduced axes of x: every axis but 1 (batch_norm) or the last k. */
static int reduced_axes(const struct tg_tensor *x, const struct norm_aux *a, int *axes)
{
    int n = 0;
    for (int d = 0; d < x->rank; d++)
        if (a->k_axes ? d >= x->rank - a->k_axes : d != 1) axes[n++] = d;
    return n;
}

/* A statistic per group as a tape constant that broadcasts against x: (C, 1, ..)
 * for batch_norm, (rows.., 1, ..) for layer_norm. */
static struct tg_tensor *stat_const(struct tg_tape *T, const struct tg_tensor *x,
                                    const struct norm_aux *a, const double *v)
{
    int64_t shape[TG_MAX_DIM];
    for (int d = 0; d < x->rank; d++) {
        bool reduced = a->k_axes ? d >= x->rank - a->k_axes : d != 1;
        shape[d] = reduced ? 1 : x->shape[d];
    }
    struct tg_tensor *c = tg__vjp_const(T, x->dtype, x->rank, shape);
    for (int64_t b = 0; c && b < a->B; b++) tg__store(c->data, c->dtype, b, v[b]);
    return c;
}

/* xhat recorded from x: (x - mean) * rstd with the group statistics recorded as
 * ops of x (training), or the node's constants (evaluation). *r gets rstd. */
static struct tg_tensor *xhat_graph(struct tg_tape *T, struct tg_tensor *x,
                                    const struct norm_aux *a, const int *axes, int n,
                                    struct tg_tensor **r)
{
    if (!a->training) {
        *r = stat_const(T, x, a, a->rstd);
        return tg_mul(T, tg_sub(T, x, stat_const(T, x, a, a->mean)), *r);
    }
    struct tg_tensor *xc = tg_sub(T, x, tg_mean_axes(T, x, axes, n, true));
    struct tg_tensor *var = tg_mean_axes(T, tg_mul(T, xc, xc), axes, n, true);
    *r = tg_pow_scalar(T, tg_add_scalar(T, var, a->eps), -0.5);
    return tg_mul(T, xc, *r);
}

/* A gradient of x's shape summed down to a weight's shape. */
static struct tg_tensor *param_grad(struct tg_tape *T, struct tg_tensor *g,
                                    const struct tg_tensor *p, const struct norm_aux *a,
                                    const int *axes, int n)
{
    if (a->k_axes) return tg__sum_to(T, g, p->rank, p->shape);
    return tg_sum_axes(T, g, axes, n, false);
}

/* The differentiable VJP: the formulas of the header comment, recorded. */
static enum tg_status norm_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                               const bool *need, struct tg_tensor **dx)
{
    const struct norm_aux *a = out->aux;
    struct tg_tensor *x = out->in[0], *W = weight_of(out), *Bs = bias_of(out), *r = NULL;
    int axes[TG_MAX_DIM], n = reduced_axes(x, a, axes);
    int iw = 1, ib = a->has_w ? 2 : 1;
    bool want_w = W && need[iw], want_b = Bs && need[ib];
    if (!need[0] && !want_w && !want_b) return TG_OK;
    struct tg_tensor *xh = xhat_graph(T, x, a, axes, n, &r);
    if (want_w && !(dx[iw] = param_grad(T, tg_mul(T, dy, xh), W, a, axes, n)))
        return tg__vjp_failure();
    if (want_b && !(dx[ib] = param_grad(T, dy, Bs, a, axes, n))) return tg__vjp_failure();
    if (!need[0]) return TG_OK;
    struct tg_tensor *g = dy;
    if (W) {
        struct tg_tensor *wb = W;
        if (!a->k_axes) { /* (C) -> (C, 1, ..): broadcasts along axis 1 */
            int64_t s[TG_MAX_DIM];
            for (int d = 1; d < x->rank; d++) s[d - 1] = d == 1 ? W->shape[0] : 1;
            wb = tg_reshape(T, W, x->rank - 1, s);
        }
        g = tg_mul(T, dy, wb);
    }
    if (a->training)
        g = tg_sub(T, tg_sub(T, g, tg_mean_axes(T, g, axes, n, true)),
                   tg_mul(T, xh, tg_mean_axes(T, tg_mul(T, g, xh), axes, n, true)));
    dx[0] = tg_mul(T, g, r);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_batch_norm = {
    .op = TG_OP_BATCH_NORM,
    .name = "batch_norm",
    .arity = -1,
    .formula = "y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c, statistics over all axes but 1",
    .vjp = "dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w (training; rstd g in "
           "evaluation); dw += sum dy xhat; db += sum dy",
    .shape = norm_shape,
    .forward = norm_fwd,
    .backward = norm_bwd,
    .params = batch_norm_params,
    .vjp_graph = norm_vjp};

const struct tg_op_desc tg_op_desc_layer_norm = {
    .op = TG_OP_LAYER_NORM,
    .name = "layer_norm",
    .arity = -1,
    .formula = "y = (x - mean) / sqrt(var + eps) * w + b, statistics over the last k axes",
    .vjp = "dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w; dw += sum dy xhat; "
           "db += sum dy",
    .shape = norm_shape,
    .forward = norm_fwd,
    .backward = norm_bwd,
    .params = layer_norm_params,
    .vjp_graph = norm_vjp};

/* Records the op with inputs x, weight, bias (those given). */
static struct tg_tensor *norm_record(struct tg_tape *T, const struct tg_op_desc *d,
                                     struct tg_tensor *x, struct tg_tensor *w, struct tg_tensor *b,
                                     struct norm_aux *a)
{
    struct tg_tensor *in[3] = {x, NULL, NULL};
    int n = 1;
    a->has_w = w != NULL;
    a->has_b = b != NULL;
    if (w) in[n++] = w;
    if (b) in[n++] = b;
    return tg__op_record(T, d, n, in, NULL, a);
}

/* The aux with room for its (B) statistics, in T's arena; NULL with the status set. */
static struct norm_aux *new_aux(struct tg_tape *T, const struct tg_tensor *x, int k_axes)
{
    struct norm_aux *a = tg__tape_alloc(T, sizeof *a);
    if (!a) return NULL;
    *a = (struct norm_aux){0};
    view_of(x, k_axes, a);
    size_t nb = (size_t)(a->B ? a->B : 1) * sizeof(double);
    a->mean = tg__tape_alloc(T, nb);
    a->rstd = tg__tape_alloc(T, nb);
    return a->mean && a->rstd ? a : NULL;
}

static bool bad_eps(const char *fn, double eps)
{
    if (eps > 0 && isfinite(eps)) return false;
    tg__fail(TG_ERR_VALUE, "%s: eps = %g must be positive and finite", fn, eps);
    return true;
}

struct tg_tensor *tg_layer_norm(struct tg_tape *T, struct tg_tensor *x, int k,
                                struct tg_tensor *weight, struct tg_tensor *bias, double eps)
{
    struct norm_aux probe = {.k_axes = 1};
    if (!T || !x) return norm_record(T, &tg_op_desc_layer_norm, x, weight, bias, &probe);
    if (tg__check_input(T, "layer_norm", x) || ln_check_x(x, k) || bad_eps("layer_norm", eps))
        return NULL;
    struct norm_aux *a = new_aux(T, x, k);
    if (!a) return NULL;
    a->training = true;
    a->eps = eps;
    group_stats(x, a, a->mean, a->rstd);
    for (int64_t b = 0; b < a->B; b++) a->rstd[b] = 1 / sqrt(a->rstd[b] + eps);
    return norm_record(T, &tg_op_desc_layer_norm, x, weight, bias, a);
}

/* ---- batch_norm's running statistics ---- */

/* TG_OK when t (named what) may be a running buffer: a leaf without gradient
 * of (rank, shape) (rank 0 for num_batches, any dtype) and, for the mean and
 * variance, x's dtype. */
static enum tg_status check_running(const char *what, const struct tg_tensor *t,
                                    const struct tg_tensor *x, bool is_count)
{
    if (t->kind != TG_KIND_LEAF)
        return tg__fail(TG_ERR_VALUE, "batch_norm: %s must be a leaf tensor (a buffer)", what);
    if (t->requires_grad)
        return tg__fail(TG_ERR_VALUE, "batch_norm: %s must not require grad", what);
    if (is_count) {
        if (t->rank == 0) return TG_OK;
        char s[160];
        tg_tensor_format_shape(s, sizeof s, t->rank, t->shape);
        return tg__fail(TG_ERR_SHAPE, "batch_norm: num_batches has shape %s, not ()", s);
    }
    return check_affine("batch_norm", what, x, t, 1, x->shape + 1);
}

static enum tg_status check_stats(const struct tg_batch_norm_stats *s, const struct tg_tensor *x,
                                  bool training)
{
    bool has_mean = s && s->mean, has_var = s && s->var;
    if (has_mean != has_var)
        return tg__fail(TG_ERR_NULL, "batch_norm: stats has the running %s but not the %s",
                        has_mean ? "mean" : "var", has_mean ? "var" : "mean");
    if (!has_mean) {
        if (!training)
            return tg__fail(TG_ERR_STATE, "batch_norm: evaluation mode needs the running "
                                          "statistics (running mean and var), which are NULL");
        if (s && s->num_batches)
            return tg__fail(TG_ERR_NULL, "batch_norm: stats has num_batches but no running mean "
                                         "and var");
        return TG_OK;
    }
    enum tg_status st;
    if ((st = check_running("running_mean", s->mean, x, false)) ||
        (st = check_running("running_var", s->var, x, false)) ||
        (s->num_batches && (st = check_running("num_batches", s->num_batches, x, true))))
        return st;
    if (!training && s->num_batches &&
        tg__load(s->num_batches->data, s->num_batches->dtype, 0) <= 0)
        return tg__fail(TG_ERR_STATE, "batch_norm: evaluation before any training statistics "
                                      "exist (num_batches is 0)");
    return TG_OK;
}

/* Training: the batch means of x into a->mean and its biased variances into
 * a->rstd, which the caller turns into rstd; TG_ERR_VALUE when a channel has
 * one value or a statistic is not finite. */
static enum tg_status batch_stats(const struct tg_tensor *x, struct norm_aux *a)
{
    if (a->A * a->K <= 1) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
        return tg__fail(TG_ERR_VALUE,
                        "batch_norm: expected more than 1 value per channel when training, "
                        "got x %s",
                        s);
    }
    group_stats(x, a, a->mean, a->rstd);
    for (int64_t b = 0; b < a->B; b++)
        if (!isfinite(a->mean[b]) || !isfinite(a->rstd[b]))
            return tg__fail(TG_ERR_VALUE,
                            "batch_norm: the batch statistics of channel %lld are not finite "
                            "(mean %g, var %g)",
                            (long long)b, a->mean[b], a->rstd[b]);
    return TG_OK;
}

/* running = (1 - m) running + m batch, the unbiased variance entering. */
static void update_running(const struct tg_batch_norm_stats *s, const struct norm_aux *a,
                           const double *var)
{
    double m = a->momentum, M = (double)(a->A * a->K);
    for (int64_t b = 0; b < a->B; b++) {
        double rm = tg__load(s->mean->data, s->mean->dtype, b);
        double rv = tg__load(s->var->data, s->var->dtype, b);
        tg__store(s->mean->data, s->mean->dtype, b, (1 - m) * rm + m * a->mean[b]);
        tg__store(s->var->data, s->var->dtype, b, (1 - m) * rv + m * var[b] * M / (M - 1));
    }
    if (s->num_batches) {
        struct tg_tensor *c = s->num_batches;
        tg__store(c->data, c->dtype, 0, tg__load(c->data, c->dtype, 0) + 1);
    }
}

struct tg_tensor *tg_batch_norm(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *weight,
                                struct tg_tensor *bias, const struct tg_batch_norm_stats *stats,
                                bool training, double momentum, double eps)
{
    struct norm_aux probe = {0};
    if (!T || !x) return norm_record(T, &tg_op_desc_batch_norm, x, weight, bias, &probe);
    if (bad_eps("batch_norm", eps)) return NULL;
    if (!(momentum >= 0 && momentum <= 1)) {
        tg__fail(TG_ERR_VALUE, "batch_norm: momentum = %g is outside [0, 1]", momentum);
        return NULL;
    }
    if (tg__check_input(T, "batch_norm", x) || bn_check_x(x) || check_stats(stats, x, training))
        return NULL;
    struct norm_aux *a = new_aux(T, x, 0);
    if (!a) return NULL;
    a->training = training;
    a->eps = eps;
    a->momentum = momentum;
    double *var = NULL; /* (C): the batch's biased variances */
    if (training) {
        if (batch_stats(x, a)) return NULL;
        if (!(var = tg__tape_alloc(T, (size_t)(a->B ? a->B : 1) * sizeof *var))) return NULL;
        memcpy(var, a->rstd, (size_t)a->B * sizeof *var);
    } else {
        for (int64_t b = 0; b < a->B; b++) {
            a->mean[b] = tg__load(stats->mean->data, stats->mean->dtype, b);
            a->rstd[b] = tg__load(stats->var->data, stats->var->dtype, b);
        }
    }
    for (int64_t b = 0; b < a->B; b++) a->rstd[b] = 1 / sqrt(a->rstd[b] + eps);
    struct tg_tensor *y = norm_record(T, &tg_op_desc_batch_norm, x, weight, bias, a);
    if (y && training && stats && stats->mean) update_running(stats, a, var);
    return y;
}
