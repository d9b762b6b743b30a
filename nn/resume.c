/*
 * nn/resume.c - training that survives being killed.
 *
 * A state file is one safetensors checkpoint: the parameters under their own
 * names, then the optimizer's state as f64 tensors ("resume/optim/NAME/s1" for
 * the momentum buffer or Adam's m, ".../s2" for Adam's v, "resume/optim/steps"
 * for the per-tensor step counts), the dataset's visiting order
 * ("resume/order", row indices as f64, exact below 2^53) and the position of
 * the run in the metadata ("resume.epoch", ... with doubles in C's hexadecimal
 * notation, so that they come back bit for bit). tg_checkpoint_save writes it
 * atomically, so a kill at any point leaves the previous state or the new one.
 *
 * tg_nn_train_resumable is tg_nn_train's loop (nn/train.c: the same calls in
 * the same order: shuffle at the start of an epoch, per batch zero-grad,
 * tg_nn_train_accumulate, tg_nn_optim_step) with the state saved after every
 * `every` updates. A save comes after an update, never inside one, so a run
 * resumed from it repeats no update and skips none, and the floating-point
 * operations are the same as in one uninterrupted run.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "nn-impl.h"

#define OPTIM_PREFIX "resume/optim/"
#define ORDER_NAME   "resume/order"
#define STEPS_NAME   "resume/optim/steps"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "resume/optim/NAME/SUFFIX" in buf (NULL when it does not fit). */
static const char *state_name(char *buf, size_t size, const char *name, const char *suffix)
{
    int k = snprintf(buf, size, "%s%s/%s", OPTIM_PREFIX, name, suffix);
    return k >= 0 && (size_t)k < size ? buf : NULL;
}

/* ---- save ---- */

/* An owned f64 copy of n doubles added to m as `name`. */
static enum tg_status add_f64(struct tg_params *m, const char *name, const double *v, int64_t n)
{
    if (!name) return tg_set_error(TG_ERR_VALUE, "tg_nn_resume_save: a parameter name is too long");
    struct tg_tensor *t = tg_tensor_from(TG_F64, 1, (int64_t[]){n}, v);
    if (!t) return tg_last_status();
    return tg_params_add_owned(m, name, t);
}

static enum tg_status meta_fmt(struct tg_params *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum tg_status meta_fmt(struct tg_params *m, const char *key, const char *fmt, ...)
{
    char v[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return tg_params_meta_set(m, key, v);
}

static enum tg_status add_optim(struct tg_params *m, const struct tg_params *params,
                                struct tg_nn_optim *opt)
{
    double *s1, *s2;
    int64_t *steps, *total;
    size_t n = tg__nn_optim_state(opt, 0, &s1, &s2, &steps, &total);
    double *counts = tg_malloc((n ? n : 1) * sizeof *counts);
    if (!counts) return tg_last_status();
    enum tg_status st = TG_OK;
    char buf[512];
    for (size_t i = 0; !st && i < n; i++) {
        tg__nn_optim_state(opt, i, &s1, &s2, &steps, &total);
        const char *name = tg_params_name(params, i);
        int64_t numel = tg_tensor_numel(tg_params_tensor(params, i));
        counts[i] = (double)*steps;
        if (s1) st = add_f64(m, state_name(buf, sizeof buf, name, "s1"), s1, numel);
        if (!st && s2) st = add_f64(m, state_name(buf, sizeof buf, name, "s2"), s2, numel);
    }
    if (!st) st = add_f64(m, STEPS_NAME, counts, (int64_t)n);
    tg_free(counts);
    if (!st) st = meta_fmt(m, "resume.optim_kind", "%d", (int)tg__nn_optim_kind(opt));
    if (!st) st = meta_fmt(m, "resume.optim_steps", "%lld", (long long)*total);
    return st;
}

static enum tg_status add_order(struct tg_params *m, struct tg_dataset *ds)
{
    int64_t n = tg_dataset_len(ds);
    const int64_t *order = tg__dataset_order(ds);
    double *v = tg_malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return tg_last_status();
    for (int64_t i = 0; i < n; i++) v[i] = (double)order[i];
    enum tg_status st = add_f64(m, ORDER_NAME, v, n);
    tg_free(v);
    return st;
}

static enum tg_status add_position(struct tg_params *m, const struct tg_nn_train_state *s)
{
    enum tg_status st = meta_fmt(m, "resume.epoch", "%d", s->epoch);
    if (!st) st = meta_fmt(m, "resume.batch", "%lld", (long long)s->batch);
    if (!st) st = meta_fmt(m, "resume.updates", "%lld", (long long)s->updates);
    if (!st)
        st = meta_fmt(m, "resume.rng", "%016llx %016llx %016llx %016llx",
                      (unsigned long long)s->rng.s[0], (unsigned long long)s->rng.s[1],
                      (unsigned long long)s->rng.s[2], (unsigned long long)s->rng.s[3]);
    if (!st) st = meta_fmt(m, "resume.loss_sum", "%a", s->loss_sum);
    if (!st) st = meta_fmt(m, "resume.n_correct", "%lld", (long long)s->n_correct);
    if (!st) st = meta_fmt(m, "resume.prev_loss", "%a", s->prev_loss);
    if (!st) st = meta_fmt(m, "resume.streak", "%d", s->streak);
    if (!st) st = meta_fmt(m, "resume.done", "%d", s->done ? 1 : 0);
    return st;
}

enum tg_status tg_nn_resume_save(const char *path, const struct tg_params *params,
                                 struct tg_nn_optim *opt, struct tg_dataset *ds,
                                 const struct tg_nn_train_state *st)
{
    static const char fn[] = "tg_nn_resume_save";
    if (!path || !params || !st)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn,
                            !path     ? "path"
                            : !params ? "params"
                                      : "st");
    struct tg_params *m = tg_params_new();
    if (!m) return tg_last_status();
    enum tg_status s = TG_OK;
    for (size_t i = 0; !s && i < tg_params_count(params); i++)
        s = tg_params_add(m, tg_params_name(params, i), tg_params_tensor(params, i));
    if (!s && opt) s = add_optim(m, params, opt);
    if (!s && ds) s = add_order(m, ds);
    if (!s) s = add_position(m, st);
    if (!s) s = tg_checkpoint_save(m, path);
    tg_params_free(m);
    if (s == TG_ERR_IO) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        tg_set_error(TG_ERR_IO, "%s: %s; the previous state at %s is unchanged", fn, msg, path);
    }
    return s;
}

/* ---- load ---- */

struct reader {
    const char *path;
    struct tg_params *f; /* the file's tensors and metadata */
};

static enum tg_status bad_entry(const struct reader *r, const char *key, const char *what)
{
    return tg_set_error(TG_ERR_FORMAT, "tg_nn_resume_load: %s: \"%s\" %s", r->path, key, what);
}

/* Metadata key as an integer in [lo, hi]. */
static enum tg_status meta_int(const struct reader *r, const char *key, long long lo, long long hi,
                               long long *out)
{
    const char *v = tg_params_meta_get(r->f, key);
    if (!v) return bad_entry(r, key, "is missing");
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) return bad_entry(r, key, "is not a valid integer");
    *out = x;
    return TG_OK;
}

static enum tg_status meta_double(const struct reader *r, const char *key, double *out)
{
    const char *v = tg_params_meta_get(r->f, key);
    if (!v) return bad_entry(r, key, "is missing");
    char *end;
    *out = strtod(v, &end);
    return *v && !*end ? TG_OK : bad_entry(r, key, "is not a number");
}

static enum tg_status read_position(const struct reader *r, struct tg_nn_train_state *s)
{
    long long e, b, u, c, k, d;
    enum tg_status st = meta_int(r, "resume.epoch", 0, 1 << 30, &e);
    if (!st) st = meta_int(r, "resume.batch", 0, INT64_MAX, &b);
    if (!st) st = meta_int(r, "resume.updates", 0, INT64_MAX, &u);
    if (!st) st = meta_int(r, "resume.n_correct", 0, INT64_MAX, &c);
    if (!st) st = meta_int(r, "resume.streak", 0, 1 << 30, &k);
    if (!st) st = meta_int(r, "resume.done", 0, 1, &d);
    if (!st) st = meta_double(r, "resume.loss_sum", &s->loss_sum);
    if (!st) st = meta_double(r, "resume.prev_loss", &s->prev_loss);
    if (st) return st;
    const char *v = tg_params_meta_get(r->f, "resume.rng");
    unsigned long long w[4];
    int used = 0;
    if (!v || sscanf(v, "%16llx %16llx %16llx %16llx%n", &w[0], &w[1], &w[2], &w[3], &used) != 4 ||
        v[used])
        return bad_entry(r, "resume.rng", v ? "is not four 64-bit hex numbers" : "is missing");
    for (int i = 0; i < 4; i++) s->rng.s[i] = w[i];
    s->epoch = (int)e;
    s->batch = b;
    s->updates = u;
    s->n_correct = c;
    s->streak = (int)k;
    s->done = d != 0;
    return TG_OK;
}

/* The file's tensor `name`, which must be f64 of n elements (NULL: error set). */
static const struct tg_tensor *f64_entry(const struct reader *r, const char *name, int64_t n)
{
    const struct tg_tensor *t = name ? tg_params_get(r->f, name) : NULL;
    if (t && tg_tensor_dtype(t) == TG_F64 && tg_tensor_rank(t) == 1 && tg_tensor_numel(t) == n)
        return t;
    tg_set_error(TG_ERR_MISMATCH, "tg_nn_resume_load: %s: \"%s\" is %s", r->path,
                 name ? name : "(a name too long)",
                 t ? "not an f64 vector of the expected length" : "missing");
    return NULL;
}

static enum tg_status check_params(const struct reader *r, const struct tg_params *params)
{
    for (size_t i = 0; i < tg_params_count(params); i++) {
        const char *name = tg_params_name(params, i);
        const struct tg_tensor *p = tg_params_tensor(params, i), *t = tg_params_get(r->f, name);
        bool same =
            t && tg_tensor_dtype(t) == tg_tensor_dtype(p) && tg_tensor_rank(t) == tg_tensor_rank(p);
        for (int k = 0; same && k < tg_tensor_rank(p); k++)
            same = tg_tensor_shape(t)[k] == tg_tensor_shape(p)[k];
        if (!same)
            return tg_set_error(TG_ERR_MISMATCH,
                                "tg_nn_resume_load: %s: parameter \"%s\" is %s in the file",
                                r->path, name, t ? "of another shape or dtype" : "missing");
    }
    return TG_OK;
}

/* Checks (copy false) or copies (copy true) the optimizer's state. */
static enum tg_status optim_entries(const struct reader *r, const struct tg_params *params,
                                    struct tg_nn_optim *opt, bool copy)
{
    double *s1, *s2;
    int64_t *steps, *total;
    size_t n = tg__nn_optim_state(opt, 0, &s1, &s2, &steps, &total);
    long long kind, t;
    enum tg_status st = meta_int(r, "resume.optim_kind", 0, 100, &kind);
    if (!st) st = meta_int(r, "resume.optim_steps", 0, INT64_MAX, &t);
    if (st) return st;
    if (kind != (long long)tg__nn_optim_kind(opt))
        return tg_set_error(TG_ERR_MISMATCH,
                            "tg_nn_resume_load: %s: the state is of optimizer kind %lld, not %d",
                            r->path, kind, (int)tg__nn_optim_kind(opt));
    const struct tg_tensor *counts = f64_entry(r, STEPS_NAME, (int64_t)n);
    if (!counts) return TG_ERR_MISMATCH;
    char buf[512];
    for (size_t i = 0; i < n; i++) {
        tg__nn_optim_state(opt, i, &s1, &s2, &steps, &total);
        const char *name = tg_params_name(params, i);
        int64_t numel = tg_tensor_numel(tg_params_tensor(params, i));
        const struct tg_tensor *a = NULL, *b = NULL;
        if (s1 && !(a = f64_entry(r, state_name(buf, sizeof buf, name, "s1"), numel)))
            return TG_ERR_MISMATCH;
        if (s2 && !(b = f64_entry(r, state_name(buf, sizeof buf, name, "s2"), numel)))
            return TG_ERR_MISMATCH;
        double c = tg_tensor_get(counts, (int64_t)i);
        if (!(c >= 0 && c <= 9007199254740992.0 && c == floor(c)))
            return bad_entry(r, STEPS_NAME, "holds a step count that is not a whole number");
        if (!copy) continue;
        if (a) memcpy(s1, tg_tensor_data(a), (size_t)numel * sizeof *s1);
        if (b) memcpy(s2, tg_tensor_data(b), (size_t)numel * sizeof *s2);
        *steps = (int64_t)c;
    }
    if (copy) *total = t;
    return TG_OK;
}

/* Checks that the file's order is a permutation of ds's rows; copies it if copy. */
static enum tg_status order_entry(const struct reader *r, struct tg_dataset *ds, bool copy)
{
    int64_t n = tg_dataset_len(ds);
    const struct tg_tensor *t = f64_entry(r, ORDER_NAME, n);
    if (!t) return TG_ERR_MISMATCH;
    const double *v = tg_tensor_data(t);
    if (copy) {
        int64_t *order = tg__dataset_order(ds);
        for (int64_t i = 0; i < n; i++) order[i] = (int64_t)v[i];
        return TG_OK;
    }
    unsigned char *seen = tg_malloc((size_t)(n ? n : 1));
    if (!seen) return tg_last_status();
    memset(seen, 0, (size_t)(n ? n : 1));
    enum tg_status st = TG_OK;
    for (int64_t i = 0; !st && i < n; i++) {
        int64_t k = v[i] >= 0 && v[i] < (double)n && v[i] == floor(v[i]) ? (int64_t)v[i] : -1;
        if (k < 0 || seen[k]++) st = bad_entry(r, ORDER_NAME, "is not a permutation of the rows");
    }
    tg_free(seen);
    return st;
}

enum tg_status tg_nn_resume_load(const char *path, struct tg_params *params,
                                 struct tg_nn_optim *opt, struct tg_dataset *ds,
                                 struct tg_nn_train_state *st)
{
    if (!path || !params || !st)
        return tg_set_error(TG_ERR_NULL, "tg_nn_resume_load: %s is NULL",
                            !path     ? "path"
                            : !params ? "params"
                                      : "st");
    struct reader r = {path, tg_checkpoint_read(path)};
    if (!r.f) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        return tg_set_error(tg_last_status(), "tg_nn_resume_load: %s", msg);
    }
    struct tg_nn_train_state pos;
    enum tg_status s = check_params(&r, params);
    if (!s && opt) s = optim_entries(&r, params, opt, false);
    if (!s && ds) s = order_entry(&r, ds, false);
    if (!s) s = read_position(&r, &pos);
    if (!s) { /* everything checked: copy */
        for (size_t i = 0; i < tg_params_count(params); i++) {
            struct tg_tensor *p = tg_params_tensor(params, i);
            const struct tg_tensor *t = tg_params_get(r.f, tg_params_name(params, i));
            memcpy(tg_tensor_data(p), tg_tensor_data(t),
                   (size_t)tg_tensor_numel(p) * tg_dtype_size(tg_tensor_dtype(p)));
        }
        if (opt) optim_entries(&r, params, opt, true);
        if (ds) order_entry(&r, ds, true);
        *st = pos;
    }
    tg_params_free(r.f);
    return s;
}

/* ---- the resumable loop ---- */

static enum tg_status check_run(const struct tg_nn_module *m, const struct tg_dataset *ds,
                                const struct tg_nn_train_config *c,
                                const struct tg_nn_resume_config *rc)
{
    static const char fn[] = "tg_nn_train_resumable";
    if (!m || !ds || !c || !rc || !rc->path || !m->params || !m->forward)
        return tg_set_error(TG_ERR_NULL,
                            "%s: model, its params and forward, train, cfg, rc and "
                            "rc->path must not be NULL",
                            fn);
    if (rc->every < 1)
        return tg_set_error(TG_ERR_VALUE, "%s: every %lld < 1", fn, (long long)rc->every);
    if (c->mode != TG_TRAIN_PER_SAMPLE && c->mode != TG_TRAIN_MINIBATCH)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown mode %d", fn, (int)c->mode);
    if (c->batch_size < 0 || c->max_epochs < 1 || !(c->tol >= 0.0) || c->patience < 0)
        return tg_set_error(TG_ERR_VALUE,
                            "%s: batch_size, max_epochs, tol or patience out of range", fn);
    if (isnan(tg_nn_lr_at(&c->schedule, c->optim.lr, 0)))
        return tg_set_error(TG_ERR_VALUE, "%s: bad learning-rate schedule (kind %d)", fn,
                            (int)c->schedule.kind);
    return TG_OK;
}

struct run {
    const struct tg_nn_module *m;
    struct tg_dataset *ds;
    const struct tg_nn_train_config *c;
    const struct tg_nn_resume_config *rc;
    struct tg_nn_optim *opt;
    struct tg_tape *T;
    struct tg_nn_train_state s;
    bool stop;          /* on_update asked to stop */
    double scale;       /* grad_scale of the last update */
    const char **names; /* (n_params) for on_epoch */
    double *norms;      /* (n_params) ||scale * grad|| after the epoch's last update */
};

static int64_t batch_size(const struct run *r)
{
    int64_t n = tg_dataset_len(r->ds), bs = r->c->batch_size;
    return bs > 0 && bs < n ? bs : n;
}

/* The rest of epoch s.epoch from update s.batch on: each batch is zero-grad,
 * accumulate, one update, and a save every rc->every updates. */
static enum tg_status batches(struct run *r)
{
    const struct tg_nn_train_config *c = r->c;
    int64_t n = tg_dataset_len(r->ds), bs = batch_size(r);
    enum tg_status st;
    if (r->s.batch == 0 && c->shuffle && (st = tg_dataset_shuffle(r->ds, &r->s.rng))) return st;
    for (int64_t start = r->s.batch * bs; start < n && !r->stop; start += bs) {
        int64_t cnt = n - start < bs ? n - start : bs;
        if ((st = tg_params_zero_grad(r->m->params)) ||
            (st = tg_nn_train_accumulate(r->m, r->T, r->ds, start, cnt, c->loss, c->mode,
                                         &r->s.loss_sum, &r->s.n_correct)) ||
            (st = tg_nn_optim_step(r->opt, r->scale = 1.0 / (double)cnt)))
            return st;
        r->s.batch++;
        r->s.updates++;
        if (r->s.updates % r->rc->every == 0 &&
            (st = tg_nn_resume_save(r->rc->path, r->m->params, r->opt, r->ds, &r->s)))
            return st;
        if (r->rc->on_update && r->rc->on_update(r->s.updates, r->rc->ctx)) r->stop = true;
    }
    return TG_OK;
}

/* The end of an epoch: the callback and the stopping rules of tg_nn_train.
 * True when the run stops (res->stop says why). */
static bool epoch_end(struct run *r, double lr, double t_epoch, double t0,
                      struct tg_nn_train_result *res)
{
    const struct tg_nn_train_config *c = r->c;
    int e = r->s.epoch;
    double n = (double)tg_dataset_len(r->ds), loss = r->s.loss_sum / n;
    double acc = c->loss == TG_LOSS_MSE ? NAN : (double)r->s.n_correct / n;
    *res = (struct tg_nn_train_result){res->epochs + 1, loss, acc, now() - t0, TG_STOP_MAX_EPOCHS};
    size_t np = tg_params_count(r->m->params);
    for (size_t i = 0; i < np; i++) {
        const struct tg_tensor *t = tg_params_tensor(r->m->params, i);
        double sq = 0.0;
        for (int64_t k = 0, nk = tg_tensor_grad(t) ? tg_tensor_numel(t) : 0; k < nk; k++)
            sq += tg_tensor_grad_get(t, k) * tg_tensor_grad_get(t, k);
        r->names[i] = tg_params_name(r->m->params, i);
        r->norms[i] = fabs(r->scale) * sqrt(sq);
    }
    struct tg_nn_epoch_info info = {e,          loss, acc,      lr,      now() - t_epoch,
                                    now() - t0, np,   r->names, r->norms};
    if (c->on_epoch && c->on_epoch(&info, c->ctx)) {
        res->stop = TG_STOP_CALLBACK;
        return true;
    }
    if (c->target_loss > 0.0 && loss <= c->target_loss) {
        res->stop = TG_STOP_TARGET;
        return true;
    }
    bool close =
        c->tol > 0.0 && e > 0 && fabs(loss - r->s.prev_loss) <= c->tol * fabs(r->s.prev_loss);
    r->s.streak = close ? r->s.streak + 1 : 0;
    r->s.prev_loss = loss;
    if (c->tol > 0.0 && r->s.streak >= (c->patience > 0 ? c->patience : 1)) {
        res->stop = TG_STOP_CONVERGED;
        return true;
    }
    return false;
}

static enum tg_status run_epochs(struct run *r, struct tg_nn_train_result *res)
{
    const struct tg_nn_train_config *c = r->c;
    double t0 = now();
    enum tg_status st = TG_OK;
    while (!r->s.done && r->s.epoch < c->max_epochs) {
        double te = now(), lr = tg_nn_lr_at(&c->schedule, c->optim.lr, r->s.epoch);
        if ((st = tg_nn_optim_set_lr(r->opt, lr)) || (st = batches(r))) return st;
        if (r->stop) { /* on_update: the state is saved unfinished, to be resumed */
            res->stop = TG_STOP_CALLBACK;
            break;
        }
        bool stop = epoch_end(r, lr, te, t0, res);
        r->s.epoch++;
        r->s.batch = 0;
        r->s.loss_sum = 0.0;
        r->s.n_correct = 0;
        if (stop) break;
    }
    r->s.done = !r->stop;
    res->seconds = now() - t0;
    return tg_nn_resume_save(r->rc->path, r->m->params, r->opt, r->ds, &r->s);
}

enum tg_status tg_nn_train_resumable(const struct tg_nn_module *model, struct tg_dataset *train,
                                     const struct tg_nn_train_config *cfg,
                                     const struct tg_nn_resume_config *rc,
                                     struct tg_nn_train_result *result)
{
    enum tg_status st = check_run(model, train, cfg, rc);
    if (st) return st;
    struct run r = {.m = model, .ds = train, .c = cfg, .rc = rc};
    struct tg_nn_train_result res = {0, NAN, NAN, 0.0, TG_STOP_MAX_EPOCHS};
    r.s.prev_loss = NAN;
    tg_rng_seed(&r.s.rng, cfg->seed);
    if (cfg->shuffle) tg__dataset_reset_order(train);
    size_t np = tg_params_count(model->params) + 1;
    r.names = tg_malloc(np * sizeof *r.names);
    r.norms = tg_malloc(np * sizeof *r.norms);
    if (!r.names || !r.norms || !(r.opt = tg_nn_optim_new(model->params, &cfg->optim)) ||
        !(r.T = tg_tape_new())) {
        st = tg_last_status();
        goto out;
    }
    if (rc->resume) {
        tg_checkpoint_remove_temps(rc->path, NULL); /* of saves that were killed */
        if (access(rc->path, F_OK) == 0 &&
            (st = tg_nn_resume_load(rc->path, model->params, r.opt, train, &r.s)))
            goto out;
    }
    st = run_epochs(&r, &res);
out:
    tg_tape_free(r.T);
    tg_nn_optim_free(r.opt);
    tg_free(r.names);
    tg_free(r.norms);
    if (result) *result = res;
    return st;
}
