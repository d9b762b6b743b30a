/*
 * tests/vjp_table.c - reads the op table's vjp_graph fields for
 * tests/check_ops2.c (a separate file, as tests/opdesc_table.c: ops/ops-impl.h
 * and the public nn headers cannot meet in one translation unit).
 */
#include "../ops/ops-impl.h"
#include "vjp_table.h"

bool vjp_table_has(int op)
{
    return op >= 0 && op < TG_OP_COUNT && tg_op_table[op]->vjp_graph != NULL;
}
