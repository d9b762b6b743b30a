/*
 * tests/check_errors.c - what an error message describes, and state that only
 * the calls that should change it do.
 *
 * A NULL input names the failure that produced it, but never an older failure
 * that a later success has consumed (docs/errors.md). tg_tensor_grad and
 * tg_graph_dot read without changing anything; tg_tensor_grad_mut counts as a
 * change. A leaf whose requires-grad changes after ops took it fails the sweep.
 * Anomaly mode names the op the user called and the element that is NaN/Inf.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *vec(int n, const double *v, bool rg)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){n}, v);
    ck_assert_ptr_nonnull(t);
    if (rg) ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

static struct tg_tensor *scalar(double v, bool rg)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    ck_assert_ptr_nonnull(t);
    if (rg) ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

/* Issue 19 item 3: a handled failure, a success, then a NULL: the NULL is not
 * blamed on the handled failure. */
START_TEST(test_null_after_handled_failure)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = vec(3, (const double[]){1, 2, 3}, true);
    struct tg_tensor *b = vec(4, (const double[]){1, 2, 3, 4}, false);
    tg_clear_error();
    ck_assert_ptr_null(tg_add(T, a, b)); /* handled */
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(tg_mul(T, a, a)); /* a success on the tape */
    ck_assert_ptr_null(tg_exp(T, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "exp: input 1 is NULL");
    /* the same on the scalar record path, and for a root */
    struct tg_tensor *s = scalar(2, true);
    ck_assert_ptr_null(tg_add(T, a, b));
    ck_assert_ptr_nonnull(tg_mul(T, s, s));
    ck_assert_int_eq(tg_backward(NULL, NULL), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "backward: root is NULL");
    /* a failure without a tape, consumed by an op's success */
    ck_assert_ptr_null(tg_tensor_from(TG_F64, 1, (int64_t[]){2}, NULL));
    ck_assert_ptr_nonnull(tg_exp(T, s));
    ck_assert_ptr_null(tg_log(T, NULL));
    ck_assert_str_eq(tg_last_error(), "log: input 1 is NULL");
    /* ... or by a constructor's success, or a reset */
    ck_assert_ptr_null(tg_add(T, a, b));
    struct tg_tensor *c = tg_tensor_scalar(TG_F64, 1);
    ck_assert_ptr_null(tg_neg(T, NULL));
    ck_assert_str_eq(tg_last_error(), "neg: input 1 is NULL");
    ck_assert_ptr_null(tg_add(T, a, b));
    tg_tape_reset(T);
    ck_assert_ptr_null(tg_neg(T, NULL));
    ck_assert_str_eq(tg_last_error(), "neg: input 1 is NULL");
    /* with nothing in between, the cause is kept through a chain */
    ck_assert_ptr_null(tg_exp(T, tg_tensor_from(TG_F64, 1, (int64_t[]){2}, NULL)));
    ck_assert_str_eq(tg_last_error(), "tg_tensor_from: data is NULL");
    ck_assert_ptr_nonnull(tg_exp(T, s));
    ck_assert_ptr_null(tg_sin(T, tg_log(T, NULL)));
    ck_assert_str_eq(tg_last_error(), "log: input 1 is NULL");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(s);
    tg_tensor_free(c);
    tg_tape_free(T);
}
END_TEST

/* Issue 20 item 9: a NULL root that a failed op produced reports that op's
 * failure from every call that takes a root. */
START_TEST(test_null_root_names_cause)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = vec(2, (const double[]){1, 2}, true);
    struct tg_tensor *b = vec(3, (const double[]){1, 2, 3}, true);
    const char *want = "add: shapes (2) and (3) cannot broadcast";
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_add(T, a, b)), NULL), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), want);
    struct tg_apply up = {a, -0.1, 1};
    ck_assert_int_eq(tg_backward_apply(tg_sum(T, tg_add(T, a, b)), NULL, &up, 1), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), want);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_graph_dot(tg_sum(T, tg_add(T, a, b)), f, NULL), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), want);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(tg_sum(T, tg_add(T, a, b)), NULL, &tr), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), want);
    ck_assert_ptr_null(tr);
    /* a NULL root that no failure explains */
    ck_assert_ptr_nonnull(tg_sum(T, a));
    ck_assert_int_eq(tg_graph_dot(NULL, f, NULL), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "tg_graph_dot: root is NULL");
    ck_assert_ptr_nonnull(tg_sum(T, a));
    ck_assert_int_eq(tg_backward_apply(NULL, NULL, &up, 1), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "tg_backward_apply: root is NULL");
    fclose(f);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* Issue 19 item 2: reading a gradient (directly or by drawing the graph)
 * changes nothing; the writable pointer counts as a change. */
START_TEST(test_reading_grad_is_read_only)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = vec(2, (const double[]){1, -2}, true);
    struct tg_tensor *y = tg_sum(T, tg_mul(T, x, x));
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    uint64_t v = tg_tensor_grad_version(x);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_graph_dot(y, f, NULL), TG_OK);
    fclose(f);
    ck_assert_uint_eq(tg_tensor_grad_version(x), v);
    const double *g = tg_tensor_grad(x);
    ck_assert_ptr_nonnull(g);
    ck_assert_double_eq(g[1], -4);
    ck_assert_uint_eq(tg_tensor_grad_version(x), v);
    double *w = tg_tensor_grad_mut(x);
    ck_assert_ptr_eq(w, g);
    ck_assert_uint_ne(tg_tensor_grad_version(x), v);
    /* no gradient: NULL and nothing counted */
    struct tg_tensor *n = vec(1, (const double[]){1}, false);
    ck_assert_ptr_null(tg_tensor_grad_mut(n));
    ck_assert_uint_eq(tg_tensor_grad_version(n), 0);
    ck_assert_ptr_null(tg_tensor_grad_mut(NULL));
    tg_tensor_free(x);
    tg_tensor_free(n);
    tg_tape_free(T);
}
END_TEST

/* Issue 20 item 9: requires-grad turned on (or off) after ops took the leaf
 * fails the sweep, whether the op is mul (whose backward reads the flag) or exp
 * (whose node decided at recording time); recorded again, both give c.grad. */
START_TEST(test_requires_grad_after_recording)
{
    struct tg_tape *T = tg_tape_new();
    for (int op = 0; op < 2; op++) {
        struct tg_tensor *c = scalar(0, false), *x = scalar(2, true);
        tg_tape_reset(T);
        struct tg_tensor *y = tg_mul(T, op ? tg_exp(T, c) : c, x);
        ck_assert_int_eq(tg_tensor_set_requires_grad(c, true), TG_OK);
        ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_STATE);
        ck_assert_ptr_nonnull(strstr(tg_last_error(), "requires-grad of input 1 of "));
        ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0); /* nothing changed */
        ck_assert_double_eq(tg_tensor_grad_get(c, 0), 0);
        struct tg_apply up = {x, -1, 1};
        ck_assert_int_eq(tg_backward_apply(y, NULL, &up, 1), TG_ERR_STATE);
        ck_assert_double_eq(tg_tensor_get(x, 0), 2);
        /* recorded again: defined, and the same for both ops */
        tg_tape_reset(T);
        y = tg_mul(T, op ? tg_exp(T, c) : c, x);
        ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
        ck_assert_double_eq(tg_tensor_grad_get(c, 0), 2);
        /* turned off after recording: the same error */
        tg_tape_reset(T);
        y = tg_mul(T, op ? tg_exp(T, c) : c, x);
        ck_assert_int_eq(tg_tensor_set_requires_grad(x, false), TG_OK);
        ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_STATE);
        tg_tensor_free(c);
        tg_tensor_free(x);
    }
    tg_tape_free(T);
}
END_TEST

/* Leaves made to require grad in the middle of a recording, before the ops that
 * take them, are fine, however many there are. */
START_TEST(test_requires_grad_before_use_mid_recording)
{
    struct tg_tape *T = tg_tape_new();
    enum { N = 100 };
    struct tg_tensor *p[N], *y = NULL;
    for (int i = 0; i < N; i++) {
        p[i] = scalar(i, true);
        struct tg_tensor *t = tg_mul(T, p[i], p[i]);
        y = y ? tg_add(T, y, t) : t;
    }
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_double_eq(tg_tensor_grad_get(p[i], 0), 2.0 * i);
        tg_tensor_free(p[i]);
    }
    tg_tape_free(T);
}
END_TEST

/* Issue 20, low: anomaly messages name the op called, the element that is NaN
 * or Inf, and are grammatical for reductions. */
START_TEST(test_anomaly_messages)
{
    struct tg_tape *T = tg_tape_new();
    ck_assert_int_eq(tg_tape_set_anomaly(T, true), TG_OK);
    struct tg_tensor *x = vec(3, (const double[]){1, INFINITY, 2}, false);
    ck_assert_ptr_null(tg_sum(T, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NUMERIC);
    ck_assert_str_eq(tg_last_error(), "sum: input 1 contains inf at [1] -> output inf");
    ck_assert_ptr_null(tg_softmax(T, x, 0));
    ck_assert_str_eq(tg_last_error(), "softmax: input 1 contains inf at [1] -> output nan at [0]");
    ck_assert_ptr_null(tg_mul_scalar(T, x, 2));
    ck_assert_str_eq(tg_last_error(), "mul_scalar: input contains inf at [1] -> inf");
    ck_assert_ptr_null(tg_add_scalar(T, x, 1));
    ck_assert_str_eq(tg_last_error(), "add_scalar: input contains inf at [1] -> inf");
    /* finite inputs that overflow */
    struct tg_tensor *big = vec(2, (const double[]){1e308, 1e308}, false);
    ck_assert_ptr_null(tg_sum(T, big));
    ck_assert_str_eq(tg_last_error(), "sum: output is inf, from finite inputs");
    /* a broadcast input: its own element at that output element */
    double m[6] = {1, 2, 3, 4, 5, 6};
    struct tg_tensor *a = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, m);
    struct tg_tensor *r = vec(3, (const double[]){7, 8, 0}, false);
    ck_assert_ptr_null(tg_div(T, a, r));
    ck_assert_str_eq(tg_last_error(), "div: inputs 3 and 0 at [0,2] -> inf");
    /* the derived op's name also for other failures and NULL inputs */
    ck_assert_ptr_nonnull(tg_neg(T, a)); /* the div failure is no longer the cause */
    ck_assert_ptr_null(tg_mul_scalar(T, NULL, 2));
    ck_assert_str_eq(tg_last_error(), "mul_scalar: input 1 is NULL");
    tg_tensor_free(x);
    tg_tensor_free(big);
    tg_tensor_free(a);
    tg_tensor_free(r);
    tg_tape_free(T);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_null_after_handled_failure);
    tcase_add_test(tc, test_null_root_names_cause);
    tcase_add_test(tc, test_reading_grad_is_read_only);
    tcase_add_test(tc, test_requires_grad_after_recording);
    tcase_add_test(tc, test_requires_grad_before_use_mid_recording);
    tcase_add_test(tc, test_anomaly_messages);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(errors_suite());
}
