/*
 * ops/custom-impl.h - what the op table's introspection needs of the ops
 * registered at run time (ops/custom.c; never installed).
 */
#ifndef TG_CUSTOM_IMPL_H
#define TG_CUSTOM_IMPL_H

#include "../engine/engine-impl.h"

/* The descriptor of the registered op whose enum tg_op value is op (values
 * from TG_OP_COUNT on), or NULL when there is none. */
const struct tg_op_desc *tg__custom_desc(int op);

#endif
