/*
 * tests/check_oom.c - out of memory: every allocation of a forward + backward
 * pass is made to fail in turn; each failure must come back as TG_ERR_NOMEM,
 * leak nothing (the sanitizer and valgrind runs check that), leave the leaf
 * gradients untouched, and leave the tape usable once memory is back.
 */
#include <check.h>
#include <math.h>
#include <tapegrad/tapegrad.h>
#include "failalloc.h"

/* A small tensor graph large enough to need several arena chunks. */
static struct tg_tensor *graph(struct tg_tape *T, struct tg_tensor *w, struct tg_tensor *x)
{
    struct tg_tensor *h = tg_tanh(T, tg_mul(T, x, w));         /* (64,300) */
    struct tg_tensor *s = tg_sigmoid(T, tg_add(T, h, x));      /* (64,300) */
    return tg_mean(T, tg_pow_scalar(T, tg_sub(T, s, h), 2.0)); /* () */
}

START_TEST(test_oom_sweep_step)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    struct tg_tensor *w = tg_tensor_uniform(TG_F32, 2, (int64_t[]){64, 300}, &rng, -1, 1);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 1, (int64_t[]){300}, &rng, -1, 1);
    tg_tensor_set_requires_grad(w, true);
    /* the reference gradient */
    struct tg_tape *R = tg_tape_new();
    ck_assert_int_eq(tg_backward(graph(R, w, x), NULL), TG_OK);
    double ref = tg_tensor_grad_get(w, 77);
    tg_tape_free(R);
    int completed = 0;
    for (long n = 1; n < 1000 && !completed; n++) {
        tg_zero_grad(w);
        failalloc_arm(n, true);
        struct tg_tape *T = tg_tape_new();
        enum tg_status st = TG_OK;
        if (T) {
            struct tg_tensor *loss = graph(T, w, x);
            st = loss ? tg_backward(loss, NULL) : tg_last_status();
        } else {
            st = tg_last_status();
        }
        bool failed = failalloc_failures > 0;
        failalloc_disarm();
        if (!failed) {
            ck_assert_int_eq(st, TG_OK);
            completed = 1;
        } else {
            ck_assert_msg(st == TG_ERR_NOMEM, "allocation %ld: status %s (%s)", n,
                          tg_status_str(st), tg_last_error());
            /* memory is back: the same tape works, gradients were not half-added */
            if (T) {
                for (int64_t i = 0; i < tg_tensor_numel(w); i++)
                    ck_assert_msg(tg_tensor_grad_get(w, i) == 0, "allocation %ld: grad touched", n);
                tg_tape_reset(T);
                ck_assert_int_eq(tg_backward(graph(T, w, x), NULL), TG_OK);
                ck_assert(fabs(tg_tensor_grad_get(w, 77) - ref) <= 1e-6 * fabs(ref) + 1e-12);
            }
        }
        tg_tape_free(T);
    }
    ck_assert_msg(completed, "the step never completed");
    tg_set_allocator(NULL);
    tg_tensor_free(w);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_oom_constructors)
{
    for (long n = 1; n <= 3; n++) {
        failalloc_arm(n, true);
        struct tg_tensor *t = tg_tensor_zeros(TG_F64, 2, (int64_t[]){10, 10});
        enum tg_status st = t ? tg_tensor_set_requires_grad(t, true) : tg_last_status();
        failalloc_disarm();
        if (n <= 2) ck_assert_int_eq(st, TG_ERR_NOMEM);
        if (t) {
            ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK); /* usable again */
            tg_tensor_free(t);
        }
    }
    failalloc_arm(1, true);
    ck_assert_ptr_null(tg_tape_new());
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    failalloc_disarm();
    tg_set_allocator(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("sweep");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_oom_sweep_step);
    tcase_add_test(tc, test_oom_constructors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
