/*
 * tapegrad/ops_nn.h - softmax, divergences (losses) and dropout (ops/softmax.c,
 * ops/loss.c, ops/dropout.c).
 * Included by tapegrad/ops.h; do not include it alone.
 *
 * The losses are fused where that keeps them stable (cross-entropy from logits
 * through log-sum-exp, binary cross-entropy from logits); docs/ops.md derives every
 * formula and vector-Jacobian product.
 */
#ifndef TAPEGRAD_OPS_NN_H
#define TAPEGRAD_OPS_NN_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_NN(X)                                                                               \
    X(SOFTMAX, softmax)                                                                            \
    X(LOG_SOFTMAX, log_softmax)                                                                    \
    X(MSE, mse)                                                                                    \
    X(CROSS_ENTROPY, cross_entropy)                                                                \
    X(CROSS_ENTROPY_PROBS, cross_entropy_probs)                                                    \
    X(BCE_LOGITS, bce_logits)                                                                      \
    X(HINGE, hinge)                                                                                \
    X(MULTI_MARGIN, multi_margin)                                                                  \
    X(L2_PENALTY, l2_penalty)                                                                      \
    X(DROPOUT, dropout)

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tg_tape;
struct tg_tensor;
struct tg_rng;

/* How a loss turns its per-element (or per-sample) terms into its result. */
enum tg_reduction {
    TG_REDUCE_MEAN = 0, /* a scalar: the mean of the terms (at least one term) */
    TG_REDUCE_SUM = 1,  /* a scalar: the sum of the terms */
    TG_REDUCE_NONE = 2  /* the terms themselves, one per element or per sample */
};

/* ---- softmax along an axis (negative axis counts from the end) ----
 * y_i = e^(x_i - m) / sum_j e^(x_j - m), m = max_j x_j along the axis, so large
 * logits do not overflow. The result has x's shape. An axis outside
 * -rank..rank-1 (any axis of a rank-0 x) is TG_ERR_RANGE. */
struct tg_tensor *tg_softmax(struct tg_tape *T, struct tg_tensor *x, int axis);
/* y_i = x_i - m - log sum_j e^(x_j - m): log(softmax) without underflow to -inf. */
struct tg_tensor *tg_log_softmax(struct tg_tape *T, struct tg_tensor *x, int axis);

/* ---- divergences (losses). All return NULL with the error set on failure:
 * TG_ERR_SHAPE (message names the op and both shapes), TG_ERR_DTYPE,
 * TG_ERR_VALUE (a bad reduction or a label value that is not allowed),
 * TG_ERR_RANGE (a class label outside 0..C-1). TG_REDUCE_MEAN over zero terms is
 * TG_ERR_SHAPE. ---- */

/* Squared error (pred - target)^2 per element; pred and target have the same
 * shape and dtype. Both get gradients. */
struct tg_tensor *tg_mse(struct tg_tape *T, struct tg_tensor *pred, struct tg_tensor *target,
                         enum tg_reduction r);

/* Cross-entropy from logits with class labels, fused with log-softmax:
 * term_n = log sum_c e^(x_nc) - x_n,y_n. Classes lie along the LAST axis of
 * logits (shape (..., C), C >= 1); `labels` is a tensor of shape (...) (logits'
 * shape without the last axis), of any dtype, holding whole numbers in 0..C-1:
 * a fraction or NaN is TG_ERR_VALUE, a value out of range TG_ERR_RANGE. The
 * labels get no gradient (the loss is piecewise constant in them). The mean is
 * over the samples (the elements of labels). */
struct tg_tensor *tg_cross_entropy(struct tg_tape *T, struct tg_tensor *logits,
                                   struct tg_tensor *labels, enum tg_reduction r);
/* The same with labels from a C array of n int64 values (borrowed; copied onto
 * the tape as an f64 constant of shape logits.shape[:-1]); n must equal the
 * number of samples. */
struct tg_tensor *tg_cross_entropy_idx(struct tg_tape *T, struct tg_tensor *logits,
                                       const int64_t *labels, int64_t n, enum tg_reduction r);
/* Cross-entropy from logits with probability targets of logits' shape and dtype:
 * term_n = -sum_c t_nc log_softmax(x_n)_c. Targets are not checked to sum to 1;
 * they get a gradient (-log_softmax) when they require one. */
struct tg_tensor *tg_cross_entropy_probs(struct tg_tape *T, struct tg_tensor *logits,
                                         struct tg_tensor *targets, enum tg_reduction r);
/* Binary cross-entropy from logits x with targets t in [0, 1] (not checked), same
 * shape and dtype, stable for any x: max(x, 0) - x t + log(1 + e^-|x|). */
struct tg_tensor *tg_bce_logits(struct tg_tape *T, struct tg_tensor *logits,
                                struct tg_tensor *targets, enum tg_reduction r);
/* Binary hinge max(0, 1 - y s) per element; y (same shape, any dtype) holds
 * only -1 or +1 (TG_ERR_VALUE otherwise) and gets no gradient. */
struct tg_tensor *tg_hinge(struct tg_tape *T, struct tg_tensor *scores, struct tg_tensor *y,
                           enum tg_reduction r);
/* Multi-class margin loss (PyTorch's MultiMarginLoss, p = 1): scores (..., C),
 * labels as for tg_cross_entropy, term_n = (1/C) sum_{c != y_n}
 * max(0, margin - s_n,y_n + s_nc). margin must be finite. */
struct tg_tensor *tg_multi_margin(struct tg_tape *T, struct tg_tensor *scores,
                                  struct tg_tensor *labels, double margin, enum tg_reduction r);
/* L2 penalty 0.5 * sum_i w_i^2 (the 0.5 makes its gradient w itself): a scalar. */
struct tg_tensor *tg_l2_penalty(struct tg_tape *T, struct tg_tensor *w);

/* ---- dropout ----
 * Inverted dropout: when training and p > 0, each element is kept with
 * probability 1 - p and scaled by 1 / (1 - p), so the expected value is
 * unchanged and evaluation needs no rescaling. Element i is kept when the i-th
 * tg_rng_uniform(rng) draw (row-major order) is >= p; rng (borrowed) advances by
 * numel draws. The mask lives on the tape for backward. When not training or p
 * == 0 the op is the identity (still recorded; rng is not used and may be NULL).
 * p outside [0, 1) is TG_ERR_VALUE; rng NULL when it is needed TG_ERR_NULL. */
struct tg_tensor *tg_dropout(struct tg_tape *T, struct tg_tensor *x, double p, bool training,
                             struct tg_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
