/*
 * tapegrad/ops_conv.h - convolution and pooling over NCHW images (ops/conv.c,
 * ops/pool.c). Included by tapegrad/ops.h; do not include it alone.
 *
 * Layouts follow PyTorch: an image batch x is (N, C, H, W), a convolution
 * weight (O, C/groups, kH, kW), a bias (O), a 1-d signal (N, C, L). Output
 * sizes are PyTorch's: OH = floor((H + 2 ph - dh (kH - 1) - 1) / sh) + 1, and
 * the same for OW. docs/ops.md gives every formula and vector-Jacobian product.
 *
 * The convolution runs as matrix products through the BLAS (im2col): its
 * buffers come from the tape when the op is recorded, so a repeated step makes
 * no allocation. The two adjoints conv2d_input_grad and conv2d_weight_grad are
 * ops of their own so that the gradient of a convolution can be differentiated
 * again (tg_grad with create_graph, tg_hvp).
 *
 * Every call returns NULL with the error set on failure: TG_ERR_SHAPE (a rank
 * other than 4, channels that do not match the weight, a kernel larger than the
 * padded input; the message names the op and the shapes), TG_ERR_VALUE (a
 * stride or dilation below 1, a negative padding, groups that do not divide the
 * channels, an activation that cannot be fused), TG_ERR_DTYPE (inputs of different dtypes),
 * TG_ERR_NOMEM, and the errors of any op (a NULL, stale or foreign input).
 */
#ifndef TAPEGRAD_OPS_CONV_H
#define TAPEGRAD_OPS_CONV_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_CONV(X)                                                                             \
    X(CONV2D, conv2d)                                                                              \
    X(CONV2D_INPUT_GRAD, conv2d_input_grad)                                                        \
    X(CONV2D_WEIGHT_GRAD, conv2d_weight_grad)                                                      \
    X(MAX_POOL2D, max_pool2d)                                                                      \
    X(AVG_POOL2D, avg_pool2d)

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tg_tape;
struct tg_tensor;

/* The options of a convolution, each an (h, w) pair. stride and dilation >= 1,
 * padding >= 0 (zeros added on both sides), groups >= 1 dividing both the input
 * and the output channels. act: an activation applied to the output inside the
 * op (TG_ACT_NONE, RELU, TANH or SIGMOID, as tg_linear fuses them: one pass
 * less forward and backward, and no node for it); the adjoints take
 * TG_ACT_NONE only. tg_conv_params_default() gives stride 1, padding 0,
 * dilation 1, groups 1, TG_ACT_NONE. */
struct tg_conv_params {
    int64_t stride[2], padding[2], dilation[2], groups;
    enum tg_act act;
};
struct tg_conv_params tg_conv_params_default(void);

/* y[n, o, i, j] = act(b[o] + sum_{c, p, q} W[o, c, p, q] x[n, g Cg + c, i sh - ph + p dh,
 * j sw - pw + q dw]) with g = o / (O / groups), Cg = C / groups (zero outside x).
 * x (N, C, H, W), W (O, C/groups, kH, kW), b (O) or NULL; params NULL means
 * tg_conv_params_default(). Result (N, O, OH, OW). */
struct tg_tensor *tg_conv2d(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, const struct tg_conv_params *params);

/* conv2d on a signal x (N, C, L) with W (O, C/groups, K), b (O) or NULL:
 * recorded as a reshape to height 1, conv2d and a reshape back, so every
 * conv2d rule applies with H = kH = 1. Result (N, O, OL). */
struct tg_tensor *tg_conv1d(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, int64_t stride, int64_t padding, int64_t dilation,
                            int64_t groups);

/* The adjoint of conv2d in x (the transposed convolution): the gradient that
 * conv2d(x, W) with these params gives x of spatial size (in_h, in_w) for an
 * output gradient dy (N, O, OH, OW); OH and OW must be what conv2d gives for
 * (in_h, in_w) (TG_ERR_SHAPE otherwise). Result (N, C, in_h, in_w). */
struct tg_tensor *tg_conv2d_input_grad(struct tg_tape *T, struct tg_tensor *dy, struct tg_tensor *W,
                                       int64_t in_h, int64_t in_w,
                                       const struct tg_conv_params *params);
/* The adjoint of conv2d in W: the gradient that conv2d(x, W) gives a weight of
 * kernel size (kh, kw) for an output gradient dy (N, O, OH, OW), x (N, C, H, W).
 * Result (O, C/groups, kh, kw). */
struct tg_tensor *tg_conv2d_weight_grad(struct tg_tape *T, struct tg_tensor *x,
                                        struct tg_tensor *dy, int64_t kh, int64_t kw,
                                        const struct tg_conv_params *params);

/* The options of a pooling window, each an (h, w) pair: kernel >= 1, stride >=
 * 1 (set it to the kernel for PyTorch's default), 0 <= padding <= kernel / 2
 * (PyTorch's limit). */
struct tg_pool_params {
    int64_t kernel[2], stride[2], padding[2];
};

/* y[n, c, i, j] = max over the window at (i sh - ph, j sw - pw) of x, padding
 * never chosen. x (N, C, H, W), result (N, C, OH, OW) with dilation 1. The
 * gradient goes to the first maximal element of each window (row-major), as
 * in PyTorch; a NaN in the window is its maximum. */
struct tg_tensor *tg_max_pool2d(struct tg_tape *T, struct tg_tensor *x,
                                const struct tg_pool_params *params);
/* y[n, c, i, j] = the sum over the window of x (padding counted as zeros)
 * divided by kH kW: PyTorch's default count_include_pad=True. */
struct tg_tensor *tg_avg_pool2d(struct tg_tape *T, struct tg_tensor *x,
                                const struct tg_pool_params *params);

#ifdef __cplusplus
}
#endif
#endif
