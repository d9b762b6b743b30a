/*
 * tapegrad/custom_op.h - ops defined at run time: your own forward and backward,
 * recorded like any op of the table.
 *
 * You describe the op once (struct tg_custom_op_def: name, arity, shape rule,
 * forward, backward, optionally a differentiable VJP and a context saved in the
 * tape), register it, and record it with tg_custom_op_call. Its nodes are nodes
 * like those of built-in ops: tg_backward, tg_backward_apply, tg_gradcheck,
 * tg_jacobian, anomaly mode (a NaN its backward writes is reported with its
 * registered name), tg_graph_dot, tg_backward_trace, the stale-handle and NULL
 * checks of every op, and, when it has a differentiable VJP, tg_grad and the
 * higher-order calls. tg_tensor_op of such a node is a value >= TG_OP_COUNT
 * (the same for every node of the op), which tg_op_name, tg_op_formula,
 * tg_op_vjp and tg_op_arity accept. docs/custom-ops.md walks through a complete example
 * (examples/custom_op.c). This is tapegrad's torch.autograd.Function /
 * jax.custom_vjp.
 *
 * Registered ops live until the process ends (there is no unregistering: nodes
 * of any tape may point at them). Register before recording, from one thread
 * at a time or several (registration is serialised); recording a registered
 * op is as thread-safe as any op (one tape per thread).
 */
#ifndef TAPEGRAD_CUSTOM_OP_H
#define TAPEGRAD_CUSTOM_OP_H

#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_CUSTOM_OP_MAX_INPUTS 8   /* arity is 1..this */
#define TG_CUSTOM_OP_MAX_PARAMS 2   /* plain-number parameters per call */
#define TG_CUSTOM_OP_MAX_NAME   63  /* bytes of a name, [A-Za-z0-9_] */
#define TG_CUSTOM_OP_MAX_COUNT  256 /* ops registered in a process */

/* A registered op (opaque; valid until the process ends). */
struct tg_custom_op;

/* What every callback of an op is given about one node. All borrowed: valid
 * during the call. */
struct tg_custom_op_args {
    int n_in;                    /* the op's arity */
    struct tg_tensor *const *in; /* the inputs: leaves or tensors of the node's tape */
    /* The node (forward: write tg_tensor_data(out); backward: read its value), or
     * NULL in the shape rule and context_bytes, which run before it has a value. */
    struct tg_tensor *out;
    const double *params; /* n_params values given to tg_custom_op_call */
    int n_params;
    /* The node's context: context_bytes(args) bytes in the tape's arena (64-byte
     * aligned, not zeroed), which forward may fill and backward and vjp_graph
     * read; valid until the tape's reset. NULL when the op has none. */
    void *ctx;
    void *user; /* the def's user pointer */
};

struct tg_custom_op_def {
    /* Required: 1..TG_CUSTOM_OP_MAX_NAME bytes of letters, digits and '_', not the
     * name of a built-in op or of an op registered before. Copied. */
    const char *name;
    int arity;    /* required: 1..TG_CUSTOM_OP_MAX_INPUTS */
    int n_params; /* 0..TG_CUSTOM_OP_MAX_PARAMS */
    /* Optional one-line texts shown by the DOT pictures and the trace ("y =
     * log(1 + e^x)", "dx += dy * sigmoid(x)"); copied. NULL: "custom op". */
    const char *formula;
    const char *vjp;
    /* Optional shape rule: checks the inputs' shapes (and params) and sets *rank
     * (0..TG_MAX_DIM) and shape[0..rank) of the output, or returns an error
     * status, with a message set by tg_set_error ("name: ..."). NULL: every
     * input must have the shape of input 1 (else TG_ERR_SHAPE), which the output
     * has. The inputs have one dtype (the engine checks); the output has it. */
    enum tg_status (*shape)(const struct tg_custom_op_args *a, int *rank, int64_t *shape);
    /* Required: writes the output's value (tg_tensor_data(a->out), numel
     * elements of the dtype) from the inputs. Cannot fail: check in the shape
     * rule. Must not record ops or change the inputs. */
    void (*forward)(const struct tg_custom_op_args *a);
    /* Required: the vector-Jacobian product. dy is the gradient of the output
     * (its shape and dtype). For every input i that needs a gradient, dx[i] is
     * that input's gradient buffer (its shape and dtype): ADD the product into
     * it (+=). dx[i] is NULL for an input that needs none. Cannot fail; must not
     * record ops. */
    void (*backward)(const struct tg_custom_op_args *a, const void *dy, void *const *dx);
    /* Optional, for tg_grad and higher order: the same product recorded as ops
     * on T, as the descriptors of built-in ops do (docs/design.md, "Ops"): for
     * every i with need[i], store in dx[i] a tensor of input i's shape and dtype
     * on T (or NULL for a zero gradient); return TG_OK or the failed op's
     * status. NULL: tg_grad fails with TG_ERR_STATE ("op NAME has no
     * differentiable VJP yet") on a graph through this op. */
    enum tg_status (*vjp_graph)(struct tg_tape *T, const struct tg_custom_op_args *a,
                                struct tg_tensor *dy, const bool *need, struct tg_tensor **dx);
    /* Optional: the bytes of context a node needs (a->out is NULL; the inputs
     * and params are set). NULL or 0: none (a->ctx NULL). */
    size_t (*context_bytes)(const struct tg_custom_op_args *a);
    /* Output element i depends on element i of each input alone (the DOT
     * picture, the trace and anomaly mode's messages describe it so). */
    bool elementwise;
    void *user; /* given to every callback as a->user; borrowed for the process's life */
};

/*
 * Registers def under def->name and stores the op's handle in *op.
 * Returns TG_OK, or (*op untouched):
 *   TG_ERR_NULL   def or op NULL, a NULL name, forward or backward;
 *   TG_ERR_RANGE  arity outside 1..TG_CUSTOM_OP_MAX_INPUTS, n_params outside
 *                 0..TG_CUSTOM_OP_MAX_PARAMS, TG_CUSTOM_OP_MAX_COUNT ops registered;
 *   TG_ERR_VALUE  a name that is empty, too long, has other characters than
 *                 letters, digits and '_', or is a built-in op's;
 *   TG_ERR_STATE  a name registered before (the message names it);
 *   TG_ERR_NOMEM.
 */
enum tg_status tg_custom_op_register(const struct tg_custom_op_def *def,
                                     const struct tg_custom_op **op);
/* The op registered under name, or NULL (TG_ERR_NULL for a NULL name,
 * TG_ERR_VALUE for a name nothing is registered under). */
const struct tg_custom_op *tg_custom_op_find(const char *name);
/* The op's registered name ("?" for NULL). */
const char *tg_custom_op_name(const struct tg_custom_op *op);

/*
 * Records op on T with inputs in[0..arity) and params[0..n_params) (NULL when
 * the op takes none): a node of T, or NULL with the error set, as for any op:
 * TG_ERR_NULL (T, op, in, or params when the op takes some; a NULL input keeps
 * the cause of the op that made it), TG_ERR_VALUE (op is not a registered op's
 * handle), TG_ERR_STALE, TG_ERR_TAPE, TG_ERR_DTYPE (inputs of different dtypes),
 * the shape rule's status, TG_ERR_NOMEM, and TG_ERR_NUMERIC in anomaly mode
 * (a NaN or Inf in the output, named by the op's name).
 */
struct tg_tensor *tg_custom_op_call(struct tg_tape *T, const struct tg_custom_op *op,
                                    struct tg_tensor *const *in, const double *params);

#ifdef __cplusplus
}
#endif

#endif
