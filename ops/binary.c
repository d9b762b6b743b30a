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
      "da += dy * [a > b]; db += dy * [b > a]; half each at a tie; NaN to a NaN input",            \
      a > b || a != a ? a : b, a > b ? 1 : (a == b ? 0.5 : (a != a ? a : 0)),                      \
      b > a ? 1 : (a == b ? 0.5 : (b != b ? b : 0)))                                               \
    X(minimum, MINIMUM, "y = min(a, b)  (NaN if a or b is NaN)",                                   \
      "da += dy * [a < b]; db += dy * [b < a]; half each at a tie; NaN to a NaN input",            \
      a < b || a != a ? a : b, a < b ? 1 : (a == b ? 0.5 : (a != a ? a : 0)),                      \
      b < a ? 1 : (a == b ? 0.5 : (b != b ? b : 0)))

#define T float
#include "binary-kernels.inc"
#undef T
#define T double
#include "binary-kernels.inc"
#undef T

/* Each op's descriptor, with its dtype dispatch and shape rule. */
#define X(NAME, ENUM, FORMULA, VJP, Y, DA, DB)                                                     \
    static void NAME##_fwd(struct tg_tensor *o)                                                    \
    {                                                                                              \
        if (o->dtype == TG_F64)                                                                    \
            NAME##_fwd_double(o);                                                                  \
        else                                                                                       \
            NAME##_fwd_float(o);                                                                   \
    }                                                                                              \
    static void NAME##_bwd(struct tg_tensor *o)                                                    \
    {                                                                                              \
        if (o->dtype == TG_F64)                                                                    \
            NAME##_bwd_double(o);                                                                  \
        else                                                                                       \
            NAME##_bwd_float(o);                                                                   \
    }                                                                                              \
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
        .elementwise = true};
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
