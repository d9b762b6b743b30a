/*
 * gradcases/gradcases_elementwise.c - gradient-check cases of the elementwise ops
 * and the full reductions (ops/binary.c, ops/unary.c, ops/reduce.c).
 */
#include "gradcases.h"

struct tg_tensor *gc_rand(struct tg_rng *rng, int rank, const int64_t *shape, double lo, double hi,
                          bool grad)
{
    struct tg_tensor *t = tg_tensor_uniform(TG_F64, rank, shape, rng, lo, hi);
    if (t && grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

int64_t gc_dim(struct tg_rng *rng)
{
    static const int64_t dims[] = {1, 2, 3, 5, 7};
    return dims[tg_rng_below(rng, 5)];
}

/* Two inputs whose shapes broadcast: a random shape, and b with some axes set to
 * 1 or dropped from the front. */
static int make_pair(struct tg_rng *rng, struct tg_tensor **in, double lo, double hi)
{
    int rank = (int)tg_rng_below(rng, 4);
    int64_t sa[4], sb[4];
    for (int d = 0; d < rank; d++) {
        sa[d] = gc_dim(rng);
        sb[d] = tg_rng_below(rng, 3) == 0 ? 1 : sa[d];
    }
    int drop = rank ? (int)tg_rng_below(rng, (uint64_t)rank + 1) : 0;
    bool swap = tg_rng_below(rng, 2);
    in[swap] = gc_rand(rng, rank, sa, lo, hi, true);
    in[!swap] = gc_rand(rng, rank - drop, sb + drop, lo, hi, true);
    return 2;
}

static int pair_any(struct tg_rng *r, struct tg_tensor **in)
{
    return make_pair(r, in, -2, 2);
}
static int pair_pos(struct tg_rng *r, struct tg_tensor **in)
{
    return make_pair(r, in, 0.5, 2);
}
/* values well apart from each other and from 0, where max/min and kinks are smooth */
static int pair_apart(struct tg_rng *r, struct tg_tensor **in)
{
    int n = make_pair(r, in, 0, 1);
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < tg_tensor_numel(in[k]); i++)
            tg_tensor_set(in[k], i,
                          tg_tensor_get(in[k], i) + (k ? 0.0 : 0.25) +
                              0.5 * (double)tg_rng_below(r, 2));
    return n;
}

static int one(struct tg_rng *r, struct tg_tensor **in, double lo, double hi)
{
    int rank = (int)tg_rng_below(r, 4);
    int64_t s[4];
    for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
    in[0] = gc_rand(r, rank, s, lo, hi, true);
    return 1;
}
static int one_any(struct tg_rng *r, struct tg_tensor **in)
{
    return one(r, in, -2, 2);
}
static int one_pos(struct tg_rng *r, struct tg_tensor **in)
{
    return one(r, in, 0.3, 3);
}
/* |x| in [0.1, 2] with random signs: away from the kink at 0 */
static int one_nonzero(struct tg_rng *r, struct tg_tensor **in)
{
    int n = one(r, in, 0.1, 2);
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++)
        if (tg_rng_below(r, 2)) tg_tensor_set(in[0], i, -tg_tensor_get(in[0], i));
    return n;
}

#define FN2(NAME)                                                                                  \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        return tg_##NAME(T, x[0], x[1]);                                                           \
    }
#define FN1(NAME, CALL)                                                                            \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        return CALL;                                                                               \
    }

FN2(add)
FN2(sub)
FN2(mul)
FN2(div)
FN2(pow)
FN2(maximum)
FN2(minimum)
FN1(affine, tg_affine(T, x[0], -1.7, 0.3))
FN1(pow_scalar, tg_pow_scalar(T, x[0], 2.5))
FN1(pow_scalar_neg, tg_pow_scalar(T, x[0], -1.5))
FN1(neg, tg_neg(T, x[0]))
FN1(exp, tg_exp(T, x[0]))
FN1(log, tg_log(T, x[0]))
FN1(sqrt, tg_sqrt(T, x[0]))
FN1(abs, tg_abs(T, x[0]))
FN1(tanh, tg_tanh(T, x[0]))
FN1(sigmoid, tg_sigmoid(T, x[0]))
FN1(relu, tg_relu(T, x[0]))
FN1(leaky_relu, tg_leaky_relu(T, x[0], 0.1))
FN1(softplus, tg_softplus(T, x[0]))
FN1(sin, tg_sin(T, x[0]))
FN1(cos, tg_cos(T, x[0]))
FN1(sum, tg_sum(T, x[0]))
FN1(mean, tg_mean(T, x[0]))

const struct gc_case gc_cases_elementwise[] = {
    {TG_OP_ADD, "add", pair_any, f_add},
    {TG_OP_SUB, "sub", pair_any, f_sub},
    {TG_OP_MUL, "mul", pair_any, f_mul},
    {TG_OP_DIV, "div", pair_pos, f_div},
    {TG_OP_POW, "pow", pair_pos, f_pow},
    {TG_OP_MAXIMUM, "maximum", pair_apart, f_maximum},
    {TG_OP_MINIMUM, "minimum", pair_apart, f_minimum},
    {TG_OP_AFFINE, "affine", one_any, f_affine},
    {TG_OP_POW_SCALAR, "pow_scalar 2.5", one_pos, f_pow_scalar},
    {TG_OP_POW_SCALAR, "pow_scalar -1.5", one_pos, f_pow_scalar_neg},
    {TG_OP_NEG, "neg", one_any, f_neg},
    {TG_OP_EXP, "exp", one_any, f_exp},
    {TG_OP_LOG, "log", one_pos, f_log},
    {TG_OP_SQRT, "sqrt", one_pos, f_sqrt},
    {TG_OP_ABS, "abs", one_nonzero, f_abs},
    {TG_OP_TANH, "tanh", one_any, f_tanh},
    {TG_OP_SIGMOID, "sigmoid", one_any, f_sigmoid},
    {TG_OP_RELU, "relu", one_nonzero, f_relu},
    {TG_OP_LEAKY_RELU, "leaky_relu", one_nonzero, f_leaky_relu},
    {TG_OP_SOFTPLUS, "softplus", one_any, f_softplus},
    {TG_OP_SIN, "sin", one_any, f_sin},
    {TG_OP_COS, "cos", one_any, f_cos},
    {TG_OP_SUM, "sum", one_any, f_sum},
    {TG_OP_MEAN, "mean", one_any, f_mean},
};
const int gc_n_elementwise = sizeof gc_cases_elementwise / sizeof gc_cases_elementwise[0];
