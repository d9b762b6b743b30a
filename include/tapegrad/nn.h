/*
 * tapegrad/nn.h - layers, the MLP, initializers, optimizers, learning-rate
 * schedules and the trainer (nn/layers.c, nn/optim.c, nn/train.c).
 *
 * Everything here is built on the public engine and op API only, so a user can
 * write the same things for their own models. docs/nn.md explains the
 * conventions and puts the trainer's loop beside the source document's
 * training algorithm.
 *
 * Layout of a dense layer (the document's convention, PyTorch's storage):
 *     z = W y + b,   W: (out, in), b: (out), y: a column vector (in).
 * A batch Y (B, in) holds one sample per row and gives Z = Y W^T + b, (B, out),
 * computed as tg_matmul_t(T, Y, W, false, true): W is never copied or transposed
 * in memory.
 */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dataset.h"
#include "ops.h"
#include "params.h"
#include "tape.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================= layers ======================= */

/* The dense layer z = W y + b is the op tg_linear (tapegrad/ops_linalg.h), with
 * TG_ACT_NONE or a fused activation. Activation functions f_k are enum tg_act
 * (tapegrad/ops_linalg.h); LEAKY_RELU uses slope TG_NN_LEAKY_SLOPE (PyTorch's
 * default). */
#define TG_NN_LEAKY_SLOPE 0.01

/* y = f(x) on T; TG_ACT_NONE returns x itself. NULL with TG_ERR_VALUE for an
 * unknown act (and the op's error otherwise). */
struct tg_tensor *tg_nn_activate(struct tg_tape *T, struct tg_tensor *x, enum tg_act act);
/* "none", "relu", "tanh", "sigmoid", "leaky_relu", "softplus"; "?" when unknown. */
const char *tg_nn_act_name(enum tg_act act);
/* The activation named `name` (as above) into *act; TG_ERR_VALUE when unknown. */
enum tg_status tg_nn_act_parse(const char *name, enum tg_act *act);

/* ======================= initializers ======================= */

/* How weights are drawn (biases of an MLP are always zero). */
enum tg_nn_init {
    TG_INIT_UNIFORM = 0,        /* U(-a, a), a = 1/sqrt(fan_in) (PyTorch's nn.Linear bound) */
    TG_INIT_XAVIER_UNIFORM = 1, /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot) */
    TG_INIT_XAVIER_NORMAL = 2,  /* N(0, s^2), s = sqrt(2 / (fan_in + fan_out)) */
    TG_INIT_HE_UNIFORM = 3,     /* U(-a, a), a = sqrt(6 / fan_in) (Kaiming, ReLU gain) */
    TG_INIT_HE_NORMAL = 4       /* N(0, s^2), s = sqrt(2 / fan_in) */
};

/*
 * Overwrites every element of leaf t with a draw from `kind`'s distribution, in
 * row-major order, advancing rng. fan_in, fan_out >= 1 (for W (out, in):
 * fan_in = in, fan_out = out). TG_ERR_NULL, TG_ERR_VALUE (fans < 1, unknown
 * kind), TG_ERR_STATE (t is a tape node); t is unchanged on failure.
 */
enum tg_status tg_nn_init(struct tg_tensor *t, enum tg_nn_init kind, int64_t fan_in,
                          int64_t fan_out, struct tg_rng *rng);
/* The bound a (uniform kinds) or standard deviation s (normal kinds) above;
 * NaN for bad arguments. */
double tg_nn_init_scale(enum tg_nn_init kind, int64_t fan_in, int64_t fan_out);

/* ======================= models ======================= */

/*
 * Any model the trainer can train: its trainable leaves, and a forward function
 * that maps a batch x (B, in) (or one sample (in)) to the output on tape T:
 * (B, out) or (out); return NULL with the error set on failure. `self` is passed
 * back unchanged. A user's own model fills this struct with its own function.
 */
struct tg_nn_module {
    struct tg_params *params;
    struct tg_tensor *(*forward)(void *self, struct tg_tape *T, struct tg_tensor *x);
    void *self;
};

/* A multi-layer perceptron: dense layers with activations (opaque). */
struct tg_nn_mlp;

/*
 * An MLP with n_sizes - 1 dense layers: layer k maps sizes[k] -> sizes[k+1],
 * W_k (sizes[k+1], sizes[k]) drawn by `init` (fan_in = sizes[k]), b_k zero,
 * both requiring gradients. Hidden layers use `hidden`, the last `output`
 * (TG_ACT_NONE gives logits/raw scores, which the losses expect). rng is
 * advanced layer by layer, W_0 first. NULL with TG_ERR_NULL, TG_ERR_VALUE
 * (n_sizes < 2, a size < 1, unknown act/init), TG_ERR_DTYPE, TG_ERR_NOMEM.
 * Free with tg_nn_mlp_free.
 */
struct tg_nn_mlp *tg_nn_mlp_new(const int64_t *sizes, int n_sizes, enum tg_act hidden,
                                enum tg_act output, enum tg_dtype dt, enum tg_nn_init init,
                                struct tg_rng *rng);
/* Frees the MLP, its weights and its parameter map. NULL is a no-op. */
void tg_nn_mlp_free(struct tg_nn_mlp *mlp);
/* Y = f_N(W_N f_{N-1}(... f_1(W_1 x + b_1) ...) + b_N) on T; x (in) or (B, in).
 * NULL with TG_ERR_NULL or the failing op's error (e.g. a wrong input width). */
struct tg_tensor *tg_nn_mlp_forward(struct tg_nn_mlp *mlp, struct tg_tape *T, struct tg_tensor *x);
/* The first n_layers layers only, each with its activation: y_{n_layers} on T,
 * (B, sizes[n_layers]) or (sizes[n_layers]), e.g. a hidden layer's outputs;
 * n_layers = tg_nn_mlp_layers(mlp) is tg_nn_mlp_forward. NULL with TG_ERR_NULL,
 * TG_ERR_RANGE (n_layers outside 1..layers) or the failing op's error. */
struct tg_tensor *tg_nn_mlp_forward_to(struct tg_nn_mlp *mlp, struct tg_tape *T,
                                       struct tg_tensor *x, int n_layers);
/* The parameters, borrowed (owned by the MLP), in order "layers.0.weight",
 * "layers.0.bias", "layers.1.weight", ... (PyTorch's nn.Sequential names when
 * the Linear modules sit at indices 0, 1, ...). NULL for NULL. */
struct tg_params *tg_nn_mlp_params(const struct tg_nn_mlp *mlp);
/* Number of dense layers; layer k's weight (out, in) and bias (out), borrowed;
 * NULL with TG_ERR_RANGE for k outside 0..n-1. */
int tg_nn_mlp_layers(const struct tg_nn_mlp *mlp);
struct tg_tensor *tg_nn_mlp_weight(const struct tg_nn_mlp *mlp, int k);
struct tg_tensor *tg_nn_mlp_bias(const struct tg_nn_mlp *mlp, int k);
/* The activation after layer k (hidden or output). TG_ACT_NONE when out of range. */
enum tg_act tg_nn_mlp_act(const struct tg_nn_mlp *mlp, int k);
/* The MLP as a generic model (params and forward borrow mlp). */
struct tg_nn_module tg_nn_mlp_module(struct tg_nn_mlp *mlp);

/* ======================= optimizers ======================= */

enum tg_nn_optim_kind {
    TG_OPTIM_SGD = 0,      /* p -= lr * g */
    TG_OPTIM_MOMENTUM = 1, /* heavy ball (or Nesterov), PyTorch's SGD(momentum=...) */
    TG_OPTIM_ADAM = 2,     /* Adam with bias correction; weight decay as L2 in g */
    TG_OPTIM_ADAMW = 3     /* Adam with decoupled weight decay */
};

/*
 * With g = grad_scale * grad (+ weight_decay * p for SGD, MOMENTUM and ADAM),
 * exactly PyTorch's update rules (docs/nn.md writes them out):
 *   SGD:       p -= lr g
 *   MOMENTUM:  buf = g at the first step, else buf = momentum buf + g;
 *              p -= lr (g + momentum buf) with nesterov, else p -= lr buf
 *   ADAM(W):   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t = step count;
 *              p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *              (ADAMW first does p *= 1 - lr weight_decay, and g has no decay term)
 */
struct tg_nn_optim_config {
    enum tg_nn_optim_kind kind;
    double lr;
    double momentum;     /* MOMENTUM only, in [0, 1) */
    bool nesterov;       /* MOMENTUM only */
    double beta1, beta2; /* ADAM/ADAMW, each in [0, 1) */
    double eps;          /* ADAM/ADAMW, > 0 */
    double weight_decay; /* >= 0 */
    /* After a parameter is updated, set its gradient to zero, in the same pass
     * over memory: replaces a separate tg_params_zero_grad before the next
     * backward (gradients otherwise accumulate until zeroed). */
    bool zero_grad;
};
/* PyTorch's defaults for `kind`: lr 0.01 (SGD, MOMENTUM; PyTorch has none),
 * 0.001 (ADAM, ADAMW); momentum 0.9; betas (0.9, 0.999); eps 1e-8; weight_decay
 * 0, or 0.01 for ADAMW; nesterov false. */
struct tg_nn_optim_config tg_nn_optim_defaults(enum tg_nn_optim_kind kind);

struct tg_nn_optim;

/*
 * An optimizer over the entries of `params` (borrowed: it must outlive the
 * optimizer and keep its entries). State buffers (momentum, Adam's moments; f64,
 * one per element) are allocated here, once. Entries without requires-grad are
 * skipped at every step. NULL with TG_ERR_NULL, TG_ERR_VALUE (a config value out
 * of range, naming it), TG_ERR_NOMEM.
 */
struct tg_nn_optim *tg_nn_optim_new(struct tg_params *params, const struct tg_nn_optim_config *cfg);
/* Frees the optimizer (not the parameters). NULL is a no-op. */
void tg_nn_optim_free(struct tg_nn_optim *opt);
/*
 * One update of every parameter from its gradient times grad_scale (the
 * document's eta/T is lr = eta, grad_scale = 1/T). Gradients are read, and
 * zeroed only when the config's zero_grad is set. A parameter whose gradient buffer is absent is
 * skipped. Allocates nothing. TG_ERR_NULL; TG_ERR_VALUE for a non-finite grad_scale; TG_ERR_STATE
 * when the map's entries changed since tg_nn_optim_new (nothing is updated).
 */
enum tg_status tg_nn_optim_step(struct tg_nn_optim *opt, double grad_scale);
/*
 * tg_backward(loss) followed by tg_nn_optim_step(opt, grad_scale), in one call that
 * can be faster: for SGD with zero_grad set, each parameter whose gradient is
 * zero (as the previous step left it) is updated by the backward sweep itself
 * (tg_backward_apply): a weight whose only consumer is a tg_linear or a plain
 * tg_matmul gets p = (1 - lr weight_decay) p - lr grad_scale g inside the
 * weight-gradient GEMM, with no gradient stored and no update pass. A parameter
 * holding a gradient gets the new one added and the usual step. Parameters end
 * with zero gradients, as after tg_nn_optim_step. Other optimizers and SGD without
 * zero_grad run the two calls. The result equals the two calls' up to rounding.
 * Errors: those of tg_nn_optim_step (checked first: then nothing has changed), of
 * tg_backward / tg_backward_apply (nothing updated), TG_ERR_NULL for loss.
 */
enum tg_status tg_nn_optim_backward_step(struct tg_nn_optim *opt, struct tg_tensor *loss,
                                         double grad_scale);
/* Sets / reads the learning rate (for schedules). TG_ERR_VALUE for lr < 0 or NaN. */
enum tg_status tg_nn_optim_set_lr(struct tg_nn_optim *opt, double lr);
double tg_nn_optim_lr(const struct tg_nn_optim *opt);
/* Number of steps taken (Adam's t). */
int64_t tg_nn_optim_steps(const struct tg_nn_optim *opt);

/* ======================= learning-rate schedules ======================= */

enum tg_nn_lr_kind {
    TG_LR_CONSTANT = 0, /* lr = base */
    TG_LR_STEP = 1,     /* lr = base * gamma^floor(epoch / step_size) */
    TG_LR_COSINE = 2    /* lr = eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2 */
};
/* A schedule; zero-initialised it is constant. */
struct tg_nn_lr_schedule {
    enum tg_nn_lr_kind kind;
    int step_size;  /* STEP, >= 1 */
    double gamma;   /* STEP */
    int t_max;      /* COSINE, >= 1; epochs past t_max follow the same closed form
                       (PyTorch's CosineAnnealingLR), so the rate rises again */
    double eta_min; /* COSINE */
};
/* The learning rate of 0-based epoch `epoch` (PyTorch's closed forms). NaN for
 * a NULL schedule, an unknown kind, step_size < 1, t_max < 1 or epoch < 0. */
double tg_nn_lr_at(const struct tg_nn_lr_schedule *s, double base_lr, int epoch);

/* ======================= the trainer ======================= */

/* The divergence Div(Y, d) between a sample's output Y and its target d. */
enum tg_nn_loss {
    TG_LOSS_MSE = 0,  /* (Y - d)^2; one output per sample, y holds d */
    TG_LOSS_XENT = 1, /* cross-entropy of logits (C) with the class index d in y */
    TG_LOSS_BCE = 2,  /* binary cross-entropy of one logit with d in [0, 1] */
    TG_LOSS_HINGE = 3 /* max(0, 1 - d Y) of one score with d = -1 or +1 */
};
/* "mse", "xent", "bce", "hinge"; "?" when unknown. */
const char *tg_nn_loss_name(enum tg_nn_loss loss);

enum tg_nn_train_mode {
    /* The document's loop literally: one forward and one backward per sample x (in),
     * gradients accumulating over the T samples of a batch, then one update. */
    TG_TRAIN_PER_SAMPLE = 0,
    /* One batched forward X (T, in) per batch, the sum of the T divergences,
     * one backward, one update: the same gradients, computed faster. */
    TG_TRAIN_MINIBATCH = 1
};

/* What the per-epoch callback sees (everything borrowed, valid during the call). */
struct tg_nn_epoch_info {
    int epoch;       /* 0-based */
    double loss;     /* mean divergence over the epoch's samples */
    double accuracy; /* fraction right (XENT: argmax; BCE: logit > 0 vs d > 0.5;
                        HINGE: sign); NaN for MSE */
    double lr;       /* the learning rate used in this epoch */
    double seconds;  /* wall time of this epoch */
    double total_seconds;
    size_t n_params;          /* parameter tensors */
    const char *const *names; /* (n_params) their names */
    const double *grad_norms; /* (n_params) L2 norm of grad_scale * accumulated gradient
                                 of each tensor at the epoch's last update (0 if none) */
};

/* Why training stopped. */
enum tg_nn_train_stop {
    TG_STOP_MAX_EPOCHS = 0,
    TG_STOP_CONVERGED = 1, /* relative change below tol for `patience` epochs */
    TG_STOP_TARGET = 2,    /* loss <= target_loss */
    TG_STOP_CALLBACK = 3   /* on_epoch returned nonzero */
};
const char *tg_nn_train_stop_name(enum tg_nn_train_stop s); /* "max_epochs", "converged", ... */

struct tg_nn_train_config {
    enum tg_nn_loss loss;
    enum tg_nn_train_mode mode;
    int64_t batch_size; /* T, samples per update; 0: the whole set (full batch) */
    bool shuffle;       /* reshuffle the dataset's order before every epoch */
    uint64_t seed;      /* of the shuffling generator */
    struct tg_nn_optim_config optim;
    struct tg_nn_lr_schedule schedule; /* lr of epoch e = tg_nn_lr_at(schedule, optim.lr, e) */
    int max_epochs;                    /* >= 1 */
    double tol;                        /* converged when |L_e - L_{e-1}| <= tol |L_{e-1}| ... */
    int patience;       /* ... for this many consecutive epochs (0 counts as 1); tol 0: off */
    double target_loss; /* stop when the epoch loss <= target_loss; 0 or less: off */
    int (*on_epoch)(const struct tg_nn_epoch_info *info, void *ctx); /* NULL: none */
    void *ctx;
};
/* Defaults: MSE, PER_SAMPLE, full batch, no shuffle, seed 0, SGD with lr 0.1,
 * constant schedule, 1000 epochs, tol 0 (off), patience 1, no target, no callback. */
struct tg_nn_train_config tg_nn_train_defaults(void);

struct tg_nn_train_result {
    int epochs;                 /* epochs run */
    double loss;                /* the last epoch's mean loss */
    double accuracy;            /* the last epoch's accuracy (NaN for MSE) */
    double seconds;             /* wall time */
    enum tg_nn_train_stop stop; /* why it stopped */
};

/*
 * Trains `model` on `train` (whose order is reshuffled when cfg->shuffle, each
 * call starting from the storage order, so one seed always gives the same run):
 *   repeat per epoch e: lr = schedule(e); Loss = 0;
 *     for each batch of T samples: zero the gradients; for each sample (or the
 *       batch at once): forward, Div, Loss += Div, backward (accumulating);
 *       update every parameter with grad_scale = 1/T;
 *   until converged / target / max_epochs / the callback says stop.
 * One tape, reset per sample (batch) and reused: no allocation per step once
 * warm. After return each parameter's gradient holds the last batch's
 * accumulated (unscaled) gradient. The dataset's dtype must be the model's.
 * result may be NULL. Errors: TG_ERR_NULL, TG_ERR_VALUE (config), TG_ERR_SHAPE
 * (the model's output does not fit the loss), TG_ERR_NUMERIC (the loss became
 * NaN or Inf), errors of the model's forward, TG_ERR_NOMEM; parameters keep the
 * updates made until the failure.
 */
enum tg_status tg_nn_train(const struct tg_nn_module *model, struct tg_dataset *train,
                           const struct tg_nn_train_config *cfg, struct tg_nn_train_result *result);

/*
 * The building block of tg_nn_train: on tape T (reset here, once per sample in
 * PER_SAMPLE mode or once in MINIBATCH mode), forward and backward over the
 * `count` samples at positions start .. start+count-1 of the dataset's order,
 * adding their gradients into the parameters' gradients (not zeroed here) and
 * their divergences into *loss_sum, and the number of correct predictions into
 * *n_correct (both may be NULL; both added to, not set). Errors as tg_nn_train,
 * and TG_ERR_RANGE for samples outside the dataset.
 */
enum tg_status tg_nn_train_accumulate(const struct tg_nn_module *model, struct tg_tape *T,
                                      const struct tg_dataset *ds, int64_t start, int64_t count,
                                      enum tg_nn_loss loss, enum tg_nn_train_mode mode,
                                      double *loss_sum, int64_t *n_correct);

/*
 * The mean divergence and the accuracy (NaN for MSE) of `model` over `ds`,
 * in batches of 256 without recording gradients. loss and accuracy may be NULL.
 * Errors as tg_nn_train (nothing written on failure).
 */
enum tg_status tg_nn_evaluate(const struct tg_nn_module *model, const struct tg_dataset *ds,
                              enum tg_nn_loss loss, double *mean_loss, double *accuracy);

/* ======================= convolution layers (nn/conv_layers.c) ======================= */

/* A 2-d convolution layer (opaque): weight (out_ch, in_ch/groups, kh, kw) and an
 * optional bias (out_ch), applied by tg_conv2d (tapegrad/ops_conv.h). */
struct tg_nn_conv2d;

/*
 * A conv2d layer whose tensors are registered in `params` as "<name>.weight" and
 * "<name>.bias" (PyTorch's names for a module called name), owned by the map:
 * they live until tg_params_free(params), and the layer (which only points at
 * them) must not be used after that. Initialized as PyTorch's nn.Conv2d: weight
 * and bias from U(-a, a), a = 1/sqrt(fan_in), fan_in = in_ch/groups kh kw (its
 * kaiming_uniform_ with a = sqrt(5)), drawn from rng weight first. opts NULL:
 * tg_conv_params_default(). Both require gradients.
 * NULL with TG_ERR_NULL (params, name or rng NULL), TG_ERR_VALUE (a size below
 * 1, groups that do not divide both channel counts, bad opts, a name already in
 * params), TG_ERR_DTYPE, TG_ERR_NOMEM. On failure nothing is added to params,
 * except after TG_ERR_NOMEM while adding the bias: the weight stays (params owns it).
 * Free with tg_nn_conv2d_free.
 */
struct tg_nn_conv2d *tg_nn_conv2d_new(struct tg_params *params, const char *name, int64_t in_ch,
                                      int64_t out_ch, int64_t kh, int64_t kw,
                                      const struct tg_conv_params *opts, bool bias,
                                      enum tg_dtype dt, struct tg_rng *rng);
/* Frees the layer (not its tensors, which params owns). NULL is a no-op. */
void tg_nn_conv2d_free(struct tg_nn_conv2d *layer);
/* tg_conv2d(T, x, weight, bias, opts): x (N, in_ch, H, W) -> (N, out_ch, OH, OW).
 * NULL with TG_ERR_NULL for a NULL layer, or the op's error. */
struct tg_tensor *tg_nn_conv2d_forward(const struct tg_nn_conv2d *layer, struct tg_tape *T,
                                       struct tg_tensor *x);
/* The layer's weight and bias (NULL without one), borrowed from the map. */
struct tg_tensor *tg_nn_conv2d_weight(const struct tg_nn_conv2d *layer);
struct tg_tensor *tg_nn_conv2d_bias(const struct tg_nn_conv2d *layer);

/* ======================= normalization, embedding and dropout layers ======================= */

/* Whether a layer trains or evaluates: batch norm uses the batch's statistics
 * and updates its running ones when training, and the running ones otherwise;
 * dropout drops only when training. Passed to each forward call (no hidden
 * state): a model keeps its own mode and passes it on (docs/nn.md). */
enum tg_nn_mode { TG_NN_TRAIN = 0, TG_NN_EVAL = 1 };

/* The layers below register their tensors in a parameter map the caller gives
 * (`params`, borrowed; it must outlive the layer), under `name` + "." + the
 * tensor's name, PyTorch's names: "bn1.weight", "bn1.running_mean", ... The
 * map owns the tensors (tg_params_free frees them); the layer borrows them and
 * its _free frees only itself. Trainable tensors require grad; buffers (running
 * statistics, the batch count) do not, so optimizers skip them and checkpoints
 * save them. Constructors fail with NULL and TG_ERR_NULL (params or name),
 * TG_ERR_VALUE (a size < 1, a bad momentum, eps, p, or a name already in the
 * map), TG_ERR_DTYPE, TG_ERR_NOMEM; the map is unchanged on failure. */

struct tg_nn_batch_norm;
/* Batch norm over channels (axis 1) of (N, C) or (N, C, ...) inputs: "weight"
 * (C) ones and "bias" (C) zeros when affine, "running_mean" (C) zeros,
 * "running_var" (C) ones, "num_batches_tracked" (rank 0) 0; momentum and eps
 * as tg_batch_norm (TG_BATCH_NORM_MOMENTUM, TG_BATCH_NORM_EPS: PyTorch's). */
struct tg_nn_batch_norm *tg_nn_batch_norm_new(struct tg_params *params, const char *name,
                                              int64_t channels, bool affine, double momentum,
                                              double eps, enum tg_dtype dt);
void tg_nn_batch_norm_free(struct tg_nn_batch_norm *bn); /* NULL: no-op */
/* tg_batch_norm with the layer's tensors: TG_NN_TRAIN normalizes by the batch
 * and updates the running buffers and the count; TG_NN_EVAL normalizes by the
 * running buffers, and fails with TG_ERR_STATE while the count is 0 (no training
 * step and no checkpoint has given statistics). Errors of tg_batch_norm;
 * TG_ERR_NULL for bn, TG_ERR_VALUE for an unknown mode. */
struct tg_tensor *tg_nn_batch_norm_forward(struct tg_nn_batch_norm *bn, struct tg_tape *T,
                                           struct tg_tensor *x, enum tg_nn_mode mode);

struct tg_nn_layer_norm;
/* Layer norm over the last n_axes axes of shape `shape` (borrowed, 1 <= n_axes <=
 * TG_MAX_DIM): "weight" ones and "bias" zeros of that shape when affine. */
struct tg_nn_layer_norm *tg_nn_layer_norm_new(struct tg_params *params, const char *name,
                                              int n_axes, const int64_t *shape, bool affine,
                                              double eps, enum tg_dtype dt);
void tg_nn_layer_norm_free(struct tg_nn_layer_norm *ln); /* NULL: no-op */
/* tg_layer_norm of x over the layer's axes (the same in both modes; x's last
 * axes must have the layer's shape, TG_ERR_SHAPE otherwise). */
struct tg_tensor *tg_nn_layer_norm_forward(struct tg_nn_layer_norm *ln, struct tg_tape *T,
                                           struct tg_tensor *x);

struct tg_nn_embedding;
/* A lookup table "weight" (num, dim) drawn from N(0, 1) (PyTorch's init),
 * advancing rng (borrowed; TG_ERR_NULL when NULL). */
struct tg_nn_embedding *tg_nn_embedding_new(struct tg_params *params, const char *name, int64_t num,
                                            int64_t dim, enum tg_dtype dt, struct tg_rng *rng);
void tg_nn_embedding_free(struct tg_nn_embedding *emb); /* NULL: no-op */
/* tg_embedding(T, weight, indices): indices of any shape S give S + (dim). */
struct tg_tensor *tg_nn_embedding_forward(struct tg_nn_embedding *emb, struct tg_tape *T,
                                          const struct tg_tensor *indices);

struct tg_nn_dropout;
/* Inverted dropout with probability p in [0, 1) and its own generator seeded
 * with `seed` (the masks of a run are reproducible). No parameters: it takes no
 * map. NULL with TG_ERR_VALUE for a bad p, TG_ERR_NOMEM. */
struct tg_nn_dropout *tg_nn_dropout_new(double p, uint64_t seed);
void tg_nn_dropout_free(struct tg_nn_dropout *d); /* NULL: no-op */
/* tg_dropout(T, x, p, mode == TG_NN_TRAIN, the layer's generator): draws a new
 * mask (advancing the generator) only when training. TG_ERR_NULL for d,
 * TG_ERR_VALUE for an unknown mode. */
struct tg_tensor *tg_nn_dropout_forward(struct tg_nn_dropout *d, struct tg_tape *T,
                                        struct tg_tensor *x, enum tg_nn_mode mode);

/* ======================= resumable training (nn/resume.c) ======================= */

/* Where a run of tg_nn_train_resumable stands, beside the parameters. */
struct tg_nn_train_state {
    int epoch;         /* the epoch in progress (0-based) */
    int64_t batch;     /* updates made in it */
    int64_t updates;   /* updates made in the whole run */
    struct tg_rng rng; /* the shuffling generator, after this epoch's shuffle */
    double loss_sum;   /* this epoch's divergences so far */
    int64_t n_correct; /* and correct predictions */
    double prev_loss;  /* the previous epoch's mean loss (NaN: none), and */
    int streak;        /* the convergence rule's count */
    bool done;         /* the run has finished */
};

/*
 * Writes one safetensors file (atomically, as tg_checkpoint_save) holding the
 * tensors of `params` under their names, the optimizer's state (momentum
 * buffers, Adam's moments, step counts: tensors named "resume/optim/..."), the
 * dataset's visiting order ("resume/order") and *st (metadata "resume.*", the
 * doubles exact). opt and ds may be NULL (not saved). Errors: TG_ERR_NULL,
 * TG_ERR_NOMEM, and those of tg_checkpoint_save; on TG_ERR_IO (a full disk, a
 * file size limit) the message says that the previous file at path is unchanged,
 * and it is.
 */
enum tg_status tg_nn_resume_save(const char *path, const struct tg_params *params,
                                 struct tg_nn_optim *opt, struct tg_dataset *ds,
                                 const struct tg_nn_train_state *st);
/*
 * Reads what tg_nn_resume_save wrote into params (same names, shapes and dtypes),
 * the optimizer (created with the same kind over the same map), the dataset (same
 * length) and *st. opt and ds may be NULL (then the file's entries for them are
 * not read). Everything is checked before anything changes: errors of
 * tg_checkpoint_read, TG_ERR_NULL, TG_ERR_MISMATCH (a tensor missing or of
 * another shape or dtype, another optimizer kind, another dataset length),
 * TG_ERR_FORMAT (a "resume.*" entry missing or malformed, an order that is not
 * a permutation), TG_ERR_NOMEM.
 */
enum tg_status tg_nn_resume_load(const char *path, struct tg_params *params,
                                 struct tg_nn_optim *opt, struct tg_dataset *ds,
                                 struct tg_nn_train_state *st);

struct tg_nn_resume_config {
    const char *path; /* the state file */
    int64_t every;    /* save after every `every` updates (>= 1), and at the end */
    bool resume;      /* start from path when it exists (else from scratch) */
    /* called after each update (and its save); nonzero stops the run, as
     * on_epoch's (TG_STOP_CALLBACK). NULL: none */
    int (*on_update)(int64_t updates, void *ctx);
    void *ctx;
};

/*
 * tg_nn_train that survives being killed: the same run (the same updates in the
 * same order, bit for bit, as tg_nn_train with cfg), saving its whole state with
 * tg_nn_resume_save every rc->every updates. Started again with rc->resume after
 * a crash or a SIGKILL, it goes on from the last save and ends with the same
 * parameters, bit for bit, as a run that was never interrupted. A run whose file
 * says it finished returns at once (result: 0 epochs, stop max_epochs).
 * on_epoch is called for every epoch finished in this call. Errors: those of
 * tg_nn_train, tg_nn_resume_load (a file that does not fit: nothing changed)
 * and tg_nn_resume_save (the run stops; the previous state file is intact).
 */
enum tg_status tg_nn_train_resumable(const struct tg_nn_module *model, struct tg_dataset *train,
                                     const struct tg_nn_train_config *cfg,
                                     const struct tg_nn_resume_config *rc,
                                     struct tg_nn_train_result *result);

#ifdef __cplusplus
}
#endif
#endif
