/*
 * ops/softmax.c - softmax and log-softmax along one axis.
 *
 * The Jacobian of softmax along a line of length n is J = diag(s) - s s^T (dense
 * within the line, zero across lines), but backward never forms it: the VJP
 * dy^T J = s * (dy - <dy, s>) costs O(n) per line. log_softmax's Jacobian is
 * I - 1 s^T, so its VJP is dy - s * sum(dy). Both subtract the line's maximum
 * before exponentiating, so no logit overflows.
 *
 * A tensor is seen as (outer, n, inner) around the axis: element (o, k, i) is at
 * (o * n + k) * inner + i, and a line is the n elements with stride `inner`.
 */
#include "ops-impl.h"

struct lines {
    int64_t outer, n, inner;
};

/* The axis as given (-rank..rank-1, checked by the shape rule) as 0..rank-1. */
static int axis_of(const struct tg_tensor *out)
{
    int64_t axis = out->p.i[0];
    return (int)(axis < 0 ? axis + out->rank : axis);
}

static struct lines lines_of(const struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int axis = axis_of(out);
    struct lines L = {1, x->shape[axis], 1};
    for (int d = 0; d < axis; d++) L.outer *= x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) L.inner *= x->shape[d];
    return L;
}

/* Checks the axis and gives out x's shape. */
static enum tg_status softmax_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    int64_t axis = out->p.i[0];
    if (axis < -(int64_t)x->rank || axis >= (int64_t)x->rank) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, x->rank, x->shape);
        return tg__fail(TG_ERR_RANGE, "%s: axis %lld is out of range for shape %s", out->desc->name,
                        (long long)axis, s);
    }
    return tg__shape_same(out);
}

/* The parameter: the axis, as 0..rank-1. */
static int softmax_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = axis_of(out);
    return 1;
}

/* One line: the maximum m and sum_k e^(x_k - m), in double. */
#define LINE_STATS(T, x, L, m, s)                                                                  \
    do {                                                                                           \
        m = -INFINITY;                                                                             \
        for (int64_t k = 0; k < (L).n; k++)                                                        \
            if ((x)[k * (L).inner] > m) m = (x)[k * (L).inner];                                    \
        s = 0;                                                                                     \
        for (int64_t k = 0; k < (L).n; k++) s += exp((double)(x)[k * (L).inner] - m);              \
    } while (0)

#define SOFTMAX_KERNELS(T)                                                                         \
    static void softmax_fwd_##T(struct tg_tensor *out, bool log_space)                             \
    {                                                                                              \
        struct lines L = lines_of(out);                                                            \
        for (int64_t o = 0; o < L.outer; o++)                                                      \
            for (int64_t i = 0; i < L.inner; i++) {                                                \
                int64_t base = o * L.n * L.inner + i;                                              \
                const T *x = (const T *)out->in[0]->data + base; /* (n), stride inner */           \
                T *y = (T *)out->data + base;                    /* (n), stride inner */           \
                double m, s;                                                                       \
                LINE_STATS(T, x, L, m, s);                                                         \
                double ls = log(s);                                                                \
                for (int64_t k = 0; k < L.n; k++) {                                                \
                    double z = (double)x[k * L.inner] - m;                                         \
                    y[k * L.inner] = (T)(log_space ? z - ls : exp(z) / s);                         \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    /* softmax:     dx_k += s_k (dy_k - sum_j dy_j s_j)                                            \
     * log_softmax: dx_k += dy_k - e^(y_k) sum_j dy_j */                                           \
    static void softmax_bwd_##T(struct tg_tensor *out, bool log_space)                             \
    {                                                                                              \
        struct tg_tensor *X = out->in[0];                                                          \
        if (!X->requires_grad) return;                                                             \
        struct lines L = lines_of(out);                                                            \
        for (int64_t o = 0; o < L.outer; o++)                                                      \
            for (int64_t i = 0; i < L.inner; i++) {                                                \
                int64_t base = o * L.n * L.inner + i;                                              \
                const T *y = (const T *)out->data + base, *g = (const T *)out->grad + base;        \
                T *gx = (T *)X->grad + base;                                                       \
                double d = 0;                                                                      \
                for (int64_t k = 0; k < L.n; k++)                                                  \
                    d += log_space ? (double)g[k * L.inner]                                        \
                                   : (double)g[k * L.inner] * y[k * L.inner];                      \
                for (int64_t k = 0; k < L.n; k++) {                                                \
                    int64_t j = k * L.inner;                                                       \
                    gx[j] += (T)(log_space ? g[j] - exp((double)y[j]) * d : y[j] * (g[j] - d));    \
                }                                                                                  \
            }                                                                                      \
    }

SOFTMAX_KERNELS(float)
SOFTMAX_KERNELS(double)

/* An empty tensor has no line to visit: return before the (outer, inner) loops,
 * which an empty axis would otherwise run through without work. */
static void softmax_fwd(struct tg_tensor *o)
{
    if (o->numel == 0) return;
    o->dtype == TG_F64 ? softmax_fwd_double(o, false) : softmax_fwd_float(o, false);
}
static void softmax_bwd(struct tg_tensor *o)
{
    if (o->numel == 0) return;
    o->dtype == TG_F64 ? softmax_bwd_double(o, false) : softmax_bwd_float(o, false);
}
static void log_softmax_fwd(struct tg_tensor *o)
{
    if (o->numel == 0) return;
    o->dtype == TG_F64 ? softmax_fwd_double(o, true) : softmax_fwd_float(o, true);
}
static void log_softmax_bwd(struct tg_tensor *o)
{
    if (o->numel == 0) return;
    o->dtype == TG_F64 ? softmax_bwd_double(o, true) : softmax_bwd_float(o, true);
}

/* The differentiable VJPs, y being the node itself:
 * softmax:     dx = y * (dy - sum_axis(dy * y))
 * log_softmax: dx = dy - exp(y) * sum_axis(dy)   (sums with keepdim) */
static enum tg_status softmax_vjp_any(struct tg_tape *T, struct tg_tensor *out,
                                      struct tg_tensor *dy, const bool *need, struct tg_tensor **dx,
                                      bool log_space)
{
    int axis = axis_of(out);
    if (!need[0]) return TG_OK;
    if (log_space)
        dx[0] = tg_sub(T, dy, tg_mul(T, tg_exp(T, out), tg_sum_axes(T, dy, &axis, 1, true)));
    else
        dx[0] = tg_mul(T, out, tg_sub(T, dy, tg_sum_axes(T, tg_mul(T, dy, out), &axis, 1, true)));
    return dx[0] ? TG_OK : tg__vjp_failure();
}
static enum tg_status softmax_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                  const bool *need, struct tg_tensor **dx)
{
    return softmax_vjp_any(T, out, dy, need, dx, false);
}
static enum tg_status log_softmax_vjp(struct tg_tape *T, struct tg_tensor *out,
                                      struct tg_tensor *dy, const bool *need, struct tg_tensor **dx)
{
    return softmax_vjp_any(T, out, dy, need, dx, true);
}

const struct tg_op_desc tg_op_desc_softmax = {
    .op = TG_OP_SOFTMAX,
    .name = "softmax",
    .arity = 1,
    .formula = "y_i = e^(x_i - m) / sum_j e^(x_j - m) along axis, m = max_j x_j",
    .vjp = "dx_i += y_i (dy_i - sum_j dy_j y_j)   (J = diag(y) - y y^T)",
    .shape = softmax_shape,
    .forward = softmax_fwd,
    .backward = softmax_bwd,
    .params = softmax_params,
    .vjp_graph = softmax_vjp};
const struct tg_op_desc tg_op_desc_log_softmax = {
    .op = TG_OP_LOG_SOFTMAX,
    .name = "log_softmax",
    .arity = 1,
    .formula = "y_i = x_i - m - log sum_j e^(x_j - m) along axis",
    .vjp = "dx_i += dy_i - e^(y_i) sum_j dy_j   (J = I - 1 softmax^T)",
    .shape = softmax_shape,
    .forward = log_softmax_fwd,
    .backward = log_softmax_bwd,
    .params = softmax_params,
    .vjp_graph = log_softmax_vjp};

struct tg_tensor *tg_softmax(struct tg_tape *T, struct tg_tensor *x, int axis)
{
    union tg_params p = {.i = {axis, 0}};
    return tg__op_record(T, &tg_op_desc_softmax, 1, &x, &p, NULL);
}

struct tg_tensor *tg_log_softmax(struct tg_tape *T, struct tg_tensor *x, int axis)
{
    union tg_params p = {.i = {axis, 0}};
    return tg__op_record(T, &tg_op_desc_log_softmax, 1, &x, &p, NULL);
}
