/*
 * nn/norm_layers.c - batch norm, layer norm, embedding and dropout layers, and
 * the train/eval mode they obey.
 *
 * A layer adds its tensors to the caller's parameter map under PyTorch's names
 * ("bn1.weight", "bn1.running_mean", ...), the map owning them, so that several
 * layers make one model whose map the optimizers and checkpoints use as they
 * use an MLP's. Running statistics and the batch count are tensors without
 * requires-grad: optimizers skip them, checkpoints save and load them. The mode
 * is an argument of each forward call, not a state of the layer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tapegrad/nn.h"

struct tg_nn_batch_norm {
    struct tg_tensor *weight, *bias; /* (C) each, NULL without affine */
    struct tg_batch_norm_stats stats;
    double momentum, eps;
};

struct tg_nn_layer_norm {
    struct tg_tensor *weight, *bias; /* the normalized shape, NULL without affine */
    int n_axes;
    double eps;
};

struct tg_nn_embedding {
    struct tg_tensor *weight; /* (num, dim) */
};

struct tg_nn_dropout {
    double p;
    struct tg_rng rng;
};

/* One tensor a layer registers: its name after the layer's, and the tensor. */
struct entry {
    const char *suffix;
    struct tg_tensor *t;
};

/* Adds e[0..n) to p under "name.suffix", all or (barring TG_ERR_NOMEM halfway)
 * none: a name that is taken fails before anything is added. Frees every
 * e[i].t that the map did not take. */
static enum tg_status add_all(const char *fn, struct tg_params *p, const char *name,
                              struct entry *e, int n)
{
    char full[256];
    enum tg_status st = TG_OK;
    for (int i = 0; i < n && !st; i++) {
        if (!e[i].t) st = tg_last_status() ? tg_last_status() : TG_ERR_NOMEM;
        int len = snprintf(full, sizeof full, "%s.%s", name, e[i].suffix);
        if (!st && (len < 0 || (size_t)len >= sizeof full))
            st = tg_set_error(TG_ERR_VALUE, "%s: name \"%s\" is too long", fn, name);
        for (size_t k = 0; !st && k < tg_params_count(p); k++)
            if (!strcmp(tg_params_name(p, k), full))
                st = tg_set_error(TG_ERR_VALUE, "%s: the map already has \"%s\"", fn, full);
    }
    for (int i = 0; i < n; i++) {
        if (st) {
            tg_tensor_free(e[i].t);
            continue;
        }
        snprintf(full, sizeof full, "%s.%s", name, e[i].suffix);
        st = tg_params_add_owned(p, full, e[i].t); /* frees it on failure */
    }
    return st;
}

static enum tg_status check_new(const char *fn, const struct tg_params *p, const char *name,
                                enum tg_dtype dt)
{
    if (!p || !name) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, p ? "name" : "params");
    if (dt != TG_F32 && dt != TG_F64)
        return tg_set_error(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
    return TG_OK;
}

/* check_new, and eps positive and finite. */
static enum tg_status check_norm_new(const char *fn, const struct tg_params *p, const char *name,
                                     enum tg_dtype dt, double eps)
{
    if (check_new(fn, p, name, dt)) return tg_last_status();
    if (!(eps > 0 && isfinite(eps)))
        return tg_set_error(TG_ERR_VALUE, "%s: eps = %g must be positive and finite", fn, eps);
    return TG_OK;
}

/* t requiring grad when grad (which allocates its gradient): NULL, t freed,
 * when that fails. */
static struct tg_tensor *with_grad(struct tg_tensor *t, bool grad)
{
    if (t && grad && tg_tensor_set_requires_grad(t, true)) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

/* A leaf of shape filled with v, requiring grad when grad. */
static struct tg_tensor *filled(enum tg_dtype dt, int rank, const int64_t *shape, double v,
                                bool grad)
{
    return with_grad(tg_tensor_full(dt, rank, shape, v), grad);
}

struct tg_nn_batch_norm *tg_nn_batch_norm_new(struct tg_params *params, const char *name,
                                              int64_t channels, bool affine, double momentum,
                                              double eps, enum tg_dtype dt)
{
    const char *fn = "tg_nn_batch_norm_new";
    if (check_norm_new(fn, params, name, dt, eps)) return NULL;
    if (channels < 1 || !(momentum >= 0 && momentum <= 1)) {
        tg_set_error(TG_ERR_VALUE, "%s: channels = %lld, momentum = %g (need >= 1, in [0, 1])", fn,
                     (long long)channels, momentum);
        return NULL;
    }
    struct tg_nn_batch_norm *bn = calloc(1, sizeof *bn);
    if (!bn) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    struct entry e[5] = {
        {"running_mean", filled(dt, 1, &channels, 0, false)},
        {"running_var", filled(dt, 1, &channels, 1, false)},
        {"num_batches_tracked", filled(dt, 0, NULL, 0, false)},
        {"weight", affine ? filled(dt, 1, &channels, 1, true) : NULL},
        {"bias", affine ? filled(dt, 1, &channels, 0, true) : NULL},
    };
    bn->stats = (struct tg_batch_norm_stats){e[0].t, e[1].t, e[2].t};
    bn->weight = e[3].t;
    bn->bias = e[4].t;
    bn->momentum = momentum;
    bn->eps = eps;
    /* PyTorch's state_dict order: weight, bias, then the buffers */
    struct entry order[5] = {e[3], e[4], e[0], e[1], e[2]};
    if (add_all(fn, params, name, affine ? order : order + 2, affine ? 5 : 3)) {
        free(bn);
        return NULL;
    }
    return bn;
}

void tg_nn_batch_norm_free(struct tg_nn_batch_norm *bn)
{
    free(bn);
}

static bool bad_mode(const char *fn, enum tg_nn_mode mode)
{
    if (mode == TG_NN_TRAIN || mode == TG_NN_EVAL) return false;
    tg_set_error(TG_ERR_VALUE, "%s: unknown mode %d", fn, (int)mode);
    return true;
}

struct tg_tensor *tg_nn_batch_norm_forward(struct tg_nn_batch_norm *bn, struct tg_tape *T,
                                           struct tg_tensor *x, enum tg_nn_mode mode)
{
    if (!bn) {
        tg_set_error(TG_ERR_NULL, "tg_nn_batch_norm_forward: bn is NULL");
        return NULL;
    }
    if (bad_mode("tg_nn_batch_norm_forward", mode)) return NULL;
    return tg_batch_norm(T, x, bn->weight, bn->bias, &bn->stats, mode == TG_NN_TRAIN, bn->momentum,
                         bn->eps);
}

struct tg_nn_layer_norm *tg_nn_layer_norm_new(struct tg_params *params, const char *name,
                                              int n_axes, const int64_t *shape, bool affine,
                                              double eps, enum tg_dtype dt)
{
    const char *fn = "tg_nn_layer_norm_new";
    if (check_norm_new(fn, params, name, dt, eps)) return NULL;
    if (!shape) {
        tg_set_error(TG_ERR_NULL, "%s: shape is NULL", fn);
        return NULL;
    }
    bool ok = n_axes >= 1 && n_axes <= TG_MAX_DIM;
    for (int d = 0; ok && d < n_axes; d++) ok = shape[d] >= 1;
    if (!ok) {
        tg_set_error(TG_ERR_VALUE, "%s: n_axes = %d, or a size < 1 in the shape", fn, n_axes);
        return NULL;
    }
    struct tg_nn_layer_norm *ln = calloc(1, sizeof *ln);
    if (!ln) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    ln->n_axes = n_axes;
    ln->eps = eps;
    if (affine) {
        struct entry e[2] = {{"weight", filled(dt, n_axes, shape, 1, true)},
                             {"bias", filled(dt, n_axes, shape, 0, true)}};
        ln->weight = e[0].t;
        ln->bias = e[1].t;
        if (add_all(fn, params, name, e, 2)) {
            free(ln);
            return NULL;
        }
    }
    return ln;
}

void tg_nn_layer_norm_free(struct tg_nn_layer_norm *ln)
{
    free(ln);
}

struct tg_tensor *tg_nn_layer_norm_forward(struct tg_nn_layer_norm *ln, struct tg_tape *T,
                                           struct tg_tensor *x)
{
    if (!ln) {
        tg_set_error(TG_ERR_NULL, "tg_nn_layer_norm_forward: ln is NULL");
        return NULL;
    }
    return tg_layer_norm(T, x, ln->n_axes, ln->weight, ln->bias, ln->eps);
}

struct tg_nn_embedding *tg_nn_embedding_new(struct tg_params *params, const char *name, int64_t num,
                                            int64_t dim, enum tg_dtype dt, struct tg_rng *rng)
{
    const char *fn = "tg_nn_embedding_new";
    if (check_new(fn, params, name, dt)) return NULL;
    if (!rng) {
        tg_set_error(TG_ERR_NULL, "%s: rng is NULL", fn);
        return NULL;
    }
    if (num < 1 || dim < 1) {
        tg_set_error(TG_ERR_VALUE, "%s: num = %lld, dim = %lld (need >= 1)", fn, (long long)num,
                     (long long)dim);
        return NULL;
    }
    struct tg_nn_embedding *emb = calloc(1, sizeof *emb);
    if (!emb) {
        tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    struct entry e = {"weight",
                      with_grad(tg_tensor_normal(dt, 2, (int64_t[]){num, dim}, rng, 0, 1), true)};
    emb->weight = e.t;
    if (add_all(fn, params, name, &e, 1)) {
        free(emb);
        return NULL;
    }
    return emb;
}

void tg_nn_embedding_free(struct tg_nn_embedding *emb)
{
    free(emb);
}

struct tg_tensor *tg_nn_embedding_forward(struct tg_nn_embedding *emb, struct tg_tape *T,
                                          const struct tg_tensor *indices)
{
    if (!emb) {
        tg_set_error(TG_ERR_NULL, "tg_nn_embedding_forward: emb is NULL");
        return NULL;
    }
    return tg_embedding(T, emb->weight, indices);
}

struct tg_nn_dropout *tg_nn_dropout_new(double p, uint64_t seed)
{
    if (!(p >= 0 && p < 1)) {
        tg_set_error(TG_ERR_VALUE, "tg_nn_dropout_new: p = %g is outside [0, 1)", p);
        return NULL;
    }
    struct tg_nn_dropout *d = calloc(1, sizeof *d);
    if (!d) {
        tg_set_error(TG_ERR_NOMEM, "tg_nn_dropout_new: out of memory");
        return NULL;
    }
    d->p = p;
    tg_rng_seed(&d->rng, seed);
    return d;
}

void tg_nn_dropout_free(struct tg_nn_dropout *d)
{
    free(d);
}

struct tg_tensor *tg_nn_dropout_forward(struct tg_nn_dropout *d, struct tg_tape *T,
                                        struct tg_tensor *x, enum tg_nn_mode mode)
{
    if (!d) {
        tg_set_error(TG_ERR_NULL, "tg_nn_dropout_forward: d is NULL");
        return NULL;
    }
    if (bad_mode("tg_nn_dropout_forward", mode)) return NULL;
    return tg_dropout(T, x, d->p, mode == TG_NN_TRAIN, &d->rng);
}
