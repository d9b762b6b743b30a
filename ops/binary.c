/*
 * ops/binary.c - elementwise ops of two tensors, with NumPy broadcasting.
 *
 * Each op is one BINARY_OP line: its forward expression in x (= a), y (= b),
 * and its two local derivatives, which may also use z (= the output). Backward
 * adds g * da into a's gradient at a's (possibly broadcast) offset, so summing
 * over broadcast axes happens by accumulation, with no extra pass.
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
            tg__format_shape(sa, sizeof sa, a->rank, a->shape);
            tg__format_shape(sb, sizeof sb, b->rank, b->shape);
            return tg__fail(TG_ERR_SHAPE, "%s: shapes %s and %s cannot broadcast", fn, sa, sb);
        }
        out->shape[d] = da == 1 ? db : da;
    }
    out->rank = (uint8_t)r;
    return TG_OK;
}

/* Forward and backward of one op for one element type T. */
#define BINARY_KERNELS(NAME, T, FWD, DA, DB)                                                       \
    /* the broadcasting loops, out of line: the scalar case stays a leaf call */                   \
    __attribute__((noinline)) static void NAME##_fwd_loop_##T(struct tg_tensor *out)               \
    {                                                                                              \
        const struct tg_tensor *A = out->in[0], *B = out->in[1];                                   \
        const T *a = A->data, *b = B->data;                                                        \
        T *o = out->data;                                                                          \
        struct tg_bc it;                                                                           \
        tg__bc_init(&it, out, A, B);                                                               \
        for (int64_t r = 0; r < it.rows; r++, tg__bc_next(&it)) {                                  \
            const T *ar = a + it.ia, *br = b + it.ib;                                              \
            T *orow = o + r * it.n;                                                                \
            for (int64_t j = 0; j < it.n; j++) {                                                   \
                T x = ar[j * it.sa], y = br[j * it.sb];                                            \
                orow[j] = (T)(FWD);                                                                \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    /* one element: the scalar record path calls this directly */                                  \
    static void NAME##_fwd1_##T(struct tg_tensor *out)                                             \
    {                                                                                              \
        T x = *(const T *)out->in[0]->data, y = *(const T *)out->in[1]->data;                      \
        *(T *)out->data = (T)(FWD);                                                                \
    }                                                                                              \
    static void NAME##_fwd_##T(struct tg_tensor *out)                                              \
    {                                                                                              \
        if (out->numel != 1)                                                                       \
            NAME##_fwd_loop_##T(out);                                                              \
        else                                                                                       \
            NAME##_fwd1_##T(out);                                                                  \
    }                                                                                              \
    __attribute__((noinline)) static void NAME##_bwd_loop_##T(struct tg_tensor *out)               \
    {                                                                                              \
        const struct tg_tensor *A = out->in[0], *B = out->in[1];                                   \
        const T *a = A->data, *b = B->data, *o = out->data, *g = out->grad;                        \
        T *ga = A->requires_grad ? A->grad : NULL, *gb = B->requires_grad ? B->grad : NULL;        \
        struct tg_bc it;                                                                           \
        tg__bc_init(&it, out, A, B);                                                               \
        for (int64_t r = 0; r < it.rows; r++, tg__bc_next(&it)) {                                  \
            for (int64_t j = 0; j < it.n; j++) {                                                   \
                int64_t ka = it.ia + j * it.sa, kb = it.ib + j * it.sb;                            \
                T x = a[ka], y = b[kb], z = o[r * it.n + j], gz = g[r * it.n + j];                 \
                (void)x, (void)y, (void)z;                                                         \
                if (ga) ga[ka] += (T)(gz * (DA));                                                  \
                if (gb) gb[kb] += (T)(gz * (DB));                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    /* one element: the sweep calls this directly for scalar-path nodes */                         \
    static void NAME##_bwd1_##T(struct tg_tensor *out)                                             \
    {                                                                                              \
        const struct tg_tensor *A = out->in[0], *B = out->in[1];                                   \
        T x = *(const T *)A->data, y = *(const T *)B->data, z = *(const T *)out->data,             \
          gz = *(const T *)out->grad;                                                              \
        (void)x, (void)y, (void)z;                                                                 \
        if (A->requires_grad) *(T *)A->grad += (T)(gz * (DA));                                     \
        if (B->requires_grad) *(T *)B->grad += (T)(gz * (DB));                                     \
    }                                                                                              \
    static void NAME##_bwd_##T(struct tg_tensor *out)                                              \
    {                                                                                              \
        if (out->numel != 1)                                                                       \
            NAME##_bwd_loop_##T(out);                                                              \
        else                                                                                       \
            NAME##_bwd1_##T(out);                                                                  \
    }

/* The descriptor, the dtype dispatch and the public constructor. */
#define BINARY_OP(NAME, ENUM, FORMULA, VJP, FWD, DA, DB)                                           \
    BINARY_KERNELS(NAME, float, FWD, DA, DB)                                                       \
    BINARY_KERNELS(NAME, double, FWD, DA, DB)                                                      \
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
        .mixed_dtypes = false};                                                                    \
    struct tg_tensor *tg_##NAME(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)       \
    {                                                                                              \
        return tg__op_record_binary(T, &tg_op_desc_##NAME, a, b);                                  \
    }

BINARY_OP(add, ADD, "y = a + b", "da += dy; db += dy", x + y, 1, 1)
BINARY_OP(sub, SUB, "y = a - b", "da += dy; db -= dy", x - y, 1, -1)
BINARY_OP(mul, MUL, "y = a * b", "da += dy * b; db += dy * a", x *y, y, x)
/* d(x/y)/dy = -x/y^2 = -z/y */
BINARY_OP(div, DIV, "y = a / b", "da += dy / b; db -= dy * y / b", x / y, 1 / y, -z / y)
/* d(x^y)/dx = y x^(y-1); d(x^y)/dy = z log x, taken as 0 where x == 0 */
BINARY_OP(pow, POW, "y = a ^ b", "da += dy * b * a^(b-1); db += dy * y * log(a)", pow(x, y),
          y == 0 ? 0 : y * pow(x, y - 1), x == 0 ? 0 : z * log(x))
/* at a tie each side receives half of the gradient */
BINARY_OP(maximum, MAXIMUM, "y = max(a, b)",
          "da += dy * [a > b]; db += dy * [b > a]; half each at a tie", x > y ? x : y,
          x > y ? 1 : (x == y ? 0.5 : 0), y > x ? 1 : (x == y ? 0.5 : 0))
BINARY_OP(minimum, MINIMUM, "y = min(a, b)",
          "da += dy * [a < b]; db += dy * [b < a]; half each at a tie", x < y ? x : y,
          x < y ? 1 : (x == y ? 0.5 : 0), y < x ? 1 : (x == y ? 0.5 : 0))
