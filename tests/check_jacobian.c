/*
 * tests/check_jacobian.c - tg_jacobian, tg_vjp and the structure report:
 * closed forms (diag(1 - tanh^2), diag(s) - s s^T, a broadcast product), the
 * structure of elementwise, softmax and per-row loss Jacobians, agreement with
 * central finite differences, and errors.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

/* J by central differences: (f(x + h e_j) - f(x - h e_j)) / 2h, (m, n) row-major. */
static double *fd_jacobian(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                           int64_t *m_out)
{
    const double h = 1e-6;
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_to(input, TG_F64);
    int64_t n = tg_tensor_numel(x), m = tg_tensor_numel(fn(T, &x, 1, ctx));
    double *J = calloc((size_t)(m * n + 1), sizeof *J);
    for (int64_t j = 0; j < n; j++) {
        double x0 = tg_tensor_get(x, j);
        tg_tensor_set(x, j, x0 + h);
        tg_tape_reset(T);
        struct tg_tensor *yp = fn(T, &x, 1, ctx);
        double *plus = calloc((size_t)m + 1, sizeof *plus);
        for (int64_t k = 0; k < m; k++) plus[k] = tg_tensor_get(yp, k);
        tg_tensor_set(x, j, x0 - h);
        tg_tape_reset(T);
        struct tg_tensor *ym = fn(T, &x, 1, ctx);
        for (int64_t k = 0; k < m; k++) J[k * n + j] = (plus[k] - tg_tensor_get(ym, k)) / (2 * h);
        tg_tensor_set(x, j, x0);
        free(plus);
    }
    tg_tensor_free(x);
    tg_tape_free(T);
    *m_out = m;
    return J;
}

/* J from tg_jacobian agrees with finite differences (and has m x n entries). */
static void expect_matches_fd(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *x,
                              const struct tg_tensor *J)
{
    int64_t m, n = tg_tensor_numel(x);
    double *F = fd_jacobian(fn, ctx, x, &m);
    ck_assert_int_eq(tg_tensor_numel(J), m * n);
    for (int64_t i = 0; i < m * n; i++)
        ck_assert_msg(fabs(tg_tensor_get(J, i) - F[i]) < 1e-8, "J[%lld] = %.12g, differences %.12g",
                      (long long)i, tg_tensor_get(J, i), F[i]);
    free(F);
}

static struct tg_tensor *randn(uint64_t seed, int rank, const int64_t *shape)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    return tg_tensor_uniform(TG_F64, rank, shape, &rng, -2, 2);
}

static struct tg_tensor *f_tanh(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_tanh(T, x[0]);
}
static struct tg_tensor *f_softmax(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_softmax(T, x[0], -1);
}
static struct tg_tensor *f_softmax0(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_softmax(T, x[0], 0);
}

START_TEST(test_elementwise_diagonal)
{
    struct tg_tensor *x = randn(1, 2, (int64_t[]){2, 3}), *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_tanh, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(tg_tensor_rank(J), 4); /* (2,3) + (2,3) */
    ck_assert_int_eq(tg_tensor_dim(J, 0), 2);
    ck_assert_int_eq(tg_tensor_dim(J, 3), 3);
    ck_assert_int_eq(tg_tensor_dtype(J), TG_F64);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    ck_assert_str_eq(tg_jacobian_structure_name(info.structure), "diagonal");
    ck_assert_int_eq(info.rows, 6);
    ck_assert_int_eq(info.n_blocks, 6);
    ck_assert_int_eq(info.nnz, 6);
    ck_assert_int_eq(info.n_sweeps, 6);
    for (int k = 0; k < 6; k++) {
        double t = tanh(tg_tensor_get(x, k));
        ck_assert_double_eq_tol(tg_tensor_get(J, k * 6 + k), 1 - t * t, 1e-15);
    }
    expect_matches_fd(f_tanh, NULL, x, J);
    ck_assert(!tg_tensor_requires_grad(x)); /* the caller's tensor is only read */
    tg_tensor_free(J);
    tg_tensor_free(x);
}
END_TEST

/* softmax of a vector: J = diag(s) - s s^T, every entry nonzero. */
START_TEST(test_softmax_vector_dense)
{
    struct tg_tensor *x = randn(2, 1, (int64_t[]){4}), *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_softmax, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE);
    ck_assert_int_eq(info.nnz, 16);
    ck_assert_int_eq(info.n_blocks, 1);
    double s[4], z = 0;
    for (int i = 0; i < 4; i++) z += exp(tg_tensor_get(x, i));
    for (int i = 0; i < 4; i++) s[i] = exp(tg_tensor_get(x, i)) / z;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_double_eq_tol(tg_tensor_get(J, i * 4 + j), (i == j) * s[i] - s[i] * s[j],
                                    1e-15);
    expect_matches_fd(f_softmax, NULL, x, J);
    tg_tensor_free(J);
    tg_tensor_free(x);
}
END_TEST

/* softmax along the last axis of (3,4): three 4x4 blocks; along axis 0 the lines
 * are strided, the blocks are not contiguous and the report says dense. */
START_TEST(test_softmax_rows_block_diagonal)
{
    struct tg_tensor *x = randn(3, 2, (int64_t[]){3, 4}), *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_softmax, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_BLOCK_DIAGONAL);
    ck_assert_int_eq(info.n_blocks, 3);
    ck_assert_int_eq(info.block_rows, 4);
    ck_assert_int_eq(info.block_cols, 4);
    ck_assert_int_eq(info.nnz, 48);
    expect_matches_fd(f_softmax, NULL, x, J);
    tg_tensor_free(J);
    ck_assert_int_eq(tg_jacobian(f_softmax0, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE);
    ck_assert_int_eq(info.nnz, 36); /* 4 columns, 3 x 3 entries each */
    expect_matches_fd(f_softmax0, NULL, x, J);
    tg_tensor_free(J);
    tg_tensor_free(x);
}
END_TEST

/* Per-sample cross-entropy (3 samples, 4 classes): 1 x 4 blocks, rectangular. */
static struct tg_tensor *f_ce_none(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_cross_entropy_idx(T, x[0], (const int64_t[]){1, 3, 0}, 3, TG_REDUCE_NONE);
}

START_TEST(test_loss_rows_block_diagonal)
{
    struct tg_tensor *x = randn(4, 2, (int64_t[]){3, 4}), *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_ce_none, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_BLOCK_DIAGONAL);
    ck_assert_int_eq(info.n_blocks, 3);
    ck_assert_int_eq(info.block_rows, 1);
    ck_assert_int_eq(info.block_cols, 4);
    ck_assert_int_eq(tg_tensor_rank(J), 3); /* (3) + (3,4) */
    expect_matches_fd(f_ce_none, NULL, x, J);
    tg_tensor_free(J);
    tg_tensor_free(x);
}
END_TEST

/* A linear map without matmul: y = A * x broadcast, A (2,3) fixed, x (3):
 * dy_ij / dx_k = A_ij [j = k]; and y = sum(A * x): dy / dx_k = sum_i A_ik. */
static const double A[6] = {1, -2, 3, 0.5, 4, -1};
static struct tg_tensor *f_bmul(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_mul(T, c, x[0]);
}
static struct tg_tensor *f_bmul_sum(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sum(T, tg_mul(T, c, x[0]));
}

START_TEST(test_linear_closed_form)
{
    struct tg_tensor *a = tg_tensor_from(TG_F64, 2, (int64_t[]){2, 3}, A);
    struct tg_tensor *x = randn(5, 1, (int64_t[]){3}), *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_bmul, a, x, &J, &info), TG_OK);
    ck_assert_int_eq(tg_tensor_rank(J), 3); /* (2,3) + (3) */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                ck_assert_double_eq(tg_tensor_get(J, (i * 3 + j) * 3 + k),
                                    j == k ? A[i * 3 + j] : 0);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE); /* stacked diagonals: no blocks */
    ck_assert_int_eq(info.nnz, 6);
    expect_matches_fd(f_bmul, a, x, J);
    tg_tensor_free(J);
    ck_assert_int_eq(tg_jacobian(f_bmul_sum, a, x, &J, &info), TG_OK);
    ck_assert_int_eq(tg_tensor_rank(J), 1); /* () + (3) */
    for (int k = 0; k < 3; k++) ck_assert_double_eq(tg_tensor_get(J, k), A[k] + A[3 + k]);
    ck_assert_int_eq(info.n_sweeps, 1);
    tg_tensor_free(J);
    tg_tensor_free(x);
    tg_tensor_free(a);
}
END_TEST

/* v^T J from one sweep equals the contraction of the full Jacobian with v. */
START_TEST(test_vjp)
{
    struct tg_tensor *x = randn(6, 2, (int64_t[]){3, 4}), *J = NULL, *g = NULL;
    struct tg_tensor *v = randn(7, 2, (int64_t[]){3, 4});
    ck_assert_int_eq(tg_jacobian(f_softmax, NULL, x, &J, NULL), TG_OK);
    ck_assert_int_eq(tg_vjp(f_softmax, NULL, x, v, &g), TG_OK);
    ck_assert_int_eq(tg_tensor_rank(g), 2);
    for (int j = 0; j < 12; j++) {
        double want = 0;
        for (int k = 0; k < 12; k++) want += tg_tensor_get(v, k) * tg_tensor_get(J, k * 12 + j);
        ck_assert_double_eq_tol(tg_tensor_get(g, j), want, 1e-15);
    }
    tg_tensor_free(g);
    struct tg_tensor *v32 = tg_tensor_to(v, TG_F32); /* v of another dtype is converted */
    ck_assert_int_eq(tg_vjp(f_tanh, NULL, x, v32, &g), TG_OK);
    for (int j = 0; j < 12; j++) {
        double t = tanh(tg_tensor_get(x, j));
        ck_assert_double_eq_tol(tg_tensor_get(g, j), tg_tensor_get(v32, j) * (1 - t * t), 1e-15);
    }
    tg_tensor_free(g);
    tg_tensor_free(v32);
    tg_tensor_free(J);
    tg_tensor_free(v);
    tg_tensor_free(x);
}
END_TEST

static struct tg_tensor *f_const(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_exp(T, c); /* does not depend on x */
}
static struct tg_tensor *f_identity(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return x[0];
}
static struct tg_tensor *f_fail(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_softmax(T, x[0], 5);
}

START_TEST(test_zero_identity_and_errors)
{
    struct tg_tensor *x = randn(8, 1, (int64_t[]){3}), *J = NULL, *g = NULL;
    struct tg_tensor *c = randn(9, 1, (int64_t[]){2});
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_const, c, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_ZERO);
    ck_assert_int_eq(info.nnz, 0);
    ck_assert_int_eq(info.n_sweeps, 0);
    ck_assert_int_eq(tg_tensor_numel(J), 6);
    tg_tensor_free(J);
    ck_assert_int_eq(tg_jacobian(f_identity, NULL, x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    for (int i = 0; i < 9; i++) ck_assert_double_eq(tg_tensor_get(J, i), i % 4 == 0);
    tg_tensor_free(J);
    ck_assert_int_eq(tg_jacobian(f_fail, NULL, x, &J, &info), TG_ERR_RANGE);
    ck_assert_ptr_null(J);
    ck_assert_int_eq(tg_jacobian(NULL, NULL, x, &J, &info), TG_ERR_NULL);
    ck_assert_int_eq(tg_jacobian(f_tanh, NULL, NULL, &J, &info), TG_ERR_NULL);
    ck_assert_int_eq(tg_jacobian(f_tanh, NULL, x, NULL, &info), TG_ERR_NULL);
    ck_assert_int_eq(tg_vjp(f_tanh, NULL, x, c, &g), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "tg_vjp: v has shape (2) but the output has shape (3)");
    ck_assert_ptr_null(g);
    struct tg_tensor *big = tg_tensor_zeros(TG_F64, 5, (int64_t[]){1, 1, 1, 1, 2});
    ck_assert_int_eq(tg_jacobian(f_tanh, NULL, big, &J, &info), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(), "tg_jacobian: output rank 5 + input rank 5 exceeds 8");
    tg_tensor_free(big);
    tg_tensor_free(c);
    tg_tensor_free(x);
}
END_TEST

/* The classifier on matrices written out by hand. */
START_TEST(test_classify)
{
    struct tg_jacobian_info info;
    const double eye[9] = {2, 0, 0, 0, 3, 0, 0, 0, 4};
    ck_assert_int_eq(tg_jacobian_classify(eye, 3, 3, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    const double blk[16] = {1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 5, 6, 0, 0, 7, 0};
    ck_assert_int_eq(tg_jacobian_classify(blk, 4, 4, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_BLOCK_DIAGONAL);
    ck_assert_int_eq(info.n_blocks, 2);
    ck_assert_int_eq(info.block_rows, 2);
    /* one entry outside the blocks makes it dense */
    const double off[16] = {1, 2, 0, 0, 3, 4, 0, 9, 0, 0, 5, 6, 0, 0, 7, 0};
    ck_assert_int_eq(tg_jacobian_classify(off, 4, 4, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE);
    /* a (2, 6) with 1 x 3 blocks; a 1 x 1 nonzero is diagonal; a (2, 3) with no
     * common block size is dense */
    const double rect[12] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1};
    ck_assert_int_eq(tg_jacobian_classify(rect, 2, 6, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_BLOCK_DIAGONAL);
    ck_assert_int_eq(info.block_cols, 3);
    ck_assert_int_eq(tg_jacobian_classify((const double[]){5}, 1, 1, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    ck_assert_int_eq(tg_jacobian_classify((const double[]){1, 0, 0, 0, 0, 1}, 2, 3, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE);
    ck_assert_int_eq(tg_jacobian_classify((const double[]){0, 0}, 1, 2, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_ZERO);
    ck_assert_int_eq(tg_jacobian_classify(NULL, 2, 2, &info), TG_ERR_NULL);
    ck_assert_int_eq(tg_jacobian_classify(eye, -1, 2, &info), TG_ERR_RANGE);
    ck_assert_str_eq(tg_jacobian_structure_name((enum tg_jacobian_structure)9), "?");
}
END_TEST

static Suite *jacobian_suite(void)
{
    Suite *s = suite_create("jacobian");
    TCase *tc = tcase_create("jacobian");
    tcase_add_test(tc, test_elementwise_diagonal);
    tcase_add_test(tc, test_softmax_vector_dense);
    tcase_add_test(tc, test_softmax_rows_block_diagonal);
    tcase_add_test(tc, test_loss_rows_block_diagonal);
    tcase_add_test(tc, test_linear_closed_form);
    tcase_add_test(tc, test_vjp);
    tcase_add_test(tc, test_zero_identity_and_errors);
    tcase_add_test(tc, test_classify);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(jacobian_suite());
}
