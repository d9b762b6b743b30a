/*
 * tests/check_ops.c - the op table: every op gradchecked in f64 and f32 (and on
 * scalars for the elementwise ops), fixed values
 * derived by hand, broadcasting and dtype rules, fan-out graphs.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <string.h>
#include <tapegrad/check.h>
#include "gradcases.h"

enum { REPEATS = 4 };

/* The loop test: _i is the op. Each of its cases runs REPEATS times on new random
 * shapes (gc_check_op); an op without a case fails. */
START_TEST(test_gradcheck_op)
{
    enum tg_op op = (enum tg_op)_i;
    struct gc_op_result r;
    gc_check_op(op, REPEATS, 0, &r);
    ck_assert_msg(r.n_cases > 0, "op %s has no gradient-check case", tg_op_name(op));
    ck_assert_msg(r.n_failed == 0, "%s: %d of %d runs failed; first: %s", tg_op_name(op),
                  r.n_failed, r.n_runs, r.first_failure);
}
END_TEST

/* The checks of a case catch what they claim to: a function that records
 * another op than the one declared, an f32 backward that differs from the f64
 * one (the f64 one being right), and elementwise cases run again on scalars. */
static int make_x(struct tg_rng *r, struct tg_tensor **in)
{
    in[0] = gc_rand(r, 1, (int64_t[]){3}, -1, 1, true);
    return 1;
}
static struct tg_tensor *cos_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_cos(T, x[0]);
}
/* sin(x), plus 0.01 x^2 / 2 in f32 only: right forward values in f64, a wrong
 * gradient (0.01 x too much) in f32 */
static struct tg_tensor *skewed_f32_fn(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    struct tg_tensor *y = tg_sin(T, x[0]);
    if (tg_tensor_dtype(x[0]) == TG_F64) return y;
    return tg_add(T, y, tg_mul_scalar(T, tg_mul(T, x[0], x[0]), 0.005));
}

START_TEST(test_case_checks)
{
    struct gc_op_result r;
    struct gc_case mislabelled = {TG_OP_SIN, "sin that is cos", make_x, cos_fn};
    gc_check_case(&mislabelled, false, 2, 0, &r);
    ck_assert_int_eq(r.n_failed, 2);
    ck_assert_msg(strstr(r.first_failure, "the function records no sin op"), "%s", r.first_failure);
    struct gc_case skewed = {TG_OP_SIN, "sin, skewed in f32", make_x, skewed_f32_fn};
    gc_check_case(&skewed, false, 2, 0, &r);
    ck_assert_int_eq(r.n_failed, 2);
    ck_assert_msg(strstr(r.first_failure, "f32 gradient of input 0"), "%s", r.first_failure);
    ck_assert(r.max_f32 > 1);
    /* the table's elementwise cases: every repeat twice (the second on scalars),
     * f32 within its tolerance */
    gc_check_op(TG_OP_TANH, 3, 0, &r);
    ck_assert_int_eq(r.n_runs, 2 * 3);
    ck_assert_int_eq(r.n_failed, 0);
    ck_assert(r.max_f32 > 0 && r.max_f32 <= 1);
    gc_check_op(TG_OP_MATMUL, 1, 0, &r);
    ck_assert_int_eq(r.n_runs, r.n_cases);
}
END_TEST

/* Every op has a name, formula and vector-Jacobian product line. */
START_TEST(test_table_complete)
{
    ck_assert_int_eq(tg_op_count(), TG_OP_COUNT);
    for (int op = 0; op < TG_OP_COUNT; op++) {
        ck_assert_str_ne(tg_op_name((enum tg_op)op), "?");
        ck_assert(strlen(tg_op_formula((enum tg_op)op)) > 0);
        ck_assert(strlen(tg_op_vjp((enum tg_op)op)) > 0);
    }
    ck_assert_str_eq(tg_op_name(TG_OP_COUNT), "?");
    ck_assert_str_eq(tg_op_name(TG_OP_NONE), "?");
}
END_TEST

static struct tg_tensor *leaf(double v)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

/* Hand-derived: y = sin(x^2) at x = 1.5: dy/dx = cos(2.25) * 3. */
START_TEST(test_fixed_chain_rule)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(1.5);
    struct tg_tensor *y = tg_sin(T, tg_mul(T, x, x));
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_item(y), sin(2.25), 1e-15);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 0), cos(2.25) * 3.0, 1e-15);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Hand-derived: f(a, b) = a*b + a/b - b^2 at a = 2, b = 4:
 * df/da = b + 1/b = 4.25; df/db = a - a/b^2 - 2b = 2 - 0.125 - 8 = -6.125. */
START_TEST(test_fixed_two_inputs)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = leaf(2), *b = leaf(4);
    struct tg_tensor *f =
        tg_sub(T, tg_add(T, tg_mul(T, a, b), tg_div(T, a, b)), tg_pow_scalar(T, b, 2));
    ck_assert_int_eq(tg_backward(f, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_item(f), 8 + 0.5 - 16);
    ck_assert_double_eq(tg_tensor_grad_get(a, 0), 4.25);
    ck_assert_double_eq(tg_tensor_grad_get(b, 0), -6.125);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* Broadcast backward sums over the broadcast axes: y = sum(a(2,3) * b(3)):
 * dy/db_j = sum_i a_ij. */
START_TEST(test_broadcast_reduces)
{
    struct tg_tape *T = tg_tape_new();
    double av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    struct tg_tensor *a = tg_tensor_from(TG_F64, 2, (int64_t[]){2, 3}, av);
    struct tg_tensor *b = tg_tensor_from(TG_F64, 1, (int64_t[]){3}, bv);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    struct tg_tensor *y = tg_sum(T, tg_mul(T, a, b));
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_item(y), 10 + 40 + 90 + 40 + 100 + 180);
    double want_b[3] = {5, 7, 9};
    for (int j = 0; j < 3; j++) ck_assert_double_eq(tg_tensor_grad_get(b, j), want_b[j]);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_grad_get(a, i), bv[i % 3]);
    /* (2,3,1) + (4): the result is (2,3,4) */
    struct tg_tensor *c = tg_tensor_zeros(TG_F64, 3, (int64_t[]){2, 3, 1});
    struct tg_tensor *d = tg_tensor_zeros(TG_F64, 1, (int64_t[]){4});
    struct tg_tensor *e = tg_add(T, c, d);
    ck_assert_int_eq(tg_tensor_rank(e), 3);
    ck_assert_int_eq(tg_tensor_dim(e, 2), 4);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
    tg_tensor_free(d);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_broadcast_error_message)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_zeros(TG_F32, 2, (int64_t[]){3, 4});
    struct tg_tensor *b = tg_tensor_zeros(TG_F32, 1, (int64_t[]){5});
    tg_clear_error();
    ck_assert_ptr_null(tg_add(T, a, b));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "add: shapes (3,4) and (5) cannot broadcast");
    /* NULL propagates and keeps the first cause */
    ck_assert_ptr_null(tg_exp(T, tg_add(T, a, b)));
    ck_assert_str_eq(tg_last_error(), "add: shapes (3,4) and (5) cannot broadcast");
    tg_clear_error();
    ck_assert_ptr_null(tg_mul(T, NULL, a));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_str_eq(tg_last_error(), "mul: input 1 is NULL");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_dtype_mismatch)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_scalar(TG_F32, 1), *b = tg_tensor_scalar(TG_F64, 2);
    ck_assert_ptr_null(tg_add(T, a, b));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_str_eq(tg_last_error(), "add: inputs have different dtypes (f32 and f64)");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* A node feeding several others: u = x*y; f = u*u + exp(u) + u.
 * df/dx = (2u + e^u + 1) * y. */
static struct tg_tensor *fanout_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    struct tg_tensor *u = tg_mul(T, x[0], x[1]);
    return tg_add(T, tg_add(T, tg_mul(T, u, u), tg_exp(T, u)), u);
}

START_TEST(test_fanout)
{
    struct tg_tensor *in[2] = {leaf(0.7), leaf(-1.3)};
    ck_assert_gradcheck(fanout_fn, in, 2, NULL, NULL);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *f = fanout_fn(T, in, 2, NULL);
    ck_assert_int_eq(tg_backward(f, NULL), TG_OK);
    double u = 0.7 * -1.3;
    ck_assert_double_eq_tol(tg_tensor_grad_get(in[0], 0), (2 * u + exp(u) + 1) * -1.3, 1e-14);
    ck_assert_double_eq_tol(tg_tensor_grad_get(in[1], 0), (2 * u + exp(u) + 1) * 0.7, 1e-14);
    tg_tape_free(T);
    tg_tensor_free(in[0]);
    tg_tensor_free(in[1]);
}
END_TEST

/* Tensor version of fan-out with broadcasting, on random shapes. */
static struct tg_tensor *fanout_tensor_fn(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                          void *c)
{
    struct tg_tensor *h = tg_tanh(T, tg_add(T, x[0], x[1])); /* (3,4) + (4) */
    struct tg_tensor *s = tg_sigmoid(T, h);
    return tg_sum(T, tg_mul(T, tg_add(T, h, s), tg_mul(T, h, x[1])));
}

START_TEST(test_fanout_tensor)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    struct tg_tensor *in[2] = {gc_rand(&rng, 2, (int64_t[]){3, 4}, -1, 1, true),
                               gc_rand(&rng, 1, (int64_t[]){4}, -1, 1, true)};
    ck_assert_gradcheck(fanout_tensor_fn, in, 2, NULL, NULL);
    tg_tensor_free(in[0]);
    tg_tensor_free(in[1]);
}
END_TEST

/* Scalar helpers: x + 1, 2.5 * x, 1 - x, x / 4, 3 / x, x - 2. */
START_TEST(test_scalar_operands)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2);
    ck_assert_double_eq(tg_tensor_item(tg_add_scalar(T, x, 1)), 3);
    ck_assert_double_eq(tg_tensor_item(tg_mul_scalar(T, x, 2.5)), 5);
    ck_assert_double_eq(tg_tensor_item(tg_rsub_scalar(T, 1, x)), -1);
    ck_assert_double_eq(tg_tensor_item(tg_div_scalar(T, x, 4)), 0.5);
    ck_assert_double_eq(tg_tensor_item(tg_rdiv_scalar(T, 3, x)), 1.5);
    ck_assert_double_eq(tg_tensor_item(tg_sub_scalar(T, x, 2)), 0);
    struct tg_tensor *y = tg_rdiv_scalar(T, 3, x); /* d(3/x)/dx = -3/x^2 */
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), -0.75);
    ck_assert_ptr_null(tg_div_scalar(T, x, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_mul_scalar(T, x, NAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Values at the edges: stable sigmoid/softplus at large |x|, ties of maximum. */
START_TEST(test_edge_values)
{
    struct tg_tape *T = tg_tape_new();
    double xv[4] = {-800, -30, 30, 800};
    struct tg_tensor *x = tg_tensor_from(TG_F64, 1, (int64_t[]){4}, xv);
    struct tg_tensor *s = tg_sigmoid(T, x), *p = tg_softplus(T, x);
    ck_assert_double_eq(tg_tensor_get(s, 0), 0);
    ck_assert_double_eq(tg_tensor_get(s, 3), 1);
    ck_assert_double_eq_tol(tg_tensor_get(p, 2), 30 + log1p(exp(-30)), 1e-12);
    ck_assert_double_eq(tg_tensor_get(p, 3), 800);
    ck_assert(isfinite(tg_tensor_get(p, 0)));
    struct tg_tensor *a = leaf(1), *b = leaf(1);
    ck_assert_int_eq(tg_backward(tg_maximum(T, a, b), NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(a, 0), 0.5);
    ck_assert_double_eq(tg_tensor_grad_get(b, 0), 0.5);
    tg_tensor_free(x);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* f32 runs too, and gradcheck promotes its numerics to f64. */
static struct tg_tensor *f32_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sum(T, tg_mul(T, tg_tanh(T, x[0]), tg_exp(T, x[0])));
}

START_TEST(test_f32_gradcheck)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 1, (int64_t[]){9}, &rng, -1, 1);
    tg_tensor_set_requires_grad(x, true);
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(f32_fn, &x, 1, NULL, NULL, &r), TG_OK);
    ck_assert(r.numeric_f64);
    tg_tensor_free(x);
}
END_TEST

/* A function that returns NULL and sets no error. */
static struct tg_tensor *silent_null_fn(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                        void *c)
{
    return NULL;
}

/* NULL on its first call only (the analytic side), then x * 2. */
static struct tg_tensor *first_null_fn(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    int *calls = c;
    return (*calls)++ ? tg_mul_scalar(T, x[0], 2) : NULL;
}

/* Both sides of tg_gradcheck treat a NULL from the function as an error that
 * says so: the analytic side used to pass it on as TG_OK, so with an empty input
 * (nothing to compare) the whole check passed. */
START_TEST(test_gradcheck_null_output)
{
    struct tg_tensor *x = leaf(0.5);
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(silent_null_fn, &x, 1, NULL, NULL, &r), TG_ERR_NULL);
    ck_assert_msg(strstr(r.message, "returned NULL"), "%s", r.message);
    ck_assert_msg(strstr(tg_last_error(), "tg_gradcheck"), "%s", tg_last_error());
    tg_tensor_free(x);
    struct tg_tensor *e = tg_tensor_zeros(TG_F64, 1, (int64_t[]){0});
    tg_tensor_set_requires_grad(e, true);
    int calls = 0;
    ck_assert_int_eq(tg_gradcheck(first_null_fn, &e, 1, &calls, NULL, &r), TG_ERR_NULL);
    ck_assert_int_eq(calls, 1);
    ck_assert(!r.passed);
    tg_tensor_free(e);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_table_complete);
    tcase_add_test(tc, test_case_checks);
    tcase_add_loop_test(tc, test_gradcheck_op, 0, TG_OP_COUNT);
    suite_add_tcase(s, tc);
    tc = tcase_create("fixed");
    tcase_add_test(tc, test_fixed_chain_rule);
    tcase_add_test(tc, test_fixed_two_inputs);
    tcase_add_test(tc, test_broadcast_reduces);
    tcase_add_test(tc, test_broadcast_error_message);
    tcase_add_test(tc, test_dtype_mismatch);
    tcase_add_test(tc, test_fanout);
    tcase_add_test(tc, test_fanout_tensor);
    tcase_add_test(tc, test_scalar_operands);
    tcase_add_test(tc, test_edge_values);
    tcase_add_test(tc, test_f32_gradcheck);
    tcase_add_test(tc, test_gradcheck_null_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(ops_suite());
}
