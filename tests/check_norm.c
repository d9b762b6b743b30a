/*
 * tests/check_norm.c - what the gradient checks of batch_norm, layer_norm,
 * embedding, where and clamp cannot see: batch_norm's running statistics (the
 * update rule, num_batches, evaluation with the statistics of its recording),
 * clamp's gradient at its bounds, repeated embedding rows, where's condition.
 * Expected values are computed here from the definitions (loops in double), not
 * taken from the ops; the PyTorch comparison is tests/check_reference_norm.c.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *vec(enum tg_dtype dt, int rank, const int64_t *shape, const double *v,
                             bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(dt, rank, shape, v);
    ck_assert_ptr_nonnull(t);
    if (grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

/* x (4, 2): channel statistics by hand, then the update with momentum 0.25. */
START_TEST(test_batch_norm_running_update)
{
    enum tg_dtype dt = _i ? TG_F64 : TG_F32;
    double xv[8] = {1, -2, 3, 0.5, -1, 4, 2, 1.5};
    struct tg_tensor *x = vec(dt, 2, (int64_t[]){4, 2}, xv, true);
    struct tg_tensor *rm = vec(dt, 1, (int64_t[]){2}, (double[]){0.5, -1}, false);
    struct tg_tensor *rv = vec(dt, 1, (int64_t[]){2}, (double[]){2, 3}, false);
    struct tg_tensor *nb = tg_tensor_scalar(TG_F64, 0);
    struct tg_batch_norm_stats st = {rm, rv, nb};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_batch_norm(T, x, NULL, NULL, &st, true, 0.25, 1e-5);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    double tol = dt == TG_F64 ? 1e-12 : 1e-5;
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0;
        for (int n = 0; n < 4; n++) m += xv[n * 2 + c] / 4;
        for (int n = 0; n < 4; n++) v += (xv[n * 2 + c] - m) * (xv[n * 2 + c] - m);
        double want_m = 0.75 * (c ? -1 : 0.5) + 0.25 * m;
        double want_v = 0.75 * (c ? 3 : 2) + 0.25 * v / 3; /* unbiased: / (M - 1) */
        ck_assert_double_eq_tol(tg_tensor_get(rm, c), want_m, tol);
        ck_assert_double_eq_tol(tg_tensor_get(rv, c), want_v, tol);
        for (int n = 0; n < 4; n++) /* normalized with the biased variance */
            ck_assert_double_eq_tol(tg_tensor_get(y, n * 2 + c),
                                    (xv[n * 2 + c] - m) / sqrt(v / 4 + 1e-5), 10 * tol);
    }
    ck_assert_double_eq(tg_tensor_get(nb, 0), 1);
    /* a second step moves them again and counts it */
    ck_assert_ptr_nonnull(tg_batch_norm(T, x, NULL, NULL, &st, true, 0.25, 1e-5));
    ck_assert_double_eq(tg_tensor_get(nb, 0), 2);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(rm);
    tg_tensor_free(rv);
    tg_tensor_free(nb);
}
END_TEST

/* Evaluation normalizes by the running statistics as recorded: a training step
 * after it changes the buffers, not the recorded node or its gradient. */
START_TEST(test_batch_norm_eval_uses_recorded_stats)
{
    struct tg_tensor *x =
        vec(TG_F64, 3, (int64_t[]){2, 2, 2}, (double[]){1, 2, 3, 4, 5, 6, 7, 8}, true);
    struct tg_tensor *w = vec(TG_F64, 1, (int64_t[]){2}, (double[]){2, -1}, true);
    struct tg_tensor *rm = vec(TG_F64, 1, (int64_t[]){2}, (double[]){1, 2}, false);
    struct tg_tensor *rv = vec(TG_F64, 1, (int64_t[]){2}, (double[]){4, 0.25}, false);
    struct tg_tensor *nb = tg_tensor_scalar(TG_F64, 3);
    struct tg_batch_norm_stats st = {rm, rv, nb};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_batch_norm(T, x, w, NULL, &st, false, 0.1, 0);
    ck_assert_ptr_null(y); /* eps = 0 is refused */
    y = tg_batch_norm(T, x, w, NULL, &st, false, 0.1, 1e-5);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_ptr_nonnull(tg_batch_norm(T, x, NULL, NULL, &st, true, 0.5, 1e-5));
    ck_assert_double_eq(tg_tensor_get(nb, 0), 4); /* the training step counted, eval did not */
    ck_assert_double_ne(tg_tensor_get(rm, 0), 1);
    ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
    for (int i = 0; i < 8; i++) {
        int c = (i / 2) % 2;
        double m = c ? 2 : 1, r = 1 / sqrt((c ? 0.25 : 4) + 1e-5), wc = c ? -1 : 2;
        ck_assert_double_eq_tol(tg_tensor_get(y, i), ((double)(i + 1) - m) * r * wc, 1e-12);
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), r * wc, 1e-12);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(rm);
    tg_tensor_free(rv);
    tg_tensor_free(nb);
}
END_TEST

/* Each row of layer_norm's output has mean 0 and variance var / (var + eps). */
START_TEST(test_layer_norm_rows)
{
    double xv[6] = {1, 2, 4, -3, 0, 9};
    struct tg_tensor *x = vec(TG_F64, 2, (int64_t[]){2, 3}, xv, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_layer_norm(T, x, 1, NULL, NULL, 1e-5);
    ck_assert_ptr_nonnull(y);
    for (int r = 0; r < 2; r++) {
        double m = 0, v = 0, ym = 0, yv = 0;
        for (int k = 0; k < 3; k++) m += xv[r * 3 + k] / 3;
        for (int k = 0; k < 3; k++) v += (xv[r * 3 + k] - m) * (xv[r * 3 + k] - m) / 3;
        for (int k = 0; k < 3; k++) ym += tg_tensor_get(y, r * 3 + k) / 3;
        for (int k = 0; k < 3; k++) yv += pow(tg_tensor_get(y, r * 3 + k) - ym, 2) / 3;
        ck_assert_double_eq_tol(ym, 0, 1e-14);
        ck_assert_double_eq_tol(yv, v / (v + 1e-5), 1e-12);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static struct tg_tensor *clamp_fn(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    return tg_clamp(T, in[0], -0.5, 0.7);
}

/* At x == lo and x == hi the gradient is 1 (PyTorch's), and gradcheck counts
 * those elements as kinks, not failures. */
START_TEST(test_clamp_boundary_is_a_kink)
{
    struct tg_tensor *x = vec(TG_F64, 1, (int64_t[]){5}, (double[]){-0.5, 0.2, 0.7, 1.5, -2}, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_clamp(T, x, -0.5, 0.7);
    ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
    const double want_y[5] = {-0.5, 0.2, 0.7, 0.7, -0.5}, want_g[5] = {1, 1, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(tg_tensor_get(y, i), want_y[i]);
        ck_assert_double_eq(tg_tensor_grad_get(x, i), want_g[i]);
    }
    struct tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(clamp_fn, &x, 1, NULL, NULL, &rep), TG_OK);
    ck_assert_int_eq(rep.n_kinks, 2);
    ck_assert_int_eq(rep.n_failed, 0);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Rows looked up several times get the sum of their copies' gradients. */
START_TEST(test_embedding_repeated_rows)
{
    struct tg_tensor *w = vec(TG_F32, 2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6}, true);
    struct tg_tensor *idx = vec(TG_F64, 2, (int64_t[]){2, 2}, (double[]){2, 0, 2, 2}, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_embedding(T, w, idx);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_rank(y), 3);
    ck_assert_int_eq(tg_tensor_shape(y)[2], 2);
    ck_assert_double_eq(tg_tensor_get(y, 0), 5);
    ck_assert_double_eq(tg_tensor_get(y, 3), 2);
    struct tg_tensor *dy =
        vec(TG_F32, 3, (int64_t[]){2, 2, 2}, (double[]){1, 10, 100, 1000, 2, 20, 3, 30}, false);
    ck_assert_int_eq(tg_backward(y, dy), TG_OK);
    const double want[6] = {100, 1000, 0, 0, 6, 60};
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_grad_get(w, i), want[i]);
    tg_tape_free(T);
    tg_tensor_free(w);
    tg_tensor_free(idx);
    tg_tensor_free(dy);
}
END_TEST

/* where picks by cond (broadcast), its gradient splits by cond, cond gets none. */
START_TEST(test_where_splits_gradient)
{
    struct tg_tensor *c = vec(TG_F64, 1, (int64_t[]){3}, (double[]){1, 0, 1}, true);
    struct tg_tensor *a = vec(TG_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, true);
    struct tg_tensor *b = vec(TG_F32, 0, NULL, (double[]){-1}, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_where(T, c, a, b);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_dtype(y), TG_F32);
    const double want[6] = {1, -1, 3, 4, -1, 6};
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_get(y, i), want[i]);
    ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_grad_get(a, i), i % 3 != 1);
    ck_assert_double_eq(tg_tensor_grad_get(b, 0), 2);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_grad_get(c, i), 0);
    tg_tape_free(T);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
}
END_TEST

/* The parameters each node reports (docs/ops.md, "Parameters reported"). */
START_TEST(test_op_params)
{
    struct tg_tensor *x = tg_tensor_ones(TG_F32, 2, (int64_t[]){4, 3});
    struct tg_tensor *i = tg_tensor_zeros(TG_F32, 1, (int64_t[]){3});
    struct tg_tape *T = tg_tape_new();
    double v[TG_MAX_OP_PARAMS];
    struct tg_tensor *bn = tg_batch_norm(T, x, NULL, NULL, NULL, true, 0.25, 1e-3);
    ck_assert_int_eq(tg_tensor_op_params(bn, v, TG_MAX_OP_PARAMS), 3);
    ck_assert(v[0] == 1 && v[1] == 0.25 && v[2] == 1e-3);
    ck_assert_int_eq(tg_tensor_op_params(tg_layer_norm(T, x, 2, NULL, NULL, 1e-4), v, 8), 2);
    ck_assert(v[0] == 2 && v[1] == 1e-4);
    ck_assert_int_eq(tg_tensor_op_params(tg_clamp(T, x, -1, INFINITY), v, 8), 2);
    ck_assert(v[0] == -1 && v[1] == INFINITY);
    struct tg_tensor *e = tg_embedding(T, x, i), *w = tg_where(T, i, x, x);
    ck_assert(e && w);
    ck_assert_int_eq(tg_tensor_op_params(e, v, 8), 0);
    ck_assert_int_eq(tg_tensor_op_params(w, v, 8), 0);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("norm");
    TCase *tc = tcase_create("ops");
    tcase_add_loop_test(tc, test_batch_norm_running_update, 0, 2);
    tcase_add_test(tc, test_batch_norm_eval_uses_recorded_stats);
    tcase_add_test(tc, test_layer_norm_rows);
    tcase_add_test(tc, test_clamp_boundary_is_a_kink);
    tcase_add_test(tc, test_embedding_repeated_rows);
    tcase_add_test(tc, test_where_splits_gradient);
    tcase_add_test(tc, test_op_params);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
