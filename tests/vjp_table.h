/* tests/vjp_table.h - whether an op of the table has a differentiable VJP
 * (desc->vjp_graph), for tests/check_ops2.c (tests/vjp_table.c). */
#ifndef TG_TEST_VJP_TABLE_H
#define TG_TEST_VJP_TABLE_H

#include <stdbool.h>

bool vjp_table_has(int op);

#endif
