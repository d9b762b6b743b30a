/*
 * tests/check_ops2.c - the op table to second order: every op's differentiable
 * VJP (desc->vjp_graph) checked by tg_gradgradcheck in f64 on the op's
 * gradient-check cases (gradcases/), and on rank-0 inputs for the elementwise
 * family (the scalar record path). An op without a vjp_graph fails, except
 * those of ops_without_vjp_yet below, which must be exactly the ops without one.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/check.h>
#include "gradcases.h"
#include "vjp_table.h"

enum { REPEATS = 2 };

/* The ops whose descriptors have no vjp_graph yet (issue 12 is adding them).
 * This list may only shrink: test_vjp_list fails when an op listed here has a
 * vjp_graph (remove it from the list) and when an op without one is not listed.
 * Empty it when every op has its VJP. */
static const enum tg_op ops_without_vjp_yet[] = {
    TG_OP_NONE, /* none left (ho-ops-b): TG_OP_NONE only keeps the array non-empty */
};
enum { N_WITHOUT = sizeof ops_without_vjp_yet / sizeof ops_without_vjp_yet[0] };

static bool listed(enum tg_op op)
{
    for (int k = 0; k < N_WITHOUT; k++)
        if (ops_without_vjp_yet[k] == op) return true;
    return false;
}

/* Whether msg is tg_grad's "no differentiable VJP" error for a listed op (a case
 * may use helper ops besides its own). */
static bool pending_op_error(const char *msg)
{
    for (int k = 0; k < N_WITHOUT; k++) {
        char want[96];
        snprintf(want, sizeof want, "op %s has no differentiable VJP yet",
                 tg_op_name(ops_without_vjp_yet[k]));
        if (strstr(msg, want)) return true;
    }
    return false;
}

START_TEST(test_vjp_list)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        const char *name = tg_op_name((enum tg_op)op);
        ck_assert_msg(!(listed((enum tg_op)op) && vjp_table_has(op)),
                      "op %s has a vjp_graph now: remove it from ops_without_vjp_yet", name);
        ck_assert_msg(listed((enum tg_op)op) || vjp_table_has(op),
                      "op %s has no vjp_graph (the differentiable VJP of issue 12)", name);
    }
}
END_TEST

struct outcome {
    int n_cases, n_runs, n_failed, n_pending;
    char first[400];
};

static void run_inputs(const struct gc_case *gc, struct tg_tensor *const *in, int n,
                       const char *what, int rep, struct outcome *o)
{
    struct tg_gradcheck_report r;
    o->n_runs++;
    enum tg_status st = tg_gradgradcheck(gc->fn, in, n, NULL, NULL, &r);
    if (st == TG_OK) return;
    if (st == TG_ERR_STATE && pending_op_error(r.message)) {
        o->n_pending++;
        return;
    }
    if (o->n_failed++ == 0)
        snprintf(o->first, sizeof o->first, "%s%s (repeat %d): %s", gc->label, what, rep,
                 r.message);
}

/* Rank-0 copies of the first element of each input (requires-grad kept). */
static bool scalars(struct tg_tensor *const *in, int n, struct tg_tensor **sc)
{
    for (int i = 0; i < n; i++) {
        if (tg_tensor_numel(in[i]) < 1) return false;
        sc[i] = tg_tensor_scalar(TG_F64, tg_tensor_get(in[i], 0));
        if (!sc[i]) return false;
        tg_tensor_set_requires_grad(sc[i], tg_tensor_requires_grad(in[i]));
    }
    return true;
}

static void run_case(const struct gc_family *fam, const struct gc_case *gc, int c, int rep,
                     struct outcome *o)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 7000u + 1000u * (unsigned)gc->op + 10u * (unsigned)c + (unsigned)rep);
    struct tg_tensor *in[GC_MAX_IN] = {0}, *sc[GC_MAX_IN] = {0};
    int n = gc->make(&rng, in);
    if (n <= 0) {
        if (o->n_failed++ == 0) snprintf(o->first, sizeof o->first, "%s: no inputs", gc->label);
        return;
    }
    run_inputs(gc, in, n, "", rep, o);
    if (fam->scalar_run && scalars(in, n, sc)) run_inputs(gc, sc, n, " on scalars", rep, o);
    for (int i = 0; i < n; i++) {
        tg_tensor_free(in[i]);
        tg_tensor_free(sc[i]);
    }
}

/* The loop test: _i is the op. */
START_TEST(test_gradgradcheck_op)
{
    enum tg_op op = (enum tg_op)_i;
    if (listed(op) && !vjp_table_has(op)) return; /* pending: see ops_without_vjp_yet */
    ck_assert_msg(vjp_table_has(op), "op %s has no vjp_graph", tg_op_name(op));
    struct outcome o = {0};
    for (int f = 0; f < GC_N_FAMILIES; f++)
        for (int c = 0; c < *gc_families[f].n; c++) {
            const struct gc_case *gc = &gc_families[f].cases[c];
            if (gc->op != op) continue;
            o.n_cases++;
            for (int rep = 0; rep < REPEATS; rep++) run_case(&gc_families[f], gc, c, rep, &o);
        }
    ck_assert_msg(o.n_cases > 0, "op %s has no gradient-check case", tg_op_name(op));
    ck_assert_msg(o.n_failed == 0, "%s: %d of %d second-order runs failed; first: %s",
                  tg_op_name(op), o.n_failed, o.n_runs, o.first);
}
END_TEST

/* A micrograd-style scalar graph through the table's ops (the scalar record
 * path): f = x^3 sin x, f'' = 6x sin x + 6x^2 cos x - x^3 sin x, exactly. */
START_TEST(test_scalar_graph_second_derivative)
{
    if (listed(TG_OP_MUL) || listed(TG_OP_SIN) || listed(TG_OP_COS) || listed(TG_OP_NEG))
        return; /* pending: their VJPs (ops_without_vjp_yet) */
    const double a = 1.3;
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, a), *d1, *d2;
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *f = tg_mul(T, tg_mul(T, tg_mul(T, x, x), x), tg_sin(T, x));
    const struct tg_grad_options cg = {.create_graph = true};
    ck_assert_int_eq(tg_grad(1, &f, NULL, 1, &x, &cg, &d1), TG_OK);
    ck_assert_int_eq(tg_grad(1, &d1, NULL, 1, &x, NULL, &d2), TG_OK);
    double s = sin(a), c = cos(a);
    ck_assert_double_eq_tol(tg_tensor_item(d1), 3 * a * a * s + a * a * a * c, 1e-13);
    ck_assert_double_eq_tol(tg_tensor_item(d2), 6 * a * s + 6 * a * a * c - a * a * a * s, 1e-12);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* ---- whole graphs ---- */

/* D = sum(tanh(x W1^T + b1) W2^T + b2): a small MLP's output summed over a batch. */
static struct tg_tensor *mlp_fn(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    (void)n;
    (void)c;
    struct tg_tensor *h = tg_linear(T, in[0], in[1], in[2], TG_ACT_TANH);
    return tg_sum(T, tg_linear(T, h, in[3], in[4], TG_ACT_NONE));
}

static void mlp_inputs(struct tg_tensor **in)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 12);
    const int64_t shapes[5][2] = {{4, 3}, {5, 3}, {5, 0}, {1, 5}, {1, 0}};
    for (int i = 0; i < 5; i++) {
        int rank = shapes[i][1] ? 2 : 1;
        in[i] = tg_tensor_normal(TG_F64, rank, shapes[i], &rng, 0, 0.8);
        ck_assert_ptr_nonnull(in[i]);
        tg_tensor_set_requires_grad(in[i], true);
    }
}

START_TEST(test_mlp_gradgradcheck)
{
    struct tg_tensor *in[5];
    mlp_inputs(in);
    ck_assert_gradgradcheck(mlp_fn, in, 5, NULL, NULL);
    for (int i = 0; i < 5; i++) tg_tensor_free(in[i]);
}
END_TEST

/* P = sum((dD/dx)^2) by tg_grad; without create_graph when grads is NULL. */
static double penalty(struct tg_tape *T, struct tg_tensor **in, bool backward)
{
    tg_tape_reset(T);
    struct tg_tensor *D = mlp_fn(T, in, 5, NULL), *g;
    const struct tg_grad_options cg = {.create_graph = backward};
    ck_assert_int_eq(tg_grad(1, &D, NULL, 1, &in[0], &cg, &g), TG_OK);
    struct tg_tensor *P = tg_sum(T, tg_mul(T, g, g));
    ck_assert_ptr_nonnull(P);
    if (backward) ck_assert_int_eq(tg_backward(P, NULL), TG_OK);
    return tg_tensor_item(P);
}

/* A gradient penalty (WGAN-GP's ||dD/dx||^2): tg_backward through the recorded
 * backward pass against central differences of the penalty itself, for every
 * element of x and W1. */
START_TEST(test_gradient_penalty)
{
    struct tg_tensor *in[5];
    mlp_inputs(in);
    struct tg_tape *T = tg_tape_new();
    penalty(T, in, true);
    double *an[2];
    for (int k = 0; k < 2; k++) {
        an[k] = malloc((size_t)tg_tensor_numel(in[k]) * sizeof **an);
        for (int64_t j = 0; j < tg_tensor_numel(in[k]); j++)
            an[k][j] = tg_tensor_grad_get(in[k], j);
    }
    const double h = 1e-6;
    for (int k = 0; k < 2; k++)
        for (int64_t j = 0; j < tg_tensor_numel(in[k]); j++) {
            double v = tg_tensor_get(in[k], j);
            tg_tensor_set(in[k], j, v + h);
            double fp = penalty(T, in, false);
            tg_tensor_set(in[k], j, v - h);
            double fm = penalty(T, in, false);
            tg_tensor_set(in[k], j, v);
            double num = (fp - fm) / (2 * h);
            ck_assert_msg(fabs(an[k][j] - num) <= 1e-7 + 1e-5 * fabs(num),
                          "input %d [%lld]: analytic %.10g numeric %.10g", k, (long long)j,
                          an[k][j], num);
        }
    for (int k = 0; k < 2; k++) free(an[k]);
    tg_tape_free(T);
    for (int i = 0; i < 5; i++) tg_tensor_free(in[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops2");
    TCase *tc = tcase_create("second order");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_vjp_list);
    tcase_add_loop_test(tc, test_gradgradcheck_op, 0, TG_OP_COUNT);
    tcase_add_test(tc, test_scalar_graph_second_derivative);
    tcase_add_test(tc, test_mlp_gradgradcheck);
    tcase_add_test(tc, test_gradient_penalty);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
