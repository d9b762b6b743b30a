/*
 * tests/check_hooks.c - gradient hooks (tapegrad/hook.h): when they run, what
 * they see, what changing the gradient does, and their errors.
 *
 * Expected gradients are closed-form derivatives of small functions (written
 * out beside each test), or the same computation run without the hook.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *vec(const double *v, int64_t n, bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, 1, &n, v);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_set_requires_grad(t, grad), TG_OK);
    return t;
}

/* What a logging hook saw: the calls, the tensors and a copy of the gradient. */
struct log {
    int calls;
    const struct tg_tensor *who[8];
    double first[8]; /* element 0 of the gradient at each call */
    double seen[8];  /* all elements at the latest call */
    int64_t n;
};

static enum tg_status log_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    struct log *L = user;
    ck_assert_int_eq(tg_tensor_dtype(grad), tg_tensor_dtype(t));
    ck_assert_int_eq(tg_tensor_numel(grad), tg_tensor_numel(t));
    ck_assert(!tg_tensor_requires_grad(grad));
    const double *g = tg_tensor_data(grad);
    if (L->calls < 8) {
        L->who[L->calls] = t;
        L->first[L->calls] = g[0];
    }
    L->n = tg_tensor_numel(grad);
    for (int64_t i = 0; i < L->n && i < 8; i++) L->seen[i] = g[i];
    L->calls++;
    return TG_OK;
}

/* Clips every element of the gradient into [-c, c] in place. */
static enum tg_status clip_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    (void)t;
    double c = *(const double *)user, *g = tg_tensor_data(grad);
    for (int64_t i = 0; i < tg_tensor_numel(grad); i++) g[i] = fmin(c, fmax(-c, g[i]));
    return TG_OK;
}

/* L = sum(y * y), y = 3 x: the hook on y reads dL/dy = 2 y = 6 x, and the one on
 * x reads dL/dx = 18 x; reading changes nothing. */
START_TEST(test_read_only_logging)
{
    const double xv[3] = {0.5, -1.0, 2.0};
    struct tg_tensor *x = vec(xv, 3, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_mul_scalar(T, x, 3.0);
    struct tg_tensor *L = tg_sum(T, tg_mul(T, y, y));
    ck_assert_ptr_nonnull(L);
    struct log ly = {0}, lx = {0};
    ck_assert_int_gt(tg_hook_add(y, log_hook, &ly), 0);
    ck_assert_int_gt(tg_hook_add(x, log_hook, &lx), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(ly.calls, 1);
    ck_assert_int_eq(lx.calls, 1);
    ck_assert_ptr_eq(ly.who[0], y);
    ck_assert_ptr_eq(lx.who[0], x);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(ly.seen[i], 6 * xv[i], 1e-15);
        ck_assert_double_eq_tol(lx.seen[i], 18 * xv[i], 1e-15);
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), 18 * xv[i], 1e-15);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* L = sum(c * (2 x)) with c = (3, -0.2, -5): clipping dL/dh = c at h = 2 x to
 * [-1, 1] gives dL/dx = 2 clip(c) = (2, -0.4, -2); clipping at the leaf
 * instead clips dL/dx = 2 c = (6, -0.4, -10) to (1, -0.4, -1). */
START_TEST(test_clip_in_place)
{
    const double xv[3] = {1, 2, 3}, cv[3] = {3, -0.2, -5};
    const double at_node[3] = {2, -0.4, -2}, at_leaf[3] = {1, -0.4, -1};
    double one = 1;
    for (int where = 0; where < 2; where++) {
        struct tg_tensor *x = vec(xv, 3, true), *c = vec(cv, 3, false);
        struct tg_tape *T = tg_tape_new();
        struct tg_tensor *h = tg_mul_scalar(T, x, 2.0);
        struct tg_tensor *L = tg_sum(T, tg_mul(T, c, h));
        ck_assert_ptr_nonnull(L);
        ck_assert_int_gt(tg_hook_add(where ? x : h, clip_hook, &one), 0);
        ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
        for (int i = 0; i < 3; i++)
            ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), where ? at_leaf[i] : at_node[i],
                                    1e-15);
        tg_tape_free(T);
        tg_tensor_free(x);
        tg_tensor_free(c);
    }
}
END_TEST

/* A NaN hunter on every node: the first node (in sweep order) whose gradient
 * is not finite stops the sweep and is named. L = sum(log(x) * 0 + ...):
 * here L = sum(sqrt(x)) at x = (1, 0): d sqrt/dx = 1 / (2 sqrt x) is Inf at 0,
 * which only x's gradient shows; a hook on the leaf finds it. */
struct hunt {
    const struct tg_tensor *culprit;
    int calls;
};

static enum tg_status nan_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    struct hunt *H = user;
    H->calls++;
    const double *g = tg_tensor_data(grad);
    for (int64_t i = 0; i < tg_tensor_numel(grad); i++)
        if (!isfinite(g[i])) {
            H->culprit = t;
            return tg_set_error(TG_ERR_NUMERIC, "nan_hook: gradient element %lld is %g",
                                (long long)i, g[i]);
        }
    return TG_OK;
}

START_TEST(test_nan_hunting)
{
    const double xv[2] = {1, 0};
    struct tg_tensor *x = vec(xv, 2, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *r = tg_sqrt(T, x);
    struct tg_tensor *m = tg_mul_scalar(T, r, 2.0);
    struct tg_tensor *L = tg_sum(T, m);
    ck_assert_ptr_nonnull(L);
    struct hunt H = {0};
    struct tg_tensor *all[] = {x, r, m, L};
    for (int i = 0; i < 4; i++) ck_assert_int_gt(tg_hook_add(all[i], nan_hook, &H), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_NUMERIC);
    ck_assert_ptr_eq(H.culprit, x);
    ck_assert_int_eq(H.calls, 4); /* L, m, r: finite; then x */
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "nan_hook: gradient element 1 is inf"));
    /* a stopped sweep leaves no node gradient current */
    ck_assert_ptr_null(tg_tensor_grad(m));
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* A hook that fails without setting a message gets one naming the hook. */
static enum tg_status silent_fail(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    (void)t, (void)grad, (void)user;
    return TG_ERR_VALUE;
}

START_TEST(test_failure_message)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 2.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_exp(T, x);
    ck_assert_ptr_nonnull(y);
    int64_t id = tg_hook_add(y, silent_fail, NULL);
    ck_assert_int_gt(id, 0);
    struct log lx = {0};
    ck_assert_int_gt(tg_hook_add(x, log_hook, &lx), 0);
    ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_VALUE);
    char want[64];
    snprintf(want, sizeof want, "gradient hook %lld stopped the sweep", (long long)id);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), want));
    ck_assert_int_eq(lx.calls, 0); /* the sweep stopped before y's backward */
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Removal: a removed hook no longer runs, its id cannot be removed twice nor
 * from another tensor, and hooks run in the order added. */
static enum tg_status order_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    (void)t, (void)grad;
    int *seq = user;
    seq[1 + seq[0]++] = seq[9];
    return TG_OK;
}
static enum tg_status tag_a(struct tg_tensor *t, struct tg_tensor *g, void *user)
{
    ((int *)user)[9] = 1;
    return order_hook(t, g, user);
}
static enum tg_status tag_b(struct tg_tensor *t, struct tg_tensor *g, void *user)
{
    ((int *)user)[9] = 2;
    return order_hook(t, g, user);
}

START_TEST(test_remove)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 1.5);
    struct tg_tensor *z = tg_tensor_scalar(TG_F64, 0.5);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    int seq[10] = {0};
    int64_t a = tg_hook_add(x, tag_a, seq), b = tg_hook_add(x, tag_b, seq);
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, a);
    ck_assert_int_eq(tg_hook_count(x), 2);
    ck_assert_int_eq(tg_backward(tg_mul(T, x, x), NULL), TG_OK);
    ck_assert_int_eq(seq[0], 2); /* x * x: once per sweep, not per use */
    ck_assert_int_eq(seq[1], 1);
    ck_assert_int_eq(seq[2], 2);
    ck_assert_int_eq(tg_hook_remove(z, a), TG_ERR_RANGE);
    ck_assert_int_eq(tg_hook_remove(x, a), TG_OK);
    ck_assert_int_eq(tg_hook_remove(x, a), TG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_hook_remove: t has no hook with id"));
    ck_assert_int_eq(tg_hook_count(x), 1);
    memset(seq, 0, sizeof seq);
    ck_assert_int_eq(tg_backward(tg_mul(T, x, x), NULL), TG_OK);
    ck_assert_int_eq(seq[0], 1);
    ck_assert_int_eq(seq[1], 2);
    ck_assert_int_eq(tg_hook_remove(x, b), TG_OK);
    ck_assert_int_eq(tg_hook_count(x), 0);
    memset(seq, 0, sizeof seq);
    ck_assert_int_eq(tg_backward(tg_mul(T, x, x), NULL), TG_OK);
    ck_assert_int_eq(seq[0], 0);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 0), 3 * 2 * 1.5, 1e-15);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(z);
}
END_TEST

/* A leaf used three times: L = sum(a * x) + sum(exp(x)) + sum(x), recorded in
 * that order. Its hook fires once per sweep, after the last contribution, with
 * dL/dx = a + exp(x) + 1; a second sweep shows the accumulated gradient. */
START_TEST(test_leaf_final_timing)
{
    const double xv[2] = {0.25, -0.5}, av[2] = {2, -3};
    struct tg_tensor *x = vec(xv, 2, true), *a = vec(av, 2, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *L =
        tg_add(T, tg_add(T, tg_sum(T, tg_mul(T, a, x)), tg_sum(T, tg_exp(T, x))), tg_sum(T, x));
    ck_assert_ptr_nonnull(L);
    struct log lx = {0};
    ck_assert_int_gt(tg_hook_add(x, log_hook, &lx), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(lx.calls, 1);
    for (int i = 0; i < 2; i++) ck_assert_double_eq_tol(lx.seen[i], av[i] + exp(xv[i]) + 1, 1e-15);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(lx.calls, 2);
    for (int i = 0; i < 2; i++)
        ck_assert_double_eq_tol(lx.seen[i], 2 * (av[i] + exp(xv[i]) + 1), 1e-14);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(a);
}
END_TEST

/* Three layers h1 = W1 x, h2 = W2 h1, h3 = W3 h2: the leaves' hooks fire in
 * sweep order, W3 first, and each after its own last consumer, before the
 * earlier layers' backward ran (W1's hook comes last). */
START_TEST(test_leaf_order)
{
    int64_t shp[2] = {2, 2};
    const double w[4] = {0.5, -1, 2, 0.25}, xv[2] = {1, -2};
    struct tg_tensor *W[3], *x = vec(xv, 2, false);
    for (int k = 0; k < 3; k++) {
        W[k] = tg_tensor_from_f64(TG_F64, 2, shp, w);
        tg_tensor_set_requires_grad(W[k], true);
    }
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = x;
    for (int k = 0; k < 3; k++) h = tg_linear(T, h, W[k], NULL, TG_ACT_TANH);
    struct tg_tensor *L = tg_sum(T, h);
    ck_assert_ptr_nonnull(L);
    struct log lw = {0};
    for (int k = 0; k < 3; k++) ck_assert_int_gt(tg_hook_add(W[k], log_hook, &lw), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(lw.calls, 3);
    for (int k = 0; k < 3; k++) {
        ck_assert_ptr_eq(lw.who[k], W[2 - k]);
        ck_assert_double_eq(lw.first[k], tg_tensor_grad_get(W[2 - k], 0));
    }
    tg_tape_free(T);
    for (int k = 0; k < 3; k++) tg_tensor_free(W[k]);
    tg_tensor_free(x);
}
END_TEST

/* A replacing hook: the gradient becomes the replacement's values; a
 * replacement of the wrong shape or dtype stops the sweep. */
static enum tg_status replace_hook(struct tg_tensor *t, struct tg_tensor *grad,
                                   struct tg_tensor **out, void *user)
{
    (void)t, (void)grad;
    *out = user;
    return TG_OK;
}

START_TEST(test_replace)
{
    const double xv[3] = {1, 2, 3}, rv[3] = {7, 8, 9};
    struct tg_tensor *x = vec(xv, 3, true), *r = vec(rv, 3, false);
    struct tg_tensor *r2 = vec(rv, 2, false);
    int64_t n3 = 3;
    struct tg_tensor *r32 = tg_tensor_from_f64(TG_F32, 1, &n3, rv);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = tg_mul_scalar(T, x, 2.0), *L = tg_sum(T, h);
    int64_t id = tg_hook_add_replace(h, replace_hook, r);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 2 * rv[i]);
    ck_assert_int_eq(tg_hook_remove(h, id), TG_OK);
    ck_assert_int_gt(tg_hook_add_replace(h, replace_hook, r2), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "has shape (2), but the hooked tensor has "
                                                  "shape (3)"));
    tg_tape_reset(T);
    h = tg_mul_scalar(T, x, 2.0), L = tg_sum(T, h);
    ck_assert_int_gt(tg_hook_add_replace(h, replace_hook, r32), 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_DTYPE);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(r);
    tg_tensor_free(r2);
    tg_tensor_free(r32);
}
END_TEST

/* tg_grad (with create_graph or not) calls no hook: its gradients are those
 * of the graph as recorded; tg_backward then does. */
START_TEST(test_grad_calls_no_hook)
{
    const double xv[2] = {0.5, 3};
    double one = 1;
    struct tg_tensor *x = vec(xv, 2, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = tg_mul(T, x, x), *L = tg_sum(T, h);
    struct log lh = {0};
    ck_assert_int_gt(tg_hook_add(h, log_hook, &lh), 0);
    ck_assert_int_gt(tg_hook_add(x, clip_hook, &one), 0);
    for (int cg = 0; cg < 2; cg++) {
        struct tg_grad_options o = {.create_graph = cg};
        struct tg_tensor *g = NULL;
        ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, &o, &g), TG_OK);
        for (int i = 0; i < 2; i++) ck_assert_double_eq(tg_tensor_get(g, i), 2 * xv[i]);
    }
    ck_assert_int_eq(lh.calls, 0);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(lh.calls, 1);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 1.0); /* 2 * 0.5 */
    ck_assert_double_eq(tg_tensor_grad_get(x, 1), 1.0); /* 6, clipped */
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Hooks on a node end with its recording; hooks on a leaf outlive resets. */
START_TEST(test_lifetime)
{
    const double xv[2] = {1, 2};
    struct tg_tensor *x = vec(xv, 2, true);
    struct tg_tape *T = tg_tape_new();
    struct log lh = {0}, lx = {0};
    struct tg_tensor *h = tg_exp(T, x);
    ck_assert_int_gt(tg_hook_add(h, log_hook, &lh), 0);
    ck_assert_int_gt(tg_hook_add(x, log_hook, &lx), 0);
    ck_assert_int_eq(tg_hook_count(h), 1);
    tg_tape_reset(T);
    ck_assert_int_eq(tg_hook_count(h), 0); /* stale */
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    for (int k = 0; k < 3; k++) {
        struct tg_tensor *L = tg_sum(T, tg_exp(T, x));
        ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
        tg_tape_reset(T);
    }
    ck_assert_int_eq(lh.calls, 0);
    ck_assert_int_eq(lx.calls, 3);
    tg_tape_free(T);
    tg_tensor_free(x); /* frees its hooks (leak-checked under valgrind/ASan) */
}
END_TEST

/* tg_backward_apply: a listed leaf's hook sees the sweep's g and may scale it;
 * nothing is folded while hooks are live. */
static enum tg_status half_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    (void)t, (void)user;
    double *g = tg_tensor_data(grad);
    for (int64_t i = 0; i < tg_tensor_numel(grad); i++) g[i] *= 0.5;
    return TG_OK;
}

START_TEST(test_backward_apply)
{
    int64_t shp[2] = {1, 2};
    const double w[2] = {1, -1}, xv[2] = {2, 3};
    struct tg_tensor *W = tg_tensor_from_f64(TG_F64, 2, shp, w), *x = vec(xv, 2, false);
    tg_tensor_set_requires_grad(W, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *L = tg_sum(T, tg_linear(T, x, W, NULL, TG_ACT_NONE)); /* dL/dW = x */
    ck_assert_ptr_nonnull(L);
    ck_assert_int_gt(tg_hook_add(W, half_hook, NULL), 0);
    struct tg_apply up = {.leaf = W, .alpha = -1, .beta = 1};
    ck_assert_int_eq(tg_backward_apply(L, NULL, &up, 1), TG_OK);
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    ck_assert_int_eq(st.n_folded, 0);
    for (int i = 0; i < 2; i++) ck_assert_double_eq(tg_tensor_get(W, i), w[i] - 0.5 * xv[i]);
    for (int i = 0; i < 2; i++) ck_assert_double_eq(tg_tensor_grad_get(W, i), 0);
    /* a hook that stops the sweep: no value changes */
    ck_assert_int_gt(tg_hook_add(W, silent_fail, NULL), 0);
    ck_assert_int_eq(tg_backward_apply(L, NULL, &up, 1), TG_ERR_VALUE);
    for (int i = 0; i < 2; i++) ck_assert_double_eq(tg_tensor_get(W, i), w[i] - 0.5 * xv[i]);
    tg_tape_free(T);
    tg_tensor_free(W);
    tg_tensor_free(x);
}
END_TEST

/* Hooks and the chain-rule trace share the sweep: the trace records the
 * clipped gradient. */
START_TEST(test_with_trace)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 3.0);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = tg_mul(T, x, x), *L = tg_mul_scalar(T, h, 4.0);
    double one = 1;
    ck_assert_int_gt(tg_hook_add(h, clip_hook, &one), 0);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(L, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 2);
    ck_assert_double_eq(tr->steps[1].upstream, 1.0); /* 4, clipped */
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 6.0);
    tg_trace_free(tr);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_errors)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 1);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *c = tg_tape_constant(T, TG_F64, 0, NULL, NULL);
    tg_clear_error();
    ck_assert_int_eq(tg_hook_add(NULL, log_hook, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_int_eq(tg_hook_add(x, NULL, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_hook_add: fn is NULL"));
    ck_assert_int_eq(tg_hook_add_replace(x, NULL, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_int_eq(tg_hook_add(c, log_hook, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    tg_clear_error();
    ck_assert_int_eq(tg_hook_remove(NULL, 1), TG_ERR_NULL);
    ck_assert_int_eq(tg_hook_remove(x, 0), TG_ERR_RANGE);
    ck_assert_int_eq(tg_hook_remove(x, -3), TG_ERR_RANGE);
    struct tg_tensor *y = tg_exp(T, x);
    ck_assert_ptr_nonnull(y);
    tg_tape_reset(T);
    ck_assert_int_eq(tg_hook_add(y, log_hook, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    ck_assert_int_eq(tg_hook_remove(y, 1), TG_ERR_STALE);
    /* a NULL from a failed op keeps that op's cause */
    tg_clear_error();
    ck_assert_int_eq(tg_hook_add(tg_log(T, NULL), log_hook, NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "log"));
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* A hook that removes itself and adds another during the sweep: the removal
 * holds at once, the addition from the next sweep. */
struct selfmod {
    struct tg_tensor *x;
    int64_t self;
    struct log added;
    int calls;
};

static enum tg_status selfmod_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    (void)grad;
    struct selfmod *S = user;
    S->calls++;
    ck_assert_int_eq(tg_hook_remove(t, S->self), TG_OK);
    ck_assert_int_gt(tg_hook_add(t, log_hook, &S->added), 0);
    return TG_OK;
}

START_TEST(test_change_during_sweep)
{
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 2);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct selfmod S = {.x = x};
    S.self = tg_hook_add(x, selfmod_hook, &S);
    ck_assert_int_gt(S.self, 0);
    struct tg_tensor *L = tg_mul(T, x, x);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(S.calls, 1);
    ck_assert_int_eq(S.added.calls, 0);
    ck_assert_int_eq(tg_hook_count(x), 1);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    ck_assert_int_eq(S.calls, 1);
    ck_assert_int_eq(S.added.calls, 1);
    ck_assert_double_eq(S.added.seen[0], 8.0); /* two sweeps of 2 x */
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("hooks");
    tcase_add_test(tc, test_read_only_logging);
    tcase_add_test(tc, test_clip_in_place);
    tcase_add_test(tc, test_nan_hunting);
    tcase_add_test(tc, test_failure_message);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_leaf_final_timing);
    tcase_add_test(tc, test_leaf_order);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_grad_calls_no_hook);
    tcase_add_test(tc, test_lifetime);
    tcase_add_test(tc, test_backward_apply);
    tcase_add_test(tc, test_with_trace);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_change_during_sweep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(hooks_suite());
}
