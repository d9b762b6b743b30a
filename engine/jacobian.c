/*
 * engine/jacobian.c - tg_jacobian, tg_vjp and the structure of a Jacobian.
 *
 * The function is recorded once on a private tape, on a copy of the input that
 * requires grad; tg_backward may sweep one recording many times (each sweep
 * recomputes the nodes' gradients and adds into the leaves'), so row k of J is
 * one sweep seeded with e_k after zeroing the copy's gradient. A function whose
 * output does not depend on the input (no gradient recorded) has J = 0; one that
 * returns its input unchanged has J = I.
 */
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/jacobian.h"

/* A recording of fn on a grad-requiring copy of the input. */
struct rec {
    struct tg_tape *T;
    struct tg_tensor *x; /* the copy (owned) */
    struct tg_tensor *y; /* fn's output (a node of T, or x, or another leaf) */
};

static void rec_free(struct rec *r)
{
    tg_tape_free(r->T);
    tg_tensor_free(r->x);
}

static enum tg_status rec_run(const char *api, tg_gradcheck_fn fn, void *ctx,
                              const struct tg_tensor *input, struct rec *r)
{
    memset(r, 0, sizeof *r);
    if (!fn) return tg__fail(TG_ERR_NULL, "%s: fn is NULL", api);
    if (!input) return tg__fail(TG_ERR_NULL, "%s: input is NULL", api);
    if (!(r->T = tg_tape_new())) return tg_last_status();
    if (!(r->x = tg_tensor_copy(input)) || tg_tensor_set_requires_grad(r->x, true)) {
        rec_free(r);
        return tg_last_status();
    }
    tg_clear_error(); /* so that a NULL from fn reports its own cause */
    r->y = fn(r->T, &r->x, 1, ctx);
    if (!r->y) {
        enum tg_status st = tg_last_status();
        rec_free(r);
        return st ? st : tg__fail(TG_ERR_NULL, "%s: fn returned NULL", api);
    }
    return TG_OK;
}

/* Whether a sweep from y can reach x (else J is 0, or I when y is x). */
static bool sweepable(const struct rec *r)
{
    return r->y->kind == TG_KIND_NODE && r->y->requires_grad;
}

/* Writes v^T J into row (cols doubles), with seed holding v (y's shape and dtype). */
static enum tg_status sweep(struct rec *r, const struct tg_tensor *seed, double *row)
{
    int64_t n = r->x->numel;
    if (!sweepable(r)) {
        for (int64_t j = 0; j < n; j++)
            row[j] = r->y == r->x ? tg__load(seed->data, seed->dtype, j) : 0.0;
        return TG_OK;
    }
    tg_tensor_zero_grad(r->x);
    enum tg_status st = tg_backward(r->y, seed);
    if (st) return st;
    for (int64_t j = 0; j < n; j++) row[j] = tg__load(r->x->grad, r->x->dtype, j);
    return TG_OK;
}

enum tg_status tg_jacobian(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                           struct tg_tensor **out_jacobian, struct tg_jacobian_info *info)
{
    if (!out_jacobian) return tg__fail(TG_ERR_NULL, "tg_jacobian: out_jacobian is NULL");
    *out_jacobian = NULL;
    struct rec r;
    enum tg_status st = rec_run("tg_jacobian", fn, ctx, input, &r);
    if (st) return st;
    const struct tg_tensor *y = r.y, *x = r.x;
    int rank = y->rank + x->rank;
    if (rank > TG_MAX_DIM) {
        int yr = y->rank, xr = x->rank;
        rec_free(&r);
        return tg__fail(TG_ERR_RANGE, "tg_jacobian: output rank %d + input rank %d exceeds %d", yr,
                        xr, TG_MAX_DIM);
    }
    int64_t shape[TG_MAX_DIM];
    memcpy(shape, y->shape, (size_t)y->rank * sizeof *shape);
    memcpy(shape + y->rank, x->shape, (size_t)x->rank * sizeof *shape);
    struct tg_tensor *J = tg_tensor_zeros(TG_F64, rank, shape); /* (m, n) row-major */
    struct tg_tensor *seed = tg_tensor_zeros((enum tg_dtype)y->dtype, y->rank, y->shape);
    st = J && seed ? TG_OK : tg_last_status();
    double *Jd = J ? J->data : NULL;
    for (int64_t k = 0; !st && k < y->numel; k++) {
        tg__store(seed->data, seed->dtype, k, 1.0);
        st = sweep(&r, seed, Jd + k * x->numel);
        tg__store(seed->data, seed->dtype, k, 0.0);
    }
    int64_t m = y->numel, n = x->numel, sweeps = sweepable(&r) ? m : 0;
    tg_tensor_free(seed);
    rec_free(&r);
    if (!st && info) {
        st = tg_jacobian_classify(Jd, m, n, info);
        info->n_sweeps = sweeps;
    }
    if (st) {
        tg_tensor_free(J);
        return st;
    }
    *out_jacobian = J;
    return TG_OK;
}

enum tg_status tg_vjp(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                      const struct tg_tensor *v, struct tg_tensor **out)
{
    if (!out) return tg__fail(TG_ERR_NULL, "tg_vjp: out is NULL");
    *out = NULL;
    if (!v) return tg__fail(TG_ERR_NULL, "tg_vjp: v is NULL");
    struct rec r;
    enum tg_status st = rec_run("tg_vjp", fn, ctx, input, &r);
    if (st) return st;
    bool same = v->rank == r.y->rank;
    for (int d = 0; same && d < v->rank; d++) same = v->shape[d] == r.y->shape[d];
    if (!same) {
        char a[160], b[160];
        tg_tensor_format_shape(a, sizeof a, v->rank, v->shape);
        tg_tensor_format_shape(b, sizeof b, r.y->rank, r.y->shape);
        rec_free(&r);
        return tg__fail(TG_ERR_SHAPE, "tg_vjp: v has shape %s but the output has shape %s", a, b);
    }
    struct tg_tensor *seed = tg_tensor_to(v, (enum tg_dtype)r.y->dtype);
    struct tg_tensor *g = tg_tensor_zeros(TG_F64, r.x->rank, r.x->shape);
    st = seed && g ? sweep(&r, seed, g->data) : tg_last_status();
    tg_tensor_free(seed);
    rec_free(&r);
    if (st) {
        tg_tensor_free(g);
        return st;
    }
    *out = g;
    return TG_OK;
}

/* ---- structure ---- */

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Whether every nonzero of J lies in one of B diagonal blocks of (rows/B, cols/B). */
static bool fits_blocks(const double *J, int64_t rows, int64_t cols, int64_t B)
{
    int64_t br = rows / B, bc = cols / B;
    for (int64_t i = 0; i < rows; i++) {
        int64_t lo = (i / br) * bc, hi = lo + bc; /* the columns of row i's block */
        for (int64_t j = 0; j < cols; j++)
            if ((j < lo || j >= hi) && J[i * cols + j] != 0) return false;
    }
    return true;
}

enum tg_status tg_jacobian_classify(const double *J, int64_t rows, int64_t cols,
                                    struct tg_jacobian_info *info)
{
    if (!info) return tg__fail(TG_ERR_NULL, "tg_jacobian_classify: info is NULL");
    if (rows < 0 || cols < 0)
        return tg__fail(TG_ERR_RANGE, "tg_jacobian_classify: negative size %lld x %lld",
                        (long long)rows, (long long)cols);
    if (cols && rows > INT64_MAX / cols) /* J cannot hold rows * cols numbers */
        return tg__fail(TG_ERR_RANGE, "tg_jacobian_classify: size %lld x %lld overflows",
                        (long long)rows, (long long)cols);
    if (!J && rows && cols) return tg__fail(TG_ERR_NULL, "tg_jacobian_classify: J is NULL");
    memset(info, 0, sizeof *info);
    info->rows = rows;
    info->cols = cols;
    for (int64_t i = 0; i < rows * cols; i++) info->nnz += J[i] != 0;
    if (info->nnz == 0) {
        info->structure = TG_JAC_ZERO;
        return TG_OK;
    }
    /* the most blocks first: B divides both sizes; B = 1 (one block) always fits */
    int64_t B = gcd64(rows, cols);
    for (; B > 1; B--)
        if (rows % B == 0 && cols % B == 0 && fits_blocks(J, rows, cols, B)) break;
    info->n_blocks = B;
    info->block_rows = rows / B;
    info->block_cols = cols / B;
    if (info->block_rows == 1 && info->block_cols == 1)
        info->structure = TG_JAC_DIAGONAL;
    else
        info->structure = B > 1 ? TG_JAC_BLOCK_DIAGONAL : TG_JAC_DENSE;
    return TG_OK;
}

const char *tg_jacobian_structure_name(enum tg_jacobian_structure s)
{
    switch (s) {
    case TG_JAC_ZERO:
        return "zero";
    case TG_JAC_DIAGONAL:
        return "diagonal";
    case TG_JAC_BLOCK_DIAGONAL:
        return "block-diagonal";
    case TG_JAC_DENSE:
        return "dense";
    }
    return "?";
}
