/*
 * tests/check_vjp_graph_a.c - the differentiable VJPs (the descriptors'
 * vjp_graph) of the elementwise ops, the fused linear layer, the losses and
 * dropout (ops/binary.c, unary.c, linear.c, loss.c, dropout.c).
 *
 * On every gradient-check case of each of these ops (gradcases/), in f64 and
 * f32 (and on rank-0 inputs for the elementwise ops, the scalar record path),
 * the op's node gets a random upstream gradient dy (a tape constant) and:
 *   - vjp_graph, with every input that requires grad asked for, records input
 *     gradients of the inputs' shapes and dtypes and leaves the others alone;
 *   - their values equal the first-order backward's (tg_backward with seed dy)
 *     up to rounding, NaN where it is NaN.
 * Second order (test_second_order_op): the VJP's own derivative against central
 * differences, by tg_gradcheck of h(x) = sum_i <w_i, dx_i(x, dy)> (f64). Fixed
 * cases cover the kernels' special values: ties, NaN inputs, pow at zero; and
 * every case again with a NaN in each of its first input elements.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradcases.h"
#include "vjp_graph_a_call.h"

enum { REPEATS = 3 };

/* The ops of ops/binary.c, unary.c, linear.c, loss.c and dropout.c. */
static const enum tg_op ops_a[] = {
    TG_OP_ADD,
    TG_OP_SUB,
    TG_OP_MUL,
    TG_OP_DIV,
    TG_OP_POW,
    TG_OP_MAXIMUM,
    TG_OP_MINIMUM,
    TG_OP_AFFINE,
    TG_OP_POW_SCALAR,
    TG_OP_NEG,
    TG_OP_EXP,
    TG_OP_LOG,
    TG_OP_SQRT,
    TG_OP_ABS,
    TG_OP_TANH,
    TG_OP_SIGMOID,
    TG_OP_RELU,
    TG_OP_LEAKY_RELU,
    TG_OP_SOFTPLUS,
    TG_OP_SIN,
    TG_OP_COS,
    TG_OP_LINEAR,
    TG_OP_MSE,
    TG_OP_CROSS_ENTROPY,
    TG_OP_CROSS_ENTROPY_PROBS,
    TG_OP_BCE_LOGITS,
    TG_OP_HINGE,
    TG_OP_MULTI_MARGIN,
    TG_OP_L2_PENALTY,
    TG_OP_DROPOUT,
};
enum { N_OPS_A = sizeof ops_a / sizeof ops_a[0] };

struct family {
    const struct gc_case *cases;
    const int *n;
    bool scalar_run; /* the cases take rank-0 inputs too */
};
static const struct family families[] = {
    {gc_cases_elementwise, &gc_n_elementwise, true},
    {gc_cases_nn, &gc_n_nn, false},
    {gc_cases_linalg, &gc_n_linalg, false},
    {gc_cases_shape, &gc_n_shape, false},
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

/* Agreement within rounding: |a - b| <= tol (scale + |b|), scale the largest
 * |b| of the input (at least 1); equal infinities and two NaNs agree. */
static double tol_of(enum tg_dtype dt)
{
    return dt == TG_F64 ? 1e-14 : 6e-7;
}

struct outcome {
    int n_checked; /* gradient elements compared */
    double worst;  /* the largest |a - b| / (tol (scale + |b|)) */
    char why[400]; /* the first failure, "" if none */
};

static bool note_fail(struct outcome *o, const char *label, const char *fmt, const char *detail)
{
    if (!o->why[0]) snprintf(o->why, sizeof o->why, "%s: %s%s", label, fmt, detail ? detail : "");
    return false;
}

/* fn over in[0..n) converted to dt must record op as its output y, on the
 * inputs themselves; then y's vjp_graph against tg_backward, with the same dy. */
static bool check_vjp(const char *label, enum tg_op op, tg_gradcheck_fn fn,
                      struct tg_tensor *const *in64, int n, enum tg_dtype dt, uint64_t seed,
                      struct outcome *o)
{
    struct tg_tensor *in[GC_MAX_IN] = {0}, *v = NULL, *vdt = NULL;
    struct tg_tensor *mark = tg_tensor_scalar(TG_F64, 0); /* "left alone" */
    struct tg_tape *T = tg_tape_new();
    char msg[200];
    bool ok = T && mark && gc_convert(in64, n, dt, in);
    struct tg_tensor *y = ok ? fn(T, in, n, NULL) : NULL;
    if (!ok || !y) {
        ok = note_fail(o, label, "could not record: ", tg_last_error());
        goto done;
    }
    if (tg_tensor_op(y) != op) {
        ok = note_fail(o, label, "the case's output is not a node of the op", NULL);
        goto done;
    }
    int m = tg_tensor_n_inputs(y);
    struct tg_tensor *x[GC_MAX_IN], *dx[GC_MAX_IN];
    bool need[GC_MAX_IN];
    for (int i = 0; i < m; i++) {
        x[i] = tg_tensor_input(y, i);
        need[i] = tg_tensor_requires_grad(x[i]);
        dx[i] = mark;
        for (int k = 0; k < i; k++)
            if (need[i] && x[k] == x[i]) {
                ok = note_fail(o, label, "an input appears twice", NULL);
                goto done;
            }
    }
    /* dy: standard normal values, exact in f32 */
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    v = tg_tensor_normal(TG_F64, tg_tensor_rank(y), tg_tensor_shape(y), &rng, 0, 1);
    for (int64_t k = 0; v && k < tg_tensor_numel(v); k++)
        tg_tensor_set(v, k, (float)tg_tensor_get(v, k));
    vdt = v ? tg_tensor_to(v, dt) : NULL;
    struct tg_tensor *dy =
        vdt ? tg_tape_constant(T, dt, tg_tensor_rank(y), tg_tensor_shape(y), tg_tensor_data(vdt))
            : NULL;
    if (!dy) {
        ok = note_fail(o, label, "dy: ", tg_last_error());
        goto done;
    }
    /* nothing asked: nothing recorded, dx left alone */
    bool none[GC_MAX_IN] = {false};
    struct tg_tape_stats before, after;
    tg_tape_stats(T, &before);
    enum tg_status st0 = vjpg_call(T, y, dy, none, dx);
    tg_tape_stats(T, &after);
    for (int i = 0; i < m; i++)
        if (dx[i] != mark) st0 = TG_ERR_STATE;
    if (st0 != TG_OK || after.n_nodes != before.n_nodes) {
        ok = note_fail(o, label, "with no input asked for, vjp_graph recorded or set something",
                       NULL);
        goto done;
    }
    if (vjpg_call(T, y, dy, need, dx) != TG_OK) {
        ok = note_fail(o, label, "vjp_graph failed: ", tg_last_error());
        goto done;
    }
    /* one input at a time: the same gradient, the others left alone */
    for (int i = 0; i < m && ok; i++) {
        if (!need[i]) continue;
        bool one[GC_MAX_IN] = {false};
        struct tg_tensor *dx1[GC_MAX_IN];
        for (int k = 0; k < m; k++) dx1[k] = mark;
        one[i] = true;
        if (vjpg_call(T, y, dy, one, dx1) != TG_OK) {
            ok = note_fail(o, label, "vjp_graph of one input failed: ", tg_last_error());
            break;
        }
        for (int k = 0; k < m && ok; k++)
            if (k != i && dx1[k] != mark)
                ok = note_fail(o, label, "asked for one input, vjp_graph set another", NULL);
        for (int64_t j = 0; ok && j < tg_tensor_numel(x[i]); j++) {
            double a = dx[i] ? tg_tensor_get(dx[i], j) : 0,
                   b = dx1[i] ? tg_tensor_get(dx1[i], j) : 0;
            if (!(a == b || (isnan(a) && isnan(b))))
                ok = note_fail(o, label, "asked for one input, vjp_graph gave another value", NULL);
        }
    }
    if (!ok) goto done;
    if (tg_backward(y, dy) != TG_OK) {
        ok = note_fail(o, label, "backward failed: ", tg_last_error());
        goto done;
    }
    double tol = tol_of(dt);
    for (int i = 0; i < m && ok; i++) {
        if (!need[i]) {
            if (dx[i] != mark)
                ok = note_fail(o, label, "dx of an input not asked for was set", NULL);
            continue;
        }
        if (dx[i] == mark) {
            ok = note_fail(o, label, "dx of an input asked for was not set", NULL);
            break;
        }
        if (dx[i]) {
            bool same = tg_tensor_rank(dx[i]) == tg_tensor_rank(x[i]) &&
                        tg_tensor_dtype(dx[i]) == tg_tensor_dtype(x[i]);
            for (int d = 0; same && d < tg_tensor_rank(x[i]); d++)
                same = tg_tensor_shape(dx[i])[d] == tg_tensor_shape(x[i])[d];
            if (!same) {
                char s1[64], s2[64];
                snprintf(msg, sizeof msg, "input %d: dx has shape %s, the input %s", i,
                         tg_tensor_shape_str(dx[i], s1, sizeof s1),
                         tg_tensor_shape_str(x[i], s2, sizeof s2));
                ok = note_fail(o, label, msg, NULL);
                break;
            }
        }
        int64_t numel = tg_tensor_numel(x[i]);
        double scale = 1;
        for (int64_t j = 0; j < numel; j++) {
            double b = tg_tensor_grad_get(x[i], j);
            if (isfinite(b)) scale = fmax(scale, fabs(b));
        }
        for (int64_t j = 0; j < numel && ok; j++) {
            double a = dx[i] ? tg_tensor_get(dx[i], j) : 0, b = tg_tensor_grad_get(x[i], j);
            o->n_checked++;
            if (a == b || (isnan(a) && isnan(b))) continue;
            double r = fabs(a - b) / (tol * (scale + fabs(b)));
            if (r == r) o->worst = fmax(o->worst, r);
            if (!(r <= 1)) {
                snprintf(msg, sizeof msg, "%s: input %d [%lld]: vjp_graph %.17g, backward %.17g",
                         dt == TG_F64 ? "f64" : "f32", i, (long long)j, a, b);
                ok = note_fail(o, label, msg, NULL);
            }
        }
    }
done:
    gc_free_all(in, n);
    tg_tensor_free(v);
    tg_tensor_free(vdt);
    tg_tensor_free(mark);
    tg_tape_free(T);
    return ok;
}

/* Every case of op, REPEATS times, in f64 and f32, and on scalars where the
 * family takes them. Returns how many cases it found. */
static int check_op(enum tg_op op, struct outcome *o)
{
    int n_cases = 0;
    for (int f = 0; f < N_FAMILIES; f++)
        for (int c = 0; c < *families[f].n; c++) {
            const struct gc_case *gc = &families[f].cases[c];
            if (gc->op != op) continue;
            n_cases++;
            for (int rep = 0; rep < REPEATS; rep++) {
                struct tg_rng rng;
                uint64_t s = 7000u + 1000u * (unsigned)op + 10u * (unsigned)c + (unsigned)rep;
                tg_rng_seed(&rng, s);
                struct tg_tensor *in[GC_MAX_IN] = {0}, *sc[GC_MAX_IN] = {0};
                int n = gc->make(&rng, in);
                if (n <= 0) {
                    note_fail(o, gc->label, "make failed: ", tg_last_error());
                    continue;
                }
                for (int d = 0; d < 2; d++)
                    check_vjp(gc->label, op, gc->fn, in, n, d ? TG_F32 : TG_F64, s, o);
                if (families[f].scalar_run && gc_scalars(in, n, sc))
                    for (int d = 0; d < 2; d++)
                        check_vjp(gc->label, op, gc->fn, sc, n, d ? TG_F32 : TG_F64, s, o);
                gc_free_all(sc, n);
                gc_free_all(in, n);
            }
        }
    return n_cases;
}

START_TEST(test_vjp_graph_op)
{
    enum tg_op op = ops_a[_i];
    struct outcome o = {0};
    ck_assert_msg(vjpg_has(op), "op %s has no vjp_graph", tg_op_name(op));
    int n_cases = check_op(op, &o);
    ck_assert_msg(n_cases > 0, "op %s has no gradient-check case", tg_op_name(op));
    ck_assert_msg(!o.why[0], "%s: %s", tg_op_name(op), o.why);
    ck_assert_int_gt(o.n_checked, 0);
    if (getenv("TG_VJP_VERBOSE"))
        fprintf(stderr, "%-20s %6d elements, worst %.3g of the tolerance\n", tg_op_name(op),
                o.n_checked, o.worst);
}
END_TEST

/* ---- second order: the VJP's own derivative ----
 * The VJP is recorded from ops of the table, so the first-order backward of
 * h(x) = sum_i <w_i, dx_i(x, dy)> (dy and w_i fixed) is the second derivative,
 * and tg_gradcheck compares it with central differences of h: a second-order
 * check that needs no more than vjp_graph itself. */
struct second {
    const struct gc_case *gc;
    enum tg_op op;
    double *dy;           /* (numel y) */
    double *w[GC_MAX_IN]; /* (numel of input i) */
    bool need[GC_MAX_IN]; /* the node's inputs that require grad (fixed: the
                             numeric side runs on copies that do not) */
};

static struct tg_tensor *h_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *ctx)
{
    struct second *c = ctx;
    struct tg_tensor *y = c->gc->fn(T, x, n, NULL);
    if (!y || tg_tensor_op(y) != c->op) return NULL;
    int m = tg_tensor_n_inputs(y);
    struct tg_tensor *dx[GC_MAX_IN] = {0};
    const bool *need = c->need;
    struct tg_tensor *dy =
        tg_tape_constant(T, TG_F64, tg_tensor_rank(y), tg_tensor_shape(y), c->dy);
    if (!dy || vjpg_call(T, y, dy, need, dx) != TG_OK) return NULL;
    /* 0 * sum(y): keeps h on the graph of x when no dx depends on x */
    struct tg_tensor *h = tg_mul_scalar(T, tg_sum(T, y), 0.0);
    for (int i = 0; i < m; i++) {
        if (!need[i] || !dx[i]) continue;
        struct tg_tensor *xi = tg_tensor_input(y, i);
        struct tg_tensor *w =
            tg_tape_constant(T, TG_F64, tg_tensor_rank(xi), tg_tensor_shape(xi), c->w[i]);
        h = tg_add(T, h, tg_sum(T, tg_mul(T, dx[i], w)));
    }
    return h;
}

/* The second-order check of case gc on inputs in (f64). */
static void check_second(const struct gc_case *gc, enum tg_op op, struct tg_tensor **in, int n,
                         uint64_t seed, struct outcome *o)
{
    struct second c = {gc, op, NULL, {0}, {0}};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = T ? gc->fn(T, in, n, NULL) : NULL;
    struct tg_rng rng;
    tg_rng_seed(&rng, seed ^ 0x5eedu);
    bool ok = y != NULL;
    int m = y ? tg_tensor_n_inputs(y) : 0;
    if (ok && (c.dy = calloc((size_t)tg_tensor_numel(y) + 1, sizeof(double))))
        for (int64_t k = 0; k < tg_tensor_numel(y); k++) c.dy[k] = tg_rng_normal(&rng);
    for (int i = 0; ok && i < m; i++) {
        int64_t numel = tg_tensor_numel(tg_tensor_input(y, i));
        c.need[i] = tg_tensor_requires_grad(tg_tensor_input(y, i));
        if ((c.w[i] = calloc((size_t)numel + 1, sizeof(double))))
            for (int64_t k = 0; k < numel; k++) c.w[i][k] = tg_rng_normal(&rng);
    }
    tg_tape_free(T);
    struct tg_gradcheck_report r;
    enum tg_status st = ok ? tg_gradcheck(h_fn, in, n, &c, NULL, &r) : TG_ERR_NULL;
    if (st != TG_OK)
        note_fail(o, gc->label, "second order: ", ok ? r.message : tg_last_error());
    else
        o->n_checked += (int)r.n_checked;
    free(c.dy);
    for (int i = 0; i < GC_MAX_IN; i++) free(c.w[i]);
}

START_TEST(test_second_order_op)
{
    enum tg_op op = ops_a[_i];
    struct outcome o = {0};
    int n_cases = 0;
    for (int f = 0; f < N_FAMILIES; f++)
        for (int c = 0; c < *families[f].n; c++) {
            const struct gc_case *gc = &families[f].cases[c];
            if (gc->op != op) continue;
            n_cases++;
            for (int rep = 0; rep < REPEATS; rep++) {
                struct tg_rng rng;
                uint64_t s = 9000u + 1000u * (unsigned)op + 10u * (unsigned)c + (unsigned)rep;
                tg_rng_seed(&rng, s);
                struct tg_tensor *in[GC_MAX_IN] = {0}, *sc[GC_MAX_IN] = {0};
                int n = gc->make(&rng, in);
                if (n <= 0) {
                    note_fail(&o, gc->label, "make failed: ", tg_last_error());
                    continue;
                }
                check_second(gc, op, in, n, s, &o);
                if (families[f].scalar_run && gc_scalars(in, n, sc))
                    check_second(gc, op, sc, n, s, &o);
                gc_free_all(sc, n);
                gc_free_all(in, n);
            }
        }
    ck_assert_int_gt(n_cases, 0);
    ck_assert_msg(!o.why[0], "%s: %s", tg_op_name(op), o.why);
}
END_TEST

/* NaN in: for a NaN put into each of the first elements of each differentiable
 * input in turn, the VJP's values still equal the first-order backward's,
 * NaN exactly where it is NaN (f64 and f32). */
START_TEST(test_nan_inputs_op)
{
    enum tg_op op = ops_a[_i];
    struct outcome o = {0};
    for (int f = 0; f < N_FAMILIES; f++)
        for (int c = 0; c < *families[f].n; c++) {
            const struct gc_case *gc = &families[f].cases[c];
            if (gc->op != op) continue;
            struct tg_rng rng;
            uint64_t s = 5000u + 1000u * (unsigned)op + 10u * (unsigned)c;
            tg_rng_seed(&rng, s);
            struct tg_tensor *in[GC_MAX_IN] = {0};
            int n = gc->make(&rng, in);
            ck_assert_int_gt(n, 0);
            for (int i = 0; i < n; i++) {
                if (!tg_tensor_requires_grad(in[i])) continue;
                for (int64_t k = 0; k < tg_tensor_numel(in[i]) && k < 4; k++) {
                    double keep = tg_tensor_get(in[i], k);
                    tg_tensor_set(in[i], k, NAN);
                    for (int d = 0; d < 2; d++)
                        check_vjp(gc->label, op, gc->fn, in, n, d ? TG_F32 : TG_F64, s, &o);
                    tg_tensor_set(in[i], k, keep);
                }
            }
            gc_free_all(in, n);
        }
    ck_assert_msg(!o.why[0], "%s with a NaN input: %s", tg_op_name(op), o.why);
}
END_TEST

/* ---- the kernels' special values ---- */

static struct tg_tensor *vec(int n, const double *v, bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){n}, v);
    if (t && grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

#define FN(NAME, CALL)                                                                             \
    static struct tg_tensor *f_##NAME(struct tg_tape *T, struct tg_tensor *const *x, int n,        \
                                      void *c)                                                     \
    {                                                                                              \
        (void)n, (void)c;                                                                          \
        return CALL;                                                                               \
    }
FN(maximum, tg_maximum(T, x[0], x[1]))
FN(minimum, tg_minimum(T, x[0], x[1]))
FN(pow, tg_pow(T, x[0], x[1]))
FN(relu, tg_relu(T, x[0]))
FN(abs, tg_abs(T, x[0]))
FN(leaky_relu, tg_leaky_relu(T, x[0], 0.2))
FN(pow_scalar_0, tg_pow_scalar(T, x[0], 0))
FN(pow_scalar_1, tg_pow_scalar(T, x[0], 1))
FN(hinge, tg_hinge(T, x[0], x[1], TG_REDUCE_NONE))
FN(margin, tg_multi_margin(T, x[0], x[1], 1.0, TG_REDUCE_SUM))
FN(ce, tg_cross_entropy(T, x[0], x[1], TG_REDUCE_MEAN))
FN(linear_relu, tg_linear(T, x[0], x[1], NULL, TG_ACT_RELU))

/* Ties (half each), NaN inputs (NaN to the NaN input, 0 to the other), zeros:
 * the VJP's values are the kernels', special values included. */
START_TEST(test_special_values)
{
    const double nan = NAN;
    struct {
        const char *label;
        enum tg_op op;
        tg_gradcheck_fn fn;
        int n, len;
        double a[6], b[6];
        bool grad_b;
    } cases[] = {
        {"maximum ties, NaN",
         TG_OP_MAXIMUM,
         f_maximum,
         2,
         6,
         {1, 2, nan, 3, 5, nan},
         {1, nan, 0, 3, 4, nan},
         true},
        {"minimum ties, NaN",
         TG_OP_MINIMUM,
         f_minimum,
         2,
         6,
         {1, 2, nan, 3, 5, nan},
         {1, nan, 0, 3, 4, nan},
         true},
        {"pow at zeros", TG_OP_POW, f_pow, 2, 5, {0, 0, 2, 0, 1.5}, {0, 2, 0, -1, 0}, true},
        {"relu at 0, NaN", TG_OP_RELU, f_relu, 1, 5, {0, -1, nan, 2, -0.0}, {0}, false},
        {"abs at 0, NaN", TG_OP_ABS, f_abs, 1, 5, {0, -1, nan, 2, -0.0}, {0}, false},
        {"leaky_relu at 0, NaN", TG_OP_LEAKY_RELU, f_leaky_relu, 1, 4, {0, -1, nan, 2}, {0}, false},
        {"pow_scalar p = 0", TG_OP_POW_SCALAR, f_pow_scalar_0, 1, 3, {0, 2, -1}, {0}, false},
        {"pow_scalar p = 1", TG_OP_POW_SCALAR, f_pow_scalar_1, 1, 4, {0, 2, -1, nan}, {0}, false},
        {"hinge at the kink, NaN",
         TG_OP_HINGE,
         f_hinge,
         2,
         4,
         {1, nan, 0.5, -1},
         {1, 1, -1, -1},
         false},
        {"multi_margin NaN row", TG_OP_MULTI_MARGIN, f_margin, 2, 0, {0}, {0}, false},
        {"cross_entropy NaN row", TG_OP_CROSS_ENTROPY, f_ce, 2, 0, {0}, {0}, false},
        {"linear relu at 0, NaN", TG_OP_LINEAR, f_linear_relu, 2, 0, {0}, {0}, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct tg_tensor *in[2] = {0};
        if (cases[k].len) {
            in[0] = vec(cases[k].len, cases[k].a, true);
            if (cases[k].n > 1) in[1] = vec(cases[k].len, cases[k].b, cases[k].grad_b);
        } else if (cases[k].op == TG_OP_LINEAR) { /* x W^T = (0, -1, NaN, 2) */
            double xv[2] = {1, 0}, wv[8] = {0, 1, -1, 1, nan, 0, 2, -3};
            in[0] = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){1, 2}, xv);
            in[1] = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){4, 2}, wv);
            tg_tensor_set_requires_grad(in[0], true);
            tg_tensor_set_requires_grad(in[1], true);
        } else { /* logits (2, 3) with a NaN in row 1; labels (2) */
            double xv[6] = {0.5, -1, 2, 1, nan, 0}, lv[2] = {2, 0};
            in[0] = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, xv);
            in[1] = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, lv);
            tg_tensor_set_requires_grad(in[0], true);
        }
        for (int d = 0; d < 2; d++) {
            struct outcome o = {0};
            check_vjp(cases[k].label, cases[k].op, cases[k].fn, in, cases[k].n, d ? TG_F32 : TG_F64,
                      99 + k, &o);
            ck_assert_msg(!o.why[0], "%s", o.why);
        }
        tg_tensor_free(in[0]);
        tg_tensor_free(in[1]);
    }
}
END_TEST

/* The check catches a wrong VJP: the same comparison fails for a function whose
 * first-order backward differs from the op's own (a node of another op). */
START_TEST(test_check_can_fail)
{
    struct tg_tensor *x = vec(3, (double[]){0.5, 1, 2}, true);
    struct outcome o = {0};
    check_vjp("exp as sin", TG_OP_EXP, f_relu, &x, 1, TG_F64, 1, &o);
    ck_assert(strstr(o.why, "not a node of the op"));
    tg_tensor_free(x);
}
END_TEST

/* tg__sum_to: a broadcast gradient summed down to the input's shape, leading
 * axes dropped; the same tensor when nothing is broadcast; an error otherwise. */
START_TEST(test_sum_to)
{
    struct tg_tape *T = tg_tape_new();
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = i;
    struct tg_tensor *g = tg_tensor_from_f64(TG_F64, 3, (int64_t[]){2, 3, 4}, v);
    struct tg_tensor *s = vjpg_sum_to(T, g, 2, (long long[]){3, 1});
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tg_tensor_rank(s), 2);
    ck_assert_int_eq(tg_tensor_dim(s, 0), 3);
    ck_assert_int_eq(tg_tensor_dim(s, 1), 1);
    for (int j = 0; j < 3; j++) { /* sum over i, k of 12 i + 4 j + k */
        double want = 0;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++) want += 12 * i + 4 * j + k;
        ck_assert_double_eq(tg_tensor_get(s, j), want);
    }
    struct tg_tensor *r0 = vjpg_sum_to(T, g, 0, NULL);
    ck_assert_int_eq(tg_tensor_rank(r0), 0);
    ck_assert_double_eq(tg_tensor_item(r0), 276);
    struct tg_tensor *k = vjpg_sum_to(T, g, 2, (long long[]){1, 4});
    ck_assert_int_eq(tg_tensor_dim(k, 1), 4);
    ck_assert_double_eq(tg_tensor_get(k, 1), 1 + 5 + 9 + 13 + 17 + 21);
    ck_assert_ptr_eq(vjpg_sum_to(T, g, 3, (long long[]){2, 3, 4}), g);
    ck_assert_ptr_null(vjpg_sum_to(T, g, 1, (long long[]){3}));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "sum_to: (2,3,4) does not broadcast from (3)");
    tg_tensor_free(g);
    tg_tape_free(T);
}
END_TEST

static Suite *vjp_graph_a_suite(void)
{
    Suite *s = suite_create("vjp_graph_a");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_vjp_graph_op, 0, N_OPS_A);
    tcase_add_loop_test(tc, test_second_order_op, 0, N_OPS_A);
    tcase_add_loop_test(tc, test_nan_inputs_op, 0, N_OPS_A);
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_check_can_fail);
    tcase_add_test(tc, test_sum_to);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(vjp_graph_a_suite());
}
