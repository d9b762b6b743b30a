/*
 * tests/opdesc_table.c - the facts of the op table that only the descriptors
 * hold, for tests/check_opdesc.c (a separate file: ops/ops-impl.h and the
 * public nn headers cannot meet in one translation unit).
 */
#include "../ops/ops-impl.h"
#include "opdesc_table.h"

bool opdesc_elementwise(int op)
{
    return tg_op_table[op]->elementwise;
}

int opdesc_op(int op)
{
    return tg_op_table[op]->op;
}

long long opdesc_param_i(const struct tg_tensor *t, int k)
{
    return (long long)t->p.i[k];
}

long long opdesc_aux_i64(const struct tg_tensor *t, int k)
{
    return (long long)((const int64_t *)t->aux)[k];
}
