/*
 * tapegrad/model.h - a trained MLP in one file, with what predicting needs: its
 * layer sizes and activations, its loss, and the normalization of its inputs
 * (nn/model.c).
 *
 * The file is a safetensors checkpoint (checkpoint.h) of the MLP's parameters
 * "layers.K.weight" (out, in) and "layers.K.bias" (out) whose "__metadata__"
 * holds the rest as strings (docs/nn.md lists the keys). `tapegrad train --save`
 * writes it and `tapegrad eval` reads it through these functions, so a program
 * that loads a model the command saved gets the command's predictions:
 *
 *     struct tg_nn_model *m = tg_nn_model_load("model.safetensors", TG_F32);
 *     tg_nn_model_normalize(m, ds);        // the inputs as training saw them
 *     tg_nn_model_predict(m, ds, classes); // argmax of the logits per sample
 *     tg_nn_model_free(m);
 *
 * Every parameter is finite in a saved or loaded model: a NaN or Inf is refused
 * with TG_ERR_NUMERIC naming the tensor and the element.
 */
#ifndef TAPEGRAD_MODEL_H
#define TAPEGRAD_MODEL_H

#include <stdint.h>
#include "dataset.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the inputs are normalized before the MLP sees them. */
enum tg_nn_norm {
    TG_NORM_NONE = 0,        /* as they are */
    TG_NORM_STANDARDIZE = 1, /* x_j = (x_j - mean_j) / std_j (tg_dataset_standardize) */
    TG_NORM_SCALE = 2        /* x = x * scale, one number for every feature */
};

/* An MLP with its loss and input normalization (opaque). */
struct tg_nn_model;

/*
 * A model around `mlp`, whose ownership it takes (also on failure: then mlp is
 * freed), with no normalization. `loss` must fit the MLP's outputs: TG_LOSS_XENT
 * needs >= 2, the others exactly 1. NULL with TG_ERR_NULL (mlp NULL: its own
 * failure's message is kept), TG_ERR_VALUE (an unknown loss, or one that does
 * not fit), TG_ERR_NOMEM. Free with tg_nn_model_free.
 */
struct tg_nn_model *tg_nn_model_new(struct tg_nn_mlp *mlp, enum tg_nn_loss loss);
/* Frees the model, its MLP and its normalization. NULL is a no-op. */
void tg_nn_model_free(struct tg_nn_model *m);

/* The MLP (borrowed, owned by the model), for training and for tg_nn_mlp_module.
 * Its parameter map also carries the file's metadata. NULL for NULL. */
struct tg_nn_mlp *tg_nn_model_mlp(const struct tg_nn_model *m);
/* The loss the model was trained with (TG_LOSS_MSE for NULL). */
enum tg_nn_loss tg_nn_model_loss(const struct tg_nn_model *m);
/* The normalization's kind, and (each pointer may be NULL) its per-feature mean
 * and std, f64 (in) borrowed (NULL unless STANDARDIZE), and its scale (1 unless
 * SCALE). TG_NORM_NONE for NULL. */
enum tg_nn_norm tg_nn_model_norm(const struct tg_nn_model *m, const struct tg_tensor **mean,
                                 const struct tg_tensor **std, double *scale);

/*
 * Sets the normalization to `kind` fitted on ds (usually the training set): the
 * per-feature mean and std of its inputs (tg_dataset_feature_stats) or 1 / the
 * largest absolute input (1 when all are zero); NONE clears it. ds is not
 * changed. Errors (the model unchanged): TG_ERR_NULL, TG_ERR_VALUE (an unknown
 * kind), TG_ERR_SHAPE (ds's feature count is not the MLP's input size),
 * TG_ERR_NUMERIC (an input of ds is NaN or Inf: the message names the 0-based
 * example and feature), TG_ERR_NOMEM.
 */
enum tg_status tg_nn_model_fit_norm(struct tg_nn_model *m, enum tg_nn_norm kind,
                                    const struct tg_dataset *ds);

/*
 * Applies the model's normalization to ds's inputs in place (do it once, to every
 * set the model will see). First checks that every input and target of ds is
 * finite. Errors (ds unchanged): TG_ERR_NULL, TG_ERR_SHAPE (the feature count is
 * not the MLP's input size), TG_ERR_NUMERIC (a NaN or Inf input or target: the
 * message names the 0-based example, and the feature or "target"), and those of
 * tg_dataset_standardize.
 */
enum tg_status tg_nn_model_normalize(const struct tg_nn_model *m, struct tg_dataset *ds);

/*
 * The prediction for every sample of ds (already normalized), in the dataset's
 * order, into out (n = tg_dataset_len): for TG_LOSS_XENT the class, the index of
 * the largest logit (the first on ties, as tg_nn_evaluate counts); for the other
 * losses the MLP's one output. Forward in batches of 256 on a tape of its own,
 * without gradients. Errors: TG_ERR_NULL, the forward's (TG_ERR_SHAPE for the
 * wrong feature count), TG_ERR_NOMEM; out is then partly written.
 */
enum tg_status tg_nn_model_predict(const struct tg_nn_model *m, const struct tg_dataset *ds,
                                   double *out);

/*
 * Writes the model to `path` (tg_checkpoint_save: atomic, the previous file kept
 * on failure), its description set as metadata on the MLP's parameter map, next
 * to any key already there (format, architecture, activation, output_activation,
 * loss, normalization, norm_mean, norm_std, norm_scale are replaced). Numbers are
 * written with 17 significant digits, so they read back exactly.
 * Errors (nothing written): TG_ERR_NULL, TG_ERR_NUMERIC (a NaN or Inf parameter:
 * the message names the file, the tensor and the element), TG_ERR_IO (naming the
 * file), TG_ERR_NOMEM.
 */
enum tg_status tg_nn_model_save(struct tg_nn_model *m, const char *path);

/*
 * Reads a model that tg_nn_model_save wrote (or `tapegrad train --save`), with its
 * parameters converted to `dt`; the file's metadata is copied to the MLP's
 * parameter map. Every message names the file. NULL with TG_ERR_NULL,
 * TG_ERR_DTYPE (dt), TG_ERR_IO, TG_ERR_FORMAT (not a safetensors file, a missing
 * or malformed metadata key: the message names the key), TG_ERR_MISMATCH (the
 * tensors are not those of the architecture: names the tensor and both shapes),
 * TG_ERR_NUMERIC (a NaN or Inf parameter: names the tensor and the element),
 * TG_ERR_NOMEM. Free with tg_nn_model_free.
 */
struct tg_nn_model *tg_nn_model_load(const char *path, enum tg_dtype dt);

#ifdef __cplusplus
}
#endif
#endif
