/*
 * tapegrad/ops_grad.h - ops that act on the gradient's path rather than on the
 * value (ops/detach.c). Included by tapegrad/ops.h; do not include it alone.
 */
#ifndef TAPEGRAD_OPS_GRAD_H
#define TAPEGRAD_OPS_GRAD_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_GRAD(X) X(DETACH, detach)

/* The declarations below sit inside ops.h's extern "C" block and use its types. */

/*
 * x with the gradient stopped (PyTorch's x.detach(), JAX's stop_gradient): a node
 * of T whose value is x's and through which no gradient flows. Its
 * vector-Jacobian product is zero: a backward sweep never reaches it, so x and
 * everything x was computed from get nothing from the uses of the result, and the
 * result never requires a gradient (tg_tensor_requires_grad gives false), in
 * first and higher order alike (tg_grad sees no path through it). A loss that
 * depends on the parameters only through detached values is not differentiable
 * (backward fails with TG_ERR_TAPE, "root needs no gradient").
 *
 * Aliasing: the result shares x's buffer, it is not a copy (tg_tensor_data of
 * both gives one pointer). Whatever later writes x's values (tg_tensor_set or
 * tg_tensor_data on a leaf or a constant, an optimizer step, tg_backward_apply)
 * shows through the result, and ops
 * recorded from the result read its values when they run (forward at record
 * time; backward, which may read them again, at sweep time). Values already
 * computed from it do not change. Detach a copy (tg_tensor_copy of a leaf) to
 * keep a snapshot. The result lives until T is reset, but reads x's buffer:
 * it must not be used after x is freed (a leaf) or x's tape is reset (a node).
 *
 * x: a leaf, or a node or constant of T's current recording; borrowed.
 * Returns NULL with the error set: TG_ERR_NULL (x or T NULL; a NULL x keeps the
 * message of the failure that made it), TG_ERR_STALE (x was recorded before its
 * tape was reset), TG_ERR_TAPE (x belongs to another tape), TG_ERR_NOMEM.
 */
struct tg_tensor *tg_detach(struct tg_tape *T, struct tg_tensor *x);

#endif
