/*
 * ops/detach.c - stop-gradient: a node that shares its input's value and passes
 * no gradient back (tg_detach; PyTorch's detach, JAX's stop_gradient).
 *
 * The descriptor asks the recorder for both halves: shares_input_value points
 * the node's data at the input's buffer instead of allocating and copying, and
 * stops_gradient records the node as needing no gradient whatever its input,
 * so the sweep never reaches it. Forward and backward therefore have nothing to
 * do; they exist because every node of the table has them (the DOT picture runs
 * backward for a scalar edge's local derivative, which comes out 0).
 *
 * Its uses: truncated backpropagation through time (the state carried from one
 * chunk of a sequence to the next is detached, examples/lstm_add.c), targets
 * computed from the model itself, straight-through tricks (x + detach(q - x)).
 */
#include "ops-impl.h"

/* y = x: the recorder already pointed y's data at x's buffer */
static void detach_fwd(struct tg_tensor *out)
{
    (void)out;
}

/* dx += 0: nothing flows back */
static void detach_bwd(struct tg_tensor *out)
{
    (void)out;
}

/* The differentiable VJP: identically zero, given as NULL. */
static enum tg_status detach_vjp(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    (void)T;
    (void)out;
    (void)dy;
    if (need[0]) dx[0] = NULL;
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_detach = {
    .op = TG_OP_DETACH,
    .name = "detach",
    .arity = 1,
    .formula = "y = x (the same buffer; no gradient flows back)",
    .vjp = "dx += 0",
    .shape = tg__shape_same,
    .forward = detach_fwd,
    .backward = detach_bwd,
    .elementwise = true,
    .vjp_graph = detach_vjp,
    .shares_input_value = true,
    .stops_gradient = true,
};

struct tg_tensor *tg_detach(struct tg_tape *T, struct tg_tensor *x)
{
    return tg__op_record(T, &tg_op_desc_detach, 1, &x, NULL, NULL);
}
