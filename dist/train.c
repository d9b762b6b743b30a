/*
 * dist/train.c - tg_nn_train across MPI ranks, with checkpoints to resume from.
 *
 * One step of the single-process trainer is: zero the gradients, accumulate the
 * batch's summed gradient, update with grad_scale 1/T. Here each rank
 * accumulates its part of the global batch (a shard), the reducer turns the
 * ranks' sums into the global batch's mean (weight 1, count = the part's size),
 * and every rank updates with grad_scale 1: the same update up to rounding.
 *
 * The checkpoint holds the parameters and "dist.state" = (epoch, next batch,
 * step, seed, global batch); rank 0 writes it with tg_checkpoint_save (atomic),
 * and on resume reads it and broadcasts parameters and state, so only rank 0
 * needs the file.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <tapegrad/checkpoint.h>
#include "dist-impl.h"

enum { ST_EPOCH, ST_BATCH, ST_STEP, ST_SEED, ST_GBATCH, ST_LEN };

struct run {
    struct tg_dist *d;
    const struct tg_nn_module *m;
    struct tg_dataset *ds;
    const struct tg_nn_train_config *cfg;
    struct tg_dist_train_options opt;
    struct tg_dist_shard *shard;
    struct tg_dist_reducer *red;
    struct tg_nn_optim *optim;
    struct tg_tape *T;
    struct tg_params *ckpt; /* the model's entries (borrowed) + "dist.state" (owned) */
    struct tg_tensor *state;
    int64_t batch, step;
    double *norms;      /* (n_params) */
    const char **names; /* (n_params) */
};

static const char fn[] = "tg_dist_train";

static enum tg_status check_args(struct tg_dist *d, const struct tg_nn_module *m,
                                 const struct tg_dataset *ds, const struct tg_nn_train_config *c)
{
    if (!d) return tg_set_error(TG_ERR_NULL, "%s: not initialised (d is NULL)", fn);
    if (!m || !m->params || !m->forward || !ds || !c)
        return tg_set_error(TG_ERR_NULL, "%s: NULL model, dataset or config", fn);
    if (c->mode != TG_TRAIN_PER_SAMPLE && c->mode != TG_TRAIN_MINIBATCH)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown mode %d", fn, (int)c->mode);
    if (c->batch_size < 0 || c->max_epochs < 1 || !(c->tol >= 0.0) || c->patience < 0)
        return tg_set_error(TG_ERR_VALUE,
                            "%s: batch_size %lld, max_epochs %d, tol %g or "
                            "patience %d out of range",
                            fn, (long long)c->batch_size, c->max_epochs, c->tol, c->patience);
    if (isnan(tg_nn_lr_at(&c->schedule, c->optim.lr, 0)))
        return tg_set_error(TG_ERR_VALUE, "%s: bad learning-rate schedule", fn);
    return TG_OK;
}

/* The checkpoint map: the model's entries, borrowed, and the state tensor. */
static enum tg_status make_ckpt(struct run *r)
{
    if (!(r->ckpt = tg_params_new())) return tg_last_status();
    for (size_t i = 0; i < tg_params_count(r->m->params); i++) {
        enum tg_status st = tg_params_add(r->ckpt, tg_params_name(r->m->params, i),
                                          tg_params_tensor(r->m->params, i));
        if (st) return st;
    }
    int64_t shape[1] = {ST_LEN};
    r->state = tg_tensor_zeros(TG_F64, 1, shape);
    return tg_params_add_owned(r->ckpt, "dist.state", r->state);
}

static enum tg_status save(struct run *r, int epoch, int64_t next_batch)
{
    if (!r->opt.checkpoint) return TG_OK;
    double *s = tg_tensor_data(r->state);
    s[ST_EPOCH] = epoch, s[ST_BATCH] = (double)next_batch, s[ST_STEP] = (double)r->step;
    s[ST_SEED] = (double)r->cfg->seed, s[ST_GBATCH] = (double)r->batch;
    return tg_dist_checkpoint_save(r->d, r->ckpt, r->opt.checkpoint);
}

/* Resuming: rank 0 loads the file when it exists and tells everyone. *epoch and
 * *batch are where to go on (0, 0 without a file). */
static enum tg_status resume(struct run *r, int *epoch, int64_t *batch)
{
    double msg[2 + ST_LEN] = {0}; /* found, status, state */
    if (r->d->rank == 0 && access(r->opt.checkpoint, F_OK) == 0) {
        enum tg_status st = tg_checkpoint_load(r->ckpt, r->opt.checkpoint);
        msg[0] = 1, msg[1] = (double)st;
        memcpy(msg + 2, tg_tensor_data(r->state), sizeof(double) * ST_LEN);
    }
    MPI_Request req;
    int rc = MPI_Ibcast(msg, 2 + ST_LEN, MPI_DOUBLE, 0, r->d->comm, &req);
    if (rc != MPI_SUCCESS) return tg__dist_mpi_fail(fn, "MPI_Ibcast", rc);
    enum tg_status st = tg__dist_wait(r->d, 1, &req, fn, "resume state");
    if (st || msg[0] == 0) return st;
    if (msg[1] != 0) /* rank 0 holds the full message */
        return r->d->rank == 0 ? (enum tg_status)msg[1]
                               : tg_set_error((enum tg_status)msg[1],
                                              "%s: rank 0 could not load "
                                              "the checkpoint %s",
                                              fn, r->opt.checkpoint);
    const double *s = msg + 2;
    if (s[ST_SEED] != (double)r->cfg->seed || s[ST_GBATCH] != (double)r->batch)
        return tg_set_error(TG_ERR_MISMATCH,
                            "%s: checkpoint %s was made with seed %.17g and "
                            "global batch %.17g, not %llu and %lld",
                            fn, r->opt.checkpoint, s[ST_SEED], s[ST_GBATCH],
                            (unsigned long long)r->cfg->seed, (long long)r->batch);
    *epoch = (int)s[ST_EPOCH], *batch = (int64_t)s[ST_BATCH];
    r->step = (int64_t)s[ST_STEP];
    return tg_dist_broadcast_params(r->d, r->m->params); /* rank 0's loaded values */
}

/* One step on global batch b: this rank's part, the averaged gradient, the update. */
static enum tg_status step(struct run *r, int64_t b, double *loss_sum, int64_t *right)
{
    int64_t start = 0, cnt = 0;
    enum tg_status st = tg_dist_shard_range(r->shard, b, &start, &cnt, NULL);
    if (st || (st = tg_params_zero_grad(r->m->params))) return st;
    bool one_sweep = r->cfg->mode == TG_TRAIN_MINIBATCH;
    /* With one sweep the hooks send buckets during it; per sample, only after. */
    if (one_sweep && (st = tg_dist_reducer_begin(r->red, 1.0, (double)cnt))) return st;
    if (cnt > 0)
        st = tg_nn_train_accumulate(r->m, r->T, r->ds, start, cnt, r->cfg->loss, r->cfg->mode,
                                    loss_sum, right);
    if (!one_sweep) {
        enum tg_status sb = tg_dist_reducer_begin(r->red, 1.0, (double)cnt);
        if (sb) return sb;
    }
    if (st) { /* let the others know, keep this rank's own message */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tg_last_error());
        tg_dist_reducer_abandon(r->red);
        return tg_set_error(st, "%s", msg);
    }
    if ((st = tg_dist_reducer_finish(r->red))) return st;
    if ((st = tg_nn_optim_step(r->optim, 1.0))) return st;
    r->step++;
    return TG_OK;
}

/* Whether any rank wants to stop (flag nonzero on some rank). */
static enum tg_status any(struct run *r, int *flag)
{
    return tg__dist_allreduce(r->d, flag, 1, MPI_INT, MPI_MAX, fn);
}

static void grad_norms(struct run *r)
{
    for (size_t i = 0; i < tg_params_count(r->m->params); i++) {
        const struct tg_tensor *t = tg_params_tensor(r->m->params, i);
        double s = 0.0;
        if (tg_tensor_grad(t))
            for (int64_t k = 0, n = tg_tensor_numel(t); k < n; k++)
                s += pow(tg_tensor_grad_get(t, k), 2);
        r->norms[i] = sqrt(s);
    }
}

/* The batches of epoch e from batch b0 on; *stop set when on_step asks. */
static enum tg_status epoch(struct run *r, int e, int64_t b0, double *sums, bool *stop)
{
    int64_t nb = tg_dist_shard_batches(r->shard), right = 0;
    enum tg_status st = TG_OK;
    for (int64_t b = b0; b < nb && !st && !*stop; b++) {
        int64_t s0 = 0, cnt = 0;
        tg_dist_shard_range(r->shard, b, &s0, &cnt, NULL);
        if ((st = step(r, b, &sums[0], &right))) break;
        sums[2] += (double)cnt;
        if (r->opt.checkpoint_every > 0 && r->step % r->opt.checkpoint_every == 0)
            st = b + 1 < nb ? save(r, e, b + 1) : save(r, e + 1, 0);
        if (!st && r->opt.on_step) {
            int flag = r->opt.on_step(r->step, r->opt.ctx) != 0;
            if (!(st = any(r, &flag))) *stop = flag;
        }
    }
    sums[1] = (double)right;
    /* (loss, correct, samples) over all ranks */
    if (!st) st = tg__dist_allreduce(r->d, sums, 3, MPI_DOUBLE, MPI_SUM, fn);
    return st;
}

/* Runs the epochs from (e0, b0) until a stopping rule fires; fills res. */
static enum tg_status loop(struct run *r, int e0, int64_t b0, struct tg_nn_train_result *res)
{
    const struct tg_nn_train_config *c = r->cfg;
    double t0 = tg__dist_now(), prev = NAN;
    int streak = 0;
    for (int e = e0; e < c->max_epochs; e++, b0 = 0) {
        double te = tg__dist_now(), lr = tg_nn_lr_at(&c->schedule, c->optim.lr, e);
        double sums[3] = {0.0, 0.0, 0.0};
        bool stop = false;
        enum tg_status st = tg_nn_optim_set_lr(r->optim, lr);
        if (!st && c->shuffle) st = tg_dist_shard_epoch(r->shard, e);
        if (st || (st = epoch(r, e, b0, sums, &stop))) return st;
        if (!stop && (st = save(r, e + 1, 0))) return st;
        double loss = sums[0] / sums[2];
        double acc = c->loss == TG_LOSS_MSE ? NAN : sums[1] / sums[2];
        *res = (struct tg_nn_train_result){e + 1 - e0, loss, acc, tg__dist_now() - t0,
                                           TG_STOP_MAX_EPOCHS};
        if (stop) return res->stop = TG_STOP_CALLBACK, TG_OK;
        if (!isfinite(loss))
            return tg_set_error(TG_ERR_NUMERIC, "%s: the epoch %d loss is %g", fn, e, loss);
        grad_norms(r);
        struct tg_nn_epoch_info info = {e,
                                        loss,
                                        acc,
                                        lr,
                                        tg__dist_now() - te,
                                        res->seconds,
                                        tg_params_count(r->m->params),
                                        r->names,
                                        r->norms};
        int flag = 0;
        if (c->on_epoch) {
            flag = c->on_epoch(&info, c->ctx) != 0;
            if ((st = any(r, &flag))) return st;
        }
        if (flag) return res->stop = TG_STOP_CALLBACK, TG_OK;
        if (c->target_loss > 0.0 && loss <= c->target_loss)
            return res->stop = TG_STOP_TARGET, TG_OK;
        streak = c->tol > 0.0 && fabs(loss - prev) <= c->tol * fabs(prev) ? streak + 1 : 0;
        if (c->tol > 0.0 && streak >= (c->patience > 0 ? c->patience : 1))
            return res->stop = TG_STOP_CONVERGED, TG_OK;
        prev = loss;
    }
    return TG_OK;
}

static enum tg_status setup(struct run *r)
{
    int64_t n = tg_dataset_len(r->ds), bs = r->cfg->batch_size;
    r->batch = bs > 0 && bs < n ? bs : n;
    enum tg_status st = tg_dist_broadcast_params(r->d, r->m->params);
    if (st) return st;
    if (!(r->shard = tg_dist_shard_new(r->d, r->ds, r->batch, r->cfg->seed)))
        return tg_last_status();
    if (!(r->red = tg_dist_reducer_new(r->d, r->m->params, r->opt.bucket_bytes)))
        return tg_last_status();
    if (!(r->optim = tg_nn_optim_new(r->m->params, &r->cfg->optim))) return tg_last_status();
    if (!(r->T = tg_tape_new())) return tg_last_status();
    size_t np = tg_params_count(r->m->params) + 1;
    r->norms = tg_malloc(np * sizeof *r->norms);
    r->names = tg_malloc(np * sizeof *r->names);
    if (!r->norms || !r->names) return tg_last_status();
    for (size_t i = 0; i + 1 < np; i++) r->names[i] = tg_params_name(r->m->params, i);
    return make_ckpt(r);
}

enum tg_status tg_dist_train(struct tg_dist *d, const struct tg_nn_module *model,
                             struct tg_dataset *ds, const struct tg_nn_train_config *cfg,
                             const struct tg_dist_train_options *opt,
                             struct tg_nn_train_result *result)
{
    enum tg_status st = check_args(d, model, ds, cfg);
    if (st) return st;
    struct run r = {.d = d, .m = model, .ds = ds, .cfg = cfg};
    if (opt) r.opt = *opt;
    if (r.opt.checkpoint_every < 0)
        return tg_set_error(TG_ERR_VALUE, "%s: checkpoint_every %lld < 0", fn,
                            (long long)r.opt.checkpoint_every);
    if (r.opt.checkpoint && r.d->rank == 0 &&
        (st = tg_checkpoint_remove_temps(r.opt.checkpoint, NULL)) == TG_ERR_NULL)
        return st;
    struct tg_nn_train_result res = {0, NAN, NAN, 0.0, TG_STOP_MAX_EPOCHS};
    int e0 = 0;
    int64_t b0 = 0;
    st = setup(&r);
    if (!st && r.opt.resume && r.opt.checkpoint) st = resume(&r, &e0, &b0);
    if (!st) st = loop(&r, e0, b0, &res);
    if (result) *result = res;
    tg_params_free(r.ckpt);
    tg_free(r.norms);
    tg_free(r.names);
    tg_tape_free(r.T);
    tg_nn_optim_free(r.optim);
    tg_dist_reducer_free(r.red);
    tg_dist_shard_free(r.shard);
    return st;
}
