/*
 * tests/check_apply.c - tg_backward_apply: a backward sweep that updates listed
 * leaves in place (value = beta value + alpha g).
 *
 * Every case is run twice on equal leaves: once with tg_backward (the reference:
 * the expected new value is beta v + alpha grad) and once with tg_backward_apply.
 * The values must agree, the listed leaves' gradient buffers must be untouched,
 * the unlisted leaves must get tg_backward's gradients, and the tape must report
 * how many updates an op folded into its backward (linear's W and b, one operand
 * of a non-batched matmul) so that the fast path is known to be taken.
 * tg_nn_optim_backward_step is checked against tg_backward + tg_nn_optim_step the same
 * way, for every optimizer.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "failalloc.h"

enum { MAXL = 4 };

/* A graph over leaves L[0..n); returns its scalar root. */
typedef struct tg_tensor *(*build_fn)(struct tg_tape *T, struct tg_tensor **L);

struct apply_case {
    const char *name;
    build_fn build;
    int n;                  /* leaves */
    int rank[MAXL];         /* their shapes */
    int64_t shape[MAXL][3]; /* ... */
    unsigned listed;        /* bit k: leaf k is in the apply list */
    size_t folded;          /* updates expected to fold */
};

/* ---- the graphs ---- */

static struct tg_tensor *g_linear_relu(struct tg_tape *T, struct tg_tensor **L)
{
    struct tg_tensor *y = tg_linear(T, L[0], L[1], L[2], TG_ACT_RELU);
    return tg_mean(T, tg_mul(T, y, y));
}

static struct tg_tensor *g_linear_none_nobias(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_tanh(T, tg_linear(T, L[0], L[1], NULL, TG_ACT_NONE)));
}

/* two layers; x (leaf 0) requires grad but is not listed */
static struct tg_tensor *g_mlp2(struct tg_tape *T, struct tg_tensor **L)
{
    struct tg_tensor *h = tg_linear(T, L[0], L[1], NULL, TG_ACT_TANH);
    struct tg_tensor *y = tg_linear(T, h, L[2], L[3], TG_ACT_SIGMOID);
    return tg_sum(T, y);
}

/* one W in two layers: two consumers, so no fold */
static struct tg_tensor *g_shared(struct tg_tape *T, struct tg_tensor **L)
{
    struct tg_tensor *h = tg_linear(T, L[0], L[1], NULL, TG_ACT_TANH);
    struct tg_tensor *y = tg_linear(T, h, L[1], NULL, TG_ACT_TANH);
    return tg_sum(T, y);
}

/* W in a layer and in an L2 penalty */
static struct tg_tensor *g_penalty(struct tg_tape *T, struct tg_tensor **L)
{
    struct tg_tensor *y = tg_linear(T, L[0], L[1], L[2], TG_ACT_RELU);
    return tg_add(T, tg_sum(T, y), tg_sum(T, tg_mul(T, L[1], L[1])));
}

static struct tg_tensor *g_matmul(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_tanh(T, tg_matmul(T, L[0], L[1])));
}

/* A^T B^T: both transpose flags */
static struct tg_tensor *g_matmul_tt(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_sin(T, tg_matmul_t(T, L[0], L[1], true, true)));
}

/* A (node: tanh of leaf 0) times B (leaf 1); B folds after dA reads it */
static struct tg_tensor *g_matmul_node_a(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_sin(T, tg_matmul(T, tg_tanh(T, L[0]), L[1])));
}

/* a batched product: the batch loop applies beta once per batch, so no fold */
static struct tg_tensor *g_matmul_batched(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_tanh(T, tg_matmul(T, L[0], L[1])));
}

/* elementwise ops only, rank 0 and rank 1 leaves */
static struct tg_tensor *g_elementwise(struct tg_tape *T, struct tg_tensor **L)
{
    return tg_sum(T, tg_mul(T, tg_sin(T, L[0]), tg_add(T, L[1], L[0])));
}

/* leaf 2 is consumed by a branch the root does not depend on, leaf 3 not at all */
static struct tg_tensor *g_unreached(struct tg_tape *T, struct tg_tensor **L)
{
    struct tg_tensor *y = tg_linear(T, L[0], L[1], NULL, TG_ACT_TANH);
    tg_linear(T, L[0], L[2], NULL, TG_ACT_NONE);
    return tg_sum(T, y);
}

/* leaf 1's only consumer runs in a no-grad scope */
static struct tg_tensor *g_nograd(struct tg_tape *T, struct tg_tensor **L)
{
    tg_tape_no_grad_push(T);
    struct tg_tensor *c = tg_linear(T, L[0], L[1], NULL, TG_ACT_NONE);
    tg_tape_no_grad_pop(T);
    return tg_sum(T, tg_mul(T, tg_linear(T, L[0], L[2], NULL, TG_ACT_TANH), c));
}

static const struct apply_case cases[] = {
    {"linear relu: W and b fold", g_linear_relu, 3, {2, 2, 1}, {{5, 7}, {4, 7}, {4}}, 6, 2},
    {"linear, no bias", g_linear_none_nobias, 2, {2, 2}, {{3, 6}, {5, 6}}, 2, 1},
    {"linear on one sample", g_linear_none_nobias, 2, {1, 2}, {{6}, {5, 6}}, 2, 1},
    {"two layers, x not listed", g_mlp2, 4, {2, 2, 2, 1}, {{4, 6}, {5, 6}, {3, 5}, {3}}, 14, 3},
    {"x listed too (x cannot fold)", g_mlp2, 4, {2, 2, 2, 1}, {{4, 6}, {5, 6}, {3, 5}, {3}}, 15, 3},
    {"shared W", g_shared, 2, {2, 2}, {{4, 5}, {5, 5}}, 2, 0},
    {"W also in a penalty", g_penalty, 3, {2, 2, 1}, {{4, 5}, {3, 5}, {3}}, 6, 1},
    {"matmul: A and B listed, one folds", g_matmul, 2, {2, 2}, {{3, 4}, {4, 5}}, 3, 1},
    {"matmul: B only", g_matmul, 2, {2, 2}, {{3, 4}, {4, 5}}, 2, 1},
    {"matmul: A only", g_matmul, 2, {2, 2}, {{3, 4}, {4, 5}}, 1, 1},
    {"matmul: vector times matrix", g_matmul, 2, {1, 2}, {{4}, {4, 5}}, 3, 1},
    {"matmul: matrix times vector", g_matmul, 2, {2, 1}, {{3, 4}, {4}}, 2, 1},
    {"matmul_t: both transposed, A folds", g_matmul_tt, 2, {2, 2}, {{4, 3}, {5, 4}}, 1, 1},
    {"matmul_t: both transposed, B folds", g_matmul_tt, 2, {2, 2}, {{4, 3}, {5, 4}}, 2, 1},
    {"matmul: A a node, B folds", g_matmul_node_a, 2, {2, 2}, {{3, 4}, {4, 5}}, 3, 1},
    {"matmul: batched, no fold", g_matmul_batched, 2, {3, 2}, {{2, 3, 4}, {4, 5}}, 3, 0},
    {"elementwise ops, rank 0 and 1", g_elementwise, 2, {0, 1}, {{0}, {6}}, 3, 0},
    {"unreached and unused leaves",
     g_unreached,
     4,
     {2, 2, 2, 2},
     {{3, 4}, {5, 4}, {2, 4}, {2, 2}},
     14,
     1},
    {"consumer in a no-grad scope", g_nograd, 3, {2, 2, 2}, {{3, 4}, {5, 4}, {5, 4}}, 6, 1},
};

/* ---- the comparison ---- */

static struct tg_tensor *leaf(enum tg_dtype dt, int rank, const int64_t *shape, struct tg_rng *rng)
{
    struct tg_tensor *t = tg_tensor_uniform(dt, rank, shape, rng, -1, 1);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

/* Every gradient element of leaf t set to v (a sentinel the update must not touch). */
static void fill_grad(struct tg_tensor *t, double v)
{
    void *g = tg_tensor_grad_mut(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        if (tg_tensor_dtype(t) == TG_F64)
            ((double *)g)[i] = v;
        else
            ((float *)g)[i] = (float)v;
}

static bool close_to(double got, double want, double tol)
{
    return fabs(got - want) <= tol * (1 + fabs(want));
}

static void free_all(struct tg_tensor **t, int n)
{
    for (int k = 0; k < n; k++) tg_tensor_free(t[k]);
}

/* Runs case c with tg_backward on copies R and tg_backward_apply on L; compares. */
static void run_case(const struct apply_case *c, enum tg_dtype dt, double alpha, double beta)
{
    double tol = dt == TG_F64 ? 1e-12 : 3e-6;
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    struct tg_tensor *L[MAXL], *R[MAXL];
    struct tg_apply list[MAXL];
    size_t n_list = 0;
    for (int k = 0; k < c->n; k++) {
        L[k] = leaf(dt, c->rank[k], c->shape[k], &rng);
        R[k] = tg_tensor_copy(L[k]);
        ck_assert_ptr_nonnull(R[k]);
        tg_tensor_set_requires_grad(R[k], true);
        if (c->listed & (1u << k)) {
            list[n_list++] = (struct tg_apply){L[k], alpha, beta};
            fill_grad(L[k], 7);
        }
    }
    struct tg_tape *T = tg_tape_new(), *U = tg_tape_new();
    struct tg_tensor *want = c->build(T, R), *got = c->build(U, L);
    ck_assert_msg(want && got, "%s: %s", c->name, tg_last_error());
    ck_assert_int_eq(tg_backward(want, NULL), TG_OK);
    ck_assert_msg(tg_backward_apply(got, NULL, list, n_list) == TG_OK, "%s: %s", c->name,
                  tg_last_error());
    struct tg_tape_stats st;
    tg_tape_stats(U, &st);
    ck_assert_msg(st.n_folded == c->folded, "%s (%s): %zu updates folded, want %zu", c->name,
                  tg_dtype_name(dt), st.n_folded, c->folded);
    for (int k = 0; k < c->n; k++) {
        bool listed = c->listed & (1u << k);
        for (int64_t i = 0; i < tg_tensor_numel(L[k]); i++) {
            double v = tg_tensor_get(R[k], i), g = tg_tensor_grad_get(R[k], i);
            double wv = listed ? beta * v + alpha * g : v, wg = listed ? 7 : g;
            ck_assert_msg(close_to(tg_tensor_get(L[k], i), wv, tol),
                          "%s (%s): leaf %d value %lld: %.17g, want %.17g", c->name,
                          tg_dtype_name(dt), k, (long long)i, tg_tensor_get(L[k], i), wv);
            ck_assert_msg(close_to(tg_tensor_grad_get(L[k], i), wg, tol),
                          "%s (%s): leaf %d grad %lld: %.17g, want %.17g", c->name,
                          tg_dtype_name(dt), k, (long long)i, tg_tensor_grad_get(L[k], i), wg);
        }
    }
    tg_tape_free(T);
    tg_tape_free(U);
    free_all(L, c->n);
    free_all(R, c->n);
}

static void run_all(enum tg_dtype dt, double alpha, double beta)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], dt, alpha, beta);
}

/* Plain SGD (beta 1) and with weight decay (beta < 1), f64 and f32, with the
 * portable kernel and with BLAS when built with it. */
START_TEST(test_apply_matches_backward)
{
    enum tg_matmul_backend b[2] = {TG_MATMUL_PORTABLE, TG_MATMUL_BLAS};
    for (int k = 0; k < 2; k++) {
        if (tg_matmul_set_backend(b[k]) != TG_OK) continue; /* built without BLAS */
        run_all(TG_F64, -0.1, 1.0);
        run_all(TG_F64, -0.05, 0.99);
        run_all(TG_F32, -0.1, 1.0);
        run_all(TG_F32, -0.05, 0.99);
    }
    tg_matmul_set_backend(TG_MATMUL_AUTO);
}
END_TEST

/* A vector root with a seed; the same tape recorded and applied several times
 * follows the reference step by step (the update of step k feeds step k + 1). */
START_TEST(test_apply_seed_and_steps)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct tg_tensor *x = tg_tensor_uniform(TG_F64, 2, (int64_t[]){6, 4}, &rng, -1, 1);
    struct tg_tensor *W = leaf(TG_F64, 2, (int64_t[]){3, 4}, &rng),
                     *b = leaf(TG_F64, 1, (int64_t[]){3}, &rng);
    struct tg_tensor *W2 = tg_tensor_copy(W), *b2 = tg_tensor_copy(b);
    struct tg_tensor *seed = tg_tensor_uniform(TG_F64, 2, (int64_t[]){6, 3}, &rng, -1, 1);
    tg_tensor_set_requires_grad(W2, true);
    tg_tensor_set_requires_grad(b2, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_apply list[2] = {{W, -0.2, 1}, {b, -0.2, 1}};
    for (int step = 0; step < 5; step++) {
        tg_tape_reset(T);
        struct tg_tensor *y = tg_linear(T, x, W2, b2, TG_ACT_TANH);
        ck_assert_int_eq(tg_backward(y, seed), TG_OK);
        for (int64_t i = 0; i < 12; i++)
            tg_tensor_set(W2, i, tg_tensor_get(W2, i) - 0.2 * tg_tensor_grad_get(W2, i));
        for (int64_t i = 0; i < 3; i++)
            tg_tensor_set(b2, i, tg_tensor_get(b2, i) - 0.2 * tg_tensor_grad_get(b2, i));
        tg_tensor_zero_grad(W2);
        tg_tensor_zero_grad(b2);
        tg_tape_reset(T);
        y = tg_linear(T, x, W, b, TG_ACT_TANH);
        ck_assert_int_eq(tg_backward_apply(y, seed, list, 2), TG_OK);
        for (int64_t i = 0; i < 12; i++)
            ck_assert(close_to(tg_tensor_get(W, i), tg_tensor_get(W2, i), 1e-12));
        for (int64_t i = 0; i < 3; i++)
            ck_assert(close_to(tg_tensor_get(b, i), tg_tensor_get(b2, i), 1e-12));
    }
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    ck_assert_uint_eq(st.n_folded, 2);
    tg_tape_free(T);
    struct tg_tensor *all[] = {x, W, b, W2, b2, seed};
    free_all(all, 6);
}
END_TEST

/* Values of the leaves as doubles, to see that a failed call changed nothing. */
static void snapshot(struct tg_tensor *const *t, int n, double *out)
{
    for (int k = 0, j = 0; k < n; k++)
        for (int64_t i = 0; i < tg_tensor_numel(t[k]); i++) out[j++] = tg_tensor_get(t[k], i);
}
static void expect_snapshot(struct tg_tensor *const *t, int n, const double *want)
{
    for (int k = 0, j = 0; k < n; k++)
        for (int64_t i = 0; i < tg_tensor_numel(t[k]); i++, j++)
            ck_assert_msg(tg_tensor_get(t[k], i) == want[j], "leaf %d element %lld changed", k,
                          (long long)i);
}

static void expect_error(enum tg_status got, enum tg_status want, const char *part)
{
    ck_assert_msg(got == want, "status %s, want %s (%s)", tg_status_str(got), tg_status_str(want),
                  tg_last_error());
    ck_assert_msg(strstr(tg_last_error(), "tg_backward_apply") && strstr(tg_last_error(), part),
                  "message: %s (want \"%s\")", tg_last_error(), part);
}

/* Every misuse: a status, a message naming the function, no value changed, and
 * no leaf left marked (the same leaves then apply fine). */
START_TEST(test_apply_errors)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 2, (int64_t[]){4, 3}, &rng, -1, 1);
    struct tg_tensor *W = leaf(TG_F32, 2, (int64_t[]){2, 3}, &rng),
                     *b = leaf(TG_F32, 1, (int64_t[]){2}, &rng);
    struct tg_tensor *frozen = tg_tensor_uniform(TG_F32, 1, (int64_t[]){2}, &rng, -1, 1);
    struct tg_tensor *leaves[2] = {W, b};
    double before[8];
    snapshot(leaves, 2, before);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_linear(T, x, W, b, TG_ACT_RELU), *l = tg_sum(T, y);
    struct tg_apply ok[2] = {{W, -0.1, 1}, {b, -0.1, 1}};

    expect_error(tg_backward_apply(NULL, NULL, ok, 2), TG_ERR_NULL, "root is NULL");
    expect_error(tg_backward_apply(y, NULL, ok, 2), TG_ERR_SHAPE, "not a scalar");
    expect_error(tg_backward_apply(l, NULL, NULL, 2), TG_ERR_NULL, "list is NULL");
    struct tg_apply bad_null[2] = {{W, -0.1, 1}, {NULL, -0.1, 1}};
    expect_error(tg_backward_apply(l, NULL, bad_null, 2), TG_ERR_NULL, "entry 1: leaf is NULL");
    struct tg_apply bad_node[2] = {{W, -0.1, 1}, {y, -0.1, 1}};
    expect_error(tg_backward_apply(l, NULL, bad_node, 2), TG_ERR_TAPE, "not a leaf");
    struct tg_apply bad_rg[2] = {{W, -0.1, 1}, {frozen, -0.1, 1}};
    expect_error(tg_backward_apply(l, NULL, bad_rg, 2), TG_ERR_STATE, "does not require grad");
    struct tg_apply bad_alpha[2] = {{W, NAN, 1}, {b, -0.1, 1}};
    expect_error(tg_backward_apply(l, NULL, bad_alpha, 2), TG_ERR_VALUE, "finite");
    struct tg_apply bad_beta[2] = {{W, -0.1, 1}, {b, -0.1, INFINITY}};
    expect_error(tg_backward_apply(l, NULL, bad_beta, 2), TG_ERR_VALUE, "finite");
    struct tg_apply twice[3] = {{W, -0.1, 1}, {b, -0.1, 1}, {W, -0.1, 1}};
    expect_error(tg_backward_apply(l, NULL, twice, 3), TG_ERR_VALUE, "entry 2 repeats");
    expect_error(tg_backward_apply(l, NULL, ok, SIZE_MAX), TG_ERR_RANGE, "too large");
    expect_snapshot(leaves, 2, before);
    tg_tape_reset(T);
    expect_error(tg_backward_apply(l, NULL, ok, 2), TG_ERR_STALE, "before the tape was reset");

    /* the leaves were released every time: a good call works and folds both */
    y = tg_linear(T, x, W, b, TG_ACT_RELU);
    l = tg_sum(T, y);
    ck_assert_int_eq(tg_backward_apply(l, NULL, ok, 2), TG_OK);
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    ck_assert_uint_eq(st.n_folded, 2);
    ck_assert_int_eq(tg_backward_apply(l, NULL, NULL, 0), TG_OK); /* an empty list: a sweep */
    tg_tape_free(T);
    struct tg_tensor *all[] = {x, W, b, frozen};
    free_all(all, 4);
}
END_TEST

/* Anomaly mode: a NaN found in the sweep fails the call with no value changed
 * (nothing folds in anomaly mode, and updates apply only after a clean sweep). */
START_TEST(test_apply_anomaly)
{
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){1, 2}, (double[]){1, 1});
    struct tg_tensor *W = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 2}, (double[]){1, -1, 2, 3});
    tg_tensor_set_requires_grad(W, true);
    struct tg_tensor *leaves[1] = {W};
    double before[4];
    snapshot(leaves, 1, before);
    struct tg_tape *T = tg_tape_new();
    tg_tape_set_anomaly(T, true);
    /* x W^T = (0, 5): sqrt's gradient at 0 is infinite */
    struct tg_tensor *l = tg_sum(T, tg_sqrt(T, tg_linear(T, x, W, NULL, TG_ACT_NONE)));
    ck_assert_ptr_nonnull(l);
    struct tg_apply list[1] = {{W, -0.1, 1}};
    ck_assert_int_eq(tg_backward_apply(l, NULL, list, 1), TG_ERR_NUMERIC);
    expect_snapshot(leaves, 1, before);
    ck_assert(tg_tensor_grad_get(W, 0) == 0); /* the gradient buffer untouched too */
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W);
}
END_TEST

/* Out of memory at every allocation of a first step: TG_ERR_NOMEM and no value
 * changed, or success; the call then works once memory is back. */
START_TEST(test_apply_oom)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 9);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 2, (int64_t[]){64, 300}, &rng, -1, 1);
    struct tg_tensor *W = leaf(TG_F32, 2, (int64_t[]){200, 300}, &rng),
                     *b = leaf(TG_F32, 1, (int64_t[]){200}, &rng);
    struct tg_tensor *leaves[2] = {W, b};
    double *before = malloc(sizeof *before * (200 * 300 + 200));
    ck_assert_ptr_nonnull(before);
    struct tg_apply list[2] = {{W, -0.1, 1}, {b, -0.1, 1}};
    bool succeeded = false;
    for (long n = 1; n < 50 && !succeeded; n++) {
        struct tg_tape *T = tg_tape_new();
        ck_assert_ptr_nonnull(T);
        struct tg_tensor *l = tg_sum(
            T, tg_mul(T, tg_linear(T, x, W, b, TG_ACT_TANH), tg_linear(T, x, W, b, TG_ACT_TANH)));
        ck_assert_ptr_nonnull(l);
        snapshot(leaves, 2, before);
        failalloc_arm(n, true);
        enum tg_status st = tg_backward_apply(l, NULL, list, 2);
        failalloc_disarm();
        if (st == TG_OK) {
            succeeded = true;
        } else {
            ck_assert_msg(st == TG_ERR_NOMEM, "allocation %ld: %s", n, tg_last_error());
            expect_snapshot(leaves, 2, before);
            ck_assert_int_eq(tg_backward_apply(l, NULL, list, 2), TG_OK);
        }
        tg_tape_free(T);
    }
    ck_assert(succeeded);
    free(before);
    struct tg_tensor *all[] = {x, W, b};
    free_all(all, 3);
}
END_TEST

/* The gradient version of a leaf moves with every possible change of its
 * gradient and with nothing else; tg_backward_apply leaves a listed leaf's alone. */
START_TEST(test_grad_version)
{
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    struct tg_tensor *y = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){4, 5, 6});
    struct tg_tensor *w =
        tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    ck_assert_uint_eq(tg_tensor_grad_version(NULL), 0);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(w, true);
    uint64_t v = tg_tensor_grad_version(x);
    ck_assert_uint_ne(v, 0);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *l = tg_sum(T, tg_mul(T, x, y)), *other = tg_sum(T, tg_mul(T, y, y));
    ck_assert_uint_eq(tg_tensor_grad_version(x), v); /* recording changes nothing */
    ck_assert_uint_eq(tg_tensor_grad_version(l), 0); /* tape tensors have none */
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    ck_assert_uint_ne(tg_tensor_grad_version(x), v);
    v = tg_tensor_grad_version(x);
    ck_assert_double_eq(tg_tensor_grad_get(x, 1), 5); /* reading: no change */
    ck_assert_uint_eq(tg_tensor_grad_version(x), v);
    ck_assert_int_eq(tg_backward(other, NULL), TG_ERR_TAPE); /* needs no gradient */
    ck_assert_uint_eq(tg_tensor_grad_version(x), v);
    tg_tensor_zero_grad(x);
    ck_assert_uint_ne(tg_tensor_grad_version(x), v);
    v = tg_tensor_grad_version(x);
    ck_assert_ptr_nonnull(tg_tensor_grad_mut(x)); /* a writable pointer: counts */
    ck_assert_uint_ne(tg_tensor_grad_version(x), v);
    /* listed for an update: its own gradient is untouched, and so is its version */
    struct tg_tensor *m = tg_sum(T, tg_matmul(T, w, x));
    v = tg_tensor_grad_version(w);
    uint64_t vx = tg_tensor_grad_version(x);
    struct tg_apply list[1] = {{w, -0.1, 1}};
    ck_assert_int_eq(tg_backward_apply(m, NULL, list, 1), TG_OK);
    ck_assert_uint_eq(tg_tensor_grad_version(w), v);
    ck_assert_uint_ne(tg_tensor_grad_version(x), vx); /* not listed: it got a gradient */
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(w);
}
END_TEST

/* ---- tg_nn_optim_backward_step: the same training as tg_backward + tg_nn_optim_step ---- */

enum { BATCH = 10, N_IN = 6 };

struct trainer {
    struct tg_nn_mlp *mlp;
    struct tg_nn_optim *opt;
    struct tg_tape *T;
};

static struct trainer trainer_new(enum tg_dtype dt, enum tg_act act,
                                  const struct tg_nn_optim_config *c)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    int64_t sizes[4] = {N_IN, 8, 5, 3};
    struct trainer t;
    t.mlp = tg_nn_mlp_new(sizes, 4, act, TG_ACT_NONE, dt, TG_INIT_HE_UNIFORM, &rng);
    ck_assert_ptr_nonnull(t.mlp);
    t.opt = tg_nn_optim_new(tg_nn_mlp_params(t.mlp), c);
    t.T = tg_tape_new();
    ck_assert(t.opt && t.T);
    return t;
}

static void trainer_free(struct trainer *t)
{
    tg_nn_optim_free(t->opt);
    tg_nn_mlp_free(t->mlp);
    tg_tape_free(t->T);
}

/* The loss of one batch, recorded on a reset tape. */
static struct tg_tensor *batch_loss(struct trainer *t, enum tg_dtype dt, int step)
{
    static const int64_t labels[BATCH] = {0, 2, 1, 1, 0, 2, 2, 1, 0, 1};
    double x[BATCH * N_IN];
    for (int i = 0; i < BATCH * N_IN; i++) x[i] = sin(0.7 * i + step);
    tg_tape_reset(t->T);
    struct tg_tensor *xs = tg_tensor_from_f64(dt, 2, (int64_t[]){BATCH, N_IN}, x);
    struct tg_tensor *xc =
        tg_tape_constant(t->T, dt, 2, (int64_t[]){BATCH, N_IN}, tg_tensor_data(xs));
    tg_tensor_free(xs);
    struct tg_tensor *logits = tg_nn_mlp_forward(t->mlp, t->T, xc);
    struct tg_tensor *l = tg_cross_entropy_idx(t->T, logits, labels, BATCH, TG_REDUCE_MEAN);
    ck_assert_msg(l != NULL, "%s", tg_last_error());
    return l;
}

/* A gradient held before the step: backward of the sum of the logits. */
static void hold_gradient(struct trainer *t, enum tg_dtype dt)
{
    struct tg_tensor *l = batch_loss(t, dt, 100);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
}

static void expect_same_params(struct trainer *a, struct trainer *b, double tol, bool grads,
                               const char *what)
{
    struct tg_params *pa = tg_nn_mlp_params(a->mlp), *pb = tg_nn_mlp_params(b->mlp);
    for (size_t k = 0; k < tg_params_count(pa); k++) {
        struct tg_tensor *x = tg_params_tensor(pa, k), *y = tg_params_tensor(pb, k);
        for (int64_t i = 0; i < tg_tensor_numel(x); i++) {
            ck_assert_msg(close_to(tg_tensor_get(x, i), tg_tensor_get(y, i), tol),
                          "%s: %s[%lld] %.17g vs %.17g", what, tg_params_name(pa, k), (long long)i,
                          tg_tensor_get(x, i), tg_tensor_get(y, i));
            if (grads)
                ck_assert_msg(close_to(tg_tensor_grad_get(x, i), tg_tensor_grad_get(y, i), tol),
                              "%s: grad of %s[%lld]", what, tg_params_name(pa, k), (long long)i);
        }
    }
}

struct fused_case {
    const char *name;
    enum tg_nn_optim_kind kind;
    double weight_decay;
    bool zero_grad;
    enum tg_act act;
    size_t folded; /* updates folded per step when no gradient is held */
};

static const struct fused_case fused_cases[] = {
    {"SGD, relu", TG_OPTIM_SGD, 0, true, TG_ACT_RELU, 6},
    {"SGD with weight decay, tanh", TG_OPTIM_SGD, 0.01, true, TG_ACT_TANH, 6},
    {"SGD, leaky relu (an op after each layer)", TG_OPTIM_SGD, 0, true, TG_ACT_LEAKY_RELU, 6},
    {"SGD without zero_grad", TG_OPTIM_SGD, 0, false, TG_ACT_RELU, 0},
    {"momentum", TG_OPTIM_MOMENTUM, 0.01, true, TG_ACT_RELU, 0},
    {"Adam", TG_OPTIM_ADAM, 0, true, TG_ACT_TANH, 0},
    {"AdamW", TG_OPTIM_ADAMW, 0.01, false, TG_ACT_SIGMOID, 0},
};

/* A gradient written by hand through tg_tensor_grad into every parameter. */
static void write_gradient(struct trainer *t)
{
    struct tg_params *p = tg_nn_mlp_params(t->mlp);
    for (size_t k = 0; k < tg_params_count(p); k++) {
        struct tg_tensor *x = tg_params_tensor(p, k);
        void *g = tg_tensor_grad_mut(x);
        if (tg_tensor_dtype(x) == TG_F64)
            ((double *)g)[0] += 0.25;
        else
            ((float *)g)[0] += 0.25f;
    }
}

/* Five steps each way; before the third a gradient is held from a backward, before
 * the fourth one is written by hand (then nothing folds and the held gradient
 * must count), the fifth folds again. */
START_TEST(test_optim_backward_step)
{
    const struct fused_case *fc = &fused_cases[_i];
    for (int d = 0; d < 2; d++) {
        enum tg_dtype dt = d ? TG_F64 : TG_F32;
        double tol = dt == TG_F64 ? 1e-12 : 2e-6;
        struct tg_nn_optim_config c = tg_nn_optim_defaults(fc->kind);
        c.lr = 0.1;
        c.weight_decay = fc->weight_decay;
        c.zero_grad = fc->zero_grad;
        struct trainer a = trainer_new(dt, fc->act, &c), b = trainer_new(dt, fc->act, &c);
        for (int step = 0; step < 5; step++) {
            if (step == 2) {
                hold_gradient(&a, dt);
                hold_gradient(&b, dt);
            }
            if (step == 3) {
                write_gradient(&a);
                write_gradient(&b);
            }
            struct tg_tensor *la = batch_loss(&a, dt, step), *lb = batch_loss(&b, dt, step);
            ck_assert_msg(tg_nn_optim_backward_step(a.opt, la, 0.5) == TG_OK, "%s: %s", fc->name,
                          tg_last_error());
            ck_assert_int_eq(tg_backward(lb, NULL), TG_OK);
            ck_assert_int_eq(tg_nn_optim_step(b.opt, 0.5), TG_OK);
            struct tg_tape_stats st;
            tg_tape_stats(a.T, &st);
            ck_assert_msg(st.n_folded == (step == 2 || step == 3 ? 0 : fc->folded),
                          "%s (%s) step %d: %zu updates folded", fc->name, tg_dtype_name(dt), step,
                          st.n_folded);
            expect_same_params(&a, &b, tol, true, fc->name);
            ck_assert_int_eq(tg_nn_optim_steps(a.opt), step + 1);
        }
        trainer_free(&a);
        trainer_free(&b);
    }
}
END_TEST

START_TEST(test_optim_backward_step_errors)
{
    struct tg_nn_optim_config c = tg_nn_optim_defaults(TG_OPTIM_SGD);
    c.zero_grad = true;
    struct trainer a = trainer_new(TG_F64, TG_ACT_RELU, &c),
                   b = trainer_new(TG_F64, TG_ACT_RELU, &c);
    struct tg_tensor *l = batch_loss(&a, TG_F64, 0);
    ck_assert_int_eq(tg_nn_optim_backward_step(NULL, l, 1), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_nn_optim_backward_step"));
    ck_assert_int_eq(tg_nn_optim_backward_step(a.opt, NULL, 1), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "loss is NULL"));
    ck_assert_int_eq(tg_nn_optim_backward_step(a.opt, l, NAN), TG_ERR_VALUE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "grad_scale"));
    tg_tape_reset(a.T);
    ck_assert_int_eq(tg_nn_optim_backward_step(a.opt, l, 1), TG_ERR_STALE); /* a stale loss */
    expect_same_params(&a, &b, 0, true, "after errors");
    ck_assert_int_eq(tg_nn_optim_steps(a.opt), 0);
    /* the map changed under the optimizer: refused, nothing updated */
    tg_params_add_owned(tg_nn_mlp_params(a.mlp), "extra",
                        tg_tensor_zeros(TG_F64, 1, (int64_t[]){1}));
    l = batch_loss(&a, TG_F64, 0);
    ck_assert_int_eq(tg_nn_optim_backward_step(a.opt, l, 1), TG_ERR_STATE);
    trainer_free(&a);
    trainer_free(&b);
}
END_TEST

static Suite *apply_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_apply_matches_backward);
    tcase_add_test(tc, test_apply_seed_and_steps);
    tcase_add_test(tc, test_apply_errors);
    tcase_add_test(tc, test_apply_anomaly);
    tcase_add_test(tc, test_apply_oom);
    tcase_add_test(tc, test_grad_version);
    suite_add_tcase(s, tc);
    tc = tcase_create("optim");
    tcase_add_loop_test(tc, test_optim_backward_step, 0,
                        (int)(sizeof fused_cases / sizeof fused_cases[0]));
    tcase_add_test(tc, test_optim_backward_step_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(apply_suite());
}
