/*
 * engine/gradgradcheck.c - tg_gradgradcheck: second derivatives recorded by
 * tg_grad against central differences of the first-order gradient.
 *
 * With L(x) = sum_k v_k f_k(x) (v = 1 for a scalar output, a fixed random vector
 * otherwise) and G(x) = dL/dx, the check is on the Hessian-vector product
 * H w = d(w . G)/dx for a fixed random w: the analytic side is tg_grad twice
 * (the first with create_graph, the second seeded with w), the numeric side
 * central differences of w . G(x), where G comes from tg_backward, i.e. from
 * the ops' fast kernels, which tg_gradcheck checks. First, the first-order
 * gradient that tg_grad records must equal tg_backward's. Kinks are handled as
 * in tg_gradcheck (engine/gradcheck.c).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/grad.h"

struct ggc {
    tg_gradcheck_fn fn;
    void *ctx;
    struct tg_tape *T;
    int n;
    struct tg_tensor *const *in; /* the caller's inputs */
    struct tg_tensor **x;        /* copies the numeric side perturbs */
    double *v;                   /* output projection, NULL for one element */
    double **w;                  /* direction per input (NULL: requires no grad) */
    double **hw;                 /* analytic H w per input */
    int64_t out_numel;
};

static enum tg_status call_fn(struct ggc *c, struct tg_tensor *const *x, struct tg_tensor **y)
{
    tg_tape_reset(c->T);
    tg_clear_error();
    *y = c->fn(c->T, x, c->n, c->ctx);
    if (*y) return TG_OK;
    if (tg_last_status() != TG_OK) return tg_last_status();
    return tg__fail(TG_ERR_NULL, "tg_gradgradcheck: the function returned NULL and set no error");
}

/* A new leaf of like's shape and dtype holding vals. */
static struct tg_tensor *leaf_of(const struct tg_tensor *like, const double *vals)
{
    struct tg_tensor *t =
        tg_tensor_from_f64((enum tg_dtype)like->dtype, like->rank, like->shape, vals);
    return t;
}

/* The first-order gradients by tg_backward on the current recording of y, into
 * the inputs' grads (zeroed first). */
static enum tg_status backward_of(struct ggc *c, struct tg_tensor *y, struct tg_tensor *const *x)
{
    for (int i = 0; i < c->n; i++) tg_tensor_zero_grad(x[i]);
    struct tg_tensor *seed = c->v ? leaf_of(y, c->v) : NULL;
    if (c->v && !seed) return tg_last_status();
    enum tg_status st = tg_backward(y, seed);
    tg_tensor_free(seed);
    return st;
}

/* w . G(x) at the copies' current values. */
static enum tg_status eval(struct ggc *c, double *out)
{
    struct tg_tensor *y;
    enum tg_status st = call_fn(c, c->x, &y);
    if (st) return st;
    if (y->numel != c->out_numel)
        return tg__fail(TG_ERR_SHAPE, "tg_gradgradcheck: the function's output changed size");
    if ((st = backward_of(c, y, c->x))) return st;
    double s = 0;
    for (int i = 0; i < c->n; i++)
        if (c->w[i])
            for (int64_t j = 0; j < c->x[i]->numel; j++)
                s += c->w[i][j] * tg__load(c->x[i]->grad, c->x[i]->dtype, j);
    *out = s;
    return TG_OK;
}

/* Gathers the inputs that require grad (xs, m of them) and draws v and w. */
static enum tg_status draw(struct ggc *c, const struct tg_tensor *y, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    if (y->numel != 1) {
        if (!(c->v = tg__calloc((size_t)y->numel, sizeof *c->v))) return TG_ERR_NOMEM;
        for (int64_t k = 0; k < y->numel; k++) c->v[k] = tg_rng_normal(&rng);
    }
    for (int i = 0; i < c->n; i++) {
        if (!c->in[i]->requires_grad) continue;
        size_t n = (size_t)c->in[i]->numel + 1;
        if (!(c->w[i] = tg__calloc(n, sizeof **c->w)) ||
            !(c->hw[i] = tg__calloc(n, sizeof **c->hw)))
            return TG_ERR_NOMEM;
        for (int64_t j = 0; j < c->in[i]->numel; j++) c->w[i][j] = tg_rng_normal(&rng);
    }
    return TG_OK;
}

/* First order: tg_grad's G against tg_backward's, element by element. */
static enum tg_status compare_first(struct ggc *c, struct tg_tensor *y, struct tg_tensor **G,
                                    struct tg_tensor **xs, int m,
                                    const struct tg_gradcheck_options *o)
{
    enum tg_status st = backward_of(c, y, c->in);
    for (int i = 0; !st && i < m; i++)
        for (int64_t j = 0; j < xs[i]->numel; j++) {
            double a = tg__load(G[i]->data, G[i]->dtype, j);
            double b = tg__load(xs[i]->grad, xs[i]->dtype, j);
            if (!(fabs(a - b) <= o->atol + o->rtol * fabs(b)))
                return tg__fail(TG_ERR_GRADCHECK,
                                "tg_gradgradcheck: the first-order gradient that tg_grad records "
                                "differs from tg_backward's: input %d [%lld]: %.10g vs %.10g",
                                i, (long long)j, a, b);
        }
    return st;
}

/* The analytic side: G by tg_grad with create_graph, then H w by tg_grad of G
 * seeded with w. */
static enum tg_status analytic(struct ggc *c, const struct tg_gradcheck_options *o)
{
    struct tg_tensor *y, *xs[64], *G[64], *W[64] = {0}, *H[64];
    int idx[64], m = 0;
    enum tg_status st = call_fn(c, c->in, &y);
    if (st) return st;
    c->out_numel = y->numel;
    if ((st = draw(c, y, o->seed))) return st;
    for (int i = 0; i < c->n; i++)
        if (c->in[i]->requires_grad) {
            if (m == 64) return tg__fail(TG_ERR_RANGE, "tg_gradgradcheck: more than 64 inputs");
            idx[m] = i;
            xs[m++] = c->in[i];
        }
    if (m == 0) return TG_OK;
    struct tg_tensor *vseed = c->v ? leaf_of(y, c->v) : NULL;
    if (c->v && !vseed) return tg_last_status();
    struct tg_grad_options first = {.create_graph = true, .allow_unused = true};
    struct tg_grad_options second = {.allow_unused = true};
    st = tg_grad(1, &y, &vseed, m, xs, &first, G);
    if (!st) st = compare_first(c, y, G, xs, m, o);
    for (int k = 0; !st && k < m; k++)
        if (!(W[k] = leaf_of(xs[k], c->w[idx[k]]))) st = tg_last_status();
    if (!st) st = tg_grad(m, G, W, m, xs, &second, H);
    for (int k = 0; !st && k < m; k++)
        for (int64_t j = 0; j < xs[k]->numel; j++)
            c->hw[idx[k]][j] = tg__load(H[k]->data, H[k]->dtype, j);
    for (int k = 0; k < m; k++) tg_tensor_free(W[k]);
    tg_tensor_free(vseed);
    return st;
}

static enum tg_status check_element(struct ggc *c, int i, int64_t j, double f0,
                                    const struct tg_gradcheck_options *o,
                                    struct tg_gradcheck_report *rep, double *worst)
{
    struct tg_tensor *xi = c->x[i];
    double orig = tg__load(xi->data, xi->dtype, j), h = o->eps, fp = 0, fm = 0;
    double an = c->hw[i][j];
    tg__store(xi->data, xi->dtype, j, orig + h);
    enum tg_status st = eval(c, &fp);
    tg__store(xi->data, xi->dtype, j, orig - h);
    if (!st) st = eval(c, &fm);
    tg__store(xi->data, xi->dtype, j, orig);
    if (st) return st;
    tg__gradcheck_judge(o, rep, worst, i, j, an, f0, fp, fm);
    return TG_OK;
}

/* The numeric side on copies (f64 unless no_promote). */
static enum tg_status numeric(struct ggc *c, const struct tg_gradcheck_options *o,
                              struct tg_gradcheck_report *rep)
{
    enum tg_status st = TG_OK;
    for (int i = 0; !st && i < c->n; i++) {
        c->x[i] = o->no_promote ? tg_tensor_copy(c->in[i]) : tg_tensor_to(c->in[i], TG_F64);
        if (!c->x[i])
            st = tg_last_status();
        else
            st = tg_tensor_set_requires_grad(c->x[i], c->in[i]->requires_grad);
    }
    double f0 = 0, worst = 0;
    if (!st) st = eval(c, &f0);
    for (int i = 0; !st && i < c->n; i++)
        for (int64_t j = 0; !st && c->w[i] && j < c->x[i]->numel; j++)
            st = check_element(c, i, j, f0, o, rep, &worst);
    return st;
}

static enum tg_status validate(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n)
{
    if (!fn) return tg__fail(TG_ERR_NULL, "tg_gradgradcheck: fn is NULL");
    if (!inputs || n <= 0) return tg__fail(TG_ERR_NULL, "tg_gradgradcheck: no inputs");
    for (int i = 0; i < n; i++) {
        if (!inputs[i]) return tg__fail(TG_ERR_NULL, "tg_gradgradcheck: input %d is NULL", i);
        if (inputs[i]->kind != TG_KIND_LEAF)
            return tg__fail(TG_ERR_STATE, "tg_gradgradcheck: input %d is not a leaf", i);
    }
    return TG_OK;
}

static void describe(struct tg_gradcheck_report *rep, const struct tg_gradcheck_options *o)
{
    if (rep->worst_input < 0) {
        snprintf(rep->message, sizeof rep->message,
                 "%s: %lld second-order elements checked, %lld kinks skipped",
                 rep->passed ? "passed" : "failed", (long long)rep->n_checked,
                 (long long)rep->n_kinks);
        return;
    }
    snprintf(rep->message, sizeof rep->message,
             "%s: %lld/%lld elements of H w beyond atol %.1e rtol %.1e; worst input %d [%lld]: "
             "analytic %.10g numeric %.10g abs err %.3e rel err %.3e; %lld kinks skipped",
             rep->passed ? "passed" : "failed", (long long)rep->n_failed, (long long)rep->n_checked,
             o->atol, o->rtol, rep->worst_input, (long long)rep->worst_index, rep->analytic,
             rep->numeric, rep->abs_err, rep->rel_err, (long long)rep->n_kinks);
}

static void release(struct ggc *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->x) tg_tensor_free(c->x[i]);
        if (c->w) tg__free(c->w[i]);
        if (c->hw) tg__free(c->hw[i]);
        tg_tensor_zero_grad(c->in[i]);
    }
    tg__free(c->x);
    tg__free(c->w);
    tg__free(c->hw);
    tg__free(c->v);
    tg_tape_free(c->T);
}

enum tg_status tg_gradgradcheck(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n_inputs,
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
    bool all_f64 = true;
    for (int i = 0; i < n_inputs; i++) all_f64 &= inputs[i]->dtype == TG_F64;
    rep->numeric_f64 = all_f64 || !o.no_promote;
    if (o.eps <= 0) o.eps = rep->numeric_f64 ? 1e-6 : 1e-3;
    if (o.atol <= 0 && o.rtol <= 0) {
        o.atol = all_f64 ? 1e-7 : 1e-4;
        o.rtol = all_f64 ? 1e-5 : 1e-2;
    }
    struct ggc c = {fn, ctx, tg_tape_new(), n_inputs, inputs, NULL, NULL, NULL, NULL, 0};
    c.x = tg__calloc((size_t)n_inputs, sizeof *c.x);
    c.w = tg__calloc((size_t)n_inputs, sizeof *c.w);
    c.hw = tg__calloc((size_t)n_inputs, sizeof *c.hw);
    st = (!c.T || !c.x || !c.w || !c.hw) ? TG_ERR_NOMEM : TG_OK;
    if (!st) st = analytic(&c, &o);
    if (!st) st = numeric(&c, &o, rep);
    release(&c);
    if (st) {
        snprintf(rep->message, sizeof rep->message, "error: %s", tg_last_error());
        return st;
    }
    rep->passed = rep->n_failed == 0;
    describe(rep, &o);
    if (rep->passed && tg__gradcheck_vacuous(&o, rep, "tg_gradgradcheck") && o.skip_kinks)
        return TG_OK;
    if (!rep->passed) return tg__fail(TG_ERR_GRADCHECK, "tg_gradgradcheck: %s", rep->message);
    return TG_OK;
}
