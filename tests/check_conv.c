/*
 * tests/check_conv.c - conv2d and pooling beyond the table-wide checks: values
 * against a direct six-fold loop written here (independent of the im2col code),
 * with each fused activation,
 * repeated backward sweeps over one recording (conv2d reuses its im2col buffer
 * for the input gradient), no allocation in a repeated step, the BLAS and the
 * portable GEMM agreeing, max pooling's ties, the parameters a node reports,
 * the error messages, and the conv2d layer of nn.h.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *rand_leaf(struct tg_rng *r, enum tg_dtype dt, int rank,
                                   const int64_t *shape, bool grad)
{
    struct tg_tensor *t = tg_tensor_uniform(dt, rank, shape, r, -1, 1);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* y[n,o,i,j] by the definition, in f64 */
static double direct(const struct tg_tensor *x, const struct tg_tensor *W,
                     const struct tg_tensor *b, const struct tg_conv_params *p, int64_t n,
                     int64_t o, int64_t i, int64_t j)
{
    const int64_t *xs = tg_tensor_shape(x), *ws = tg_tensor_shape(W);
    int64_t Cg = ws[1], Og = ws[0] / p->groups, g = o / Og;
    double s = b ? tg_tensor_get(b, o) : 0;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t q = 0; q < ws[2]; q++)
            for (int64_t r = 0; r < ws[3]; r++) {
                int64_t h = i * p->stride[0] - p->padding[0] + q * p->dilation[0];
                int64_t w = j * p->stride[1] - p->padding[1] + r * p->dilation[1];
                if (h < 0 || h >= xs[2] || w < 0 || w >= xs[3]) continue;
                s += tg_tensor_get(W, ((o * Cg + c) * ws[2] + q) * ws[3] + r) *
                     tg_tensor_get(x, ((n * xs[1] + g * Cg + c) * xs[2] + h) * xs[3] + w);
            }
    return s;
}

static double act_of(double z, enum tg_act act)
{
    return act == TG_ACT_RELU      ? fmax(z, 0)
           : act == TG_ACT_TANH    ? tanh(z)
           : act == TG_ACT_SIGMOID ? 1 / (1 + exp(-z))
                                   : z;
}

START_TEST(test_conv2d_direct)
{
    struct tg_rng r;
    tg_rng_seed(&r, 11);
    for (int rep = 0; rep < 12; rep++) {
        struct tg_conv_params p = {{1 + rep % 3, 1 + rep % 2},
                                   {rep % 3, (rep / 2) % 3},
                                   {1 + (rep / 3) % 2, 1 + rep % 2},
                                   1 + rep % 3,
                                   (enum tg_act)(rep % 4)}; /* none, relu, tanh, sigmoid */
        int64_t G = p.groups, xs[4] = {2, 2 * G, 9 + rep % 4, 8}, ws[4] = {3 * G, 2, 3, 2};
        enum tg_dtype dt = rep % 2 ? TG_F32 : TG_F64;
        struct tg_tensor *x = rand_leaf(&r, dt, 4, xs, false), *W = rand_leaf(&r, dt, 4, ws, false);
        struct tg_tensor *b = rand_leaf(&r, dt, 1, (int64_t[]){3 * G}, false);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *y = tg_conv2d(T, x, W, b, &p);
        ck_assert_msg(y != NULL, "%s", tg_last_error());
        const int64_t *ys = tg_tensor_shape(y);
        ck_assert_int_eq(ys[2],
                         (xs[2] + 2 * p.padding[0] - p.dilation[0] * 2 - 1) / p.stride[0] + 1);
        int64_t k = 0;
        for (int64_t n = 0; n < ys[0]; n++)
            for (int64_t o = 0; o < ys[1]; o++)
                for (int64_t i = 0; i < ys[2]; i++)
                    for (int64_t j = 0; j < ys[3]; j++, k++)
                        ck_assert_double_eq_tol(tg_tensor_get(y, k),
                                                act_of(direct(x, W, b, &p, n, o, i, j), p.act),
                                                dt == TG_F64 ? 1e-12 : 1e-5);
        tg_tape_free(T);
        tg_tensor_free(x);
        tg_tensor_free(W);
        tg_tensor_free(b);
    }
}
END_TEST

/* Gradients of sum(conv2d(x, W, b) * R) after one sweep and after three. */
START_TEST(test_backward_repeated)
{
    struct tg_rng r;
    tg_rng_seed(&r, 5);
    struct tg_conv_params p = {{2, 1}, {1, 1}, {1, 2}, 1, TG_ACT_NONE};
    struct tg_tensor *x = rand_leaf(&r, TG_F64, 4, (int64_t[]){2, 3, 7, 6}, true);
    struct tg_tensor *W = rand_leaf(&r, TG_F64, 4, (int64_t[]){4, 3, 3, 2}, true);
    struct tg_tensor *b = rand_leaf(&r, TG_F64, 1, (int64_t[]){4}, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_conv2d(T, x, W, b, &p);
    struct tg_tensor *R = rand_leaf(&r, TG_F64, 4, tg_tensor_shape(y), false);
    struct tg_tensor *loss = tg_sum(T, tg_mul(T, y, R));
    ck_assert_int_eq(tg_backward(loss, NULL), TG_OK);
    struct tg_tensor *g1[3] = {tg_tensor_copy(x), tg_tensor_copy(W), tg_tensor_copy(b)};
    struct tg_tensor *leaves[3] = {x, W, b};
    for (int k = 0; k < 3; k++) {
        const double *g = tg_tensor_grad(leaves[k]);
        memcpy(tg_tensor_data(g1[k]), g, (size_t)tg_tensor_numel(leaves[k]) * sizeof *g);
    }
    ck_assert_int_eq(tg_backward(loss, NULL), TG_OK);
    ck_assert_int_eq(tg_backward(loss, NULL), TG_OK);
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; i < tg_tensor_numel(leaves[k]); i++)
            ck_assert_double_eq_tol(tg_tensor_grad_get(leaves[k], i), 3 * tg_tensor_get(g1[k], i),
                                    1e-12);
        tg_tensor_free(g1[k]);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tensor_free(R);
}
END_TEST

/* One CNN step (conv, relu, max pool, conv, avg pool, sum) recorded again and
 * again on one tape: after the first, no step allocates. */
START_TEST(test_steady_state_no_malloc)
{
    struct tg_rng r;
    tg_rng_seed(&r, 9);
    struct tg_tensor *x = rand_leaf(&r, TG_F32, 4, (int64_t[]){4, 1, 12, 12}, false);
    struct tg_tensor *W1 = rand_leaf(&r, TG_F32, 4, (int64_t[]){4, 1, 3, 3}, true);
    struct tg_tensor *W2 = rand_leaf(&r, TG_F32, 4, (int64_t[]){6, 4, 3, 3}, true);
    struct tg_conv_params p = {{1, 1}, {1, 1}, {1, 1}, 1, TG_ACT_NONE};
    struct tg_pool_params pool = {{2, 2}, {2, 2}, {0, 0}};
    struct tg_tape *T = tg_tape_new();
    size_t mallocs[4];
    for (int step = 0; step < 4; step++) {
        tg_tape_reset(T);
        struct tg_tensor *h = tg_max_pool2d(T, tg_relu(T, tg_conv2d(T, x, W1, NULL, &p)), &pool);
        struct tg_tensor *y = tg_avg_pool2d(T, tg_conv2d(T, h, W2, NULL, &p), &pool);
        ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
        struct tg_tape_stats st;
        tg_tape_stats(T, &st);
        mallocs[step] = st.n_mallocs;
    }
    ck_assert_uint_eq(mallocs[1], mallocs[3]);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W1);
    tg_tensor_free(W2);
}
END_TEST

/* The same convolution and gradients with the BLAS and with the portable GEMM. */
START_TEST(test_blas_and_portable_agree)
{
    if (tg_matmul_set_backend(TG_MATMUL_BLAS) != TG_OK) return; /* built without BLAS */
    struct tg_rng r;
    tg_rng_seed(&r, 3);
    struct tg_conv_params p = {{1, 2}, {2, 0}, {2, 1}, 2, TG_ACT_NONE};
    struct tg_tensor *x = rand_leaf(&r, TG_F32, 4, (int64_t[]){3, 4, 10, 9}, true);
    struct tg_tensor *W = rand_leaf(&r, TG_F32, 4, (int64_t[]){6, 2, 3, 3}, true);
    double *got[2][2];
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(tg_matmul_set_backend(k ? TG_MATMUL_PORTABLE : TG_MATMUL_BLAS), TG_OK);
        tg_tensor_zero_grad(x);
        tg_tensor_zero_grad(W);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *y = tg_conv2d(T, x, W, NULL, &p);
        ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, y)), NULL), TG_OK);
        for (int t = 0; t < 2; t++) {
            struct tg_tensor *l = t ? W : x;
            got[k][t] = malloc((size_t)tg_tensor_numel(l) * sizeof(double));
            for (int64_t i = 0; i < tg_tensor_numel(l); i++)
                got[k][t][i] = tg_tensor_grad_get(l, i);
        }
        tg_tape_free(T);
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
    for (int t = 0; t < 2; t++) {
        int64_t n = tg_tensor_numel(t ? W : x);
        for (int64_t i = 0; i < n; i++)
            ck_assert_double_eq_tol(got[0][t][i], got[1][t][i], 1e-3 * (1 + fabs(got[0][t][i])));
        free(got[0][t]);
        free(got[1][t]);
    }
    tg_tensor_free(x);
    tg_tensor_free(W);
}
END_TEST

/* A window of equal values sends its gradient to its first element only. */
START_TEST(test_max_pool_ties)
{
    struct tg_tensor *x = tg_tensor_full(TG_F64, 4, (int64_t[]){1, 1, 4, 4}, 2.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_pool_params p = {{2, 2}, {2, 2}, {0, 0}};
    struct tg_tensor *y = tg_max_pool2d(T, x, &p);
    ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
    for (int64_t i = 0; i < 16; i++) {
        bool first = (i / 4) % 2 == 0 && (i % 4) % 2 == 0;
        ck_assert_double_eq(tg_tensor_grad_get(x, i), first ? 1.0 : 0.0);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_params_and_messages)
{
    struct tg_tensor *x = tg_tensor_ones(TG_F32, 4, (int64_t[]){2, 4, 6, 6});
    struct tg_tensor *W = tg_tensor_ones(TG_F32, 4, (int64_t[]){6, 2, 3, 3});
    struct tg_tape *T = tg_tape_new();
    struct tg_conv_params p = {{2, 1}, {1, 0}, {1, 2}, 2, TG_ACT_NONE};
    double v[TG_MAX_OP_PARAMS];
    struct tg_tensor *y = tg_conv2d(T, x, W, NULL, &p);
    ck_assert_int_eq(tg_tensor_op_params(y, v, TG_MAX_OP_PARAMS), 8);
    double want[8] = {2, 1, 1, 0, 1, 2, 2, TG_ACT_NONE};
    for (int k = 0; k < 8; k++) ck_assert_double_eq(v[k], want[k]);
    p.groups = 1;
    ck_assert_ptr_null(tg_conv2d(T, x, W, NULL, &p));
    ck_assert_str_eq(tg_last_error(), "conv2d: x (2,4,6,6) and W (6,2,3,3) do not fit: W needs 2 "
                                      "input channels, x has 4");
    p.groups = 3;
    ck_assert_ptr_null(tg_conv2d(T, x, W, NULL, &p));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_str_eq(tg_last_error(), "conv2d: x (2,4,6,6) and W (6,2,3,3) have 4 and 6 channels: "
                                      "groups 3 must divide both");
    p = (struct tg_conv_params){{1, 1}, {0, 0}, {4, 1}, 2, TG_ACT_NONE};
    ck_assert_ptr_null(tg_conv2d(T, x, W, NULL, &p));
    ck_assert_str_eq(tg_last_error(),
                     "conv2d: x (2,4,6,6) and W (6,2,3,3) give no output: kernel (3,3) with "
                     "dilation (4,1) is larger than the input (6,6) padded by (0,0)");
    struct tg_pool_params pp = {{3, 3}, {2, 2}, {1, 1}};
    y = tg_max_pool2d(T, x, &pp);
    ck_assert_int_eq(tg_tensor_shape(y)[2], 3);
    ck_assert_int_eq(tg_tensor_op_params(y, v, TG_MAX_OP_PARAMS), 6);
    pp.padding[0] = 2;
    ck_assert_ptr_null(tg_avg_pool2d(T, x, &pp));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W);
}
END_TEST

START_TEST(test_nn_conv2d_layer)
{
    struct tg_rng r;
    tg_rng_seed(&r, 1);
    struct tg_params *ps = tg_params_new();
    struct tg_conv_params o = {{1, 1}, {1, 1}, {1, 1}, 2, TG_ACT_NONE};
    struct tg_nn_conv2d *l = tg_nn_conv2d_new(ps, "conv1", 4, 8, 3, 3, &o, true, TG_F32, &r);
    ck_assert_msg(l != NULL, "%s", tg_last_error());
    ck_assert_uint_eq(tg_params_count(ps), 2);
    ck_assert_str_eq(tg_params_name(ps, 0), "conv1.weight");
    ck_assert_str_eq(tg_params_name(ps, 1), "conv1.bias");
    struct tg_tensor *w = tg_nn_conv2d_weight(l);
    ck_assert_ptr_eq(w, tg_params_get(ps, "conv1.weight"));
    ck_assert_int_eq(tg_tensor_shape(w)[1], 2);
    /* U(-a, a) with a = 1/sqrt(fan_in), fan_in = 4/2 * 3 * 3: inside, and not all tiny */
    double a = 1 / sqrt(18.0), mx = 0;
    for (int64_t i = 0; i < tg_tensor_numel(w); i++) {
        ck_assert(fabs(tg_tensor_get(w, i)) <= a);
        mx = fmax(mx, fabs(tg_tensor_get(w, i)));
    }
    ck_assert(mx > 0.8 * a);
    struct tg_tensor *x = tg_tensor_ones(TG_F32, 4, (int64_t[]){1, 4, 5, 5});
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_nn_conv2d_forward(l, T, x);
    ck_assert_int_eq(tg_tensor_rank(y), 4);
    ck_assert_int_eq(tg_tensor_shape(y)[1], 8);
    ck_assert_int_eq(tg_tensor_shape(y)[2], 5);
    /* a taken name, bad groups, NULL layer */
    ck_assert_ptr_null(tg_nn_conv2d_new(ps, "conv1", 4, 8, 3, 3, NULL, false, TG_F32, &r));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_uint_eq(tg_params_count(ps), 2);
    o.groups = 3;
    ck_assert_ptr_null(tg_nn_conv2d_new(ps, "conv2", 4, 8, 3, 3, &o, false, TG_F32, &r));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_nn_conv2d_forward(NULL, T, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_nn_conv2d_free(l);
    tg_params_free(ps);
}
END_TEST

/* A batch large enough that forward and the input gradient run in chunks of
 * samples gives each sample what a batch of that sample alone gives. */
START_TEST(test_chunks_match_per_sample)
{
    struct tg_rng r;
    tg_rng_seed(&r, 21);
    struct tg_conv_params p = {{1, 1}, {1, 1}, {1, 1}, 1, TG_ACT_TANH};
    int64_t N = 5, xs[4] = {N, 4, 64, 64}, one[4] = {1, 4, 64, 64};
    struct tg_tensor *x = rand_leaf(&r, TG_F64, 4, xs, true);
    struct tg_tensor *W = rand_leaf(&r, TG_F64, 4, (int64_t[]){40, 4, 3, 3}, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_conv2d(T, x, W, NULL, &p);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, y)), NULL), TG_OK);
    struct tg_tensor *dW = tg_tensor_copy(W); /* the batch's dW, then W's gradient summed */
    for (int64_t i = 0; i < tg_tensor_numel(W); i++) tg_tensor_set(dW, i, tg_tensor_grad_get(W, i));
    tg_tensor_zero_grad(W);
    int64_t per_y = tg_tensor_numel(y) / N, per_x = tg_tensor_numel(x) / N;
    for (int64_t n = 0; n < N; n++) {
        struct tg_tensor *xn =
            tg_tensor_from(TG_F64, 4, one, (const double *)tg_tensor_data(x) + n * per_x);
        tg_tensor_set_requires_grad(xn, true);
        struct tg_tape *T1 = tg_tape_new();
        struct tg_tensor *yn = tg_conv2d(T1, xn, W, NULL, &p);
        ck_assert_int_eq(tg_backward(tg_sum(T1, tg_mul(T1, yn, yn)), NULL), TG_OK);
        for (int64_t i = 0; i < per_y; i += 7)
            ck_assert_double_eq_tol(tg_tensor_get(y, n * per_y + i), tg_tensor_get(yn, i), 1e-12);
        for (int64_t i = 0; i < per_x; i += 3)
            ck_assert_double_eq_tol(tg_tensor_grad_get(x, n * per_x + i), tg_tensor_grad_get(xn, i),
                                    1e-10);
        tg_tape_free(T1);
        tg_tensor_free(xn);
    }
    /* the sum over the samples of each one's dW */
    for (int64_t i = 0; i < tg_tensor_numel(W); i++)
        ck_assert_double_eq_tol(tg_tensor_get(dW, i), tg_tensor_grad_get(W, i),
                                1e-9 * (1 + fabs(tg_tensor_get(dW, i))));
    tg_tensor_free(dW);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conv2d_direct);
    tcase_add_test(tc, test_backward_repeated);
    tcase_add_test(tc, test_chunks_match_per_sample);
    tcase_add_test(tc, test_steady_state_no_malloc);
    tcase_add_test(tc, test_blas_and_portable_agree);
    tcase_add_test(tc, test_max_pool_ties);
    tcase_add_test(tc, test_params_and_messages);
    tcase_add_test(tc, test_nn_conv2d_layer);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
