/*
 * nn/optim.c - optimizers (SGD, momentum/Nesterov, Adam, AdamW) and learning-rate
 * schedules.
 *
 * The update rules are PyTorch's (torch.optim.SGD, Adam, AdamW of torch 1.13,
 * single-tensor path), element by element, so a run can be compared with PyTorch
 * number for number. The gradient used is grad_scale * grad: the document's
 * update W -= eta/T grad_W Loss is lr = eta, grad_scale = 1/T, and keeping the
 * 1/T out of the accumulated gradient lets per-sample and batched training
 * accumulate identical sums. State (momentum buffer, Adam's first and second
 * moments) is kept in f64 for f32 parameters too, allocated once in
 * tg_nn_optim_new, so a step allocates nothing.
 */
#include <math.h>
#include <string.h>
#include "nn-impl.h"
#include "tapegrad/nn.h"

struct slot {
    struct tg_tensor *t; /* borrowed from the map */
    bool applied;        /* tg_nn_optim_backward_step: updated by the sweep itself */
    bool zero_known;     /* the gradient was zero at version zero_version */
    uint64_t zero_version;
    double *s1, *s2; /* (numel) momentum buffer / Adam's m; Adam's v (NULL if unused) */
    int64_t steps;   /* updates of this tensor (PyTorch counts per parameter too) */
};

struct tg_nn_optim {
    struct tg_params *params;
    struct tg_nn_optim_config cfg;
    size_t n;               /* entries in the map at creation */
    struct slot *slots;     /* (n) */
    struct tg_apply *apply; /* (n) the update list of tg_nn_optim_backward_step */
    int64_t steps;
};

struct tg_nn_optim_config tg_nn_optim_defaults(enum tg_nn_optim_kind kind)
{
    bool adam = kind == TG_OPTIM_ADAM || kind == TG_OPTIM_ADAMW;
    return (struct tg_nn_optim_config){.kind = kind,
                                       .lr = adam ? 1e-3 : 1e-2,
                                       .momentum = 0.9,
                                       .nesterov = false,
                                       .beta1 = 0.9,
                                       .beta2 = 0.999,
                                       .eps = 1e-8,
                                       .weight_decay = kind == TG_OPTIM_ADAMW ? 1e-2 : 0.0};
}

static bool in01(double x)
{
    return x >= 0.0 && x < 1.0;
}

static enum tg_status check_config(const struct tg_nn_optim_config *c)
{
    static const char fn[] = "tg_nn_optim_new";
    if ((int)c->kind < TG_OPTIM_SGD || (int)c->kind > TG_OPTIM_ADAMW)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown kind %d", fn, (int)c->kind);
    if (!(c->lr >= 0.0) || !isfinite(c->lr))
        return tg_set_error(TG_ERR_VALUE, "%s: lr %g must be finite and >= 0", fn, c->lr);
    if (!(c->weight_decay >= 0.0) || !isfinite(c->weight_decay))
        return tg_set_error(TG_ERR_VALUE, "%s: weight_decay %g must be finite and >= 0", fn,
                            c->weight_decay);
    if (c->kind == TG_OPTIM_MOMENTUM && !in01(c->momentum))
        return tg_set_error(TG_ERR_VALUE, "%s: momentum %g outside [0, 1)", fn, c->momentum);
    if (c->kind >= TG_OPTIM_ADAM) {
        if (!in01(c->beta1) || !in01(c->beta2))
            return tg_set_error(TG_ERR_VALUE, "%s: betas (%g, %g) outside [0, 1)", fn, c->beta1,
                                c->beta2);
        if (!(c->eps > 0.0) || !isfinite(c->eps))
            return tg_set_error(TG_ERR_VALUE, "%s: eps %g must be > 0", fn, c->eps);
    }
    return TG_OK;
}

void tg_nn_optim_free(struct tg_nn_optim *opt)
{
    if (!opt) return;
    for (size_t i = 0; opt->slots && i < opt->n; i++) {
        tg_free(opt->slots[i].s1);
        tg_free(opt->slots[i].s2);
    }
    tg_free(opt->slots);
    tg_free(opt->apply);
    tg_free(opt);
}

/* Zeroed f64 state of n elements, or NULL (error recorded). */
static double *zeroed(int64_t n)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    double *p = tg_malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

struct tg_nn_optim *tg_nn_optim_new(struct tg_params *params, const struct tg_nn_optim_config *cfg)
{
    if (!params || !cfg) {
        tg_set_error(TG_ERR_NULL, "tg_nn_optim_new: %s is NULL", params ? "cfg" : "params");
        return NULL;
    }
    if (check_config(cfg)) return NULL;
    struct tg_nn_optim *o = tg_malloc(sizeof *o);
    if (!o) return NULL;
    memset(o, 0, sizeof *o);
    o->params = params;
    o->cfg = *cfg;
    o->n = tg_params_count(params);
    o->slots = tg_malloc((o->n ? o->n : 1) * sizeof *o->slots);
    if (!o->slots) goto fail;
    memset(o->slots, 0, (o->n ? o->n : 1) * sizeof *o->slots);
    if (!(o->apply = tg_malloc((o->n ? o->n : 1) * sizeof *o->apply))) goto fail;
    bool need1 = cfg->kind != TG_OPTIM_SGD, need2 = cfg->kind >= TG_OPTIM_ADAM;
    for (size_t i = 0; i < o->n; i++) {
        struct slot *s = &o->slots[i];
        s->t = tg_params_tensor(params, i);
        int64_t n = tg_tensor_numel(s->t);
        if (need1 && !(s->s1 = zeroed(n))) goto fail;
        if (need2 && !(s->s2 = zeroed(n))) goto fail;
    }
    return o;
fail:
    tg_nn_optim_free(o);
    return NULL;
}

/* ---- the update loops ----
 * One loop per dtype (parameters and gradients are f32 or f64, the state is f64) and
 * per variant of a rule, with nothing in the body that stops gcc from vectorizing it:
 * nn/meson.build builds this file with -fvect-cost-model=dynamic (the -O2 default
 * takes no loop that needs a remainder) and -fno-math-errno (so sqrt is sqrtpd). Each
 * rule is written once, for one element, as an inline function whose variant argument
 * is a constant at every call, so no branch is left in a loop; its operations and their
 * order match PyTorch's update formula term by term (docs/nn.md). The loop functions take restrict
 * parameters and are kept out of line: inlined into their caller they lose the restrict, and gcc
 * adds a run-time overlap check to each loop. */

/* SGD and momentum, torch.optim.SGD with dampening 0. */
/* Plain SGD: w -= k g, and g = 0 in the same pass when zero is set. */
#define SGD_PLAIN_LOOP(T, SUF)                                                                     \
    __attribute__((noinline)) static void sgd_plain_##SUF(T *restrict p, T *restrict g, int64_t n, \
                                                          T k, bool zero)                          \
    {                                                                                              \
        if (zero)                                                                                  \
            for (int64_t i = 0; i < n; i++) p[i] -= k * g[i], g[i] = 0;                            \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) p[i] -= k * g[i];                                      \
    }
SGD_PLAIN_LOOP(double, f64)
SGD_PLAIN_LOOP(float, f32)

/* Plain SGD without weight decay, the common case: w -= lr scale g (k rounded to f32
 * for f32 parameters). */
static void step_sgd_plain(const struct tg_nn_optim *o, struct slot *s, double scale)
{
    double k = o->cfg.lr * scale;
    int64_t n = tg_tensor_numel(s->t);
    bool zero = o->cfg.zero_grad;
    if (tg_tensor_dtype(s->t) == TG_F64)
        sgd_plain_f64(tg_tensor_data(s->t), tg_tensor_grad_mut(s->t), n, k, zero);
    else
        sgd_plain_f32(tg_tensor_data(s->t), tg_tensor_grad_mut(s->t), n, (float)k, zero);
}

/* The variants of SGD with weight decay or momentum; _FIRST is a tensor's first update,
 * where the momentum buffer starts as the gradient. */
enum sgd_rule { SGD_L2, SGD_MOMENTUM, SGD_MOMENTUM_FIRST, SGD_NESTEROV, SGD_NESTEROV_FIRST };

/* The constants of one SGD step of one tensor. */
struct sgd_k {
    double scale, lr, wd, mu;
};

/* One element: the new w; buf[i] updated by the momentum rules (buf is NULL for
 * SGD_L2). r is a constant at each call. */
static inline double sgd_one(const struct sgd_k *k, enum sgd_rule r, double w, double g,
                             double *buf, int64_t i)
{
    double d = k->scale * g + k->wd * w; /* L2 folded into g */
    if (r != SGD_L2) {
        bool first = r == SGD_MOMENTUM_FIRST || r == SGD_NESTEROV_FIRST;
        double b = buf[i] = first ? d : k->mu * buf[i] + d; /* buf = mu buf + g */
        bool nesterov = r == SGD_NESTEROV || r == SGD_NESTEROV_FIRST;
        d = nesterov ? d + k->mu * b : b;
    }
    return w - k->lr * d;
}

/* One loop per rule, so that r is a constant in each (the result cast to T). */
#define SGD_CASE(T, R)                                                                             \
    case R:                                                                                        \
        for (int64_t i = 0; i < n; i++) p[i] = (T)sgd_one(&k, R, p[i], g[i], buf, i);              \
        break;
#define SGD_LOOP(T, SUF)                                                                           \
    __attribute__((noinline)) static void sgd_##SUF(T *restrict p, const T *restrict g,            \
                                                    double *restrict buf, int64_t n,               \
                                                    struct sgd_k k, enum sgd_rule r)               \
    {                                                                                              \
        switch (r) {                                                                               \
            SGD_CASE(T, SGD_L2)                                                                    \
            SGD_CASE(T, SGD_MOMENTUM)                                                              \
            SGD_CASE(T, SGD_MOMENTUM_FIRST)                                                        \
            SGD_CASE(T, SGD_NESTEROV)                                                              \
            SGD_CASE(T, SGD_NESTEROV_FIRST)                                                        \
        }                                                                                          \
    }
SGD_LOOP(double, f64)
SGD_LOOP(float, f32)

static void step_sgd(const struct tg_nn_optim *o, struct slot *s, double scale)
{
    const struct tg_nn_optim_config *c = &o->cfg;
    if (c->kind == TG_OPTIM_SGD && c->weight_decay == 0) {
        step_sgd_plain(o, s, scale);
        return;
    }
    struct sgd_k k = {.scale = scale, .lr = c->lr, .wd = c->weight_decay, .mu = c->momentum};
    bool first = s->steps == 0;
    enum sgd_rule r = SGD_L2;
    if (c->kind == TG_OPTIM_MOMENTUM && c->nesterov)
        r = first ? SGD_NESTEROV_FIRST : SGD_NESTEROV;
    else if (c->kind == TG_OPTIM_MOMENTUM)
        r = first ? SGD_MOMENTUM_FIRST : SGD_MOMENTUM;
    int64_t n = tg_tensor_numel(s->t);
    if (tg_tensor_dtype(s->t) == TG_F64)
        sgd_f64(tg_tensor_data(s->t), tg_tensor_grad(s->t), s->s1, n, k, r);
    else
        sgd_f32(tg_tensor_data(s->t), tg_tensor_grad(s->t), s->s1, n, k, r);
}

/* The constants of one Adam step of one tensor, computed once outside the loop. */
struct adam_k {
    double scale, beta1, beta2, c1, c2; /* c1 = 1 - beta1, c2 = 1 - beta2 */
    double wd, decay;                   /* decay = 1 - lr wd (AdamW) */
    double step_size, bc2_sqrt, eps;    /* lr / (1 - beta1^t), sqrt(1 - beta2^t) */
    bool decoupled;
};

/* One element: the new w; m[i] and v[i] updated. decoupled is a constant at each call. */
static inline double adam_one(const struct adam_k *k, bool decoupled, double w, double g, double *m,
                              double *v, int64_t i)
{
    double d = k->scale * g;
    if (decoupled)
        w *= k->decay;
    else
        d += k->wd * w;
    double mi = m[i] = k->beta1 * m[i] + k->c1 * d;
    double vi = v[i] = k->beta2 * v[i] + k->c2 * d * d;
    return w - k->step_size * mi / (sqrt(vi) / k->bc2_sqrt + k->eps);
}

#define ADAM_LOOP(T, SUF)                                                                          \
    __attribute__((noinline)) static void adam_##SUF(T *restrict p, const T *restrict g,           \
                                                     double *restrict m, double *restrict v,       \
                                                     int64_t n, struct adam_k k)                   \
    {                                                                                              \
        if (k.decoupled)                                                                           \
            for (int64_t i = 0; i < n; i++) p[i] = (T)adam_one(&k, true, p[i], g[i], m, v, i);     \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) p[i] = (T)adam_one(&k, false, p[i], g[i], m, v, i);    \
    }
ADAM_LOOP(double, f64)
ADAM_LOOP(float, f32)

/* Adam (L2 weight decay in g) and AdamW (decoupled: p *= 1 - lr wd first). */
static void step_adam(const struct tg_nn_optim *o, struct slot *s, double scale)
{
    const struct tg_nn_optim_config *c = &o->cfg;
    double t = (double)(s->steps + 1);
    struct adam_k k = {.scale = scale,
                       .beta1 = c->beta1,
                       .beta2 = c->beta2,
                       .c1 = 1.0 - c->beta1,
                       .c2 = 1.0 - c->beta2,
                       .wd = c->weight_decay,
                       .decay = 1.0 - c->lr * c->weight_decay,
                       .step_size = c->lr / (1.0 - pow(c->beta1, t)),
                       .bc2_sqrt = sqrt(1.0 - pow(c->beta2, t)),
                       .eps = c->eps,
                       .decoupled = c->kind == TG_OPTIM_ADAMW};
    int64_t n = tg_tensor_numel(s->t);
    if (tg_tensor_dtype(s->t) == TG_F64)
        adam_f64(tg_tensor_data(s->t), tg_tensor_grad(s->t), s->s1, s->s2, n, k);
    else
        adam_f32(tg_tensor_data(s->t), tg_tensor_grad(s->t), s->s1, s->s2, n, k);
}

/* The checks of a step: TG_OK, or the error recorded under fn's name. */
static enum tg_status check_step(const struct tg_nn_optim *opt, double grad_scale, const char *fn)
{
    if (!opt) return tg_set_error(TG_ERR_NULL, "%s: opt is NULL", fn);
    if (!isfinite(grad_scale))
        return tg_set_error(TG_ERR_VALUE, "%s: grad_scale %g is not finite", fn, grad_scale);
    if (tg_params_count(opt->params) != opt->n)
        return tg_set_error(TG_ERR_STATE, "%s: the map has %zu entries, %zu at creation", fn,
                            tg_params_count(opt->params), opt->n);
    for (size_t i = 0; i < opt->n; i++)
        if (tg_params_tensor(opt->params, i) != opt->slots[i].t)
            return tg_set_error(TG_ERR_STATE, "%s: entry %zu (%s) changed since creation", fn, i,
                                tg_params_name(opt->params, i));
    return TG_OK;
}

/* One parameter's update from its gradient (and the zeroing the config asks for). */
static void step_slot(struct tg_nn_optim *opt, struct slot *s, double grad_scale)
{
    bool plain = opt->cfg.kind == TG_OPTIM_SGD && opt->cfg.weight_decay == 0;
    if (opt->cfg.kind >= TG_OPTIM_ADAM)
        step_adam(opt, s, grad_scale);
    else
        step_sgd(opt, s, grad_scale);
    if (opt->cfg.zero_grad && !plain) tg_tensor_zero_grad(s->t); /* plain SGD zeroes in its loop */
    s->steps++;
    s->zero_known = opt->cfg.zero_grad;
    s->zero_version = tg_tensor_grad_version(s->t);
}

/* Whether the parameter has a gradient: the map holds leaves, and a leaf has a
 * gradient buffer exactly when it requires grad. (Not tg_tensor_grad, which
 * would count as a change of the gradient.) */
static bool has_grad(const struct slot *s)
{
    return tg_tensor_requires_grad(s->t);
}

enum tg_status tg_nn_optim_step(struct tg_nn_optim *opt, double grad_scale)
{
    enum tg_status st = check_step(opt, grad_scale, "tg_nn_optim_step");
    if (st) return st;
    for (size_t i = 0; i < opt->n; i++)
        if (has_grad(&opt->slots[i])) step_slot(opt, &opt->slots[i], grad_scale);
    opt->steps++;
    return TG_OK;
}

/* Whether every element of t's gradient is zero (NaN is not). Reads in blocks so
 * that a nonzero gradient is found early; the block loops vectorize. */
static bool grad_is_zero(const struct tg_tensor *t)
{
    int64_t n = tg_tensor_numel(t);
    const void *g = tg_tensor_grad(t);
    for (int64_t i0 = 0; i0 < n; i0 += 4096) {
        int64_t i1 = n - i0 < 4096 ? n : i0 + 4096;
        int nz = 0;
        if (tg_tensor_dtype(t) == TG_F64)
            for (int64_t i = i0; i < i1; i++) nz |= ((const double *)g)[i] != 0;
        else
            for (int64_t i = i0; i < i1; i++) nz |= ((const float *)g)[i] != 0;
        if (nz) return false;
    }
    return true;
}

enum tg_status tg_nn_optim_backward_step(struct tg_nn_optim *opt, struct tg_tensor *loss,
                                         double grad_scale)
{
    static const char fn[] = "tg_nn_optim_backward_step";
    enum tg_status st = check_step(opt, grad_scale, fn);
    if (st) return st;
    if (!loss) return tg_set_error(TG_ERR_NULL, "%s: loss is NULL", fn);
    const struct tg_nn_optim_config *c = &opt->cfg;
    if (c->kind != TG_OPTIM_SGD || !c->zero_grad) { /* nothing to fold */
        if ((st = tg_backward(loss, NULL))) return st;
        return tg_nn_optim_step(opt, grad_scale);
    }
    /* SGD with zeroing: p = (1 - lr wd) p - lr scale g, applied by the sweep to
     * every parameter whose gradient is zero now (the usual case: the last step
     * zeroed it). One that holds a gradient gets it added and the usual step. */
    size_t m = 0;
    for (size_t i = 0; i < opt->n; i++) {
        struct slot *s = &opt->slots[i];
        /* zero as the last step left it (the version tells nothing wrote it
         * since), or found zero now */
        bool known = s->zero_known && tg_tensor_grad_version(s->t) == s->zero_version;
        s->applied = has_grad(s) && (known || grad_is_zero(s->t));
        if (s->applied && !known) {
            s->zero_known = true;
            s->zero_version = tg_tensor_grad_version(s->t);
        }
        if (s->applied)
            opt->apply[m++] =
                (struct tg_apply){s->t, -c->lr * grad_scale, 1.0 - c->lr * c->weight_decay};
    }
    if ((st = tg_backward_apply(loss, NULL, opt->apply, m))) return st;
    for (size_t i = 0; i < opt->n; i++) {
        struct slot *s = &opt->slots[i];
        if (s->applied)
            s->steps++;
        else if (has_grad(s))
            step_slot(opt, s, grad_scale);
    }
    opt->steps++;
    return TG_OK;
}

enum tg_status tg_nn_optim_set_lr(struct tg_nn_optim *opt, double lr)
{
    if (!opt) return tg_set_error(TG_ERR_NULL, "tg_nn_optim_set_lr: opt is NULL");
    if (!(lr >= 0.0) || !isfinite(lr))
        return tg_set_error(TG_ERR_VALUE, "tg_nn_optim_set_lr: lr %g must be finite and >= 0", lr);
    opt->cfg.lr = lr;
    return TG_OK;
}

double tg_nn_optim_lr(const struct tg_nn_optim *opt)
{
    return opt ? opt->cfg.lr : NAN;
}

int64_t tg_nn_optim_steps(const struct tg_nn_optim *opt)
{
    return opt ? opt->steps : 0;
}

/* ---- schedules (the closed forms of torch.optim.lr_scheduler) ---- */

double tg_nn_lr_at(const struct tg_nn_lr_schedule *s, double base_lr, int epoch)
{
    if (!s || epoch < 0) return NAN;
    switch (s->kind) {
    case TG_LR_CONSTANT:
        return base_lr;
    case TG_LR_STEP:
        if (s->step_size < 1) return NAN;
        return base_lr * pow(s->gamma, (double)(epoch / s->step_size));
    case TG_LR_COSINE:
        if (s->t_max < 1) return NAN;
        return s->eta_min +
               (base_lr - s->eta_min) * (1.0 + cos(M_PI * epoch / (double)s->t_max)) / 2.0;
    }
    return NAN;
}

/* ---- the state, for nn/resume.c ---- */

size_t tg__nn_optim_state(struct tg_nn_optim *opt, size_t i, double **s1, double **s2,
                          int64_t **steps, int64_t **total)
{
    if (i < opt->n) {
        struct slot *s = &opt->slots[i];
        *s1 = s->s1;
        *s2 = s->s2;
        *steps = &s->steps;
        s->zero_known = false; /* the state is about to change behind the optimizer's back */
    }
    *total = &opt->steps;
    return opt->n;
}

enum tg_nn_optim_kind tg__nn_optim_kind(const struct tg_nn_optim *opt)
{
    return opt->cfg.kind;
}
