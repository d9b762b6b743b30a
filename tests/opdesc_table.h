/* tests/opdesc_table.h - descriptor fields of the op table (tests/opdesc_table.c). */
#ifndef TG_TEST_OPDESC_TABLE_H
#define TG_TEST_OPDESC_TABLE_H

#include <stdbool.h>

bool opdesc_elementwise(int op); /* desc->elementwise of table entry op */
int opdesc_op(int op);           /* desc->op of table entry op */

struct tg_tensor;
/* A recorded node's inline integer parameter k (p.i[k]) and int64 k of its aux. */
long long opdesc_param_i(const struct tg_tensor *t, int k);
long long opdesc_aux_i64(const struct tg_tensor *t, int k);
/* Runs the shape rule of recorded node t once more, on a copy: NULL when it
 * only decided the shape (no tape memory taken, dtype, parameters and aux left
 * as they were, the same shape), else what it did besides. */
const char *opdesc_shape_rule_side_effect(const struct tg_tensor *t);

#endif
