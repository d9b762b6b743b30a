/*
 * engine/gradcheck.c - tg_gradcheck: backward's gradients against central
 * differences.
 *
 * The analytic side runs the function once and sweeps back with a seed v (1 for
 * a scalar output, a fixed random vector otherwise), so it yields v^T J. The
 * numeric side evaluates L(x) = sum_k v_k f_k(x) on copies of the inputs (f64
 * copies unless told otherwise) in a no-grad scope, twice per input element.
 * An element that fails but whose analytic value lies between the two one-sided
 * differences, which disagree, is a kink (relu at 0, |x| at 0, max at a tie),
 * counted apart from failures.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/gradcheck.h"

struct run {
    tg_gradcheck_fn fn;
    void *ctx;
    struct tg_tape *T;
    struct tg_tensor **x; /* the copies the numeric side perturbs */
    int n;
    const double *v; /* projection, NULL for a scalar output */
    int64_t out_numel;
};

/* The one call of fn, for both sides: its output on a reset tape into *y. A NULL
 * from fn is an error in every case: fn's own when it set one, else TG_ERR_NULL. */
static enum tg_status call_fn(struct run *r, struct tg_tensor *const *x, struct tg_tensor **y)
{
    tg_tape_reset(r->T);
    tg_clear_error(); /* so that a NULL from fn reports its own cause */
    *y = r->fn(r->T, x, r->n, r->ctx);
    if (*y) return TG_OK;
    if (tg_last_status() != TG_OK) return tg_last_status();
    return tg__fail(TG_ERR_NULL, "tg_gradcheck: the function returned NULL and set no error");
}

/* L(x) for the current values of the copies into *L; an error when fn fails. */
static enum tg_status eval(struct run *r, double *L)
{
    struct tg_tensor *y;
    enum tg_status st = call_fn(r, r->x, &y);
    if (st) return st;
    if (y->numel != r->out_numel)
        return tg__fail(TG_ERR_SHAPE, "gradcheck: the function's output changed size");
    double s = 0;
    for (int64_t k = 0; k < y->numel; k++)
        s += (r->v ? r->v[k] : 1.0) * tg__load(y->data, y->dtype, k);
    *L = s;
    return TG_OK;
}

static void free_copies(struct tg_tensor **x, int n)
{
    for (int i = 0; i < n; i++) tg_tensor_free(x[i]);
}

/* Copies of the inputs, in f64 when promote is set. */
static enum tg_status make_copies(struct tg_tensor *const *in, int n, bool promote,
                                  struct tg_tensor **x)
{
    for (int i = 0; i < n; i++) {
        x[i] = promote ? tg_tensor_to(in[i], TG_F64) : tg_tensor_copy(in[i]);
        if (!x[i]) {
            free_copies(x, i);
            return tg_last_status();
        }
    }
    return TG_OK;
}

/* The analytic pass: gradients of every input into grads[i] (doubles). */
static enum tg_status analytic(struct run *r, struct tg_tensor *const *in, double **grads,
                               const struct tg_gradcheck_options *o)
{
    for (int i = 0; i < r->n; i++) tg_tensor_zero_grad(in[i]);
    struct tg_tensor *y;
    enum tg_status st = call_fn(r, in, &y);
    if (st) return st;
    r->out_numel = y->numel;
    struct tg_tensor *seed = NULL;
    if (y->numel != 1) {
        struct tg_rng rng;
        tg_rng_seed(&rng, o->seed);
        seed = tg_tensor_normal((enum tg_dtype)y->dtype, y->rank, y->shape, &rng, 0, 1);
        if (!seed) return tg_last_status();
        double *v = tg__calloc((size_t)y->numel, sizeof *v);
        if (!v) {
            tg_tensor_free(seed);
            return tg_last_status();
        }
        for (int64_t k = 0; k < y->numel; k++) v[k] = tg__load(seed->data, seed->dtype, k);
        r->v = v;
    }
    st = tg_backward(y, seed);
    tg_tensor_free(seed);
    if (st) return st;
    for (int i = 0; i < r->n; i++)
        if (in[i]->requires_grad)
            for (int64_t j = 0; j < in[i]->numel; j++)
                grads[i][j] = tg__load(in[i]->grad, in[i]->dtype, j);
    return TG_OK;
}

static void defaults(struct tg_gradcheck_options *o, bool numeric_f64, bool analytic_f64)
{
    if (o->eps <= 0) o->eps = numeric_f64 ? 1e-6 : 1e-3;
    if (o->atol <= 0 && o->rtol <= 0) {
        bool precise = numeric_f64 && analytic_f64;
        o->atol = precise ? 1e-8 : 1e-4;
        o->rtol = precise ? 1e-6 : 1e-2;
    }
}

enum tg_gradcheck_verdict tg_gradcheck_judge(double an, double f0, double fp, double fm, double h,
                                             double atol, double rtol)
{
    double num = (fp - fm) / (2 * h);
    double tol = atol + rtol * fabs(num);
    if (fabs(an - num) <= tol) return TG_GRADCHECK_AGREE;
    double d1 = (fp - f0) / h, d2 = (f0 - fm) / h; /* the one-sided slopes */
    if (fabs(d1 - d2) > tol && an >= fmin(d1, d2) - tol && an <= fmax(d1, d2) + tol)
        return TG_GRADCHECK_KINK;
    if (!isfinite(an) || !isfinite(num)) return TG_GRADCHECK_NOT_FINITE;
    return TG_GRADCHECK_DISAGREE;
}

const char *tg_gradcheck_verdict_name(enum tg_gradcheck_verdict v)
{
    static const char *const names[] = {"agree", "kink", "not finite", "disagree"};
    return (unsigned)v < 4 ? names[v] : "?";
}

void tg__gradcheck_judge(const struct tg_gradcheck_options *o, struct tg_gradcheck_report *rep,
                         double *worst, int i, int64_t j, double an, double f0, double fp,
                         double fm)
{
    const double h = o->eps;
    double num = (fp - fm) / (2 * h);
    double err = fabs(an - num), tol = o->atol + o->rtol * fabs(num);
    double ratio = err / tol;
    rep->n_checked++;
    enum tg_gradcheck_verdict v = tg_gradcheck_judge(an, f0, fp, fm, h, o->atol, o->rtol);
    if (v == TG_GRADCHECK_KINK) {
        if (rep->n_kinks++ == 0) {
            rep->kink_input = i;
            rep->kink_index = j;
        }
        return;
    }
    if (v != TG_GRADCHECK_AGREE) rep->n_failed++;
    double key = isnan(ratio) ? INFINITY : ratio;
    if (rep->worst_input < 0 || key > *worst) {
        *worst = key;
        rep->worst_input = i;
        rep->worst_index = j;
        rep->analytic = an;
        rep->numeric = num;
        rep->abs_err = err;
        rep->rel_err = err / fmax(fabs(num), DBL_MIN);
    }
}

bool tg__gradcheck_vacuous(const struct tg_gradcheck_options *o, struct tg_gradcheck_report *rep,
                           const char *fn)
{
    double share = o->max_kink_share > 0 ? o->max_kink_share : 0.5;
    /* (no element at all: empty inputs, whose empty gradients are right) */
    if (!(rep->n_checked > 0 && (rep->n_kinks == rep->n_checked ||
                                 (double)rep->n_kinks > share * (double)rep->n_checked)))
        return false;
    rep->passed = false;
    rep->skipped = o->skip_kinks;
    char text[512];
    snprintf(text, sizeof text,
             "%s: %lld of %lld elements are kinks (over %g%%; first: input %d [%lld]), so %s "
             "compared next to nothing; move the inputs away from the kinks (relu, abs at 0; "
             "max, min at ties)%s",
             o->skip_kinks ? "skipped" : "failed", (long long)rep->n_kinks,
             (long long)rep->n_checked, share * 100, rep->kink_input, (long long)rep->kink_index,
             fn, o->skip_kinks ? "" : " or set skip_kinks");
    size_t n = strlen(text) < sizeof rep->message ? strlen(text) : sizeof rep->message - 1;
    memcpy(rep->message, text, n);
    rep->message[n] = '\0';
    return true;
}

/* Compares one element of input i with the central difference there. */
static enum tg_status check_element(struct run *r, int i, int64_t j, double f0, double an,
                                    const struct tg_gradcheck_options *o,
                                    struct tg_gradcheck_report *rep, double *worst)
{
    struct tg_tensor *xi = r->x[i];
    double orig = tg__load(xi->data, xi->dtype, j), h = o->eps, fp = 0, fm = 0;
    enum tg_status st;
    tg__store(xi->data, xi->dtype, j, orig + h);
    st = eval(r, &fp);
    tg__store(xi->data, xi->dtype, j, orig - h);
    if (!st) st = eval(r, &fm);
    tg__store(xi->data, xi->dtype, j, orig);
    if (st) return st;
    tg__gradcheck_judge(o, rep, worst, i, j, an, f0, fp, fm);
    return TG_OK;
}

static enum tg_status numeric(struct run *r, struct tg_tensor *const *in, double **grads,
                              const struct tg_gradcheck_options *o, struct tg_gradcheck_report *rep)
{
    double f0 = 0, worst = 0;
    enum tg_status st = eval(r, &f0);
    for (int i = 0; !st && i < r->n; i++) {
        if (!in[i]->requires_grad) continue;
        for (int64_t j = 0; !st && j < in[i]->numel; j++)
            st = check_element(r, i, j, f0, grads[i][j], o, rep, &worst);
    }
    return st;
}

static void describe(struct tg_gradcheck_report *rep, const struct tg_gradcheck_options *o)
{
    if (rep->worst_input < 0) {
        snprintf(rep->message, sizeof rep->message, "%s: %lld elements checked, %lld kinks skipped",
                 rep->passed ? "passed" : "failed", (long long)rep->n_checked,
                 (long long)rep->n_kinks);
        return;
    }
    snprintf(rep->message, sizeof rep->message,
             "%s: %lld/%lld elements beyond atol %.1e rtol %.1e; worst input %d [%lld]: "
             "analytic %.10g numeric %.10g abs err %.3e rel err %.3e; %lld kinks skipped",
             rep->passed ? "passed" : "failed", (long long)rep->n_failed, (long long)rep->n_checked,
             o->atol, o->rtol, rep->worst_input, (long long)rep->worst_index, rep->analytic,
             rep->numeric, rep->abs_err, rep->rel_err, (long long)rep->n_kinks);
}

static enum tg_status validate(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n)
{
    if (!fn) return tg__fail(TG_ERR_NULL, "tg_gradcheck: fn is NULL");
    if (!inputs || n <= 0) return tg__fail(TG_ERR_NULL, "tg_gradcheck: no inputs");
    for (int i = 0; i < n; i++) {
        if (!inputs[i]) return tg__fail(TG_ERR_NULL, "tg_gradcheck: input %d is NULL", i);
        if (inputs[i]->kind != TG_KIND_LEAF)
            return tg__fail(TG_ERR_STATE, "tg_gradcheck: input %d is not a leaf", i);
    }
    return TG_OK;
}

enum tg_status tg_gradcheck(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n_inputs,
                            void *ctx, const struct tg_gradcheck_options *options,
                            struct tg_gradcheck_report *report)
{
    struct tg_gradcheck_report local;
    struct tg_gradcheck_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    rep->worst_input = rep->kink_input = -1;
    enum tg_status st = validate(fn, inputs, n_inputs);
    if (st) {
        snprintf(rep->message, sizeof rep->message, "%s", tg_last_error());
        return st;
    }
    struct tg_gradcheck_options o = options ? *options : (struct tg_gradcheck_options){0};
    bool analytic_f64 = true, any_f32 = false;
    for (int i = 0; i < n_inputs; i++) {
        analytic_f64 &= inputs[i]->dtype == TG_F64;
        any_f32 |= inputs[i]->dtype == TG_F32;
    }
    struct run r = {fn, ctx, tg_tape_new(), NULL, n_inputs, NULL, 0};
    double **grads = tg__calloc((size_t)n_inputs, sizeof *grads);
    struct tg_tensor **x = tg__calloc((size_t)n_inputs, sizeof *x);
    st = (!r.T || !grads || !x) ? TG_ERR_NOMEM : TG_OK;
    for (int i = 0; !st && i < n_inputs; i++)
        if (!(grads[i] = tg__calloc((size_t)inputs[i]->numel + 1, sizeof **grads)))
            st = TG_ERR_NOMEM;
    if (!st) st = analytic(&r, inputs, grads, &o);
    bool promote = any_f32 && !o.no_promote;
    if (!st && !(st = make_copies(inputs, n_inputs, promote, x))) {
        r.x = x;
        double probe;
        tg_tape_no_grad_push(r.T);
        if (promote && eval(&r, &probe)) { /* fn rejects f64 inputs: numerics in f32 */
            free_copies(x, n_inputs);
            promote = false;
            tg_clear_error();
            st = make_copies(inputs, n_inputs, false, x);
        }
        if (!st) {
            rep->numeric_f64 = promote || !any_f32;
            defaults(&o, rep->numeric_f64, analytic_f64);
            st = numeric(&r, inputs, grads, &o, rep);
            free_copies(x, n_inputs);
        }
    }
    for (int i = 0; i < n_inputs; i++) {
        tg_tensor_zero_grad(inputs[i]);
        if (grads) tg__free(grads[i]);
    }
    tg__free(grads);
    tg__free(x);
    tg__free((void *)r.v);
    tg_tape_free(r.T);
    if (st) {
        snprintf(rep->message, sizeof rep->message, "error: %s", tg_last_error());
        return st;
    }
    rep->passed = rep->n_failed == 0;
    describe(rep, &o);
    if (rep->passed && tg__gradcheck_vacuous(&o, rep, "tg_gradcheck") && o.skip_kinks) return TG_OK;
    if (!rep->passed) return tg__fail(TG_ERR_GRADCHECK, "tg_gradcheck: %s", rep->message);
    return TG_OK;
}
