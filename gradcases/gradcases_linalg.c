/*
 * gradcases/gradcases_linalg.c - gradient-check cases of the matrix product and the
 * reductions along axes (ops/matmul.c, ops/reduce_axis.c).
 *
 * The loop test passes no context to a case's function, so the parameters that
 * make() draws (transpose flags, the axis list, keepdim, the correction) travel
 * as one more input without requires-grad: a small f64 "spec" tensor, which
 * gradcheck copies along with the others and never perturbs.
 */
#include "gradcases.h"

/* A size among 1, 2, 3, 5, 7 and, when big is set, sometimes 129. */
static int64_t dim(struct tg_rng *r, bool big)
{
    return big && tg_rng_below(r, 3) == 0 ? 129 : gc_dim(r);
}

static struct tg_tensor *spec(int n, const double *v)
{
    return tg_tensor_from(TG_F64, 1, (int64_t[]){n}, v);
}

/* ---- matmul ---- */

/* (m,k) x (k,n), at most one of m, k, n possibly 129, stored transposed per the
 * flags; with `batch` leading axes on one operand and a suffix of them on the
 * other, each maybe 1 (broadcast). */
static int make_mm(struct tg_rng *r, struct tg_tensor **in, bool ta, bool tb, int batch)
{
    int big = (int)tg_rng_below(r, 4); /* which of m, k, n may be 129 (3: none) */
    int64_t m = dim(r, big == 0), k = dim(r, big == 1), n = dim(r, big == 2);
    int64_t lng[TG_MAX_DIM], sht[TG_MAX_DIM], sa[TG_MAX_DIM], sb[TG_MAX_DIM];
    int n_sht = batch ? (int)tg_rng_below(r, (uint64_t)batch + 1) : 0;
    for (int d = 0; d < batch; d++) {
        int64_t s = 1 + (int64_t)tg_rng_below(r, 3);
        lng[d] = tg_rng_below(r, 4) == 0 ? 1 : s;
        if (d >= batch - n_sht) sht[d - (batch - n_sht)] = tg_rng_below(r, 4) == 0 ? 1 : s;
    }
    bool swap = tg_rng_below(r, 2); /* the longer batch on a or on b */
    int ra = swap ? n_sht : batch, rb = swap ? batch : n_sht;
    for (int d = 0; d < ra; d++) sa[d] = swap ? sht[d] : lng[d];
    for (int d = 0; d < rb; d++) sb[d] = swap ? lng[d] : sht[d];
    sa[ra++] = ta ? k : m;
    sa[ra++] = ta ? m : k;
    sb[rb++] = tb ? n : k;
    sb[rb++] = tb ? k : n;
    in[0] = gc_rand(r, ra, sa, -1, 1, true);
    in[1] = gc_rand(r, rb, sb, -1, 1, true);
    in[2] = spec(2, (double[]){ta, tb});
    return 3;
}

static int mm_plain(struct tg_rng *r, struct tg_tensor **in)
{
    return make_mm(r, in, false, false, 0);
}
static int mm_batched(struct tg_rng *r, struct tg_tensor **in)
{
    return make_mm(r, in, false, false, 1 + (int)tg_rng_below(r, 2));
}
static int mm_flags(struct tg_rng *r, struct tg_tensor **in)
{
    int f = 1 + (int)tg_rng_below(r, 3); /* TN, NT or TT */
    return make_mm(r, in, f & 1, f & 2, (int)tg_rng_below(r, 2));
}
/* one or both operands 1-D, the other maybe batched */
static int mm_vector(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t k = dim(r, true), m = gc_dim(r), b = gc_dim(r);
    int kind = (int)tg_rng_below(r, 4);
    int64_t vec[1] = {k}, mat[3] = {b, m, k}, matv[3] = {b, k, m};
    switch (kind) {
    case 0: /* (m,k) x (k) */
        in[0] = gc_rand(r, 2, mat + 1, -1, 1, true);
        in[1] = gc_rand(r, 1, vec, -1, 1, true);
        break;
    case 1: /* (k) x (k,m) */
        in[0] = gc_rand(r, 1, vec, -1, 1, true);
        in[1] = gc_rand(r, 2, matv + 1, -1, 1, true);
        break;
    case 2: /* (k) x (k) */
        in[0] = gc_rand(r, 1, vec, -1, 1, true);
        in[1] = gc_rand(r, 1, vec, -1, 1, true);
        break;
    default: /* (b,m,k) x (k) */
        in[0] = gc_rand(r, 3, mat, -1, 1, true);
        in[1] = gc_rand(r, 1, vec, -1, 1, true);
    }
    in[2] = spec(2, (double[]){0, 0});
    return 3;
}

static struct tg_tensor *f_matmul(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    bool ta = tg_tensor_get(x[2], 0) != 0, tb = tg_tensor_get(x[2], 1) != 0;
    if (!ta && !tb) return tg_matmul(T, x[0], x[1]);
    return tg_matmul_t(T, x[0], x[1], ta, tb);
}

/* ---- reductions ---- */

/* spec: {keepdim, correction, n_axes, axes...} */
static struct tg_tensor *f_reduce(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                  enum tg_op op)
{
    double s[3 + TG_MAX_DIM]; /* read in any dtype: the f32 pass converts every input */
    for (int64_t k = 0; k < tg_tensor_numel(x[1]) && k < 3 + TG_MAX_DIM; k++)
        s[k] = tg_tensor_get(x[1], k);
    bool keep = s[0] != 0;
    int axes[TG_MAX_DIM], na = (int)s[2];
    for (int k = 0; k < na; k++) axes[k] = (int)s[3 + k];
    switch (op) {
    case TG_OP_SUM_AXES:
        return tg_sum_axes(T, x[0], axes, na, keep);
    case TG_OP_MEAN_AXES:
        return tg_mean_axes(T, x[0], axes, na, keep);
    case TG_OP_MAX_AXES:
        return tg_max_axes(T, x[0], axes, na, keep);
    case TG_OP_MIN_AXES:
        return tg_min_axes(T, x[0], axes, na, keep);
    case TG_OP_LOGSUMEXP_AXES:
        return tg_logsumexp_axes(T, x[0], axes, na, keep);
    case TG_OP_VAR_AXES:
        return tg_var_axes(T, x[0], axes, na, s[1], keep);
    case TG_OP_ARGMAX_AXES:
    case TG_OP_ARGMIN_AXES: {
        /* the index carries no gradient, yet its value may weight others:
         * f = max_S(x) * (1 + argmax_S(x)); df/dx is that of max times the weight */
        struct tg_tensor *i = op == TG_OP_ARGMAX_AXES ? tg_argmax_axes(T, x[0], axes, na, keep)
                                                      : tg_argmin_axes(T, x[0], axes, na, keep);
        struct tg_tensor *v = op == TG_OP_ARGMAX_AXES ? tg_max_axes(T, x[0], axes, na, keep)
                                                      : tg_min_axes(T, x[0], axes, na, keep);
        if (!i || !v || tg_tensor_dtype(v) == tg_tensor_dtype(i))
            return tg_mul(T, v, tg_add_scalar(T, i, 1));
        /* an f32 x: the index is f64 (see tg_argmax_axes), the weight a constant */
        float w[7 * 7 * 7 * 7]; /* the largest result make_red makes */
        int64_t m = tg_tensor_numel(i);
        for (int64_t k = 0; k < m && k < 7 * 7 * 7 * 7; k++)
            w[k] = 1.0f + (float)tg_tensor_get(i, k);
        return tg_mul(T, v, tg_tape_constant(T, TG_F32, tg_tensor_rank(i), tg_tensor_shape(i), w));
    }
    default:
        return NULL;
    }
}

/* x of a random shape (or the given one) and a random axis list. */
static int make_red(struct tg_rng *r, struct tg_tensor **in, bool apart, int rank,
                    const int64_t *shape)
{
    int64_t s[4];
    if (!shape) {
        rank = (int)tg_rng_below(r, 5);
        for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
        shape = s;
    }
    in[0] = gc_rand(r, rank, shape, -2, 2, true);
    if (!in[0]) return 0;
    int64_t numel = tg_tensor_numel(in[0]);
    if (apart) { /* a random permutation of 0.1 * (0..numel-1), jittered: no ties */
        for (int64_t i = 0; i < numel; i++) tg_tensor_set(in[0], i, 0.1 * (double)i);
        for (int64_t i = numel - 1; i > 0; i--) {
            int64_t j = (int64_t)tg_rng_below(r, (uint64_t)i + 1);
            double a = tg_tensor_get(in[0], i), b = tg_tensor_get(in[0], j);
            tg_tensor_set(in[0], i, b + 0.02 * tg_rng_uniform(r));
            tg_tensor_set(in[0], j, a);
        }
    }
    double sp[3 + 4] = {(double)tg_rng_below(r, 2), 0, 0};
    int na = 0;
    int64_t n_red = 1;
    for (int d = 0; d < rank; d++)
        if (tg_rng_below(r, 2)) { /* written negative half of the time */
            sp[3 + na++] = tg_rng_below(r, 2) ? d - rank : d;
            n_red *= shape[d];
        }
    if (na == 0) n_red = numel;        /* an empty list reduces every axis */
    for (int k = na - 1; k > 0; k--) { /* in random order */
        int j = (int)tg_rng_below(r, (uint64_t)k + 1);
        double t = sp[3 + k];
        sp[3 + k] = sp[3 + j], sp[3 + j] = t;
    }
    sp[2] = na;
    sp[1] = n_red > 1 ? (double)tg_rng_below(r, 2) : 0; /* var's correction */
    in[1] = spec(3 + na, sp);
    return 2;
}

static int red_any(struct tg_rng *r, struct tg_tensor **in)
{
    return make_red(r, in, false, 0, NULL);
}
static int red_apart(struct tg_rng *r, struct tg_tensor **in)
{
    return make_red(r, in, true, 0, NULL);
}
/* 129 wide: the last-axis fast path or a long reduced leading axis */
static int red_wide(struct tg_rng *r, struct tg_tensor **in, bool apart)
{
    bool last = tg_rng_below(r, 2);
    int64_t s[2] = {last ? 3 : 129, last ? 129 : 3};
    int n = make_red(r, in, apart, 2, s);
    tg_tensor_free(in[1]);
    in[1] = spec(4, (double[]){(double)tg_rng_below(r, 2), 1, 1, last ? -1 : 0});
    return n;
}
static int red_wide_any(struct tg_rng *r, struct tg_tensor **in)
{
    return red_wide(r, in, false);
}
static int red_wide_apart(struct tg_rng *r, struct tg_tensor **in)
{
    return red_wide(r, in, true);
}

#define FRED(NAME, ENUM)                                                                           \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        return f_reduce(T, x, n, TG_OP_##ENUM);                                                    \
    }
FRED(sum_axes, SUM_AXES)
FRED(mean_axes, MEAN_AXES)
FRED(max_axes, MAX_AXES)
FRED(min_axes, MIN_AXES)
FRED(logsumexp_axes, LOGSUMEXP_AXES)
FRED(var_axes, VAR_AXES)
FRED(argmax_axes, ARGMAX_AXES)
FRED(argmin_axes, ARGMIN_AXES)

/* ---- the fused linear layer: in = {x, W, b, spec = [act, has_bias]} ---- */

static int make_linear(struct tg_rng *r, struct tg_tensor **in, int act, bool bias, bool vec)
{
    int64_t B = dim(r, false), nin = dim(r, false), nout = dim(r, false);
    in[0] = vec ? gc_rand(r, 1, (int64_t[]){nin}, -1, 1, true)
                : gc_rand(r, 2, (int64_t[]){B, nin}, -1, 1, true);
    in[1] = gc_rand(r, 2, (int64_t[]){nout, nin}, -1, 1, true);
    in[2] = gc_rand(r, 1, (int64_t[]){nout}, -0.5, 0.5, true);
    in[3] = spec(2, (double[]){act, bias});
    return 4;
}
static int lin_none(struct tg_rng *r, struct tg_tensor **in)
{
    return make_linear(r, in, TG_ACT_NONE, true, false);
}
static int lin_relu(struct tg_rng *r, struct tg_tensor **in)
{
    return make_linear(r, in, TG_ACT_RELU, true, false);
}
static int lin_tanh_nobias(struct tg_rng *r, struct tg_tensor **in)
{
    return make_linear(r, in, TG_ACT_TANH, false, false);
}
static int lin_sigmoid_vec(struct tg_rng *r, struct tg_tensor **in)
{
    return make_linear(r, in, TG_ACT_SIGMOID, true, true);
}

static struct tg_tensor *f_linear(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int act = (int)tg_tensor_get(x[3], 0);
    bool bias = tg_tensor_get(x[3], 1) != 0;
    return tg_linear(T, x[0], x[1], bias ? x[2] : NULL, (enum tg_act)act);
}

const struct gc_case gc_cases_linalg[] = {
    {TG_OP_LINEAR, "linear", lin_none, f_linear},
    {TG_OP_LINEAR, "linear relu", lin_relu, f_linear},
    {TG_OP_LINEAR, "linear tanh, no bias", lin_tanh_nobias, f_linear},
    {TG_OP_LINEAR, "linear sigmoid, vector input", lin_sigmoid_vec, f_linear},
    {TG_OP_MATMUL, "matmul (m,k)x(k,n)", mm_plain, f_matmul},
    {TG_OP_MATMUL, "matmul batched, broadcast", mm_batched, f_matmul},
    {TG_OP_MATMUL, "matmul_t transposed operands", mm_flags, f_matmul},
    {TG_OP_MATMUL, "matmul with vectors", mm_vector, f_matmul},
    {TG_OP_SUM_AXES, "sum_axes", red_any, f_sum_axes},
    {TG_OP_SUM_AXES, "sum_axes 129", red_wide_any, f_sum_axes},
    {TG_OP_MEAN_AXES, "mean_axes", red_any, f_mean_axes},
    {TG_OP_MEAN_AXES, "mean_axes 129", red_wide_any, f_mean_axes},
    {TG_OP_MAX_AXES, "max_axes", red_apart, f_max_axes},
    {TG_OP_MAX_AXES, "max_axes 129", red_wide_apart, f_max_axes},
    {TG_OP_MIN_AXES, "min_axes", red_apart, f_min_axes},
    {TG_OP_LOGSUMEXP_AXES, "logsumexp_axes", red_any, f_logsumexp_axes},
    {TG_OP_LOGSUMEXP_AXES, "logsumexp_axes 129", red_wide_any, f_logsumexp_axes},
    {TG_OP_VAR_AXES, "var_axes", red_any, f_var_axes},
    {TG_OP_VAR_AXES, "var_axes 129", red_wide_any, f_var_axes},
    {TG_OP_ARGMAX_AXES, "argmax_axes weighting max", red_apart, f_argmax_axes},
    {TG_OP_ARGMIN_AXES, "argmin_axes weighting min", red_apart, f_argmin_axes},
};
const int gc_n_linalg = sizeof gc_cases_linalg / sizeof gc_cases_linalg[0];
