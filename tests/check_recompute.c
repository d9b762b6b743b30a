/*
 * tests/check_recompute.c - gradient checkpointing (tapegrad/recompute.h):
 * gradients equal to the plain run, fewer nodes kept, and the failures of a
 * segment function in forward and in backward.
 *
 * The reference is the same computation recorded on the tape directly (the
 * plain run), in f64; the checkpointed gradients must agree to a relative
 * 1e-12.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include <tapegrad/check.h>

enum { DEPTH = 6, WIDTH = 5, BATCH = 3, PER = 2 }; /* PER layers per segment */

struct mlp {
    struct tg_tensor *W[DEPTH], *b[DEPTH], *x;
};

static struct tg_tensor *param(struct tg_rng *r, int rank, const int64_t *shape)
{
    struct tg_tensor *t = tg_tensor_normal(TG_F64, rank, shape, r, 0, 0.6);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

static void mlp_init(struct mlp *m)
{
    struct tg_rng r;
    tg_rng_seed(&r, 7);
    for (int k = 0; k < DEPTH; k++) {
        m->W[k] = param(&r, 2, (int64_t[]){WIDTH, WIDTH});
        m->b[k] = param(&r, 1, (int64_t[]){WIDTH});
    }
    m->x = param(&r, 2, (int64_t[]){BATCH, WIDTH});
}

static void mlp_free(struct mlp *m)
{
    for (int k = 0; k < DEPTH; k++) tg_tensor_free(m->W[k]), tg_tensor_free(m->b[k]);
    tg_tensor_free(m->x);
}

static void mlp_zero_grad(struct mlp *m)
{
    for (int k = 0; k < DEPTH; k++) tg_tensor_zero_grad(m->W[k]), tg_tensor_zero_grad(m->b[k]);
    tg_tensor_zero_grad(m->x);
}

/* The segment: in = {h, W_1, b_1, ..., W_PER, b_PER}; PER tanh layers. */
static struct tg_tensor *layers(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)u;
    struct tg_tensor *h = in[0];
    for (int k = 1; k + 1 < n; k += 2) h = tg_linear(T, h, in[k], in[k + 1], TG_ACT_TANH);
    return h;
}

/* sum(h_DEPTH^2), with every PER layers one tg_recompute node (ckpt) or not */
static struct tg_tensor *mlp_loss(struct tg_tape *T, struct mlp *m, bool ckpt)
{
    struct tg_tensor *h = m->x;
    for (int s = 0; s < DEPTH / PER; s++) {
        struct tg_tensor *in[1 + 2 * PER] = {h};
        for (int k = 0; k < PER; k++) {
            in[1 + 2 * k] = m->W[s * PER + k];
            in[2 + 2 * k] = m->b[s * PER + k];
        }
        h = ckpt ? tg_recompute(T, layers, in, 1 + 2 * PER, NULL)
                 : layers(T, in, 1 + 2 * PER, NULL);
    }
    return tg_sum(T, tg_mul(T, h, h));
}

/* Every gradient of m, flattened into g (returns how many). */
static int64_t grads_of(const struct mlp *m, double *g)
{
    int64_t n = 0;
    for (int k = 0; k < DEPTH; k++) {
        for (int64_t i = 0; i < tg_tensor_numel(m->W[k]); i++)
            g[n++] = tg_tensor_grad_get(m->W[k], i);
        for (int64_t i = 0; i < tg_tensor_numel(m->b[k]); i++)
            g[n++] = tg_tensor_grad_get(m->b[k], i);
    }
    for (int64_t i = 0; i < tg_tensor_numel(m->x); i++) g[n++] = tg_tensor_grad_get(m->x, i);
    return n;
}

enum { N_GRADS = DEPTH * (WIDTH * WIDTH + WIDTH) + BATCH * WIDTH };

static void assert_close(const double *want, const double *got, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12 * fmax(fabs(want[i]), 1e-300) ||
                          got[i] == want[i],
                      "gradient %lld: %.17g, plain run %.17g", (long long)i, got[i], want[i]);
}

START_TEST(test_gradients_equal_plain)
{
    struct mlp m;
    mlp_init(&m);
    static double want[N_GRADS], got[N_GRADS];
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *L = mlp_loss(T, &m, false);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    double want_loss = tg_tensor_item(L);
    ck_assert_int_eq(grads_of(&m, want), N_GRADS);
    struct tg_tape_stats plain;
    tg_tape_stats(T, &plain);
    tg_tape_reset(T);
    mlp_zero_grad(&m);
    L = mlp_loss(T, &m, true);
    ck_assert_ptr_nonnull(L);
    ck_assert_double_eq(tg_tensor_item(L), want_loss);
    struct tg_tape_stats ck;
    tg_tape_stats(T, &ck);
    ck_assert_int_eq(ck.n_nodes, DEPTH / PER + 2); /* the segments' nodes are not kept */
    ck_assert_int_eq(plain.n_nodes, DEPTH + 2);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    grads_of(&m, got);
    assert_close(want, got, N_GRADS);
    /* a second sweep over the same recording adds the same again */
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    grads_of(&m, got);
    for (int i = 0; i < N_GRADS; i++) want[i] *= 2;
    assert_close(want, got, N_GRADS);
    tg_tape_free(T);
    mlp_free(&m);
}
END_TEST

/* tg_backward_apply through checkpointed segments: the same update as plain. */
START_TEST(test_backward_apply_equal)
{
    struct mlp a, b;
    mlp_init(&a);
    mlp_init(&b);
    struct tg_tape *T = tg_tape_new();
    struct mlp *ms[2] = {&a, &b};
    for (int c = 0; c < 2; c++) {
        struct tg_apply up[2 * DEPTH];
        for (int k = 0; k < DEPTH; k++) {
            up[2 * k] = (struct tg_apply){ms[c]->W[k], -0.1, 1};
            up[2 * k + 1] = (struct tg_apply){ms[c]->b[k], -0.1, 1};
        }
        ck_assert_int_eq(tg_backward_apply(mlp_loss(T, ms[c], c == 1), NULL, up, 2 * DEPTH), TG_OK);
        tg_tape_reset(T);
    }
    for (int k = 0; k < DEPTH; k++)
        for (int64_t i = 0; i < WIDTH * WIDTH; i++)
            ck_assert_double_eq_tol(tg_tensor_get(b.W[k], i), tg_tensor_get(a.W[k], i),
                                    1e-12 * fmax(1, fabs(tg_tensor_get(a.W[k], i))));
    tg_tape_free(T);
    mlp_free(&a);
    mlp_free(&b);
}
END_TEST

/* Nested: a segment that itself checkpoints its halves. */
static struct tg_tensor *two_halves(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    struct tg_tensor *first[3] = {in[0], in[1], in[2]};
    struct tg_tensor *h = tg_recompute(T, layers, first, 3, NULL);
    struct tg_tensor *second[3] = {h, in[3], in[4]};
    return tg_recompute(T, layers, second, 3, NULL);
}

START_TEST(test_nested)
{
    struct mlp m;
    mlp_init(&m);
    static double want[N_GRADS], got[N_GRADS];
    struct tg_tape *T = tg_tape_new();
    ck_assert_int_eq(tg_backward(mlp_loss(T, &m, false), NULL), TG_OK);
    grads_of(&m, want);
    tg_tape_reset(T);
    mlp_zero_grad(&m);
    struct tg_tensor *h = m.x;
    for (int s = 0; s < DEPTH / 2; s++) {
        struct tg_tensor *in[5] = {h, m.W[2 * s], m.b[2 * s], m.W[2 * s + 1], m.b[2 * s + 1]};
        h = tg_recompute(T, two_halves, in, 5, NULL);
    }
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, h, h)), NULL), TG_OK);
    grads_of(&m, got);
    assert_close(want, got, N_GRADS);
    tg_tape_free(T);
    mlp_free(&m);
}
END_TEST

/* tg_gradcheck differentiates through a checkpointed segment. */
static struct tg_tensor *f_ckpt(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)u;
    struct tg_tensor *h = tg_recompute(T, layers, in, n, NULL);
    return tg_sum(T, tg_sin(T, h));
}

START_TEST(test_gradcheck)
{
    struct mlp m;
    mlp_init(&m);
    struct tg_tensor *in[5] = {m.x, m.W[0], m.b[0], m.W[1], m.b[1]};
    ck_assert_gradcheck(f_ckpt, in, 5, NULL, NULL);
    mlp_free(&m);
}
END_TEST

/* tg_grad through recompute nodes (the segment recorded on the tape itself)
 * equals tg_grad of the plain run, with and without create_graph; second
 * order through a segment passes tg_gradgradcheck. */
START_TEST(test_grad_higher_order)
{
    struct mlp m;
    mlp_init(&m);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *wrt[2] = {m.x, m.W[3]};
    for (int cg = 0; cg < 2; cg++) {
        struct tg_grad_options o = {.create_graph = cg};
        struct tg_tensor *want[2], *got[2];
        ck_assert_int_eq(
            tg_grad(1, (struct tg_tensor *[]){mlp_loss(T, &m, false)}, NULL, 2, wrt, &o, want),
            TG_OK);
        ck_assert_int_eq(
            tg_grad(1, (struct tg_tensor *[]){mlp_loss(T, &m, true)}, NULL, 2, wrt, &o, got),
            TG_OK);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(tg_tensor_requires_grad(got[k]), cg);
            for (int64_t i = 0; i < tg_tensor_numel(want[k]); i++) {
                double a = tg_tensor_get(want[k], i), b = tg_tensor_get(got[k], i);
                ck_assert_msg(fabs(a - b) <= 1e-12 * fabs(a) || a == b, "%d %lld: %.17g vs %.17g",
                              k, (long long)i, b, a);
            }
        }
        tg_tape_reset(T);
    }
    struct tg_tensor *in[5] = {m.x, m.W[0], m.b[0], m.W[1], m.b[1]};
    ck_assert_gradgradcheck(f_ckpt, in, 5, NULL, NULL);
    tg_tape_free(T);
    mlp_free(&m);
}
END_TEST

/* A leaf's hook on a parameter used inside a segment: once, with the full
 * gradient (the stand-in adds straight into the leaf's gradient). */
static enum tg_status copy_hook(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    double *seen = user;
    seen[0] += 1;
    seen[1] = ((const double *)tg_tensor_data(grad))[0];
    (void)t;
    return TG_OK;
}

START_TEST(test_hooks_and_trace)
{
    struct mlp m;
    mlp_init(&m);
    struct tg_tape *T = tg_tape_new();
    double seen[2] = {0, 0};
    ck_assert_int_gt(tg_hook_add(m.W[0], copy_hook, seen), 0);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(mlp_loss(T, &m, true), NULL, &tr), TG_OK);
    ck_assert_double_eq(seen[0], 1);
    ck_assert_double_eq(seen[1], tg_tensor_grad_get(m.W[0], 0));
    ck_assert_int_eq(tr->n_steps, DEPTH / PER + 2);
    ck_assert_str_eq(tr->steps[2].op_name, "recompute");
    tg_trace_free(tr);
    tg_tape_free(T);
    mlp_free(&m);
}
END_TEST

/* ---- failures ---- */
struct bad {
    struct tg_tape *outer; /* the caller's tape, which fn must not record on */
    int calls, fail_at;    /* fn fails (or changes shape) on call fail_at */
    bool reshape;
};

static struct tg_tensor *on_outer(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)T, (void)n;
    return tg_exp(((struct bad *)u)->outer, in[0]);
}
static struct tg_tensor *identity(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)T, (void)n, (void)u;
    return in[0];
}
static struct tg_tensor *flaky(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)n;
    struct bad *B = u;
    if (++B->calls != B->fail_at) return tg_exp(T, in[0]);
    if (B->reshape) return tg_sum(T, in[0]);
    tg_set_error(TG_ERR_IO, "flaky: the segment failed on call %d", B->calls);
    return NULL;
}
static struct tg_tensor *to_f32(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return tg_add(T, in[1], in[1]); /* input 2's dtype */
}

START_TEST(test_forward_errors)
{
    int64_t n = 3;
    struct tg_tensor *x = tg_tensor_full(TG_F64, 1, &n, 0.5),
                     *x32 = tg_tensor_full(TG_F32, 1, &n, 1);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct bad B = {.outer = T};
    tg_clear_error();
    ck_assert_ptr_null(tg_recompute(T, on_outer, &x, 1, &B));
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_recompute: fn returned a tensor of a "
                                                  "different tape"));
    ck_assert_ptr_null(tg_recompute(T, identity, &x, 1, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    B = (struct bad){.fail_at = 1};
    ck_assert_ptr_null(tg_recompute(T, flaky, &x, 1, &B));
    ck_assert_int_eq(tg_last_status(), TG_ERR_IO);
    ck_assert_str_eq(tg_last_error(), "flaky: the segment failed on call 1");
    struct tg_tensor *mixed[2] = {x, x32};
    ck_assert_ptr_null(tg_recompute(T, to_f32, mixed, 2, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_recompute(NULL, identity, &x, 1, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_recompute(T, NULL, &x, 1, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_recompute(T, identity, &x, 0, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    tg_clear_error();
    ck_assert_ptr_null(tg_recompute(T, identity, &(struct tg_tensor *){NULL}, 1, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    struct tg_tensor *old = tg_exp(T, x);
    tg_tape_reset(T);
    ck_assert_ptr_null(tg_recompute(T, flaky, &old, 1, &B));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    /* inputs that need no gradient: a plain value, no recomputation */
    tg_tensor_set_requires_grad(x, false);
    B = (struct bad){0};
    struct tg_tensor *y = tg_recompute(T, flaky, &x, 1, &B);
    ck_assert_ptr_nonnull(y);
    ck_assert(!tg_tensor_requires_grad(y));
    ck_assert_double_eq_tol(tg_tensor_get(y, 0), exp(0.5), 1e-15);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(x32);
}
END_TEST

/* Failures while recomputing stop the sweep with their status. */
START_TEST(test_backward_errors)
{
    int64_t n = 3;
    struct tg_tensor *x = tg_tensor_full(TG_F64, 1, &n, 0.5);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    struct bad B = {.fail_at = 2};
    struct tg_tensor *L = tg_sum(T, tg_recompute(T, flaky, &x, 1, &B));
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_IO);
    ck_assert_str_eq(tg_last_error(), "flaky: the segment failed on call 2");
    B = (struct bad){.fail_at = 2, .reshape = true};
    tg_tape_reset(T);
    L = tg_sum(T, tg_recompute(T, flaky, &x, 1, &B));
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "gave f64 (), but f64 (3) the first time"));
    /* it works again once fn does */
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), exp(0.5), 1e-15);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Anomaly mode reaches into the recomputation and names the op inside. */
static struct tg_tensor *root_seg(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)n, (void)u;
    return tg_sqrt(T, in[0]);
}

START_TEST(test_anomaly)
{
    int64_t n = 2;
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, &n, (double[]){1, 0});
    tg_tensor_set_requires_grad(x, true);
    struct tg_tape *T = tg_tape_new();
    tg_tape_set_anomaly(T, true);
    struct tg_tensor *L = tg_sum(T, tg_recompute(T, root_seg, &x, 1, NULL));
    ck_assert_ptr_nonnull(L);
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "backward of sqrt"));
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static Suite *recompute_suite(void)
{
    Suite *s = suite_create("recompute");
    TCase *tc = tcase_create("recompute");
    tcase_add_test(tc, test_gradients_equal_plain);
    tcase_add_test(tc, test_backward_apply_equal);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_hooks_and_trace);
    tcase_add_test(tc, test_grad_higher_order);
    tcase_add_test(tc, test_forward_errors);
    tcase_add_test(tc, test_backward_errors);
    tcase_add_test(tc, test_anomaly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(recompute_suite());
}
