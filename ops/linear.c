/*
 * ops/linear.c - y = act(x W^T + b) as one op: a fused layer, for speed.
 *
 * Forward: the GEMM writes x W^T, then one pass adds the bias and applies the
 * activation in place. Backward forms g = dy * act'(y) (from the output: relu,
 * tanh and sigmoid need no saved input) in a buffer that forward takes from the
 * tape when the node needs a gradient, adding the column sums of g into db in the same pass, then
 * two GEMMs with beta = 1: dx += g W and dW += g^T x. The elementwise passes run on one core while
 * the GEMMs use every BLAS thread, so each pass saved counts twice at two threads. Under
 * tg_backward_apply, W's and b's updates may be folded in: the GEMM writes W = beta W + alpha g^T x
 * straight into W (no dW, no separate update pass).
 */
#include <stdio.h>
#include "ops-impl.h"

struct linear_geom {
    int64_t batch, in, out; /* x (batch, in), W (out, in), y (batch, out) */
};

static void geom_of(const struct tg_tensor *o, struct linear_geom *g)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1];
    g->batch = x->rank == 2 ? x->shape[0] : 1;
    g->in = W->shape[1];
    g->out = W->shape[0];
}

/* Checks the shapes and sets y's; the message is formatted only on failure. */
static enum tg_status linear_shape(struct tg_tensor *o)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    bool ok = (x->rank == 1 || x->rank == 2) && W->rank == 2 &&
              x->shape[x->rank - 1] == W->shape[1] &&
              (!b || (b->rank == 1 && b->shape[0] == W->shape[0]));
    bool fits = ok && x->shape[x->rank - 1] <= INT32_MAX && W->shape[0] <= INT32_MAX &&
                (x->rank == 1 || x->shape[0] <= INT32_MAX);
    if (!fits) {
        char sx[96], sw[96], sb[96] = "none";
        tg_tensor_format_shape(sx, sizeof sx, x->rank, x->shape);
        tg_tensor_format_shape(sw, sizeof sw, W->rank, W->shape);
        if (b) tg_tensor_format_shape(sb, sizeof sb, b->rank, b->shape);
        if (!ok)
            return tg__fail(TG_ERR_SHAPE,
                            "linear: x %s, W %s and b %s do not fit (want x (B,in) or (in), "
                            "W (out,in), b (out))",
                            sx, sw, sb);
        return tg__fail(TG_ERR_RANGE, "linear: a dimension of %s or %s exceeds INT_MAX", sx, sw);
    }
    o->rank = x->rank;
    if (x->rank == 2) o->shape[0] = x->shape[0];
    o->shape[x->rank - 1] = W->shape[0];
    return TG_OK;
}

#define T float
#include "linear-kernels.inc"
#undef T
#define T double
#include "linear-kernels.inc"
#undef T

/* y = act(x W^T + b). When the node needs a gradient (the recorder has decided
 * by now) and has an activation, it also takes backward's buffer g (batch, out)
 * from the tape; if the tape cannot give it, backward works without it, and the
 * call has not failed (the out-of-memory record is dropped). */
static void linear_fwd(struct tg_tensor *o)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    struct linear_geom g;
    geom_of(o, &g);
    tg__gemm(o->dtype, false, true, g.batch, g.out, g.in, 1.0, x->data, g.in, W->data, g.in, 0.0,
             o->data, g.out);
    int act = (int)o->p.i[0];
    const void *bias = b ? b->data : NULL;
    if (o->dtype == TG_F64)
        act_fwd_double(o->data, bias, g.batch, g.out, act);
    else
        act_fwd_float(o->data, bias, g.batch, g.out, act);
    o->aux = NULL;
    if (o->requires_grad && act != TG_ACT_NONE) {
        enum tg_status before = tg_last_status();
        o->aux = tg__tape_alloc(o->tape, (size_t)(g.batch * g.out) * tg__esize(o->dtype));
        if (!o->aux && before == TG_OK) tg_clear_error(); /* not a failure of the call */
    }
}

enum { BLOCK = 256 };

/* g for row r, outputs c0 .. c0+w-1 (w <= BLOCK), into blk; adds it into db
 * (scaled by alpha) when db is not NULL. */
static void g_block(const struct tg_tensor *o, int64_t r, int64_t c0, int64_t w, void *blk,
                    void *db, double alpha, int act)
{
    int64_t at = r * o->shape[o->rank - 1] + c0;
    if (o->dtype == TG_F64) {
        const double *dy = (const double *)o->grad + at, *y = (const double *)o->data + at;
        double *gb = blk, *d = db;
        for (int64_t c = 0; c < w; c++) gb[c] = dact_double(dy[c], y[c], act);
        for (int64_t c = 0; d && c < w; c++) d[c0 + c] += alpha * gb[c];
    } else {
        const float *dy = (const float *)o->grad + at, *y = (const float *)o->data + at;
        float *gb = blk, *d = db;
        for (int64_t c = 0; c < w; c++) gb[c] = dact_float(dy[c], y[c], act);
        for (int64_t c = 0; d && c < w; c++) d[c0 + c] += (float)alpha * gb[c];
    }
}

/* Backward without the buffer g (the tape had no memory for it in forward): the
 * same products by blocks of one row and up to BLOCK outputs, g recomputed in
 * each of two passes. The first (dx, db) reads W's old value, so it runs before
 * the second (dW, or W updated in place). */
static void linear_bwd_unbuffered(struct tg_tensor *o, const struct linear_geom *g, void *db,
                                  double alpha, double beta)
{
    struct tg_tensor *x = o->in[0], *W = o->in[1];
    int act = (int)o->p.i[0], dt = o->dtype;
    size_t es = tg__esize(dt);
    double blk[BLOCK]; /* (w) of dtype */
    if (db && beta != 1)
        for (int64_t c = 0; c < g->out; c++) tg__store(db, dt, c, beta * tg__load(db, dt, c));
    for (int64_t r = 0; r < g->batch && (db || x->requires_grad); r++)
        for (int64_t c0 = 0; c0 < g->out; c0 += BLOCK) {
            int64_t w = g->out - c0 < BLOCK ? g->out - c0 : BLOCK;
            g_block(o, r, c0, w, blk, db, alpha, act);
            if (x->requires_grad) /* dx_r (1, in) += g (1, w) W[c0 .. c0+w) (w, in) */
                tg__gemm(dt, false, false, 1, g->in, w, 1.0, blk, w,
                         (const char *)W->data + (size_t)(c0 * g->in) * es, g->in, 1.0,
                         (char *)x->grad + (size_t)(r * g->in) * es, g->in);
        }
    if (!W->requires_grad) return;
    struct tg__apply *f = tg__fold_at(o, 1);
    for (int64_t r = 0; r < g->batch; r++)
        for (int64_t c0 = 0; c0 < g->out; c0 += BLOCK) {
            int64_t w = g->out - c0 < BLOCK ? g->out - c0 : BLOCK;
            g_block(o, r, c0, w, blk, NULL, 0, act);
            /* dW[c0 .. c0+w) (w, in) += g^T (w, 1) x_r (1, in), or W updated */
            tg__gemm(dt, true, false, w, g->in, 1, f ? f->alpha : 1.0, blk, w,
                     (const char *)x->data + (size_t)(r * g->in) * es, g->in,
                     f && r == 0 ? f->beta : 1.0,
                     (char *)(f ? W->data : W->grad) + (size_t)(c0 * g->in) * es, g->in);
        }
    if (f) f->done = true;
}

static void linear_bwd(struct tg_tensor *o)
{
    struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    struct linear_geom g;
    geom_of(o, &g);
    int act = (int)o->p.i[0], dt = o->dtype;
    /* b's gradient (or b itself, with its update folded in) from the same pass */
    struct tg__apply *fb = b && b->requires_grad ? tg__fold_at(o, 2) : NULL;
    void *db = b && b->requires_grad ? (fb ? b->data : b->grad) : NULL;
    double alpha = fb ? fb->alpha : 1.0, beta = fb ? fb->beta : 1.0;
    if (act != TG_ACT_NONE && !o->aux) {
        linear_bwd_unbuffered(o, &g, db, alpha, beta);
        if (fb) fb->done = true;
        return;
    }
    const void *G = o->grad; /* (batch, out): dy, or dy * act'(y) in aux */
    if (act != TG_ACT_NONE) {
        if (dt == TG_F64)
            act_bwd_double(o->aux, o->grad, o->data, db, g.batch, g.out, act, alpha, beta);
        else
            act_bwd_float(o->aux, o->grad, o->data, db, g.batch, g.out, act, (float)alpha,
                          (float)beta);
        G = o->aux;
    } else if (db) {
        if (dt == TG_F64)
            colsum_double(db, G, g.batch, g.out, alpha, beta);
        else
            colsum_float(db, G, g.batch, g.out, (float)alpha, (float)beta);
    }
    if (fb) fb->done = true;
    if (x->requires_grad) /* dx (batch, in) += G (batch, out) W (out, in), W's old value */
        tg__gemm(dt, false, false, g.batch, g.in, g.out, 1.0, G, g.out, W->data, g.in, 1.0, x->grad,
                 g.in);
    if (W->requires_grad) { /* dW (out, in) += G^T (out, batch) x (batch, in), or W updated */
        struct tg__apply *f = tg__fold_at(o, 1);
        tg__gemm(dt, true, false, g.out, g.in, g.batch, f ? f->alpha : 1.0, G, g.out, x->data, g.in,
                 f ? f->beta : 1.0, f ? W->data : W->grad, g.in);
        if (f) f->done = true;
    }
}

/* W and b can take their update inside backward (W's GEMM with alpha and beta,
 * b's column sums); x cannot (its gradient GEMM reads W before W's update). */
static bool linear_can_fold(const struct tg_tensor *o, uint32_t slot)
{
    return slot == 1 || slot == 2;
}

/* The parameter: the activation (enum tg_act) as a number. */
static int linear_params(const struct tg_tensor *o, double *vals)
{
    vals[0] = (double)o->p.i[0];
    return 1;
}

/* The differentiable VJP (the descriptor's vjp_graph): the same products as
 * backward, recorded as ops: g = dy * act'(y) (from y as backward takes it;
 * relu's mask [y > 0] a constant, NaN at a NaN), dx = g W, dW = g^T x (an outer
 * product for a vector x), db = sum over the batch of g. */
static double relu_mask(double y)
{
    return y > 0 ? 1 : (y <= 0 ? 0 : y);
}

static enum tg_status linear_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    struct tg_tensor *x = o->in[0], *W = o->in[1], *g = dy;
    int act = (int)o->p.i[0];
    if (!need[0] && !need[1] && !(o->n_in > 2 && need[2])) return TG_OK;
    if (act == TG_ACT_RELU) {
        struct tg_tensor *m = tg__vjp_const(T, o->dtype, o->rank, o->shape);
        for (int64_t i = 0; m && i < o->numel; i++)
            tg__store(m->data, m->dtype, i, relu_mask(tg__load(o->data, o->dtype, i)));
        g = m ? tg_mul(T, dy, m) : NULL;
    } else if (act == TG_ACT_TANH) {
        g = tg_mul(T, dy, tg_rsub_scalar(T, 1, tg_mul(T, o, o)));
    } else if (act == TG_ACT_SIGMOID) {
        g = tg_mul(T, dy, tg_mul(T, o, tg_rsub_scalar(T, 1, o)));
    }
    if (!g) return tg__vjp_failure();
    if (need[0] && !(dx[0] = tg_matmul(T, g, W))) return tg__vjp_failure();
    if (need[1]) {
        struct tg_tensor *dW;
        if (x->rank == 2) {
            dW = tg_matmul_t(T, g, x, true, false);
        } else { /* (out, 1) (1, in) */
            int64_t gs[2] = {W->shape[0], 1}, xs[2] = {1, W->shape[1]};
            dW = tg_matmul(T, tg_reshape(T, g, 2, gs), tg_reshape(T, x, 2, xs));
        }
        if (!(dx[1] = dW)) return tg__vjp_failure();
    }
    if (o->n_in > 2 && need[2]) {
        dx[2] = x->rank == 2 ? tg_sum_axes(T, g, (int[]){0}, 1, false) : g;
        if (!dx[2]) return tg__vjp_failure();
    }
    return TG_OK;
}

/* The rule of this node: act' written out for the node's activation, and no
 * db term without a bias. */
static void linear_rule(const struct tg_tensor *o, char *buf, size_t size)
{
    static const char *const g[] = {"g = dy", "g = dy * [y > 0]", "g = dy * (1 - y^2)",
                                    "g = dy * y (1 - y)"};
    int64_t act = o->p.i[0];
    snprintf(buf, size, "%s; dx += g W; dW += g^T x%s",
             act >= 0 && act < 4 ? g[act] : "g = dy * act'(y)",
             o->n_in > 2 ? "; db += sum_batch g" : "");
}

const struct tg_op_desc tg_op_desc_linear = {
    .op = TG_OP_LINEAR,
    .name = "linear",
    .arity = -1,
    .formula = "y = act(x W^T + b), fused (act: none, relu, tanh, sigmoid)",
    .vjp = "g = dy * act'(y); dx += g W; dW += g^T x; db += sum_batch g",
    .shape = linear_shape,
    .forward = linear_fwd,
    .backward = linear_bwd,
    .can_fold = linear_can_fold,
    .mixed_dtypes = false,
    .params = linear_params,
    .vjp_graph = linear_vjp,
    .rule = linear_rule,
    .operands = "x W b -> y"};

struct tg_tensor *tg_linear(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, enum tg_act act)
{
    if ((int)act < TG_ACT_NONE || (int)act > TG_ACT_SIGMOID) {
        if (x && W)
            tg__fail(TG_ERR_VALUE,
                     act == TG_ACT_LEAKY_RELU || act == TG_ACT_SOFTPLUS
                         ? "linear: activation %d is not fused (record it after a linear "
                           "with TG_ACT_NONE)"
                         : "linear: unknown activation %d",
                     (int)act);
        else
            tg__null_input("linear", x ? "W" : "x");
        return NULL;
    }
    struct tg_tensor *in[3] = {x, W, b};
    union tg_params p = {.i = {act, 0}};
    return tg__op_record(T, &tg_op_desc_linear, b ? 3 : 2, in, &p, NULL);
}
