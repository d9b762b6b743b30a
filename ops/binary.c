/*
 * ops/binary.c - elementwise ops of two tensors, with NumPy broadcasting.
 *
 * Each op is one line of BINARY_OPS: its output y as an expression in the
 * inputs a and b, and its two local derivatives dy/da and dy/db, which may also
 * use y. Backward adds dy * dy/da into a's gradient at a's (possibly broadcast)
 * offset, so summing over broadcast axes happens by accumulation, with no extra
 * pass. The kernels come from ops/binary-kernels.inc, one body for both dtypes.
 *
 * NaN: a NaN input gives a NaN output in every op (maximum and minimum too, in
 * either order), and a NaN derivative where the derivative depends on the NaN
 * value (maximum's and minimum's selector); see docs/ops.md.
 */
#include "ops-impl.h"

enum tg_status tg__broadcast_shape(const char *fn, const struct tg_tensor *a,
                                   const struct tg_tensor *b, struct tg_tensor *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int d = 0; d < r; d++) {
        int ka = d - (r - a->rank), kb = d - (r - b->rank);
        int64_t da = ka >= 0 ? a->shape[ka] : 1, db = kb >= 0 ? b->shape[kb] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[160], sb[160];
            tg_tensor_format_shape(sa, sizeof sa, a->rank, a->shape);
            tg_tensor_format_shape(sb, sizeof sb, b->rank, b->shape);
            return tg__fail(TG_ERR_SHAPE, "%s: shapes %s and %s cannot broadcast", fn, sa, sb);
        }
        out->shape[d] = da == 1 ? db : da;
    }
    out->rank = (uint8_t)r;
    return TG_OK;
}

/* a^b, NaN when a or b is NaN (C's pow gives 1 for pow(1, NaN) and pow(NaN, 0)) */
static inline double pow_nan(double a, double b)
{
    return a != a || b != b ? a + b : pow(a, b);
}

/* name, enum suffix, formula, VJP, y(a, b), dy/da, dy/db */
#define BINARY_OPS(X)                                                                              \
    X(add, ADD, "y = a + b", "da += dy; db += dy", a + b, 1, 1)                                    \
    X(sub, SUB, "y = a - b", "da += dy; db -= dy", a - b, 1, -1)                                   \
    X(mul, MUL, "y = a * b", "da += dy * b; db += dy * a", (a * b), b, a)                          \
    /* d(a/b)/db = -a/b^2 = -y/b */                                                                \
    X(div, DIV, "y = a / b", "da += dy / b; db -= dy * y / b", a / b, 1 / b, -y / b)               \
    /* d(a^b)/da = b a^(b-1); d(a^b)/db = y log a, taken as 0 where a == 0 */                      \
    X(pow, POW, "y = a ^ b", "da += dy * b * a^(b-1); db += dy * y * log(a)", pow_nan(a, b),       \
      b == 0 ? 0 : b * pow(a, b - 1), a == 0 ? 0 : y * log(a))                                     \
    /* at a tie each side receives half of the gradient; a NaN input gives y = NaN and             \
       receives a NaN gradient (the other input, which y no longer depends on, 0) */               \
    X(maximum, MAXIMUM, "y = max(a, b)  (NaN if a or b is NaN)",                                   \
      "da += dy * [a > b]; db += dy * [b > a]; half each where equal; NaN to any NaN input",       \
      a > b || a != a ? a : b, a > b ? 1 : (a == b ? 0.5 : (a != a ? a : 0)),                      \
      b > a ? 1 : (a == b ? 0.5 : (b != b ? b : 0)))                                               \
    X(minimum, MINIMUM, "y = min(a, b)  (NaN if a or b is NaN)",                                   \
      "da += dy * [a < b]; db += dy * [b < a]; half each where equal; NaN to any NaN input",       \
      a < b || a != a ? a : b, a < b ? 1 : (a == b ? 0.5 : (a != a ? a : 0)),                      \
      b < a ? 1 : (a == b ? 0.5 : (b != b ? b : 0)))

#define T float
#include "binary-kernels.inc"
#undef T
#define T double
#include "binary-kernels.inc"
#undef T

/* ---- the differentiable VJPs (the descriptors' vjp_graph) ----
 * Each records its input gradients as ops on T from dy, the inputs and y (out),
 * then sums a broadcast gradient down to its input's shape (tg__sum_to). The
 * factors that are piecewise constant (maximum's and minimum's selection) are
 * tape constants computed from the values, NaN where the first-order kernel's
 * factor is NaN, so the values equal the kernels' up to rounding. */

#define VJP_ARGS                                                                                   \
    struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy, const bool *need,                \
        struct tg_tensor **dx

/* dx[i] = g summed to input i's shape, when asked; g NULL is a failed step. */
static enum tg_status put(struct tg_tape *T, struct tg_tensor *o, uint32_t i, struct tg_tensor *g,
                          struct tg_tensor **dx)
{
    if (g) g = tg__sum_to(T, g, o->in[i]->rank, o->in[i]->shape);
    if (!g) return tg__vjp_failure();
    dx[i] = g;
    return TG_OK;
}

/* A constant of out's shape: f(a, b) at each element (a and b broadcast); *any
 * tells whether some element is not 0 (may be NULL). */
static struct tg_tensor *pair_const(struct tg_tape *T, const struct tg_tensor *o,
                                    double (*f)(double a, double b), bool *any)
{
    struct tg_tensor *c = tg__vjp_const(T, o->dtype, o->rank, o->shape);
    if (!c) return NULL;
    const struct tg_tensor *A = o->in[0], *B = o->in[1];
    bool nz = false;
    struct tg_bc it;
    tg__bc_init(&it, o, A, B);
    for (int64_t r = 0; r < it.rows; r++, tg__bc_next(&it))
        for (int64_t j = 0; j < it.n; j++) {
            double v = f(tg__load(A->data, A->dtype, it.ia + j * it.sa),
                         tg__load(B->data, B->dtype, it.ib + j * it.sb));
            nz |= v != 0;
            tg__store(c->data, c->dtype, r * it.n + j, v);
        }
    if (any) *any = nz;
    return c;
}

static enum tg_status add_vjp(VJP_ARGS)
{
    enum tg_status st = TG_OK;
    for (uint32_t i = 0; i < 2 && !st; i++)
        if (need[i]) st = put(T, o, i, dy, dx);
    return st;
}

static enum tg_status sub_vjp(VJP_ARGS)
{
    enum tg_status st = need[0] ? put(T, o, 0, dy, dx) : TG_OK;
    if (!st && need[1]) {
        struct tg_tensor *g = tg__sum_to(T, dy, o->in[1]->rank, o->in[1]->shape);
        st = put(T, o, 1, g ? tg_neg(T, g) : NULL, dx);
    }
    return st;
}

/* da = dy b, db = dy a */
static enum tg_status mul_vjp(VJP_ARGS)
{
    enum tg_status st = TG_OK;
    for (uint32_t i = 0; i < 2 && !st; i++)
        if (need[i]) st = put(T, o, i, tg_mul(T, dy, o->in[1 - i]), dx);
    return st;
}

/* da = dy / b, db = -dy (y / b) */
static enum tg_status div_vjp(VJP_ARGS)
{
    struct tg_tensor *b = o->in[1];
    enum tg_status st = need[0] ? put(T, o, 0, tg_div(T, dy, b), dx) : TG_OK;
    if (!st && need[1]) {
        struct tg_tensor *g = tg_mul(T, dy, tg_div(T, o, b));
        g = g ? tg__sum_to(T, g, b->rank, b->shape) : NULL;
        st = put(T, o, 1, g ? tg_neg(T, g) : NULL, dx);
    }
    return st;
}

/* Where the kernel defines pow's factors by cases: at a == b == 0, dy/da is 0
 * (b a^(b-1) would be 0 * inf); at a == 0, dy/db is 0 (y log a would be
 * 0 * -inf, or inf * -inf). There a is replaced by a + 1 (a constant shift), where
 * the same formulas give 0 and stay differentiable. */
static double pow_shift_da(double a, double b)
{
    return a == 0 && b == 0 ? 1 : 0;
}
static double pow_shift_db(double a, double b)
{
    (void)b;
    return a == 0 ? 1 : 0;
}

/* da = dy b a^(b-1); db = dy y log a (= dy a^b log a where a was shifted) */
static enum tg_status pow_vjp(VJP_ARGS)
{
    struct tg_tensor *a = o->in[0], *b = o->in[1];
    enum tg_status st = TG_OK;
    bool any = false;
    if (need[0]) {
        struct tg_tensor *c = pair_const(T, o, pow_shift_da, &any), *as = a;
        if (c && any) as = tg_add(T, a, c);
        struct tg_tensor *f = c ? tg_mul(T, b, tg_pow(T, as, tg_sub_scalar(T, b, 1))) : NULL;
        st = put(T, o, 0, f ? tg_mul(T, dy, f) : NULL, dx);
    }
    if (!st && need[1]) {
        struct tg_tensor *c = pair_const(T, o, pow_shift_db, &any), *f = NULL;
        if (c && any) {
            struct tg_tensor *as = tg_add(T, a, c);
            f = tg_mul(T, tg_pow(T, as, b), tg_log(T, as));
        } else if (c) {
            f = tg_mul(T, o, tg_log(T, a));
        }
        st = put(T, o, 1, f ? tg_mul(T, dy, f) : NULL, dx);
    }
    return st;
}

/* The kernels' selection factors, as constants: 1 to the larger (smaller), half
 * each at a tie, NaN to a NaN input. */
static double max_da(double a, double b)
{
    return a > b ? 1 : (a == b ? 0.5 : (a != a ? a : 0));
}
static double max_db(double a, double b)
{
    return b > a ? 1 : (a == b ? 0.5 : (b != b ? b : 0));
}
static double min_da(double a, double b)
{
    return a < b ? 1 : (a == b ? 0.5 : (a != a ? a : 0));
}
static double min_db(double a, double b)
{
    return b < a ? 1 : (a == b ? 0.5 : (b != b ? b : 0));
}

static enum tg_status select_vjp(VJP_ARGS, double (*fa)(double, double),
                                 double (*fb)(double, double))
{
    enum tg_status st = TG_OK;
    for (uint32_t i = 0; i < 2 && !st; i++) {
        if (!need[i]) continue;
        struct tg_tensor *m = pair_const(T, o, i ? fb : fa, NULL);
        st = put(T, o, i, m ? tg_mul(T, dy, m) : NULL, dx);
    }
    return st;
}
static enum tg_status maximum_vjp(VJP_ARGS)
{
    return select_vjp(T, o, dy, need, dx, max_da, max_db);
}
static enum tg_status minimum_vjp(VJP_ARGS)
{
    return select_vjp(T, o, dy, need, dx, min_da, min_db);
}

/* Each op's descriptor, with its dtype dispatch and shape rule. */
#define X(NAME, ENUM, FORMULA, VJP, Y, DA, DB)                                                     \
    TG__DTYPE_DISPATCH(NAME)                                                                       \
    static enum tg_status NAME##_shape(struct tg_tensor *o)                                        \
    {                                                                                              \
        return tg__broadcast_shape(#NAME, o->in[0], o->in[1], o);                                  \
    }                                                                                              \
    const struct tg_op_desc tg_op_desc_##NAME = {                                                  \
        .op = TG_OP_##ENUM,                                                                        \
        .name = #NAME,                                                                             \
        .arity = 2,                                                                                \
        .formula = FORMULA,                                                                        \
        .vjp = VJP,                                                                                \
        .shape = NAME##_shape,                                                                     \
        .forward = NAME##_fwd,                                                                     \
        .backward = NAME##_bwd,                                                                    \
        .forward1 = {NAME##_fwd1_float, NAME##_fwd1_double},                                       \
        .backward1 = {NAME##_bwd1_float, NAME##_bwd1_double},                                      \
        .mixed_dtypes = false,                                                                     \
        .elementwise = true,                                                                       \
        .vjp_graph = NAME##_vjp};
BINARY_OPS(X)
#undef X

/* ---- the public constructors ---- */

struct tg_tensor *tg_add(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_add, a, b);
}
struct tg_tensor *tg_sub(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_sub, a, b);
}
struct tg_tensor *tg_mul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_mul, a, b);
}
struct tg_tensor *tg_div(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_div, a, b);
}
struct tg_tensor *tg_pow(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_pow, a, b);
}
struct tg_tensor *tg_maximum(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_maximum, a, b);
}
struct tg_tensor *tg_minimum(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg__op_record_binary(T, &tg_op_desc_minimum, a, b);
}
