/*
 * engine/graph-impl.h - the reachable graph of a node, shared by the DOT writer
 * (graph.c) and the chain-rule trace (trace.c). Never installed.
 */
#ifndef TG_GRAPH_IMPL_H
#define TG_GRAPH_IMPL_H

#include "engine-impl.h"
#include "tapegrad/graph.h"
#include "tapegrad/jacobian.h"

/* Every tensor reachable from a root, numbered per kind (see graph.h). */
struct tg__graph {
    int64_t n;                /* tensors in order: op nodes in creation order, */
    struct tg_tensor **order; /*   each preceded by its first-seen leaves/constants */
    int *id;                  /* (n) number within its kind, from 1 */
    int64_t cap;              /* hash table: pointer -> index into order */
    int64_t *slot;            /* (cap) index + 1, 0 when empty */
};

/* Collects the graph of root. TG_ERR_NOMEM (message set) on failure. */
enum tg_status tg__graph_build(struct tg__graph *g, const struct tg_tensor *root);
void tg__graph_free(struct tg__graph *g);
/* Index of t in g->order, or -1. */
int64_t tg__graph_find(const struct tg__graph *g, const struct tg_tensor *t);
/* Writes t's display name (from names, else "v3" / "x1" / "c2") into buf. */
void tg__graph_label(const struct tg__graph *g, const struct tg_graph_names *names,
                     const struct tg_tensor *t, char *buf, size_t size);

/* Local derivatives of a node whose value and inputs hold one element each:
 * d[i] = d(n)/d(in[i]) summed over the slots holding the same tensor (so x*x
 * gives 2x in both slots), and, when per_slot is not NULL, per_slot[i] = the
 * derivative through slot i alone (x*x: x and x). Runs n's backward rule with a
 * unit upstream gradient on temporary gradient buffers (a repeated input is
 * read through a copy of its struct in its later slots) and restores
 * everything. Returns false when n is not such a node (then d is untouched). d
 * and per_slot have n_in entries. */
bool tg__local_derivs(struct tg_tensor *n, double *d, double *per_slot);

/* The Jacobian of node n with respect to input slot, at the recorded values,
 * classified into info by tg_jacobian_classify (engine/localjac.c): n's backward
 * run once per output element on temporary buffers, everything restored.
 * TG_ERR_RANGE, with nothing recorded and info->rows/cols set, when J has more
 * than TG_GRAPH_JACOBIAN_MAX entries; TG_ERR_NOMEM (recorded). */
enum tg_status tg__local_jacobian(struct tg_tensor *n, uint32_t slot,
                                  struct tg_jacobian_info *info);
/* "block-diagonal 6x4, 2 blocks of 3x2, nnz 12", "diagonal 6x6", "dense 1x6",
 * "dense 6x3, nnz 6", "zero 2x2": the one wording of a classification. */
int tg__jacobian_format(const struct tg_jacobian_info *info, char *buf, size_t size);
/* tg__jacobian_format of input slot i of node t, or "J 50176x784 not
 * classified" (too large, or out of memory) (engine/graph.c). */
void tg__jacobian_label(struct tg_tensor *t, uint32_t i, char *buf, size_t size);

/* ---- rules (engine/rule.c) ---- */
/* Node n's rule with the descriptor's letters: desc->rule's text, else desc->vjp. */
void tg__rule_template(const struct tg_tensor *n, char *buf, size_t size);
/* tmpl with the first n_names operand letters of spec replaced by in_names
 * (NULL array or entry: kept) and the output's by out_name (NULL: kept), as
 * whole words, d<letter> becoming d<name>; the first n_params parameter names
 * (after ";" in spec) by params' values (%.6g). snprintf's contract. */
int tg__rule_render(const char *tmpl, const char *spec, int n_names, const char *const *in_names,
                    const char *out_name, int n_params, const double *params, char *buf,
                    size_t size);

#endif
