/*
 * tapegrad/dist.h - data-parallel training over MPI (optional: built and
 * installed only when meson finds MPI; link libtapegrad-dist, see
 * docs/distributed.md).
 *
 * Every rank holds the whole model and trains on its own slice of each batch;
 * the ranks average their gradients with an all-reduce, so each keeps the same
 * parameters, as Horovod and PyTorch's DistributedDataParallel do. The pieces:
 *   - a communicator (struct tg_dist): tg_dist_init starts MPI, tg_dist_adopt
 *     uses one the program already has;
 *   - tg_dist_broadcast_params gives every rank rank 0's values;
 *   - a reducer averages gradients in buckets; with tg_dist_reducer_begin before
 *     the backward sweep, a bucket is sent (MPI_Iallreduce) while the sweep still
 *     runs, as soon as all of its parameters' gradients are final (gradient
 *     hooks, hook.h);
 *   - a sharded view of a dataset gives each rank a disjoint slice of every
 *     global batch, in an order shuffled alike on all ranks;
 *   - tg_dist_checkpoint_save writes from rank 0 only, with no barrier;
 *   - tg_dist_train is tg_nn_train across the ranks, with checkpoints to resume
 *     from.
 *
 * Collective calls (marked so below) must be made by every rank of the
 * communicator in the same order. Every wait of a collective call polls with a
 * limit (tg_dist_set_timeout): a rank that died or stopped calling makes the
 * others fail with TG_ERR_IO after that time instead of hanging. After such a
 * failure the communicator is unusable: end the job (tg_dist_abort). A check
 * that fails on every rank alike (mismatched parameter lists, datasets or
 * settings) leaves it usable.
 */
#ifndef TAPEGRAD_DIST_H
#define TAPEGRAD_DIST_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dataset.h"
#include "nn.h"
#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A communicator for data-parallel training (opaque). */
struct tg_dist;

/*
 * Initialises MPI (MPI_Init_thread asking for MPI_THREAD_FUNNELED: make every MPI
 * call from the thread that calls this) unless it already is, and returns a
 * communicator over all processes (a duplicate of MPI_COMM_WORLD whose errors are
 * returned, not fatal). argc and argv may be NULL. Finish with tg_dist_finalize.
 * NULL with TG_ERR_STATE (MPI was already finalized), TG_ERR_IO (an MPI call
 * failed: its message is quoted), TG_ERR_NOMEM.
 */
struct tg_dist *tg_dist_init(int *argc, char ***argv);
/*
 * A communicator over the processes of `comm`, which the program's own MPI code
 * already set up (comm is duplicated, so messages of the two never mix; MPI stays
 * the caller's to finalize). Collective over comm. NULL with TG_ERR_STATE (MPI
 * not initialised, or finalized), TG_ERR_VALUE (comm is MPI_COMM_NULL), TG_ERR_IO,
 * TG_ERR_NOMEM.
 */
struct tg_dist *tg_dist_adopt(MPI_Comm comm);
/*
 * Frees d and its communicator; when d came from tg_dist_init and that call
 * started MPI, finalizes MPI too. Collective. NULL is a no-op.
 */
void tg_dist_finalize(struct tg_dist *d);
/*
 * Ends the whole job at once (MPI_Abort with `code`): the way out after a
 * collective call failed with TG_ERR_IO (a rank died or stopped answering). Does
 * not return when d is valid; with d NULL it records TG_ERR_NULL and returns.
 */
void tg_dist_abort(struct tg_dist *d, int code);

/* This process's rank, 0 .. size-1, and the number of ranks; -1 with
 * TG_ERR_NULL when d is NULL (not initialised). */
int tg_dist_rank(const struct tg_dist *d);
int tg_dist_size(const struct tg_dist *d);

/* The longest a collective call waits for the other ranks, in seconds (default
 * 300), before it fails with TG_ERR_IO. TG_ERR_NULL; TG_ERR_VALUE for a value that
 * is not > 0 (infinity means no limit). Local (not collective). */
enum tg_status tg_dist_set_timeout(struct tg_dist *d, double seconds);

/*
 * Checks that every rank holds the same parameter list: the same names in the
 * same order, and for each the same dtype, shape and requires-grad. Collective;
 * one small all-reduce when the lists agree. When they differ, every rank fails
 * with TG_ERR_MISMATCH and a message naming, for each rank that differs from
 * rank 0, its first differing entry and rank 0's (or the counts). Errors also:
 * TG_ERR_NULL (d or p NULL: that rank fails alone, the others time out), TG_ERR_IO,
 * TG_ERR_NOMEM.
 */
enum tg_status tg_dist_check_params(struct tg_dist *d, const struct tg_params *p);
/*
 * tg_dist_check_params, then every rank's parameter values are set to rank 0's
 * (gradients are not touched). Collective. Errors as tg_dist_check_params.
 */
enum tg_status tg_dist_broadcast_params(struct tg_dist *d, struct tg_params *p);

/*
 * Gradient averaging in one call: after it, every rank's gradient of every
 * entry of p that requires grad is
 *     G = sum over ranks r of weight_r * g_r  /  sum over ranks of count_r.
 * weight = count = 1 on every rank: the plain average. g_r the mean over n_r
 * local samples and weight = count = n_r: G is the mean over all samples, also
 * when the ranks' batches differ in size. g_r the sum over n_r samples (as
 * tg_nn_train_accumulate leaves it): weight 1, count n_r. A rank with no
 * samples passes weight = count = 0. Checks the parameter lists first
 * (tg_dist_check_params) and allocates a buffer per call: in a loop use a
 * reducer. Collective. TG_ERR_VALUE (weight or count not finite, count < 0, or
 * the counts summing to 0: on every rank), errors of tg_dist_check_params,
 * TG_ERR_IO. After a failure that got past the argument checks the gradients
 * are unspecified (a bucket may hold partial sums: zero them before going on).
 */
enum tg_status tg_dist_allreduce_grads(struct tg_dist *d, struct tg_params *p, double weight,
                                       double count);

/* ---- the reducer: gradient all-reduce in buckets, overlapped with backward ---- */

struct tg_dist_reducer;

/*
 * A reducer for the gradients of p (borrowed: p and d must outlive it, and p's
 * entries must not change). Entries that require grad are grouped, from the
 * last entry to the first (the order in which a backward sweep finishes them),
 * into buckets of about bucket_bytes (0: 1 MiB; each holds at least one entry
 * and one dtype), and a gradient hook (hook.h) is put on each: after
 * tg_dist_reducer_begin, a bucket is sent as soon as all of its gradients are
 * final; buckets always go out in the same order on every rank. Collective
 * (it checks the parameter lists as tg_dist_check_params). NULL with the errors
 * of tg_dist_check_params, TG_ERR_RANGE (an entry of more than 2^31 - 1
 * elements, MPI's count limit), TG_ERR_NOMEM. Free with tg_dist_reducer_free.
 */
struct tg_dist_reducer *tg_dist_reducer_new(struct tg_dist *d, struct tg_params *p,
                                            size_t bucket_bytes);
/* Removes the hooks and frees the reducer. A reducer begun and not finished
 * cannot be freed safely once buckets are in flight: finish it first. NULL is a
 * no-op. */
void tg_dist_reducer_free(struct tg_dist_reducer *r);
/*
 * Arms r for the next backward sweep that reaches p's entries: its hooks copy
 * each final gradient, times weight, into its bucket and send full buckets.
 * weight and count as in tg_dist_allreduce_grads. Call it after zeroing the
 * gradients and before the step's last backward sweep (with several sweeps per
 * step, before the last one: hooks of earlier sweeps would send partial sums).
 * Every rank that begins must then call tg_dist_reducer_finish, or
 * tg_dist_reducer_abandon when its own step failed. It starts the all-reduce of
 * the counts (non-blocking: it returns at once), so that the hooks can pack
 * each gradient already divided by the ranks' total count: on every rank or
 * none. TG_ERR_NULL, TG_ERR_VALUE (weight or count not finite, count < 0: this
 * rank alone, which posts nothing), TG_ERR_STATE (already begun), TG_ERR_IO.
 */
enum tg_status tg_dist_reducer_begin(struct tg_dist_reducer *r, double weight, double count);
/*
 * Completes the step begun by tg_dist_reducer_begin: gradients that no hook
 * delivered (entries the sweep did not reach, or no sweep at all on a rank with
 * no samples) are taken as they are, the remaining buckets and the counts are
 * sent, and everything is waited for (within the timeout) and written back as
 * tg_dist_allreduce_grads defines. A bucket of one gradient is all-reduced in
 * the gradient buffer itself (no copy); the others through a buffer of the
 * reducer. Collective. TG_ERR_NULL, TG_ERR_STATE (not begun; or, on every rank,
 * another rank called tg_dist_reducer_abandon), TG_ERR_VALUE (the counts sum to
 * 0, on every rank), TG_ERR_IO (a rank did not answer in time: see the top of
 * this file); after the last three the gradients are unspecified (zero them
 * before the next step) and r may be begun again (not after TG_ERR_IO).
 */
enum tg_status tg_dist_reducer_finish(struct tg_dist_reducer *r);
/*
 * The way out of a step begun on a rank whose own work failed (its forward or
 * backward returned an error): it takes part in the step's collectives, so the
 * other ranks do not wait, and makes their tg_dist_reducer_finish fail with
 * TG_ERR_STATE. Gradients are unspecified afterwards, as after a failed finish.
 * Collective (with the others' finish).
 * TG_ERR_NULL, TG_ERR_STATE (not begun), TG_ERR_IO.
 */
enum tg_status tg_dist_reducer_abandon(struct tg_dist_reducer *r);

/* What a reducer measured (times in seconds, wall clock). */
struct tg_dist_reducer_stats {
    int n_buckets;          /* buckets per step */
    int64_t bytes;          /* bytes of gradient each rank all-reduces per step */
    int64_t steps;          /* steps finished */
    int sent_in_backward;   /* buckets of the last step sent by hooks, during the sweep */
    double last_exposed;    /* last step: time in tg_dist_reducer_finish, the part of
                               the all-reduce not hidden behind the sweep */
    double total_exposed;   /* the sum of last_exposed over all steps */
    double total_hook_time; /* time spent in the hooks (packing, sending, polling) */
};
/* Copies r's measurements into *out. TG_ERR_NULL. */
enum tg_status tg_dist_reducer_stats(const struct tg_dist_reducer *r,
                                     struct tg_dist_reducer_stats *out);

/* ---- a dataset sharded across the ranks ---- */

struct tg_dist_shard;

/*
 * A sharded view of ds (borrowed, and reordered by tg_dist_shard_epoch: ds must
 * outlive the shard) for global batches of global_batch samples. Every epoch
 * visits ds in an order shuffled with `seed` the same way on every rank (epoch e's
 * order is ds's order at creation shuffled e + 1 times by tg_dataset_shuffle with
 * a generator seeded with `seed`: the order tg_nn_train uses with that seed).
 * Global batch b is positions [b B, b B + B_b) of that order, B_b = min(B, n - b B);
 * rank r of N gets the contiguous part of B_b / N samples, one more for the first
 * B_b mod N ranks, so the ranks' parts are disjoint and cover the batch. In a last
 * batch smaller than N some ranks get none: they still take part in the
 * all-reduce with weight 0 (tg_dist_reducer_begin), which makes the average the
 * batch's mean. Collective: all ranks must pass the same ds (same n, d and
 * content, checked through a hash), global_batch and seed. NULL with TG_ERR_NULL,
 * TG_ERR_VALUE (global_batch < size, or a dataset with fewer examples than ranks:
 * on every rank), TG_ERR_MISMATCH (the ranks' datasets or settings differ: on
 * every rank, naming what differs), TG_ERR_IO, TG_ERR_NOMEM.
 */
struct tg_dist_shard *tg_dist_shard_new(struct tg_dist *d, struct tg_dataset *ds,
                                        int64_t global_batch, uint64_t seed);
/* Frees the view (not the dataset). NULL is a no-op. */
void tg_dist_shard_free(struct tg_dist_shard *s);
/*
 * Puts ds in epoch `epoch`'s order (0-based). Epochs only go forward: to start at
 * epoch e (a resumed run), call it with e directly. Local; every rank calls it
 * with the same epoch. TG_ERR_NULL, TG_ERR_STATE (an epoch before the current
 * one: create a new shard on a fresh dataset instead), TG_ERR_RANGE (epoch < 0).
 */
enum tg_status tg_dist_shard_epoch(struct tg_dist_shard *s, int epoch);
/* The number of global batches per epoch, ceil(n / B); 0 with TG_ERR_NULL. */
int64_t tg_dist_shard_batches(const struct tg_dist_shard *s);
/*
 * This rank's part of global batch b: positions *start .. *start + *count - 1 of
 * the dataset's order (for tg_nn_train_accumulate or tg_dataset_batch_into;
 * *count may be 0 in a last batch), and the global batch's size in *total (may
 * be NULL). TG_ERR_NULL, TG_ERR_RANGE (b outside 0 .. batches-1).
 */
enum tg_status tg_dist_shard_range(const struct tg_dist_shard *s, int64_t b, int64_t *start,
                                   int64_t *count, int64_t *total);

/* ---- checkpoints ---- */

/*
 * tg_checkpoint_save(p, path) on rank 0 (atomic: the file at path is always a
 * whole checkpoint); other ranks do nothing and return TG_OK at once. Not
 * collective, no barrier: rank 0's result is rank 0's alone. TG_ERR_NULL, and on
 * rank 0 the errors of tg_checkpoint_save.
 */
enum tg_status tg_dist_checkpoint_save(struct tg_dist *d, const struct tg_params *p,
                                       const char *path);

/* ---- the data-parallel trainer ---- */

/* Options of tg_dist_train beyond tg_nn_train's; zero-initialise, then set. */
struct tg_dist_train_options {
    const char *checkpoint;   /* file to save to (rank 0) and resume from; NULL: none */
    int64_t checkpoint_every; /* save after every this many steps, and after every
                                 epoch; 0: after every epoch only */
    bool resume;              /* start from `checkpoint` when it exists */
    size_t bucket_bytes;      /* of the reducer (0: its default) */
    /* per step: called on every rank after the update with the global step number
     * (1-based); nonzero stops training (TG_STOP_CALLBACK) on every rank. NULL: none */
    int (*on_step)(int64_t step, void *ctx);
    void *ctx;
};

/*
 * tg_nn_train across the ranks of d: each global batch of cfg->batch_size samples
 * (0: the whole set) is split by a shard (tg_dist_shard_new with cfg->seed; the
 * order is reshuffled every epoch when cfg->shuffle), each rank runs forward and
 * backward on its part, the reducer averages the gradients over the global batch
 * while the backward sweep runs, and every rank applies the same update. The
 * parameters after every step are those of tg_nn_train with the same config in one
 * process, up to rounding. Parameters are broadcast from rank 0 first. The epoch
 * loss and accuracy given to cfg->on_epoch (called on every rank, with the same
 * values; stopping when any rank's call returns nonzero) and in *result are over
 * all ranks. With opt->checkpoint, rank 0 saves the parameters and a tensor
 * "dist.state" (f64: epoch, next batch, step, seed, global batch size) as the
 * schedule asks; with opt->resume and that file present, training continues from
 * it (parameters and position; an optimizer's momentum or Adam moments start
 * again from zero, so only SGD without momentum continues exactly as an
 * uninterrupted run; an epoch's loss then covers the batches run since). opt may
 * be NULL. Collective. Errors: those of tg_nn_train, of the calls above
 * (TG_ERR_MISMATCH, TG_ERR_VALUE, TG_ERR_IO when a rank dies), TG_ERR_MISMATCH
 * when the checkpoint's state was made with another seed or batch size.
 */
enum tg_status tg_dist_train(struct tg_dist *d, const struct tg_nn_module *model,
                             struct tg_dataset *ds, const struct tg_nn_train_config *cfg,
                             const struct tg_dist_train_options *opt,
                             struct tg_nn_train_result *result);

#ifdef __cplusplus
}
#endif
#endif
