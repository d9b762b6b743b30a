/*
 * gradcases/gradcases_nn.c - gradient-check cases of softmax, the losses and dropout
 * (ops/softmax.c, ops/loss.c, ops/dropout.c).
 *
 * Labels are whole numbers drawn in range and never require a gradient; values
 * that feed a kink (hinge) are kept away from it. Dropout's function seeds a new
 * generator on every call, so the many re-runs of gradcheck see the same mask.
 */
#include <math.h>
#include "gradcases.h"

/* A random shape of rank lo..hi. */
static int rand_shape(struct tg_rng *r, int lo, int hi, int64_t *s)
{
    int rank = lo + (int)tg_rng_below(r, (uint64_t)(hi - lo + 1));
    for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
    return rank;
}

static int one_rank1(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 1, 3, s);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    return in[0] ? 1 : 0;
}

static int one_any(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 0, 3, s);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    return in[0] ? 1 : 0;
}

/* Two tensors of the same shape, both requiring grad; b in [blo, bhi]. */
static int same_pair(struct tg_rng *r, struct tg_tensor **in, double blo, double bhi)
{
    int64_t s[3];
    int rank = rand_shape(r, 0, 3, s);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    in[1] = gc_rand(r, rank, s, blo, bhi, true);
    return in[0] && in[1] ? 2 : 0;
}
static int pair_any(struct tg_rng *r, struct tg_tensor **in)
{
    return same_pair(r, in, -2, 2);
}
static int pair_prob(struct tg_rng *r, struct tg_tensor **in)
{
    return same_pair(r, in, 0, 1);
}

/* Logits (..., C) of rank 1..3 and labels of shape (...) in 0..C-1, no grad. */
static int logits_labels(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 1, 3, s);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    in[1] = tg_tensor_zeros(TG_F64, rank - 1, s);
    if (!in[0] || !in[1]) return 0;
    int64_t C = s[rank - 1];
    for (int64_t i = 0; i < tg_tensor_numel(in[1]); i++)
        tg_tensor_set(in[1], i, (double)tg_rng_below(r, (uint64_t)C));
    return 2;
}

/* Logits (..., C) and probability-like targets of the same shape (both grad). */
static int logits_probs(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 1, 3, s);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    in[1] = gc_rand(r, rank, s, 0, 1, true);
    return in[0] && in[1] ? 2 : 0;
}

/* Scores with |1 - y s| >= 0.1 and labels y in {-1, +1} (no grad). */
static int scores_signs(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 0, 3, s);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    in[1] = tg_tensor_zeros(TG_F64, rank, s);
    if (!in[0] || !in[1]) return 0;
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) {
        double y = tg_rng_below(r, 2) ? 1 : -1, v = tg_tensor_get(in[0], i);
        if (fabs(1 - y * v) < 0.1) tg_tensor_set(in[0], i, v + 0.3);
        tg_tensor_set(in[1], i, y);
    }
    return 2;
}

#define FN(NAME, CALL)                                                                             \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        return CALL;                                                                               \
    }

FN(softmax_last, tg_softmax(T, x[0], -1))
FN(softmax_first, tg_softmax(T, x[0], 0))
FN(log_softmax_last, tg_log_softmax(T, x[0], -1))
FN(log_softmax_first, tg_log_softmax(T, x[0], 0))
FN(mse_mean, tg_mse(T, x[0], x[1], TG_REDUCE_MEAN))
FN(mse_sum, tg_mse(T, x[0], x[1], TG_REDUCE_SUM))
FN(mse_none, tg_mse(T, x[0], x[1], TG_REDUCE_NONE))
FN(ce_mean, tg_cross_entropy(T, x[0], x[1], TG_REDUCE_MEAN))
FN(ce_sum, tg_cross_entropy(T, x[0], x[1], TG_REDUCE_SUM))
FN(ce_none, tg_cross_entropy(T, x[0], x[1], TG_REDUCE_NONE))
FN(cep_mean, tg_cross_entropy_probs(T, x[0], x[1], TG_REDUCE_MEAN))
FN(cep_none, tg_cross_entropy_probs(T, x[0], x[1], TG_REDUCE_NONE))
FN(bce_mean, tg_bce_logits(T, x[0], x[1], TG_REDUCE_MEAN))
FN(bce_none, tg_bce_logits(T, x[0], x[1], TG_REDUCE_NONE))
FN(hinge_sum, tg_hinge(T, x[0], x[1], TG_REDUCE_SUM))
FN(hinge_none, tg_hinge(T, x[0], x[1], TG_REDUCE_NONE))
FN(margin_mean, tg_multi_margin(T, x[0], x[1], 1.0, TG_REDUCE_MEAN))
FN(margin_none, tg_multi_margin(T, x[0], x[1], 0.7, TG_REDUCE_NONE))
FN(l2, tg_l2_penalty(T, x[0]))
FN(dropout_eval, tg_dropout(T, x[0], 0.5, false, NULL))

/* A fresh generator per call: the same mask on every re-run. */
static struct tg_tensor *f_dropout_train(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                         void *c)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 12345);
    return tg_dropout(T, x[0], 0.3, true, &rng);
}

const struct gc_case gc_cases_nn[] = {
    {TG_OP_SOFTMAX, "softmax axis -1", one_rank1, f_softmax_last},
    {TG_OP_SOFTMAX, "softmax axis 0", one_rank1, f_softmax_first},
    {TG_OP_LOG_SOFTMAX, "log_softmax axis -1", one_rank1, f_log_softmax_last},
    {TG_OP_LOG_SOFTMAX, "log_softmax axis 0", one_rank1, f_log_softmax_first},
    {TG_OP_MSE, "mse mean", pair_any, f_mse_mean},
    {TG_OP_MSE, "mse sum", pair_any, f_mse_sum},
    {TG_OP_MSE, "mse none", pair_any, f_mse_none},
    {TG_OP_CROSS_ENTROPY, "cross_entropy mean", logits_labels, f_ce_mean},
    {TG_OP_CROSS_ENTROPY, "cross_entropy sum", logits_labels, f_ce_sum},
    {TG_OP_CROSS_ENTROPY, "cross_entropy none", logits_labels, f_ce_none},
    {TG_OP_CROSS_ENTROPY_PROBS, "cross_entropy_probs mean", logits_probs, f_cep_mean},
    {TG_OP_CROSS_ENTROPY_PROBS, "cross_entropy_probs none", logits_probs, f_cep_none},
    {TG_OP_BCE_LOGITS, "bce_logits mean", pair_prob, f_bce_mean},
    {TG_OP_BCE_LOGITS, "bce_logits none", pair_prob, f_bce_none},
    {TG_OP_HINGE, "hinge sum", scores_signs, f_hinge_sum},
    {TG_OP_HINGE, "hinge none", scores_signs, f_hinge_none},
    {TG_OP_MULTI_MARGIN, "multi_margin mean", logits_labels, f_margin_mean},
    {TG_OP_MULTI_MARGIN, "multi_margin none 0.7", logits_labels, f_margin_none},
    {TG_OP_L2_PENALTY, "l2_penalty", one_any, f_l2},
    {TG_OP_DROPOUT, "dropout training p=0.3", one_any, f_dropout_train},
    {TG_OP_DROPOUT, "dropout eval", one_any, f_dropout_eval},
};
const int gc_n_nn = sizeof gc_cases_nn / sizeof gc_cases_nn[0];
