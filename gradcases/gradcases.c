/*
 * gradcases/gradcases.c - runs the gradient-check cases of one op: shared by the
 * op-table loop test (tests/check_ops.c) and `tapegrad gradcheck`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "gradcases.h"

const struct gc_family gc_families[GC_N_FAMILIES] = {
    {gc_cases_elementwise, &gc_n_elementwise, true},
    {gc_cases_nn, &gc_n_nn, false},
    {gc_cases_linalg, &gc_n_linalg, false},
    {gc_cases_shape, &gc_n_shape, false},
    {gc_cases_conv, &gc_n_conv, false},
    {gc_cases_norm, &gc_n_norm, false},
};

static void note_failure(struct gc_op_result *res, const char *label, const char *run, int rep,
                         const char *why)
{
    if (res->n_failed++ == 0)
        snprintf(res->first_failure, sizeof res->first_failure, "%s%s (repeat %d): %s", label, run,
                 rep, why);
}

/* Whether op appears in the graph recorded under y (iterative walk). */
static bool records(const struct tg_tensor *y, enum tg_op op)
{
    enum { MAX_NODES = 256 };
    const struct tg_tensor *stack[MAX_NODES], *seen[MAX_NODES];
    int top = 0, n_seen = 0;
    stack[top++] = y;
    while (top > 0) {
        const struct tg_tensor *t = stack[--top];
        if (tg_tensor_op(t) == op) return true;
        for (int i = 0; i < tg_tensor_n_inputs(t); i++) {
            const struct tg_tensor *x = tg_tensor_input(t, i);
            bool old = false;
            for (int k = 0; k < n_seen && !old; k++) old = seen[k] == x;
            if (!x || old || n_seen == MAX_NODES || top == MAX_NODES) continue;
            seen[n_seen++] = x;
            stack[top++] = x;
        }
    }
    return false;
}

/* The analytic gradients g[i] (flat, f64) of v . y(in) for every input that
 * requires grad, v being a fixed random vector with f32-exact values (1 for a
 * one-element output), in y's dtype. With check_op, also that y's graph records
 * gc->op (the f64 run; an f32 run may take another way to an f64 result, as
 * argmax's case does). NULL, or why not. */
static const char *analytic(const struct gc_case *gc, struct tg_tensor **in, int n, uint64_t seed,
                            bool check_op, double **g, char *why, size_t size)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = T ? gc->fn(T, in, n, NULL) : NULL, *v = NULL, *v_dt = NULL;
    const char *bad = NULL;
    if (!y) {
        bad = tg_last_error();
    } else if (check_op && !records(y, gc->op)) {
        snprintf(why, size, "the function records no %s op", tg_op_name(gc->op));
        bad = why;
    } else if (tg_tensor_numel(y) != 1) {
        struct tg_rng rng;
        tg_rng_seed(&rng, seed);
        v = tg_tensor_normal(TG_F64, tg_tensor_rank(y), tg_tensor_shape(y), &rng, 0, 1);
        for (int64_t k = 0; v && k < tg_tensor_numel(v); k++)
            tg_tensor_set(v, k, (float)tg_tensor_get(v, k));
        if (!v || !(v_dt = tg_tensor_to(v, tg_tensor_dtype(y)))) bad = tg_last_error();
    }
    if (!bad && tg_backward(y, v_dt)) bad = tg_last_error();
    for (int i = 0; i < n; i++) {
        if (!bad && tg_tensor_requires_grad(in[i]))
            for (int64_t j = 0; j < tg_tensor_numel(in[i]); j++)
                g[i][j] = tg_tensor_grad_get(in[i], j);
        tg_tensor_zero_grad(in[i]);
    }
    if (bad && bad != why) snprintf(why, size, "%s", bad);
    tg_tensor_free(v);
    tg_tensor_free(v_dt);
    tg_tape_free(T);
    return bad ? why : NULL;
}

bool gc_convert(struct tg_tensor *const *in, int n, enum tg_dtype dt, struct tg_tensor **out)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        out[i] = in[i] ? tg_tensor_to(in[i], dt) : NULL;
        if (out[i] && tg_tensor_requires_grad(in[i])) tg_tensor_set_requires_grad(out[i], true);
        ok &= out[i] != NULL;
    }
    return ok;
}

bool gc_scalars(struct tg_tensor *const *in, int n, struct tg_tensor **out)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        out[i] = tg_tensor_numel(in[i]) ? tg_tensor_scalar(TG_F64, tg_tensor_get(in[i], 0)) : NULL;
        if (out[i] && tg_tensor_requires_grad(in[i])) tg_tensor_set_requires_grad(out[i], true);
        ok &= out[i] != NULL;
    }
    return ok;
}

void gc_free_all(struct tg_tensor **t, int n)
{
    for (int k = 0; k < n; k++) tg_tensor_free(t[k]);
}

/*
 * The f32 check: backward in f32 against backward in f64 at the same (f32-rounded)
 * inputs and projection, element by element, |g32 - g64| <= GC_F32_ATOL * s +
 * GC_F32_RTOL * |g64| with s the largest |g64| of that input (at least 1). This
 * compares the f32 kernels with the f64 ones that the f64 pass checked against
 * central differences; differences taken in f32 itself would drown in rounding.
 */
static const char *check_f32(const struct gc_case *gc, struct tg_tensor *const *in, int n,
                             uint64_t seed, struct gc_op_result *res, char *why, size_t size)
{
    struct tg_tensor *x32[GC_MAX_IN] = {0}, *x64[GC_MAX_IN] = {0};
    double *g[2][GC_MAX_IN] = {{0}};
    const char *bad = NULL;
    if (!gc_convert(in, n, TG_F32, x32) || !gc_convert(x32, n, TG_F64, x64)) bad = tg_last_error();
    for (int i = 0; !bad && i < n; i++)
        for (int d = 0; d < 2; d++)
            if (!(g[d][i] = calloc((size_t)tg_tensor_numel(in[i]) + 1, sizeof(double))))
                bad = "out of memory";
    if (!bad) bad = analytic(gc, x32, n, seed, false, g[0], why, size);
    if (!bad) bad = analytic(gc, x64, n, seed, true, g[1], why, size);
    for (int i = 0; !bad && i < n; i++) {
        int64_t m = tg_tensor_requires_grad(in[i]) ? tg_tensor_numel(in[i]) : 0;
        double scale = 1.0;
        for (int64_t j = 0; j < m; j++) scale = fmax(scale, fabs(g[1][i][j]));
        for (int64_t j = 0; j < m && !bad; j++) {
            double err = fabs(g[0][i][j] - g[1][i][j]);
            res->max_f32 =
                fmax(res->max_f32, err / (scale * GC_F32_ATOL + fabs(g[1][i][j]) * GC_F32_RTOL));
            if (!(err <= GC_F32_ATOL * scale + GC_F32_RTOL * fabs(g[1][i][j]))) {
                snprintf(why, size, "f32 gradient of input %d [%lld] is %.9g, f64 %.17g", i,
                         (long long)j, g[0][i][j], g[1][i][j]);
                bad = why;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        free(g[0][i]);
        free(g[1][i]);
    }
    gc_free_all(x32, n);
    gc_free_all(x64, n);
    return bad;
}

/* One f64 gradcheck of gc on inputs in (its errors into res), then the f32 check. */
static void check_inputs(const struct gc_case *gc, const char *run, struct tg_tensor **in, int n,
                         int rep, uint64_t seed, struct gc_op_result *res)
{
    char why[256];
    struct tg_gradcheck_options o = {.atol = 1e-8, .rtol = 1e-6};
    struct tg_gradcheck_report r;
    res->n_runs++;
    enum tg_status st = tg_gradcheck(gc->fn, in, n, NULL, &o, &r);
    if (st != TG_OK) {
        note_failure(res, gc->label, run, rep, r.message);
        return;
    }
    if (r.n_checked == 0 && tg_tensor_numel(in[0]) != 0) {
        note_failure(res, gc->label, run, rep, "nothing was checked");
        return;
    }
    if (r.worst_input >= 0) {
        res->max_abs = fmax(res->max_abs, r.abs_err);
        res->max_rel = fmax(res->max_rel, r.rel_err);
    }
    const char *bad = check_f32(gc, in, n, seed, res, why, sizeof why);
    if (bad) note_failure(res, gc->label, run, rep, bad);
}

/* One run of case gc: make inputs, check them (and their scalar versions). */
static void run_case(const struct gc_family *fam, const struct gc_case *gc, int c, int rep,
                     uint64_t seed, struct gc_op_result *res)
{
    struct tg_rng rng;
    uint64_t s = seed + 1000u * (unsigned)gc->op + 10u * (unsigned)c + (unsigned)rep;
    tg_rng_seed(&rng, s);
    struct tg_tensor *in[GC_MAX_IN] = {0}, *sc[GC_MAX_IN] = {0};
    int n = gc->make(&rng, in);
    if (n <= 0) {
        res->n_runs++;
        note_failure(res, gc->label, "", rep, tg_last_error());
        return;
    }
    check_inputs(gc, "", in, n, rep, s, res);
    if (fam->scalar_run) {
        if (gc_scalars(in, n, sc)) {
            check_inputs(gc, " on scalars", sc, n, rep, s, res);
        } else {
            res->n_runs++;
            note_failure(res, gc->label, " on scalars", rep, "an empty input");
        }
        gc_free_all(sc, n);
    }
    gc_free_all(in, n);
}

void gc_check_case(const struct gc_case *gc, bool scalar_run, int repeats, uint64_t seed,
                   struct gc_op_result *res)
{
    const struct gc_family fam = {gc, &(int){1}, scalar_run};
    *res = (struct gc_op_result){.n_cases = 1};
    for (int rep = 0; rep < repeats; rep++) run_case(&fam, gc, 0, rep, seed, res);
}

void gc_check_op(enum tg_op op, int repeats, uint64_t seed, struct gc_op_result *res)
{
    *res = (struct gc_op_result){0};
    for (int f = 0; f < GC_N_FAMILIES; f++)
        for (int c = 0; c < *gc_families[f].n; c++) {
            const struct gc_case *gc = &gc_families[f].cases[c];
            if (gc->op != op) continue;
            res->n_cases++;
            for (int rep = 0; rep < repeats; rep++)
                run_case(&gc_families[f], gc, c, rep, seed, res);
        }
}

struct tg_tensor *gc_with_input_k(struct tg_tape *T, struct tg_tensor *const *x, int nx, void *ctx)
{
    (void)nx;
    struct gc_one_input *c = ctx;
    struct tg_tensor *in[GC_MAX_IN];
    for (int i = 0; i < c->n; i++) in[i] = i == c->k ? x[0] : c->in[i];
    return c->gc->fn(T, in, c->n, NULL);
}
