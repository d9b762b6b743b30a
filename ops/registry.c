/*
 * ops/registry.c - the op table, indexed by enum tg_op, and its introspection.
 * (What a recorded node says about itself, its inputs and parameters, is the
 * engine's: engine/introspect.c reads it from the node's descriptor.)
 *
 * The table is generated from TG_OP_LIST, the same list that generates the enum,
 * so an op without a descriptor fails to link and the static assert below keeps
 * the count honest.
 */
#include "custom-impl.h"
#include "ops-impl.h"

#define TG_X_ENTRY(E, n) [TG_OP_##E] = &tg_op_desc_##n,
const struct tg_op_desc *const tg_op_table[TG_OP_COUNT] = {TG_OP_LIST(TG_X_ENTRY)};
#undef TG_X_ENTRY

#define TG_X_ONE(E, n) +1
_Static_assert(0 TG_OP_LIST(TG_X_ONE) == TG_OP_COUNT, "op table and enum disagree");
#undef TG_X_ONE

static const struct tg_op_desc *desc_of(enum tg_op op)
{
    if (op >= TG_OP_COUNT) return tg__custom_desc(op); /* registered at run time */
    return op >= 0 ? tg_op_table[op] : NULL;
}

int tg_op_count(void)
{
    return TG_OP_COUNT;
}
const char *tg_op_name(enum tg_op op)
{
    const struct tg_op_desc *d = desc_of(op);
    return d ? d->name : "?";
}
const char *tg_op_formula(enum tg_op op)
{
    const struct tg_op_desc *d = desc_of(op);
    return d ? d->formula : "?";
}
const char *tg_op_vjp(enum tg_op op)
{
    const struct tg_op_desc *d = desc_of(op);
    return d ? d->vjp : "?";
}
const char *tg_op_operands(enum tg_op op)
{
    const struct tg_op_desc *d = desc_of(op);
    return d ? tg__rule_operands(d) : "?";
}
int tg_op_arity(enum tg_op op)
{
    const struct tg_op_desc *d = desc_of(op);
    return d ? d->arity : 0;
}

enum tg_op tg_tensor_op(const struct tg_tensor *t)
{
    if (!t || tg__check_live("tg_tensor_op", "t", t)) return TG_OP_NONE;
    return t->desc ? (enum tg_op)t->desc->op : TG_OP_NONE;
}
