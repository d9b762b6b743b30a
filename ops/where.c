/*
 * ops/where.c - selection: where(cond, a, b) and clamp(x, lo, hi).
 *
 * Both are elementwise and piecewise: the gradient passes through where the
 * output took its value from an input and is 0 elsewhere, so their
 * differentiable VJPs multiply dy by a 0/1 mask recorded as a tape constant.
 * where's node keeps its inputs as (a, b, cond), so that the output takes a's
 * dtype; cond may have another dtype and its 0/1 values are checked when the op
 * is recorded. clamp's gradient at a boundary (x == lo or x == hi) is 1, as
 * PyTorch's: the inside's.
 */
#include <stdio.h>
#include "ops-impl.h"

/* ---- where: inputs (a, b, cond) ---- */

/* a and b of one dtype; y has the broadcast shape of a, b and cond. */
static enum tg_status where_shape(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0], *b = out->in[1], *c = out->in[2];
    if (a->dtype != b->dtype)
        return tg__fail(TG_ERR_DTYPE, "where: a is %s but b is %s",
                        tg_dtype_name((enum tg_dtype)a->dtype),
                        tg_dtype_name((enum tg_dtype)b->dtype));
    enum tg_status st = tg__broadcast_shape("where", a, b, out);
    if (st) return st;
    struct tg_tensor ab = {.rank = out->rank};
    memcpy(ab.shape, out->shape, sizeof ab.shape);
    return tg__broadcast_shape("where", &ab, c, out);
}

/* The flat offsets into a, b and cond of output element i. */
struct where_it {
    int64_t st[3][TG_MAX_DIM];
};
static void where_offsets(const struct tg_tensor *out, const struct where_it *it, int64_t i,
                          int64_t *off)
{
    off[0] = off[1] = off[2] = 0;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t k = i % out->shape[d];
        i /= out->shape[d];
        for (int j = 0; j < 3; j++) off[j] += k * it->st[j][d];
    }
}
static void where_strides(const struct tg_tensor *out, struct where_it *it)
{
    for (int j = 0; j < 3; j++) tg__bcast_strides(out->in[j], out, it->st[j]);
}

/* y_i = cond_i ? a_i : b_i */
static void where_fwd(struct tg_tensor *out)
{
    struct where_it it;
    where_strides(out, &it);
    const struct tg_tensor *a = out->in[0], *b = out->in[1], *c = out->in[2];
    for (int64_t i = 0; i < out->numel; i++) {
        int64_t o[3];
        where_offsets(out, &it, i, o);
        bool pick_a = tg__load(c->data, c->dtype, o[2]) != 0;
        double v = pick_a ? tg__load(a->data, a->dtype, o[0]) : tg__load(b->data, b->dtype, o[1]);
        tg__store(out->data, out->dtype, i, v);
    }
}

/* da_i += cond_i dy_i; db_i += (1 - cond_i) dy_i (summed over broadcast axes) */
static void where_bwd(struct tg_tensor *out)
{
    struct where_it it;
    where_strides(out, &it);
    struct tg_tensor *c = out->in[2];
    for (int64_t i = 0; i < out->numel; i++) {
        int64_t o[3];
        where_offsets(out, &it, i, o);
        int j = tg__load(c->data, c->dtype, o[2]) != 0 ? 0 : 1;
        struct tg_tensor *x = out->in[j];
        if (!x->requires_grad) continue;
        double g = tg__load(out->grad, out->dtype, i);
        tg__store(x->grad, x->dtype, o[j], tg__load(x->grad, x->dtype, o[j]) + g);
    }
}

/* da = sum_to(dy * m), db = sum_to(dy * (1 - m)), m = cond broadcast (a constant) */
static enum tg_status where_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                const bool *need, struct tg_tensor **dx)
{
    struct where_it it;
    where_strides(out, &it);
    const struct tg_tensor *c = out->in[2];
    if (need[2]) dx[2] = NULL; /* cond: no gradient (identically zero) */
    for (int j = 0; j < 2; j++) {
        if (!need[j]) continue;
        struct tg_tensor *m = tg__vjp_const(T, out->dtype, out->rank, out->shape);
        for (int64_t i = 0; m && i < out->numel; i++) {
            int64_t o[3];
            where_offsets(out, &it, i, o);
            bool on = tg__load(c->data, c->dtype, o[2]) != 0;
            tg__store(m->data, m->dtype, i, on == (j == 0) ? 1.0 : 0.0);
        }
        const struct tg_tensor *x = out->in[j];
        if (!m || !(dx[j] = tg__sum_to(T, tg_mul(T, dy, m), x->rank, x->shape)))
            return tg__vjp_failure();
    }
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_where = {
    .op = TG_OP_WHERE,
    .name = "where",
    .arity = 3,
    .formula = "y_i = c_i ? a_i : b_i (broadcast; c in {0, 1})",
    .vjp = "da_i += c_i dy_i; db_i += (1 - c_i) dy_i; c gets none",
    .operands = "a b c -> y",
    .shape = where_shape,
    .forward = where_fwd,
    .backward = where_bwd,
    .mixed_dtypes = true,
    .elementwise = true,
    .vjp_graph = where_vjp};

struct tg_tensor *tg_where(struct tg_tape *T, struct tg_tensor *cond, struct tg_tensor *a,
                           struct tg_tensor *b)
{
    struct tg_tensor *in[3] = {a, b, cond};
    const char *missing = !cond ? "cond" : !a ? "a" : !b ? "b" : NULL;
    if (missing) {
        tg__null_input("where", missing);
        return NULL;
    }
    if (!T) return tg__op_record(T, &tg_op_desc_where, 3, in, NULL, NULL);
    if (tg__check_input(T, "where", cond)) return NULL;
    for (int64_t i = 0; i < cond->numel; i++) {
        double v = tg__load(cond->data, cond->dtype, i);
        if (v != 0 && v != 1) {
            tg__fail(TG_ERR_VALUE, "where: cond holds %g at position %lld (only 0 and 1 allowed)",
                     v, (long long)i);
            return NULL;
        }
    }
    return tg__op_record(T, &tg_op_desc_where, 3, in, NULL, NULL);
}

/* ---- clamp: p.f = {lo, hi} ---- */

/* y_i = min(max(x_i, lo), hi), NaN kept */
static void clamp_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    double lo = out->p.f[0], hi = out->p.f[1];
    for (int64_t i = 0; i < out->numel; i++) {
        double v = tg__load(x->data, x->dtype, i);
        tg__store(out->data, out->dtype, i, v < lo ? lo : v > hi ? hi : v);
    }
}

/* dy_i/dx_i: 1 for lo <= x_i <= hi, 0 outside, NaN for a NaN x_i (a NaN value
 * has no derivative). */
static double clamp_slope(const struct tg_tensor *out, int64_t i)
{
    double v = tg__load(out->in[0]->data, out->in[0]->dtype, i);
    return v != v ? v : v >= out->p.f[0] && v <= out->p.f[1] ? 1.0 : 0.0;
}

/* dx_i += dy_i when lo <= x_i <= hi */
static void clamp_bwd(struct tg_tensor *out)
{
    struct tg_tensor *x = out->in[0];
    if (!x->requires_grad) return;
    for (int64_t i = 0; i < out->numel; i++) {
        double s = clamp_slope(out, i);
        if (s != 0)
            tg__store(x->grad, x->dtype, i,
                      tg__load(x->grad, x->dtype, i) + s * tg__load(out->grad, out->dtype, i));
    }
}

static int clamp_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = out->p.f[0];
    vals[1] = out->p.f[1];
    return 2;
}

/* dx = dy * m, m the node's mask of slopes (a constant) */
static enum tg_status clamp_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                const bool *need, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    struct tg_tensor *m = tg__vjp_const(T, out->dtype, out->rank, out->shape);
    for (int64_t i = 0; m && i < out->numel; i++)
        tg__store(m->data, m->dtype, i, clamp_slope(out, i));
    if (!m || !(dx[0] = tg_mul(T, dy, m))) return tg__vjp_failure();
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_clamp = {
    .op = TG_OP_CLAMP,
    .name = "clamp",
    .arity = 1,
    .formula = "y_i = min(max(x_i, lo), hi)",
    .vjp = "dx_i += dy_i where lo <= x_i <= hi (1 at a boundary)",
    .shape = tg__shape_same,
    .forward = clamp_fwd,
    .backward = clamp_bwd,
    .elementwise = true,
    .params = clamp_params,
    .vjp_graph = clamp_vjp};

struct tg_tensor *tg_clamp(struct tg_tape *T, struct tg_tensor *x, double lo, double hi)
{
    union tg_params p = {.f = {lo, hi}};
    if (x && T && !(lo <= hi)) { /* also false for a NaN bound */
        tg__fail(TG_ERR_VALUE, "clamp: bounds lo = %g, hi = %g (need lo <= hi, neither NaN)", lo,
                 hi);
        return NULL;
    }
    return tg__op_record(T, &tg_op_desc_clamp, 1, &x, &p, NULL);
}
