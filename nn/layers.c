/*
 * nn/layers.c - the dense layer, activations, weight initializers and the MLP.
 *
 * The document's forward pass z_k = W_k y_{k-1} + b_k, y_k = f_k(z_k), with W_k
 * stored (out, in) like PyTorch. One sample y (in) runs as the matrix-vector
 * product W y; a batch Y (B, in) (one sample per row) as Y W^T through
 * tg_matmul_t's transpose flag, so the weight is never copied. The MLP owns its
 * weights (leaves that require gradients) and lists them in a tg_params map,
 * borrowed, so optimizers and checkpoints see "layers.k.weight"/"layers.k.bias".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "tapegrad/nn.h"

static const char *const act_names[] = {"none",    "relu",       "tanh",
                                        "sigmoid", "leaky_relu", "softplus"};
#define N_ACTS ((int)(sizeof act_names / sizeof act_names[0]))

const char *tg_nn_act_name(enum tg_act act)
{
    return (int)act >= 0 && (int)act < N_ACTS ? act_names[act] : "?";
}

enum tg_status tg_nn_act_parse(const char *name, enum tg_act *act)
{
    if (!name || !act)
        return tg_set_error(TG_ERR_NULL, "tg_nn_act_parse: %s is NULL", name ? "act" : "name");
    for (int i = 0; i < N_ACTS; i++)
        if (!strcmp(name, act_names[i])) {
            *act = (enum tg_act)i;
            return TG_OK;
        }
    return tg_set_error(TG_ERR_VALUE,
                        "tg_nn_act_parse: unknown activation \"%s\" (none, relu, tanh, "
                        "sigmoid, leaky_relu, softplus)",
                        name);
}

struct tg_tensor *tg_nn_activate(struct tg_tape *T, struct tg_tensor *x, enum tg_act act)
{
    switch (act) {
    case TG_ACT_NONE:
        return x;
    case TG_ACT_RELU:
        return tg_relu(T, x);
    case TG_ACT_TANH:
        return tg_tanh(T, x);
    case TG_ACT_SIGMOID:
        return tg_sigmoid(T, x);
    case TG_ACT_LEAKY_RELU:
        return tg_leaky_relu(T, x, TG_NN_LEAKY_SLOPE);
    case TG_ACT_SOFTPLUS:
        return tg_softplus(T, x);
    }
    tg_set_error(TG_ERR_VALUE, "tg_nn_activate: unknown activation %d", (int)act);
    return NULL;
}

/* ---- initializers ---- */

double tg_nn_init_scale(enum tg_nn_init kind, int64_t fan_in, int64_t fan_out)
{
    if (fan_in < 1 || fan_out < 1) return NAN;
    double fi = (double)fan_in, fo = (double)fan_out;
    switch (kind) {
    case TG_INIT_UNIFORM:
        return 1.0 / sqrt(fi);
    case TG_INIT_XAVIER_UNIFORM:
        return sqrt(6.0 / (fi + fo));
    case TG_INIT_XAVIER_NORMAL:
        return sqrt(2.0 / (fi + fo));
    case TG_INIT_HE_UNIFORM:
        return sqrt(6.0 / fi);
    case TG_INIT_HE_NORMAL:
        return sqrt(2.0 / fi);
    }
    return NAN;
}

enum tg_status tg_nn_init(struct tg_tensor *t, enum tg_nn_init kind, int64_t fan_in,
                          int64_t fan_out, struct tg_rng *rng)
{
    static const char fn[] = "tg_nn_init";
    if (!t || !rng) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, t ? "rng" : "t");
    if (!tg_tensor_is_leaf(t))
        return tg_set_error(TG_ERR_STATE, "%s: t is a tape node, not a leaf", fn);
    double s = tg_nn_init_scale(kind, fan_in, fan_out);
    if (isnan(s))
        return tg_set_error(TG_ERR_VALUE, "%s: bad kind %d or fans (%lld, %lld)", fn, (int)kind,
                            (long long)fan_in, (long long)fan_out);
    bool normal = kind == TG_INIT_XAVIER_NORMAL || kind == TG_INIT_HE_NORMAL;
    int64_t n = tg_tensor_numel(t);
    void *d = tg_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double v = normal ? s * tg_rng_normal(rng) : s * (2.0 * tg_rng_uniform(rng) - 1.0);
        if (tg_tensor_dtype(t) == TG_F64)
            ((double *)d)[i] = v;
        else
            ((float *)d)[i] = (float)v;
    }
    return TG_OK;
}

/* ---- the MLP ---- */

struct tg_nn_mlp {
    int n_layers;
    struct tg_tensor **W; /* (n_layers), W[k] (sizes[k+1], sizes[k]) */
    struct tg_tensor **b; /* (n_layers), b[k] (sizes[k+1]) */
    enum tg_act hidden, output;
    struct tg_params *params;
};

void tg_nn_mlp_free(struct tg_nn_mlp *mlp)
{
    if (!mlp) return;
    tg_params_free(mlp->params);
    for (int k = 0; k < mlp->n_layers; k++) {
        if (mlp->W) tg_tensor_free(mlp->W[k]);
        if (mlp->b) tg_tensor_free(mlp->b[k]);
    }
    tg_free(mlp->W);
    tg_free(mlp->b);
    tg_free(mlp);
}

static enum tg_status check_mlp_args(const int64_t *sizes, int n_sizes, enum tg_act hidden,
                                     enum tg_act output, enum tg_dtype dt, enum tg_nn_init init)
{
    static const char fn[] = "tg_nn_mlp_new";
    if (!sizes) return tg_set_error(TG_ERR_NULL, "%s: sizes is NULL", fn);
    if (n_sizes < 2) return tg_set_error(TG_ERR_VALUE, "%s: n_sizes %d < 2", fn, n_sizes);
    for (int i = 0; i < n_sizes; i++)
        if (sizes[i] < 1)
            return tg_set_error(TG_ERR_VALUE, "%s: sizes[%d] = %lld < 1", fn, i,
                                (long long)sizes[i]);
    if ((int)hidden < 0 || (int)hidden >= N_ACTS || (int)output < 0 || (int)output >= N_ACTS)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown activation", fn);
    if (dt != TG_F32 && dt != TG_F64)
        return tg_set_error(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
    if (isnan(tg_nn_init_scale(init, 1, 1)))
        return tg_set_error(TG_ERR_VALUE, "%s: unknown initializer %d", fn, (int)init);
    return TG_OK;
}

/* Creates layer k's weight and bias and lists them in the map. */
static enum tg_status make_layer(struct tg_nn_mlp *m, int k, int64_t in, int64_t out,
                                 enum tg_dtype dt, enum tg_nn_init init, struct tg_rng *rng)
{
    char name[48];
    m->W[k] = tg_tensor_zeros(dt, 2, (int64_t[]){out, in});
    m->b[k] = tg_tensor_zeros(dt, 1, (int64_t[]){out});
    if (!m->W[k] || !m->b[k]) return tg_last_status();
    enum tg_status st = tg_nn_init(m->W[k], init, in, out, rng);
    if (!st) st = tg_tensor_set_requires_grad(m->W[k], true);
    if (!st) st = tg_tensor_set_requires_grad(m->b[k], true);
    snprintf(name, sizeof name, "layers.%d.weight", k);
    if (!st) st = tg_params_add(m->params, name, m->W[k]);
    snprintf(name, sizeof name, "layers.%d.bias", k);
    if (!st) st = tg_params_add(m->params, name, m->b[k]);
    return st;
}

struct tg_nn_mlp *tg_nn_mlp_new(const int64_t *sizes, int n_sizes, enum tg_act hidden,
                                enum tg_act output, enum tg_dtype dt, enum tg_nn_init init,
                                struct tg_rng *rng)
{
    if (check_mlp_args(sizes, n_sizes, hidden, output, dt, init)) return NULL;
    if (!rng) {
        tg_set_error(TG_ERR_NULL, "tg_nn_mlp_new: rng is NULL");
        return NULL;
    }
    struct tg_nn_mlp *m = tg_malloc(sizeof *m);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    m->n_layers = n_sizes - 1;
    m->hidden = hidden;
    m->output = output;
    size_t bytes = (size_t)m->n_layers * sizeof(struct tg_tensor *);
    /* zeroed as soon as they exist: tg_nn_mlp_free reads them on the fail path */
    if ((m->W = tg_malloc(bytes))) memset(m->W, 0, bytes);
    if ((m->b = tg_malloc(bytes))) memset(m->b, 0, bytes);
    m->params = tg_params_new();
    if (!m->W || !m->b || !m->params) goto fail;
    for (int k = 0; k < m->n_layers; k++)
        if (make_layer(m, k, sizes[k], sizes[k + 1], dt, init, rng)) goto fail;
    return m;
fail:
    tg_nn_mlp_free(m);
    return NULL;
}

/* The fused linear op's activation for act, or -1 when tg_linear has none. */
static int fused_act(enum tg_act act)
{
    switch (act) {
    case TG_ACT_NONE:
        return TG_ACT_NONE;
    case TG_ACT_RELU:
        return TG_ACT_RELU;
    case TG_ACT_TANH:
        return TG_ACT_TANH;
    case TG_ACT_SIGMOID:
        return TG_ACT_SIGMOID;
    default:
        return -1;
    }
}

struct tg_tensor *tg_nn_mlp_forward_to(struct tg_nn_mlp *mlp, struct tg_tape *T,
                                       struct tg_tensor *x, int n_layers)
{
    if (!mlp || !T || !x) {
        if (x) tg_set_error(TG_ERR_NULL, "tg_nn_mlp_forward: %s is NULL", mlp ? "T" : "mlp");
        return NULL;
    }
    if (n_layers < 1 || n_layers > mlp->n_layers) {
        tg_set_error(TG_ERR_RANGE, "tg_nn_mlp_forward_to: %d layers outside 1..%d", n_layers,
                     mlp->n_layers);
        return NULL;
    }
    struct tg_tensor *y = x; /* y_0 = x */
    for (int k = 0; k < n_layers && y; k++) {
        enum tg_act act = tg_nn_mlp_act(mlp, k);
        int fused = fused_act(act);
        if (fused >= 0) { /* y_k = f_k(W_k y_{k-1} + b_k) as one op, for speed */
            y = tg_linear(T, y, mlp->W[k], mlp->b[k], (enum tg_act)fused);
            continue;
        }
        /* z_k = W_k y_{k-1} + b_k as one op too, then y_k = f_k(z_k) */
        struct tg_tensor *z = tg_linear(T, y, mlp->W[k], mlp->b[k], TG_ACT_NONE);
        y = tg_nn_activate(T, z, act);
    }
    return y;
}

struct tg_tensor *tg_nn_mlp_forward(struct tg_nn_mlp *mlp, struct tg_tape *T, struct tg_tensor *x)
{
    return tg_nn_mlp_forward_to(mlp, T, x, mlp ? mlp->n_layers : 0);
}

struct tg_params *tg_nn_mlp_params(const struct tg_nn_mlp *mlp)
{
    return mlp ? mlp->params : NULL;
}

int tg_nn_mlp_layers(const struct tg_nn_mlp *mlp)
{
    return mlp ? mlp->n_layers : 0;
}

static bool layer_ok(const struct tg_nn_mlp *mlp, int k, const char *fn)
{
    if (mlp && k >= 0 && k < mlp->n_layers) return true;
    if (!mlp)
        tg_set_error(TG_ERR_NULL, "%s: mlp is NULL", fn);
    else
        tg_set_error(TG_ERR_RANGE, "%s: layer %d outside 0..%d", fn, k, mlp->n_layers - 1);
    return false;
}

struct tg_tensor *tg_nn_mlp_weight(const struct tg_nn_mlp *mlp, int k)
{
    return layer_ok(mlp, k, "tg_nn_mlp_weight") ? mlp->W[k] : NULL;
}

struct tg_tensor *tg_nn_mlp_bias(const struct tg_nn_mlp *mlp, int k)
{
    return layer_ok(mlp, k, "tg_nn_mlp_bias") ? mlp->b[k] : NULL;
}

enum tg_act tg_nn_mlp_act(const struct tg_nn_mlp *mlp, int k)
{
    if (!mlp || k < 0 || k >= mlp->n_layers) return TG_ACT_NONE;
    return k == mlp->n_layers - 1 ? mlp->output : mlp->hidden;
}

static struct tg_tensor *mlp_forward_cb(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    return tg_nn_mlp_forward(self, T, x);
}

struct tg_nn_module tg_nn_mlp_module(struct tg_nn_mlp *mlp)
{
    return (struct tg_nn_module){tg_nn_mlp_params(mlp), mlp_forward_cb, mlp};
}
