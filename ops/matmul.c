/*
 * ops/matmul.c - the matrix product: tg_matmul and tg_matmul_t (one op; the
 * transpose flags are its parameters).
 *
 * Every product, batched or not, becomes a loop of row-major GEMMs
 * C = op(A) op(B) + beta C over the broadcast batch index. Vectors are viewed as
 * a (1,k) row (left operand) or a (k,1) column (right operand), so they need no
 * special kernel. Transposition is never a copy: it is the GEMM's trans flag.
 *
 * Backward is two more GEMMs per batch with beta = 1, accumulating straight into
 * the gradients: when a batch dimension was broadcast, the same gradient matrix
 * receives one GEMM per output batch, which is the sum over that dimension.
 *
 * Kernels: CBLAS (sgemm/dgemm) when built with the `blas` feature, and a portable
 * cache-blocked kernel always; tg_matmul_set_backend picks one per thread so that
 * the tests can compare them on the same inputs.
 */
#include <limits.h>
#include <stdio.h>
#include "ops-impl.h"
#include "tg-config.h"
#if TG_HAVE_BLAS
#include <cblas.h>
#endif

enum { FLAG_TA = 1, FLAG_TB = 2 };

/* ---- backend selection ---- */

static _Thread_local enum tg_matmul_backend backend_choice = TG_MATMUL_AUTO;

enum tg_status tg_matmul_set_backend(enum tg_matmul_backend backend)
{
    if (backend != TG_MATMUL_AUTO && backend != TG_MATMUL_BLAS && backend != TG_MATMUL_PORTABLE)
        return tg__fail(TG_ERR_VALUE, "tg_matmul_set_backend: unknown backend %d", (int)backend);
    if (backend == TG_MATMUL_BLAS && !TG_HAVE_BLAS)
        return tg__fail(TG_ERR_STATE, "tg_matmul_set_backend: tapegrad was built without BLAS");
    backend_choice = backend;
    return TG_OK;
}

enum tg_matmul_backend tg_matmul_get_backend(void)
{
    if (backend_choice == TG_MATMUL_AUTO) return TG_HAVE_BLAS ? TG_MATMUL_BLAS : TG_MATMUL_PORTABLE;
    return backend_choice;
}

/* ---- the portable kernel ----
 * C (M,N) = alpha op(A) (M,K) * op(B) (K,N) + beta C, row-major.
 * op(B) is packed block by block, (KB,NB) at a time, into a contiguous buffer
 * on the stack (64 KiB in f64) that stays in L2 while every row of C streams
 * past it; four rows at a time share each load of the packed block. */
enum { KB = 64, NB = 128 };

#define PORTABLE_GEMM(T)                                                                           \
    static void scale_rows_##T(T *C, int64_t M, int64_t N, int64_t ldc, double beta)               \
    {                                                                                              \
        for (int64_t i = 0; i < M && beta != 1; i++)                                               \
            for (int64_t j = 0; j < N; j++)                                                        \
                C[i * ldc + j] = beta == 0 ? 0 : (T)beta * C[i * ldc + j];                         \
    }                                                                                              \
    /* bp = alpha op(B) block (alpha 1 copies exactly) */                                          \
    static void pack_b_##T(T *bp, bool tb, const T *B, int64_t ldb, int64_t p0, int64_t kb,        \
                           int64_t j0, int64_t nb, T alpha)                                        \
    {                                                                                              \
        for (int64_t p = 0; p < kb; p++)                                                           \
            for (int64_t j = 0; j < nb; j++)                                                       \
                bp[p * nb + j] =                                                                   \
                    alpha * (tb ? B[(j0 + j) * ldb + p0 + p] : B[(p0 + p) * ldb + j0 + j]);        \
    }                                                                                              \
    /* rows i0..i0+nr-1 (nr <= 4) of the C block += op(A) block * bp */                            \
    static void rows_##T(int nr, T *const *c, const T *const *a, int64_t astep, const T *bp,       \
                         int64_t kb, int64_t nb)                                                   \
    {                                                                                              \
        for (int64_t p = 0; p < kb; p++) {                                                         \
            const T *b = bp + p * nb;                                                              \
            if (nr == 4) {                                                                         \
                T a0 = a[0][p * astep], a1 = a[1][p * astep], a2 = a[2][p * astep],                \
                  a3 = a[3][p * astep];                                                            \
                for (int64_t j = 0; j < nb; j++) {                                                 \
                    c[0][j] += a0 * b[j];                                                          \
                    c[1][j] += a1 * b[j];                                                          \
                    c[2][j] += a2 * b[j];                                                          \
                    c[3][j] += a3 * b[j];                                                          \
                }                                                                                  \
            } else {                                                                               \
                for (int r = 0; r < nr; r++) {                                                     \
                    T ar = a[r][p * astep];                                                        \
                    for (int64_t j = 0; j < nb; j++) c[r][j] += ar * b[j];                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void gemm_portable_##T(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, \
                                  const T *A, int64_t lda, const T *B, int64_t ldb, double beta,   \
                                  T *C, int64_t ldc)                                               \
    {                                                                                              \
        T bp[KB * NB]; /* (kb, nb) block of alpha op(B) */                                         \
        scale_rows_##T(C, M, N, ldc, beta);                                                        \
        /* op(A)(i, p) = A[i*lda + p], or A[p*lda + i] when transposed */                          \
        int64_t astep = ta ? lda : 1, arow = ta ? 1 : lda;                                         \
        for (int64_t j0 = 0; j0 < N; j0 += NB) {                                                   \
            int64_t nb = N - j0 < NB ? N - j0 : NB;                                                \
            for (int64_t p0 = 0; p0 < K; p0 += KB) {                                               \
                int64_t kb = K - p0 < KB ? K - p0 : KB;                                            \
                pack_b_##T(bp, tb, B, ldb, p0, kb, j0, nb, (T)alpha);                              \
                for (int64_t i = 0; i < M; i += 4) {                                               \
                    int nr = M - i < 4 ? (int)(M - i) : 4;                                         \
                    T *c[4];                                                                       \
                    const T *a[4];                                                                 \
                    for (int r = 0; r < nr; r++) {                                                 \
                        c[r] = C + (i + r) * ldc + j0;                                             \
                        a[r] = A + (i + r) * arow + p0 * astep;                                    \
                    }                                                                              \
                    rows_##T(nr, c, a, astep, bp, kb, nb);                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

PORTABLE_GEMM(float)
PORTABLE_GEMM(double)

/* A product split into parts (tapegrad/threads.h): part w computes the columns
 * (or, when C has more rows than columns, the rows) [w n / parts, (w+1) n /
 * parts) of C, so every element of C is computed by one call, as it is unsplit. */
struct gemm_job {
    int dtype, parts;
    bool ta, tb, by_rows;
    int64_t M, N, K, lda, ldb, ldc;
    double alpha, beta;
    const void *A, *B;
    void *C;
};

static void gemm_part(void *ctx, int w)
{
    const struct gemm_job *j = ctx;
    size_t es = tg__esize(j->dtype);
    int64_t n = j->by_rows ? j->M : j->N, lo = n * w / j->parts, hi = n * (w + 1) / j->parts;
    if (hi == lo) return;
    if (j->by_rows) /* rows lo..hi of op(A) and of C */
        tg__gemm(j->dtype, j->ta, j->tb, hi - lo, j->N, j->K, j->alpha,
                 (const char *)j->A + (size_t)(j->ta ? lo : lo * j->lda) * es, j->lda, j->B, j->ldb,
                 j->beta, (char *)j->C + (size_t)(lo * j->ldc) * es, j->ldc);
    else /* columns lo..hi of op(B) and of C */
        tg__gemm(j->dtype, j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, j->lda,
                 (const char *)j->B + (size_t)(j->tb ? lo * j->ldb : lo) * es, j->ldb, j->beta,
                 (char *)j->C + (size_t)lo * es, j->ldc);
}

/* C = alpha op(A) op(B) + beta C with the thread's backend; all sizes already
 * checked to fit in int. An empty product (K = 0) only scales C by beta. With
 * several threads (tapegrad/threads.h), a product of 4 MFLOP or more is split
 * among them. */
void tg__gemm(int dtype, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
              int64_t ldc)
{
    if (M == 0 || N == 0) return;
    int parts = tg__parallel_width();
    if (parts > 1 && K > 0 && 2.0 * (double)M * (double)N * (double)K >= 4e6) {
        struct gemm_job j = {dtype, parts, ta,  tb,    M > N, M, N, K,
                             lda,   ldb,   ldc, alpha, beta,  A, B, C};
        int64_t n = j.by_rows ? M : N;
        if (n < parts) j.parts = (int)n;
        tg__parallel(j.parts, gemm_part, &j);
        return;
    }
    if (K == 0) { /* C = beta C */
        if (dtype == TG_F64)
            scale_rows_double(C, M, N, ldc, beta);
        else
            scale_rows_float(C, M, N, ldc, beta);
        return;
    }
#if TG_HAVE_BLAS
    if (tg_matmul_get_backend() == TG_MATMUL_BLAS) {
        enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans,
                             opb = tb ? CblasTrans : CblasNoTrans;
        if (dtype == TG_F64)
            cblas_dgemm(CblasRowMajor, opa, opb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                        (int)ldb, beta, C, (int)ldc);
        else
            cblas_sgemm(CblasRowMajor, opa, opb, (int)M, (int)N, (int)K, (float)alpha, A, (int)lda,
                        B, (int)ldb, (float)beta, C, (int)ldc);
        return;
    }
#endif
    if (dtype == TG_F64)
        gemm_portable_double(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm_portable_float(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- geometry: from the operands' shapes and flags to a loop of GEMMs ---- */

struct geom {
    int64_t m, k, n;  /* op(A) is (m,k), op(B) is (k,n), each output matrix (m,n) */
    int64_t lda, ldb; /* row strides of A and B as stored */
    bool ta, tb;      /* flags in effect (a vector is never transposed) */
    int brank;        /* rank of the broadcast batch shape */
    int64_t bshape[TG_MAX_DIM];
    int64_t sa[TG_MAX_DIM], sb[TG_MAX_DIM]; /* batch strides of A and B (0: broadcast) */
    int64_t nbatch;
};

/* One operand: its matrix as stored (rows, cols), the product's view of it. */
static void operand(const struct tg_tensor *x, bool trans, bool left, int64_t *outer,
                    int64_t *inner, int64_t *ld, bool *t)
{
    if (x->rank == 1) { /* (1,k) on the left, (k,1) on the right */
        *outer = 1;
        *inner = x->shape[0];
        *ld = left && x->shape[0] > 0 ? x->shape[0] : 1;
        *t = false;
        return;
    }
    int64_t rows = x->shape[x->rank - 2], cols = x->shape[x->rank - 1];
    /* left: op(A) = (outer=m, inner=k); right: op(B) = (inner=k, outer=n) */
    bool swap = left ? trans : !trans;
    *outer = swap ? cols : rows;
    *inner = swap ? rows : cols;
    *ld = cols > 0 ? cols : 1;
    *t = trans;
}

/* "(2,3)" or "(3,2)^T" */
static void shape_name(char *buf, size_t size, const struct tg_tensor *x, bool t)
{
    tg_tensor_format_shape(buf, size, x->rank, x->shape);
    if (t && x->rank >= 2) strncat(buf, "^T", size - strlen(buf) - 1);
}

/* Fails with "matmul: shapes (a) and (b)<why>": the shapes are formatted only
 * here, on failure. */
static enum tg_status fail_shapes(enum tg_status st, const struct tg_tensor *a,
                                  const struct tg_tensor *b, int flags, const char *why)
{
    char sa[160], sb[160];
    shape_name(sa, sizeof sa, a, flags & FLAG_TA);
    shape_name(sb, sizeof sb, b, flags & FLAG_TB);
    return tg__fail(st, "matmul: shapes %s and %s%s", sa, sb, why);
}

/* Batch dims of A and B broadcast into g; strides in elements. */
static bool batch_dims(const struct tg_tensor *a, const struct tg_tensor *b, struct geom *g)
{
    int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
    int64_t ma = a->rank >= 2 ? a->shape[a->rank - 2] * a->shape[a->rank - 1] : a->shape[0];
    int64_t mb = b->rank >= 2 ? b->shape[b->rank - 2] * b->shape[b->rank - 1] : b->shape[0];
    g->brank = ba > bb ? ba : bb;
    g->nbatch = 1;
    int64_t stra = ma, strb = mb;
    for (int d = g->brank - 1; d >= 0; d--) {
        int ka = d - (g->brank - ba), kb = d - (g->brank - bb);
        int64_t da = ka >= 0 ? a->shape[ka] : 1, db = kb >= 0 ? b->shape[kb] : 1;
        if (da != db && da != 1 && db != 1) return false;
        g->bshape[d] = da == 1 ? db : da;
        g->sa[d] = da == 1 ? 0 : stra;
        g->sb[d] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
        g->nbatch *= g->bshape[d];
    }
    return true;
}

/* The loop of GEMMs for operands a and b with transpose flags, into g; fails
 * (message set) when the shapes do not fit. */
static enum tg_status geometry(const struct tg_tensor *a, const struct tg_tensor *b, int flags,
                               struct geom *g)
{
    bool ta = flags & FLAG_TA, tb = flags & FLAG_TB;
    if (a->rank == 0 || b->rank == 0)
        return fail_shapes(TG_ERR_SHAPE, a, b, flags, ": an operand is a scalar (use mul)");
    int64_t kb;
    operand(a, ta, true, &g->m, &g->k, &g->lda, &g->ta);
    operand(b, tb, false, &g->n, &kb, &g->ldb, &g->tb);
    if (g->k != kb) {
        char why[80];
        snprintf(why, sizeof why, " do not fit (%lld != %lld)", (long long)g->k, (long long)kb);
        return fail_shapes(TG_ERR_SHAPE, a, b, flags, why);
    }
    if (!batch_dims(a, b, g))
        return fail_shapes(TG_ERR_SHAPE, a, b, flags, ": batch dimensions cannot broadcast");
    if (g->m > INT_MAX || g->n > INT_MAX || g->k > INT_MAX || g->lda > INT_MAX ||
        g->ldb > INT_MAX) {
        char why[64];
        snprintf(why, sizeof why, ": a dimension exceeds %d", INT_MAX);
        return fail_shapes(TG_ERR_RANGE, a, b, flags, why);
    }
    return TG_OK;
}

/* Runs the statement for each batch index, with the element offsets oa, ob, oc
 * of that batch's matrices in A, B and C. */
#define FOR_BATCH(g, oa, ob, oc, ...)                                                              \
    do {                                                                                           \
        int64_t idx_[TG_MAX_DIM] = {0}, oa = 0, ob = 0;                                            \
        for (int64_t bi_ = 0; bi_ < (g).nbatch; bi_++) {                                           \
            int64_t oc = bi_ * (g).m * (g).n;                                                      \
            __VA_ARGS__;                                                                           \
            for (int d_ = (g).brank - 1; d_ >= 0; d_--) {                                          \
                oa += (g).sa[d_];                                                                  \
                ob += (g).sb[d_];                                                                  \
                if (++idx_[d_] < (g).bshape[d_]) break;                                            \
                oa -= (g).sa[d_] * (g).bshape[d_];                                                 \
                ob -= (g).sb[d_] * (g).bshape[d_];                                                 \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The output shape, from the geometry, which stays in the node (out->aux, from
 * the constructor) for forward and backward: it is worked out once per node. */
static enum tg_status matmul_shape(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0], *b = out->in[1];
    struct geom *g = out->aux;
    if (geometry(a, b, (int)out->p.i[0], g)) return tg_last_status();
    int r = 0;
    for (int d = 0; d < g->brank; d++) out->shape[r++] = g->bshape[d];
    if (a->rank >= 2) out->shape[r++] = g->m;
    if (b->rank >= 2) out->shape[r++] = g->n;
    out->rank = (uint8_t)r;
    return TG_OK;
}

/* The parameters: trans_a and trans_b, as 0 or 1. */
static int matmul_params(const struct tg_tensor *out, double *vals)
{
    vals[0] = (out->p.i[0] & FLAG_TA) ? 1 : 0;
    vals[1] = (out->p.i[0] & FLAG_TB) ? 1 : 0;
    return 2;
}

/* Y_b = op(A_b) op(B_b) */
static void matmul_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0], *b = out->in[1];
    const struct geom g = *(const struct geom *)out->aux;
    size_t es = tg__esize(out->dtype);
    const char *A = a->data, *B = b->data;
    char *C = out->data;
    FOR_BATCH(g, oa, ob, oc,
              tg__gemm(out->dtype, g.ta, g.tb, g.m, g.n, g.k, 1.0, A + oa * es, g.lda, B + ob * es,
                       g.ldb, 0.0, C + oc * es, g.n));
}

/* dA_b = alpha dY_b op(B_b)^T + beta dA_b (stored transposed when ta:
 * dA^T = alpha op(B) dY^T + beta dA^T), into dst (A's gradient, or A's value
 * when an update is folded in). */
static void grad_a(const struct geom *g, int dt, const char *Bb, const char *dYb, double alpha,
                   double beta, char *dst)
{
    if (!g->ta) /* (m,k) += (m,n) x (n,k) */
        tg__gemm(dt, false, !g->tb, g->m, g->k, g->n, alpha, dYb, g->n, Bb, g->ldb, beta, dst,
                 g->lda);
    else /* (k,m) += (k,n) x (n,m) */
        tg__gemm(dt, g->tb, true, g->k, g->m, g->n, alpha, Bb, g->ldb, dYb, g->n, beta, dst,
                 g->lda);
}

/* dB_b = alpha op(A_b)^T dY_b + beta dB_b (when tb: dB^T = alpha dY^T op(A) + ...). */
static void grad_b(const struct geom *g, int dt, const char *Ab, const char *dYb, double alpha,
                   double beta, char *dst)
{
    if (!g->tb) /* (k,n) += (k,m) x (m,n) */
        tg__gemm(dt, !g->ta, false, g->k, g->n, g->m, alpha, Ab, g->lda, dYb, g->n, beta, dst,
                 g->ldb);
    else /* (n,k) += (n,m) x (m,k) */
        tg__gemm(dt, true, g->ta, g->n, g->k, g->m, alpha, dYb, g->n, Ab, g->lda, beta, dst,
                 g->ldb);
}

/* tg_backward_apply may fold an operand's update into its gradient GEMM when
 * there is one product (no batch loop applying beta twice) and the other operand
 * is not folded too (each fold reads the other operand's old value). */
static bool matmul_can_fold(const struct tg_tensor *out, uint32_t slot)
{
    const struct geom *g = out->aux;
    return slot < 2 && g->nbatch == 1 && !tg__fold_at(out, 1 - slot);
}

/* Accumulates into the gradients with beta = 1 (dA += dY op(B)^T, dB += op(A)^T dY).
 * A folded operand is updated last, after the other operand's gradient has read
 * its old value: value = beta value + alpha dY op(B)^T. */
static void matmul_bwd(struct tg_tensor *out)
{
    struct tg_tensor *a = out->in[0], *b = out->in[1];
    const struct geom g = *(const struct geom *)out->aux;
    size_t es = tg__esize(out->dtype);
    const char *A = a->data, *B = b->data, *dY = out->grad;
    char *dA = a->requires_grad ? a->grad : NULL, *dB = b->requires_grad ? b->grad : NULL;
    int dt = out->dtype;
    struct tg__apply *fa = tg__fold_at(out, 0), *fb = tg__fold_at(out, 1);
    if (fa) {
        if (dB) grad_b(&g, dt, A, dY, 1.0, 1.0, dB);
        grad_a(&g, dt, B, dY, fa->alpha, fa->beta, a->data);
        fa->done = true;
        return;
    }
    if (fb) {
        if (dA) grad_a(&g, dt, B, dY, 1.0, 1.0, dA);
        grad_b(&g, dt, A, dY, fb->alpha, fb->beta, b->data);
        fb->done = true;
        return;
    }
    FOR_BATCH(g, oa, ob, oc, {
        if (dA) grad_a(&g, dt, B + ob * es, dY + oc * es, 1.0, 1.0, dA + oa * es);
        if (dB) grad_b(&g, dt, A + oa * es, dY + oc * es, 1.0, 1.0, dB + ob * es);
    });
}

/* The differentiable VJP, with op(A) = A^T when ta (the flags in effect: a
 * vector has none):  dA = dY op(B)^T, stored as op(B) dY^T when ta;
 * dB = op(A)^T dY, stored as dY^T op(A) when tb; each summed over the batch
 * axes its operand was broadcast along. A vector operand is taken as the
 * (1,k) row (left) or (k,1) column (right) it is for the GEMMs, dY with the
 * matching size-1 axis, and its gradient reshaped back. */
static enum tg_status matmul_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    struct tg_tensor *a = out->in[0], *b = out->in[1], *A = a, *B = b, *G = dy;
    const struct geom *g = out->aux;
    if (!need[0] && !need[1]) return TG_OK; /* nothing recorded */
    /* dA reads B, dB reads A */
    if (a->rank == 1 && need[1]) A = tg_reshape(T, a, 2, (int64_t[]){1, a->shape[0]});
    if (b->rank == 1 && need[0]) B = tg_reshape(T, b, 2, (int64_t[]){b->shape[0], 1});
    if (a->rank == 1 || b->rank == 1) {
        int64_t gs[TG_MAX_DIM];
        for (int d = 0; d < g->brank; d++) gs[d] = g->bshape[d];
        gs[g->brank] = g->m;
        gs[g->brank + 1] = g->n;
        G = tg_reshape(T, dy, g->brank + 2, gs);
    }
    if (!A || !B || !G) return tg__vjp_failure();
    for (int i = 0; i < 2; i++) {
        if (!need[i]) continue;
        struct tg_tensor *x = i ? b : a, *d;
        int64_t xs[2] = {1, x->shape[0]}; /* a vector operand's matrix: (1,k) or (k,1) */
        if (i) xs[0] = x->shape[0], xs[1] = 1;
        int xr = x->rank == 1 ? 2 : x->rank;
        const int64_t *xshape = x->rank == 1 ? xs : x->shape;
        if (i == 0)
            d = g->ta ? tg_matmul_t(T, B, G, g->tb, true) : tg_matmul_t(T, G, B, false, !g->tb);
        else
            d = g->tb ? tg_matmul_t(T, G, A, true, g->ta) : tg_matmul_t(T, A, G, !g->ta, false);
        d = tg__sum_to(T, d, xr, xshape);
        if (d && x->rank == 1) d = tg_reshape(T, d, 1, x->shape);
        if (!(dx[i] = d)) return tg__vjp_failure();
    }
    return TG_OK;
}

/* The rule of this node: the transposes follow its flags in effect (see
 * matmul_vjp, whose products these are), and a broadcast operand's gradient
 * is summed over the batch axes it was broadcast along. */
static void matmul_rule(const struct tg_tensor *out, char *buf, size_t size)
{
    static const char *const rules[2][2] = {
        {"dA += dY B^T; dB += A^T dY", "dA += dY B; dB += dY^T A"},      /* Y = A B, A B^T */
        {"dA += B dY^T; dB += A dY", "dA += B^T dY^T; dB += dY^T A^T"}}; /* A^T B, A^T B^T */
    const struct geom *g = out->aux;
    bool bc[2] = {false, false}; /* operand broadcast along a batch axis of size > 1 */
    for (int d = 0; d < g->brank; d++) {
        bc[0] |= g->sa[d] == 0 && g->bshape[d] > 1;
        bc[1] |= g->sb[d] == 0 && g->bshape[d] > 1;
    }
    snprintf(buf, size, "%s%s%s%s", rules[g->ta][g->tb], bc[0] || bc[1] ? " (" : "",
             bc[0] ? (bc[1] ? "dA and dB" : "dA") : (bc[1] ? "dB" : ""),
             bc[0] || bc[1] ? " summed over the batch axes its operand was broadcast along)" : "");
}

const struct tg_op_desc tg_op_desc_matmul = {
    .op = TG_OP_MATMUL,
    .name = "matmul",
    .arity = 2,
    .formula = "Y = op(A) op(B), batched over leading axes",
    .vjp = "d op(A) += dY op(B)^T; d op(B) += op(A)^T dY (summed over broadcast batch "
           "axes)",
    .shape = matmul_shape,
    .forward = matmul_fwd,
    .backward = matmul_bwd,
    .can_fold = matmul_can_fold,
    .params = matmul_params,
    .vjp_graph = matmul_vjp,
    .rule = matmul_rule,
    .operands = "A B -> Y"};

struct tg_tensor *tg_matmul_t(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b,
                              bool trans_a, bool trans_b)
{
    struct tg_tensor *in[2] = {a, b};
    /* the geometry, filled in by the shape rule; without a tape (an error that
     * tg__op_record reports) there is none */
    struct geom *g = T ? tg__tape_alloc(T, sizeof *g) : NULL;
    if (T && !g) return NULL;
    union tg_params p = {.i = {(trans_a ? FLAG_TA : 0) | (trans_b ? FLAG_TB : 0), 0}};
    return tg__op_record(T, &tg_op_desc_matmul, 2, in, &p, g);
}

struct tg_tensor *tg_matmul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b)
{
    return tg_matmul_t(T, a, b, false, false);
}
