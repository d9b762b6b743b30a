/*
 * ops/unary.c - elementwise ops of one tensor, some with plain-number parameters.
 *
 * Each op is one line of UNARY_OPS (or of UNARY_PARAM_OPS, which also names the
 * op's parameters as its formula does): the output y as an expression in the
 * input x, and the local derivative dy/dx, which may also use y. Backward adds
 * dy * dy/dx into x's gradient: the Jacobian of an elementwise op is diagonal, so
 * the vector-Jacobian product is a plain elementwise product. The kernels come
 * from ops/unary-kernels.inc, one body for both dtypes.
 *
 * NaN: a NaN input gives a NaN output, and a NaN derivative where the derivative
 * depends on the value (relu's, leaky_relu's and abs's selectors, too); see
 * docs/ops.md.
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

/* x^p, NaN at a NaN even for p == 0 (where C's pow gives 1) */
static inline double pow_scalar_y(double x, double p)
{
    return x != x ? x : pow(x, p);
}

/* d/dx x^p, defined as 0 for p == 0 (x^0 == 1 everywhere) */
static inline double pow_scalar_d(double x, double p)
{
    return p == 0 ? 0 : p * pow(x, p - 1);
}

/* name, enum suffix, formula, VJP, y(x), dy/dx */
#define UNARY_OPS(X)                                                                               \
    X(neg, NEG, "y = -x", "dx -= dy", -x, -1)                                                      \
    X(exp, EXP, "y = e^x", "dx += dy * y", exp(x), y)                                              \
    X(log, LOG, "y = ln x", "dx += dy / x", log(x), 1 / x)                                         \
    X(sqrt, SQRT, "y = sqrt(x)", "dx += dy / (2 y)", sqrt(x), 0.5 / y)                             \
    /* sign(x): the last branch is x itself, 0 at x = 0 and NaN at a NaN */                        \
    X(abs, ABS, "y = |x|", "dx += dy * sign(x)  (0 at x = 0)", fabs(x),                            \
      x > 0 ? 1 : (x < 0 ? -1 : x))                                                                \
    X(tanh, TANH, "y = tanh x", "dx += dy * (1 - y^2)", TG_TANH(x), 1 - y * y)                     \
    X(sigmoid, SIGMOID, "y = 1 / (1 + e^-x)", "dx += dy * y (1 - y)", TG_SIGMOID(x),               \
      (y * (1 - y)))                                                                               \
    /* x <= 0 is false at a NaN, which passes through; so does its derivative */                   \
    X(relu, RELU, "y = max(x, 0)  (NaN at a NaN)", "dx += dy * [x > 0]", x <= 0 ? 0 : x,           \
      x > 0 ? 1 : (x <= 0 ? 0 : x))                                                                \
    X(softplus, SOFTPLUS, "y = ln(1 + e^x)", "dx += dy * sigmoid(x)", softplus_d(x),               \
      tg__sigmoid_d(x))                                                                            \
    X(sin, SIN, "y = sin x", "dx += dy * cos x", sin(x), cos(x))                                   \
    X(cos, COS, "y = cos x", "dx -= dy * sin x", cos(x), -sin(x))

/* name, enum suffix, params callback, the two parameters' names, formula, VJP,
 * y(x), dy/dx (unused: a parameter the op does not have) */
#define UNARY_PARAM_OPS(X)                                                                         \
    X(affine, AFFINE, two_params, alpha, beta, "y = alpha x + beta", "dx += alpha dy",             \
      (alpha * x + beta), alpha)                                                                   \
    X(pow_scalar, POW_SCALAR, one_param, p, unused, "y = x^p", "dx += dy * p x^(p-1)",             \
      pow_scalar_y(x, p), pow_scalar_d(x, p))                                                      \
    X(leaky_relu, LEAKY_RELU, one_param, s, unused, "y = x > 0 ? x : s x",                         \
      "dx += dy * (x > 0 ? 1 : s)", x > 0 ? x : s * x, x > 0 ? 1 : (x <= 0 ? s : x))

#define T float
#include "unary-kernels.inc"
#undef T
#define T double
#include "unary-kernels.inc"
#undef T

/* The parameters of a node (see the descriptor's params): p.f[0], and p.f[1]. */
static int one_param(const struct tg_tensor *out, double *vals)
{
    vals[0] = out->p.f[0];
    return 1;
}
static int two_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = out->p.f[0];
    vals[1] = out->p.f[1];
    return 2;
}

/* ---- the differentiable VJPs (the descriptors' vjp_graph) ----
 * dx = dy * dy/dx recorded as ops on T, dy/dx from x or y (out) as the kernel
 * takes it. Selectors (relu's, leaky_relu's and abs's) are tape constants
 * computed from x, NaN at a NaN as in the kernels, so the values equal the
 * kernels' up to rounding. */

#define VJP_ARGS                                                                                   \
    struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy, const bool *need,                \
        struct tg_tensor **dx

/* dx[0] = g when asked (need[0]); g NULL is a failed step. */
static enum tg_status put1(const bool *need, struct tg_tensor *g, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    if (!g) return tg__vjp_failure();
    dx[0] = g;
    return TG_OK;
}

/* dy times a constant of x's shape: f(x_i, the op's first parameter). */
static struct tg_tensor *times_const(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                     double (*f)(double x, double p))
{
    const struct tg_tensor *x = o->in[0];
    struct tg_tensor *c = tg__vjp_const(T, o->dtype, x->rank, x->shape);
    if (!c) return NULL;
    for (int64_t i = 0; i < x->numel; i++)
        tg__store(c->data, c->dtype, i, f(tg__load(x->data, x->dtype, i), o->p.f[0]));
    return tg_mul(T, dy, c);
}
static double sign_of(double x, double unused)
{
    (void)unused;
    return x > 0 ? 1 : (x < 0 ? -1 : x);
}
static double relu_mask(double x, double unused)
{
    (void)unused;
    return x > 0 ? 1 : (x <= 0 ? 0 : x);
}
static double leaky_mask(double x, double s)
{
    return x > 0 ? 1 : (x <= 0 ? s : x);
}

static enum tg_status neg_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, tg_neg(T, dy), dx) : TG_OK;
}
static enum tg_status exp_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, tg_mul(T, dy, o), dx) : TG_OK;
}
static enum tg_status log_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, tg_div(T, dy, o->in[0]), dx) : TG_OK;
}
static enum tg_status sqrt_vjp(VJP_ARGS) /* dy / (2 y) */
{
    return need[0] ? put1(need, tg_div(T, tg_mul_scalar(T, dy, 0.5), o), dx) : TG_OK;
}
static enum tg_status abs_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, times_const(T, o, dy, sign_of), dx) : TG_OK;
}
static enum tg_status tanh_vjp(VJP_ARGS) /* dy (1 - y^2) */
{
    return need[0] ? put1(need, tg_mul(T, dy, tg_rsub_scalar(T, 1, tg_mul(T, o, o))), dx) : TG_OK;
}
static enum tg_status sigmoid_vjp(VJP_ARGS) /* dy y (1 - y) */
{
    return need[0] ? put1(need, tg_mul(T, dy, tg_mul(T, o, tg_rsub_scalar(T, 1, o))), dx) : TG_OK;
}
static enum tg_status relu_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, times_const(T, o, dy, relu_mask), dx) : TG_OK;
}
static enum tg_status softplus_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, tg_mul(T, dy, tg_sigmoid(T, o->in[0])), dx) : TG_OK;
}
static enum tg_status sin_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, tg_mul(T, dy, tg_cos(T, o->in[0])), dx) : TG_OK;
}
static enum tg_status cos_vjp(VJP_ARGS) /* -(dy sin x) */
{
    return need[0] ? put1(need, tg_neg(T, tg_mul(T, dy, tg_sin(T, o->in[0]))), dx) : TG_OK;
}
static enum tg_status affine_vjp(VJP_ARGS) /* alpha dy */
{
    return need[0] ? put1(need, tg_mul_scalar(T, dy, o->p.f[0]), dx) : TG_OK;
}
/* dy p x^(p-1); p == 0: dy * 0 (the kernel's factor is 0 there, a NaN x too);
 * p == 1: dy (the factor is 1, a NaN x too) */
static enum tg_status pow_scalar_vjp(VJP_ARGS)
{
    if (!need[0]) return TG_OK;
    double p = o->p.f[0];
    if (p == 0 || p == 1) return put1(need, tg_mul_scalar(T, dy, p), dx);
    return put1(need, tg_mul(T, dy, tg_mul_scalar(T, tg_pow_scalar(T, o->in[0], p - 1), p)), dx);
}
static enum tg_status leaky_relu_vjp(VJP_ARGS)
{
    return need[0] ? put1(need, times_const(T, o, dy, leaky_mask), dx) : TG_OK;
}

/* Each op's descriptor, with its dtype dispatch. */
#define XP(NAME, ENUM, PARAMS, P0, P1, FORMULA, VJP, Y, DX)                                        \
    TG__DTYPE_DISPATCH(NAME)                                                                       \
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
        .mixed_dtypes = false,                                                                     \
        .elementwise = true,                                                                       \
        .params = PARAMS,                                                                          \
        .vjp_graph = NAME##_vjp,                                                                   \
        .operands = "x -> y ; " #P0 " " #P1};
#define X(NAME, ENUM, FORMULA, VJP, Y, DX) XP(NAME, ENUM, NULL, p0, p1, FORMULA, VJP, Y, DX)
UNARY_OPS(X)
UNARY_PARAM_OPS(XP)
#undef X
#undef XP

/* ---- the public constructors ---- */

struct tg_tensor *tg_neg(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_neg, x, NULL);
}
struct tg_tensor *tg_exp(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_exp, x, NULL);
}
struct tg_tensor *tg_log(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_log, x, NULL);
}
struct tg_tensor *tg_sqrt(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_sqrt, x, NULL);
}
struct tg_tensor *tg_abs(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_abs, x, NULL);
}
struct tg_tensor *tg_tanh(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_tanh, x, NULL);
}
struct tg_tensor *tg_sigmoid(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_sigmoid, x, NULL);
}
struct tg_tensor *tg_relu(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_relu, x, NULL);
}
struct tg_tensor *tg_softplus(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_softplus, x, NULL);
}
struct tg_tensor *tg_sin(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_sin, x, NULL);
}
struct tg_tensor *tg_cos(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record_unary(T, &tg_op_desc_cos, x, NULL);
}

/* ---- ops with plain-number parameters ---- */

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
