/*
 * tapegrad/recompute.h - gradient checkpointing: trade compute for memory by
 * recomputing a segment of the model during backward instead of keeping its
 * intermediate values (torch.utils.checkpoint, jax.checkpoint). Not to be
 * confused with tapegrad/checkpoint.h, which saves training state to files.
 *
 * tg_recompute(T, fn, in, n, user) runs fn on a scratch tape (one per tape T,
 * reused) with stand-ins for the inputs, copies its result into ONE node of T
 * whose inputs are in[0..n), and forgets the scratch tape's nodes: T keeps the
 * segment's output, not its intermediates. When a backward sweep reaches that
 * node, it records fn again on the scratch tape (with gradients on), sweeps it
 * from the node's gradient, which adds the gradients of in[0..n) into their
 * buffers, and forgets it again. So at most one segment's intermediates exist
 * at a time, for about one more forward pass of compute. Gradients equal those
 * of running fn on T directly, as long as fn computes the same thing both
 * times.
 */
#ifndef TAPEGRAD_RECOMPUTE_H
#define TAPEGRAD_RECOMPUTE_H

#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The segment: records ops on T (the scratch tape it is given, never another
 * one) from inputs in[0..n_in) (stand-ins for the caller's inputs: leaves
 * that share their values) and returns its output, a tensor recorded on T, or
 * NULL with the error set. It is called twice per step (forward, then
 * backward), must compute the same output shape and dtype each time, and must
 * keep no pointer to T's tensors after it returns. Every tensor it reads that
 * needs a gradient must be among the inputs (leaves included, e.g. a layer's
 * weights): a leaf it reaches another way (through user) gets a gradient only
 * when some input requires grad, and its hooks then run inside the
 * recomputation.
 */
typedef struct tg_tensor *(*tg_recompute_fn)(struct tg_tape *T, struct tg_tensor *const *in,
                                             int n_in, void *user);

/*
 * fn(in) as one node of T whose backward recomputes fn (see above). in: 1 to
 * TG_RECOMPUTE_MAX_INPUTS leaves or tensors of T's recording (borrowed), of
 * any dtypes; the output has in[0]'s dtype. user is passed to fn.
 *
 * Returns the node, or NULL with the error set: TG_ERR_NULL (T, fn or in NULL,
 * an input NULL, keeping the cause of the op that made it); TG_ERR_RANGE
 * (n_in outside 1..TG_RECOMPUTE_MAX_INPUTS); TG_ERR_STALE, TG_ERR_TAPE (an
 * input on another tape); TG_ERR_TAPE when fn returns an input or a tensor of
 * another tape (it recorded on a tape other than the one it was given: the
 * message says so); TG_ERR_DTYPE when its output's dtype is not in[0]'s;
 * fn's own failure (its status and message); TG_ERR_NOMEM.
 *
 * During backward the recomputation can fail too (memory, fn failing, or fn
 * returning another shape or dtype than the first time: TG_ERR_STATE): the
 * sweep then stops with that status and message, like a failing hook
 * (docs/hooks.md). In anomaly mode the recomputed ops are checked like any
 * others, and a NaN is named by the op inside fn that made it.
 *
 * A recording with such a node is swept by the loop gradient hooks use
 * (tapegrad/hook.h), and tg_backward_apply folds no update into an op there.
 *
 * tg_grad (and so tg_hvp, tg_hessian, tg_gradgradcheck) differentiates
 * through the node by recording fn once more on the node's own tape, from the
 * node's own inputs (so fn is then given that tape and those tensors, and its
 * ops stay on the tape, as without checkpointing), and differentiating that:
 * higher order works, without the memory saving.
 */
struct tg_tensor *tg_recompute(struct tg_tape *T, tg_recompute_fn fn, struct tg_tensor *const *in,
                               int n_in, void *user);

#define TG_RECOMPUTE_MAX_INPUTS 64

/* The memory figures of T's scratch tape (tg_tape_stats of it; all zero when T
 * has used none, or T is NULL): what the segments take beside T's own. */
void tg_recompute_stats(const struct tg_tape *T, struct tg_tape_stats *out);

#ifdef __cplusplus
}
#endif

#endif
