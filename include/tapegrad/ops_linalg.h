/*
 * tapegrad/ops_linalg.h - matrix products and reductions along axes (ops/matmul.c, ops/reduce_axis.c).
 * Included by tapegrad/ops.h; do not include it alone.
 */
#ifndef TAPEGRAD_OPS_LINALG_H
#define TAPEGRAD_OPS_LINALG_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_LINALG(X)

#endif
