/*
 * tapegrad/ops_shape.h - shape and indexing ops (ops/shape.c).
 * Included by tapegrad/ops.h; do not include it alone.
 */
#ifndef TAPEGRAD_OPS_SHAPE_H
#define TAPEGRAD_OPS_SHAPE_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_SHAPE(X)

#endif
