/*
 * tapegrad/tape.h - the tape: an arena that records ops, and the backward sweep.
 *
 * Every op takes the tape it records on as its first argument. The result (a node)
 * and its value live in the tape's arena; the tape is a Wengert list: creation
 * order is a topological order. tg_tape_reset forgets every node in O(1) and keeps
 * the memory, so running the same computation again allocates nothing.
 *
 * Handles to tensors recorded before a reset (nodes and constants) are stale
 * after it. Every call of tensor.h and tape.h, and every op, checks for that
 * first and fails with TG_ERR_STALE (accessors that return a plain value return
 * what they return for NULL, and record TG_ERR_STALE):
 *   - a handle from the previous recording is always reported stale;
 *   - an older one is reported stale at least until the tape has recorded, after
 *     it, as many more tensors of its kind as the node memory for that kind
 *     holds: 7,280 one-element results of elementwise ops on rank-0 inputs, or
 *     5,039 other tensors (nodes and constants), and more once the memory has
 *     grown for larger recordings (it always holds the current and the previous
 *     recording). For small graphs that is thousands of resets;
 *   - beyond that, the handle may refer to a tensor of the current recording and
 *     act as it. Using it never crashes while the tape lives; after
 *     tg_tape_free, any use of a handle of that tape is undefined.
 * A build with -Dchecked=true never reuses node memory before
 * tg_tape_free, so that every stale handle is reported (memory then grows with
 * every recording: for debugging). docs/errors.md has the details.
 *
 * A tape is not thread-safe: use one tape per thread. Different tapes on different
 * threads may share leaves only for reading (forward and backward write the
 * leaves' gradients, so parameters shared between threads need their own copies).
 * In a checked build (meson -Dchecked=true) a tape remembers the thread that
 * created it, and every call that takes the tape (or a node of it) from another
 * thread fails with TG_ERR_STATE ("tape used from a second thread") and changes
 * nothing; a default build does not check.
 */
#ifndef TAPEGRAD_TAPE_H
#define TAPEGRAD_TAPE_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tg_tape;

/* A new, empty tape; NULL with TG_ERR_NOMEM. Free it with tg_tape_free. */
struct tg_tape *tg_tape_new(void);
/* Frees the tape and every node on it, and releases the leaves its recording
 * held that were freed meanwhile (tg_tensor_free). NULL is a no-op. A C library
 * cannot tell a dangling pointer from a live one: using T or a handle of its
 * tensors afterwards is undefined in a default build; a checked build
 * (-Dchecked=true) quarantines and poisons the freed tape, so that such a use
 * fails with TG_ERR_STALE ("belongs to a tape that was freed") instead
 * (docs/errors.md, "Ownership and lifetimes"). */
void tg_tape_free(struct tg_tape *T);
/* Forgets every node, keeps the memory. O(1) in the nodes (it walks the leaves
 * the recording held, releasing those freed meanwhile). NULL is a no-op.
 * Handles to the forgotten tensors become stale (see above). */
void tg_tape_reset(struct tg_tape *T);

/* No-grad scope: between push and pop, ops compute values on T but record no
 * inputs for backward; their results need no gradient. Scopes nest.
 * pop without push is TG_ERR_STATE. */
enum tg_status tg_tape_no_grad_push(struct tg_tape *T);
enum tg_status tg_tape_no_grad_pop(struct tg_tape *T);
bool tg_tape_grad_enabled(const struct tg_tape *T);

/* Anomaly mode (off by default): every op checks its output for NaN and Inf and
 * fails with TG_ERR_NUMERIC naming the first op that produced one, the value of
 * its input there and the index, e.g. "log: input contains 0 at [3,1] -> -inf";
 * backward checks every gradient it computes the same way. It costs one pass
 * over each output and gradient. */
enum tg_status tg_tape_set_anomaly(struct tg_tape *T, bool on);
bool tg_tape_anomaly(const struct tg_tape *T);

/* A constant on the tape (no gradient), holding a copy of numel elements of
 * `data` (type dt; NULL means zeros). For per-step inputs: no malloc once warm. */
struct tg_tensor *tg_tape_constant(struct tg_tape *T, enum tg_dtype dt, int rank,
                                   const int64_t *shape, const void *data);

/* Memory statistics: bytes handed out by the arena in the current recording
 * (values, gradients, op data and node structs), the highest that has been, the
 * bytes reserved from the allocator (including node memory kept for telling
 * stale handles apart, at least 1 MiB for each of the two node sizes a tape has
 * used), and how many nodes are recorded now. */
struct tg_tape_stats {
    size_t bytes_used;
    size_t bytes_high_water;
    size_t bytes_reserved;
    size_t n_nodes;
    size_t n_mallocs; /* allocations the tape made since it was created */
    size_t n_folded;  /* leaf updates the last tg_backward_apply folded into an
                         op's backward (the rest were applied after its sweep) */
};
void tg_tape_stats(const struct tg_tape *T, struct tg_tape_stats *out);

/*
 * Reverse-mode sweep from `root`.
 *   seed == NULL: root must have one element; its gradient is seeded with 1.
 *   seed != NULL: a tensor of root's shape and dtype (borrowed): the upstream
 *                 gradient; the sweep computes the vector-Jacobian product.
 * Visits only the nodes reachable from root, in reverse creation order, without
 * recursion. Gradients are summed (+=): a node used several times gets the sum.
 * Leaves accumulate across calls until tg_tensor_zero_grad.
 *
 * Backward may run several times over one recording: each run recomputes the
 * gradients of the nodes (they start from zero every run) and adds once more into
 * the leaves' gradients.
 *
 * Errors: TG_ERR_NULL (root; when a failed op made the NULL, its status and
 * message instead, see status.h), TG_ERR_TAPE (root was not recorded by an op, or
 * was computed without gradient), TG_ERR_STALE (root or seed predates a reset),
 * TG_ERR_SHAPE / TG_ERR_DTYPE (seed), TG_ERR_STATE (a leaf's requires-grad was
 * changed after an op that takes it was recorded, tensor.h; or, in a checked
 * build, another thread's tape), TG_ERR_NOMEM. On any error nothing changed.
 */
enum tg_status tg_backward(struct tg_tensor *root, const struct tg_tensor *seed);

/* A leaf that tg_backward_apply updates from its gradient. */
struct tg_apply {
    struct tg_tensor *leaf;
    double alpha; /* value = beta * value + alpha * g */
    double beta;
};

/*
 * Backward from root (as tg_backward) that updates the n listed leaves in place:
 * with g the gradient this sweep computes for a leaf (zero when none reaches it),
 *     value = beta * value + alpha * g
 * e.g. plain SGD is alpha = -lr, beta = 1, and weight decay wd makes
 * beta = 1 - lr * wd. The leaves' gradient buffers are neither read nor written;
 * leaves not listed get their gradients added as by tg_backward.
 *
 * Why: a leaf whose only consumer on the tape is tg_linear (as W or b) or a
 * non-batched tg_matmul gets the update inside that op's backward, as the
 * GEMM's alpha and beta: its gradient is never stored and there is no separate
 * update pass. Any other leaf's gradient gathers in tape memory and is applied
 * after the sweep. The result is the same either way, up to rounding.
 *
 * Every listed leaf must require grad; a leaf may be listed once. The values the
 * tape recorded were computed from the old leaf values: record again before
 * another backward. On any error (including anomaly mode finding a NaN) no leaf
 * value has changed. Allocates only from the tape.
 * Errors: those of tg_backward; TG_ERR_NULL (list, or a leaf), TG_ERR_TAPE (an
 * entry is not a leaf), TG_ERR_STATE (a leaf without requires-grad),
 * TG_ERR_VALUE (alpha or beta not finite, a leaf listed twice), TG_ERR_RANGE.
 */
enum tg_status tg_backward_apply(struct tg_tensor *root, const struct tg_tensor *seed,
                                 const struct tg_apply *list, size_t n);

#ifdef __cplusplus
}
#endif
#endif
