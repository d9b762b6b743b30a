/*
 * examples/custom_op.c - an op of your own, registered at run time:
 * log1p_exp(x) = log(1 + e^x), computed so that it never overflows, with its
 * derivative sigmoid(x) (docs/custom-ops.md shows and explains this file).
 *
 * Built from ops of the table, log(1 + exp(x)) is inf at x = 800 and its
 * gradient NaN; this op gives 800 and 1.
 */
#include <math.h>
#include <stdio.h>
#include <tapegrad/tapegrad.h>

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): e^-|x| <= 1 never overflows. */
static double log1p_exp(double x)
{
    return fmax(x, 0) + log1p(exp(-fabs(x)));
}

/* d/dx log(1 + e^x) = 1 / (1 + e^-x), written so that no e^t overflows. */
static double sigmoid(double x)
{
    double e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/* y = log1p_exp(x), elementwise, in the input's dtype. */
static void forward(const struct tg_custom_op_args *a)
{
    const struct tg_tensor *x = a->in[0];
    int64_t n = tg_tensor_numel(x);
    if (tg_tensor_dtype(x) == TG_F64) {
        const double *xv = tg_tensor_data(x);
        double *y = tg_tensor_data(a->out);
        for (int64_t i = 0; i < n; i++) y[i] = log1p_exp(xv[i]);
    } else {
        const float *xv = tg_tensor_data(x);
        float *y = tg_tensor_data(a->out);
        for (int64_t i = 0; i < n; i++) y[i] = (float)log1p_exp(xv[i]);
    }
}

/* dx += dy * sigmoid(x): backward adds into the input's gradient. */
static void backward(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    const struct tg_tensor *x = a->in[0];
    int64_t n = tg_tensor_numel(x);
    if (tg_tensor_dtype(x) == TG_F64) {
        const double *xv = tg_tensor_data(x), *g = dy;
        double *d = dx[0];
        for (int64_t i = 0; i < n; i++) d[i] += g[i] * sigmoid(xv[i]);
    } else {
        const float *xv = tg_tensor_data(x), *g = dy;
        float *d = dx[0];
        for (int64_t i = 0; i < n; i++) d[i] += g[i] * (float)sigmoid(xv[i]);
    }
}

/* The same product recorded as ops, so that tg_grad can differentiate it again. */
static enum tg_status vjp_graph(struct tg_tape *T, const struct tg_custom_op_args *a,
                                struct tg_tensor *dy, const bool *need, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    dx[0] = tg_mul(T, dy, tg_sigmoid(T, a->in[0]));
    return dx[0] ? TG_OK : tg_last_status();
}

/* The function tg_gradcheck differentiates: sum(log1p_exp(x)). */
static struct tg_tensor *total(struct tg_tape *T, struct tg_tensor *const *in, int n, void *op)
{
    (void)n;
    return tg_sum(T, tg_custom_op_call(T, op, in, NULL));
}

int main(void)
{
    const struct tg_custom_op_def def = {
        .name = "log1p_exp",
        .arity = 1,
        .formula = "y = log(1 + e^x)",
        .vjp = "dx += dy * sigmoid(x)",
        .forward = forward,
        .backward = backward,
        .vjp_graph = vjp_graph,
        .elementwise = true,
    };
    const struct tg_custom_op *op;
    if (tg_custom_op_register(&def, &op) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }

    /* y = log1p_exp(x) and dy/dx where exp(x) overflows */
    const double xv[4] = {-800, -1, 0.5, 800};
    int64_t n = 4;
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, &n, xv);
    struct tg_tape *T = tg_tape_new();
    if (!x || !T || tg_tensor_set_requires_grad(x, true)) return 1;
    struct tg_tensor *y = tg_custom_op_call(T, op, &x, NULL);
    if (!y || tg_backward(tg_sum(T, y), NULL) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }
    for (int i = 0; i < 4; i++)
        printf("x = %6g  log1p_exp(x) = %-10.6g  d/dx = %.6g\n", xv[i], tg_tensor_get(y, i),
               tg_tensor_grad_get(x, i));

    /* the backward against central differences, at points of every kind */
    const double pv[4] = {-30, -0.7, 0.2, 12};
    struct tg_tensor *p = tg_tensor_from_f64(TG_F64, 1, &n, pv);
    if (!p || tg_tensor_set_requires_grad(p, true)) return 1;
    struct tg_gradcheck_report rep;
    enum tg_status st = tg_gradcheck(total, &p, 1, (void *)op, NULL, &rep);
    printf("gradcheck: %s\n", st == TG_OK ? "passed" : rep.message);

    tg_tensor_free(p);
    tg_tensor_free(x);
    tg_tape_free(T);
    return st == TG_OK ? 0 : 1;
}
