/*
 * engine/introspect.c - what a recorded node tells about itself: its inputs and
 * its op's parameters, read from the node and its descriptor alone (so the
 * engine needs no knowledge of any op).
 */
#include "engine-impl.h"

int tg_tensor_n_inputs(const struct tg_tensor *t)
{
    if (!t || tg__check_live("tg_tensor_n_inputs", "t", t)) return 0;
    return t->desc ? (int)t->n_in : 0;
}

struct tg_tensor *tg_tensor_input(const struct tg_tensor *t, int i)
{
    if (!t || tg__check_live("tg_tensor_input", "t", t)) return NULL;
    if (!t->desc || i < 0 || (uint32_t)i >= t->n_in) return NULL;
    return t->in[i];
}

int tg_tensor_op_params(const struct tg_tensor *t, double *out, int max)
{
    if (!t || tg__check_live("tg_tensor_op_params", "t", t)) return 0;
    if (!t->desc || !t->desc->params) return 0;
    double vals[TG_MAX_OP_PARAMS];
    int n = t->desc->params(t, vals);
    for (int k = 0; out && k < n && k < max; k++) out[k] = vals[k];
    return n;
}
