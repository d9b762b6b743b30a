/*
 * ops/ops-impl.h - what every op file shares: the broadcast iterator, the
 * descriptor-defining helpers and the op table (never installed).
 */
#ifndef TG_OPS_IMPL_H
#define TG_OPS_IMPL_H

#include <math.h>
#include <string.h>
#include "../engine/engine-impl.h"
#include "tapegrad/ops.h"
#include "tapegrad/threads.h"

/* Every descriptor, named tg_op_desc_<name>, listed by TG_OP_LIST. */
#define TG_X_DECL(E, n) extern const struct tg_op_desc tg_op_desc_##n;
TG_OP_LIST(TG_X_DECL)
#undef TG_X_DECL
extern const struct tg_op_desc *const tg_op_table[TG_OP_COUNT];

/* The broadcast shape of a and b into out->rank/out->shape, or TG_ERR_SHAPE
 * with a message naming fn and both shapes. */
enum tg_status tg__broadcast_shape(const char *fn, const struct tg_tensor *a,
                                   const struct tg_tensor *b, struct tg_tensor *out);

/* Element strides of x seen through out's shape (0 along broadcast axes). */
static inline void tg__bcast_strides(const struct tg_tensor *x, const struct tg_tensor *out,
                                     int64_t *st)
{
    int off = out->rank - x->rank;
    int64_t s = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int k = d - off;
        if (k < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = x->shape[k] == 1 ? 0 : s;
        s *= x->shape[k];
    }
}

/* Walks out row by row (a row = the last axis), with the matching offsets of a
 * and b:  for (r = 0; r < it.rows; r++, tg__bc_next(&it))  use it.ia, it.ib,
 * io = r * it.n, and strides it.sa, it.sb along the row. */
struct tg_bc {
    int rank;
    int64_t n, rows, sa, sb, ia, ib;
    int64_t st_a[TG_MAX_DIM], st_b[TG_MAX_DIM], idx[TG_MAX_DIM], shape[TG_MAX_DIM];
};

static inline void tg__bc_init(struct tg_bc *it, const struct tg_tensor *out,
                               const struct tg_tensor *a, const struct tg_tensor *b)
{
    it->rank = out->rank;
    tg__bcast_strides(a, out, it->st_a);
    tg__bcast_strides(b, out, it->st_b);
    for (int d = 0; d < out->rank; d++) {
        it->idx[d] = 0;
        it->shape[d] = out->shape[d];
    }
    it->n = out->rank ? out->shape[out->rank - 1] : 1;
    it->sa = out->rank ? it->st_a[out->rank - 1] : 0;
    it->sb = out->rank ? it->st_b[out->rank - 1] : 0;
    it->rows = it->n ? out->numel / it->n : 0;
    it->ia = it->ib = 0;
}

static inline void tg__bc_next(struct tg_bc *it)
{
    for (int d = it->rank - 2; d >= 0; d--) {
        it->ia += it->st_a[d];
        it->ib += it->st_b[d];
        if (++it->idx[d] < it->shape[d]) return;
        it->ia -= it->st_a[d] * it->shape[d];
        it->ib -= it->st_b[d] * it->shape[d];
        it->idx[d] = 0;
    }
}

/* C = alpha op(A) op(B) + beta C (row-major, leading dimensions lda/ldb/ldc)
 * through CBLAS or the portable kernel, as tg_matmul_set_backend chose
 * (ops/matmul.c). beta 0 ignores C's old contents. Sizes must fit in int. */
void tg__gemm(int dtype, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
              int64_t ldc);

/* Runs fn(ctx, w) for the parts w = 0 .. n_parts - 1, on the threads of
 * tapegrad/threads.h when it has more than one and no other section runs (part
 * w always on the same thread: the caller takes w = 0, n, 2n, ...), else one
 * after the other on the caller's. Returns when every part has. ops/parallel.c */
void tg__parallel(int n_parts, void (*fn)(void *ctx, int part), void *ctx);
/* How many parts a section started here could run at once: the threads of
 * tapegrad/threads.h, or 1 inside a section. */
int tg__parallel_width(void);

/* ---- f32 tanh and sigmoid that the compiler can vectorize ----
 * libm's tanh/exp are scalar calls and dominate small f32 models. These use only
 * arithmetic, a clamp and a select, so a loop over them vectorizes (ops/ is built
 * with -ftree-vectorize -fno-trapping-math). Accuracy against tanh in double over
 * [-12, 12]: relative error below 3e-7 (about 2 ulp), checked by
 * test_fast_f32_activations in tests/check_linalg.c. f64 keeps libm. */

/* e^y for -87 <= y <= 0 (2^n stays a normal float): y = n ln2 + r, |r| <= ln2 / 2, e^r by its
 * Taylor polynomial to r^6 (truncation below 1.3e-7), 2^n through the exponent. */
static inline float tg__exp_neg_f(float y)
{
    float yc = y >= -87.0f ? y : -87.0f; /* NaN becomes -87 here (no UB below) ... */
    float n = (yc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(yc / ln 2) */
    float r = (yc - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    union {
        uint32_t i;
        float f;
    } two_n = {.i = (uint32_t)((int32_t)n + 127) << 23}; /* n in [-126, 0] */
    float e = p * two_n.f;
    return y == y ? e : y; /* ... and NaN again here */
}

/* tanh x: the odd Taylor series below |x| = 0.25 (where 1 - 2/(e^2x + 1) would
 * cancel), (1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x above; |x| >= 9
 * rounds to +-1 in f32. */
static inline float tg__tanh_f(float x)
{
    float a = fabsf(x), a2 = x * x;
    float small =
        x *
        (1.0f + a2 * (-1.0f / 3 + a2 * (2.0f / 15 + a2 * (-17.0f / 315 + a2 * (62.0f / 2835)))));
    float e = tg__exp_neg_f(-2.0f * (a > 9.0f ? 9.0f : a)); /* NaN stays NaN */
    float big = copysignf((1.0f - e) / (1.0f + e), x);
    return a < 0.25f ? small : big;
}

/* sigmoid x = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: no overflow;
 * below -87 the result would be subnormal and is returned as 0. */
static inline float tg__sigmoid_f(float x)
{
    float a = fabsf(x), e = tg__exp_neg_f(-(a > 87.0f ? 87.0f : a)), s = 1.0f / (1.0f + e);
    return x >= 0 ? s : (a > 87.0f ? 0.0f : e * s);
}

static inline double tg__sigmoid_d(double x)
{
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* tanh / sigmoid of a float or a double: the vectorizable forms for f32. */
#define TG_TANH(x)    _Generic((x), float : tg__tanh_f, default : tanh)(x)
#define TG_SIGMOID(x) _Generic((x), float : tg__sigmoid_f, default : tg__sigmoid_d)(x)

/* Shape rule shared by elementwise unary ops: out has x's shape. */
enum tg_status tg__shape_same(struct tg_tensor *out);

/* ---- differentiable VJPs (ops/vjp-util.c): helpers of the descriptors' vjp_graph ---- */

/* g (a node or constant of T, or a leaf) summed down to (rank, shape): the shape
 * of an input that broadcasting took to g's shape. Sums over g's leading axes
 * beyond rank and over the axes where shape has 1 and g more, with tg_sum_axes
 * (keepdim) and then tg_reshape when leading axes go, so the result can be
 * differentiated again. Returns g itself when the shapes are already equal.
 * NULL for a NULL g (its cause kept), or with TG_ERR_SHAPE ("sum_to: ...") when
 * g's shape is not a broadcast of (rank, shape), or the status of a failed op. */
struct tg_tensor *tg__sum_to(struct tg_tape *T, struct tg_tensor *g, int rank,
                             const int64_t *shape);
/* A constant of T of zeros with dtype and shape, for a VJP to fill in through its
 * data (masks, signs, one-hot rows); NULL with the tape's status on failure. */
struct tg_tensor *tg__vjp_const(struct tg_tape *T, int dtype, int rank, const int64_t *shape);
/* The status a vjp_graph returns after a step gave NULL: the last failure on
 * this thread (TG_ERR_NOMEM if, unexpectedly, none is recorded). */
enum tg_status tg__vjp_failure(void);

/* NAME_fwd and NAME_bwd: the kernels of the node's dtype, from NAME_fwd_double /
 * NAME_fwd_float and NAME_bwd_double / NAME_bwd_float (one body per family,
 * included per dtype: ops/binary-kernels.inc, ops/unary-kernels.inc). */
#define TG__DTYPE_DISPATCH(NAME)                                                                   \
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
    }

#endif
