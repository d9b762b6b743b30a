/*
 * tapegrad/trace.h - the chain rule, step by step, with real numbers.
 *
 * tg_backward_trace runs exactly the sweep of tg_backward and records what each
 * step did: the upstream gradient dDiv/dy of the node, and for each of its
 * inputs z the local derivative dy/dz, the contribution dy/dz * dDiv/dy added
 * into dDiv/dz and the running sum of dDiv/dz after the addition (an input that
 * feeds several nodes receives several contributions). tg_trace_print writes it
 * in the notation of the backpropagation tutorial (docs/backprop.md).
 *
 * Scalar steps (the node and its inputs hold one element each) record numbers;
 * tensor steps record shapes and Euclidean norms. Tensors are numbered as in
 * tg_graph_dot: v1, v2, ... op results, x1, ... leaves, c1, ... constants.
 */
#ifndef TAPEGRAD_TRACE_H
#define TAPEGRAD_TRACE_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-slot local derivatives kept for an input that fills several slots. */
#define TG_TRACE_SLOTS 4

/* One distinct input of a step's node. */
struct tg_trace_input {
    const struct tg_tensor *tensor; /* borrowed; only compared, never read, by the trace */
    enum tg_graph_kind kind;
    int id; /* number within its kind, as in tg_graph_dot */
    int rank;
    int64_t shape[TG_MAX_DIM]; /* rank entries, then zeros */
    int uses;                  /* node input slots holding this tensor (2 for x * x) */
    bool gets_grad;            /* false when it needs no gradient: nothing was added */
    int nth;                   /* this was the nth contribution to it in the sweep (from 1) */
    double local;   /* scalar step: d(node)/d(input), all slots together; NaN otherwise */
    double contrib; /* scalar: the amount added; tensor: its L2 norm */
    double total;   /* scalar: the input's gradient after adding; tensor: its L2 norm */
    uint64_t slots; /* bit k set: the node's input slot k holds this tensor (k < 64) */
    /* Scalar step: the local derivative through each slot holding this tensor,
     * in slot order (the first TG_TRACE_SLOTS; their sum is `local`): x * x at
     * x = 3 gives 3 and 3. */
    double local_slots[TG_TRACE_SLOTS];
    /* Tensor steps: d(node)/d(input) classified as tg_graph_jacobian does, when
     * jacobian_classified (false beyond TG_GRAPH_JACOBIAN_MAX entries: then only
     * its rows and cols are set). */
    bool jacobian_classified;
    struct tg_jacobian_info jacobian;
};

/* One node of the sweep, in sweep order (the root first). */
struct tg_trace_step {
    const struct tg_tensor *node; /* borrowed, only compared */
    int op;                       /* the node's op: an enum tg_op value (ops.h) */
    const char *op_name;          /* its name, e.g. "add" (static: valid for the program's life) */
    /* its VJP in one line as this node applies it (matmul's follows its transpose
     * flags), in the op's letters, e.g. "da += dy; db += dy"; owned by the trace.
     * tg_trace_print writes it in the tensors' names ("dw += dv1; ...") */
    const char *rule;
    const char *operands; /* the letters: inputs in slot order, "->", output: "a b -> y" (static) */
    bool elementwise;     /* output element i depends on element i of each input alone */
    int id;
    int rank;
    int64_t shape[TG_MAX_DIM]; /* rank entries, then zeros */
    bool scalar;               /* the node and all its inputs hold one element */
    double value;              /* scalar: the node's value; tensor: its L2 norm */
    double upstream;           /* scalar: dDiv/d(node); tensor: its L2 norm */
    int n_params;              /* plain-number parameters of the op (tg_tensor_op_params) */
    double params[TG_MAX_OP_PARAMS];
    int n_inputs; /* distinct inputs */
    struct tg_trace_input *inputs;
};

struct tg_trace {
    int64_t n_steps;
    struct tg_trace_step *steps;
};

/*
 * tg_backward(root, seed) that also records the trace into *out (owned by the
 * caller: free it with tg_trace_free). The gradients it computes are exactly
 * those of tg_backward. The totals of leaves include what they held before the
 * sweep (leaves accumulate until tg_tensor_zero_grad).
 * On failure *out is NULL and the status is that of tg_backward, or
 * TG_ERR_NOMEM while recording (the gradients may then be complete or not).
 */
enum tg_status tg_backward_trace(struct tg_tensor *root, const struct tg_tensor *seed,
                                 struct tg_trace **out);

/*
 * Writes the trace to out, one block per step, in the tutorial's notation:
 *     dDiv/dz += dy/dz * dDiv/dy = 0.235 * -0.755 = -0.1774   (dDiv/dz = -0.1774)
 * The root is called Div unless names names it; other tensors are called by
 * names, else v3 / x1 / c2. names may be NULL; its tensors are only compared.
 * Returns TG_ERR_NULL (trace, out) or TG_ERR_IO, else TG_OK.
 */
enum tg_status tg_trace_print(const struct tg_trace *trace, FILE *out,
                              const struct tg_graph_names *names);

/* Frees a trace. NULL is a no-op. */
void tg_trace_free(struct tg_trace *trace);

#ifdef __cplusplus
}
#endif
#endif
