/*
 * gradcases/gradcases_norm.c - gradient-check cases of batch_norm, layer_norm,
 * embedding, where and clamp (ops/norm.c, ops/embedding.c, ops/where.c).
 *
 * batch_norm's batches hold at least three values per channel and layer_norm
 * normalizes over at least three (with two, the output is +-1 whatever x, and
 * the gradient, nearly 0, is all rounding in f32); its training cases keep no running statistics
 * (the function runs many times), and its evaluation case makes fresh running buffers on every
 * call, from fixed values, so every run normalizes by the same constants. layer_norm's k is the
 * rank of its weight. Indices and conditions are whole numbers without gradient; clamp's inputs
 * stay 0.05 away from its bounds (the kinks).
 */
#include <math.h>
#include "gradcases.h"

static int rand_shape(struct tg_rng *r, int lo, int hi, int64_t *s)
{
    int rank = lo + (int)tg_rng_below(r, (uint64_t)(hi - lo + 1));
    for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
    return rank;
}

/* x (N, C, ...) of rank lo..hi with N >= 2, and weight and bias (C) when affine. */
static int bn_inputs(struct tg_rng *r, struct tg_tensor **in, int lo, int hi, bool affine)
{
    int64_t s[4];
    int rank = rand_shape(r, lo, hi, s);
    s[0] = 2 + gc_dim(r);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    if (!affine) return in[0] ? 1 : 0;
    in[1] = gc_rand(r, 1, s + 1, 0.5, 2, true);
    in[2] = gc_rand(r, 1, s + 1, -1, 1, true);
    return in[0] && in[1] && in[2] ? 3 : 0;
}
static int bn_2d(struct tg_rng *r, struct tg_tensor **in)
{
    return bn_inputs(r, in, 2, 2, true);
}
static int bn_4d(struct tg_rng *r, struct tg_tensor **in)
{
    return bn_inputs(r, in, 3, 4, true);
}
static int bn_plain(struct tg_rng *r, struct tg_tensor **in)
{
    return bn_inputs(r, in, 2, 4, false);
}

/* x of rank 1..3 and weight, bias of its last k axes (k random). Rank 4 would
 * allow thousands of elements, whose summed loss's rounding (about 1e-16 |loss| / h)
 * outgrows the f64 check's absolute tolerance. */
static int ln_affine(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 1, 3, s);
    int k = 1 + (int)tg_rng_below(r, (uint64_t)rank);
    s[rank - 1] = 2 + gc_dim(r);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    in[1] = gc_rand(r, k, s + rank - k, 0.5, 2, true);
    in[2] = gc_rand(r, k, s + rank - k, -1, 1, true);
    return in[0] && in[1] && in[2] ? 3 : 0;
}
/* The same without bias. */
static int ln_weight(struct tg_rng *r, struct tg_tensor **in)
{
    if (ln_affine(r, in) != 3) return 0;
    tg_tensor_free(in[2]);
    in[2] = NULL;
    return 2;
}
static int ln_plain(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[4];
    int rank = rand_shape(r, 1, 3, s);
    s[rank - 1] = 2 + gc_dim(r);
    in[0] = gc_rand(r, rank, s, -3, 3, true);
    return in[0] ? 1 : 0;
}

/* A table (V, D) and indices of rank 0..2 in 0..V-1, with repeats likely. */
static int emb_inputs(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t w[2] = {gc_dim(r), gc_dim(r)}, s[2];
    int rank = rand_shape(r, 0, 2, s);
    in[0] = gc_rand(r, 2, w, -2, 2, true);
    in[1] = tg_tensor_zeros(TG_F64, rank, s);
    if (!in[0] || !in[1]) return 0;
    for (int64_t i = 0; i < tg_tensor_numel(in[1]); i++)
        tg_tensor_set(in[1], i, (double)tg_rng_below(r, (uint64_t)w[0]));
    return 2;
}

/* cond, a, b of shapes that broadcast: each a random shape with some axes 1. */
static int where_inputs(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t full[3], s[3][3];
    int rank = rand_shape(r, 0, 3, full), rk[3];
    for (int j = 0; j < 3; j++) {
        rk[j] = rank - (int)tg_rng_below(r, (uint64_t)rank + 1);
        for (int d = 0; d < rk[j]; d++)
            s[j][d] = tg_rng_below(r, 3) == 0 ? 1 : full[rank - rk[j] + d];
    }
    in[0] = tg_tensor_zeros(TG_F64, rk[0], s[0]);
    in[1] = gc_rand(r, rk[1], s[1], -2, 2, true);
    in[2] = gc_rand(r, rk[2], s[2], -2, 2, true);
    if (!in[0] || !in[1] || !in[2]) return 0;
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++)
        tg_tensor_set(in[0], i, (double)tg_rng_below(r, 2));
    return 3;
}

/* x in [-2, 2] at least 0.05 from the bounds -0.5 and 0.7. */
static int clamp_inputs(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = rand_shape(r, 0, 3, s);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    for (int64_t i = 0; in[0] && i < tg_tensor_numel(in[0]); i++) {
        double v = tg_tensor_get(in[0], i);
        if (fabs(v + 0.5) < 0.05 || fabs(v - 0.7) < 0.05) tg_tensor_set(in[0], i, v + 0.15);
    }
    return in[0] ? 1 : 0;
}

#define FN(NAME, CALL)                                                                             \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        return CALL;                                                                               \
    }

FN(bn_train, tg_batch_norm(T, x[0], x[1], x[2], NULL, true, 0.1, 1e-5))
FN(bn_train_plain, tg_batch_norm(T, x[0], NULL, NULL, NULL, true, 0.1, 1e-3))
FN(ln, tg_layer_norm(T, x[0], tg_tensor_rank(x[1]), x[1], x[2], 1e-5))
FN(ln_plain, tg_layer_norm(T, x[0], 1, NULL, NULL, 1e-5))
FN(ln_weight_only, tg_layer_norm(T, x[0], tg_tensor_rank(x[1]), x[1], NULL, 1e-5))
FN(embedding, tg_embedding(T, x[0], x[1]))
FN(where, tg_where(T, x[0], x[1], x[2]))
FN(clamp, tg_clamp(T, x[0], -0.5, 0.7))
FN(clamp_below, tg_clamp(T, x[0], -0.5, INFINITY))

/* Evaluation mode: running mean 0.1 c - 0.2 and variance 0.5 + 0.25 c per
 * channel c, made for this call only (the node keeps their values). */
static struct tg_tensor *f_bn_eval(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t C = tg_tensor_shape(x[0])[1];
    enum tg_dtype dt = tg_tensor_dtype(x[0]);
    struct tg_tensor *m = tg_tensor_zeros(dt, 1, &C), *v = tg_tensor_zeros(dt, 1, &C);
    struct tg_tensor *y = NULL;
    if (m && v) {
        for (int64_t k = 0; k < C; k++) {
            tg_tensor_set(m, k, 0.1 * (double)k - 0.2);
            tg_tensor_set(v, k, 0.5 + 0.25 * (double)k);
        }
        struct tg_batch_norm_stats st = {m, v, NULL};
        y = tg_batch_norm(T, x[0], x[1], x[2], &st, false, 0.1, 1e-5);
    }
    tg_tensor_free(m);
    tg_tensor_free(v);
    return y;
}

const struct gc_case gc_cases_norm[] = {
    {TG_OP_BATCH_NORM, "batch_norm training (N,C)", bn_2d, f_bn_train},
    {TG_OP_BATCH_NORM, "batch_norm training (N,C,..)", bn_4d, f_bn_train},
    {TG_OP_BATCH_NORM, "batch_norm training, no affine", bn_plain, f_bn_train_plain},
    {TG_OP_BATCH_NORM, "batch_norm evaluation", bn_4d, f_bn_eval},
    {TG_OP_LAYER_NORM, "layer_norm last k axes", ln_affine, f_ln},
    {TG_OP_LAYER_NORM, "layer_norm weight only", ln_weight, f_ln_weight_only},
    {TG_OP_LAYER_NORM, "layer_norm no affine", ln_plain, f_ln_plain},
    {TG_OP_EMBEDDING, "embedding", emb_inputs, f_embedding},
    {TG_OP_WHERE, "where broadcast", where_inputs, f_where},
    {TG_OP_CLAMP, "clamp", clamp_inputs, f_clamp},
    {TG_OP_CLAMP, "clamp lower only", clamp_inputs, f_clamp_below},
};
const int gc_n_norm = sizeof gc_cases_norm / sizeof gc_cases_norm[0];
