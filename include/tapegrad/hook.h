/*
 * tapegrad/hook.h - gradient hooks: user functions called during the backward
 * sweep with the gradient arriving at a tensor, to read it (logging, NaN
 * hunting, an all-reduce started as soon as a parameter's gradient is final) or
 * to change it (clipping, scaling).
 *
 * Which sweeps call hooks: tg_backward and tg_backward_apply, and so everything
 * built on tg_backward (tg_gradcheck, tg_jacobian, tg_backward_trace, the
 * trainers of nn.h). tg_grad (with or without create_graph), tg_vjp, tg_hvp and
 * tg_jvp call no hook: they record the backward pass as ops and return
 * gradients as tensors, writing no gradient buffer a hook could watch (a hook
 * that clips would otherwise change a recorded graph behind its back). Hook the
 * tensors tg_grad returns, or transform them with ops, instead.
 *
 * Cost: a tape whose recording holds no hooked node, while no leaf anywhere
 * has a hook, sweeps exactly as without this module. Otherwise the sweep first
 * walks the recording once to find, for each hooked leaf, its last consumer in
 * sweep order.
 *
 * Threads: a leaf's hooks belong to the leaf; sweeping tapes that share a
 * hooked leaf on two threads at once is not allowed (it is not for any leaf
 * that requires grad: both sweeps write its gradient).
 */
#ifndef TAPEGRAD_HOOK_H
#define TAPEGRAD_HOOK_H

#include <stdint.h>
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once per backward sweep (tg_backward, tg_backward_apply) that reaches t, when t's gradient
 * for that sweep is complete: for a node, before its VJP passes the gradient on to its inputs; for
 * a leaf, right after the sweep's last contribution was added to the leaf's gradient (a leaf's hook
 * sees its accumulated gradient, like PyTorch's post-accumulate-grad hooks; leaves' hooks fire in
 * sweep order, i.e. the last-used parameters first). grad: a tensor of t's dtype and shape whose
 * data IS the gradient: read it, or write it (tg_tensor_data) to change the gradient in place.
 * Return TG_OK to go on; any other status stops the sweep with that status (set a message with
 * tg_set_error). */
typedef enum tg_status (*tg_hook_fn)(struct tg_tensor *t, struct tg_tensor *grad, void *user);
/* Adds fn to t's hooks, called in the order added. Returns an id > 0, or 0 with the error set
 * (TG_ERR_NULL, TG_ERR_STALE, TG_ERR_NOMEM). Hooks on a leaf stay until removed or the leaf is
 * freed; hooks on a node end with its recording (tape reset/free). */
int64_t tg_hook_add(struct tg_tensor *t, tg_hook_fn fn, void *user);
/* Removes hook id from t: TG_OK, or TG_ERR_NULL / TG_ERR_STALE / TG_ERR_RANGE (no such hook
 * on t). */
enum tg_status tg_hook_remove(struct tg_tensor *t, int64_t id);

/*
 * Details of the contract above:
 * - grad is a leaf-like view that the sweep owns and that is valid only during
 *   the call: tg_tensor_data(grad) is the gradient buffer itself (float* or
 *   double*, writable, as for any leaf), the shape
 *   accessors describe it; it requires no grad. Do not free it, keep it, or
 *   record ops on it (copy its data instead).
 * - In tg_backward_apply a listed leaf's gradient is the sweep's own gradient
 *   (the update's g, not an accumulated one); what the hook leaves there is the
 *   g applied. While any hook is live, tg_backward_apply folds no update into
 *   an op's backward (tg_tape_stats n_folded stays 0), so that every listed
 *   leaf's hook sees its g and a failed sweep changes no value.
 * - A hook that fails stops the sweep: the nodes' gradients are not current
 *   afterwards (tg_tensor_grad gives NULL), and leaves that the sweep had
 *   reached keep the contributions added until then (tg_backward) or are left
 *   unchanged (tg_backward_apply).
 * - A hook may read any tensor and call tg_hook_add / tg_hook_remove on other
 *   tensors; adding or removing hooks of the tensor being called back takes
 *   effect at the next sweep. It must not reset or free t's tape, free a leaf
 *   of the sweep, or record ops on t's tape.
 * - t must not be a constant (TG_ERR_TAPE: a constant has no gradient); fn NULL
 *   is TG_ERR_NULL. A hook on a tensor that requires no grad is kept and never
 *   called.
 * - Ids are unique in the process; tg_hook_remove with the id of another
 *   tensor's hook is TG_ERR_RANGE and removes nothing.
 */

/*
 * A hook that replaces the gradient instead of editing it: called like a
 * tg_hook_fn (the same moment, the same order among t's hooks, the same grad
 * view), it sets *replacement to NULL (keep the gradient) or to a tensor of t's
 * dtype and shape (a leaf, or a tensor of any tape; borrowed: it must stay
 * valid until the hook returns) whose values become the gradient. A replacement
 * of another shape stops the sweep with TG_ERR_SHAPE, of another dtype with
 * TG_ERR_DTYPE, a stale one with TG_ERR_STALE (the message names the hooked
 * tensor's shape and the replacement's).
 */
typedef enum tg_status (*tg_hook_replace_fn)(struct tg_tensor *t, struct tg_tensor *grad,
                                             struct tg_tensor **replacement, void *user);
/* tg_hook_add for a replacing hook; the same ids, errors and lifetime, and
 * tg_hook_remove removes it. */
int64_t tg_hook_add_replace(struct tg_tensor *t, tg_hook_replace_fn fn, void *user);

/* The number of hooks on t (0 for NULL, a constant, or a stale handle, which
 * also records TG_ERR_STALE). */
int tg_hook_count(const struct tg_tensor *t);

#ifdef __cplusplus
}
#endif

#endif
