/*
 * dist/shard.c - a dataset split across the ranks, batch by batch.
 *
 * Every rank holds the whole dataset and shuffles it the same way (the same
 * generator, seeded alike), so the ranks agree on each epoch's order without
 * sending any data; each rank then takes its own contiguous part of every
 * global batch. Parts differ in size by at most one sample; the all-reduce
 * weights each rank by its part's size, which makes the average the global
 * batch's mean also for uneven and last batches.
 */
#include <tapegrad/dist.h>
#include "dist-impl.h"

struct tg_dist_shard {
    struct tg_dist *d;
    struct tg_dataset *ds;
    int64_t n, batch;
    struct tg_rng rng;
    int epoch; /* the epoch ds's order is in; -1: the order at creation */
};

void tg_dist_shard_free(struct tg_dist_shard *s)
{
    tg_free(s);
}

/* A hash of the dataset's size, content and the settings, the same on every rank
 * that holds the same data. */
static uint64_t shard_hash(const struct tg_dataset *ds, int64_t batch, uint64_t seed)
{
    int64_t head[3] = {tg_dataset_len(ds), tg_dataset_features(ds), batch};
    uint64_t h = tg__dist_hash(TG__DIST_FNV, head, sizeof head);
    h = tg__dist_hash(h, &seed, sizeof seed);
    const struct tg_tensor *X = tg_dataset_x(ds), *y = tg_dataset_y(ds);
    size_t es = tg_dtype_size(tg_tensor_dtype(X));
    h = tg__dist_hash(h, tg_tensor_data(X), (size_t)tg_tensor_numel(X) * es);
    return tg__dist_hash(h, tg_tensor_data(y), (size_t)tg_tensor_numel(y) * es);
}

struct tg_dist_shard *tg_dist_shard_new(struct tg_dist *d, struct tg_dataset *ds,
                                        int64_t global_batch, uint64_t seed)
{
    static const char fn[] = "tg_dist_shard_new";
    if (!d || !ds) {
        tg_set_error(TG_ERR_NULL, "%s: %s", fn,
                     d ? "dataset is NULL" : "not initialised (d is NULL)");
        return NULL;
    }
    int64_t n = tg_dataset_len(ds);
    /* Every rank runs this check on its own values; a rank whose values differ
     * is caught by the hash below, so all ranks reach the same verdict. */
    bool same = false;
    if (tg__dist_same(d, shard_hash(ds, global_batch, seed), &same, fn)) return NULL;
    if (!same) {
        tg_set_error(TG_ERR_MISMATCH,
                     "%s: the ranks' datasets, batch sizes or seeds differ (rank %d has %lld "
                     "examples of %lld features, global batch %lld, seed %llu)",
                     fn, d->rank, (long long)n, (long long)tg_dataset_features(ds),
                     (long long)global_batch, (unsigned long long)seed);
        return NULL;
    }
    if (n < d->size || global_batch < d->size) {
        tg_set_error(TG_ERR_VALUE,
                     "%s: %lld examples in global batches of %lld cannot be split over %d ranks "
                     "(each rank needs at least one example of a full batch)",
                     fn, (long long)n, (long long)global_batch, d->size);
        return NULL;
    }
    struct tg_dist_shard *s = tg_malloc(sizeof *s);
    if (!s) return NULL;
    *s = (struct tg_dist_shard){d, ds, n, global_batch < n ? global_batch : n, {{0}}, -1};
    tg_rng_seed(&s->rng, seed);
    return s;
}

enum tg_status tg_dist_shard_epoch(struct tg_dist_shard *s, int epoch)
{
    static const char fn[] = "tg_dist_shard_epoch";
    if (!s) return tg_set_error(TG_ERR_NULL, "%s: shard is NULL", fn);
    if (epoch < 0) return tg_set_error(TG_ERR_RANGE, "%s: epoch %d < 0", fn, epoch);
    if (epoch < s->epoch)
        return tg_set_error(TG_ERR_STATE, "%s: epoch %d is before the current epoch %d", fn, epoch,
                            s->epoch);
    while (s->epoch < epoch) {
        enum tg_status st = tg_dataset_shuffle(s->ds, &s->rng);
        if (st) return st;
        s->epoch++;
    }
    return TG_OK;
}

int64_t tg_dist_shard_batches(const struct tg_dist_shard *s)
{
    if (!s) return tg_set_error(TG_ERR_NULL, "tg_dist_shard_batches: shard is NULL"), 0;
    return (s->n + s->batch - 1) / s->batch;
}

enum tg_status tg_dist_shard_range(const struct tg_dist_shard *s, int64_t b, int64_t *start,
                                   int64_t *count, int64_t *total)
{
    static const char fn[] = "tg_dist_shard_range";
    if (!s || !start || !count) return tg_set_error(TG_ERR_NULL, "%s: NULL argument", fn);
    int64_t nb = tg_dist_shard_batches(s);
    if (b < 0 || b >= nb)
        return tg_set_error(TG_ERR_RANGE, "%s: batch %lld outside 0..%lld", fn, (long long)b,
                            (long long)(nb - 1));
    int64_t g0 = b * s->batch, gn = s->n - g0 < s->batch ? s->n - g0 : s->batch;
    int64_t r = s->d->rank, N = s->d->size, q = gn / N, extra = gn % N;
    *start = g0 + r * q + (r < extra ? r : extra);
    *count = q + (r < extra ? 1 : 0);
    if (total) *total = gn;
    return TG_OK;
}
