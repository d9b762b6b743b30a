/*
 * nn/conv_layers.c - the conv2d layer: its parameters, registered in a tg_params
 * map under PyTorch's names, PyTorch's initialization, and its forward.
 *
 * The map owns the tensors (tg_params_add_owned) and the layer only points at
 * them, so a model that is a list of layers over one map frees its weights with
 * the map, and an optimizer or a checkpoint sees them all under their names.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "tapegrad/nn.h"

struct tg_nn_conv2d {
    struct tg_tensor *weight, *bias; /* (out, in/groups, kh, kw), (out) or NULL */
    struct tg_conv_params opts;
};

static enum tg_status check_args(struct tg_params *params, const char *name, int64_t in_ch,
                                 int64_t out_ch, int64_t kh, int64_t kw,
                                 const struct tg_conv_params *o, enum tg_dtype dt,
                                 struct tg_rng *rng)
{
    static const char fn[] = "tg_nn_conv2d_new";
    if (!params || !name || !rng)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn,
                            !params ? "params"
                            : !name ? "name"
                                    : "rng");
    if (in_ch < 1 || out_ch < 1 || kh < 1 || kw < 1)
        return tg_set_error(TG_ERR_VALUE,
                            "%s: channels (%lld in, %lld out) and kernel (%lld,%lld) must be "
                            "at least 1",
                            fn, (long long)in_ch, (long long)out_ch, (long long)kh, (long long)kw);
    if (o->groups < 1 || in_ch % o->groups || out_ch % o->groups)
        return tg_set_error(TG_ERR_VALUE, "%s: groups %lld must divide %lld and %lld channels", fn,
                            (long long)o->groups, (long long)in_ch, (long long)out_ch);
    for (int d = 0; d < 2; d++)
        if (o->stride[d] < 1 || o->dilation[d] < 1 || o->padding[d] < 0)
            return tg_set_error(
                TG_ERR_VALUE, "%s: stride and dilation must be at least 1, padding at least 0", fn);
    if (dt != TG_F32 && dt != TG_F64)
        return tg_set_error(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
    return TG_OK;
}

/* A new leaf of shape drawn from U(-a, a), given to params under "<name>.<what>". */
static struct tg_tensor *add_param(struct tg_params *params, const char *name, const char *what,
                                   int rank, const int64_t *shape, enum tg_dtype dt, double a,
                                   struct tg_rng *rng)
{
    char key[256];
    if (snprintf(key, sizeof key, "%s.%s", name, what) >= (int)sizeof key) {
        tg_set_error(TG_ERR_VALUE, "tg_nn_conv2d_new: name \"%.32s...\" is too long", name);
        return NULL;
    }
    struct tg_tensor *t = tg_tensor_uniform(dt, rank, shape, rng, -a, a);
    if (t && tg_tensor_set_requires_grad(t, true)) {
        tg_tensor_free(t);
        return NULL;
    }
    return t && tg_params_add_owned(params, key, t) == TG_OK ? t : NULL;
}

struct tg_nn_conv2d *tg_nn_conv2d_new(struct tg_params *params, const char *name, int64_t in_ch,
                                      int64_t out_ch, int64_t kh, int64_t kw,
                                      const struct tg_conv_params *opts, bool bias,
                                      enum tg_dtype dt, struct tg_rng *rng)
{
    struct tg_conv_params o = opts ? *opts : tg_conv_params_default();
    if (check_args(params, name, in_ch, out_ch, kh, kw, &o, dt, rng)) return NULL;
    for (int k = 0; k < 2; k++) { /* nothing is added when a name is taken */
        char key[256];
        snprintf(key, sizeof key, "%s.%s", name, k ? "bias" : "weight");
        if (tg_params_get(params, key)) {
            tg_set_error(TG_ERR_VALUE, "tg_nn_conv2d_new: params already has \"%s\"", key);
            return NULL;
        }
    }
    tg_clear_error();
    struct tg_nn_conv2d *l = tg_malloc(sizeof *l);
    if (!l) return NULL;
    l->opts = o;
    l->bias = NULL;
    double a = 1.0 / sqrt((double)(in_ch / o.groups * kh * kw));
    l->weight = add_param(params, name, "weight", 4, (int64_t[]){out_ch, in_ch / o.groups, kh, kw},
                          dt, a, rng);
    if (l->weight && bias)
        l->bias = add_param(params, name, "bias", 1, (int64_t[]){out_ch}, dt, a, rng);
    if (!l->weight || (bias && !l->bias)) {
        tg_free(l); /* a weight already added stays owned by params */
        return NULL;
    }
    return l;
}

void tg_nn_conv2d_free(struct tg_nn_conv2d *layer)
{
    tg_free(layer);
}

struct tg_tensor *tg_nn_conv2d_forward(const struct tg_nn_conv2d *layer, struct tg_tape *T,
                                       struct tg_tensor *x)
{
    if (!layer) {
        tg_set_error(TG_ERR_NULL, "tg_nn_conv2d_forward: layer is NULL");
        return NULL;
    }
    return tg_conv2d(T, x, layer->weight, layer->bias, &layer->opts);
}

struct tg_tensor *tg_nn_conv2d_weight(const struct tg_nn_conv2d *layer)
{
    return layer ? layer->weight : NULL;
}
struct tg_tensor *tg_nn_conv2d_bias(const struct tg_nn_conv2d *layer)
{
    return layer ? layer->bias : NULL;
}
