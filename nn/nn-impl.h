/*
 * nn/nn-impl.h - what the files of nn/ share (never installed).
 *
 * nn/ is built only on the public API (include/tapegrad/); this header adds the
 * uthash configuration: allocations go through the library's allocator hook and an
 * out-of-memory during an insertion is an error (the insertion is rolled back and
 * the element's hh.tbl is left NULL, which the caller checks) instead of exit().
 */
#ifndef TG_NN_IMPL_H
#define TG_NN_IMPL_H

#include <stdio.h>
#include "tapegrad/tapegrad.h"

#define HASH_NONFATAL_OOM    1
#define uthash_malloc(sz)    tg_malloc(sz)
#define uthash_free(ptr, sz) tg_free(ptr)
#include <uthash.h>

struct tg_dataset;
/* Puts ds's visiting order back to the storage order (nn/dataset.c): tg_nn_train
 * starts its shuffling from there, so that a seed gives one run, every time. */
void tg__dataset_reset_order(struct tg_dataset *ds);

/* ds's visiting order (n entries, position -> row), for nn/resume.c. */
int64_t *tg__dataset_order(struct tg_dataset *ds);

/* The optimizer's state for nn/resume.c (nn/optim.c): entry i's buffers s1
 * (momentum or Adam's m) and s2 (Adam's v), each NULL when the kind has none and
 * otherwise numel doubles, and its step count; *total is the optimizer's step
 * count. Returns the number of entries (i >= it: only *total is set). */
size_t tg__nn_optim_state(struct tg_nn_optim *opt, size_t i, double **s1, double **s2,
                          int64_t **steps, int64_t **total);
enum tg_nn_optim_kind tg__nn_optim_kind(const struct tg_nn_optim *opt);

/* Whether the host stores multi-byte numbers little-endian (safetensors' order). */
static inline int tg__nn_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

#endif
