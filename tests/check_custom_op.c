/*
 * tests/check_custom_op.c - ops registered at run time (tapegrad/custom_op.h):
 * registration errors, gradient checks (and a wrong backward they must catch),
 * and every reader of ops treating a registered op as a built-in one.
 *
 * The ops here are the tests' own: cube (y = x^3, with a correct and a wrong
 * backward), softplus_ctx (keeps sigmoid(x) in its context for backward),
 * axpy (y = c a + b, a parameter and two inputs) and rowsum (a shape rule of its
 * own: (B, N) -> (B)). Expected values are closed-form derivatives.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include <tapegrad/check.h>

/* All ops here are f64 only (the tests never give them f32). */
static const double *in_f64(const struct tg_custom_op_args *a, int i)
{
    return tg_tensor_data(a->in[i]);
}
static int64_t numel0(const struct tg_custom_op_args *a)
{
    return tg_tensor_numel(a->in[0]);
}

/* ---- cube: y = x^3, dx += 3 x^2 dy; the wrong one adds 2 x^2 dy ---- */
static void cube_fwd(const struct tg_custom_op_args *a)
{
    const double *x = in_f64(a, 0);
    double *y = tg_tensor_data(a->out);
    for (int64_t i = 0; i < numel0(a); i++) y[i] = x[i] * x[i] * x[i];
}
static void cube_bwd_k(const struct tg_custom_op_args *a, const double *dy, double *dx, double k)
{
    const double *x = in_f64(a, 0);
    for (int64_t i = 0; i < numel0(a); i++) dx[i] += k * x[i] * x[i] * dy[i];
}
static void cube_bwd(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    cube_bwd_k(a, dy, dx[0], 3);
}
static void cube_bwd_wrong(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    cube_bwd_k(a, dy, dx[0], 2);
}
/* writes NaN: for anomaly mode */
static void cube_bwd_nan(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    (void)dy;
    double *d = dx[0];
    for (int64_t i = 0; i < numel0(a); i++) d[i] += NAN;
}

/* ---- softplus_ctx: y = log(1 + e^x); forward keeps s = sigmoid(x) in the
 * node's context, backward adds dy * s ---- */
static size_t sp_ctx_bytes(const struct tg_custom_op_args *a)
{
    ck_assert_ptr_null(a->out);
    return (size_t)numel0(a) * sizeof(double);
}
static void sp_fwd(const struct tg_custom_op_args *a)
{
    const double *x = in_f64(a, 0);
    double *y = tg_tensor_data(a->out), *s = a->ctx;
    for (int64_t i = 0; i < numel0(a); i++) {
        y[i] = fmax(x[i], 0) + log1p(exp(-fabs(x[i])));
        s[i] = 1 / (1 + exp(-x[i]));
    }
}
static void sp_bwd(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    const double *s = a->ctx, *g = dy;
    double *d = dx[0];
    for (int64_t i = 0; i < numel0(a); i++) d[i] += g[i] * s[i];
}
static enum tg_status sp_vjp(struct tg_tape *T, const struct tg_custom_op_args *a,
                             struct tg_tensor *dy, const bool *need, struct tg_tensor **dx)
{
    if (need[0]) dx[0] = tg_mul(T, dy, tg_sigmoid(T, a->in[0]));
    return need[0] && !dx[0] ? tg_last_status() : TG_OK;
}

/* ---- axpy: y = c a + b (c a parameter); da += c dy, db += dy ---- */
static void axpy_fwd(const struct tg_custom_op_args *a)
{
    const double *x = in_f64(a, 0), *b = in_f64(a, 1);
    double *y = tg_tensor_data(a->out);
    for (int64_t i = 0; i < numel0(a); i++) y[i] = a->params[0] * x[i] + b[i];
}
static void axpy_bwd(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    const double *g = dy;
    for (int64_t i = 0; i < numel0(a); i++) {
        if (dx[0]) ((double *)dx[0])[i] += a->params[0] * g[i];
        if (dx[1]) ((double *)dx[1])[i] += g[i];
    }
}

/* ---- rowsum: (B, N) -> (B), y_b = sum_n x_bn; dx_bn += dy_b ---- */
static enum tg_status rowsum_shape(const struct tg_custom_op_args *a, int *rank, int64_t *shape)
{
    if (tg_tensor_rank(a->in[0]) != 2)
        return tg_set_error(TG_ERR_SHAPE, "rowsum: input has rank %d, not 2",
                            tg_tensor_rank(a->in[0]));
    *rank = 1;
    shape[0] = tg_tensor_dim(a->in[0], 0);
    return TG_OK;
}
static void rowsum_fwd(const struct tg_custom_op_args *a)
{
    const double *x = in_f64(a, 0);
    double *y = tg_tensor_data(a->out);
    int64_t B = tg_tensor_dim(a->in[0], 0), N = tg_tensor_dim(a->in[0], 1);
    for (int64_t b = 0; b < B; b++) {
        y[b] = 0;
        for (int64_t n = 0; n < N; n++) y[b] += x[b * N + n];
    }
}
static void rowsum_bwd(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    const double *g = dy;
    double *d = dx[0];
    int64_t B = tg_tensor_dim(a->in[0], 0), N = tg_tensor_dim(a->in[0], 1);
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++) d[b * N + n] += g[b];
}

/* Registers def once per process (tests run in forked processes or not). */
static const struct tg_custom_op *reg(const struct tg_custom_op_def *def)
{
    const struct tg_custom_op *op = NULL;
    if (tg_custom_op_register(def, &op) == TG_OK) return op;
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE); /* registered by an earlier test */
    op = tg_custom_op_find(def->name);
    ck_assert_ptr_nonnull(op);
    return op;
}

static const struct tg_custom_op *cube_op(void)
{
    return reg(&(struct tg_custom_op_def){.name = "cube",
                                          .arity = 1,
                                          .formula = "y = x^3",
                                          .vjp = "dx += 3 x^2 dy",
                                          .forward = cube_fwd,
                                          .backward = cube_bwd,
                                          .elementwise = true});
}
static const struct tg_custom_op *softplus_op(void)
{
    return reg(&(struct tg_custom_op_def){.name = "softplus_ctx",
                                          .arity = 1,
                                          .forward = sp_fwd,
                                          .backward = sp_bwd,
                                          .vjp_graph = sp_vjp,
                                          .context_bytes = sp_ctx_bytes,
                                          .elementwise = true});
}
static const struct tg_custom_op *axpy_op(void)
{
    return reg(&(struct tg_custom_op_def){.name = "axpy",
                                          .arity = 2,
                                          .n_params = 1,
                                          .forward = axpy_fwd,
                                          .backward = axpy_bwd,
                                          .elementwise = true});
}
static const struct tg_custom_op *rowsum_op(void)
{
    return reg(&(struct tg_custom_op_def){.name = "rowsum",
                                          .arity = 1,
                                          .shape = rowsum_shape,
                                          .forward = rowsum_fwd,
                                          .backward = rowsum_bwd});
}

static struct tg_tensor *leaf(int rank, const int64_t *shape, const double *v)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, rank, shape, v);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK);
    return t;
}

/* ---- the functions the gradient checks differentiate (ctx: the op) ---- */
static struct tg_tensor *f_unary(struct tg_tape *T, struct tg_tensor *const *in, int n, void *op)
{
    (void)n;
    struct tg_tensor *y = tg_custom_op_call(T, op, in, NULL);
    return tg_sum(T, tg_mul(T, y, y)); /* a nonuniform seed for the op */
}
static struct tg_tensor *f_axpy(struct tg_tape *T, struct tg_tensor *const *in, int n, void *op)
{
    (void)n;
    const double c = -1.5;
    return tg_sum(T, tg_sin(T, tg_custom_op_call(T, op, in, &c)));
}

START_TEST(test_gradcheck)
{
    int64_t n = 5, m[2] = {2, 3};
    const double xv[6] = {-2.5, -0.3, 0.1, 0.9, 3.0, 1.2};
    struct tg_tensor *x = leaf(1, &n, xv), *x2 = leaf(1, &n, xv + 1), *X = leaf(2, m, xv);
    ck_assert_gradcheck(f_unary, &x, 1, (void *)cube_op(), NULL);
    ck_assert_gradcheck(f_unary, &x, 1, (void *)softplus_op(), NULL);
    ck_assert_gradcheck(f_unary, &X, 1, (void *)rowsum_op(), NULL);
    struct tg_tensor *ab[2] = {x, x2};
    ck_assert_gradcheck(f_axpy, ab, 2, (void *)axpy_op(), NULL);
    /* second order through the differentiable VJP */
    ck_assert_gradgradcheck(f_unary, &x, 1, (void *)softplus_op(), NULL);
    tg_tensor_free(x);
    tg_tensor_free(x2);
    tg_tensor_free(X);
}
END_TEST

/* A deliberately wrong backward (2 x^2 instead of 3 x^2): the check fails and
 * names the input and element. */
START_TEST(test_wrong_backward_caught)
{
    const struct tg_custom_op *bad = reg(&(struct tg_custom_op_def){
        .name = "cube_wrong", .arity = 1, .forward = cube_fwd, .backward = cube_bwd_wrong});
    int64_t n = 3;
    const double xv[3] = {0.5, -1.0, 2.0};
    struct tg_tensor *x = leaf(1, &n, xv);
    struct tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(f_unary, &x, 1, (void *)bad, NULL, &rep), TG_ERR_GRADCHECK);
    ck_assert(!rep.passed);
    ck_assert_int_eq(rep.n_failed, 3);
    ck_assert_int_eq(rep.worst_input, 0);
    /* the right backward passes at the same points */
    ck_assert_int_eq(tg_gradcheck(f_unary, &x, 1, (void *)cube_op(), NULL, &rep), TG_OK);
    tg_tensor_free(x);
}
END_TEST

/* Values and gradients against closed forms; the context is per node. */
START_TEST(test_values_and_context)
{
    int64_t n = 3;
    const double xv[3] = {-1, 0.5, 40}, bv[3] = {1, 2, 3};
    struct tg_tensor *x = leaf(1, &n, xv), *b = leaf(1, &n, bv);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y1 = tg_custom_op_call(T, softplus_op(), &x, NULL);
    struct tg_tensor *x2 = tg_mul_scalar(T, x, 2.0);
    struct tg_tensor *y2 = tg_custom_op_call(T, softplus_op(), &x2, NULL);
    const double c = 3;
    struct tg_tensor *in[2] = {y1, b};
    struct tg_tensor *z = tg_custom_op_call(T, axpy_op(), in, &c);
    struct tg_tensor *L = tg_add(T, tg_sum(T, z), tg_sum(T, y2));
    ck_assert_ptr_nonnull(L);
    ck_assert_int_eq(tg_backward(L, NULL), TG_OK);
    for (int i = 0; i < 3; i++) {
        double s1 = 1 / (1 + exp(-xv[i])), s2 = 1 / (1 + exp(-2 * xv[i]));
        ck_assert_double_eq_tol(tg_tensor_get(y1, i), log1p(exp(xv[i])), 1e-13);
        ck_assert_double_eq_tol(tg_tensor_get(z, i), 3 * log1p(exp(xv[i])) + bv[i], 1e-12);
        ck_assert_double_eq_tol(tg_tensor_grad_get(x, i), 3 * s1 + 2 * s2, 1e-13);
        ck_assert_double_eq(tg_tensor_grad_get(b, i), 1);
    }
    /* recorded in a no-grad scope: a value, no gradient */
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    struct tg_tensor *v = tg_custom_op_call(T, cube_op(), &x, NULL);
    ck_assert_int_eq(tg_tape_no_grad_pop(T), TG_OK);
    ck_assert(!tg_tensor_requires_grad(v));
    ck_assert_double_eq(tg_tensor_get(v, 1), 0.125);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(b);
}
END_TEST

/* The op's name, formula and parameters as the introspection, the DOT picture
 * and the trace report them; tg_jacobian and tg_grad. */
static struct tg_tensor *f_cube(struct tg_tape *T, struct tg_tensor *const *in, int n, void *op)
{
    (void)n;
    return tg_custom_op_call(T, op, in, NULL);
}

START_TEST(test_readers)
{
    int64_t n = 2;
    const double xv[2] = {1.5, -2};
    struct tg_tensor *x = leaf(1, &n, xv), *b = leaf(1, &n, xv);
    struct tg_tape *T = tg_tape_new();
    const double c = 0.25;
    struct tg_tensor *in[2] = {tg_custom_op_call(T, cube_op(), &x, NULL), b};
    struct tg_tensor *z = tg_custom_op_call(T, axpy_op(), in, &c), *L = tg_sum(T, z);
    enum tg_op k = tg_tensor_op(in[0]);
    ck_assert_int_ge(k, TG_OP_COUNT);
    ck_assert_str_eq(tg_op_name(k), "cube");
    ck_assert_str_eq(tg_op_formula(k), "y = x^3");
    ck_assert_str_eq(tg_op_vjp(k), "dx += 3 x^2 dy");
    ck_assert_int_eq(tg_op_arity(k), 1);
    ck_assert_str_eq(tg_op_formula(tg_tensor_op(z)), "custom op");
    double p[TG_MAX_OP_PARAMS];
    ck_assert_int_eq(tg_tensor_op_params(z, p, TG_MAX_OP_PARAMS), 1);
    ck_assert_double_eq(p[0], 0.25);
    char buf[8192] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    ck_assert_int_eq(tg_graph_dot(L, f, NULL), TG_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "cube"));
    ck_assert_ptr_nonnull(strstr(buf, "axpy"));
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(L, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 3);
    ck_assert_str_eq(tr->steps[1].op_name, "axpy");
    ck_assert_str_eq(tr->steps[2].op_name, "cube");
    ck_assert_str_eq(tr->steps[2].rule, "dx += 3 x^2 dy");
    tg_trace_free(tr);
    /* the Jacobian of cube is diag(3 x^2) */
    struct tg_tensor *J = NULL;
    struct tg_jacobian_info info;
    ck_assert_int_eq(tg_jacobian(f_cube, (void *)cube_op(), x, &J, &info), TG_OK);
    ck_assert_int_eq(info.structure, TG_JAC_DIAGONAL);
    ck_assert_double_eq(tg_tensor_get(J, 0), 3 * 1.5 * 1.5);
    ck_assert_double_eq(tg_tensor_get(J, 3), 3 * 4.0);
    tg_tensor_free(J);
    /* tg_grad needs a differentiable VJP */
    struct tg_tensor *g = NULL;
    ck_assert_int_eq(tg_grad(1, &L, NULL, 1, &x, NULL, &g), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "op axpy has no differentiable VJP"));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(b);
}
END_TEST

/* Anomaly mode names the registered op whose backward wrote a NaN. */
START_TEST(test_anomaly_names_op)
{
    const struct tg_custom_op *op = reg(&(struct tg_custom_op_def){
        .name = "cube_nan", .arity = 1, .forward = cube_fwd, .backward = cube_bwd_nan});
    int64_t n = 2;
    const double xv[2] = {1, 2};
    struct tg_tensor *x = leaf(1, &n, xv);
    struct tg_tape *T = tg_tape_new();
    ck_assert_int_eq(tg_tape_set_anomaly(T, true), TG_OK);
    struct tg_tensor *L = tg_sum(T, tg_custom_op_call(T, op, &x, NULL));
    ck_assert_int_eq(tg_backward(L, NULL), TG_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "backward of cube_nan"));
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_register_errors)
{
    const struct tg_custom_op *op = NULL;
    struct tg_custom_op_def d = {
        .name = "ok_name", .arity = 1, .forward = cube_fwd, .backward = cube_bwd};
    ck_assert_int_eq(tg_custom_op_register(NULL, &op), TG_ERR_NULL);
    ck_assert_int_eq(tg_custom_op_register(&d, NULL), TG_ERR_NULL);
    struct tg_custom_op_def e = d;
    e.forward = NULL;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "def->forward is NULL"));
    e = d, e.backward = NULL;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "def->backward is NULL"));
    e = d, e.name = NULL;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_NULL);
    e = d, e.arity = 0;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_RANGE);
    e.arity = TG_CUSTOM_OP_MAX_INPUTS + 1;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "arity 9 is outside 1..8"));
    e = d, e.n_params = 3;
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_RANGE);
    char long_name[TG_CUSTOM_OP_MAX_NAME + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const char *bad_names[] = {"", "a-b", "with space", "exp", "matmul", long_name};
    for (size_t k = 0; k < sizeof bad_names / sizeof *bad_names; k++) {
        e = d, e.name = bad_names[k];
        ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_ERR_VALUE);
    }
    ck_assert_ptr_null(op); /* no failure wrote it */
    e = d, e.name = "twice";
    ck_assert_int_eq(tg_custom_op_register(&e, &op), TG_OK);
    ck_assert_str_eq(tg_custom_op_name(op), "twice");
    const struct tg_custom_op *again = NULL;
    ck_assert_int_eq(tg_custom_op_register(&e, &again), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "an op named \"twice\" is already registered"));
    ck_assert_ptr_null(again);
    ck_assert_ptr_eq(tg_custom_op_find("twice"), op);
    ck_assert_ptr_null(tg_custom_op_find("never_registered"));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_custom_op_find(NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_str_eq(tg_custom_op_name(NULL), "?");
}
END_TEST

/* Recording: the NULL, stale, tape, dtype and shape checks of every op. */
START_TEST(test_call_errors)
{
    int64_t n = 2, m = 3, mm[2] = {2, 2};
    const double v[4] = {1, 2, 3, 4};
    struct tg_tensor *x = leaf(1, &n, v), *y = leaf(1, &m, v), *X = leaf(2, mm, v);
    struct tg_tensor *x32 = tg_tensor_from_f64(TG_F32, 1, &n, v);
    struct tg_tape *T = tg_tape_new(), *U = tg_tape_new();
    const struct tg_custom_op *axpy = axpy_op(), *cube = cube_op(), *rowsum = rowsum_op();
    const double c = 1;
    tg_clear_error();
    ck_assert_ptr_null(tg_custom_op_call(NULL, cube, &x, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_custom_op_call(T, NULL, &x, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_custom_op_call(T, (const void *)x, &x, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_clear_error();
    ck_assert_ptr_null(tg_custom_op_call(T, cube, NULL, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    struct tg_tensor *xx[2] = {x, x};
    ck_assert_ptr_null(tg_custom_op_call(T, axpy, xx, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "takes 1 parameter(s) but params is NULL"));
    struct tg_tensor *xy[2] = {x, y}, *xh[2] = {x, x32}, *xnull[2] = {x, NULL};
    ck_assert_ptr_null(tg_custom_op_call(T, axpy, xy, &c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "axpy: input 2 has shape (3) but input 1"));
    ck_assert_ptr_null(tg_custom_op_call(T, axpy, xh, &c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    tg_clear_error();
    ck_assert_ptr_null(tg_custom_op_call(T, axpy, xnull, &c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "axpy: input 2 is NULL"));
    ck_assert_ptr_null(tg_custom_op_call(T, rowsum, &x, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "rowsum: input has rank 1, not 2"));
    ck_assert_ptr_nonnull(tg_custom_op_call(T, rowsum, &X, NULL));
    struct tg_tensor *u = tg_custom_op_call(U, cube, &x, NULL);
    ck_assert_ptr_null(tg_custom_op_call(T, cube, &u, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    tg_tape_reset(U);
    ck_assert_ptr_null(tg_custom_op_call(U, cube, &u, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    tg_tape_free(T);
    tg_tape_free(U);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(X);
    tg_tensor_free(x32);
}
END_TEST

static Suite *custom_op_suite(void)
{
    Suite *s = suite_create("custom_op");
    TCase *tc = tcase_create("custom_op");
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_wrong_backward_caught);
    tcase_add_test(tc, test_values_and_context);
    tcase_add_test(tc, test_readers);
    tcase_add_test(tc, test_anomaly_names_op);
    tcase_add_test(tc, test_register_errors);
    tcase_add_test(tc, test_call_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(custom_op_suite());
}
