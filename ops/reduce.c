/*
 * ops/reduce.c - reductions over all elements (sum, mean), giving a scalar.
 *
 * f32 inputs are summed in double so that long sums keep their precision.
 */
#include "ops-impl.h"

static enum tg_status shape_scalar(struct tg_tensor *out)
{
    out->rank = 0;
    return TG_OK;
}

static double total(const struct tg_tensor *x)
{
    double s = 0;
    if (x->dtype == TG_F64) {
        const double *p = x->data;
        for (int64_t i = 0; i < x->numel; i++) s += p[i];
    } else {
        const float *p = x->data;
        for (int64_t i = 0; i < x->numel; i++) s += p[i];
    }
    return s;
}

/* Adds the same value v to every element of x's gradient. */
static void spread(struct tg_tensor *x, double v)
{
    if (!x->requires_grad) return;
    if (x->dtype == TG_F64) {
        double *g = x->grad;
        for (int64_t i = 0; i < x->numel; i++) g[i] += v;
    } else {
        float *g = x->grad;
        float vf = (float)v;
        for (int64_t i = 0; i < x->numel; i++) g[i] += vf;
    }
}

static void sum_fwd(struct tg_tensor *o)
{
    tg__store(o->data, o->dtype, 0, total(o->in[0]));
}
static void sum_bwd(struct tg_tensor *o)
{
    spread(o->in[0], tg__load(o->grad, o->dtype, 0));
}

static void mean_fwd(struct tg_tensor *o)
{
    tg__store(o->data, o->dtype, 0, total(o->in[0]) / (double)o->in[0]->numel);
}
static void mean_bwd(struct tg_tensor *o)
{
    spread(o->in[0], tg__load(o->grad, o->dtype, 0) / (double)o->in[0]->numel);
}

static enum tg_status mean_shape(struct tg_tensor *out)
{
    if (out->in[0]->numel == 0) return tg__fail(TG_ERR_SHAPE, "mean: the input has no elements");
    return shape_scalar(out);
}

/* The differentiable VJPs: dx = dy broadcast to x's shape (mean: dy / N first). */
static enum tg_status sum_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    const struct tg_tensor *x = out->in[0];
    if (!need[0]) return TG_OK;
    struct tg_tensor *g =
        out->desc->op == TG_OP_MEAN ? tg_mul_scalar(T, dy, 1.0 / (double)x->numel) : dy;
    dx[0] = tg_broadcast_to(T, g, x->rank, x->shape);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_sum = {.op = TG_OP_SUM,
                                          .name = "sum",
                                          .arity = 1,
                                          .formula = "y = sum_i x_i",
                                          .vjp = "dx_i += dy",
                                          .shape = shape_scalar,
                                          .forward = sum_fwd,
                                          .backward = sum_bwd,
                                          .mixed_dtypes = false,
                                          .vjp_graph = sum_vjp};
const struct tg_op_desc tg_op_desc_mean = {.op = TG_OP_MEAN,
                                           .name = "mean",
                                           .arity = 1,
                                           .formula = "y = (1/N) sum_i x_i",
                                           .vjp = "dx_i += dy / N",
                                           .shape = mean_shape,
                                           .forward = mean_fwd,
                                           .backward = mean_bwd,
                                           .mixed_dtypes = false,
                                           .vjp_graph = sum_vjp};

struct tg_tensor *tg_sum(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record(T, &tg_op_desc_sum, 1, &x, NULL, NULL);
}
struct tg_tensor *tg_mean(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record(T, &tg_op_desc_mean, 1, &x, NULL, NULL);
}
