/*
 * ops/ops-impl.h - what every op file shares: the broadcast iterator, the
 * descriptor-defining helpers and the op table (never installed).
 */
#ifndef TG_OPS_IMPL_H
#define TG_OPS_IMPL_H

#include <math.h>
#include <string.h>
#include "../engine/engine-impl.h"

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

/* C = op(A) op(B) + beta C (row-major, leading dimensions lda/ldb/ldc) through
 * CBLAS or the portable kernel, as tg_matmul_set_backend chose (ops/matmul.c).
 * Sizes must fit in int. */
void tg__gemm(int dtype, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
              int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* Shape rule shared by elementwise unary ops: out has x's shape. */
enum tg_status tg__shape_same(struct tg_tensor *out);

#endif
