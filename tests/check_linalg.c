/*
 * tests/check_linalg.c - matrix products and reductions along axes: values and
 * gradients derived by hand, the BLAS and portable kernels against each other
 * and against a naive triple loop, error messages, empty dimensions.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

/* A leaf of dtype dt from doubles, with requires-grad set. */
static struct tg_tensor *mk(enum tg_dtype dt, int rank, const int64_t *shape, const double *v)
{
    struct tg_tensor *t =
        v ? tg_tensor_from_f64(dt, rank, shape, v) : tg_tensor_zeros(dt, rank, shape);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static void expect_values(const struct tg_tensor *t, const double *want, int64_t n, double tol)
{
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(tg_tensor_get(t, i) - want[i]) <= tol, "element %lld: %.17g, want %.17g",
                      (long long)i, tg_tensor_get(t, i), want[i]);
}
static void expect_grad(const struct tg_tensor *t, const double *want, int64_t n, double tol)
{
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(tg_tensor_grad_get(t, i) - want[i]) <= tol,
                      "grad %lld: %.17g, want %.17g", (long long)i, tg_tensor_grad_get(t, i),
                      want[i]);
}

static bool have_blas(void)
{
    bool ok = tg_matmul_set_backend(TG_MATMUL_BLAS) == TG_OK;
    tg_matmul_set_backend(TG_MATMUL_AUTO);
    return ok;
}

/* The backends to try: the portable kernel, and BLAS when built with it. */
static int backends(enum tg_matmul_backend *out)
{
    int n = 0;
    out[n++] = TG_MATMUL_PORTABLE;
    if (have_blas()) out[n++] = TG_MATMUL_BLAS;
    return n;
}

/* ---- matmul: fixed values ---- */

/* [[1,2],[3,4]] [[5,6],[7,8]] = [[19,22],[43,50]]; with seed G = [[1,2],[3,4]]:
 * dA = G B^T = [[17,23],[39,53]], dB = A^T G = [[10,14],[14,20]]. */
START_TEST(test_matmul_2x2)
{
    enum tg_matmul_backend be[2];
    int nb = backends(be);
    for (int dt = 0; dt < 2; dt++)
        for (int k = 0; k < nb; k++) {
            ck_assert_int_eq(tg_matmul_set_backend(be[k]), TG_OK);
            int64_t s[2] = {2, 2};
            struct tg_tensor *a = mk(dt, 2, s, (double[]){1, 2, 3, 4});
            struct tg_tensor *b = mk(dt, 2, s, (double[]){5, 6, 7, 8});
            struct tg_tensor *g = tg_tensor_from_f64(dt, 2, s, (double[]){1, 2, 3, 4});
            struct tg_tape *T = tg_tape_new();
            struct tg_tensor *y = tg_matmul(T, a, b);
            expect_values(y, (double[]){19, 22, 43, 50}, 4, 0);
            ck_assert_int_eq(tg_backward(y, g), TG_OK);
            expect_grad(a, (double[]){17, 23, 39, 53}, 4, 0);
            expect_grad(b, (double[]){10, 14, 14, 20}, 4, 0);
            tg_tape_free(T);
            tg_tensor_free(a);
            tg_tensor_free(b);
            tg_tensor_free(g);
        }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}
END_TEST

/* A = [[1,2,3],[4,5,6]]: A [1,0,-1] = [-2,-2]; [1,1] A = [5,7,9];
 * [1,2,3].[4,5,6] = 32 (rank 0), d/du = v. */
START_TEST(test_matmul_vectors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *A = mk(TG_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    struct tg_tensor *v = mk(TG_F64, 1, (int64_t[]){3}, (double[]){1, 0, -1});
    struct tg_tensor *w = mk(TG_F64, 1, (int64_t[]){2}, (double[]){1, 1});
    struct tg_tensor *u = mk(TG_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    struct tg_tensor *z = mk(TG_F64, 1, (int64_t[]){3}, (double[]){4, 5, 6});
    struct tg_tensor *mv = tg_matmul(T, A, v), *vm = tg_matmul(T, w, A), *dot = tg_matmul(T, u, z);
    ck_assert_int_eq(tg_tensor_rank(mv), 1);
    expect_values(mv, (double[]){-2, -2}, 2, 0);
    ck_assert_int_eq(tg_tensor_rank(vm), 1);
    expect_values(vm, (double[]){5, 7, 9}, 3, 0);
    ck_assert_int_eq(tg_tensor_rank(dot), 0);
    ck_assert_double_eq(tg_tensor_item(dot), 32);
    ck_assert_int_eq(tg_backward(dot, NULL), TG_OK);
    expect_grad(u, (double[]){4, 5, 6}, 3, 0);
    expect_grad(z, (double[]){1, 2, 3}, 3, 0);
    /* d sum(A v) / dv = column sums of A, d/dA = outer(1, v) */
    ck_assert_int_eq(tg_backward(tg_sum(T, mv), NULL), TG_OK);
    expect_grad(v, (double[]){5, 7, 9}, 3, 0);
    expect_grad(A, (double[]){1, 0, -1, 1, 0, -1}, 6, 0);
    tg_tape_free(T);
    tg_tensor_free(A);
    tg_tensor_free(v);
    tg_tensor_free(w);
    tg_tensor_free(u);
    tg_tensor_free(z);
}
END_TEST

/* y = x W^T with x = [[1,2]], W = [[1,0],[0,1],[1,1]] (stored (out,in)):
 * y = [[1,2,3]]; with seed ones: dx = ones W = the column sums [[2,2]], dW = ones^T x =
 * rows [1,2]. */
START_TEST(test_matmul_transposed)
{
    enum tg_matmul_backend be[2];
    int nb = backends(be);
    for (int k = 0; k < nb; k++) {
        tg_matmul_set_backend(be[k]);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *x = mk(TG_F64, 2, (int64_t[]){1, 2}, (double[]){1, 2});
        struct tg_tensor *W = mk(TG_F64, 2, (int64_t[]){3, 2}, (double[]){1, 0, 0, 1, 1, 1});
        struct tg_tensor *y = tg_matmul_t(T, x, W, false, true);
        ck_assert_int_eq(tg_tensor_dim(y, 0), 1);
        ck_assert_int_eq(tg_tensor_dim(y, 1), 3);
        expect_values(y, (double[]){1, 2, 3}, 3, 0);
        ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
        expect_grad(x, (double[]){2, 2}, 2, 0);
        expect_grad(W, (double[]){1, 2, 1, 2, 1, 2}, 6, 0);
        /* both flags: W^T is (2,3), x^T is (2,1): 3 != 2 */
        ck_assert_ptr_null(tg_matmul_t(T, W, x, true, true));
        ck_assert_str_eq(tg_last_error(), "matmul: shapes (3,2)^T and (1,2)^T do not fit (3 != 2)");
        tg_tape_free(T);
        tg_tensor_free(x);
        tg_tensor_free(W);
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}
END_TEST

/* A (2,1,2,2) holds I and 2I, B (2,2) is shared by both batches: with seed ones,
 * dB = I^T ones + (2I)^T ones = 3 ones. A second backward adds again (6): the
 * gradient GEMMs accumulate (beta = 1) into what is there. */
START_TEST(test_matmul_batch_broadcast_accumulates)
{
    enum tg_matmul_backend be[2];
    int nb = backends(be);
    for (int k = 0; k < nb; k++) {
        tg_matmul_set_backend(be[k]);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *A =
            mk(TG_F64, 4, (int64_t[]){2, 1, 2, 2}, (double[]){1, 0, 0, 1, 2, 0, 0, 2});
        struct tg_tensor *B = mk(TG_F64, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
        struct tg_tensor *y = tg_matmul(T, A, B);
        ck_assert_int_eq(tg_tensor_rank(y), 4);
        expect_values(y, (double[]){1, 2, 3, 4, 2, 4, 6, 8}, 8, 0);
        struct tg_tensor *s = tg_sum(T, y);
        ck_assert_int_eq(tg_backward(s, NULL), TG_OK);
        expect_grad(B, (double[]){3, 3, 3, 3}, 4, 0);
        /* dA_b = ones B^T: rows [3, 7] */
        expect_grad(A, (double[]){3, 7, 3, 7, 3, 7, 3, 7}, 8, 0);
        ck_assert_int_eq(tg_backward(s, NULL), TG_OK);
        expect_grad(B, (double[]){6, 6, 6, 6}, 4, 0);
        tg_tape_free(T);
        tg_tensor_free(A);
        tg_tensor_free(B);
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}
END_TEST

/* ---- matmul: the kernels against each other and a naive loop ---- */

struct mm_case {
    int ra, rb;
    int64_t sa[4], sb[4];
    bool ta, tb;
};

/* The reference: a triple loop in long double over op(A)(m,k) op(B)(k,n) for one
 * batch-free product, used for every batch of a shape with equal batch dims or
 * none. Reads the stored layout directly. */
static void naive(const struct tg_tensor *a, const struct tg_tensor *b, bool ta, bool tb,
                  int64_t batch, int64_t m, int64_t k, int64_t n, double *out)
{
    for (int64_t q = 0; q < batch; q++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                long double s = 0;
                for (int64_t p = 0; p < k; p++) {
                    int64_t ia = q * m * k + (ta ? p * m + i : i * k + p);
                    int64_t ib = q * k * n + (tb ? j * k + p : p * n + j);
                    s += (long double)tg_tensor_get(a, ia) * tg_tensor_get(b, ib);
                }
                out[(q * m + i) * n + j] = (double)s;
            }
}

static double max_abs(const double *v, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* Runs y = op(a) op(b) and backward with a fixed seed; copies y, da, db out. */
static void run_mm(enum tg_matmul_backend be, struct tg_tensor *a, struct tg_tensor *b, bool ta,
                   bool tb, double *y, double *da, double *db)
{
    ck_assert_int_eq(tg_matmul_set_backend(be), TG_OK);
    tg_tensor_zero_grad(a);
    tg_tensor_zero_grad(b);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *out = tg_matmul_t(T, a, b, ta, tb);
    ck_assert_ptr_nonnull(out);
    struct tg_rng rng;
    tg_rng_seed(&rng, 99);
    struct tg_tensor *seed = tg_tensor_uniform(tg_tensor_dtype(out), tg_tensor_rank(out),
                                               tg_tensor_shape(out), &rng, -1, 1);
    ck_assert_int_eq(tg_backward(out, seed), TG_OK);
    for (int64_t i = 0; i < tg_tensor_numel(out); i++) y[i] = tg_tensor_get(out, i);
    for (int64_t i = 0; i < tg_tensor_numel(a); i++) da[i] = tg_tensor_grad_get(a, i);
    for (int64_t i = 0; i < tg_tensor_numel(b); i++) db[i] = tg_tensor_grad_get(b, i);
    tg_tensor_free(seed);
    tg_tape_free(T);
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}

static void expect_close(const char *what, const double *x, const double *ref, int64_t n,
                         double rel, int c)
{
    double scale = fmax(max_abs(ref, n), 1e-300), worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(x[i] - ref[i]));
    ck_assert_msg(worst <= rel * scale, "case %d %s: max error %g, scale %g, rel %g", c, what,
                  worst, scale, rel);
}

/* Shapes crossing the portable kernel's blocks (64 along k, 128 along n), odd
 * sizes, every transpose combination, batches and vectors. */
static const struct mm_case mm_cases[] = {
    {2, 2, {7, 129}, {129, 5}, false, false},     {2, 2, {129, 130}, {130, 257}, false, false},
    {2, 2, {130, 129}, {130, 257}, true, false},  {2, 2, {129, 130}, {257, 130}, false, true},
    {2, 2, {65, 1}, {7, 65}, true, true},         {3, 3, {3, 7, 129}, {3, 129, 5}, false, false},
    {3, 3, {2, 129, 7}, {2, 5, 129}, true, true}, {2, 1, {33, 129}, {129}, false, false},
    {1, 2, {129}, {129, 33}, false, false},       {1, 2, {129}, {33, 129}, false, true},
    {1, 1, {200}, {200}, false, false},           {2, 2, {1, 1}, {1, 1}, false, false},
};

START_TEST(test_backends_agree)
{
    const struct mm_case *mc = &mm_cases[_i];
    for (int dt = 0; dt < 2; dt++) {
        double rel = dt == TG_F64 ? 1e-12 : 1e-5;
        struct tg_rng rng;
        tg_rng_seed(&rng, 100 + (uint64_t)_i);
        struct tg_tensor *a = tg_tensor_uniform(dt, mc->ra, mc->sa, &rng, -1, 1);
        struct tg_tensor *b = tg_tensor_uniform(dt, mc->rb, mc->sb, &rng, -1, 1);
        tg_tensor_set_requires_grad(a, true);
        tg_tensor_set_requires_grad(b, true);
        int64_t na = tg_tensor_numel(a), nbn = tg_tensor_numel(b);
        /* the reference forward: batch-free view of the operands */
        int64_t batch = mc->ra == 3 ? mc->sa[0] : 1;
        int64_t m = mc->ra == 1 ? 1 : mc->sa[mc->ra - (mc->ta ? 1 : 2)];
        int64_t kk = mc->ra == 1 ? mc->sa[0] : mc->sa[mc->ra - (mc->ta ? 2 : 1)];
        int64_t n = mc->rb == 1 ? 1 : mc->sb[mc->rb - (mc->tb ? 2 : 1)];
        int64_t ny = batch * m * n;
        double *ref = malloc(sizeof(double) * (size_t)ny);
        double *y[2], *da[2], *db[2];
        naive(a, b, mc->ta && mc->ra > 1, mc->tb && mc->rb > 1, batch, m, kk, n, ref);
        enum tg_matmul_backend be[2];
        int nb = backends(be);
        for (int k = 0; k < nb; k++) {
            y[k] = malloc(sizeof(double) * (size_t)ny);
            da[k] = malloc(sizeof(double) * (size_t)na);
            db[k] = malloc(sizeof(double) * (size_t)nbn);
            run_mm(be[k], a, b, mc->ta, mc->tb, y[k], da[k], db[k]);
            expect_close("forward vs naive", y[k], ref, ny, rel, (int)_i);
        }
        if (nb == 2) {
            expect_close("forward blas vs portable", y[1], y[0], ny, rel, (int)_i);
            expect_close("dA blas vs portable", da[1], da[0], na, rel, (int)_i);
            expect_close("dB blas vs portable", db[1], db[0], nbn, rel, (int)_i);
        }
        for (int k = 0; k < nb; k++) {
            free(y[k]);
            free(da[k]);
            free(db[k]);
        }
        free(ref);
        tg_tensor_free(a);
        tg_tensor_free(b);
    }
}
END_TEST

START_TEST(test_backend_switch)
{
    ck_assert_int_eq(tg_matmul_set_backend(TG_MATMUL_PORTABLE), TG_OK);
    ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_PORTABLE);
    ck_assert_int_eq(tg_matmul_set_backend((enum tg_matmul_backend)7), TG_ERR_VALUE);
    ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_PORTABLE);
    enum tg_status st = tg_matmul_set_backend(TG_MATMUL_BLAS);
    if (st == TG_OK) {
        ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_BLAS);
        ck_assert_int_eq(tg_matmul_set_backend(TG_MATMUL_AUTO), TG_OK);
        ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_BLAS);
    } else {
        ck_assert_int_eq(st, TG_ERR_STATE);
        ck_assert_str_eq(tg_last_error(), "tg_matmul_set_backend: tapegrad was built without BLAS");
        ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_PORTABLE); /* unchanged */
        ck_assert_int_eq(tg_matmul_set_backend(TG_MATMUL_AUTO), TG_OK);
        ck_assert_int_eq(tg_matmul_get_backend(), TG_MATMUL_PORTABLE);
    }
}
END_TEST

START_TEST(test_matmul_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_zeros(TG_F64, 2, (int64_t[]){2, 3});
    struct tg_tensor *b = tg_tensor_zeros(TG_F64, 2, (int64_t[]){4, 5});
    struct tg_tensor *c = tg_tensor_zeros(TG_F64, 3, (int64_t[]){2, 3, 4});
    struct tg_tensor *d = tg_tensor_zeros(TG_F64, 3, (int64_t[]){5, 4, 6});
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 1),
                     *f = tg_tensor_zeros(TG_F32, 2, (int64_t[]){3, 4});
    ck_assert_ptr_null(tg_matmul(T, a, b));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "matmul: shapes (2,3) and (4,5) do not fit (3 != 4)");
    ck_assert_ptr_null(tg_matmul_t(T, a, b, true, false));
    ck_assert_str_eq(tg_last_error(), "matmul: shapes (2,3)^T and (4,5) do not fit (2 != 4)");
    ck_assert_ptr_null(tg_matmul(T, c, d));
    ck_assert_str_eq(tg_last_error(),
                     "matmul: shapes (2,3,4) and (5,4,6): batch dimensions cannot broadcast");
    ck_assert_ptr_null(tg_matmul(T, s, a));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(),
                     "matmul: shapes () and (2,3): an operand is a scalar (use mul)");
    ck_assert_ptr_null(tg_matmul(T, a, f));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    tg_clear_error();
    ck_assert_ptr_null(tg_matmul(T, NULL, a));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_matmul(NULL, a, f));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    /* a 1-D operand's flag is ignored: (3) x (2,3)^T = (2) */
    struct tg_tensor *v = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    struct tg_tensor *y = tg_matmul_t(T, v, a, true, true);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 0), 2);
    struct tg_tensor *all[] = {a, b, c, d, s, f, v};
    for (int i = 0; i < 7; i++) tg_tensor_free(all[i]);
    tg_tape_free(T);
}
END_TEST

/* Empty dimensions: (2,0)x(0,3) is a (2,3) of zeros; (0,3)x(3,2) is (0,2). */
START_TEST(test_matmul_zero_size)
{
    enum tg_matmul_backend be[2];
    int nb = backends(be);
    for (int k = 0; k < nb; k++) {
        tg_matmul_set_backend(be[k]);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *a = mk(TG_F64, 2, (int64_t[]){2, 0}, NULL);
        struct tg_tensor *b = mk(TG_F64, 2, (int64_t[]){0, 3}, NULL);
        struct tg_tensor *p = mk(TG_F64, 2, (int64_t[]){0, 3}, NULL);
        struct tg_tensor *q = mk(TG_F64, 2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6});
        /* fill the arena with garbage first: the zeros must be written, not found */
        struct tg_tensor *junk = tg_tensor_full(TG_F64, 1, (int64_t[]){64}, 7);
        tg_sum(T, tg_mul(T, junk, junk));
        tg_tape_reset(T);
        struct tg_tensor *y = tg_matmul(T, a, b);
        ck_assert_int_eq(tg_tensor_dim(y, 0), 2);
        ck_assert_int_eq(tg_tensor_dim(y, 1), 3);
        expect_values(y, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
        ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
        struct tg_tensor *z = tg_matmul(T, p, q);
        ck_assert_int_eq(tg_tensor_numel(z), 0);
        ck_assert_int_eq(tg_tensor_dim(z, 1), 2);
        ck_assert_int_eq(tg_backward(tg_sum(T, z), NULL), TG_OK);
        expect_grad(q, (double[]){0, 0, 0, 0, 0, 0}, 6, 0);
        struct tg_tensor *all[] = {a, b, p, q, junk};
        for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
        tg_tape_free(T);
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}
END_TEST

/* ---- reductions along axes ---- */

/* x (2,3,2) = 0..11, x[i][j][k] = 6i + 2j + k. Over axes {0,2}: 14 + 8j;
 * mean over axis 1: 6i + 2 + k. */
START_TEST(test_sum_mean_axes)
{
    struct tg_tape *T = tg_tape_new();
    double xv[12];
    for (int i = 0; i < 12; i++) xv[i] = i;
    struct tg_tensor *x = mk(TG_F64, 3, (int64_t[]){2, 3, 2}, xv);
    struct tg_tensor *s = tg_sum_axes(T, x, (int[]){0, 2}, 2, true);
    ck_assert_int_eq(tg_tensor_rank(s), 3);
    ck_assert_int_eq(tg_tensor_dim(s, 0), 1);
    ck_assert_int_eq(tg_tensor_dim(s, 1), 3);
    ck_assert_int_eq(tg_tensor_dim(s, 2), 1);
    expect_values(s, (double[]){14, 22, 30}, 3, 0);
    struct tg_tensor *s2 = tg_sum_axes(T, x, (int[]){-1, 0}, 2, false);
    ck_assert_int_eq(tg_tensor_rank(s2), 1);
    expect_values(s2, (double[]){14, 22, 30}, 3, 0);
    struct tg_tensor *seed = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    ck_assert_int_eq(tg_backward(s2, seed), TG_OK);
    for (int i = 0; i < 12; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 1 + (i / 2) % 3);
    tg_tensor_zero_grad(x);
    struct tg_tensor *m = tg_mean_axes(T, x, (int[]){1}, 1, false);
    expect_values(m, (double[]){2, 3, 8, 9}, 4, 1e-15);
    ck_assert_int_eq(tg_backward(tg_sum(T, m), NULL), TG_OK);
    for (int i = 0; i < 12; i++) ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), 1.0 / 3, 1e-16);
    /* every axis: NULL list; keepdim gives (1,1,1) */
    struct tg_tensor *all = tg_sum_axes(T, x, NULL, 0, false);
    ck_assert_int_eq(tg_tensor_rank(all), 0);
    ck_assert_double_eq(tg_tensor_item(all), 66);
    struct tg_tensor *allk = tg_mean_axes(T, x, NULL, 0, true);
    ck_assert_int_eq(tg_tensor_rank(allk), 3);
    ck_assert_double_eq(tg_tensor_item(allk), 5.5);
    tg_tensor_free(seed);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* x = [[3,1,3],[2,2,2]]: max along 1 = [3,2], the gradient to the first of the
 * ties ([0][0] and [1][0]); argmax [0,0]; min = [1,2] to [0][1] and [1][0]. */
START_TEST(test_max_min_ties)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mk(TG_F64, 2, (int64_t[]){2, 3}, (double[]){3, 1, 3, 2, 2, 2});
    struct tg_tensor *mx = tg_max_axes(T, x, (int[]){1}, 1, false);
    expect_values(mx, (double[]){3, 2}, 2, 0);
    ck_assert_int_eq(tg_backward(tg_sum(T, mx), NULL), TG_OK);
    expect_grad(x, (double[]){1, 0, 0, 1, 0, 0}, 6, 0);
    expect_values(tg_argmax_axes(T, x, (int[]){-1}, 1, false), (double[]){0, 0}, 2, 0);
    tg_tensor_zero_grad(x);
    struct tg_tensor *mn = tg_min_axes(T, x, (int[]){1}, 1, true);
    ck_assert_int_eq(tg_tensor_dim(mn, 1), 1);
    expect_values(mn, (double[]){1, 2}, 2, 0);
    ck_assert_int_eq(tg_backward(tg_sum(T, mn), NULL), TG_OK);
    expect_grad(x, (double[]){0, 1, 0, 1, 0, 0}, 6, 0);
    expect_values(tg_argmin_axes(T, x, (int[]){1}, 1, false), (double[]){1, 0}, 2, 0);
    /* along axis 0: columns (3,2) (1,2) (3,2) */
    expect_values(tg_argmax_axes(T, x, (int[]){0}, 1, false), (double[]){0, 1, 0}, 3, 0);
    struct tg_tensor *am = tg_argmax_axes(T, x, NULL, 0, false);
    ck_assert_int_eq(tg_tensor_dtype(am), TG_F64);
    ck_assert_double_eq(tg_tensor_item(am), 0);
    tg_tensor_free(x);
    /* several axes: the flat index within the reduced axes (0 and 2) of (2,2,3);
     * for j = 0 the max sits at i = 1, k = 2: 1*3 + 2 = 5; for j = 1 at i = 0, k = 1 */
    double v[12] = {0, 1, 2, /* i0 j0 */ 3, 9, 4, /* i0 j1 */ 5, 6, 8, /* i1 j0 */ 1, 1, 1};
    struct tg_tensor *y = tg_tensor_from_f64(TG_F32, 3, (int64_t[]){2, 2, 3}, v);
    struct tg_tensor *ai = tg_argmax_axes(T, y, (int[]){2, 0}, 2, false);
    ck_assert_int_eq(tg_tensor_dtype(ai), TG_F64);
    expect_values(ai, (double[]){5, 1}, 2, 0);
    expect_values(tg_max_axes(T, y, (int[]){0, 2}, 2, false), (double[]){8, 9}, 2, 0);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

/* logsumexp([1000,1000]) = 1000 + ln 2, gradient the softmax [1/2,1/2];
 * logsumexp([0, ln 3]) = ln 4, gradient [1/4, 3/4]; all -inf gives -inf. */
START_TEST(test_logsumexp)
{
    struct tg_tape *T = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        double tol = dt == TG_F64 ? 1e-12 : 1e-4;
        struct tg_tensor *x =
            mk(dt, 2, (int64_t[]){3, 2}, (double[]){1000, 1000, 0, log(3.0), -1000, -1000});
        struct tg_tensor *l = tg_logsumexp_axes(T, x, (int[]){1}, 1, false);
        expect_values(l, (double[]){1000 + log(2.0), log(4.0), -1000 + log(2.0)}, 3, tol * 1000);
        ck_assert_int_eq(tg_backward(tg_sum(T, l), NULL), TG_OK);
        expect_grad(x, (double[]){0.5, 0.5, 0.25, 0.75, 0.5, 0.5}, 6, tol);
        tg_tensor_free(x);
    }
    struct tg_tensor *ni = tg_tensor_full(TG_F64, 1, (int64_t[]){2}, -INFINITY);
    double r = tg_tensor_item(tg_logsumexp_axes(T, ni, NULL, 0, false));
    ck_assert(isinf(r) && r < 0);
    tg_tensor_free(ni);
    tg_tape_free(T);
}
END_TEST

/* [1,2,3,4]: mean 2.5, squared deviations sum to 5: var 5/4 (population) and
 * 5/3 (correction 1); d var / dx = 2 (x - 2.5) / 4. */
START_TEST(test_var)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mk(TG_F64, 1, (int64_t[]){4}, (double[]){1, 2, 3, 4});
    struct tg_tensor *v0 = tg_var_axes(T, x, (int[]){0}, 1, 0, false);
    ck_assert_double_eq_tol(tg_tensor_item(v0), 1.25, 1e-15);
    ck_assert_double_eq_tol(tg_tensor_item(tg_var_axes(T, x, NULL, 0, 1, false)), 5.0 / 3, 1e-15);
    ck_assert_int_eq(tg_backward(v0, NULL), TG_OK);
    expect_grad(x, (double[]){-0.75, -0.25, 0.25, 0.75}, 4, 1e-15);
    struct tg_tensor *one = mk(TG_F64, 2, (int64_t[]){3, 1}, (double[]){1, 2, 3});
    ck_assert_ptr_null(tg_var_axes(T, one, (int[]){1}, 1, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "var_axes: 1 element(s) per slice of shape (3,1), "
                                      "correction 1 leaves no degree of freedom");
    ck_assert_ptr_null(tg_var_axes(T, x, NULL, 0, -1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_var_axes(T, x, NULL, 0, NAN, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_tensor_free(x);
    tg_tensor_free(one);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_reduce_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_zeros(TG_F64, 2, (int64_t[]){3, 4});
    ck_assert_ptr_null(tg_sum_axes(T, x, (int[]){2}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(), "sum_axes: axis 2 is out of range for shape (3,4)");
    ck_assert_ptr_null(tg_mean_axes(T, x, (int[]){-3}, 1, false));
    ck_assert_str_eq(tg_last_error(), "mean_axes: axis -3 is out of range for shape (3,4)");
    ck_assert_ptr_null(tg_sum_axes(T, x, (int[]){1, -1}, 2, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(), "sum_axes: axis -1 repeats axis 1 for shape (3,4)");
    ck_assert_ptr_null(tg_max_axes(T, x, (int[]){0, 0}, 2, false));
    ck_assert_str_eq(tg_last_error(), "max_axes: axis 0 is listed twice for shape (3,4)");
    ck_assert_ptr_null(tg_min_axes(T, x, NULL, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_logsumexp_axes(T, x, (int[]){0}, -1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    tg_clear_error();
    ck_assert_ptr_null(tg_argmax_axes(T, NULL, (int[]){0}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "argmax_axes: input 1 is NULL");
    ck_assert_ptr_null(tg_sum_axes(NULL, x, (int[]){0}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* (0,3): sum over axis 0 is three zeros, logsumexp -inf, mean and max have no
 * value (error); over axis 1 every result is empty and fine. */
START_TEST(test_reduce_zero_size)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mk(TG_F64, 2, (int64_t[]){0, 3}, NULL);
    struct tg_tensor *s = tg_sum_axes(T, x, (int[]){0}, 1, false);
    expect_values(s, (double[]){0, 0, 0}, 3, 0);
    ck_assert_int_eq(tg_backward(tg_sum(T, s), NULL), TG_OK);
    struct tg_tensor *l = tg_logsumexp_axes(T, x, (int[]){0}, 1, true);
    ck_assert_int_eq(tg_tensor_dim(l, 0), 1);
    for (int i = 0; i < 3; i++) ck_assert(isinf(tg_tensor_get(l, i)) && tg_tensor_get(l, i) < 0);
    ck_assert_ptr_null(tg_mean_axes(T, x, (int[]){0}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "mean_axes: the reduced axes of shape (0,3) hold no element");
    ck_assert_ptr_null(tg_max_axes(T, x, (int[]){0}, 1, false));
    ck_assert_ptr_null(tg_argmin_axes(T, x, NULL, 0, false));
    const int one[1] = {1};
    ck_assert_int_eq(tg_tensor_numel(tg_max_axes(T, x, one, 1, false)), 0);
    ck_assert_int_eq(tg_tensor_numel(tg_var_axes(T, x, one, 1, 1, false)), 0);
    struct tg_tensor *m = tg_mean_axes(T, x, one, 1, true);
    ck_assert_int_eq(tg_tensor_dim(m, 0), 0);
    ck_assert_int_eq(tg_tensor_dim(m, 1), 1);
    ck_assert_int_eq(tg_backward(tg_sum(T, m), NULL), TG_OK);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* f32 input, double accumulation: 1e8 + 1 - 1e8 is 1 (in float it would be 0);
 * the last-axis fast path and the kept-last-axis path on the same data. */
START_TEST(test_reduce_f32_and_paths)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_from_f64(TG_F32, 1, (int64_t[]){3}, (double[]){1e8, 1, -1e8});
    ck_assert_double_eq(tg_tensor_item(tg_sum_axes(T, x, (int[]){0}, 1, false)), 1);
    tg_tensor_free(x);
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    struct tg_tensor *y = tg_tensor_uniform(TG_F64, 2, (int64_t[]){5, 129}, &rng, -1, 1);
    struct tg_tensor *rows = tg_sum_axes(T, y, (int[]){1}, 1, false);
    struct tg_tensor *cols = tg_max_axes(T, y, (int[]){0}, 1, false);
    for (int i = 0; i < 5; i++) {
        double s = 0;
        for (int j = 0; j < 129; j++) s += tg_tensor_get(y, i * 129 + j);
        ck_assert_double_eq_tol(tg_tensor_get(rows, i), s, 1e-12);
    }
    for (int j = 0; j < 129; j++) {
        double mx = -INFINITY;
        for (int i = 0; i < 5; i++) mx = fmax(mx, tg_tensor_get(y, i * 129 + j));
        ck_assert_double_eq(tg_tensor_get(cols, j), mx);
    }
    /* x - max(x, keepdim) broadcasts back against x */
    struct tg_tensor *c = tg_sub(T, y, tg_max_axes(T, y, (int[]){-1}, 1, true));
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tg_tensor_dim(c, 1), 129);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

/* The fused layer equals its unfused composition (matmul_t, add, activation),
 * values and all three gradients, in f32 and f64, on both GEMM backends. */
static struct tg_tensor *unfused(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                                 struct tg_tensor *b, enum tg_act act)
{
    struct tg_tensor *z = tg_add(T, tg_matmul_t(T, x, W, false, true), b);
    switch (act) {
    case TG_ACT_RELU:
        return tg_relu(T, z);
    case TG_ACT_TANH:
        return tg_tanh(T, z);
    case TG_ACT_SIGMOID:
        return tg_sigmoid(T, z);
    default:
        return z;
    }
}

START_TEST(test_linear_fused_matches)
{
    for (int dt = 0; dt < 2; dt++)
        for (int act = 0; act < 4; act++) {
            struct tg_rng rng;
            tg_rng_seed(&rng, 40 + act);
            enum tg_dtype d = dt ? TG_F64 : TG_F32;
            struct tg_tensor *p[3] = {tg_tensor_uniform(d, 2, (int64_t[]){9, 70}, &rng, -1, 1),
                                      tg_tensor_uniform(d, 2, (int64_t[]){33, 70}, &rng, -0.3, 0.3),
                                      tg_tensor_uniform(d, 1, (int64_t[]){33}, &rng, -0.5, 0.5)};
            static double got[4][33 * 70], want[4][33 * 70];
            for (int fused = 0; fused < 2; fused++) {
                for (int k = 0; k < 3; k++) {
                    tg_tensor_set_requires_grad(p[k], true);
                    tg_tensor_zero_grad(p[k]);
                }
                struct tg_tape *T = tg_tape_new();
                struct tg_tensor *y =
                    fused ? tg_linear(T, p[0], p[1], p[2], act) : unfused(T, p[0], p[1], p[2], act);
                ck_assert_ptr_nonnull(y);
                ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, y)), NULL), TG_OK);
                double(*dst)[33 * 70] = fused ? got : want;
                for (int64_t i = 0; i < tg_tensor_numel(y); i++) dst[0][i] = tg_tensor_get(y, i);
                for (int k = 0; k < 3; k++)
                    for (int64_t i = 0; i < tg_tensor_numel(p[k]); i++)
                        dst[k + 1][i] = tg_tensor_grad_get(p[k], i);
                tg_tape_free(T);
            }
            double tol = dt ? 1e-12 : 1e-4;
            int64_t n[4] = {9 * 33, 9 * 70, 33 * 70, 33};
            for (int k = 0; k < 4; k++)
                for (int64_t i = 0; i < n[k]; i++)
                    ck_assert_msg(fabs(got[k][i] - want[k][i]) <= tol * (1 + fabs(want[k][i])),
                                  "act %d dtype %d part %d [%lld]: %g vs %g", act, dt, k,
                                  (long long)i, got[k][i], want[k][i]);
            for (int k = 0; k < 3; k++) tg_tensor_free(p[k]);
        }
}
END_TEST

START_TEST(test_linear_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_zeros(TG_F32, 2, (int64_t[]){4, 3});
    struct tg_tensor *W = tg_tensor_zeros(TG_F32, 2, (int64_t[]){5, 2});
    struct tg_tensor *b = tg_tensor_zeros(TG_F32, 1, (int64_t[]){5});
    ck_assert_ptr_null(tg_linear(T, x, W, b, TG_ACT_RELU));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "linear: x (4,3), W (5,2) and b (5) do not fit (want x "
                                      "(B,in) or (in), W (out,in), b (out))");
    ck_assert_ptr_null(tg_linear(T, x, W, b, (enum tg_act)9));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_clear_error();
    ck_assert_ptr_null(tg_linear(T, NULL, W, b, TG_ACT_NONE));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tensor_free(x);
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* The f32 tanh and sigmoid are computed by vectorizable approximations
 * (ops/ops-impl.h): within 4e-7 relative of libm's double results on a dense grid,
 * saturating exactly, odd/symmetric, and the fused linear op uses the same ones. */
START_TEST(test_fast_f32_activations)
{
    enum { N = 480001 };
    float *v = malloc(sizeof *v * N);
    for (int i = 0; i < N; i++) v[i] = (float)(-24.0 + 1e-4 * i);
    struct tg_tensor *x = tg_tensor_from(TG_F32, 1, (int64_t[]){N}, v);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *th = tg_tanh(T, x), *sg = tg_sigmoid(T, x);
    double worst_t = 0, worst_s = 0;
    for (int i = 0; i < N; i++) {
        double xd = v[i], t = tanh(xd), s = 1 / (1 + exp(-xd));
        worst_t = fmax(worst_t, fabs(tg_tensor_get(th, i) - t) / fmax(fabs(t), 1e-30));
        worst_s = fmax(worst_s, fabs(tg_tensor_get(sg, i) - s) / s);
    }
    ck_assert_msg(worst_t < 4e-7, "tanh f32: rel err %g", worst_t);
    ck_assert_msg(worst_s < 4e-7, "sigmoid f32: rel err %g", worst_s);
    ck_assert_double_eq(tg_tensor_get(th, 0), -1);
    ck_assert_double_eq(tg_tensor_get(th, N - 1), 1);
    ck_assert_double_eq(tg_tensor_get(th, 240000), 0); /* x = 0 */
    for (int i = 1; i < 1000; i++)                     /* odd: tanh(-x) = -tanh(x) */
        ck_assert_double_eq(tg_tensor_get(th, 240000 - i), -tg_tensor_get(th, 240000 + i));
    ck_assert_double_eq(tg_tensor_get(sg, 240000), 0.5);
    float nan_in[1] = {NAN};
    struct tg_tensor *xn = tg_tensor_from(TG_F32, 1, (int64_t[]){1}, nan_in);
    ck_assert(isnan(tg_tensor_get(tg_tanh(T, xn), 0)) &&
              isnan(tg_tensor_get(tg_sigmoid(T, xn), 0)));
    tg_tensor_free(xn);
    float far[4] = {-100, -87.5f, 87.5f, 100};
    struct tg_tensor *xf = tg_tensor_from(TG_F32, 1, (int64_t[]){4}, far);
    struct tg_tensor *sf = tg_sigmoid(T, xf), *tf = tg_tanh(T, xf);
    ck_assert_double_eq(tg_tensor_get(sf, 0), 0);
    ck_assert_double_eq(tg_tensor_get(sf, 3), 1);
    ck_assert_double_eq(tg_tensor_get(tf, 0), -1);
    ck_assert_double_eq(tg_tensor_get(tf, 2), 1);
    tg_tensor_free(xf);
    tg_tensor_free(x);
    tg_tape_free(T);
    free(v);
}
END_TEST

/* A tensor with no element but kept axes whose sizes multiply past int64: the
 * result's size is checked (TG_ERR_RANGE, op named) before any buffer is sized
 * from it; a reduced product past int64 over an empty kept axis is no error. */
START_TEST(test_reduce_huge_empty)
{
    struct tg_tape *T = tg_tape_new();
    const int64_t big = 1000000000000; /* 1e12 */
    struct tg_tensor *x = tg_tensor_zeros(TG_F64, 3, (int64_t[]){0, big, big});
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_null(tg_sum_axes(T, x, (int[]){0}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(),
                     "sum_axes: shape (1000000000000,1000000000000) is too large (size overflows)");
    ck_assert_ptr_null(tg_logsumexp_axes(T, x, (int[]){0}, 1, true));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_ptr_null(tg_max_axes(T, x, (int[]){0}, 1, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_msg(strncmp(tg_last_error(), "max_axes: ", 10) == 0, "%s", tg_last_error());
    /* reducing the two huge axes leaves (0): an empty result, nothing to do */
    struct tg_tensor *m = tg_mean_axes(T, x, (int[]){1, 2}, 2, false);
    ck_assert_msg(m != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_numel(m), 0);
    ck_assert_ptr_nonnull(tg_var_axes(T, x, (int[]){1, 2}, 2, 1.0, true));
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* softmax along an empty axis, or along a full axis beside an empty one, of a
 * tensor whose other axis is huge returns at once (no walk over the other axis) */
START_TEST(test_softmax_huge_empty)
{
    struct tg_tape *T = tg_tape_new();
    const int64_t big = 1000000000000; /* 1e12 */
    struct tg_tensor *a = mk(TG_F64, 2, (int64_t[]){0, big}, NULL);
    struct tg_tensor *b = mk(TG_F64, 2, (int64_t[]){big, 0}, NULL);
    for (int axis = 0; axis < 2; axis++) {
        struct tg_tensor *ya = tg_softmax(T, a, axis), *yb = tg_log_softmax(T, b, axis);
        ck_assert_msg(ya && yb, "%s", tg_last_error());
        ck_assert_int_eq(tg_backward(tg_sum(T, tg_add(T, tg_sum(T, ya), tg_sum(T, yb))), NULL),
                         TG_OK);
    }
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* NaN in gives NaN out: in the line (softmax), slice (reductions), row or
 * column (matmul, on both backends, also where the NaN meets a 0) that holds it,
 * and nowhere else. argmax/argmin point at the NaN. */
START_TEST(test_nan_propagates)
{
    struct tg_tape *T = tg_tape_new();
    const double nan = NAN;
    /* (2,3): the NaN in row 0 */
    struct tg_tensor *x = mk(TG_F64, 2, (int64_t[]){2, 3}, (double[]){1, nan, 2, 3, 4, 5});
    struct tg_tensor *ys[] = {
        tg_softmax(T, x, 1),
        tg_log_softmax(T, x, 1),
        tg_sum_axes(T, x, (int[]){1}, 1, false),
        tg_mean_axes(T, x, (int[]){1}, 1, false),
        tg_max_axes(T, x, (int[]){1}, 1, false),
        tg_min_axes(T, x, (int[]){1}, 1, false),
        tg_logsumexp_axes(T, x, (int[]){1}, 1, false),
        tg_var_axes(T, x, (int[]){1}, 1, 1.0, false),
    };
    for (size_t k = 0; k < sizeof ys / sizeof ys[0]; k++) {
        ck_assert_msg(ys[k] != NULL, "%s", tg_last_error());
        int64_t per_row = tg_tensor_numel(ys[k]) / 2;
        for (int64_t i = 0; i < 2 * per_row; i++)
            ck_assert_msg(isnan(tg_tensor_get(ys[k], i)) == (i < per_row), "%s: element %lld is %g",
                          tg_op_name(tg_tensor_op(ys[k])), (long long)i, tg_tensor_get(ys[k], i));
    }
    ck_assert(isnan(tg_tensor_item(tg_sum(T, x))) && isnan(tg_tensor_item(tg_mean(T, x))));
    ck_assert_double_eq(tg_tensor_get(tg_argmax_axes(T, x, (int[]){1}, 1, false), 0), 1);
    ck_assert_double_eq(tg_tensor_get(tg_argmin_axes(T, x, (int[]){1}, 1, false), 0), 1);
    /* matmul: A (2,2) with a NaN at (0,0), B (2,2) = [[0, 1], [1, 1]]: the NaN
     * meets the 0 of B (NaN * 0 is NaN), row 0 of C is NaN, row 1 is not */
    struct tg_tensor *A = mk(TG_F64, 2, (int64_t[]){2, 2}, (double[]){nan, 1, 2, 3});
    struct tg_tensor *B = mk(TG_F64, 2, (int64_t[]){2, 2}, (double[]){0, 1, 1, 1});
    enum tg_matmul_backend be[2];
    int nb = backends(be);
    for (int k = 0; k < nb; k++) {
        ck_assert_int_eq(tg_matmul_set_backend(be[k]), TG_OK);
        struct tg_tensor *C = tg_matmul(T, A, B), *Ct = tg_matmul_t(T, B, A, true, true);
        for (int i = 0; i < 4; i++) {
            ck_assert_msg(isnan(tg_tensor_get(C, i)) == (i < 2), "backend %d: C[%d] = %g", k, i,
                          tg_tensor_get(C, i));
            /* (B^T A^T) = (A B)^T: column 0 is NaN */
            ck_assert_msg(isnan(tg_tensor_get(Ct, i)) == (i % 2 == 0), "backend %d: Ct[%d] = %g", k,
                          i, tg_tensor_get(Ct, i));
        }
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
    tg_tensor_free(x);
    tg_tensor_free(A);
    tg_tensor_free(B);
    tg_tape_free(T);
}
END_TEST

static Suite *linalg_suite(void)
{
    Suite *s = suite_create("linalg");
    TCase *tc = tcase_create("matmul");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_matmul_2x2);
    tcase_add_test(tc, test_matmul_vectors);
    tcase_add_test(tc, test_matmul_transposed);
    tcase_add_test(tc, test_matmul_batch_broadcast_accumulates);
    tcase_add_loop_test(tc, test_backends_agree, 0, sizeof mm_cases / sizeof mm_cases[0]);
    tcase_add_test(tc, test_backend_switch);
    tcase_add_test(tc, test_matmul_errors);
    tcase_add_test(tc, test_matmul_zero_size);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_linear_fused_matches);
    tcase_add_test(tc, test_linear_errors);
    tcase_add_test(tc, test_fast_f32_activations);
    tc = tcase_create("reduce");
    tcase_add_test(tc, test_sum_mean_axes);
    tcase_add_test(tc, test_max_min_ties);
    tcase_add_test(tc, test_logsumexp);
    tcase_add_test(tc, test_var);
    tcase_add_test(tc, test_reduce_errors);
    tcase_add_test(tc, test_reduce_zero_size);
    tcase_add_test(tc, test_reduce_f32_and_paths);
    tcase_add_test(tc, test_reduce_huge_empty);
    tcase_add_test(tc, test_nan_propagates);
    suite_add_tcase(s, tc);
    /* before its fix, softmax walked 1e12 empty lines: a short timeout */
    tc = tcase_create("softmax-empty");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_softmax_huge_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(linalg_suite());
}
