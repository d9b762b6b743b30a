/*
 * tests/check_grad.c - tg_grad: gradients as tensors of the tape, and their
 * derivatives to any order.
 *
 * These tests use the tests' own ops (grad_testops.c), whose VJPs are recorded
 * in ops of the same family, so they test the engine's sweep apart from the op
 * table's VJPs (which tests/check_ops2.c checks op by op). Expected values come
 * from closed-form derivatives, and first-order results from tg_backward.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include <tapegrad/check.h>
#include "grad_testops.h"

static const struct tg_grad_options create = {.create_graph = true};

static struct tg_tensor *vec(const double *v, int64_t n, bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, 1, &n, v);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* L = sum(x * sin(x)): tg_grad equals tg_backward, without touching x's grad. */
START_TEST(test_first_order_matches_backward)
{
    const double xv[4] = {0.3, -1.2, 2.0, 0.0};
    struct tg_tensor *x = vec(xv, 4, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *L = t_sum(T, t_mul(T, x, t_sin(T, x)));
    ck_assert_ptr_nonnull(L);
    uint64_t version = tg_tensor_grad_version(x);
    struct tg_tensor *g = NULL;
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, NULL, &g), TG_OK);
    ck_assert_ptr_nonnull(g);
    ck_assert(!tg_tensor_requires_grad(g)); /* without create_graph */
    ck_assert_int_eq(tg_tensor_grad_version(x), version);
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    for (int i = 0; i < 4; i++) {
        double want = sin(xv[i]) + xv[i] * cos(xv[i]);
        ck_assert_double_eq_tol(tg_tensor_get(g, i), want, 1e-14);
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), want, 1e-14);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* f = x^3 sin x at x = 0.7: f', f'' and f''' by tg_grad of tg_grad. */
START_TEST(test_third_order_scalar)
{
    const double a = 0.7;
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, a);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *f = t_mul(T, t_mul(T, t_mul(T, x, x), x), t_sin(T, x));
    struct tg_tensor *d1, *d2, *d3;
    ck_assert_int_eq(tg_grad(1, &f, NULL, 1, &x, &create, &d1), TG_OK);
    ck_assert(tg_tensor_requires_grad(d1));
    ck_assert_int_eq(tg_grad(1, &d1, NULL, 1, &x, &create, &d2), TG_OK);
    ck_assert_int_eq(tg_grad(1, &d2, NULL, 1, &x, NULL, &d3), TG_OK);
    double s = sin(a), c = cos(a);
    ck_assert_double_eq_tol(tg_tensor_item(d1), 3 * a * a * s + a * a * a * c, 1e-14);
    ck_assert_double_eq_tol(tg_tensor_item(d2), 6 * a * s + 6 * a * a * c - a * a * a * s, 1e-13);
    ck_assert_double_eq_tol(tg_tensor_item(d3), 6 * s + 18 * a * c - 9 * a * a * s - a * a * a * c,
                            1e-13);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0); /* no leaf gradient was touched */
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* A gradient penalty: L = sum sin(x)^2, g = dL/dx = sin 2x, P = sum g^2;
 * tg_backward(P) gives dP/dx = 2 sin 4x through the recorded backward pass. */
START_TEST(test_penalty_backward)
{
    const double xv[3] = {0.4, -0.9, 1.7};
    struct tg_tensor *x = vec(xv, 3, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *s = t_sin(T, x);
    struct tg_tensor *L = t_sum(T, t_mul(T, s, s)), *g;
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, &create, &g), TG_OK);
    struct tg_tensor *P = t_sum(T, t_mul(T, g, g));
    ck_assert_int_eq(tg_backward(P, NULL), TG_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(g, i), sin(2 * xv[i]), 1e-14);
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), 2 * sin(4 * xv[i]), 1e-13);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* The gradient with respect to a node (h = sin x inside L = sum h*h) is 2h, and
 * differentiating it again with respect to x gives 2 cos x. */
START_TEST(test_node_input)
{
    const double xv[2] = {0.5, 2.5};
    struct tg_tensor *x = vec(xv, 2, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = t_sin(T, x);
    struct tg_tensor *L = t_sum(T, t_mul(T, h, h)), *gh, *gx;
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &h, &create, &gh), TG_OK);
    struct tg_tensor *S = t_sum(T, gh);
    ck_assert_int_eq(tg_grad(1, &S, NULL, 1, &x, NULL, &gx), TG_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(gh, i), 2 * sin(xv[i]), 1e-14);
        ck_assert_double_eq_tol(tg_tensor_get(gx, i), 2 * cos(xv[i]), 1e-14);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Two outputs with seeds, two inputs: y1 = a*b (seed u), y2 = sin a (seed 1). */
START_TEST(test_outputs_and_seeds)
{
    const double av[2] = {0.2, 1.1}, bv[2] = {3.0, -2.0}, uv[2] = {0.5, -4.0};
    struct tg_tensor *a = vec(av, 2, true), *b = vec(bv, 2, true), *u = vec(uv, 2, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y[2] = {t_mul(T, a, b), t_sum(T, t_sin(T, a))};
    struct tg_tensor *seeds[2] = {u, NULL}, *in[2] = {a, b}, *g[2];
    ck_assert_int_eq(tg_grad(2, y, seeds, 2, in, NULL, g), TG_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(g[0], i), uv[i] * bv[i] + cos(av[i]), 1e-14);
        ck_assert_double_eq_tol(tg_tensor_get(g[1], i), uv[i] * av[i], 1e-14);
    }
    /* outputs listed newest first give the same */
    struct tg_tensor *y2[2] = {y[1], y[0]}, *seeds2[2] = {NULL, u}, *h[2];
    ck_assert_int_eq(tg_grad(2, y2, seeds2, 2, in, NULL, h), TG_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_eq(tg_tensor_get(h[0], i), tg_tensor_get(g[0], i));
        ck_assert_double_eq(tg_tensor_get(h[1], i), tg_tensor_get(g[1], i));
    }
    tg_tape_free(T);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(u);
}
END_TEST

/* A seed that requires grad is tracked: g = v * cos x, then dg.w/dv = w cos x
 * (the transpose of a VJP, how a JVP can be built). An output that is an input
 * returns its seed, as a tensor of the tape that still depends on the seed. */
START_TEST(test_seed_requires_grad)
{
    const double xv[2] = {0.3, 1.3}, vv[2] = {2.0, -1.0}, wv[2] = {0.25, 3.0};
    struct tg_tensor *x = vec(xv, 2, true), *v = vec(vv, 2, true), *w = vec(wv, 2, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = t_sin(T, x), *g, *gv, *same;
    ck_assert_int_eq(tg_grad(1, &y, &v, 1, &x, &create, &g), TG_OK);
    ck_assert_int_eq(tg_grad(1, &g, &w, 1, &v, NULL, &gv), TG_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(g, i), vv[i] * cos(xv[i]), 1e-15);
        ck_assert_double_eq_tol(tg_tensor_get(gv, i), wv[i] * cos(xv[i]), 1e-15);
    }
    ck_assert_int_eq(tg_grad(1, &y, &v, 1, &y, &create, &same), TG_OK);
    ck_assert_ptr_ne(same, v); /* a tensor of the tape, not the caller's leaf */
    ck_assert(tg_tensor_requires_grad(same));
    ck_assert_double_eq(tg_tensor_get(same, 1), vv[1]);
    ck_assert_int_eq(tg_grad(1, &y, &v, 1, &y, NULL, &same), TG_OK);
    ck_assert(!tg_tensor_requires_grad(same));
    ck_assert_double_eq(tg_tensor_get(same, 0), vv[0]);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tensor_free(w);
}
END_TEST

/* The second derivative of a function linear in x is a zero constant; an unused
 * input is an error naming it, or zeros with allow_unused. */
START_TEST(test_unused_and_zero)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 2.0), *z = tg_tensor_scalar(TG_F64, 5.0);
    struct tg_tensor *c = tg_tensor_scalar(TG_F64, 3.0);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(z, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = t_mul(T, x, c), *in[2] = {x, z}, *g[2] = {NULL, NULL}, *d2;
    ck_assert_int_eq(tg_grad(1, &y, NULL, 2, in, &create, g), TG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "input 1 is not on the graph"));
    ck_assert_ptr_null(g[0]);
    struct tg_grad_options o = {.create_graph = true, .allow_unused = true};
    ck_assert_int_eq(tg_grad(1, &y, NULL, 2, in, &o, g), TG_OK);
    ck_assert_double_eq(tg_tensor_item(g[0]), 3.0);
    ck_assert_double_eq(tg_tensor_item(g[1]), 0.0);
    ck_assert(!tg_tensor_requires_grad(g[0])); /* 3, a constant: depends on no input */
    ck_assert_int_eq(tg_grad(1, &g[0], NULL, 1, &x, &o, &d2), TG_OK);
    ck_assert_double_eq(tg_tensor_item(d2), 0.0);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(z);
    tg_tensor_free(c);
}
END_TEST

/* An op without a vjp_graph on the way is an error naming it, raised before
 * anything is recorded; one off the way (not depending on the inputs) is fine. */
START_TEST(test_no_vjp)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 0.5), *c = tg_tensor_scalar(TG_F64, 3.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = t_sin(T, t_novjp(T, x)), *g = NULL;
    struct tg_tape_stats before, after;
    tg_tape_stats(T, &before);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, NULL, &g), TG_ERR_STATE);
    ck_assert_str_eq(tg_last_error(), "tg_grad: op t_novjp has no differentiable VJP yet");
    tg_tape_stats(T, &after);
    ck_assert_uint_eq(after.n_nodes, before.n_nodes);
    ck_assert_ptr_null(g);
    struct tg_tensor *y2 = t_mul(T, t_novjp(T, c), x);
    ck_assert_int_eq(tg_grad(1, &y2, NULL, 1, &x, NULL, &g), TG_OK);
    ck_assert_double_eq(tg_tensor_item(g), 6.0);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(c);
}
END_TEST

/* f32 works like f64; repeated inputs (x*x) and a node used twice accumulate. */
START_TEST(test_f32_and_accumulation)
{
    struct tg_tensor *x = tg_tensor_full(TG_F32, 1, (int64_t[]){3}, 1.5);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *s = t_mul(T, x, x); /* x^2 */
    struct tg_tensor *L = t_sum(T, t_mul(T, s, s)), *g, *h;
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, &create, &g), TG_OK); /* 4x^3 */
    ck_assert_int_eq(tg_tensor_dtype(g), TG_F32);
    struct tg_tensor *S = t_sum(T, g);
    ck_assert_int_eq(tg_grad(1, &S, NULL, 1, &x, NULL, &h), TG_OK); /* 12x^2 */
    ck_assert_float_eq_tol(tg_tensor_get(g, 2), 4 * 1.5 * 1.5 * 1.5, 1e-5);
    ck_assert_float_eq_tol(tg_tensor_get(h, 0), 12 * 1.5 * 1.5, 1e-5);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Anomaly mode checks the recorded backward pass like any op: d/dx sqrt-like
 * blow-ups are not available here, so a NaN input's cos is used instead. */
START_TEST(test_anomaly)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, NAN), *g = NULL;
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = t_sin(T, x); /* NaN, recorded before anomaly mode */
    ck_assert_int_eq(tg_tape_set_anomaly(T, true), TG_OK);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, NULL, &g), TG_ERR_NUMERIC);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(tg_tape_set_anomaly(T, false), TG_OK);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, NULL, &g), TG_OK);
    ck_assert(isnan(tg_tensor_item(g)));
    ck_assert(tg_tape_grad_enabled(T)); /* the no-grad scope of the sweep was closed */
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* A long scalar chain: no recursion, and linear cost. */
START_TEST(test_long_chain)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 0.1), *g;
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = x;
    for (int i = 0; i < 100000; i++) y = t_neg(T, y);
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &x, NULL, &g), TG_OK);
    ck_assert_double_eq(tg_tensor_item(g), 1.0);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* ---- tg_gradgradcheck ---- */

/* sum(a * sin(a * b)): mixed second partials, one output element */
static struct tg_tensor *fn_mixed(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_sum(T, t_mul(T, in[0], t_sin(T, t_mul(T, in[0], in[1]))));
}
/* cos(a) * b elementwise: a vector output (projected) */
static struct tg_tensor *fn_vector(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_mul(T, t_cos(T, in[0]), in[1]);
}
static struct tg_tensor *fn_flat(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_sum(T, t_sin_flat(T, t_mul(T, in[0], in[0])));
}
static struct tg_tensor *fn_novjp(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_sum(T, t_novjp(T, t_mul(T, in[0], in[0])));
}

START_TEST(test_gradgradcheck_passes)
{
    const double av[3] = {0.3, -0.8, 1.4}, bv[3] = {1.1, 0.6, -2.0};
    struct tg_tensor *in[2] = {vec(av, 3, true), vec(bv, 3, true)};
    ck_assert_gradgradcheck(fn_mixed, in, 2, NULL, NULL);
    ck_assert_gradgradcheck(fn_vector, in, 2, NULL, NULL);
    struct tg_gradcheck_report rep;
    tg_tensor_set_requires_grad(in[1], false); /* only a's elements are checked */
    ck_assert_int_eq(tg_gradgradcheck(fn_mixed, in, 2, NULL, NULL, &rep), TG_OK);
    ck_assert(rep.passed);
    ck_assert_int_eq(rep.n_checked, 3);
    ck_assert(rep.numeric_f64);
    ck_assert_double_eq(tg_tensor_get(in[0], 1), av[1]); /* values restored */
    ck_assert_double_eq(tg_tensor_grad_get(in[0], 1), 0);
    /* f32 inputs: numerics on f64 copies, f32 tolerances */
    struct tg_tensor *f[2] = {tg_tensor_to(in[0], TG_F32), tg_tensor_to(in[1], TG_F32)};
    tg_tensor_set_requires_grad(f[0], true);
    tg_tensor_set_requires_grad(f[1], true);
    ck_assert_gradgradcheck(fn_mixed, f, 2, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        tg_tensor_free(in[i]);
        tg_tensor_free(f[i]);
    }
}
END_TEST

/* A VJP right to first order but not differentiable (a value captured as a
 * constant) fails the second-order check; an op without a VJP is an error. */
START_TEST(test_gradgradcheck_fails)
{
    const double av[2] = {0.5, 1.2};
    struct tg_tensor *x = vec(av, 2, true);
    struct tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(fn_flat, &x, 1, NULL, NULL, &rep), TG_OK);
    ck_assert_int_eq(tg_gradgradcheck(fn_flat, &x, 1, NULL, NULL, &rep), TG_ERR_GRADCHECK);
    ck_assert(!rep.passed);
    ck_assert_int_eq(rep.n_failed, 2);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_gradgradcheck"));
    ck_assert_int_eq(tg_gradgradcheck(fn_novjp, &x, 1, NULL, NULL, &rep), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(rep.message, "t_novjp has no differentiable VJP"));
    tg_tensor_free(x);
}
END_TEST

/* ---- tg_hvp, tg_hessian ---- */

/* L = sum(x * sin y): H_xx = 0, H_xy = diag(cos y), H_yy = diag(-x sin y). */
START_TEST(test_hvp)
{
    const double xv[3] = {0.7, -1.5, 2.2}, yv[3] = {0.1, 1.9, -0.6};
    const double vx[3] = {1.0, -2.0, 0.5}, vy[3] = {0.3, 0.8, -1.1};
    struct tg_tensor *x = vec(xv, 3, true), *y = vec(yv, 3, true);
    struct tg_tensor *v[2] = {vec(vx, 3, false), vec(vy, 3, false)};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *L = t_sum(T, t_mul(T, x, t_sin(T, y))), *in[2] = {x, y}, *hv[2];
    ck_assert_int_eq(tg_hvp(L, 2, in, v, NULL, hv), TG_OK);
    ck_assert(!tg_tensor_requires_grad(hv[0]));
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(hv[0], i), cos(yv[i]) * vy[i], 1e-14);
        ck_assert_double_eq_tol(tg_tensor_get(hv[1], i),
                                cos(yv[i]) * vx[i] - xv[i] * sin(yv[i]) * vy[i], 1e-14);
    }
    /* the same inside a no-grad scope (the first gradient is still a graph) */
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    ck_assert_int_eq(tg_hvp(L, 2, in, v, NULL, hv), TG_OK);
    ck_assert_int_eq(tg_tape_no_grad_pop(T), TG_OK);
    ck_assert(tg_tape_grad_enabled(T));
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(tg_tensor_get(hv[1], i),
                                cos(yv[i]) * vx[i] - xv[i] * sin(yv[i]) * vy[i], 1e-14);
    /* with respect to x alone: H_xx v = 0 (L is linear in x) */
    ck_assert_int_eq(tg_hvp(L, 1, &x, v, NULL, hv), TG_OK);
    ck_assert_double_eq(tg_tensor_get(hv[0], 2), 0);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0); /* leaves untouched */
    /* a v of the wrong shape names tg_hvp */
    struct tg_tensor *bad[2] = {y, vec(vx, 2, false)};
    ck_assert_int_eq(tg_hvp(L, 2, in, bad, NULL, hv), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_hvp: v 1 has shape (2)"));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(v[0]);
    tg_tensor_free(v[1]);
    tg_tensor_free(bad[1]);
}
END_TEST

/* tg_hvp with create_graph is differentiable again: L = sum x^4, H v = 12 x^2 v,
 * and d(sum H v)/dx = 24 x v (third order). */
START_TEST(test_hvp_third_order)
{
    const double xv[2] = {0.5, -1.5}, vv[2] = {2.0, 0.25};
    struct tg_tensor *x = vec(xv, 2, true), *v = vec(vv, 2, false), *hv, *d3;
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x2 = t_mul(T, x, x);
    struct tg_tensor *L = t_sum(T, t_mul(T, x2, x2));
    ck_assert_int_eq(tg_hvp(L, 1, &x, &v, &create, &hv), TG_OK);
    ck_assert(tg_tensor_requires_grad(hv));
    struct tg_tensor *S = t_sum(T, hv);
    ck_assert_int_eq(tg_grad(1, &S, NULL, 1, &x, NULL, &d3), TG_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_double_eq_tol(tg_tensor_get(hv, i), 12 * xv[i] * xv[i] * vv[i], 1e-13);
        ck_assert_double_eq_tol(tg_tensor_get(d3, i), 24 * xv[i] * vv[i], 1e-13);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(v);
}
END_TEST

static struct tg_tensor *fn_xsinx(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_sum(T, t_mul(T, in[0], t_sin(T, in[0])));
}
static struct tg_tensor *fn_sum_sq(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    struct tg_tensor *s = t_sum(T, in[0]);
    return t_mul(T, s, s);
}

static struct tg_tensor *fn_sin(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    return t_sin(T, in[0]);
}

START_TEST(test_hessian)
{
    const double xv[4] = {0.2, -0.9, 1.6, 3.0};
    struct tg_tensor *x = vec(xv, 4, false), *H;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_hessian(fn_xsinx, NULL, x, &H, &info), TG_OK);
    ck_assert_int_eq(tg_tensor_rank(H), 2);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    ck_assert_int_eq(info.n_sweeps, 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_double_eq_tol(tg_tensor_get(H, i * 4 + j),
                                    i == j ? 2 * cos(xv[i]) - xv[i] * sin(xv[i]) : 0, 1e-14);
    tg_tensor_free(H);
    ck_assert_int_eq(tg_hessian(fn_sum_sq, NULL, x, &H, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DENSE);
    ck_assert_double_eq(tg_tensor_get(H, 7), 2.0);
    tg_tensor_free(H);
    /* too large: an error naming the size, before any allocation */
    struct tg_tensor *big = tg_tensor_zeros(TG_F64, 1, (int64_t[]){5000});
    H = x;
    ck_assert_int_eq(tg_hessian(fn_sum_sq, NULL, big, &H, NULL), TG_ERR_RANGE);
    ck_assert_ptr_null(H);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "5000 elements"));
    /* a vector output */
    ck_assert_int_eq(tg_hessian(fn_sin, NULL, x, &H, NULL), TG_ERR_SHAPE);
    tg_tensor_free(big);
    tg_tensor_free(x);
}
END_TEST

/* A requested node with a long recording before it (the walk must still collect
 * every node up to the newest output: the request is not where it stops). */
START_TEST(test_node_input_after_chain)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 0.25), *g;
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = x;
    for (int i = 0; i < 20000; i++) h = t_neg(T, h);
    struct tg_tensor *L = t_mul(T, t_sin(T, h), h);
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &h, NULL, &g), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_item(g), 0.25 * cos(0.25) + sin(0.25), 1e-15);
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, NULL, &g), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_item(g), 0.25 * cos(0.25) + sin(0.25), 1e-15);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static Suite *grad_suite(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("grad");
    tcase_add_test(tc, test_first_order_matches_backward);
    tcase_add_test(tc, test_third_order_scalar);
    tcase_add_test(tc, test_penalty_backward);
    tcase_add_test(tc, test_node_input);
    tcase_add_test(tc, test_node_input_after_chain);
    tcase_add_test(tc, test_outputs_and_seeds);
    tcase_add_test(tc, test_seed_requires_grad);
    tcase_add_test(tc, test_unused_and_zero);
    tcase_add_test(tc, test_no_vjp);
    tcase_add_test(tc, test_f32_and_accumulation);
    tcase_add_test(tc, test_anomaly);
    tcase_add_test(tc, test_long_chain);
    tcase_add_test(tc, test_gradgradcheck_passes);
    tcase_add_test(tc, test_gradgradcheck_fails);
    tcase_add_test(tc, test_hvp);
    tcase_add_test(tc, test_hvp_third_order);
    tcase_add_test(tc, test_hessian);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(grad_suite());
}
