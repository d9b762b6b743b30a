/*
 * examples/cnn_model.h - the LeNet-style CNN of W7 (../shared/BENCHMARKS.md), shared by
 * examples/fashion_cnn.c and bench/w7_cnn.c so that the example trains the network
 * the benchmark times: conv 1->32 3x3 pad 1, ReLU, max-pool 2; conv 32->64 3x3
 * pad 1, ReLU, max-pool 2; linear 3136->128 ReLU; linear 128->10 (logits). f32,
 * PyTorch's default initialization; each ReLU fused into its convolution
 * (tg_conv_params.act); every tensor in one tg_params map under
 * PyTorch's names (conv1.weight, ..., fc2.bias).
 */
#ifndef TAPEGRAD_EXAMPLES_CNN_MODEL_H
#define TAPEGRAD_EXAMPLES_CNN_MODEL_H

#include <math.h>
#include <stdio.h>
#include <tapegrad/tapegrad.h>

enum {
    CNN_SIDE = 28,
    CNN_C1 = 32,
    CNN_C2 = 64,
    CNN_FLAT = 64 * 7 * 7,
    CNN_HID = 128,
    CNN_OUT = 10
};

struct cnn {
    struct tg_params *params; /* owns every tensor below */
    struct tg_nn_conv2d *conv1, *conv2;
    struct tg_tensor *W3, *b3, *W4, *b4; /* (128, 3136), (128), (10, 128), (10) */
};

/* A linear layer's weight and bias from U(-a, a), a = 1/sqrt(in) (PyTorch's
 * nn.Linear), given to the map as "<name>.weight" / "<name>.bias". */
static inline bool cnn_linear_new(struct tg_params *ps, const char *name, int64_t in, int64_t out,
                                  struct tg_rng *rng, struct tg_tensor **W, struct tg_tensor **b)
{
    char key[64];
    double a = 1.0 / sqrt((double)in);
    *W = tg_tensor_uniform(TG_F32, 2, (int64_t[]){out, in}, rng, -a, a);
    *b = tg_tensor_uniform(TG_F32, 1, (int64_t[]){out}, rng, -a, a);
    tg_tensor_set_requires_grad(*W, true);
    tg_tensor_set_requires_grad(*b, true);
    snprintf(key, sizeof key, "%s.weight", name);
    bool ok = tg_params_add_owned(ps, key, *W) == TG_OK;
    snprintf(key, sizeof key, "%s.bias", name);
    return tg_params_add_owned(ps, key, *b) == TG_OK && ok;
}

/* The network with weights drawn from rng; false with the library's error set
 * (free what was made with cnn_free either way). */
static inline bool cnn_new(struct cnn *n, struct tg_rng *rng)
{
    struct tg_conv_params relu = {{1, 1}, {1, 1}, {1, 1}, 1, TG_ACT_RELU};
    *n = (struct cnn){tg_params_new(), NULL, NULL, NULL, NULL, NULL, NULL};
    if (!n->params) return false;
    n->conv1 = tg_nn_conv2d_new(n->params, "conv1", 1, CNN_C1, 3, 3, &relu, true, TG_F32, rng);
    n->conv2 = tg_nn_conv2d_new(n->params, "conv2", CNN_C1, CNN_C2, 3, 3, &relu, true, TG_F32, rng);
    return n->conv1 && n->conv2 &&
           cnn_linear_new(n->params, "fc1", CNN_FLAT, CNN_HID, rng, &n->W3, &n->b3) &&
           cnn_linear_new(n->params, "fc2", CNN_HID, CNN_OUT, rng, &n->W4, &n->b4);
}

static inline void cnn_free(struct cnn *n)
{
    tg_nn_conv2d_free(n->conv1);
    tg_nn_conv2d_free(n->conv2);
    tg_params_free(n->params);
}

/* logits (B, 10) of images x: (B, 1, 28, 28), or (B, 784) rows of pixels */
static inline struct tg_tensor *cnn_forward(const struct cnn *n, struct tg_tape *T,
                                            struct tg_tensor *x)
{
    struct tg_pool_params two = {{2, 2}, {2, 2}, {0, 0}};
    int64_t B = x ? tg_tensor_shape(x)[0] : 0;
    if (x && tg_tensor_rank(x) == 2) x = tg_reshape(T, x, 4, (int64_t[]){B, 1, CNN_SIDE, CNN_SIDE});
    struct tg_tensor *h = tg_max_pool2d(T, tg_nn_conv2d_forward(n->conv1, T, x), &two);
    h = tg_max_pool2d(T, tg_nn_conv2d_forward(n->conv2, T, h), &two);
    h = tg_reshape(T, h, 2, (int64_t[]){B, CNN_FLAT});
    h = tg_linear(T, h, n->W3, n->b3, TG_ACT_RELU);
    return tg_linear(T, h, n->W4, n->b4, TG_ACT_NONE);
}

#endif
