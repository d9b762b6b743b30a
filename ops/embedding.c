/*
 * ops/embedding.c - embedding: rows of a (V, D) table picked by an index tensor.
 *
 * The indices (whole numbers in an f32/f64 tensor of any shape S) are copied
 * into the tape's arena as int64 when the op is recorded, with S, so that the
 * node does not depend on the index tensor afterwards (which gets no gradient:
 * the lookup is piecewise constant in it). Forward copies whole rows; backward
 * adds each row of dy into the row of the table it came from, so a row looked
 * up several times receives the sum of its copies' gradients. The
 * differentiable VJP is the same scatter recorded as tg_index_add.
 */
#include <stdio.h>
#include "ops-impl.h"

struct emb_aux {
    int rank; /* of S */
    int64_t shape[TG_MAX_DIM];
    int64_t n;    /* numel(S) */
    int64_t *idx; /* (n), row-major over S */
};

/* weight (V, D), every index in 0..V-1; y is S + (D). */
static enum tg_status embedding_shape(struct tg_tensor *out)
{
    const struct tg_tensor *w = out->in[0];
    const struct emb_aux *a = out->aux;
    char s[160];
    tg_tensor_format_shape(s, sizeof s, w->rank, w->shape);
    if (w->rank != 2)
        return tg__fail(TG_ERR_SHAPE, "embedding: weight %s must have rank 2 (V, D)", s);
    if (a->rank + 1 > TG_MAX_DIM)
        return tg__fail(TG_ERR_SHAPE, "embedding: indices of rank %d give more than %d axes",
                        a->rank, TG_MAX_DIM);
    for (int64_t k = 0; k < a->n; k++)
        if (a->idx[k] < 0 || a->idx[k] >= w->shape[0])
            return tg__fail(TG_ERR_RANGE,
                            "embedding: index %lld at position %lld is out of range for weight %s",
                            (long long)a->idx[k], (long long)k, s);
    out->rank = (uint8_t)(a->rank + 1);
    for (int d = 0; d < a->rank; d++) out->shape[d] = a->shape[d];
    out->shape[a->rank] = w->shape[1];
    return TG_OK;
}

/* y[s, :] = weight[idx[s], :] */
static void embedding_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *w = out->in[0];
    const struct emb_aux *a = out->aux;
    size_t row = (size_t)w->shape[1] * tg__esize(w->dtype);
    for (int64_t k = 0; k < a->n; k++)
        memcpy((char *)out->data + (size_t)k * row, (const char *)w->data + (size_t)a->idx[k] * row,
               row);
}

#define EMBEDDING_BWD(T)                                                                           \
    /* dweight[idx[s], :] += dy[s, :] */                                                           \
    static void embedding_bwd_##T(struct tg_tensor *out)                                           \
    {                                                                                              \
        struct tg_tensor *w = out->in[0];                                                          \
        const struct emb_aux *a = out->aux;                                                        \
        int64_t D = w->shape[1];                                                                   \
        const T *dy = out->grad; /* (n, D) */                                                      \
        T *dw = w->grad;         /* (V, D) */                                                      \
        for (int64_t k = 0; k < a->n; k++)                                                         \
            for (int64_t j = 0; j < D; j++) dw[a->idx[k] * D + j] += dy[k * D + j];                \
    }
EMBEDDING_BWD(float)
EMBEDDING_BWD(double)

static void embedding_bwd(struct tg_tensor *out)
{
    if (!out->in[0]->requires_grad) return;
    if (out->dtype == TG_F64)
        embedding_bwd_double(out);
    else
        embedding_bwd_float(out);
}

/* dweight = index_add(dy as (n, D), axis 0, V, idx) */
static enum tg_status embedding_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                    const bool *need, struct tg_tensor **dx)
{
    if (!need[0]) return TG_OK;
    const struct tg_tensor *w = out->in[0];
    const struct emb_aux *a = out->aux;
    int64_t rows[2] = {a->n, w->shape[1]};
    dx[0] = tg_index_add(T, tg_reshape(T, dy, 2, rows), 0, w->shape[0], a->idx, a->n);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_embedding = {.op = TG_OP_EMBEDDING,
                                                .name = "embedding",
                                                .arity = 1,
                                                .formula = "y[s, :] = weight[idx[s], :]",
                                                .vjp =
                                                    "dweight[idx[s], :] += dy[s, :] (scatter-add)",
                                                .operands = "weight -> y",
                                                .shape = embedding_shape,
                                                .forward = embedding_fwd,
                                                .backward = embedding_bwd,
                                                .vjp_graph = embedding_vjp};

struct tg_tensor *tg_embedding(struct tg_tape *T, struct tg_tensor *weight,
                               const struct tg_tensor *indices)
{
    if (!T || !weight) return tg__op_record(T, &tg_op_desc_embedding, 1, &weight, NULL, NULL);
    if (!indices) {
        tg__null_input("embedding", "indices");
        return NULL;
    }
    if (tg__check_input(T, "embedding", indices)) return NULL;
    struct emb_aux *a = tg__tape_alloc(T, sizeof *a);
    int64_t n = indices->numel;
    int64_t *idx = tg__tape_alloc(T, (size_t)(n ? n : 1) * sizeof *idx);
    if (!a || !idx) return NULL;
    for (int64_t k = 0; k < n; k++) {
        double f = tg__load(indices->data, indices->dtype, k);
        if (!(f == floor(f) && fabs(f) < 9.2e18)) {
            tg__fail(TG_ERR_RANGE, "embedding: index %.17g at position %lld is not a whole number",
                     f, (long long)k);
            return NULL;
        }
        idx[k] = (int64_t)f;
    }
    a->rank = indices->rank;
    memcpy(a->shape, indices->shape, sizeof a->shape);
    a->n = n;
    a->idx = idx;
    return tg__op_record(T, &tg_op_desc_embedding, 1, &weight, NULL, a);
}
