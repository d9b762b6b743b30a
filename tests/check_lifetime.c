/*
 * tests/check_lifetime.c - freeing a leaf that a live recording still uses.
 *
 * A recording holds every leaf it takes as an input until its tape's reset or
 * free (engine/lifetime.c). Each test records l = sum(a * c) (or the scalar
 * l = a * c), frees c at some point of the sequence record, backward, reset,
 * tape free, and checks that the sweep still works with c's values, that c's
 * memory is released exactly when the last holder lets go (an allocator hook
 * watches c's allocation), and that using c after its free is reported. Under
 * AddressSanitizer and valgrind (.ci/run) every order is also free of invalid
 * reads and leaks.
 */
#include <check.h>
#include "run-suite.h"
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "tg-config.h"

/* ---- an allocator that notes when one pointer is freed ---- */
static const void *watched;
static int watched_freed;

static void *w_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return malloc(n);
}
static void *w_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return realloc(p, n);
}
static void w_free(void *p, void *ctx)
{
    (void)ctx;
    if (p && p == watched) watched_freed++;
    free(p);
}

static void watch(const void *p)
{
    static const struct tg_allocator a = {w_malloc, w_realloc, w_free, NULL};
    ck_assert_int_eq(tg_set_allocator(&a), TG_OK);
    watched = p;
    watched_freed = 0;
}

/* In a checked build a freed leaf goes to the quarantine rather than back to
 * the allocator: there, "released" is seen as the handle reading as freed. */
#if TG_CHECKED
#define RELEASED(t) (tg_tensor_numel(t) == 0 && strstr(tg_last_error(), "was freed"))
#else
#define RELEASED(t) ((void)(t), watched_freed == 1)
#endif

struct rec {
    struct tg_tape *T;
    struct tg_tensor *a, *c, *l;
};

/* a = [1, 2, 3] (requires grad), c = [4, 5, 6], l = sum(a * c); c watched. */
static struct rec record(bool scalar)
{
    struct rec r;
    r.T = tg_tape_new();
    if (scalar) {
        r.a = tg_tensor_scalar(TG_F64, 1.5);
        r.c = tg_tensor_scalar(TG_F64, 4);
    } else {
        r.a = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
        r.c = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){4, 5, 6});
    }
    ck_assert_int_eq(tg_tensor_set_requires_grad(r.a, true), TG_OK);
    struct tg_tensor *p = tg_mul(r.T, r.a, r.c);
    r.l = scalar ? p : tg_sum(r.T, p);
    ck_assert_ptr_nonnull(r.l);
    watch(r.c);
    return r;
}

static void expect_grad_of_a(struct rec *r, bool scalar)
{
    if (scalar) {
        ck_assert_double_eq(tg_tensor_grad_get(r->a, 0), 4);
        return;
    }
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_grad_get(r->a, i), 4 + i);
}

static void done(struct rec *r)
{
    tg_tensor_free(r->a);
    tg_set_allocator(&(struct tg_allocator){NULL, NULL, NULL, NULL});
}

/* record, free c, backward, reset: c goes at the reset */
START_TEST(test_free_backward_reset)
{
    bool scalar = _i;
    struct rec r = record(scalar);
    tg_tensor_free(r.c);
    ck_assert_int_eq(watched_freed, 0);
    ck_assert_int_eq(tg_backward(r.l, NULL), TG_OK);
    expect_grad_of_a(&r, scalar);
    ck_assert_int_eq(watched_freed, 0);
    tg_tape_reset(r.T);
    ck_assert(RELEASED(r.c));
    tg_tape_free(r.T);
    done(&r);
}
END_TEST

/* record, free c, reset, backward (stale), tape free */
START_TEST(test_free_reset_backward)
{
    struct rec r = record(_i);
    tg_tensor_free(r.c);
    tg_tape_reset(r.T);
    ck_assert(RELEASED(r.c));
    ck_assert_int_eq(tg_backward(r.l, NULL), TG_ERR_STALE);
    tg_tape_free(r.T);
    done(&r);
}
END_TEST

/* record, free c, tape free: c goes with the tape */
START_TEST(test_free_tapefree)
{
    struct rec r = record(_i);
    tg_tensor_free(r.c);
    ck_assert_int_eq(watched_freed, 0);
    tg_tape_free(r.T);
    ck_assert(RELEASED(r.c));
    done(&r);
}
END_TEST

/* record, backward, free c, backward again, reset */
START_TEST(test_backward_free_backward)
{
    bool scalar = _i;
    struct rec r = record(scalar);
    ck_assert_int_eq(tg_backward(r.l, NULL), TG_OK);
    tg_tensor_free(r.c);
    ck_assert_int_eq(tg_tensor_zero_grad(r.a), TG_OK);
    ck_assert_int_eq(tg_backward(r.l, NULL), TG_OK);
    expect_grad_of_a(&r, scalar);
    ck_assert_int_eq(watched_freed, 0);
    tg_tape_reset(r.T);
    ck_assert(RELEASED(r.c));
    tg_tape_free(r.T);
    done(&r);
}
END_TEST

/* record, reset, free c: nothing holds c any more, it goes at once */
START_TEST(test_reset_free)
{
    struct rec r = record(_i);
    tg_tape_reset(r.T);
    ck_assert_int_eq(watched_freed, 0);
    tg_tensor_free(r.c);
    ck_assert(RELEASED(r.c));
    tg_tape_free(r.T);
    done(&r);
}
END_TEST

/* record, tape free, free c */
START_TEST(test_tapefree_free)
{
    struct rec r = record(_i);
    tg_tape_free(r.T);
    ck_assert_int_eq(watched_freed, 0);
    tg_tensor_free(r.c);
    ck_assert(RELEASED(r.c));
    done(&r);
}
END_TEST

/* c on two tapes: it goes when the second lets go, whichever order */
START_TEST(test_two_tapes)
{
    bool scalar = _i & 1, first_t2 = _i & 2;
    struct rec r = record(scalar);
    struct tg_tape *T2 = tg_tape_new();
    struct tg_tensor *p2 = tg_mul(T2, r.c, r.a);
    struct tg_tensor *l2 = scalar ? p2 : tg_sum(T2, p2);
    ck_assert_ptr_nonnull(l2);
    tg_tensor_free(r.c);
    if (first_t2)
        tg_tape_free(T2);
    else
        tg_tape_reset(r.T);
    ck_assert_int_eq(watched_freed, 0);
    struct tg_tensor *root = first_t2 ? r.l : l2;
    ck_assert_int_eq(tg_backward(root, NULL), TG_OK);
    expect_grad_of_a(&r, scalar);
    if (first_t2)
        tg_tape_reset(r.T);
    else
        tg_tape_free(T2);
    ck_assert(RELEASED(r.c));
    tg_tape_free(r.T);
    done(&r);
}
END_TEST

/* tg_grad after c's free reads c */
START_TEST(test_tg_grad_after_free)
{
    struct rec r = record(false);
    tg_tensor_free(r.c);
    struct tg_tensor *g = NULL;
    ck_assert_int_eq(tg_grad(1, &r.l, NULL, 1, &r.a, NULL, &g), TG_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_get(g, i), 4 + i);
    ck_assert_int_eq(watched_freed, 0);
    tg_tape_free(r.T);
    ck_assert(RELEASED(r.c));
    done(&r);
}
END_TEST

/* tg_backward_apply after c's free; listing the freed c is refused */
START_TEST(test_apply_after_free)
{
    struct rec r = record(_i);
    ck_assert_int_eq(tg_tensor_set_requires_grad(r.c, true), TG_OK);
    tg_tape_reset(r.T); /* record again: c's requires-grad changed */
    struct tg_tensor *p = tg_mul(r.T, r.a, r.c);
    r.l = _i ? p : tg_sum(r.T, p);
    tg_tensor_free(r.c);
    struct tg_apply bad = {r.c, -1, 1};
    ck_assert_int_eq(tg_backward_apply(r.l, NULL, &bad, 1), TG_ERR_STALE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "entry 0 was freed"));
    struct tg_apply ok = {r.a, -1, 1};
    ck_assert_int_eq(tg_backward_apply(r.l, NULL, &ok, 1), TG_OK);
    ck_assert_double_eq(tg_tensor_get(r.a, 0), _i ? 1.5 - 4 : 1 - 4);
    tg_tape_free(r.T);
    ck_assert(RELEASED(r.c));
    done(&r);
}
END_TEST

/* After its free, c is refused as the input of a new recording and by the
 * accessors, and a second free is refused, while a recording holds it. */
START_TEST(test_use_after_free_refused)
{
    struct rec r = record(_i);
    tg_tensor_free(r.c);
    struct tg_tape *T2 = tg_tape_new();
    ck_assert_ptr_null(tg_mul(T2, r.a, r.c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    ck_assert_str_eq(tg_last_error(),
                     "mul: an input leaf was freed (tg_tensor_free) before this op");
    ck_assert_int_eq(tg_tensor_set(r.c, 0, 1), TG_ERR_STALE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "t was freed"));
    tg_clear_error();
    tg_tensor_free(r.c);
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    ck_assert_int_eq(watched_freed, 0);
    tg_tape_free(T2);
    tg_tape_free(r.T);
    ck_assert(RELEASED(r.c));
    done(&r);
}
END_TEST

/* A training loop that frees and replaces a parameter every step, with the
 * recording of the step still alive: no step reads freed memory, and every
 * replaced parameter is released by the next reset. */
START_TEST(test_loop_replacing_leaves)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *w = tg_tensor_full(TG_F32, 1, (int64_t[]){4}, 1);
    ck_assert_int_eq(tg_tensor_set_requires_grad(w, true), TG_OK);
    for (int step = 0; step < 50; step++) {
        struct tg_tensor *l = tg_sum(T, tg_mul(T, w, w));
        struct tg_tensor *next = tg_tensor_copy(w);
        ck_assert_int_eq(tg_tensor_set_requires_grad(next, true), TG_OK);
        tg_tensor_free(w); /* misplaced: before the backward */
        ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
        for (int i = 0; i < 4; i++) tg_tensor_set(next, i, 0.5 * tg_tensor_get(next, i));
        tg_tape_reset(T);
        w = next;
    }
    ck_assert_float_eq_tol(tg_tensor_get(w, 0), 0x1p-50, 1e-20);
    tg_tensor_free(w);
    tg_tape_free(T);
}
END_TEST

static Suite *lifetime_suite(void)
{
    Suite *s = suite_create("lifetime");
    TCase *tc = tcase_create("orders");
    tcase_add_loop_test(tc, test_free_backward_reset, 0, 2);
    tcase_add_loop_test(tc, test_free_reset_backward, 0, 2);
    tcase_add_loop_test(tc, test_free_tapefree, 0, 2);
    tcase_add_loop_test(tc, test_backward_free_backward, 0, 2);
    tcase_add_loop_test(tc, test_reset_free, 0, 2);
    tcase_add_loop_test(tc, test_tapefree_free, 0, 2);
    tcase_add_loop_test(tc, test_two_tapes, 0, 4);
    tcase_add_test(tc, test_tg_grad_after_free);
    tcase_add_loop_test(tc, test_apply_after_free, 0, 2);
    tcase_add_loop_test(tc, test_use_after_free_refused, 0, 2);
    tcase_add_test(tc, test_loop_replacing_leaves);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(lifetime_suite());
}
