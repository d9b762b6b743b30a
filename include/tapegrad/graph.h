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

#ifdef __cplusplus
}
#endif
#endif
