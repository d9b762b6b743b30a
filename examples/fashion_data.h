/*
 * examples/fashion_data.h - loads one split of an MNIST-family folder (such as
 * Debian's /usr/share/datasets/fashion-mnist), shared by examples/fashion_mnist.c
 * and bench/f_fashion.c so that both read the data the same way.
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

#endif
