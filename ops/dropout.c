/*
 * ops/dropout.c - inverted dropout with an explicit random generator.
 *
 * At training time each element is kept with probability 1 - p and scaled by
 * 1 / (1 - p). The keep/drop mask is drawn from the caller's tg_rng when the op
 * is recorded and stored on the tape (one byte per element, in `aux`), so
 * backward applies exactly the mask that forward used, and replaying a recording
 * with the same generator state gives the same mask. When not training or p == 0
 * the op records an identity (aux NULL) and draws nothing.
 *
 * Params: p.f[0] = p.
 */
#include "ops-impl.h"

static void dropout_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    const uint8_t *keep = out->aux; /* (numel) or NULL: identity */
    double scale = 1.0 / (1.0 - out->p.f[0]);
    for (int64_t i = 0; i < out->numel; i++) {
        double v = tg__load(x->data, x->dtype, i);
        /* a dropped element is v * 0, so that a NaN stays NaN */
        tg__store(out->data, out->dtype, i, keep ? v * (keep[i] ? scale : 0.0) : v);
    }
}

/* dx_i += dy_i * keep_i / (1 - p): the same mask, the same scale */
static void dropout_bwd(struct tg_tensor *out)
{
    struct tg_tensor *x = out->in[0];
    if (!x->requires_grad) return;
    const uint8_t *keep = out->aux;
    double scale = 1.0 / (1.0 - out->p.f[0]);
    for (int64_t i = 0; i < out->numel; i++) {
        double g = tg__load(out->grad, out->dtype, i);
        double d = keep ? (keep[i] ? g * scale : 0.0) : g;
        tg__store(x->grad, x->dtype, i, tg__load(x->grad, x->dtype, i) + d);
    }
}

/* The parameter: p (the node's own; an identity node keeps the p it was given). */
static int dropout_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = out->p.f[0];
    return 1;
}

/* The differentiable VJP (the descriptor's vjp_graph): dx = dy * (keep / (1 - p))
 * with the node's own mask (aux) as a constant; dy itself for an identity node.
 * A dropped element's gradient is dy * 0 here (NaN for a NaN dy), where the
 * kernel stores 0. */
static enum tg_status dropout_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                  const bool *need, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    const uint8_t *keep = out->aux;
    if (!keep) {
        dx[0] = dy;
        return TG_OK;
    }
    double scale = 1.0 / (1.0 - out->p.f[0]);
    struct tg_tensor *m = tg__vjp_const(T, out->dtype, out->rank, out->shape);
    for (int64_t i = 0; m && i < out->numel; i++)
        tg__store(m->data, m->dtype, i, keep[i] ? scale : 0.0);
    if (!m || !(dx[0] = tg_mul(T, dy, m))) return tg__vjp_failure();
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_dropout = {
    .op = TG_OP_DROPOUT,
    .name = "dropout",
    .arity = 1,
    .formula =
        "y_i = x_i * keep_i / (1 - p), keep_i ~ Bernoulli(1 - p) (training); y = x otherwise",
    .vjp = "dx_i += dy_i * keep_i / (1 - p)  (the recorded mask)",
    .shape = tg__shape_same,
    .forward = dropout_fwd,
    .backward = dropout_bwd,
    .mixed_dtypes = false,
    .elementwise = true,
    .params = dropout_params,
    .vjp_graph = dropout_vjp,
    .operands = "x -> y ; p"};

struct tg_tensor *tg_dropout(struct tg_tape *T, struct tg_tensor *x, double p, bool training,
                             struct tg_rng *rng)
{
    union tg_params prm = {.f = {p, 0}};
    if (!x || !T) return tg__op_record(T, &tg_op_desc_dropout, 1, &x, &prm, NULL);
    if (!(p >= 0 && p < 1)) {
        tg__fail(TG_ERR_VALUE, "dropout: p = %g is outside [0, 1)", p);
        return NULL;
    }
    uint8_t *keep = NULL; /* (numel) */
    if (training && p > 0) {
        if (!rng) {
            tg__fail(TG_ERR_NULL, "dropout: rng is NULL (needed when training with p > 0)");
            return NULL;
        }
        /* validate before drawing, so that a failed call leaves rng alone */
        if (tg__check_input(T, "dropout", x)) return NULL;
        keep = tg__tape_alloc(T, (size_t)(x->numel ? x->numel : 1));
        if (!keep) return NULL;
        for (int64_t i = 0; i < x->numel; i++) keep[i] = tg_rng_uniform(rng) >= p;
    }
    return tg__op_record(T, &tg_op_desc_dropout, 1, &x, &prm, keep);
}
