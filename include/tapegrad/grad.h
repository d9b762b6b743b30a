/*
 * tapegrad/grad.h - gradients as tensors: the functional form of backward, and
 * higher-order derivatives.
 *
 * tg_backward adds numbers into the leaves' gradient buffers with each op's fast
 * kernel. tg_grad instead records the backward pass itself as ops on the tape
 * (each op's vector-Jacobian product written in ops of the table, the
 * descriptor's vjp_graph) and returns the gradients as tensors of the tape. With
 * create_graph they are nodes like any other: they can enter a loss (a gradient
 * penalty ||dD/dx||^2) and be differentiated again, to any order. No leaf's
 * accumulated gradient is touched. docs/higher-order.md explains the idea.
 */
#ifndef TAPEGRAD_GRAD_H
#define TAPEGRAD_GRAD_H

#include "gradcheck.h"
#include "jacobian.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tg_grad_options {
    /* Record the gradients so that they can be differentiated again: the ops of
     * the backward pass are recorded with gradient tracking, and a returned
     * gradient requires grad when it depends on a tensor that does. Off: they
     * are recorded in a no-grad scope and no returned gradient requires grad. */
    bool create_graph;
    /* An input that no output depends on gets a zero gradient instead of an
     * error. */
    bool allow_unused;
};

/*
 * The gradients of sum_k <seeds[k], outputs[k]> with respect to each of
 * inputs[0..n_in), as tensors of the outputs' tape in grads[0..n_in) (grads[i] has
 * inputs[i]'s shape and dtype; owned by the tape, valid until its reset).
 *
 * outputs: tensors recorded on one tape (nodes or constants; borrowed).
 * seeds: NULL, or n_out entries, each NULL or a tensor of that output's shape and
 *   dtype (a leaf, or a tensor of the same tape; borrowed); a NULL seed means 1
 *   and needs a one-element output. A seed that requires grad is tracked with
 *   create_graph: the gradients can be differentiated with respect to it.
 * inputs: leaves, or nodes of the outputs' tape (e.g. x inside D(x)), each
 *   requiring grad; borrowed. The gradient with respect to a node is that of the
 *   outputs through that node (the node's consumers), as tg_backward would put in
 *   its grad.
 * options: NULL for {create_graph = false, allow_unused = false}.
 *
 * A gradient that is identically zero (an input on the graph through ops whose
 * derivative there is zero, or an unused input with allow_unused) is a zero
 * constant of the tape. Without create_graph no returned gradient requires grad.
 * No leaf's grad buffer or gradient version changes; nodes' gradients of
 * tg_backward are not touched either. With anomaly mode on the tape, every op the
 * backward pass records is checked like any other op (TG_ERR_NUMERIC on a NaN or
 * Inf). In a no-grad scope the gradients are computed but require no grad, even
 * with create_graph.
 *
 * Returns TG_OK, or (every grads[i] NULL then):
 *   TG_ERR_NULL   outputs, inputs or grads NULL, n_out or n_in < 1, an entry NULL;
 *   TG_ERR_STALE  an output, seed or input recorded before its tape's last reset;
 *   TG_ERR_TAPE   an output that is a leaf, outputs (or a seed or an input) on
 *                 different tapes, an input that no output depends on (without
 *                 allow_unused; the message names it);
 *   TG_ERR_SHAPE  a seed whose shape differs from its output's, or no seed for an
 *                 output with more than one element;
 *   TG_ERR_DTYPE  a seed whose dtype differs from its output's;
 *   TG_ERR_STATE  an input that requires no grad, or an op on the way from the
 *                 outputs to the inputs without a differentiable VJP ("tg_grad: op
 *                 X has no differentiable VJP yet");
 *   TG_ERR_NOMEM, or the status of an op of the backward pass that failed
 *                 (TG_ERR_NUMERIC in anomaly mode).
 * The checks run before anything is recorded, except for the failure of an op
 * of the backward pass: the ops recorded until then stay on the tape, unused.
 */
enum tg_status tg_grad(int n_out, struct tg_tensor *const *outputs, struct tg_tensor *const *seeds,
                       int n_in, struct tg_tensor *const *inputs,
                       const struct tg_grad_options *options, struct tg_tensor **grads);

/*
 * The second-order check: for a function of leaf inputs (the type tg_gradcheck
 * takes), compares the Hessian-vector product H w that tg_grad computes (the
 * gradient of w . dL/dx, recorded with create_graph, for a fixed random w over
 * the inputs that require grad) with central differences of w . dL/dx(x), where
 * dL/dx comes from tg_backward (the ops' fast kernels, which tg_gradcheck checks).
 * L is the output for one element, else its projection onto a fixed random
 * vector, as in tg_gradcheck. It first checks that the first-order gradient tg_grad
 * records equals tg_backward's (TG_ERR_GRADCHECK naming the element if not).
 * Kinks (one-sided differences that disagree) are counted, not failed.
 * options: as tg_gradcheck's (NULL: defaults), but the default tolerances are
 * atol 1e-7, rtol 1e-5 when every input is f64 and atol 1e-4, rtol 1e-2
 * otherwise; eps defaults to 1e-6 (numerics in f64) or 1e-3. The numeric side
 * runs on f64 copies of the inputs unless options->no_promote (no fallback to
 * f32: fn must accept f64 inputs). report: as tg_gradcheck's (may be NULL), its
 * elements being those of H w.
 * The inputs' values are restored and their gradients zeroed on return.
 * Returns TG_OK when the check passed, TG_ERR_GRADCHECK when it ran and failed,
 * or the status of the error that stopped it: TG_ERR_NULL (fn or inputs NULL, an
 * input NULL, fn returned NULL without setting an error), fn's own status,
 * TG_ERR_STATE (an input is not a leaf; an op of fn without a differentiable
 * VJP, from tg_grad), TG_ERR_RANGE (more than 64 inputs require grad),
 * TG_ERR_NOMEM.
 */
enum tg_status tg_gradgradcheck(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n_inputs,
                                void *ctx, const struct tg_gradcheck_options *options,
                                struct tg_gradcheck_report *report);

/*
 * Hessian-vector products (Pearlmutter): for a recorded one-element output L and
 * inputs x_i with directions v_i, hv[i] = sum_j d^2 L / dx_i dx_j v_j, i.e. the
 * gradient of g . v where g = dL/dx is recorded with tg_grad(create_graph). The
 * cost is that of recording the backward pass as ops plus one reverse walk over
 * it, never an n x n matrix. Works for models: pass every parameter as an input.
 *
 * output: a one-element tensor of a tape (borrowed). inputs: as tg_grad's.
 * v: n_in tensors (borrowed), v[i] of inputs[i]'s shape and dtype (leaves or
 *   tensors of the tape; a v that requires grad is tracked with create_graph).
 * options: create_graph makes hv differentiable again (third order);
 *   allow_unused as tg_grad's for inputs L does not depend on. An input on which
 *   L depends only linearly gets a zero hv. NULL: both off.
 * hv: out, n_in tensors of the tape (owned by it, valid until its reset).
 * Inside a no-grad scope of the tape hv has the same values and requires no grad
 * (the scope is lifted for the recorded first gradient alone).
 * Errors (every hv[i] NULL): TG_ERR_NULL (hv, inputs, v, an entry, output; n_in <
 * 1), TG_ERR_SHAPE / TG_ERR_DTYPE (a v unlike its input), TG_ERR_STALE, and every
 * error of tg_grad, with the message naming tg_hvp.
 */
enum tg_status tg_hvp(struct tg_tensor *output, int n_in, struct tg_tensor *const *inputs,
                      struct tg_tensor *const *v, const struct tg_grad_options *options,
                      struct tg_tensor **hv);

/* The largest input tg_hessian accepts: its Hessian takes 8 n^2 bytes (128 MiB). */
#define TG_HESSIAN_MAX_NUMEL 4096

/*
 * The dense Hessian of fn's one-element output with respect to `input`, as a new
 * owned f64 leaf of shape input.shape + input.shape (H[i..., j...] = d^2 f /
 * dx_i dx_j) in *out_hessian: one tg_hvp-like sweep per input element (row k is H
 * e_k). fn (the type tg_gradcheck takes) is called once, with a copy of `input`
 * that requires grad; every op it records on the way to the input needs a
 * differentiable VJP. info (may be NULL) gets H's structure as tg_jacobian
 * reports a Jacobian's (diagonal for a sum of functions of single elements,
 * block-diagonal for a sum over independent rows, ...), n_sweeps = numel.
 * Errors (*out_hessian = NULL): TG_ERR_NULL (fn, input, out_hessian),
 * TG_ERR_RANGE for an input of more than TG_HESSIAN_MAX_NUMEL elements (the
 * message names the size; nothing is allocated) or of rank above TG_MAX_DIM / 2,
 * TG_ERR_SHAPE when fn's output has more than one element, fn's own error,
 * tg_grad's errors (named tg_hessian), TG_ERR_NOMEM.
 */
enum tg_status tg_hessian(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                          struct tg_tensor **out_hessian, struct tg_jacobian_info *info);

/*
 * Forward mode: the Jacobian-vector products jv[k] = sum_i d outputs[k] / d
 * inputs[i] . v[i], each of outputs[k]'s shape and dtype, as tensors of the
 * outputs' tape in jv[0..n_out) (owned by the tape, valid until its reset).
 * Computed by transposing the VJP (engine/jvp.c): g(u) = J^T u is recorded with
 * tg_grad(create_graph) for a zero cotangent u per output, and J v is the
 * gradient of <g(u), v> with respect to u, a second tg_grad. With the forward
 * pass, a JVP step costs 1.6 to 2 tg_grad steps on two MLPs (docs/jacobian.md
 * has the measurement); both recorded passes stay on the tape until its reset.
 * Every op on the way needs a differentiable VJP.
 *
 * outputs: tensors recorded on one tape (nodes or constants; borrowed). An
 *   output that requires no grad gets zeros.
 * inputs: as tg_grad's (leaves or nodes of the tape, each requiring grad).
 * v: n_in tensors (borrowed), v[i] of inputs[i]'s shape and dtype (leaves, or
 *   tensors of the outputs' tape); a v that requires grad is tracked with
 *   create_graph (J v is linear in it).
 * options: create_graph makes jv differentiable again (with respect to the
 *   inputs and to v); allow_unused gives zeros for an input that no output
 *   depends on instead of an error. NULL: both off. In a no-grad scope jv is
 *   computed as outside it, but requires no grad.
 *
 * Returns TG_OK, or (every jv[k] NULL then):
 *   TG_ERR_NULL   jv, outputs, inputs or v NULL, n_out or n_in < 1, an entry NULL;
 *   TG_ERR_STALE  an output, input or v recorded before its tape's last reset;
 *   TG_ERR_TAPE   an output that is a leaf, outputs (or a v or an input) on
 *                 different tapes, an input that no output depends on (without
 *                 allow_unused);
 *   TG_ERR_SHAPE / TG_ERR_DTYPE  a v unlike its input;
 *   TG_ERR_STATE  an input that requires no grad, an op without a differentiable
 *                 VJP (from tg_grad);
 *   TG_ERR_NOMEM, or the status of an op of the recorded passes that failed.
 * Messages name tg_jvp. The checks run before anything is recorded.
 */
enum tg_status tg_jvp(int n_out, struct tg_tensor *const *outputs, int n_in,
                      struct tg_tensor *const *inputs, struct tg_tensor *const *v,
                      const struct tg_grad_options *options, struct tg_tensor **jv);

#ifdef __cplusplus
}
#endif
#endif
