/*
 * tests/check_checked.c - the checks of a checked build (-Dchecked=true; built
 * only there): a tape used from a thread other than its creator's fails with
 * TG_ERR_STATE and is left unharmed for its own thread.
 */
#include <check.h>
#include "run-suite.h"
#include <pthread.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

struct shared {
    struct tg_tape *T;
    struct tg_tensor *a, *s, *root;
    int failures; /* calls that failed as they must */
    int wrong;    /* calls that did not */
};

static void expect_state(struct shared *sh, bool failed)
{
    if (failed && tg_last_status() == TG_ERR_STATE && strstr(tg_last_error(), "second thread"))
        sh->failures++;
    else
        sh->wrong++;
}

static void *intruder(void *arg)
{
    struct shared *sh = arg;
    expect_state(sh, !tg_add(sh->T, sh->a, sh->a));
    expect_state(sh, !tg_mul(sh->T, sh->s, sh->s)); /* the scalar record path */
    expect_state(sh, !tg_sum(sh->T, sh->a));
    expect_state(sh, !tg_tape_constant(sh->T, TG_F64, 0, NULL, NULL));
    expect_state(sh, tg_backward(sh->root, NULL) == TG_ERR_STATE);
    expect_state(sh, tg_tape_no_grad_push(sh->T) == TG_ERR_STATE);
    expect_state(sh, tg_tape_set_anomaly(sh->T, true) == TG_ERR_STATE);
    tg_clear_error();
    tg_tape_reset(sh->T);
    expect_state(sh, true);
    tg_clear_error();
    tg_tape_free(sh->T); /* refused: the owner still uses it */
    expect_state(sh, true);
    return NULL;
}

START_TEST(test_second_thread_refused)
{
    struct shared sh = {0};
    sh.T = tg_tape_new();
    sh.a = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    sh.s = tg_tensor_scalar(TG_F64, 2);
    tg_tensor_set_requires_grad(sh.a, true);
    tg_tensor_set_requires_grad(sh.s, true);
    sh.root = tg_sum(sh.T, tg_mul(sh.T, sh.a, sh.a));
    ck_assert_ptr_nonnull(sh.root);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, intruder, &sh), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(sh.wrong, 0);
    ck_assert_int_eq(sh.failures, 9);
    /* the owner's recording is intact and usable */
    ck_assert_int_eq(tg_backward(sh.root, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(sh.a, 2), 2);
    ck_assert_ptr_nonnull(tg_mul(sh.T, sh.s, sh.s));
    tg_tape_free(sh.T);
    tg_tensor_free(sh.a);
    tg_tensor_free(sh.s);
}
END_TEST

/* A tape created and used by one thread (not the main one) works there. */
static void *own_tape(void *arg)
{
    int *ok = arg;
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 3);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *y = tg_mul(T, x, x);
    *ok = y && tg_backward(y, NULL) == TG_OK && tg_tensor_grad_get(x, 0) == 6;
    tg_tape_free(T);
    tg_tensor_free(x);
    return NULL;
}

START_TEST(test_owner_thread_works)
{
    int ok = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, own_tape, &ok), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert(ok);
}
END_TEST

static Suite *checked_suite(void)
{
    Suite *s = suite_create("checked");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, test_second_thread_refused);
    tcase_add_test(tc, test_owner_thread_works);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(checked_suite());
}
