/*
 * tests/grad_testops.c - the tests' own ops with differentiable VJPs (see
 * grad_testops.h). Each is a descriptor of engine/engine-impl.h recorded with
 * tg__op_record, as ops/ does; values go through tg__load/tg__store so that one
 * kernel serves both dtypes.
 */
#include <math.h>
#include <string.h>
#include "../engine/engine-impl.h"
#include "grad_testops.h"

static enum tg_status same_shape(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0];
    for (uint32_t k = 1; k < out->n_in; k++) {
        const struct tg_tensor *b = out->in[k];
        bool same = a->rank == b->rank;
        for (int d = 0; same && d < a->rank; d++) same = a->shape[d] == b->shape[d];
        if (!same) return tg__fail(TG_ERR_SHAPE, "%s: shapes differ", out->desc->name);
    }
    out->rank = a->rank;
    memcpy(out->shape, a->shape, sizeof out->shape);
    return TG_OK;
}

#define LD(t, i)  tg__load((t)->data, (t)->dtype, i)
#define GLD(t, i) tg__load((t)->grad, (t)->dtype, i)
static void gadd(struct tg_tensor *x, int64_t i, double v)
{
    if (x->requires_grad) tg__store(x->grad, x->dtype, i, tg__load(x->grad, x->dtype, i) + v);
}

static struct tg_tensor *rec(struct tg_tape *T, const struct tg_op_desc *d, struct tg_tensor *a,
                             struct tg_tensor *b)
{
    struct tg_tensor *in[2] = {a, b};
    if (!a || (d->arity == 2 && !b)) return NULL;
    return tg__op_record(T, d, d->arity, in, NULL, NULL);
}

/* ---- mul ---- */
static void mul_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++)
        tg__store(o->data, o->dtype, i, LD(o->in[0], i) * LD(o->in[1], i));
}
static void mul_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) {
        gadd(o->in[0], i, GLD(o, i) * LD(o->in[1], i));
        gadd(o->in[1], i, GLD(o, i) * LD(o->in[0], i));
    }
}
static enum tg_status mul_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    for (int k = 0; k < 2; k++)
        if (need[k] && !(dx[k] = t_mul(T, dy, o->in[1 - k]))) return tg_last_status();
    return TG_OK;
}
static const struct tg_op_desc mul_desc = {.op = -1,
                                           .name = "t_mul",
                                           .arity = 2,
                                           .shape = same_shape,
                                           .forward = mul_fwd,
                                           .backward = mul_bwd,
                                           .vjp_graph = mul_vjp};

/* ---- sin, cos, neg ---- */
static void sin_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) tg__store(o->data, o->dtype, i, sin(LD(o->in[0], i)));
}
static void sin_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) gadd(o->in[0], i, GLD(o, i) * cos(LD(o->in[0], i)));
}
static enum tg_status sin_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    (void)need;
    dx[0] = t_mul(T, dy, t_cos(T, o->in[0]));
    return dx[0] ? TG_OK : tg_last_status();
}
static const struct tg_op_desc sin_desc = {.op = -1,
                                           .name = "t_sin",
                                           .arity = 1,
                                           .shape = same_shape,
                                           .forward = sin_fwd,
                                           .backward = sin_bwd,
                                           .vjp_graph = sin_vjp};

static void cos_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) tg__store(o->data, o->dtype, i, cos(LD(o->in[0], i)));
}
static void cos_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) gadd(o->in[0], i, -GLD(o, i) * sin(LD(o->in[0], i)));
}
static enum tg_status cos_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    (void)need;
    dx[0] = t_neg(T, t_mul(T, dy, t_sin(T, o->in[0])));
    return dx[0] ? TG_OK : tg_last_status();
}
static const struct tg_op_desc cos_desc = {.op = -1,
                                           .name = "t_cos",
                                           .arity = 1,
                                           .shape = same_shape,
                                           .forward = cos_fwd,
                                           .backward = cos_bwd,
                                           .vjp_graph = cos_vjp};

static void neg_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) tg__store(o->data, o->dtype, i, -LD(o->in[0], i));
}
static void neg_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) gadd(o->in[0], i, -GLD(o, i));
}
static enum tg_status neg_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    (void)need;
    (void)o;
    dx[0] = t_neg(T, dy);
    return dx[0] ? TG_OK : tg_last_status();
}
static const struct tg_op_desc neg_desc = {.op = -1,
                                           .name = "t_neg",
                                           .arity = 1,
                                           .shape = same_shape,
                                           .forward = neg_fwd,
                                           .backward = neg_bwd,
                                           .vjp_graph = neg_vjp};

/* ---- sum and expand ---- */
static enum tg_status scalar_shape(struct tg_tensor *out)
{
    out->rank = 0;
    return TG_OK;
}
static void sum_fwd(struct tg_tensor *o)
{
    double s = 0;
    for (int64_t i = 0; i < o->in[0]->numel; i++) s += LD(o->in[0], i);
    tg__store(o->data, o->dtype, 0, s);
}
static void sum_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->in[0]->numel; i++) gadd(o->in[0], i, GLD(o, 0));
}
static enum tg_status sum_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                              const bool *need, struct tg_tensor **dx)
{
    (void)need;
    dx[0] = t_expand(T, dy, o->in[0]);
    return dx[0] ? TG_OK : tg_last_status();
}
static const struct tg_op_desc sum_desc = {.op = -1,
                                           .name = "t_sum",
                                           .arity = 1,
                                           .shape = scalar_shape,
                                           .forward = sum_fwd,
                                           .backward = sum_bwd,
                                           .vjp_graph = sum_vjp};

static enum tg_status expand_shape(struct tg_tensor *out)
{
    if (out->in[0]->numel != 1) return tg__fail(TG_ERR_SHAPE, "t_expand: not one element");
    out->rank = out->in[1]->rank;
    memcpy(out->shape, out->in[1]->shape, sizeof out->shape);
    return TG_OK;
}
static void expand_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) tg__store(o->data, o->dtype, i, LD(o->in[0], 0));
}
static void expand_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) gadd(o->in[0], 0, GLD(o, i));
}
static enum tg_status expand_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    /* like (input 2) gives only the shape: its gradient is zero (dx[1] NULL) */
    if (need[0] && !(dx[0] = t_sum(T, dy))) return tg_last_status();
    (void)o;
    return TG_OK;
}
static const struct tg_op_desc expand_desc = {.op = -1,
                                              .name = "t_expand",
                                              .arity = 2,
                                              .shape = expand_shape,
                                              .forward = expand_fwd,
                                              .backward = expand_bwd,
                                              .vjp_graph = expand_vjp};

/* ---- sin whose VJP records cos x as a constant: right to first order, wrong
 * (zero) to second: what tg_gradgradcheck must catch ---- */
static enum tg_status flat_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                               const bool *need, struct tg_tensor **dx)
{
    (void)need;
    struct tg_tensor *x = o->in[0];
    struct tg_tensor *c = tg_tape_constant(T, (enum tg_dtype)x->dtype, x->rank, x->shape, NULL);
    if (!c) return tg_last_status();
    for (int64_t i = 0; i < c->numel; i++) tg__store(c->data, c->dtype, i, cos(LD(x, i)));
    dx[0] = t_mul(T, dy, c);
    return dx[0] ? TG_OK : tg_last_status();
}
static const struct tg_op_desc flat_desc = {.op = -1,
                                            .name = "t_sin_flat",
                                            .arity = 1,
                                            .shape = same_shape,
                                            .forward = sin_fwd,
                                            .backward = sin_bwd,
                                            .vjp_graph = flat_vjp};

/* ---- without a vjp_graph ---- */
static void novjp_fwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) tg__store(o->data, o->dtype, i, 2 * LD(o->in[0], i));
}
static void novjp_bwd(struct tg_tensor *o)
{
    for (int64_t i = 0; i < o->numel; i++) gadd(o->in[0], i, 2 * GLD(o, i));
}
static const struct tg_op_desc novjp_desc = {.op = -1,
                                             .name = "t_novjp",
                                             .arity = 1,
                                             .shape = same_shape,
                                             .forward = novjp_fwd,
                                             .backward = novjp_bwd};

struct tg_tensor *t_mul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return rec(T, &mul_desc, a, b);
}
struct tg_tensor *t_sin(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &sin_desc, x, NULL);
}
struct tg_tensor *t_cos(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &cos_desc, x, NULL);
}
struct tg_tensor *t_neg(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &neg_desc, x, NULL);
}
struct tg_tensor *t_sum(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &sum_desc, x, NULL);
}
struct tg_tensor *t_expand(struct tg_tape *T, struct tg_tensor *s, struct tg_tensor *like)
{
    return rec(T, &expand_desc, s, like);
}
struct tg_tensor *t_novjp(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &novjp_desc, x, NULL);
}
struct tg_tensor *t_sin_flat(struct tg_tape *T, struct tg_tensor *x)
{
    return rec(T, &flat_desc, x, NULL);
}
