/*
 * tapegrad/ops_nn.h - softmax, divergences (losses) and dropout (ops/softmax.c, ops/loss.c).
 * Included by tapegrad/ops.h; do not include it alone.
 */
#ifndef TAPEGRAD_OPS_NN_H
#define TAPEGRAD_OPS_NN_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_NN(X)

#endif
