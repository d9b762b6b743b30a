/*
 * tests/check_detach.c - tg_detach (ops/detach.c): the value is shared, not
 * copied; no gradient passes, in first order (tg_backward), in higher order
 * (tg_grad with create_graph) and in what tg_jacobian and tg_gradcheck see; and
 * truncated backpropagation through time, the use it was made for.
 *
 * Expected values are closed-form derivatives of the small functions below.
 * (Bad input - NULL, stale, another tape's node - is in tests/check_badinput.c.)
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *vec(const double *v, int64_t n, bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, 1, &n, v);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* The result's buffer is x's (leaf, node, rank 0, f32), and a later write to x
 * shows through it; its shape and dtype are x's. */
START_TEST(test_value_shared)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_full(TG_F32, 2, (int64_t[]){2, 3}, 1.5);
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, -2.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *d = tg_detach(T, x), *ds = tg_detach(T, s);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(ds);
    ck_assert_ptr_eq(tg_tensor_data(d), tg_tensor_data(x));
    ck_assert_ptr_eq(tg_tensor_data(ds), tg_tensor_data(s));
    ck_assert_int_eq(tg_tensor_dtype(d), TG_F32);
    ck_assert_int_eq(tg_tensor_rank(d), 2);
    ck_assert_int_eq(tg_tensor_shape(d)[0], 2);
    ck_assert_int_eq(tg_tensor_shape(d)[1], 3);
    ck_assert_int_eq(tg_tensor_rank(ds), 0);
    ck_assert_int_eq(tg_tensor_op(d), TG_OP_DETACH);
    ck_assert_int_eq(tg_tensor_n_inputs(d), 1);
    ck_assert_ptr_eq(tg_tensor_input(d, 0), x);
    ck_assert(!tg_tensor_is_leaf(d));
    /* aliasing: x changes, the detached node reads the new value */
    ck_assert_int_eq(tg_tensor_set(x, 4, 7.0), TG_OK);
    ck_assert_double_eq(tg_tensor_get(d, 4), 7.0);
    ck_assert_int_eq(tg_tensor_set(s, 0, 3.0), TG_OK);
    ck_assert_double_eq(tg_tensor_item(ds), 3.0);
    /* ... but a value computed from it before the change keeps the old one */
    struct tg_tensor *y = tg_mul_scalar(T, d, 2.0);
    ck_assert_int_eq(tg_tensor_set(x, 4, 1.0), TG_OK);
    ck_assert_double_eq(tg_tensor_get(y, 4), 14.0);
    /* a node detached: the same buffer as the node's */
    struct tg_tensor *n = tg_tanh(T, x), *dn = tg_detach(T, n);
    ck_assert_ptr_eq(tg_tensor_data(dn), tg_tensor_data(n));
    ck_assert_double_eq(tg_tensor_get(dn, 0), tanhf(1.5f));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(s);
}
END_TEST

/* L = sum(x^2 + w * detach(x)^3): dL/dx = 2x only; the detached node requires
 * no grad and gets none; w still gets detach(x)^3. */
START_TEST(test_gradient_stops)
{
    const double xv[3] = {0.5, -1.0, 2.0}, wv[3] = {1.0, 2.0, -3.0};
    struct tg_tensor *x = vec(xv, 3, true), *w = vec(wv, 3, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *d = tg_detach(T, x);
    struct tg_tensor *L =
        tg_sum(T, tg_add(T, tg_mul(T, x, x), tg_mul(T, w, tg_pow_scalar(T, d, 3))));
    ck_assert_ptr_nonnull(L);
    ck_assert(!tg_tensor_requires_grad(d));
    ck_assert(tg_tensor_requires_grad(L));
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), 2 * xv[i], 1e-15);
        ck_assert_double_eq_tol(tg_tensor_grad_get(w, i), pow(xv[i], 3), 1e-15);
    }
    ck_assert_ptr_null(tg_tensor_grad(d));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(w);
}
END_TEST

/* The stop holds for everything upstream: z = tanh(a * x); L = sum(z + detach(z)
 * * z) gives dL/da = sum((1 + z) (1 - z^2) x), not the (1 + 2z) of no detach. A
 * loss that reaches the parameters only through detach cannot be
 * differentiated. */
START_TEST(test_gradient_stops_upstream)
{
    const double xv[3] = {0.3, -0.8, 1.1};
    struct tg_tensor *x = vec(xv, 3, false), *a = tg_tensor_scalar(TG_F64, 0.7);
    tg_tensor_set_requires_grad(a, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *z = tg_tanh(T, tg_mul(T, a, x));
    struct tg_tensor *L = tg_sum(T, tg_add(T, z, tg_mul(T, tg_detach(T, z), z)));
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    double want = 0;
    for (int i = 0; i < 3; i++) {
        double zi = tanh(0.7 * xv[i]);
        want += (1 + zi) * (1 - zi * zi) * xv[i];
    }
    ck_assert_double_eq_tol(tg_tensor_grad_get(a, 0), want, 1e-14);
    struct tg_tensor *only = tg_sum(T, tg_detach(T, z));
    ck_assert_ptr_nonnull(only);
    ck_assert(!tg_tensor_requires_grad(only));
    ck_assert_int_eq(tg_backward(only, NULL), TG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "needs no gradient"));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(a);
}
END_TEST

/* Second order: f = sum(x * detach(x) * x) = sum(x^2 c) with c = x held
 * constant; df/dx = 2 x c = 2x^2 (value), d2f/dx2 (as a Hessian-vector product
 * with v) = 2 c v = 2 x v, not the 6 x v of sum(x^3). */
START_TEST(test_second_order)
{
    const double xv[3] = {0.5, -1.5, 2.0}, vv[3] = {1.0, -2.0, 0.5};
    struct tg_tensor *x = vec(xv, 3, true), *v = vec(vv, 3, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *f = tg_sum(T, tg_mul(T, tg_mul(T, x, tg_detach(T, x)), x));
    struct tg_tensor *g = NULL, *h = NULL;
    const struct tg_grad_options create = {.create_graph = true};
    ck_assert_int_eq(tg_grad(1, &f, NULL, 1, &x, &create, &g), TG_OK);
    ck_assert(tg_tensor_requires_grad(g));
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(tg_tensor_get(g, i), 2 * xv[i] * xv[i], 1e-15);
    struct tg_tensor *gv = tg_sum(T, tg_mul(T, g, v));
    ck_assert_int_eq(tg_grad(1, &gv, NULL, 1, &x, NULL, &h), TG_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(tg_tensor_get(h, i), 2 * xv[i] * vv[i], 1e-15);
    /* the first-order gradient through detach alone: x is not on the graph */
    struct tg_tensor *k = tg_sum(T, tg_mul(T, tg_detach(T, x), v)), *gk = NULL;
    ck_assert_ptr_nonnull(k);
    ck_assert_int_ne(tg_grad(1, &k, NULL, 1, &x, NULL, &gk), TG_OK);
    ck_assert_ptr_null(gk);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(v);
}
END_TEST

/* y = concat(3 x, detach(x) * 5, x * detach(x)): tg_jacobian gives blocks 3I,
 * 0 and diag(x) (the product rule with one factor held). */
static struct tg_tensor *three_blocks(struct tg_tape *T, struct tg_tensor *const *in, int n,
                                      void *ctx)
{
    (void)n;
    (void)ctx;
    struct tg_tensor *x = in[0], *d = tg_detach(T, x);
    struct tg_tensor *parts[3] = {tg_mul_scalar(T, x, 3), tg_mul_scalar(T, d, 5), tg_mul(T, x, d)};
    return tg_concat(T, 3, parts, 0);
}

START_TEST(test_jacobian_zero_block)
{
    const double xv[3] = {0.5, -1.5, 2.0};
    struct tg_tensor *x = vec(xv, 3, true), *J = NULL;
    ck_assert_int_eq(tg_jacobian(three_blocks, NULL, x, &J, NULL), TG_OK);
    ck_assert_int_eq(tg_tensor_shape(J)[0], 9);
    ck_assert_int_eq(tg_tensor_shape(J)[1], 3);
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 3; c++) {
            double want = r < 3 ? (r == c ? 3 : 0) : r < 6 ? 0 : (r - 6 == c ? xv[c] : 0);
            ck_assert_double_eq(tg_tensor_get(J, r * 3 + c), want);
        }
    tg_tensor_free(J);
    tg_tensor_free(x);
}
END_TEST

/* f = sum(a x + w detach(x)): tg_gradcheck compares backward's a (detach
 * contributes the zero block) with the central difference a + w, which moves
 * the detached x too, and reports the mismatch. */
static struct tg_tensor *ax_plus_w_detach(struct tg_tape *T, struct tg_tensor *const *in, int n,
                                          void *ctx)
{
    (void)n;
    (void)ctx;
    return tg_sum(T, tg_add(T, tg_mul(T, in[1], in[0]), tg_mul(T, in[2], tg_detach(T, in[0]))));
}

START_TEST(test_gradcheck_sees_zero_block)
{
    const double xv[2] = {0.5, -1.5}, av[2] = {2.0, 3.0}, wv[2] = {0.25, -4.0};
    struct tg_tensor *in[3] = {vec(xv, 2, true), vec(av, 2, false), vec(wv, 2, false)};
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(ax_plus_w_detach, in, 3, NULL, NULL, &r), TG_ERR_GRADCHECK);
    ck_assert(!r.passed);
    ck_assert_int_eq(r.n_failed, 2);
    ck_assert_int_eq(r.worst_input, 0);
    ck_assert_int_eq(r.worst_index, 1); /* |w| = 4 */
    ck_assert_double_eq_tol(r.analytic, av[1], 1e-12);
    ck_assert_double_eq_tol(r.numeric, av[1] + wv[1], 1e-6);
    /* with w = 0 the detached term is constant and the check passes */
    tg_tensor_set(in[2], 0, 0.0);
    tg_tensor_set(in[2], 1, 0.0);
    ck_assert_int_eq(tg_gradcheck(ax_plus_w_detach, in, 3, NULL, NULL, &r), TG_OK);
    for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
}
END_TEST

/* Truncated BPTT on one tape: h1 = tanh(w h0 + x1), L1 = h1^2; then with the
 * state detached, h2 = tanh(w detach(h1) + x2), L2 = h2^2. Backward from L2
 * gives dL2/dw = 2 h2 (1 - h2^2) h1 (one step, h1 held), where the full
 * gradient would add the path through h1; and it leaves the first chunk's
 * nodes alone. */
START_TEST(test_truncated_bptt)
{
    const double h0 = 0.4, x1 = 0.3, x2 = -0.6, wv = 1.3;
    struct tg_tensor *w = tg_tensor_scalar(TG_F64, wv), *hz = tg_tensor_scalar(TG_F64, h0);
    struct tg_tensor *xa = tg_tensor_scalar(TG_F64, x1), *xb = tg_tensor_scalar(TG_F64, x2);
    tg_tensor_set_requires_grad(w, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h1 = tg_tanh(T, tg_add(T, tg_mul(T, w, hz), xa));
    struct tg_tensor *L1 = tg_mul(T, h1, h1);
    ck_assert_int_eq(tg_backward(L1, NULL), TG_OK);
    double h1v = tanh(wv * h0 + x1);
    double g1 = 2 * h1v * (1 - h1v * h1v) * h0;
    ck_assert_double_eq_tol(tg_tensor_grad_get(w, 0), g1, 1e-15);
    tg_tensor_zero_grad(w);
    struct tg_tensor *h2 = tg_tanh(T, tg_add(T, tg_mul(T, w, tg_detach(T, h1)), xb));
    struct tg_tensor *L2 = tg_mul(T, h2, h2);
    ck_assert_int_eq(tg_backward(L2, NULL), TG_OK);
    double h2v = tanh(wv * h1v + x2);
    ck_assert_double_eq_tol(tg_tensor_grad_get(w, 0), 2 * h2v * (1 - h2v * h2v) * h1v, 1e-15);
    /* the first chunk was not swept again: h1's gradient is the old sweep's */
    ck_assert_ptr_null(tg_tensor_grad(h1));
    tg_tape_free(T);
    tg_tensor_free(w);
    tg_tensor_free(hz);
    tg_tensor_free(xa);
    tg_tensor_free(xb);
}
END_TEST

/* In a DOT picture the edge into detach is dashed and carries the local
 * derivative 0 (scalar graph) or says that no gradient comes back (tensors). */
START_TEST(test_dot_shows_detach)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 2.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_mul(T, x, tg_detach(T, x));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_graph_dot(y, f, NULL), TG_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "detach"));
    ck_assert_ptr_nonnull(strstr(buf, " = 0\", style=dashed]")); /* the local derivative */
    free(buf);
    /* tensors: the edge says that no gradient comes back */
    struct tg_tensor *v = tg_tensor_full(TG_F64, 1, (int64_t[]){3}, 1.0);
    tg_tensor_set_requires_grad(v, true);
    struct tg_tensor *z = tg_mul(T, v, tg_detach(T, v));
    f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_graph_dot(z, f, NULL), TG_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "no gradient (stopped)\", style=dashed]"));
    free(buf);
    tg_tensor_free(v);
    ck_assert_str_eq(tg_op_name(TG_OP_DETACH), "detach");
    ck_assert_int_eq(tg_op_arity(TG_OP_DETACH), 1);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Anomaly mode checks a detached value like any op result (its input NaN named). */
START_TEST(test_anomaly)
{
    struct tg_tensor *x = tg_tensor_full(TG_F64, 1, (int64_t[]){3}, 1.0);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set(x, 1, NAN);
    struct tg_tape *T = tg_tape_new();
    tg_tape_set_anomaly(T, true);
    ck_assert_ptr_null(tg_detach(T, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "detach"));
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static Suite *detach_suite(void)
{
    Suite *s = suite_create("detach");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_value_shared);
    tcase_add_test(tc, test_gradient_stops);
    tcase_add_test(tc, test_gradient_stops_upstream);
    tcase_add_test(tc, test_second_order);
    tcase_add_test(tc, test_jacobian_zero_block);
    tcase_add_test(tc, test_gradcheck_sees_zero_block);
    tcase_add_test(tc, test_truncated_bptt);
    tcase_add_test(tc, test_dot_shows_detach);
    tcase_add_test(tc, test_anomaly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(detach_suite());
}
