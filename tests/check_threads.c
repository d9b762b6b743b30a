/*
 * tests/check_threads.c - separate tapes on separate threads are independent.
 *
 * Two threads each train their own small model (their own leaves, their own tape)
 * at the same time; each must reach exactly the result it reaches alone. Run it
 * under ThreadSanitizer too (.ci/run does): it must report no race.
 *
 * The worker threads of tapegrad/threads.h: a small CNN's gradients (two
 * convolutions over 130 samples, in up to 3 parts; max and average pooling; a
 * product large enough to be split) with 1, 2 and 3 threads agree to 1e-12,
 * and with the same number of threads they are the same bits run after run,
 * also when two tapes on two threads reach the split ops at once (one of them
 * then runs its parts itself).
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* ---- the worker threads of tapegrad/threads.h ---- */

enum { CNN_N = 130, N_GRADS = 5 };

struct cnn_run {
    double *grads[N_GRADS]; /* the leaves' gradients after one backward sweep */
    int64_t n[N_GRADS];
    int status;
};

/* conv 3->4 3x3 pad 1 + relu, max-pool 2, conv 4->6 3x3 pad 1 (bias), avg-pool 2,
 * sum of squares; plus the sum of squares of a (64,256)(256,128) product. f64. */
static void *cnn_grads(void *arg)
{
    struct cnn_run *r = arg;
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    struct tg_tensor *leaf[N_GRADS] = {
        tg_tensor_uniform(TG_F64, 4, (int64_t[]){4, 3, 3, 3}, &rng, -0.5, 0.5),
        tg_tensor_uniform(TG_F64, 4, (int64_t[]){6, 4, 3, 3}, &rng, -0.5, 0.5),
        tg_tensor_uniform(TG_F64, 1, (int64_t[]){6}, &rng, -0.5, 0.5),
        tg_tensor_uniform(TG_F64, 2, (int64_t[]){64, 256}, &rng, -1, 1),
        tg_tensor_uniform(TG_F64, 2, (int64_t[]){256, 128}, &rng, -1, 1)};
    struct tg_tensor *x = tg_tensor_uniform(TG_F64, 4, (int64_t[]){CNN_N, 3, 10, 10}, &rng, -1, 1);
    for (int k = 0; k < N_GRADS; k++) tg_tensor_set_requires_grad(leaf[k], true);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_conv_params c1 = tg_conv_params_default(), c2 = tg_conv_params_default();
    c1.padding[0] = c1.padding[1] = c2.padding[0] = c2.padding[1] = 1;
    c1.act = TG_ACT_RELU;
    struct tg_pool_params p = {{2, 2}, {2, 2}, {0, 0}};
    struct tg_tensor *h = tg_conv2d(T, x, leaf[0], NULL, &c1);
    h = tg_avg_pool2d(T, tg_conv2d(T, tg_max_pool2d(T, h, &p), leaf[1], leaf[2], &c2), &p);
    struct tg_tensor *m = tg_matmul(T, leaf[3], leaf[4]);
    struct tg_tensor *loss = tg_add(T, tg_sum(T, tg_mul(T, h, h)), tg_sum(T, tg_mul(T, m, m)));
    r->status = loss ? tg_backward(loss, NULL) : tg_last_status();
    for (int k = 0; k < N_GRADS; k++) {
        r->n[k] = tg_tensor_numel(leaf[k]);
        r->grads[k] = malloc(sizeof(double) * (size_t)r->n[k]);
        for (int64_t i = 0; i < r->n[k]; i++)
            r->grads[k][i] = r->status ? NAN : tg_tensor_grad_get(leaf[k], i);
        tg_tensor_free(leaf[k]);
    }
    tg_tensor_free(x);
    tg_tape_free(T);
    return NULL;
}

static void cnn_free(struct cnn_run *r)
{
    for (int k = 0; k < N_GRADS; k++) free(r->grads[k]);
}

/* The largest |a - b| / max(1, |b|) over every gradient. */
static double cnn_diff(const struct cnn_run *a, const struct cnn_run *b)
{
    double d = 0;
    for (int k = 0; k < N_GRADS; k++)
        for (int64_t i = 0; i < a->n[k]; i++) {
            double e = fabs(a->grads[k][i] - b->grads[k][i]) / fmax(1.0, fabs(b->grads[k][i]));
            if (!(e <= d)) d = e; /* a NaN wins */
        }
    return d;
}

static bool cnn_same_bits(const struct cnn_run *a, const struct cnn_run *b)
{
    for (int k = 0; k < N_GRADS; k++)
        if (memcmp(a->grads[k], b->grads[k], sizeof(double) * (size_t)a->n[k])) return false;
    return true;
}

START_TEST(test_pool_matches_one_thread)
{
    struct cnn_run one = {0}, two = {0}, two_again = {0}, three = {0};
    ck_assert_int_eq(tg_threads_get(), 1);
    cnn_grads(&one);
    ck_assert_int_eq(tg_threads_set(2), TG_OK);
    ck_assert_int_eq(tg_threads_get(), 2);
    cnn_grads(&two);
    cnn_grads(&two_again);
    ck_assert_int_eq(tg_threads_set(3), TG_OK);
    cnn_grads(&three);
    ck_assert_int_eq(tg_threads_set(1), TG_OK);
    ck_assert_int_eq(one.status, TG_OK);
    ck_assert_int_eq(two.status, TG_OK);
    ck_assert_int_eq(three.status, TG_OK);
    double d2 = cnn_diff(&two, &one), d3 = cnn_diff(&three, &one);
    ck_assert_msg(d2 <= 1e-12 && d3 <= 1e-12, "2 threads %g, 3 threads %g from 1", d2, d3);
    ck_assert_msg(cnn_same_bits(&two, &two_again), "2 threads: two runs differ");
    cnn_free(&one), cnn_free(&two), cnn_free(&two_again), cnn_free(&three);
}
END_TEST

START_TEST(test_pool_two_tapes_at_once)
{
    ck_assert_int_eq(tg_threads_set(2), TG_OK);
    struct cnn_run alone = {0}, both[2];
    memset(both, 0, sizeof both);
    cnn_grads(&alone);
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, cnn_grads, &both[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    ck_assert_int_eq(tg_threads_set(1), TG_OK);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(both[k].status, TG_OK);
        ck_assert_msg(cnn_same_bits(&both[k], &alone), "tape %d differs from the run alone", k);
        cnn_free(&both[k]);
    }
    cnn_free(&alone);
}
END_TEST

/* ThreadSanitizer does not support new threads in the child of a
 * multi-threaded fork (it ends the child): there the child skips restarting
 * workers. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* A child made by fork() has no workers: it runs with one thread, without
 * waiting for the parent's workers (which would never answer), and gets a
 * 1-thread run's gradients (to 1e-12: OpenBLAS's own thread count may differ). */
START_TEST(test_pool_after_fork)
{
    struct cnn_run one = {0};
    cnn_grads(&one);
    ck_assert_int_eq(tg_threads_set(2), TG_OK);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct cnn_run child = {0};
        int threads = tg_threads_get();
        cnn_grads(&child);
        bool ok = threads == 1 && child.status == TG_OK && cnn_diff(&child, &one) <= 1e-12 &&
                  (UNDER_TSAN || (tg_threads_set(2) == TG_OK && tg_threads_set(1) == TG_OK));
        cnn_free(&child); /* valgrind checks the child's leaks too */
        cnn_free(&one);
        _exit(ok ? 0 : 1);
    }
    int ws = 0;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_int_eq(tg_threads_set(1), TG_OK);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "the child failed (status %d)", ws);
    cnn_free(&one);
}
END_TEST

/* tg_threads_set on one thread while another thread's tape keeps reaching the
 * split ops: never a hang (a tape that finds the workers ending or busy runs its
 * parts itself), and every run's gradients within 1e-12 of one thread's. */
struct repeat {
    struct cnn_run ref; /* one thread's gradients */
    int bad;            /* runs that failed or differed by more than 1e-12 */
};

static void *cnn_repeat(void *arg)
{
    struct repeat *r = arg;
    for (int i = 0; i < 6; i++) {
        struct cnn_run run = {0};
        cnn_grads(&run);
        r->bad += run.status != TG_OK || !(cnn_diff(&run, &r->ref) <= 1e-12);
        cnn_free(&run);
    }
    return NULL;
}

START_TEST(test_pool_resized_while_used)
{
    struct repeat r;
    memset(&r, 0, sizeof r);
    cnn_grads(&r.ref);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cnn_repeat, &r), 0);
    for (int i = 0; i < 20; i++) {
        enum tg_status st = tg_threads_set(i % 2 ? 1 : 3);
        ck_assert(st == TG_OK || st == TG_ERR_STATE); /* STATE: a section was running */
    }
    pthread_join(t, NULL);
    while (tg_threads_set(1) != TG_OK) {
    }
    ck_assert_msg(r.bad == 0, "%d runs failed or differed from one thread's", r.bad);
    cnn_free(&r.ref);
}
END_TEST

START_TEST(test_threads_set_errors)
{
    int bad[] = {0, -1, TG_THREADS_MAX + 1};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tg_threads_set(bad[i]), TG_ERR_VALUE);
        ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_threads_set"));
        ck_assert_int_eq(tg_threads_get(), 1);
    }
    ck_assert_int_eq(tg_threads_set(TG_THREADS_MAX), TG_OK);
    ck_assert_int_eq(tg_threads_get(), TG_THREADS_MAX);
    ck_assert_int_eq(tg_threads_set(1), TG_OK);
    ck_assert_int_eq(tg_threads_set(1), TG_OK);
    ck_assert_int_eq(tg_threads_get(), 1);
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
    TCase *tp = tcase_create("pool");
    tcase_set_timeout(tp, 120);
    tcase_add_test(tp, test_pool_matches_one_thread);
    tcase_add_test(tp, test_pool_two_tapes_at_once);
    tcase_add_test(tp, test_pool_after_fork);
    tcase_add_test(tp, test_pool_resized_while_used);
    tcase_add_test(tp, test_threads_set_errors);
    suite_add_tcase(s, tp);
    return tg_test_run_suite(s);
}
