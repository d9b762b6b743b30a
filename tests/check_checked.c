/*
 * tests/check_checked.c - the checks of a checked build (-Dchecked=true; built
 * only there): a tape used from a thread other than its creator's fails with
 * TG_ERR_STATE and is left unharmed for its own thread; a tape, its nodes and a
 * leaf used after they were freed are reported (they are quarantined and
 * poisoned, engine/lifetime.c) instead of read.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
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

static void expect_error(enum tg_status st, const char *part)
{
    ck_assert_int_eq(tg_last_status(), st);
    ck_assert_msg(strstr(tg_last_error(), part), "message \"%s\" lacks \"%s\"", tg_last_error(),
                  part);
    tg_clear_error();
}

/* Issue 16's second case: backward (and every other call) after tg_tape_free. */
START_TEST(test_tape_used_after_free)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 2);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(s, true);
    struct tg_tensor *l = tg_sum(T, tg_mul(T, a, a));
    struct tg_tensor *q = tg_mul(T, s, s); /* the scalar record path */
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_nonnull(q);
    tg_tape_free(T);
    ck_assert_int_eq(tg_backward(l, NULL), TG_ERR_STALE);
    expect_error(TG_ERR_STALE, "root belongs to a tape that was freed");
    ck_assert_int_eq(tg_backward(q, NULL), TG_ERR_STALE);
    expect_error(TG_ERR_STALE, "belongs to a tape that was freed");
    ck_assert(isnan(tg_tensor_item(l)));
    expect_error(TG_ERR_STALE, "belongs to a tape that was freed");
    ck_assert_int_eq(tg_tensor_numel(q), 0);
    expect_error(TG_ERR_STALE, "belongs to a tape that was freed");
    ck_assert_ptr_null(tg_add(T, a, a));
    expect_error(TG_ERR_STATE, "the tape was freed");
    ck_assert_ptr_null(tg_mul(T, s, s));
    expect_error(TG_ERR_STATE, "the tape was freed");
    ck_assert_ptr_null(tg_tape_constant(T, TG_F64, 0, NULL, NULL));
    expect_error(TG_ERR_STATE, "the tape was freed");
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_ERR_STATE);
    expect_error(TG_ERR_STATE, "the tape was freed");
    tg_tape_reset(T); /* must not bring it back */
    expect_error(TG_ERR_STATE, "the tape was freed");
    ck_assert_ptr_null(tg_add(T, a, a));
    tg_clear_error();
    tg_tape_free(T); /* a second free */
    expect_error(TG_ERR_STATE, "the tape was freed");
    /* a node of the freed tape as an input of another tape's op */
    struct tg_tape *T2 = tg_tape_new();
    ck_assert_ptr_null(tg_add(T2, l, l));
    expect_error(TG_ERR_STALE, "an input belongs to a tape that was freed");
    tg_tape_free(T2);
    tg_tensor_free(a);
    tg_tensor_free(s);
}
END_TEST

/* A leaf used after tg_tensor_free released it (no recording held it). */
START_TEST(test_leaf_used_after_free)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_ones(TG_F32, 1, (int64_t[]){3});
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 2);
    struct tg_tensor *w = tg_tensor_scalar(TG_F64, 1);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_free(a);
    tg_tensor_free(s);
    ck_assert(isnan(tg_tensor_get(a, 0)));
    expect_error(TG_ERR_STALE, "t was freed (tg_tensor_free)");
    ck_assert_ptr_null(tg_sum(T, a));
    expect_error(TG_ERR_STALE, "an input was freed (tg_tensor_free)");
    ck_assert_ptr_null(tg_mul(T, w, s)); /* the scalar path */
    expect_error(TG_ERR_STALE, "an input was freed (tg_tensor_free)");
    ck_assert_int_eq(tg_tensor_set_requires_grad(a, true), TG_ERR_STALE);
    expect_error(TG_ERR_STALE, "was freed (tg_tensor_free)");
    struct tg_tensor *y = tg_mul(T, w, w);
    struct tg_apply e = {a, -1, 1};
    ck_assert_int_eq(tg_backward_apply(y, NULL, &e, 1), TG_ERR_STALE);
    expect_error(TG_ERR_STALE, "entry 0 was freed");
    tg_tensor_free(a); /* a second free: reported, nothing else */
    expect_error(TG_ERR_STALE, "was freed (tg_tensor_free)");
    tg_tape_free(T);
    tg_tensor_free(w);
}
END_TEST

/* A leaf freed while a recording held it, used after the recording released
 * it (at the reset). */
START_TEST(test_held_leaf_used_after_release)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    struct tg_tensor *c = tg_tensor_full(TG_F64, 1, (int64_t[]){3}, 2);
    tg_tensor_set_requires_grad(a, true);
    struct tg_tensor *l = tg_sum(T, tg_mul(T, a, c));
    tg_tensor_free(c);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(a, 1), 2);
    tg_tape_reset(T);
    ck_assert_ptr_null(tg_add(T, a, c));
    expect_error(TG_ERR_STALE, "an input was freed (tg_tensor_free)");
    tg_tape_free(T);
    tg_tensor_free(a);
}
END_TEST

static Suite *checked_suite(void)
{
    Suite *s = suite_create("checked");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, test_second_thread_refused);
    tcase_add_test(tc, test_owner_thread_works);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("use after free");
    tcase_add_test(tl, test_tape_used_after_free);
    tcase_add_test(tl, test_leaf_used_after_free);
    tcase_add_test(tl, test_held_leaf_used_after_release);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    return tg_test_run_suite(checked_suite());
}
