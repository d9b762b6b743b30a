/*
 * tests/check_vjp_graph_b.c - the differentiable VJPs (desc->vjp_graph) of the
 * ops of ops/matmul.c, softmax.c, reduce.c, reduce_axis.c, shape.c and index.c,
 * of norm.c, embedding.c and where.c, and of conv.c and pool.c.
 *
 * For every gradient-check case of each of these ops (gradcases/), on new random
 * shapes each repeat:
 *   - values: the op's node is recorded, its vjp_graph called with a random dy
 *     (a tape constant) for the inputs that require a gradient, and every dx
 *     compared, element by element, with what the first-order backward
 *     (tg_backward from the node with the same seed) gives those inputs; in f64
 *     and in f32; a dx of NULL must stand for zeros; inputs not asked for are
 *     left alone; each dx has its input's shape and dtype;
 *   - second order: s(x, dy) = sum_i <dx_i(x, dy), W_i> (W_i fixed) is
 *     gradchecked against central differences with respect to the op's inputs
 *     and to dy, which checks that the recorded VJP is differentiable and that
 *     its derivatives are right (the second derivatives of the op).
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradcases.h"
#include "vjp_graph_b_desc.h"

enum { REPEATS = 4, MAX_OP_IN = 8 };

static const enum tg_op ops_b[] = {
    TG_OP_MATMUL,
    TG_OP_SUM,
    TG_OP_MEAN,
    TG_OP_SUM_AXES,
    TG_OP_MEAN_AXES,
    TG_OP_MAX_AXES,
    TG_OP_MIN_AXES,
    TG_OP_LOGSUMEXP_AXES,
    TG_OP_VAR_AXES,
    TG_OP_ARGMAX_AXES,
    TG_OP_ARGMIN_AXES,
    TG_OP_SOFTMAX,
    TG_OP_LOG_SOFTMAX,
    TG_OP_RESHAPE,
    TG_OP_SQUEEZE,
    TG_OP_UNSQUEEZE,
    TG_OP_TRANSPOSE,
    TG_OP_PERMUTE,
    TG_OP_BROADCAST_TO,
    TG_OP_SLICE,
    TG_OP_INDEX_SELECT,
    TG_OP_GATHER,
    TG_OP_CONCAT,
    TG_OP_STACK,
    TG_OP_SLICE_SCATTER,
    TG_OP_INDEX_ADD,
    TG_OP_SCATTER_ADD,
    TG_OP_BATCH_NORM,
    TG_OP_LAYER_NORM,
    TG_OP_EMBEDDING,
    TG_OP_WHERE,
    TG_OP_CLAMP,
    TG_OP_CONV2D,
    TG_OP_CONV2D_INPUT_GRAD,
    TG_OP_CONV2D_WEIGHT_GRAD,
    TG_OP_MAX_POOL2D,
    TG_OP_AVG_POOL2D,
};
enum { N_OPS = sizeof ops_b / sizeof ops_b[0] };

struct family {
    const struct gc_case *cases;
    const int *n;
};
static const struct family families[] = {
    {gc_cases_elementwise, &gc_n_elementwise},
    {gc_cases_nn, &gc_n_nn},
    {gc_cases_linalg, &gc_n_linalg},
    {gc_cases_shape, &gc_n_shape},
    {gc_cases_norm, &gc_n_norm},
    {gc_cases_conv, &gc_n_conv},
};

/* The node of op under y, the one nearest y (iterative walk). */
static struct tg_tensor *find_op(struct tg_tensor *y, enum tg_op op)
{
    enum { MAX_NODES = 256 };
    struct tg_tensor *stack[MAX_NODES], *seen[MAX_NODES];
    int top = 0, n_seen = 0;
    stack[top++] = y;
    while (top > 0) {
        struct tg_tensor *t = stack[--top];
        if (tg_tensor_op(t) == op) return t;
        for (int i = 0; i < tg_tensor_n_inputs(t); i++) {
            struct tg_tensor *x = tg_tensor_input(t, i);
            bool old = false;
            for (int k = 0; k < n_seen && !old; k++) old = seen[k] == x;
            if (!x || old || n_seen == MAX_NODES || top == MAX_NODES) continue;
            seen[n_seen++] = x;
            stack[top++] = x;
        }
    }
    return NULL;
}

/* A tape constant of t's shape in dtype dt, values in [-1, 1] (f32-exact). */
static struct tg_tensor *rand_const(struct tg_tape *T, struct tg_rng *r, enum tg_dtype dt,
                                    const struct tg_tensor *like)
{
    int64_t n = tg_tensor_numel(like);
    double *d = malloc((size_t)(n + 1) * sizeof *d);
    float *f = malloc((size_t)(n + 1) * sizeof *f);
    ck_assert(d && f);
    for (int64_t k = 0; k < n; k++) f[k] = (float)(2 * tg_rng_uniform(r) - 1), d[k] = f[k];
    struct tg_tensor *c = tg_tape_constant(T, dt, tg_tensor_rank(like), tg_tensor_shape(like),
                                           dt == TG_F64 ? (const void *)d : (const void *)f);
    free(d);
    free(f);
    ck_assert_ptr_nonnull(c);
    return c;
}

static struct tg_tensor *const SENTINEL = (struct tg_tensor *)&ops_b;

/* Inputs of case gc for run (c, rep), in dtype dt; returns how many. */
static int make_inputs(const struct gc_case *gc, int c, int rep, enum tg_dtype dt,
                       struct tg_tensor **in)
{
    struct tg_rng rng;
    struct tg_tensor *in64[GC_MAX_IN] = {0};
    tg_rng_seed(&rng, 4242u + 1000u * (unsigned)gc->op + 10u * (unsigned)c + (unsigned)rep);
    int n = gc->make(&rng, in64);
    ck_assert_msg(n > 0, "%s: %s", gc->label, tg_last_error());
    for (int i = 0; i < n; i++) {
        if (dt == TG_F64) {
            in[i] = in64[i];
            continue;
        }
        in[i] = tg_tensor_to(in64[i], dt);
        ck_assert_ptr_nonnull(in[i]);
        if (tg_tensor_requires_grad(in64[i])) tg_tensor_set_requires_grad(in[i], true);
        tg_tensor_free(in64[i]);
    }
    return n;
}

/* ---- values against the first-order backward ---- */

/* How many values snapshot takes: the node's and its k inputs'. */
static int64_t snapshot_len(const struct tg_tensor *o, int k)
{
    int64_t n = tg_tensor_numel(o);
    for (int i = 0; i < k; i++) n += tg_tensor_numel(tg_tensor_input(o, i));
    return n;
}
/* The values of o and of its inputs, in one malloc'd array. */
static double *snapshot(const struct tg_tensor *o, int k)
{
    int64_t n = 0;
    double *v = malloc((size_t)(snapshot_len(o, k) + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int64_t j = 0; j < tg_tensor_numel(o); j++) v[n++] = tg_tensor_get(o, j);
    for (int i = 0; i < k; i++) {
        const struct tg_tensor *x = tg_tensor_input(o, i);
        for (int64_t j = 0; j < tg_tensor_numel(x); j++) v[n++] = tg_tensor_get(x, j);
    }
    return v;
}

static void check_values(const struct gc_case *gc, int c, int rep, enum tg_dtype dt)
{
    struct tg_tensor *in[GC_MAX_IN] = {0}, *dx[MAX_OP_IN];
    bool need[MAX_OP_IN];
    int n = make_inputs(gc, c, rep, dt, in);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = gc->fn(T, in, n, NULL);
    ck_assert_msg(y != NULL, "%s: %s", gc->label, tg_last_error());
    struct tg_tensor *o = find_op(y, gc->op);
    if (!o && dt == TG_F32) { /* argmax's f32 case takes another way (gradcases.c) */
        tg_tape_free(T);
        for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
        return;
    }
    ck_assert_msg(o != NULL, "%s: no %s node", gc->label, tg_op_name(gc->op));
    int k = tg_tensor_n_inputs(o);
    ck_assert_int_le(k, MAX_OP_IN);
    struct tg_rng rng;
    tg_rng_seed(&rng, 99u + (unsigned)rep);
    struct tg_tensor *dy = rand_const(T, &rng, tg_tensor_dtype(o), o);
    for (int i = 0; i < k; i++) {
        need[i] = tg_tensor_requires_grad(tg_tensor_input(o, i));
        dx[i] = SENTINEL;
    }
    double *before = snapshot(o, k);
    enum tg_status st = vjpb_call(T, o, dy, need, dx);
    ck_assert_msg(st == TG_OK, "%s (%s): vjp_graph: %s", gc->label, tg_dtype_name(dt),
                  tg_last_error());
    double *after = snapshot(o, k);
    ck_assert_msg(!memcmp(before, after, (size_t)snapshot_len(o, k) * sizeof(double)),
                  "%s: vjp_graph changed the node or an input", gc->label);
    free(before);
    free(after);
    /* no input asked for: nothing recorded, nothing stored */
    {
        struct tg_tensor *dx0[MAX_OP_IN];
        bool none[MAX_OP_IN] = {false};
        struct tg_tape_stats s0, s1;
        for (int j = 0; j < k; j++) dx0[j] = SENTINEL;
        tg_tape_stats(T, &s0);
        ck_assert_int_eq(vjpb_call(T, o, dy, none, dx0), TG_OK);
        tg_tape_stats(T, &s1);
        ck_assert_msg(s1.n_nodes == s0.n_nodes, "%s: %zu nodes recorded for no input", gc->label,
                      s1.n_nodes - s0.n_nodes);
        for (int j = 0; j < k; j++) ck_assert(dx0[j] == SENTINEL);
    }
    /* one input at a time: the others are left alone, the one asked for is the same */
    for (int i = 0; k > 1 && i < k; i++) {
        struct tg_tensor *dx1[MAX_OP_IN];
        bool need1[MAX_OP_IN];
        for (int j = 0; j < k; j++) need1[j] = j == i, dx1[j] = SENTINEL;
        ck_assert_int_eq(vjpb_call(T, o, dy, need1, dx1), TG_OK);
        for (int j = 0; j < k; j++) {
            if (j != i) {
                ck_assert_msg(dx1[j] == SENTINEL, "%s: dx[%d] was not asked for", gc->label, j);
                continue;
            }
            ck_assert_ptr_ne(dx1[j], SENTINEL);
            for (int64_t e = 0; dx1[j] && dx[j] && e < tg_tensor_numel(dx[j]); e++)
                ck_assert_double_eq(tg_tensor_get(dx1[j], e), tg_tensor_get(dx[j], e));
        }
    }
    for (int i = 0; i < n; i++) tg_tensor_zero_grad(in[i]);
    ck_assert_msg(tg_backward(o, dy) == TG_OK, "%s: %s", gc->label, tg_last_error());
    double atol = dt == TG_F64 ? 1e-12 : 2e-6, rtol = dt == TG_F64 ? 1e-10 : 1e-4;
    for (int i = 0; i < k; i++) {
        const struct tg_tensor *x = tg_tensor_input(o, i);
        if (!need[i]) {
            ck_assert_msg(dx[i] == SENTINEL, "%s: dx[%d] was not asked for", gc->label, i);
            continue;
        }
        ck_assert_msg(dx[i] != SENTINEL, "%s: dx[%d] was not stored", gc->label, i);
        int64_t m = tg_tensor_numel(x);
        if (dx[i]) {
            ck_assert_int_eq(tg_tensor_dtype(dx[i]), tg_tensor_dtype(x));
            ck_assert_int_eq(tg_tensor_rank(dx[i]), tg_tensor_rank(x));
            for (int d = 0; d < tg_tensor_rank(x); d++)
                ck_assert_int_eq(tg_tensor_shape(dx[i])[d], tg_tensor_shape(x)[d]);
        }
        double scale = 1;
        for (int64_t j = 0; j < m; j++) scale = fmax(scale, fabs(tg_tensor_grad_get(x, j)));
        for (int64_t j = 0; j < m; j++) {
            double want = tg_tensor_grad_get(x, j), got = dx[i] ? tg_tensor_get(dx[i], j) : 0;
            ck_assert_msg(fabs(got - want) <= atol * scale + rtol * fabs(want),
                          "%s (%s, repeat %d): dx[%d][%lld] = %.17g, backward gives %.17g",
                          gc->label, tg_dtype_name(dt), rep, i, (long long)j, got, want);
        }
    }
    tg_tape_free(T);
    for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
}

/* ---- second order: s = sum_i <dx_i, W_i> gradchecked in x and dy ---- */

struct so_ctx {
    const struct gc_case *gc;
    int n; /* the case's inputs; inputs[n] is dy */
};

static struct tg_tensor *second_order_fn(struct tg_tape *T, struct tg_tensor *const *x, int nx,
                                         void *vctx)
{
    const struct so_ctx *c = vctx;
    struct tg_tensor *y = c->gc->fn(T, x, c->n, NULL), *dx[MAX_OP_IN], *s = NULL;
    struct tg_tensor *o = y ? find_op(y, c->gc->op) : NULL;
    bool need[MAX_OP_IN];
    if (!o) return NULL;
    int k = tg_tensor_n_inputs(o);
    /* every input: the numeric side runs on copies that require no gradient */
    for (int i = 0; i < k; i++) {
        need[i] = true;
        dx[i] = NULL;
    }
    if (vjpb_call(T, o, x[c->n], need, dx)) return NULL;
    for (int i = 0; i < k; i++) {
        if (!need[i] || !dx[i]) continue;
        struct tg_rng r; /* the same W_i on every call */
        tg_rng_seed(&r, 777u + (unsigned)i);
        struct tg_tensor *w = rand_const(T, &r, tg_tensor_dtype(dx[i]), dx[i]);
        struct tg_tensor *term = tg_sum(T, tg_mul(T, dx[i], w));
        s = s ? tg_add(T, s, term) : term;
    }
    return s;
}

static void check_second_order(const struct gc_case *gc, int c, int rep)
{
    struct tg_tensor *in[GC_MAX_IN + 1] = {0};
    int n = make_inputs(gc, c, rep, TG_F64, in);
    /* dy: a leaf of the node's shape */
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = gc->fn(T, in, n, NULL);
    struct tg_tensor *o = y ? find_op(y, gc->op) : NULL;
    ck_assert_msg(o != NULL, "%s: %s", gc->label, tg_last_error());
    struct tg_rng rng;
    tg_rng_seed(&rng, 31u + (unsigned)rep);
    in[n] = gc_rand(&rng, tg_tensor_rank(o), tg_tensor_shape(o), -1, 1, true);
    tg_tape_free(T);
    struct so_ctx ctx = {gc, n};
    struct tg_gradcheck_options opt = {.atol = 1e-7, .rtol = 1e-5};
    struct tg_gradcheck_report r;
    enum tg_status st = tg_gradcheck(second_order_fn, in, n + 1, &ctx, &opt, &r);
    ck_assert_msg(st == TG_OK, "%s (repeat %d): second order: %s", gc->label, rep, r.message);
    for (int i = 0; i <= n; i++) tg_tensor_free(in[i]);
}

/* Every case of ops_b[_i], REPEATS times. */
START_TEST(test_vjp_graph_op)
{
    enum tg_op op = ops_b[_i];
    ck_assert_msg(vjpb_has(op), "%s has no vjp_graph", tg_op_name(op));
    int cases = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (int c = 0; c < *families[f].n; c++) {
            const struct gc_case *gc = &families[f].cases[c];
            if (gc->op != op) continue;
            cases++;
            for (int rep = 0; rep < REPEATS; rep++) {
                check_values(gc, c, rep, TG_F64);
                check_values(gc, c, rep, TG_F32);
                /* argmax/argmin: no gradient, nothing to differentiate */
                if (op != TG_OP_ARGMAX_AXES && op != TG_OP_ARGMIN_AXES)
                    check_second_order(gc, c, rep);
            }
        }
    ck_assert_msg(cases > 0, "%s has no gradient-check case", tg_op_name(op));
}
END_TEST

/* The check can fail: a dx that is off by a factor is reported. Here the
 * "VJP" of sum_axes is compared against the first-order gradient of mean_axes
 * over the same axes (which differs by 1/N). */
START_TEST(test_values_check_catches)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_full(TG_F64, 2, (int64_t[]){2, 3}, 0.5);
    tg_tensor_set_requires_grad(x, true);
    int ax = 1;
    struct tg_tensor *s = tg_sum_axes(T, x, &ax, 1, false), *m = tg_mean_axes(T, x, &ax, 1, false);
    struct tg_tensor *dy = tg_tape_constant(T, TG_F64, 1, (int64_t[]){2}, (double[]){1, 2});
    struct tg_tensor *dx[1] = {NULL};
    ck_assert_int_eq(vjpb_call(T, s, dy, (bool[]){true}, dx), TG_OK);
    ck_assert_int_eq(tg_backward(m, dy), TG_OK);
    ck_assert_double_eq(tg_tensor_get(dx[0], 4), 2);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 4), 2.0 / 3, 1e-15);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Hand-derived second derivative through softmax's VJP: for y = softmax(x) on
 * two elements and dy = (1, 0), dx_0 = y0 (1 - y0) = y0 y1, whose derivative
 * in x_0 is y0 y1 (y1 - y0). */
START_TEST(test_softmax_second_derivative)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, (double[]){0.3, -0.4});
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *y = tg_softmax(T, x, 0);
    struct tg_tensor *dy = tg_tape_constant(T, TG_F64, 1, (int64_t[]){2}, (double[]){1, 0});
    struct tg_tensor *dx[1] = {NULL};
    ck_assert_int_eq(vjpb_call(T, y, dy, (bool[]){true}, dx), TG_OK);
    struct tg_tensor *d0 = tg_sum(T, tg_slice_axis(T, dx[0], 0, 0, 1, 1));
    ck_assert_int_eq(tg_backward(d0, NULL), TG_OK);
    double y0 = 1 / (1 + exp(-0.7)), y1 = 1 - y0;
    ck_assert_double_eq_tol(tg_tensor_item(d0), y0 * y1, 1e-15);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 0), y0 * y1 * (y1 - y0), 1e-15);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 1), -y0 * y1 * (y1 - y0), 1e-15);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

static Suite *vjp_graph_b_suite(void)
{
    Suite *s = suite_create("vjp_graph_b");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_vjp_graph_op, 0, N_OPS);
    tcase_add_test(tc, test_values_check_catches);
    tcase_add_test(tc, test_softmax_second_derivative);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(vjp_graph_b_suite());
}
