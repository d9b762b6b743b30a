/*
 * tapegrad/ops_norm.h - normalization, lookup and selection ops: batch_norm and
 * layer_norm (ops/norm.c), embedding (ops/embedding.c), where and clamp
 * (ops/where.c).
 * Included by tapegrad/ops.h; do not include it alone.
 *
 * All return NULL with the error set on failure, and a NULL input gives a NULL
 * output keeping the original message (see ops.h). Messages name the op and the
 * shapes involved. docs/ops.md gives every formula and vector-Jacobian product.
 */
#ifndef TAPEGRAD_OPS_NORM_H
#define TAPEGRAD_OPS_NORM_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_NORM(X)                                                                             \
    X(BATCH_NORM, batch_norm)                                                                      \
    X(LAYER_NORM, layer_norm)                                                                      \
    X(EMBEDDING, embedding)                                                                        \
    X(WHERE, where)                                                                                \
    X(CLAMP, clamp)

#include <stdbool.h>

/* The declarations below sit inside ops.h's extern "C" block and use its types. */
struct tg_tape;
struct tg_tensor;

/* PyTorch's defaults for batch_norm: running = (1 - momentum) running + momentum
 * batch, and the epsilon added to the variance. */
#define TG_BATCH_NORM_MOMENTUM 0.1
#define TG_BATCH_NORM_EPS      1e-5

/* The running statistics of one batch-norm layer: tensors the op reads in
 * evaluation mode and updates in training mode (PyTorch's buffers). All are
 * caller-owned leaves (borrowed) that must not require a gradient. */
struct tg_batch_norm_stats {
    struct tg_tensor *mean;        /* (C), x's dtype: running mean */
    struct tg_tensor *var;         /* (C), x's dtype: running (unbiased) variance */
    struct tg_tensor *num_batches; /* rank 0 (any dtype) or NULL: training steps seen */
};

/* ---- batch_norm ----
 * x of shape (N, C) or (N, C, d_2, ...): each channel c is normalized over every
 * axis but axis 1 (the M = numel / C values of that channel):
 *     y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
 * weight and bias (C) are optional (NULL: 1 and 0); they have x's dtype.
 * Training (training true): mean_c and var_c are the batch's (biased variance).
 * When stats is not NULL, the op then updates stats->mean and stats->var in
 * place (running = (1 - momentum) running + momentum batch, the variance
 * entering as the unbiased M / (M - 1) var_c) and adds 1 to stats->num_batches
 * when given; they get no gradient. Evaluation (training false): mean_c and
 * var_c are stats->mean and stats->var as they are when the op is recorded (a
 * later update does not change this node); nothing is updated.
 * Failures: TG_ERR_SHAPE when x has rank < 2, or weight, bias, stats->mean or
 * stats->var is not of shape (C), or stats->num_batches not rank 0; TG_ERR_DTYPE
 * when they differ from x's dtype (num_batches: any); TG_ERR_VALUE for momentum
 * outside [0, 1], eps not positive and finite, M == 1 (or 0) in training
 * ("expected more than 1 value per channel when training", as PyTorch), a
 * NaN or infinite batch mean or variance (naming the channel), a running tensor
 * that requires grad or is not a leaf; TG_ERR_STATE in evaluation mode when
 * stats (or its mean or var) is NULL, or when num_batches is 0 (no training step
 * has produced statistics yet). On failure nothing is updated. stats is
 * borrowed and read at the call only. */
struct tg_tensor *tg_batch_norm(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *weight,
                                struct tg_tensor *bias, const struct tg_batch_norm_stats *stats,
                                bool training, double momentum, double eps);

/* ---- layer_norm ----
 * Normalizes x over its last k axes (1 <= k <= rank of x, TG_ERR_RANGE
 * otherwise): for each of the leading positions, mean and biased variance over
 * those k axes, y = (x - mean) / sqrt(var + eps) * weight + bias, weight and
 * bias (optional, NULL: 1 and 0) of the shape of x's last k axes
 * (TG_ERR_SHAPE naming both shapes otherwise) and x's dtype. eps must be
 * positive and finite (TG_ERR_VALUE). Normalizing over zero elements (an empty
 * trailing axis) is TG_ERR_SHAPE. */
struct tg_tensor *tg_layer_norm(struct tg_tape *T, struct tg_tensor *x, int k,
                                struct tg_tensor *weight, struct tg_tensor *bias, double eps);

/* ---- embedding ----
 * Rows of the table weight (V, D) picked by `indices`, an f32/f64 tensor of
 * whole numbers of any shape S (borrowed; a leaf or a node of T; it gets no
 * gradient): y has shape S + (D) and y[s, :] = weight[indices[s], :]
 * (torch.nn.functional.embedding). Backward adds dy[s, :] into row
 * indices[s]: rows looked up several times accumulate. TG_ERR_SHAPE when
 * weight does not have rank 2 or S + (D) exceeds TG_MAX_DIM axes; TG_ERR_RANGE
 * for an index outside 0..V-1 or not a whole number (naming the position and
 * the value). */
struct tg_tensor *tg_embedding(struct tg_tape *T, struct tg_tensor *weight,
                               const struct tg_tensor *indices);

/* ---- where ----
 * y = cond ? a : b elementwise, the three broadcast together (NumPy rules).
 * cond holds only 0 and 1 (TG_ERR_VALUE naming the position otherwise; any
 * dtype; it gets no gradient); a and b have the same dtype (TG_ERR_DTYPE), which
 * is y's. da += dy where cond is 1, db += dy where it is 0 (summed over
 * broadcast axes). TG_ERR_SHAPE when the shapes do not broadcast. */
struct tg_tensor *tg_where(struct tg_tape *T, struct tg_tensor *cond, struct tg_tensor *a,
                           struct tg_tensor *b);

/* ---- clamp ----
 * y = min(max(x, lo), hi); a NaN x stays NaN. lo may be -INFINITY and hi
 * INFINITY (one-sided clamps). The gradient is 1 for lo <= x <= hi and 0
 * outside, as PyTorch's: at a boundary x == lo or x == hi, it is that of the
 * inside (a kink, which tg_gradcheck counts as such, since 1 lies between the
 * one-sided slopes 0 and 1). TG_ERR_VALUE for a NaN bound or lo > hi. */
struct tg_tensor *tg_clamp(struct tg_tape *T, struct tg_tensor *x, double lo, double hi);

#endif
