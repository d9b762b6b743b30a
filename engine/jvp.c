/*
 * engine/jvp.c - forward mode: Jacobian-vector products J v by transposing the
 * recorded vector-Jacobian product (the "double-backward trick").
 *
 * For outputs y_k(x) and a cotangent u_k per output, tg_grad with create_graph
 * records g(u) = sum_k J_k^T u_k as ops: a function of u that is linear, since
 * every VJP is linear in its upstream gradient. Its own VJP, seeded with the
 * tangent v, is d<g(u), v>/du_k = J_k v. So two tg_grad calls give J v with no
 * tangent rule per op: every op with a differentiable VJP (all of the table)
 * has a JVP. The value of u does not matter (g is linear in it); u_k is a zero
 * node "jvp_seed" recorded from y_k, so that it lives on the tape, requires grad
 * exactly when y_k does, and has a zero derivative with respect to y_k (J v does
 * not depend on u). docs/jacobian.md says what it costs against a gradient.
 */
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/grad.h"

/* ---- jvp_seed: y = 0, shaped like x (the dummy cotangent) ---- */

static enum tg_status jvp_seed_shape(struct tg_tensor *out)
{
    out->rank = out->in[0]->rank;
    memcpy(out->shape, out->in[0]->shape, sizeof out->shape);
    return TG_OK;
}

static void jvp_seed_forward(struct tg_tensor *out)
{
    for (int64_t i = 0; i < out->numel; i++) tg__store(out->data, out->dtype, i, 0.0);
}

/* dy/dx = 0: nothing to add */
static void jvp_seed_backward(struct tg_tensor *out)
{
    (void)out;
}

static enum tg_status jvp_seed_vjp_graph(struct tg_tape *T, struct tg_tensor *out,
                                         struct tg_tensor *dy, const bool *need,
                                         struct tg_tensor **dx)
{
    (void)T;
    (void)out;
    (void)dy;
    (void)need;
    dx[0] = NULL; /* identically zero */
    return TG_OK;
}

/* Not an op of the table (op -1, tg_tensor_op reports TG_OP_NONE): only tg_jvp
 * records it. */
static const struct tg_op_desc jvp_seed_desc = {
    .op = -1,
    .name = "jvp_seed",
    .arity = 1,
    .formula = "y = 0 shaped like x (the cotangent that tg_jvp differentiates against)",
    .vjp = "dx += 0",
    .shape = jvp_seed_shape,
    .forward = jvp_seed_forward,
    .backward = jvp_seed_backward,
    .elementwise = true,
    .vjp_graph = jvp_seed_vjp_graph,
};

/* ---- checks ---- */

static bool same_shape(const struct tg_tensor *a, const struct tg_tensor *b)
{
    bool same = a->rank == b->rank;
    for (int d = 0; same && d < a->rank; d++) same = a->shape[d] == b->shape[d];
    return same;
}

static enum tg_status check_args(int n_out, struct tg_tensor *const *outputs, int n_in,
                                 struct tg_tensor *const *inputs, struct tg_tensor *const *v)
{
    char arg[32];
    if (!outputs || n_out < 1) return tg__fail(TG_ERR_NULL, "tg_jvp: no outputs");
    if (!inputs || n_in < 1) return tg__fail(TG_ERR_NULL, "tg_jvp: no inputs");
    if (!v) return tg__fail(TG_ERR_NULL, "tg_jvp: v is NULL");
    for (int k = 0; k < n_out; k++) {
        snprintf(arg, sizeof arg, "output %d", k);
        if (!outputs[k]) return tg__null_input("tg_jvp", arg);
        if (tg__check_live("tg_jvp", arg, outputs[k])) return TG_ERR_STALE;
        if (outputs[k]->kind == TG_KIND_LEAF)
            return tg__fail(TG_ERR_TAPE, "tg_jvp: output %d is a leaf, not a tensor of a tape", k);
        if (outputs[k]->tape != outputs[0]->tape)
            return tg__fail(TG_ERR_TAPE, "tg_jvp: outputs 0 and %d are on different tapes", k);
    }
    for (int i = 0; i < n_in; i++) {
        snprintf(arg, sizeof arg, "input %d", i);
        if (!inputs[i]) return tg__null_input("tg_jvp", arg);
        if (tg__check_live("tg_jvp", arg, inputs[i])) return TG_ERR_STALE;
        snprintf(arg, sizeof arg, "v %d", i);
        if (!v[i]) return tg__fail(TG_ERR_NULL, "tg_jvp: v %d is NULL", i);
        if (tg__check_live("tg_jvp", arg, v[i])) return TG_ERR_STALE;
        if (v[i]->kind != TG_KIND_LEAF && v[i]->tape != outputs[0]->tape)
            return tg__fail(TG_ERR_TAPE, "tg_jvp: v %d is on a different tape than the outputs", i);
        if (!same_shape(v[i], inputs[i])) {
            char a[160], b[160];
            tg_tensor_format_shape(a, sizeof a, v[i]->rank, v[i]->shape);
            tg_tensor_format_shape(b, sizeof b, inputs[i]->rank, inputs[i]->shape);
            return tg__fail(TG_ERR_SHAPE, "tg_jvp: v %d has shape %s but input %d has shape %s", i,
                            a, i, b);
        }
        if (v[i]->dtype != inputs[i]->dtype)
            return tg__fail(TG_ERR_DTYPE, "tg_jvp: v %d is %s but input %d is %s", i,
                            tg_dtype_name((enum tg_dtype)v[i]->dtype), i,
                            tg_dtype_name((enum tg_dtype)inputs[i]->dtype));
    }
    return TG_OK;
}

/* ---- the two sweeps ---- */

struct work {
    struct tg_tensor **u;  /* (n_out) the cotangents: jvp_seed nodes, or zero constants */
    struct tg_tensor **g;  /* (n_in) g(u) = J^T u */
    struct tg_tensor **uu; /* (n_out) the u that require grad */
    struct tg_tensor **r;  /* (n_out) their gradients: J v */
    int *at;               /* (n_out) index of output k in uu, or -1 */
};

/* g = J^T u recorded with create_graph, with gradient tracking on even inside
 * the caller's no-grad scopes (lifted for this sweep only, then put back). */
static enum tg_status transpose(struct tg_tape *T, int n_out, struct tg_tensor *const *outputs,
                                int n_in, struct tg_tensor *const *inputs, bool allow_unused,
                                struct work *w)
{
    int lifted = 0;
    while (!tg_tape_grad_enabled(T) && !tg_tape_no_grad_pop(T)) lifted++;
    enum tg_status st = TG_OK;
    for (int k = 0; !st && k < n_out; k++) {
        struct tg_tensor *y = outputs[k];
        w->u[k] = y->requires_grad
                      ? tg__op_record(T, &jvp_seed_desc, 1, &y, NULL, NULL)
                      : tg_tape_constant(T, (enum tg_dtype)y->dtype, y->rank, y->shape, NULL);
        if (!w->u[k]) st = tg_last_status();
    }
    struct tg_grad_options first = {.create_graph = true, .allow_unused = allow_unused};
    if (!st) st = tg_grad(n_out, outputs, w->u, n_in, inputs, &first, w->g);
    while (lifted-- > 0) tg_tape_no_grad_push(T);
    return st;
}

static enum tg_status run(int n_out, struct tg_tensor *const *outputs, int n_in,
                          struct tg_tensor *const *inputs, struct tg_tensor *const *v,
                          const struct tg_grad_options *o, struct work *w, struct tg_tensor **jv)
{
    struct tg_tape *T = outputs[0]->tape;
    enum tg_status st = transpose(T, n_out, outputs, n_in, inputs, o->allow_unused, w);
    if (st) return st;
    int m = 0;
    for (int k = 0; k < n_out; k++) {
        w->at[k] = w->u[k]->requires_grad ? m : -1;
        if (w->u[k]->requires_grad) w->uu[m++] = w->u[k];
    }
    /* J v = d<g(u), v>/du; a u that g does not depend on gets zeros */
    struct tg_grad_options second = {.create_graph = o->create_graph, .allow_unused = true};
    if (m && (st = tg_grad(n_in, w->g, v, m, w->uu, &second, w->r))) return st;
    for (int k = 0; k < n_out; k++) {
        const struct tg_tensor *y = outputs[k];
        jv[k] = w->at[k] >= 0
                    ? w->r[w->at[k]]
                    : tg_tape_constant(T, (enum tg_dtype)y->dtype, y->rank, y->shape, NULL);
        if (!jv[k]) return tg_last_status();
    }
    return TG_OK;
}

enum tg_status tg_jvp(int n_out, struct tg_tensor *const *outputs, int n_in,
                      struct tg_tensor *const *inputs, struct tg_tensor *const *v,
                      const struct tg_grad_options *options, struct tg_tensor **jv)
{
    for (int k = 0; jv && k < n_out; k++) jv[k] = NULL;
    if (!jv) return tg__fail(TG_ERR_NULL, "tg_jvp: jv is NULL");
    enum tg_status st = check_args(n_out, outputs, n_in, inputs, v);
    if (st) return st;
    struct tg_grad_options o = options ? *options : (struct tg_grad_options){0};
    struct work w = {
        .u = tg__calloc((size_t)n_out, sizeof *w.u),
        .g = tg__calloc((size_t)n_in, sizeof *w.g),
        .uu = tg__calloc((size_t)n_out, sizeof *w.uu),
        .r = tg__calloc((size_t)n_out, sizeof *w.r),
        .at = tg__calloc((size_t)n_out, sizeof *w.at),
    };
    st = w.u && w.g && w.uu && w.r && w.at ? run(n_out, outputs, n_in, inputs, v, &o, &w, jv)
                                           : TG_ERR_NOMEM;
    tg__free(w.u);
    tg__free(w.g);
    tg__free(w.uu);
    tg__free(w.r);
    tg__free(w.at);
    if (st) {
        for (int k = 0; k < n_out; k++) jv[k] = NULL;
        tg__rename_failure("tg_grad", "tg_jvp");
        return st;
    }
    tg__cause_consumed();
    return TG_OK;
}
