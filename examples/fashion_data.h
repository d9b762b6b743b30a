/*
 * examples/fashion_data.h - loads one split of an MNIST-family folder (such as
 * Debian's /usr/share/datasets/fashion-mnist), shared by examples/fashion_mnist.c,
 * examples/fashion_cnn.c and bench/f_fashion.c so that all read the data the same way.
 */
#ifndef TAPEGRAD_EXAMPLES_FASHION_DATA_H
#define TAPEGRAD_EXAMPLES_FASHION_DATA_H

#include <stdio.h>
#include <tapegrad/tapegrad.h>

/* DIR/<split>-images-idx3-ubyte.gz and its labels as f32, pixels scaled to [0, 1];
 * split is "train" or "t10k". NULL with the library's error on failure. */
static inline struct tg_dataset *fashion_load(const char *dir, const char *split)
{
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    return tg_dataset_load_idx(images, labels, TG_F32, 1.0 / 255);
}

/* The first n rows of ds as a new dataset (ds is freed), or ds itself when n <= 0
 * or n covers it; NULL with the library's error on failure. */
static inline struct tg_dataset *fashion_first_rows(struct tg_dataset *ds, int64_t n)
{
    if (!ds || n <= 0 || n >= tg_dataset_len(ds)) return ds;
    struct tg_tensor *X = tg_tensor_from(TG_F32, 2, (int64_t[]){n, tg_dataset_features(ds)},
                                         tg_tensor_data(tg_dataset_x(ds)));
    struct tg_tensor *y =
        tg_tensor_from(TG_F32, 1, (int64_t[]){n}, tg_tensor_data(tg_dataset_y(ds)));
    tg_dataset_free(ds);
    return tg_dataset_new(X, y);
}

/* The trainer settings of the Fashion-MNIST examples: cross-entropy, mini-batches
 * of 128 reshuffled every epoch (seed 1), Adam lr 1e-3 with a cosine decay over
 * `epochs`, and on_epoch(ctx) after each epoch. */
static inline struct tg_nn_train_config
fashion_train_config(long epochs, int (*on_epoch)(const struct tg_nn_epoch_info *, void *),
                     void *ctx)
{
    struct tg_nn_train_config cfg = tg_nn_train_defaults();
    cfg.loss = TG_LOSS_XENT;
    cfg.mode = TG_TRAIN_MINIBATCH;
    cfg.batch_size = 128;
    cfg.shuffle = true;
    cfg.seed = 1;
    cfg.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM); /* lr 1e-3 */
    cfg.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_COSINE, .t_max = (int)epochs};
    cfg.max_epochs = (int)epochs;
    cfg.on_epoch = on_epoch;
    cfg.ctx = ctx;
    return cfg;
}

#endif
