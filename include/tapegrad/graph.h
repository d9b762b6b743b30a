/*
 * tapegrad/graph.h - pictures of a recorded graph (Graphviz DOT).
 *
 * tg_graph_dot writes everything reachable from a node as a DOT digraph: one box
 * per tensor with its op, shape, value (small tensors) and, after a backward
 * sweep, its gradient; one edge per input with the local derivative (scalar
 * graphs) or the structure of the Jacobian (tensors). Render it with
 *     dot -Tsvg graph.dot -o graph.svg
 *
 * Tensors are numbered as in the chain-rule trace (trace.h): op results v1, v2,
 * ... in the order they were recorded, leaves x1, x2, ... and tape constants
 * c1, c2, ... in the order they are first used. A name table replaces those
 * numbers with names of your choosing.
 */
#ifndef TAPEGRAD_GRAPH_H
#define TAPEGRAD_GRAPH_H

#include <stdio.h>
#include "jacobian.h"
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A name for a tensor (both borrowed). */
struct tg_graph_name {
    const struct tg_tensor *tensor;
    const char *name;
};

/* A mapping tensor -> name: n entries (borrowed; looked up linearly, so keep it
 * to the tensors you want to see named, typically parameters and inputs). */
struct tg_graph_names {
    const struct tg_graph_name *entries;
    int n;
};

/* The name given to t in names, or NULL (names or t NULL, or not listed). */
const char *tg_graph_name_of(const struct tg_graph_names *names, const struct tg_tensor *t);

/* How a tensor appears in a graph. */
enum tg_graph_kind {
    TG_GRAPH_OP = 0,    /* the result of an op */
    TG_GRAPH_PARAM = 1, /* a leaf with requires-grad: a parameter */
    TG_GRAPH_INPUT = 2, /* a leaf without requires-grad: an input */
    TG_GRAPH_CONST = 3  /* a constant on a tape */
};
enum tg_graph_kind tg_graph_kind(const struct tg_tensor *t); /* t not NULL */

struct tg_graph_dot_options {
    const struct tg_graph_names *names; /* may be NULL */
    /* Show values (and gradients) of tensors with at most this many elements;
     * 0 picks 4; negative shows none. */
    int max_values;
    /* Graphviz rankdir: "LR" (default when NULL), "BT", "TB", "RL". */
    const char *rankdir;
};

/*
 * Writes the DOT digraph of every tensor reachable from root to out.
 * Leaves with requires-grad (parameters) are filled boxes, other leaves (inputs)
 * plain boxes, tape constants grey plain text, op results ellipses. An edge from
 * input to op is labelled, for a scalar op, with its local derivative
 * d(op)/d(input) at the recorded values (computed by running the op's own
 * backward rule with a unit upstream gradient, so it is right for every op);
 * for tensors with the Jacobian's structure and shape: "diagonal" for
 * elementwise ops on equal shapes, "broadcast-reduce" for an input that was
 * broadcast, "dense" otherwise. The edge into a node that stops the gradient
 * (tg_detach) is dashed, and labelled "no gradient (stopped)" for tensors.

 * for tensors with the Jacobian's class as tg_graph_jacobian computes it
 * ("block-diagonal 6x4, 2 blocks of 3x2, nnz 12", "diagonal 6x6", "dense 1x6"),
 * or "J 50176x784 not classified" beyond TG_GRAPH_JACOBIAN_MAX entries. An op
 * node's box shows its rule (tg_graph_rule) in the graph's names.
 * Walks the graph without recursion. Does not change any value or gradient.
 * opts may be NULL. Not thread-safe with respect to the tape (like ops).
 * Errors: TG_ERR_NULL (root, out), TG_ERR_STALE (root predates a reset),
 * TG_ERR_NOMEM, TG_ERR_IO (writing failed).
 */
enum tg_status tg_graph_dot(const struct tg_tensor *root, FILE *out,
                            const struct tg_graph_dot_options *opts);

/* ---- an interactive page of the graph and the backward sweep ---- */

struct tg_trace; /* tapegrad/trace.h */

struct tg_graph_html_options {
    const struct tg_graph_names *names; /* may be NULL */
    const char *title;                  /* the heading, e.g. the expression; NULL: "graph" */
    /* The graph as Graphviz drew it: the output of `dot -Tsvg` run on what
     * tg_graph_dot(root, ..., {names}) wrote (its nodes are titled t0, t1, ...,
     * which the page's script finds). NULL: the page draws the graph itself with a
     * simple layered layout (inputs left, root right). */
    const char *svg;
    /* Where the "read the tutorial" links point: docs/backprop.md's URL or path;
     * NULL: "docs/backprop.md" (relative to the page). */
    const char *docs_url;
    /* The seed the trace's sweep used, for the numeric check of a non-scalar root
     * (the check differentiates sum(seed * root)); NULL: ones (a scalar root). */
    const struct tg_tensor *seed;
    int max_values; /* values and gradients kept per tensor; 0 picks 64 */
    int max_check;  /* elements of each leaf checked by central differences; 0 picks 16 */
};

/*
 * Writes a self-contained HTML page (inline CSS, SVG and script; no network) of
 * the graph of root and of the backward sweep recorded in trace, which must be a
 * tg_backward_trace of the same root: step by step, the forward pass fills in
 * the values node by node, then the sweep visits the nodes in its order and shows
 * for each the upstream gradient, the op's formula and VJP rule (as the trace
 * recorded them), and for each input the local derivative (scalar steps) or the
 * Jacobian's structure and shapes (tensor steps), the product and the running
 * sum. At the end every leaf that requires grad shows its gradient beside a
 * central-difference estimate, with the verdict of tg_gradcheck's comparison:
 * agree, kink, not finite or disagree. The page keeps up to max_values values
 * per tensor (shown on click) and checks the first max_check elements per leaf.
 * The check re-runs the recorded forward rules with a leaf element moved by
 * +-h (h = 1e-6 max(1, |x|) in f64, 1e-3 max(1, |x|) in f32) and then once more
 * at the recorded values, so values end as they were for deterministic ops (an
 * op drawing random numbers, e.g. dropout, draws new ones); gradients are not
 * touched. opts may be NULL.
 * Errors: TG_ERR_NULL (root, trace, out), TG_ERR_STALE, TG_ERR_MISMATCH (trace
 * is not of root; seed's shape differs from root's), TG_ERR_FORMAT (svg holds no
 * <svg element), TG_ERR_NOMEM, TG_ERR_IO (writing failed).
 */
enum tg_status tg_graph_html(struct tg_tensor *root, const struct tg_trace *trace, FILE *out,
                             const struct tg_graph_html_options *opts);

/* The most entries (output elements x input elements) tg_graph_jacobian, the
 * DOT edges and the trace classify; a larger Jacobian is reported as not
 * classified. */
#define TG_GRAPH_JACOBIAN_MAX 65536

/*
 * The Jacobian of the op result `node` with respect to its input `slot`, at
 * the recorded values, classified into *info exactly as tg_jacobian does
 * (tg_jacobian_classify: zero, diagonal, block-diagonal, dense). It is
 * computed by running the op's own backward rule once per output element with
 * a one-hot upstream gradient on temporary buffers (info->n_sweeps of them), so
 * it holds for every op; every value and gradient is left as it was. The DOT
 * edges and the trace print this classification. Errors: TG_ERR_NULL (node,
 * info), TG_ERR_STALE (node predates a reset), TG_ERR_STATE (a leaf or a
 * constant), TG_ERR_RANGE (slot out of range, or the Jacobian has more than
 * TG_GRAPH_JACOBIAN_MAX entries: info->rows and info->cols are then set),
 * TG_ERR_NOMEM. Not thread-safe with respect to the tape.
 */
enum tg_status tg_graph_jacobian(struct tg_tensor *node, int slot, struct tg_jacobian_info *info);

/* The longest rule text, NUL included, that a descriptor writes (longer ones are cut). */
#define TG_RULE_MAX 256

/*
 * The backward rule (vector-Jacobian product) of the op result `node`, in one
 * line, as the op applies it to this node: matmul's, for one, depends on its
 * transpose flags ("dA += dY B" for Y = A B^T). The operands are called
 * in_names[i] (input slot i) and the node out_name; a NULL in_names, a NULL
 * entry or a NULL out_name keeps the op's own letter (docs/ops.md, e.g. "a",
 * "y"). The gradient of a name n is written dn: for node v1 = mul(w, b) with
 * in_names {"w", "b"} and out_name "v1": "dw += dv1 * b; db += dv1 * w".
 * Writes at most size bytes into buf, NUL-terminated when size > 0 (buf may be
 * NULL when size is 0), and returns the length of the whole text, as snprintf.
 * Errors (returns -1): TG_ERR_NULL (node; buf with size > 0), TG_ERR_STALE
 * (node predates its tape's reset), TG_ERR_STATE (node is a leaf or constant).
 * Reads the node's parameters only; changes nothing.
 */
int tg_graph_rule(const struct tg_tensor *node, const char *const *in_names, const char *out_name,
                  char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
