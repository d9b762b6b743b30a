/*
 * ops/unary.c - elementwise ops of one tensor, some with plain-number parameters.
 *
 * Each op is one UNARY_OP line: the forward expression in x (the input) and the
 * parameters p0, p1, and the local derivative dz/dx, which may use z (the output).
 * Backward adds g * dz/dx into x's gradient: the Jacobian of an elementwise op is
 * diagonal, so the vector-Jacobian product is a plain elementwise product.
 */
#include "ops-impl.h"

enum tg_status tg__shape_same(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    out->rank = x->rank;
    for (int d = 0; d < x->rank; d++) out->shape[d] = x->shape[d];
    return TG_OK;
}

static inline double softplus_d(double x)
{
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

/* d/dx x^p, defined as 0 for p == 0 (x^0 == 1 everywhere) */
static inline double pow_scalar_d(double x, double p)
{
    return p == 0 ? 0 : p * pow(x, p - 1);
}

#define UNARY_KERNELS(NAME, T, FWD, DX)                                                            \
    /* one element: the scalar record path calls this directly */                                  \
    static void NAME##_fwd1_##T(struct tg_tensor *out)                                             \
    {                                                                                              \
        const double p0 = out->p.f[0], p1 = out->p.f[1];                                           \
        (void)p0, (void)p1;                                                                        \
        T x = *(const T *)out->in[0]->data;                                                        \
        *(T *)out->data = (T)(FWD);                                                                \
    }                                                                                              \
    static void NAME##_fwd_##T(struct tg_tensor *out)                                              \
    {                                                                                              \
        const T *restrict xs = out->in[0]->data;                                                   \
        T *restrict o = out->data;                                                                 \
        const double p0 = out->p.f[0], p1 = out->p.f[1];                                           \
        const int64_t n = out->numel;                                                              \
        (void)p0, (void)p1;                                                                        \
        if (n == 1) { /* scalar graphs: no loop (and no vector-loop checks) */                     \
            NAME##_fwd1_##T(out);                                                                  \
            return;                                                                                \
        }                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x = xs[i];                                                                           \
            o[i] = (T)(FWD);                                                                       \
        }                                                                                          \
    }                                                                                              \
    /* one element: the sweep calls this directly for scalar-path nodes */                         \
    static void NAME##_bwd1_##T(struct tg_tensor *out)                                             \
    {                                                                                              \
        struct tg_tensor *X = out->in[0];                                                          \
        if (!X->requires_grad) return;                                                             \
        const double p0 = out->p.f[0], p1 = out->p.f[1];                                           \
        (void)p0, (void)p1;                                                                        \
        T x = *(const T *)X->data, z = *(const T *)out->data;                                      \
        (void)x, (void)z;                                                                          \
        *(T *)X->grad += (T)(*(const T *)out->grad * (DX));                                        \
    }                                                                                              \
    static void NAME##_bwd_##T(struct tg_tensor *out)                                              \
    {                                                                                              \
        struct tg_tensor *X = out->in[0];                                                          \
        if (!X->requires_grad) return;                                                             \
        const T *restrict xs = X->data, *restrict zs = out->data, *restrict g = out->grad;         \
        T *restrict gx = X->grad;                                                                  \
        const double p0 = out->p.f[0], p1 = out->p.f[1];                                           \
        const int64_t n = out->numel;                                                              \
        (void)p0, (void)p1;                                                                        \
        if (n == 1) {                                                                              \
            NAME##_bwd1_##T(out);                                                                  \
            return;                                                                                \
        }                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x = xs[i], z = zs[i];                                                                \
            (void)x, (void)z;                                                                      \
            gx[i] += (T)(g[i] * (DX));                                                             \
        }                                                                                          \
    }

#define UNARY_DESC(NAME, ENUM, FORMULA, VJP, FWD, DX)                                              \
    UNARY_KERNELS(NAME, float, FWD, DX)                                                            \
    UNARY_KERNELS(NAME, double, FWD, DX)                                                           \
    static void NAME##_fwd(struct tg_tensor *o)                                                    \
    {                                                                                              \
        if (o->dtype == TG_F64)                                                                    \
            NAME##_fwd_double(o);                                                                  \
        else                                                                                       \
            NAME##_fwd_float(o);                                                                   \
    }                                                                                              \
    static void NAME##_bwd(struct tg_tensor *o)                                                    \
    {                                                                                              \
        if (o->dtype == TG_F64)                                                                    \
            NAME##_bwd_double(o);                                                                  \
        else                                                                                       \
            NAME##_bwd_float(o);                                                                   \
    }                                                                                              \
    const struct tg_op_desc tg_op_desc_##NAME = {                                                  \
        .op = TG_OP_##ENUM,                                                                        \
        .name = #NAME,                                                                             \
        .arity = 1,                                                                                \
        .formula = FORMULA,                                                                        \
        .vjp = VJP,                                                                                \
        .shape = tg__shape_same,                                                                   \
        .forward = NAME##_fwd,                                                                     \
        .backward = NAME##_bwd,                                                                    \
        .forward1 = {NAME##_fwd1_float, NAME##_fwd1_double},                                       \
        .backward1 = {NAME##_bwd1_float, NAME##_bwd1_double},                                      \
        .mixed_dtypes = false};

/* An op without parameters and its constructor. */
#define UNARY_OP(NAME, ENUM, FORMULA, VJP, FWD, DX)                                                \
    UNARY_DESC(NAME, ENUM, FORMULA, VJP, FWD, DX)                                                  \
    struct tg_tensor *tg_##NAME(struct tg_tape *T, struct tg_tensor *x)                            \
    {                                                                                              \
        return tg__op_record_unary(T, &tg_op_desc_##NAME, x, NULL);                                \
    }

UNARY_OP(neg, NEG, "y = -x", "dx -= dy", -x, -1)
UNARY_OP(exp, EXP, "y = e^x", "dx += dy * y", exp(x), z)
UNARY_OP(log, LOG, "y = ln x", "dx += dy / x", log(x), 1 / x)
UNARY_OP(sqrt, SQRT, "y = sqrt(x)", "dx += dy / (2 y)", sqrt(x), 0.5 / z)
UNARY_OP(abs, ABS, "y = |x|", "dx += dy * sign(x)  (0 at x = 0)", fabs(x),
         x > 0 ? 1 : (x < 0 ? -1 : 0))
UNARY_OP(tanh, TANH, "y = tanh x", "dx += dy * (1 - y^2)", TG_TANH(x), 1 - z * z)
UNARY_OP(sigmoid, SIGMOID, "y = 1 / (1 + e^-x)", "dx += dy * y (1 - y)", TG_SIGMOID(x), z *(1 - z))
UNARY_OP(relu, RELU, "y = max(x, 0)", "dx += dy * [x > 0]", x > 0 ? x : 0, x > 0 ? 1 : 0)
UNARY_OP(softplus, SOFTPLUS, "y = ln(1 + e^x)", "dx += dy * sigmoid(x)", softplus_d(x),
         tg__sigmoid_d(x))
UNARY_OP(sin, SIN, "y = sin x", "dx += dy * cos x", sin(x), cos(x))
UNARY_OP(cos, COS, "y = cos x", "dx -= dy * sin x", cos(x), -sin(x))

/* ---- ops with plain-number parameters ---- */

UNARY_DESC(affine, AFFINE, "y = alpha x + beta", "dx += alpha dy", p0 *x + p1, p0)
UNARY_DESC(pow_scalar, POW_SCALAR, "y = x^p", "dx += dy * p x^(p-1)", pow(x, p0),
           pow_scalar_d(x, p0))
UNARY_DESC(leaky_relu, LEAKY_RELU, "y = x > 0 ? x : s x", "dx += dy * (x > 0 ? 1 : s)",
           x > 0 ? x : p0 * x, x > 0 ? 1 : p0)

/* fn: the function the user called, for the message (derived ops such as
   add_scalar record an affine node). */
static struct tg_tensor *with_params(struct tg_tape *T, const char *fn, const struct tg_op_desc *d,
                                     struct tg_tensor *x, double p0, double p1)
{
    if (!x) {
        tg__null_input(fn, "input 1");
        return NULL;
    }
    if (!isfinite(p0) || !isfinite(p1)) {
        tg__fail(TG_ERR_VALUE, "%s: parameter is not finite (%s %g, %g)", fn, d->name, p0, p1);
        return NULL;
    }
    union tg_params p = {.f = {p0, p1}};
    struct tg_tensor *y = tg__op_record_unary(T, d, x, &p);
    /* x is not NULL: a failure is this call's own, and names what it records */
    if (!y && strcmp(fn, d->name) != 0) tg__rename_failure(d->name, fn);
    return y;
}

struct tg_tensor *tg_affine(struct tg_tape *T, struct tg_tensor *x, double alpha, double beta)
{
    return with_params(T, "affine", &tg_op_desc_affine, x, alpha, beta);
}
struct tg_tensor *tg_add_scalar(struct tg_tape *T, struct tg_tensor *x, double c)
{
    return with_params(T, "add_scalar", &tg_op_desc_affine, x, 1, c);
}
struct tg_tensor *tg_sub_scalar(struct tg_tape *T, struct tg_tensor *x, double c)
{
    return with_params(T, "sub_scalar", &tg_op_desc_affine, x, 1, -c);
}
struct tg_tensor *tg_rsub_scalar(struct tg_tape *T, double c, struct tg_tensor *x)
{
    return with_params(T, "rsub_scalar", &tg_op_desc_affine, x, -1, c);
}
struct tg_tensor *tg_mul_scalar(struct tg_tape *T, struct tg_tensor *x, double c)
{
    return with_params(T, "mul_scalar", &tg_op_desc_affine, x, c, 0);
}
struct tg_tensor *tg_div_scalar(struct tg_tape *T, struct tg_tensor *x, double c)
{
    if (c == 0 && x) {
        tg__fail(TG_ERR_VALUE, "div_scalar: division by zero");
        return NULL;
    }
    return with_params(T, "div_scalar", &tg_op_desc_affine, x, 1 / c, 0);
}
struct tg_tensor *tg_pow_scalar(struct tg_tape *T, struct tg_tensor *x, double p)
{
    return with_params(T, "pow_scalar", &tg_op_desc_pow_scalar, x, p, 0);
}
struct tg_tensor *tg_rdiv_scalar(struct tg_tape *T, double c, struct tg_tensor *x)
{
    if (!isfinite(c) && x) {
        tg__fail(TG_ERR_VALUE, "rdiv_scalar: the number is not finite (%g)", c);
        return NULL;
    }
    return tg_mul_scalar(T, tg_pow_scalar(T, x, -1), c);
}
struct tg_tensor *tg_leaky_relu(struct tg_tape *T, struct tg_tensor *x, double slope)
{
    return with_params(T, "leaky_relu", &tg_op_desc_leaky_relu, x, slope, 0);
}
