/*
 * tests/check_jvp.c - tg_jvp, forward mode by transposing the recorded VJP.
 *
 * The reference is tg_jacobian (engine/jacobian.c: J row by row from one-hot
 * reverse sweeps with the ops' fast kernels, not tg_grad) times v, on several ops,
 * on a small MLP with respect to its input and every parameter at once, and with
 * several outputs; closed forms for the derivatives of J v itself (create_graph),
 * for a no-grad scope, for unused inputs and for outputs that need no gradient.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *rnd(uint64_t seed, enum tg_dtype dt, int rank, const int64_t *shape)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    struct tg_tensor *t = tg_tensor_uniform(dt, rank, shape, &rng, -1.5, 1.5);
    ck_assert_ptr_nonnull(t);
    return t;
}

static struct tg_tensor *f_tanh(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_tanh(T, x[0]);
}
static struct tg_tensor *f_xsinx(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_mul(T, x[0], tg_sin(T, x[0]));
}
static struct tg_tensor *f_softmax(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_softmax(T, x[0], -1);
}
static struct tg_tensor *f_logsoftmax0(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    return tg_log_softmax(T, x[0], 0);
}
static struct tg_tensor *f_matmul(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_matmul(T, x[0], c); /* (3,4) x (4,2) */
}
static struct tg_tensor *f_ratio(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    /* x / (x^2 + 1) */
    return tg_div(T, x[0], tg_add_scalar(T, tg_mul(T, x[0], x[0]), 1));
}
static struct tg_tensor *f_cube_sum(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sum(T, tg_pow_scalar(T, x[0], 3)); /* one-element output */
}
static struct tg_tensor *f_transpose_exp(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                         void *c)
{
    return tg_exp(T, tg_transpose(T, x[0], 0, 1));
}
static struct tg_tensor *f_logsumexp(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_logsumexp_axes(T, x[0], (int[]){1}, 1, false);
}
static struct tg_tensor *f_softplus_sigmoid(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                            void *c)
{
    return tg_mul(T, tg_softplus(T, x[0]), tg_sigmoid(T, x[0]));
}

static const struct {
    const char *name;
    tg_gradcheck_fn fn;
} cases[] = {
    {"tanh", f_tanh},
    {"x sin x", f_xsinx},
    {"softmax(x, -1)", f_softmax},
    {"log_softmax(x, 0)", f_logsoftmax0},
    {"matmul(x, W)", f_matmul},
    {"x / (x^2 + 1)", f_ratio},
    {"sum(x^3)", f_cube_sum},
    {"exp(x^T)", f_transpose_exp},
    {"logsumexp(x, 1)", f_logsumexp},
    {"softplus(x) sigmoid(x)", f_softplus_sigmoid},
};

/* want[k] = sum_j J[k, j] v[j] for J of shape y.shape + x.shape (f64). */
static void jac_times(const struct tg_tensor *J, const struct tg_tensor *v, double *want,
                      int64_t rows, bool add)
{
    int64_t cols = tg_tensor_numel(v);
    ck_assert_int_eq(tg_tensor_numel(J), rows * cols);
    const double *j = tg_tensor_data(J);
    for (int64_t k = 0; k < rows; k++) {
        double s = 0;
        for (int64_t c = 0; c < cols; c++) s += j[k * cols + c] * tg_tensor_get(v, c);
        want[k] = add ? want[k] + s : s;
    }
}

static void expect_close(const struct tg_tensor *got, const double *want, double tol,
                         const char *what)
{
    for (int64_t k = 0; k < tg_tensor_numel(got); k++) {
        double g = tg_tensor_get(got, k);
        ck_assert_msg(fabs(g - want[k]) <= tol * (1 + fabs(want[k])),
                      "%s: jv[%lld] = %.17g, J v = %.17g", what, (long long)k, g, want[k]);
    }
}

/* One op: tg_jvp against tg_jacobian(fn) . v, in f64 and in f32. */
START_TEST(test_ops_against_jacobian)
{
    for (int d = 0; d < 2; d++) {
        enum tg_dtype dt = d ? TG_F32 : TG_F64;
        struct tg_tensor *x = rnd(11 + (uint64_t)_i, dt, 2, (int64_t[]){3, 4});
        struct tg_tensor *v = rnd(97 + (uint64_t)_i, dt, 2, (int64_t[]){3, 4});
        struct tg_tensor *W = rnd(5, dt, 2, (int64_t[]){4, 2});
        struct tg_tensor *J = NULL, *jv = NULL;
        ck_assert_int_eq(tg_jacobian(cases[_i].fn, W, x, &J, NULL), TG_OK);
        struct tg_tape *T = tg_tape_new();
        tg_tensor_set_requires_grad(x, true);
        struct tg_tensor *y = cases[_i].fn(T, &x, 1, W);
        ck_assert_ptr_nonnull(y);
        int64_t rows = tg_tensor_numel(y);
        double *want = malloc((size_t)rows * sizeof *want);
        jac_times(J, v, want, rows, false);
        uint64_t version = tg_tensor_grad_version(x);
        ck_assert_msg(tg_jvp(1, &y, 1, &x, &v, NULL, &jv) == TG_OK, "%s: %s", cases[_i].name,
                      tg_last_error());
        ck_assert_int_eq(tg_tensor_numel(jv), rows);
        ck_assert_int_eq(tg_tensor_rank(jv), tg_tensor_rank(y));
        ck_assert_int_eq(tg_tensor_dtype(jv), dt);
        ck_assert(!tg_tensor_requires_grad(jv));
        expect_close(jv, want, d ? 2e-5 : 1e-12, cases[_i].name);
        /* no leaf's gradient was touched */
        ck_assert_int_eq(tg_tensor_grad_version(x), version);
        free(want);
        tg_tape_free(T);
        tg_tensor_free(J);
        tg_tensor_free(x);
        tg_tensor_free(v);
        tg_tensor_free(W);
    }
}
END_TEST

/* ---- a small MLP: y = linear(tanh(linear(x, W1, b1)), W2, b2), softmax ---- */

enum { MLP_X, MLP_W1, MLP_B1, MLP_W2, MLP_B2, MLP_N };

struct mlp {
    struct tg_tensor *t[MLP_N];
    int which; /* the tensor that fn's input replaces */
};

static struct tg_tensor *mlp_forward(struct tg_tape *T, struct tg_tensor *const *t)
{
    struct tg_tensor *h = tg_linear(T, t[MLP_X], t[MLP_W1], t[MLP_B1], TG_ACT_TANH);
    return tg_softmax(T, tg_linear(T, h, t[MLP_W2], t[MLP_B2], TG_ACT_NONE), -1);
}

static struct tg_tensor *f_mlp(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    struct mlp *m = c;
    struct tg_tensor *t[MLP_N];
    memcpy(t, m->t, sizeof t);
    t[m->which] = in[0];
    return mlp_forward(T, t);
}

START_TEST(test_mlp_all_inputs)
{
    static const int64_t shapes[MLP_N][2] = {{4, 3}, {5, 3}, {5, 0}, {3, 5}, {3, 0}};
    struct mlp m;
    struct tg_tensor *v[MLP_N], *jv = NULL, *J;
    for (int i = 0; i < MLP_N; i++) {
        int rank = shapes[i][1] ? 2 : 1;
        m.t[i] = rnd(100 + (uint64_t)i, TG_F64, rank, shapes[i]);
        v[i] = rnd(200 + (uint64_t)i, TG_F64, rank, shapes[i]);
    }
    double want[12] = {0}; /* y: (4, 3) */
    for (int i = 0; i < MLP_N; i++) {
        m.which = i;
        ck_assert_int_eq(tg_jacobian(f_mlp, &m, m.t[i], &J, NULL), TG_OK);
        jac_times(J, v[i], want, 12, true);
        tg_tensor_free(J);
    }
    for (int i = 0; i < MLP_N; i++) tg_tensor_set_requires_grad(m.t[i], true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = mlp_forward(T, m.t);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_jvp(1, &y, MLP_N, m.t, v, NULL, &jv), TG_OK);
    expect_close(jv, want, 1e-12, "mlp");
    /* the same through the parameters alone (x not an input) */
    for (int k = 0; k < 12; k++) want[k] = 0;
    for (int i = MLP_W1; i < MLP_N; i++) {
        m.which = i;
        tg_tensor_set_requires_grad(m.t[i], false); /* tg_jacobian copies it */
        ck_assert_int_eq(tg_jacobian(f_mlp, &m, m.t[i], &J, NULL), TG_OK);
        jac_times(J, v[i], want, 12, true);
        tg_tensor_free(J);
    }
    for (int i = 0; i < MLP_N; i++) tg_tensor_set_requires_grad(m.t[i], true);
    tg_tape_reset(T);
    y = mlp_forward(T, m.t);
    ck_assert_int_eq(tg_jvp(1, &y, MLP_N - 1, m.t + 1, v + 1, NULL, &jv), TG_OK);
    expect_close(jv, want, 1e-12, "mlp parameters");
    tg_tape_free(T);
    for (int i = 0; i < MLP_N; i++) {
        tg_tensor_free(m.t[i]);
        tg_tensor_free(v[i]);
    }
}
END_TEST

/* Several outputs, one that does not depend on the inputs and one that needs no
 * gradient at all (a constant): y1 = tanh(x), y2 = sum(x^2), y3 = tanh(w),
 * y4 = a constant. jv1 = (1 - tanh^2 x) v, jv2 = 2 sum(x v), jv3 = jv4 = 0. */
START_TEST(test_several_outputs)
{
    const double xv[3] = {0.3, -1.1, 2.0}, vv[3] = {1.0, 0.5, -2.0};
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, xv);
    struct tg_tensor *v = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, vv);
    struct tg_tensor *w = tg_tensor_scalar(TG_F64, 0.4);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(w, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y[4] = {tg_tanh(T, x), tg_sum(T, tg_mul(T, x, x)), tg_tanh(T, w),
                              tg_tape_constant(T, TG_F64, 1, (int64_t[]){2}, NULL)};
    struct tg_tensor *jv[4];
    ck_assert_int_eq(tg_jvp(4, y, 1, &x, &v, NULL, jv), TG_OK);
    double dot = 0;
    for (int i = 0; i < 3; i++) {
        double t = tanh(xv[i]);
        ck_assert_double_eq_tol(tg_tensor_get(jv[0], i), (1 - t * t) * vv[i], 1e-15);
        dot += 2 * xv[i] * vv[i];
    }
    ck_assert_double_eq_tol(tg_tensor_item(jv[1]), dot, 1e-14);
    ck_assert_double_eq(tg_tensor_item(jv[2]), 0);
    ck_assert_int_eq(tg_tensor_numel(jv[3]), 2);
    ck_assert_double_eq(tg_tensor_get(jv[3], 1), 0);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(v);
    tg_tensor_free(w);
}
END_TEST

/* jv = d(x sin x)/dx v = (sin x + x cos x) v, with create_graph, differentiated
 * again: d sum(jv)/dx = (2 cos x - x sin x) v and d sum(jv)/dv = sin x + x cos x.
 * Inside a no-grad scope the same values come back, requiring no grad. */
START_TEST(test_create_graph_and_no_grad)
{
    const double xv[4] = {0.3, -1.2, 2.0, 0.0}, vv[4] = {0.5, 2.0, -1.0, 3.0};
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){4}, xv);
    struct tg_tensor *v = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){4}, vv);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(v, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_mul(T, x, tg_sin(T, x)), *jv = NULL, *g[2];
    struct tg_grad_options create = {.create_graph = true};
    ck_assert_int_eq(tg_jvp(1, &y, 1, &x, &v, &create, &jv), TG_OK);
    ck_assert(tg_tensor_requires_grad(jv));
    struct tg_tensor *L = tg_sum(T, jv), *xs[2] = {x, v};
    ck_assert_int_eq(tg_grad(1, &L, NULL, 2, xs, NULL, g), TG_OK);
    for (int i = 0; i < 4; i++) {
        double s = sin(xv[i]), c = cos(xv[i]);
        ck_assert_double_eq_tol(tg_tensor_get(jv, i), (s + xv[i] * c) * vv[i], 1e-14);
        ck_assert_double_eq_tol(tg_tensor_get(g[0], i), (2 * c - xv[i] * s) * vv[i], 1e-14);
        ck_assert_double_eq_tol(tg_tensor_get(g[1], i), s + xv[i] * c, 1e-14);
    }
    /* in a no-grad scope (two deep): computed all the same, requiring no grad;
     * the scopes are as they were afterwards */
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    ck_assert_int_eq(tg_jvp(1, &y, 1, &x, &v, &create, &jv), TG_OK);
    ck_assert(!tg_tensor_requires_grad(jv));
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(tg_tensor_get(jv, i), (sin(xv[i]) + xv[i] * cos(xv[i])) * vv[i],
                                1e-14);
    ck_assert(!tg_tape_grad_enabled(T));
    ck_assert_int_eq(tg_tape_no_grad_pop(T), TG_OK);
    ck_assert(!tg_tape_grad_enabled(T));
    ck_assert_int_eq(tg_tape_no_grad_pop(T), TG_OK);
    ck_assert(tg_tape_grad_enabled(T));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(v);
}
END_TEST

/* An input that no output depends on: an error naming it, or nothing added with
 * allow_unused. A node as input: h = 2x, y = tanh(h), J v = (1 - tanh^2 h) v. */
START_TEST(test_unused_and_node_inputs)
{
    const double xv[2] = {0.25, -0.5}, vv[2] = {2.0, 1.0};
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, xv);
    struct tg_tensor *z = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, xv);
    struct tg_tensor *v = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, vv);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(z, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = tg_mul_scalar(T, x, 2), *y = tg_tanh(T, h), *jv = NULL;
    struct tg_tensor *in[2] = {h, z}, *vs[2] = {v, v};
    ck_assert_int_eq(tg_jvp(1, &y, 2, in, vs, NULL, &jv), TG_ERR_TAPE);
    ck_assert_ptr_null(jv);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_jvp: input 1 is not on the graph"));
    struct tg_grad_options unused = {.allow_unused = true};
    ck_assert_int_eq(tg_jvp(1, &y, 2, in, vs, &unused, &jv), TG_OK);
    for (int i = 0; i < 2; i++) {
        double t = tanh(2 * xv[i]);
        ck_assert_double_eq_tol(tg_tensor_get(jv, i), (1 - t * t) * vv[i], 1e-15);
    }
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(z);
    tg_tensor_free(v);
}
END_TEST

static Suite *jvp_suite(void)
{
    Suite *s = suite_create("jvp");
    TCase *tc = tcase_create("jvp");
    tcase_add_loop_test(tc, test_ops_against_jacobian, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, test_mlp_all_inputs);
    tcase_add_test(tc, test_several_outputs);
    tcase_add_test(tc, test_create_graph_and_no_grad);
    tcase_add_test(tc, test_unused_and_node_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(jvp_suite());
}
