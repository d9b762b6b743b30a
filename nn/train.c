/*
 * nn/train.c - the source document's training algorithm, for any model.
 *
 * The document (seed/neural-network-iv.md, "Neural network training algorithm"):
 *     initialise W, b
 *     do: Loss = 0; grad_W Loss = grad_b Loss = 0
 *         for t = 1..T: Y_t = forward(X_t); Loss += Div(Y_t, d_t);
 *                       backward: grad_W Loss += grad_W Div, grad_b Loss += grad_b Div
 *         W -= eta/T grad_W Loss;  b -= eta/T grad_b Loss
 *     until Loss has converged
 * Here "backward" is tg_backward on the tape (leaves accumulate, so "+=" is the
 * engine's own rule), "W -= eta/T grad" is tg_nn_optim_step(opt, 1/T) (SGD gives the
 * document's update exactly; other optimizers replace only that line), and T is
 * the batch size (the whole set for full-batch training). TG_TRAIN_PER_SAMPLE runs
 * the t-loop literally, one sample (a vector (in)) per forward; TG_TRAIN_MINIBATCH
 * runs the T samples as one (T, in) matrix and sums their divergences, which gives
 * the same accumulated gradient with one forward and one backward.
 *
 * One tape serves the whole run: it is reset before each forward, so once the
 * arena has grown to the largest step no allocation happens any more.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include "nn-impl.h"
#include "tapegrad/nn.h"

static const char *const loss_names[] = {"mse", "xent", "bce", "hinge"};
static const char *const stop_names[] = {"max_epochs", "converged", "target", "callback"};

const char *tg_nn_loss_name(enum tg_nn_loss loss)
{
    return (int)loss >= 0 && (int)loss < 4 ? loss_names[loss] : "?";
}

const char *tg_nn_train_stop_name(enum tg_nn_train_stop s)
{
    return (int)s >= 0 && (int)s < 4 ? stop_names[s] : "?";
}

struct tg_nn_train_config tg_nn_train_defaults(void)
{
    struct tg_nn_train_config c;
    memset(&c, 0, sizeof c);
    c.loss = TG_LOSS_MSE;
    c.mode = TG_TRAIN_PER_SAMPLE;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_SGD);
    c.optim.lr = 0.1;
    c.max_epochs = 1000;
    c.patience = 1;
    return c;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- one forward (and backward) ---- */

/* Samples start .. start+rows-1 as constants on T: x (rows, d) and y (rows), or,
 * for one sample as a vector, x (d) and y (). */
static enum tg_status load(const struct tg_dataset *ds, struct tg_tape *T, int64_t start,
                           int64_t rows, bool vector, struct tg_tensor **x, struct tg_tensor **y)
{
    enum tg_dtype dt = tg_tensor_dtype(tg_dataset_x(ds));
    int64_t d = tg_dataset_features(ds);
    struct tg_tensor *X = tg_tape_constant(T, dt, 2, (int64_t[]){rows, d}, NULL);
    struct tg_tensor *Y = X ? tg_tape_constant(T, dt, 1, (int64_t[]){rows}, NULL) : NULL;
    if (!Y) return tg_last_status();
    enum tg_status st = tg_dataset_batch_into(ds, start, X, Y);
    if (st) return st;
    if (vector) { /* the document's column vector y_0 = x and scalar target d */
        X = tg_tape_constant(T, dt, 1, &d, tg_tensor_data(X));
        Y = X ? tg_tape_constant(T, dt, 0, NULL, tg_tensor_data(Y)) : NULL;
        if (!Y) return tg_last_status();
    }
    *x = X;
    *y = Y;
    return TG_OK;
}

/* Sum over the rows of Div(out_row, y_row), a rank-0 node; out is (rows, C) or,
 * for a vector sample, (C) (XENT), or holds one value per row (the others). */
static struct tg_tensor *divergence(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *y,
                                    enum tg_nn_loss loss, int64_t rows, bool vector)
{
    char s[64];
    if (!out) return NULL;
    if (loss == TG_LOSS_XENT) {
        bool fits = vector ? tg_tensor_rank(out) == 1
                           : tg_tensor_rank(out) == 2 && tg_tensor_dim(out, 0) == rows;
        if (!fits) goto bad;
        return tg_cross_entropy(T, out, y, TG_REDUCE_SUM);
    }
    if (tg_tensor_numel(out) != rows) goto bad;
    struct tg_tensor *d = tg_tape_constant(T, tg_tensor_dtype(y), tg_tensor_rank(out),
                                           tg_tensor_shape(out), tg_tensor_data(y));
    switch (loss) {
    case TG_LOSS_MSE:
        return tg_mse(T, out, d, TG_REDUCE_SUM);
    case TG_LOSS_BCE:
        return tg_bce_logits(T, out, d, TG_REDUCE_SUM);
    case TG_LOSS_HINGE:
        return tg_hinge(T, out, d, TG_REDUCE_SUM);
    default:
        break;
    }
bad:
    tg_set_error(TG_ERR_SHAPE,
                 "tg_nn_train: the model's output %s does not fit loss %s for %lld sample%s "
                 "(%s expected)",
                 tg_tensor_shape_str(out, s, sizeof s), tg_nn_loss_name(loss), (long long)rows,
                 rows == 1 ? "" : "s",
                 loss != TG_LOSS_XENT ? "one value per sample"
                 : vector             ? "(C) logits"
                                      : "(rows, C) logits");
    return NULL;
}

static inline double at(const struct tg_tensor *t, int64_t i)
{
    const void *p = tg_tensor_data(t);
    return tg_tensor_dtype(t) == TG_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* Correct predictions among the rows of out against targets y (see tg_nn_epoch_info). */
static int64_t count_correct(const struct tg_tensor *out, const struct tg_tensor *y,
                             enum tg_nn_loss loss, int64_t rows)
{
    int64_t right = 0;
    if (loss == TG_LOSS_MSE) return 0;
    int64_t C = loss == TG_LOSS_XENT ? tg_tensor_numel(out) / rows : 1;
    for (int64_t r = 0; r < rows; r++) {
        double d = at(y, r);
        if (loss != TG_LOSS_XENT) {
            bool pos = at(out, r) > 0.0;
            right += pos == (loss == TG_LOSS_BCE ? d > 0.5 : d > 0.0);
            continue;
        }
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (at(out, r * C + c) > at(out, r * C + best)) best = c;
        right += (double)best == d;
    }
    return right;
}

/* Resets T, runs samples start .. start+rows-1 forward (backward when asked),
 * adds the divergence and correct count. */
static enum tg_status run(const struct tg_nn_module *m, struct tg_tape *T,
                          const struct tg_dataset *ds, int64_t start, int64_t rows,
                          enum tg_nn_loss loss, bool vector, bool backward, double *loss_sum,
                          int64_t *n_correct)
{
    struct tg_tensor *x = NULL, *y = NULL;
    tg_tape_reset(T);
    enum tg_status st = load(ds, T, start, rows, vector, &x, &y);
    if (st) return st;
    struct tg_tensor *out = m->forward(m->self, T, x);
    struct tg_tensor *div = divergence(T, out, y, loss, rows, vector);
    if (!div) return tg_last_status() ? tg_last_status() : TG_ERR_NULL;
    double v = tg_tensor_item(div);
    if (!isfinite(v))
        return tg_set_error(TG_ERR_NUMERIC, "tg_nn_train: the %s loss of samples %lld..%lld is %g",
                            tg_nn_loss_name(loss), (long long)start, (long long)(start + rows - 1),
                            v);
    if (backward && (st = tg_backward(div, NULL))) return st;
    if (loss_sum) *loss_sum += v;
    if (n_correct) *n_correct += count_correct(out, y, loss, rows);
    return TG_OK;
}

static enum tg_status check_model(const char *fn, const struct tg_nn_module *m, const void *T,
                                  const struct tg_dataset *ds, enum tg_nn_loss loss)
{
    if (!m || !m->forward || !T || !ds)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn,
                            !m            ? "model"
                            : !m->forward ? "model->forward"
                            : !T          ? "T"
                                          : "dataset");
    if ((int)loss < 0 || (int)loss > TG_LOSS_HINGE)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown loss %d", fn, (int)loss);
    return TG_OK;
}

enum tg_status tg_nn_train_accumulate(const struct tg_nn_module *model, struct tg_tape *T,
                                      const struct tg_dataset *ds, int64_t start, int64_t count,
                                      enum tg_nn_loss loss, enum tg_nn_train_mode mode,
                                      double *loss_sum, int64_t *n_correct)
{
    static const char fn[] = "tg_nn_train_accumulate";
    enum tg_status st = check_model(fn, model, T, ds, loss);
    if (st) return st;
    if (mode != TG_TRAIN_PER_SAMPLE && mode != TG_TRAIN_MINIBATCH)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown mode %d", fn, (int)mode);
    int64_t n = tg_dataset_len(ds);
    if (start < 0 || count < 1 || start > n || count > n - start)
        return tg_set_error(TG_ERR_RANGE, "%s: samples [%lld, %lld) outside the dataset's %lld", fn,
                            (long long)start, (long long)(start + count), (long long)n);
    if (mode == TG_TRAIN_MINIBATCH)
        return run(model, T, ds, start, count, loss, false, true, loss_sum, n_correct);
    for (int64_t t = start; t < start + count; t++) /* for t = 1..T */
        if ((st = run(model, T, ds, t, 1, loss, true, true, loss_sum, n_correct))) return st;
    return TG_OK;
}

enum tg_status tg_nn_evaluate(const struct tg_nn_module *model, const struct tg_dataset *ds,
                              enum tg_nn_loss loss, double *mean_loss, double *accuracy)
{
    static const char fn[] = "tg_nn_evaluate";
    enum tg_status st = check_model(fn, model, "", ds, loss);
    if (st) return st;
    struct tg_tape *T = tg_tape_new();
    if (!T) return tg_last_status();
    tg_tape_no_grad_push(T);
    int64_t n = tg_dataset_len(ds), right = 0;
    double sum = 0.0;
    for (int64_t s = 0; s < n && !st; s += 256)
        st = run(model, T, ds, s, n - s < 256 ? n - s : 256, loss, false, false, &sum, &right);
    tg_tape_free(T);
    if (st) return st;
    if (mean_loss) *mean_loss = sum / (double)n;
    if (accuracy) *accuracy = loss == TG_LOSS_MSE ? NAN : (double)right / (double)n;
    return TG_OK;
}

/* ---- the trainer ---- */

static enum tg_status check_config(const struct tg_nn_train_config *c)
{
    static const char fn[] = "tg_nn_train";
    if (c->mode != TG_TRAIN_PER_SAMPLE && c->mode != TG_TRAIN_MINIBATCH)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown mode %d", fn, (int)c->mode);
    if (c->batch_size < 0)
        return tg_set_error(TG_ERR_VALUE, "%s: batch_size %lld < 0", fn, (long long)c->batch_size);
    if (c->max_epochs < 1)
        return tg_set_error(TG_ERR_VALUE, "%s: max_epochs %d < 1", fn, c->max_epochs);
    if (!(c->tol >= 0.0) || c->patience < 0)
        return tg_set_error(TG_ERR_VALUE, "%s: tol %g or patience %d < 0", fn, c->tol, c->patience);
    if (isnan(tg_nn_lr_at(&c->schedule, c->optim.lr, 0)))
        return tg_set_error(TG_ERR_VALUE, "%s: bad learning-rate schedule (kind %d)", fn,
                            (int)c->schedule.kind);
    return TG_OK;
}

/* What one run keeps between epochs; the arrays are allocated once. */
struct trainer {
    const struct tg_nn_module *m;
    struct tg_dataset *ds;
    const struct tg_nn_train_config *cfg;
    struct tg_nn_optim *opt;
    struct tg_tape *T;
    struct tg_rng rng;
    const char **names; /* (n_params) */
    double *norms;      /* (n_params) */
    size_t n_params;
};

/* ||scale * grad|| of every parameter tensor. */
static void grad_norms(struct trainer *tr, double scale)
{
    for (size_t i = 0; i < tr->n_params; i++) {
        const struct tg_tensor *t = tg_params_tensor(tr->m->params, i);
        double s = 0.0;
        if (tg_tensor_grad(t))
            for (int64_t k = 0, n = tg_tensor_numel(t); k < n; k++) {
                double g = tg_tensor_grad_get(t, k);
                s += g * g;
            }
        tr->norms[i] = fabs(scale) * sqrt(s);
    }
}

/* One epoch: every batch of T samples is zero-grad, accumulate, one update. */
static enum tg_status epoch(struct trainer *tr, double *loss_sum, int64_t *right)
{
    const struct tg_nn_train_config *c = tr->cfg;
    int64_t n = tg_dataset_len(tr->ds);
    int64_t bs = c->batch_size > 0 && c->batch_size < n ? c->batch_size : n;
    enum tg_status st = TG_OK;
    if (c->shuffle && (st = tg_dataset_shuffle(tr->ds, &tr->rng))) return st;
    double scale = 1.0;
    for (int64_t start = 0; start < n; start += bs) {
        int64_t cnt = n - start < bs ? n - start : bs;
        scale = 1.0 / (double)cnt; /* the document's eta/T: lr = eta, scale = 1/T */
        if ((st = tg_params_zero_grad(tr->m->params))) return st;
        st = tg_nn_train_accumulate(tr->m, tr->T, tr->ds, start, cnt, c->loss, c->mode, loss_sum,
                                    right);
        if (st || (st = tg_nn_optim_step(tr->opt, scale))) return st;
    }
    grad_norms(tr, scale);
    return TG_OK;
}

/* Runs the epochs until a stopping rule fires; fills res. */
static enum tg_status loop(struct trainer *tr, struct tg_nn_train_result *res)
{
    const struct tg_nn_train_config *c = tr->cfg;
    double t0 = now(), prev = NAN, n = (double)tg_dataset_len(tr->ds);
    int streak = 0;
    for (int e = 0; e < c->max_epochs; e++) {
        double te = now(), sum = 0.0, lr = tg_nn_lr_at(&c->schedule, c->optim.lr, e);
        int64_t right = 0;
        enum tg_status st = tg_nn_optim_set_lr(tr->opt, lr);
        if (st || (st = epoch(tr, &sum, &right))) return st;
        struct tg_nn_epoch_info info = {e,
                                        sum / n,
                                        c->loss == TG_LOSS_MSE ? NAN : (double)right / n,
                                        lr,
                                        now() - te,
                                        now() - t0,
                                        tr->n_params,
                                        tr->names,
                                        tr->norms};
        *res = (struct tg_nn_train_result){e + 1, info.loss, info.accuracy, info.total_seconds,
                                           TG_STOP_MAX_EPOCHS};
        if (c->on_epoch && c->on_epoch(&info, c->ctx)) {
            res->stop = TG_STOP_CALLBACK;
            break;
        }
        if (c->target_loss > 0.0 && info.loss <= c->target_loss) {
            res->stop = TG_STOP_TARGET;
            break;
        }
        /* "until Loss has converged": relative change below tol, patience times */
        streak =
            c->tol > 0.0 && e > 0 && fabs(info.loss - prev) <= c->tol * fabs(prev) ? streak + 1 : 0;
        prev = info.loss;
        if (c->tol > 0.0 && streak >= (c->patience > 0 ? c->patience : 1)) {
            res->stop = TG_STOP_CONVERGED;
            break;
        }
    }
    res->seconds = now() - t0;
    return TG_OK;
}

enum tg_status tg_nn_train(const struct tg_nn_module *model, struct tg_dataset *train,
                           const struct tg_nn_train_config *cfg, struct tg_nn_train_result *result)
{
    static const char fn[] = "tg_nn_train";
    if (!cfg) return tg_set_error(TG_ERR_NULL, "%s: cfg is NULL", fn);
    enum tg_status st = check_model(fn, model, "", train, cfg->loss);
    if (st || (st = check_config(cfg))) return st;
    if (!model->params) return tg_set_error(TG_ERR_NULL, "%s: model->params is NULL", fn);
    struct trainer tr = {.m = model, .ds = train, .cfg = cfg};
    struct tg_nn_train_result res = {0, NAN, NAN, 0.0, TG_STOP_MAX_EPOCHS};
    tg_rng_seed(&tr.rng, cfg->seed);
    if (cfg->shuffle) tg__dataset_reset_order(train); /* not from the last run's order */
    tr.n_params = tg_params_count(model->params);
    size_t np = tr.n_params ? tr.n_params : 1;
    tr.names = tg_malloc(np * sizeof *tr.names);
    tr.norms = tg_malloc(np * sizeof *tr.norms);
    tr.opt = tr.names && tr.norms ? tg_nn_optim_new(model->params, &cfg->optim) : NULL;
    tr.T = tr.opt ? tg_tape_new() : NULL;
    if (!tr.T) {
        st = tg_last_status();
        goto out;
    }
    for (size_t i = 0; i < tr.n_params; i++) {
        tr.names[i] = tg_params_name(model->params, i);
        tr.norms[i] = 0.0;
    }
    st = loop(&tr, &res);
out:
    tg_tape_free(tr.T);
    tg_nn_optim_free(tr.opt);
    tg_free(tr.names);
    tg_free(tr.norms);
    if (result) *result = res;
    return st;
}
