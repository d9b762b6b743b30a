/*
 * engine/anomaly.c - anomaly mode's checks and messages (tg_tape_set_anomaly).
 *
 * The tape calls these after an op's forward and after each backward step when
 * anomaly mode is on; they find the first NaN or Inf and say where it came from
 * in words: the op the user called, the element, the input values there.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"

/* The first element of buf (numel, dtype) that is NaN or infinite, or -1. */
int64_t tg__first_nonfinite(const void *buf, int dtype, int64_t numel)
{
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite(tg__load(buf, dtype, i))) return i;
    return -1;
}

/* "[3,1]" for flat index i of a tensor of that shape. */
void tg__format_index(char *buf, size_t size, int rank, const int64_t *shape, int64_t i)
{
    int64_t idx[TG_MAX_DIM];
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    tg_tensor_format_shape(buf, size, rank, idx);
    buf[0] = '[';
    size_t n = strlen(buf);
    if (n) buf[n - 1] = ']';
}

/* " at [3,1]" for flat index i of t, or "" for a one-element rank-0 tensor. */
static void format_at(char *buf, size_t size, const struct tg_tensor *t, int64_t i)
{
    char idx[96];
    if (t->rank == 0) {
        if (size) buf[0] = '\0';
        return;
    }
    tg__format_index(idx, sizeof idx, t->rank, t->shape, i);
    snprintf(buf, size, " at %s", idx);
}

/* v for a message: a NaN without the sign printf would show ("-nan"). */
static double shown(double v)
{
    return isnan(v) ? NAN : v;
}

/* The flat index of x's element that output element i of o reads when x is
 * broadcast to o's shape (elementwise ops). */
static int64_t broadcast_index(const struct tg_tensor *x, const struct tg_tensor *o, int64_t i)
{
    int64_t k = 0, stride = 1;
    for (int d = o->rank - 1, dx = x->rank - 1; d >= 0 && dx >= 0; d--, dx--) {
        int64_t at = o->shape[d] ? i % o->shape[d] : 0;
        i = o->shape[d] ? i / o->shape[d] : 0;
        if (x->shape[dx] != 1) k += at * stride;
        stride *= x->shape[dx];
    }
    return k;
}

/* In anomaly mode: fails when n's forward produced a NaN or Inf. An elementwise
 * op names the input values at that element; any other op names the first
 * input element that is NaN or Inf, or says that all inputs were finite. */
enum tg_status tg__anomaly_forward(const struct tg_tensor *n)
{
    int64_t i = tg__first_nonfinite(n->data, n->dtype, n->numel);
    if (i < 0) return TG_OK;
    const char *op = n->desc->name;
    char at[112], xat[112];
    format_at(at, sizeof at, n, i);
    double v = shown(tg__load(n->data, n->dtype, i));
    /* elementwise: marked so, or with the one-element kernels of such ops */
    if ((n->desc->elementwise || n->desc->forward1[0]) && n->n_in >= 1 && n->n_in <= 2) {
        double in[2];
        for (uint32_t k = 0; k < n->n_in; k++)
            in[k] =
                shown(tg__load(n->in[k]->data, n->in[k]->dtype, broadcast_index(n->in[k], n, i)));
        if (n->n_in == 1)
            return tg__fail(TG_ERR_NUMERIC, "%s: input contains %g%s -> %g", op, in[0], at, v);
        return tg__fail(TG_ERR_NUMERIC, "%s: inputs %g and %g%s -> %g", op, in[0], in[1], at, v);
    }
    for (uint32_t k = 0; k < n->n_in; k++) {
        const struct tg_tensor *x = n->in[k];
        int64_t j = tg__first_nonfinite(x->data, x->dtype, x->numel);
        if (j < 0) continue;
        format_at(xat, sizeof xat, x, j);
        return tg__fail(TG_ERR_NUMERIC, "%s: input %u contains %g%s -> output %g%s", op, k + 1,
                        shown(tg__load(x->data, x->dtype, j)), xat, v, at);
    }
    return tg__fail(TG_ERR_NUMERIC, "%s: output is %g%s, from finite inputs", op, v, at);
}

/* In anomaly mode: fails when n's backward made an input's gradient NaN or Inf. */
enum tg_status tg__anomaly_backward(const struct tg_tensor *n)
{
    for (uint32_t k = 0; k < n->n_in; k++) {
        const struct tg_tensor *x = n->in[k];
        if (!x->requires_grad) continue;
        int64_t i = tg__first_nonfinite(x->grad, x->dtype, x->numel);
        if (i < 0) continue;
        char at[96];
        tg__format_index(at, sizeof at, x->rank, x->shape, i);
        return tg__fail(TG_ERR_NUMERIC,
                        "backward of %s: gradient of input %u is %g at %s (input value %g)",
                        n->desc->name, k + 1, tg__load(x->grad, x->dtype, i), at,
                        tg__load(x->data, x->dtype, i));
    }
    return TG_OK;
}
