/*
 * tests/opdesc_table.c - the facts of the op table that only the descriptors
 * hold, for tests/check_opdesc.c (a separate file: ops/ops-impl.h and the
 * public nn headers cannot meet in one translation unit).
 */
#include <stddef.h>
#include <string.h>
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

const char *opdesc_shape_rule_side_effect(const struct tg_tensor *node)
{
    /* a copy of the node as the recorder hands it to the shape rule: fields up
     * to the shape (a scalar-path node has nothing past them); its dtype turned
     * to the other one, which the rule must leave as it finds it */
    struct tg_tensor tmp;
    memcpy(&tmp, node, offsetof(struct tg_tensor, shape));
    memcpy(tmp.shape, node->shape, (size_t)node->rank * sizeof tmp.shape[0]);
    const uint8_t dt = node->dtype == TG_F64 ? TG_F32 : TG_F64;
    tmp.dtype = dt;
    tmp.rank = 0;
    struct tg_tape_stats before, after;
    tg_tape_stats(node->tape, &before);
    if (node->desc->shape(&tmp) != TG_OK) return "failed on the inputs it accepted when recording";
    tg_tape_stats(node->tape, &after);
    if (after.bytes_used != before.bytes_used) return "allocated tape memory";
    if (tmp.dtype != dt) return "set the output dtype";
    if (memcmp(&tmp.p, &node->p, sizeof tmp.p) != 0) return "changed the node's parameters";
    if (tmp.aux != node->aux) return "changed the node's aux pointer";
    if (tmp.rank != node->rank ||
        memcmp(tmp.shape, node->shape, (size_t)node->rank * sizeof tmp.shape[0]) != 0)
        return "gave another shape the second time";
    return NULL;
}
