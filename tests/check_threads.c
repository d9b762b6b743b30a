/*
 * tests/check_threads.c - separate tapes on separate threads are independent.
 *
 * Two threads each train their own small model (their own leaves, their own tape)
 * at the same time; each must reach exactly the result it reaches alone. Run it
 * under ThreadSanitizer too (.ci/run does): it must report no race.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <pthread.h>
#include <tapegrad/tapegrad.h>

struct job {
    uint64_t seed;
    double final_loss;
    int status;
};

/* Fits y = sin(3x) on 64 points with a tanh of a polynomial,
 * pred = tanh(sum_k c_k x^k), by full-batch gradient descent from random c. */
static void *train(void *arg)
{
    struct job *j = arg;
    enum { N = 64, K = 6 };
    double xs[K][N], ys[N];
    for (int i = 0; i < N; i++) {
        double x = -1 + 2.0 * i / (N - 1);
        for (int k = 0; k < K; k++) xs[k][i] = pow(x, k);
        ys[i] = 0.9 * sin(3 * x);
    }
    struct tg_rng rng;
    tg_rng_seed(&rng, j->seed);
    struct tg_tensor *c[K];
    for (int k = 0; k < K; k++) {
        c[k] = tg_tensor_scalar(TG_F64, 0.5 * tg_rng_normal(&rng));
        tg_tensor_set_requires_grad(c[k], true);
    }
    struct tg_tape *T = tg_tape_new();
    j->status = T ? TG_OK : TG_ERR_NOMEM;
    for (int step = 0; step < 2000 && j->status == TG_OK; step++) {
        tg_tape_reset(T);
        struct tg_tensor *z = NULL;
        for (int k = 0; k < K; k++) {
            struct tg_tensor *xk = tg_tape_constant(T, TG_F64, 1, (int64_t[]){N}, xs[k]);
            struct tg_tensor *term = tg_mul(T, c[k], xk);
            z = z ? tg_add(T, z, term) : term;
        }
        struct tg_tensor *y = tg_tape_constant(T, TG_F64, 1, (int64_t[]){N}, ys);
        struct tg_tensor *loss = tg_mean(T, tg_pow_scalar(T, tg_sub(T, tg_tanh(T, z), y), 2));
        for (int k = 0; k < K; k++) tg_tensor_zero_grad(c[k]);
        j->status = loss ? tg_backward(loss, NULL) : tg_last_status();
        for (int k = 0; k < K && j->status == TG_OK; k++)
            tg_tensor_set(c[k], 0, tg_tensor_item(c[k]) - 0.5 * tg_tensor_grad_get(c[k], 0));
        if (loss) j->final_loss = tg_tensor_item(loss);
    }
    tg_tape_free(T);
    for (int k = 0; k < K; k++) tg_tensor_free(c[k]);
    return NULL;
}

START_TEST(test_two_threads)
{
    struct job alone[2] = {{1, 0, 0}, {2, 0, 0}}, both[2] = {{1, 0, 0}, {2, 0, 0}};
    train(&alone[0]);
    train(&alone[1]);
    pthread_t t[2];
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_create(&t[k], NULL, train, &both[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(both[k].status, TG_OK);
        ck_assert(isfinite(both[k].final_loss) && both[k].final_loss < 0.05);
        ck_assert_double_eq(both[k].final_loss, alone[k].final_loss);
    }
    ck_assert_double_ne(both[0].final_loss, both[1].final_loss);
}
END_TEST

/* Errors are per thread: a failure on one thread does not show on another. */
static void *fail_shape(void *arg)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_zeros(TG_F32, 1, (int64_t[]){2});
    struct tg_tensor *b = tg_tensor_zeros(TG_F32, 1, (int64_t[]){3});
    tg_clear_error();
    *(int *)arg = tg_add(T, a, b) == NULL && tg_last_status() == TG_ERR_SHAPE;
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
    return NULL;
}

START_TEST(test_errors_per_thread)
{
    tg_clear_error();
    int ok = 0;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_shape, &ok), 0);
    pthread_join(t, NULL);
    ck_assert(ok);
    ck_assert_int_eq(tg_last_status(), TG_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("tapes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_two_threads);
    tcase_add_test(tc, test_errors_per_thread);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
