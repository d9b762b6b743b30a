/*
 * tests/check_stale.c - handles to tape tensors recorded before a reset.
 *
 * A stale handle must be reported as TG_ERR_STALE by every public call that
 * takes a tensor, however many resets ago it was made (within the window that
 * docs/errors.md states), and must never crash or change a live node, even when
 * the tape has recorded nodes of other sizes where the stale node was.
 */
#include <check.h>
#include "run-suite.h"
#include "tg-config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *leaf(double v, bool grad)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    ck_assert_ptr_nonnull(t);
    if (grad) ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

/* Asserts that the last call recorded TG_ERR_STALE, then clears it. */
static void expect_stale(int line)
{
    ck_assert_msg(tg_last_status() == TG_ERR_STALE, "line %d: status %s (%s)", line,
                  tg_status_str(tg_last_status()), tg_last_error());
    tg_clear_error();
}
#define EXPECT_STALE() expect_stale(__LINE__)

/* Every use of stale handle h that the public API offers reports it as stale
 * and changes nothing. */
static void check_all_stale(struct tg_tape *T, struct tg_tensor *h, struct tg_tensor *x)
{
    tg_clear_error();
    ck_assert_int_eq(tg_backward(h, NULL), TG_ERR_STALE);
    EXPECT_STALE();
    ck_assert(isnan(tg_tensor_item(h)));
    EXPECT_STALE();
    ck_assert(isnan(tg_tensor_get(h, 0)));
    EXPECT_STALE();
    ck_assert(isnan(tg_tensor_grad_get(h, 0)));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_tensor_data(h));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_tensor_grad(h));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_add(T, h, x));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_add(T, x, h));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_exp(T, h));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_sum(T, h));
    EXPECT_STALE();
    ck_assert_ptr_null(tg_tensor_copy(h));
    EXPECT_STALE();
    ck_assert_int_eq(tg_tensor_set(h, 0, -999), TG_ERR_STALE);
    EXPECT_STALE();
    ck_assert_int_eq(tg_tensor_zero_grad(h), TG_ERR_STALE);
    EXPECT_STALE();
}

/* The example: a handle from two recordings back, whose arena the
 * third recording reuses. */
START_TEST(test_two_recordings_back)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(3, true), *w = leaf(5, true), *c100 = leaf(100, false);
    struct tg_tensor *y = tg_mul(T, x, x);
    ck_assert_double_eq(tg_tensor_item(y), 9);
    tg_tape_reset(T);
    ck_assert_ptr_nonnull(tg_add(T, w, w));
    tg_tape_reset(T);
    struct tg_tensor *z = tg_mul(T, w, c100);
    ck_assert_double_eq(tg_tensor_item(z), 500);
    ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_STALE);
    ck_assert_double_eq(tg_tensor_grad_get(w, 0), 0); /* no gradient went anywhere */
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0);
    ck_assert(isnan(tg_tensor_item(y)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    ck_assert_ptr_null(tg_add(T, y, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    ck_assert_str_eq(tg_last_error(), "add: an input was recorded before the tape was reset");
    check_all_stale(T, y, x);
    /* the live node is untouched and still works */
    ck_assert_double_eq(tg_tensor_item(z), 500);
    ck_assert_int_eq(tg_backward(z, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(w, 0), 100);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(c100);
    tg_tape_free(T);
}
END_TEST

/* Short (one-element) nodes kept as handles, then recordings of full-size
 * nodes of shape (5,6,7): with the node memory of both sizes shared, a handle
 * pointed into the middle of a live node and backward and item crashed. */
START_TEST(test_scalar_handles_over_full_nodes)
{
    enum { N_H = 12 };
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, true);
    struct tg_tensor *big = tg_tensor_full(TG_F64, 3, (int64_t[]){5, 6, 7}, 1.5);
    tg_tensor_set_requires_grad(big, true);
    struct tg_tensor *h[N_H];
    h[0] = tg_mul(T, x, x);
    for (int i = 1; i < N_H; i++) h[i] = tg_add(T, h[i - 1], x);
    ck_assert_double_eq(tg_tensor_item(h[N_H - 1]), 4 + 2 * (N_H - 1));
    for (int r = 0; r < 2; r++) {
        tg_tape_reset(T);
        struct tg_tensor *s = big;
        for (int i = 0; i < 2 * N_H; i++) s = tg_mul(T, s, big);
        ck_assert_ptr_nonnull(tg_sum(T, s));
    }
    for (int i = 0; i < N_H; i++) check_all_stale(T, h[i], x);
    tg_tensor_free(x);
    tg_tensor_free(big);
    tg_tape_free(T);
}
END_TEST

/* Ages 1..N: a handle made N resets ago, with small recordings in between that
 * mix one-element nodes, tensor nodes and constants, is reported stale. */
static const int ages[] = {1, 2, 3, 4, 7, 16, 100, 1000};

START_TEST(test_ages)
{
    const int age = ages[_i];
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(1.25, true);
    struct tg_tensor *v = tg_tensor_full(TG_F64, 1, (int64_t[]){4}, 2.0);
    tg_tensor_set_requires_grad(v, true);
    struct tg_tensor *hs = tg_mul(T, x, x); /* one-element node */
    struct tg_tensor *hv = tg_mul(T, v, v); /* tensor node */
    struct tg_tensor *hc = tg_tape_constant(T, TG_F64, 1, (int64_t[]){4}, NULL); /* constant */
    for (int k = 0; k < age; k++) {
        tg_tape_reset(T);
        struct tg_tensor *a = tg_add(T, tg_mul(T, x, x), x);
        struct tg_tensor *c = tg_tape_constant(T, TG_F64, 1, (int64_t[]){4}, NULL);
        struct tg_tensor *b = tg_sum(T, tg_mul(T, tg_add(T, v, c), v));
        ck_assert_ptr_nonnull(tg_add(T, a, b));
    }
    check_all_stale(T, hs, x);
    check_all_stale(T, hv, x);
    check_all_stale(T, hc, x);
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tape_free(T);
}
END_TEST

/* The previous recording is always told apart, also when one recording is
 * larger than all the node memory the tape had. */
START_TEST(test_large_recordings)
{
    enum { N = 20000 };
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(1, true);
    struct tg_tensor *first = NULL, *last = NULL;
    for (int r = 0; r < 4; r++) {
        tg_tape_reset(T);
        if (first) {
            struct tg_tensor *y = x;
            for (int i = 0; i < N; i++) y = tg_add(T, y, x);
            ck_assert_double_eq(tg_tensor_item(y), N + 1);
            check_all_stale(T, first, x);
            check_all_stale(T, last, x);
        }
        struct tg_tensor *y = tg_add(T, x, x);
        first = y;
        for (int i = 0; i < N; i++) y = tg_add(T, y, x);
        last = y;
        ck_assert_double_eq(tg_tensor_item(last), N + 2);
    }
#if !TG_CHECKED
    /* the node memory stays within about two recordings' worth */
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    ck_assert_uint_le(st.bytes_reserved, 3 * (size_t)(2 * N + 1) * 144 + (2 << 20));
#endif
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* The window that tape.h promises: a handle reads as stale at least until the
 * tape has recorded 7,280 more one-element results of elementwise ops (a
 * one-element handle) or 5,039 more other tensors (any other handle) after it,
 * over any number of resets. With -Dchecked=true: at any age. */
START_TEST(test_window)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(1, true);
    const double three[3] = {1, 2, 3};
    struct tg_tensor *hs = tg_mul(T, x, x);
    struct tg_tensor *hf = tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, three);
    int resets = 0;
#if TG_CHECKED
    const int rounds = 4; /* four times the window, with nothing reused */
#else
    const int rounds = 1;
#endif
    for (int round = 0; round < rounds; round++) {
        /* spread over 73 recordings, both kinds ending in the last one */
        enum { N_REC = 73, N_SCALAR = 7280, N_FULL = 5039 };
        for (int j = 0; j < N_REC; j++) {
            tg_tape_reset(T);
            resets++;
            struct tg_tensor *y = x;
            int n_s = N_SCALAR * (j + 1) / N_REC - N_SCALAR * j / N_REC;
            int n_f = N_FULL * (j + 1) / N_REC - N_FULL * j / N_REC;
            for (int i = 0; i < n_s; i++) y = tg_add(T, y, x);
            for (int i = 0; i < n_f; i++)
                ck_assert_ptr_nonnull(tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, NULL));
            ck_assert_ptr_nonnull(y);
        }
        check_all_stale(T, hs, x);
        check_all_stale(T, hf, x);
    }
    ck_assert_int_eq(resets, 73 * rounds);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Every accessor on a stale tensor of each kind, after one reset and a new
 * recording of the same shapes (so that the old buffers hold new values). */
START_TEST(test_accessors_after_one_reset)
{
    struct tg_tape *T = tg_tape_new();
    const int64_t shape[2] = {2, 3};
    const double vals[6] = {10, 20, 30, 40, 50, 60};
    struct tg_tensor *a = tg_tensor_from_f64(TG_F64, 2, shape, vals);
    tg_tensor_set_requires_grad(a, true);
    struct tg_tensor *node = tg_mul_scalar(T, a, 2);
    struct tg_tensor *sc = tg_sum(T, node);
    struct tg_tensor *cst = tg_tape_constant(T, TG_F64, 2, shape, vals);
    ck_assert_int_eq(tg_backward(sc, NULL), TG_OK);
    tg_tape_reset(T);
    const double other[6] = {1, 2, 3, 4, 5, 6};
    struct tg_tensor *node2 = tg_mul_scalar(T, a, 3);
    struct tg_tensor *sc2 = tg_sum(T, node2);
    struct tg_tensor *cst2 = tg_tape_constant(T, TG_F64, 2, shape, other);
    ck_assert_int_eq(tg_backward(sc2, NULL), TG_OK);
    struct tg_tensor *stale[3] = {node, sc, cst};
    char buf[32];
    for (int k = 0; k < 3; k++) {
        struct tg_tensor *t = stale[k];
        tg_clear_error();
        ck_assert_int_eq(tg_tensor_dtype(t), TG_F32);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_rank(t), 0);
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_shape(t));
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_dim(t, 0), 0);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_numel(t), 0);
        EXPECT_STALE();
        ck_assert(!tg_tensor_requires_grad(t));
        EXPECT_STALE();
        ck_assert(!tg_tensor_is_leaf(t));
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_data(t));
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_grad(t));
        EXPECT_STALE();
        ck_assert_uint_eq(tg_tensor_grad_version(t), 0);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_op(t), TG_OP_NONE);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_n_inputs(t), 0);
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_input(t, 0));
        EXPECT_STALE();
        double params[TG_MAX_OP_PARAMS];
        ck_assert_int_eq(tg_tensor_op_params(t, params, TG_MAX_OP_PARAMS), 0);
        EXPECT_STALE();
        ck_assert(isnan(tg_tensor_get(t, 0)));
        EXPECT_STALE();
        ck_assert(isnan(tg_tensor_grad_get(t, 0)));
        EXPECT_STALE();
        ck_assert(isnan(tg_tensor_item(t)));
        EXPECT_STALE();
        ck_assert_str_eq(tg_tensor_shape_str(t, buf, sizeof buf), "(stale)");
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_copy(t));
        EXPECT_STALE();
        ck_assert_ptr_null(tg_tensor_to(t, TG_F32));
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_set(t, 2, -999), TG_ERR_STALE);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_zero_grad(t), TG_ERR_STALE);
        EXPECT_STALE();
        ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_ERR_STALE);
        EXPECT_STALE();
        tg_tensor_free(t);
        EXPECT_STALE();
        ck_assert_int_eq(tg_backward(t, NULL), TG_ERR_STALE);
        EXPECT_STALE();
        ck_assert_int_eq(tg_backward(sc2, t), TG_ERR_STALE); /* as a seed */
        EXPECT_STALE();
        struct tg_apply ap = {t, -1, 1};
        ck_assert_int_eq(tg_backward_apply(sc2, NULL, &ap, 1), TG_ERR_STALE);
        EXPECT_STALE();
    }
    /* nothing of the live recording changed */
    for (int i = 0; i < 6; i++) {
        ck_assert_double_eq(tg_tensor_get(node2, i), 3 * vals[i]);
        ck_assert_double_eq(tg_tensor_get(cst2, i), other[i]);
        ck_assert_double_eq(tg_tensor_grad_get(node2, i), 1);
        ck_assert_double_eq(tg_tensor_grad_get(a, i), 2 + 3);
    }
    ck_assert_double_eq(tg_tensor_item(sc2), 3 * 210);
    ck_assert_int_eq(tg_last_status(), TG_OK);
    tg_tensor_free(a);
    tg_tape_free(T);
}
END_TEST

/* The second example: writing a stale constant overwrote a live one. */
START_TEST(test_set_stale_constant)
{
    struct tg_tape *T = tg_tape_new();
    const double v1[3] = {1, 2, 3}, v2[3] = {10, 20, 30};
    struct tg_tensor *c1 = tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, v1);
    ck_assert_int_eq(tg_tensor_set(c1, 2, 7), TG_OK); /* live: allowed */
    ck_assert_double_eq(tg_tensor_get(c1, 2), 7);
    tg_tape_reset(T);
    struct tg_tensor *c2 = tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, v2);
    ck_assert_int_eq(tg_tensor_set(c1, 2, -999), TG_ERR_STALE);
    ck_assert_double_eq(tg_tensor_get(c2, 2), 30);
    ck_assert_double_eq(((double *)tg_tensor_data(c2))[2], 30);
    tg_tape_free(T);
}
END_TEST

/* Handles of every age and position, one-element and tensor nodes interleaved,
 * kept across far more recorded nodes than the tape's node memory holds: each
 * use is either reported stale or (once its memory is a node of the current
 * recording) reads that node; nothing crashes. */
START_TEST(test_never_crashes)
{
    enum { N_KEEP = 64, ROUNDS = 40, PER = 700 };
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0.5, true);
    struct tg_tensor *v = tg_tensor_full(TG_F64, 2, (int64_t[]){3, 2}, 0.25);
    tg_tensor_set_requires_grad(v, true);
    struct tg_tensor *keep[N_KEEP];
    int n_keep = 0;
    for (int r = 0; r < ROUNDS; r++) {
        tg_tape_reset(T);
        struct tg_tensor *s = x, *m = v;
        for (int i = 0; i < PER; i++) {
            if ((i * 7 + r) % 5 < 2) {
                m = tg_add(T, m, v);
                if (n_keep < N_KEEP && i % 97 == r % 97) keep[n_keep++] = m;
            } else {
                s = tg_add(T, s, x);
                if (n_keep < N_KEEP && i % 89 == r % 89) keep[n_keep++] = s;
            }
        }
        struct tg_tensor *root = tg_add(T, tg_sum(T, m), s);
        ck_assert_ptr_nonnull(root);
        for (int k = 0; k < n_keep; k++) {
            struct tg_tensor *h = keep[k];
            tg_clear_error();
            double it = tg_tensor_get(h, 0);
            if (tg_last_status() == TG_ERR_STALE) {
                ck_assert(isnan(it));
                ck_assert_int_eq(tg_backward(h, NULL), TG_ERR_STALE);
                ck_assert_ptr_null(tg_add(T, h, h));
            } else {
                ck_assert_int_eq(tg_last_status(), TG_OK);
                ck_assert(isfinite(it));
                ck_assert_ptr_nonnull(tg_tensor_data(h));
            }
        }
        ck_assert_int_eq(tg_backward(root, NULL), TG_OK);
    }
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tape_free(T);
}
END_TEST

/* A stale handle given to an op of another tape is reported as stale. */
START_TEST(test_other_tape)
{
    struct tg_tape *T = tg_tape_new(), *T2 = tg_tape_new();
    struct tg_tensor *x = leaf(2, true);
    struct tg_tensor *y = tg_mul(T, x, x);
    ck_assert_ptr_null(tg_add(T2, y, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    tg_tape_reset(T);
    ck_assert_ptr_null(tg_add(T2, y, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    tg_tensor_free(x);
    tg_tape_free(T);
    tg_tape_free(T2);
}
END_TEST

static Suite *stale_suite(void)
{
    Suite *s = suite_create("stale");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_two_recordings_back);
    tcase_add_test(tc, test_scalar_handles_over_full_nodes);
    tcase_add_loop_test(tc, test_ages, 0, (int)(sizeof ages / sizeof ages[0]));
    tcase_add_test(tc, test_large_recordings);
    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_accessors_after_one_reset);
    tcase_add_test(tc, test_set_stale_constant);
    tcase_add_test(tc, test_never_crashes);
    tcase_add_test(tc, test_other_tape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(stale_suite());
}
