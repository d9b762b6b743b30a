/*
 * engine/graph.c - the reachable graph of a node and its Graphviz DOT picture.
 *
 * The graph is collected without recursion: the tape's node list is in creation
 * order, which is topological, so one walk backwards from the root along it,
 * marking the inputs of every marked node, finds every reachable tensor (leaves
 * and constants are not on the list but are marked as inputs). A small
 * open-addressing hash table maps tensor pointers to their place.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "graph-impl.h"

/* ---- the pointer hash ---- */

static uint64_t ptr_hash(const void *p)
{
    return ((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull;
}

int64_t tg__graph_find(const struct tg__graph *g, const struct tg_tensor *t)
{
    if (!g->cap) return -1;
    for (uint64_t h = ptr_hash(t) & (uint64_t)(g->cap - 1);; h = (h + 1) & (uint64_t)(g->cap - 1)) {
        int64_t s = g->slot[h];
        if (!s) return -1;
        if (g->order[s - 1] == t) return s - 1;
    }
}

static void hash_put(struct tg__graph *g, int64_t k)
{
    uint64_t h = ptr_hash(g->order[k]) & (uint64_t)(g->cap - 1);
    while (g->slot[h]) h = (h + 1) & (uint64_t)(g->cap - 1);
    g->slot[h] = k + 1;
}

/* Rebuilds the table for capacity cap (a power of two > 2 n). */
static enum tg_status rehash(struct tg__graph *g, int64_t cap)
{
    int64_t *slot = tg__calloc((size_t)cap, sizeof *slot);
    if (!slot) return tg_last_status();
    tg__free(g->slot);
    g->slot = slot;
    g->cap = cap;
    for (int64_t k = 0; k < g->n; k++) hash_put(g, k);
    return TG_OK;
}

/* Appends t if it is new. */
static enum tg_status add(struct tg__graph *g, struct tg_tensor *t, int64_t *room)
{
    if (tg__graph_find(g, t) >= 0) return TG_OK;
    if (g->n == *room) {
        int64_t r = *room ? *room * 2 : 64;
        struct tg_tensor **o = tg__realloc(g->order, (size_t)r * sizeof *o);
        if (!o) return tg_last_status();
        g->order = o;
        *room = r;
    }
    g->order[g->n++] = t;
    if (2 * g->n > g->cap) return rehash(g, g->cap ? g->cap * 2 : 128);
    hash_put(g, g->n - 1);
    return TG_OK;
}

/* Puts the marked tensors in display order: op nodes in creation order, each
 * preceded by the leaves and constants it is the first to use; numbers them. */
static enum tg_status arrange(struct tg__graph *g, struct tg_tensor **ops, int64_t n_ops)
{
    struct tg_tensor **final = tg__calloc((size_t)g->n, sizeof *final);
    int *id = tg__calloc((size_t)g->n, sizeof *id);
    char *placed = tg__calloc((size_t)g->n, 1);
    if (!final || !id || !placed) goto fail;
    int64_t m = 0;
    int count[4] = {0, 0, 0, 0};
    for (int64_t k = n_ops - 1; k >= 0; k--) { /* ops[] is in reverse creation order */
        struct tg_tensor *t = ops[k];
        for (uint32_t i = 0; i < t->n_in; i++) {
            int64_t j = tg__graph_find(g, t->in[i]);
            if (placed[j] || t->in[i]->desc) continue;
            placed[j] = 1;
            int kind = tg_graph_kind(t->in[i]) == TG_GRAPH_CONST ? 2 : 1;
            id[m] = ++count[kind];
            final[m++] = t->in[i];
        }
        id[m] = ++count[0];
        final[m++] = t;
    }
    if (m == 0) { /* a lone leaf or constant */
        id[0] = 1;
        final[m++] = g->order[0];
    }
    tg__free(g->order);
    tg__free(placed);
    g->order = final;
    g->id = id;
    return rehash(g, g->cap);
fail:
    tg__free(final);
    tg__free(id);
    tg__free(placed);
    return tg_last_status();
}

enum tg_status tg__graph_build(struct tg__graph *g, const struct tg_tensor *root)
{
    memset(g, 0, sizeof *g);
    int64_t room = 0, n_ops = 0, ops_room = 0;
    struct tg_tensor **ops = NULL, *r = (struct tg_tensor *)root;
    enum tg_status st = add(g, r, &room);
    if (st) goto fail;
    for (struct tg_tensor *t = r->desc ? r : NULL; t; t = t->prev) {
        if (tg__graph_find(g, t) < 0) continue; /* recorded, but root does not use it */
        if (n_ops == ops_room) {
            ops_room = ops_room ? 2 * ops_room : 64;
            struct tg_tensor **o = tg__realloc(ops, (size_t)ops_room * sizeof *o);
            if (!o) {
                st = tg_last_status();
                goto fail;
            }
            ops = o;
        }
        ops[n_ops++] = t;
        for (uint32_t i = 0; i < t->n_in; i++)
            if ((st = add(g, t->in[i], &room))) goto fail;
    }
    st = arrange(g, ops, n_ops);
    if (st) goto fail;
    tg__free(ops);
    return TG_OK;
fail:
    tg__free(ops);
    tg__graph_free(g);
    return st;
}

void tg__graph_free(struct tg__graph *g)
{
    tg__free(g->order);
    tg__free(g->id);
    tg__free(g->slot);
    memset(g, 0, sizeof *g);
}

const char *tg_graph_name_of(const struct tg_graph_names *names, const struct tg_tensor *t)
{
    if (!names || !t) return NULL;
    for (int i = 0; i < names->n; i++)
        if (names->entries[i].tensor == t) return names->entries[i].name;
    return NULL;
}

enum tg_graph_kind tg_graph_kind(const struct tg_tensor *t)
{
    if (t->kind == TG_KIND_NODE) return TG_GRAPH_OP;
    if (t->kind == TG_KIND_CONST) return TG_GRAPH_CONST;
    return t->requires_grad ? TG_GRAPH_PARAM : TG_GRAPH_INPUT;
}

void tg__graph_label(const struct tg__graph *g, const struct tg_graph_names *names,
                     const struct tg_tensor *t, char *buf, size_t size)
{
    const char *nm = tg_graph_name_of(names, t);
    if (nm) {
        snprintf(buf, size, "%s", nm);
        return;
    }
    int64_t k = tg__graph_find(g, t);
    enum tg_graph_kind kind = tg_graph_kind(t);
    char p = kind == TG_GRAPH_OP ? 'v' : (kind == TG_GRAPH_CONST ? 'c' : 'x');
    snprintf(buf, size, "%c%d", p, k >= 0 ? g->id[k] : 0);
}

/* ---- local derivatives of scalar nodes ---- */

enum { LOCAL_MAX_IN = 16 };

union scalar_slot {
    double d;
    float f;
};

bool tg__local_derivs(struct tg_tensor *n, double *d, double *per_slot)
{
    if (!n->desc || n->numel != 1 || n->n_in > LOCAL_MAX_IN) return false;
    for (uint32_t i = 0; i < n->n_in; i++)
        if (n->in[i]->numel != 1) return false;
    union scalar_slot up, slot[LOCAL_MAX_IN];
    void *saved_grad[LOCAL_MAX_IN];
    uint8_t saved_rg[LOCAL_MAX_IN];
    int first[LOCAL_MAX_IN];
    /* a tensor in several slots reads through a copy of its struct in each later
     * slot, with a gradient of its own: one derivative per slot */
    struct tg_tensor shadow[LOCAL_MAX_IN], *orig[LOCAL_MAX_IN];
    for (uint32_t i = 0; i < n->n_in; i++) {
        first[i] = (int)i;
        for (uint32_t j = 0; j < i; j++)
            if (orig[j] == n->in[i]) {
                first[i] = (int)j;
                break;
            }
        struct tg_tensor *x = orig[i] = n->in[i];
        memset(&slot[i], 0, sizeof slot[i]);
        if (first[i] != (int)i) {
            shadow[i] = *x;
            shadow[i].grad = &slot[i];
            shadow[i].requires_grad = 1;
            n->in[i] = &shadow[i];
            continue;
        }
        saved_grad[i] = x->grad;
        saved_rg[i] = x->requires_grad;
        x->grad = &slot[i];
        x->requires_grad = 1;
    }
    void *node_grad = n->grad;
    n->grad = &up;
    tg__store(&up, n->dtype, 0, 1.0);
    n->desc->backward(n);
    n->grad = node_grad;
    for (uint32_t i = 0; i < n->n_in; i++) {
        double v = tg__load(&slot[i], orig[i]->dtype, 0);
        if (per_slot) per_slot[i] = v;
        d[i] = 0;
        d[first[i]] += v;
    }
    for (uint32_t i = n->n_in; i-- > 0;) {
        d[i] = d[first[i]];
        n->in[i] = orig[i];
        if (first[i] != (int)i) continue;
        orig[i]->grad = saved_grad[i];
        orig[i]->requires_grad = saved_rg[i];
    }
    return true;
}

/* ---- DOT ---- */

/* Writes s with DOT string escapes. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        fputc(*s, out);
    }
}

/* "[1, 2, 3]" of a buffer of numel elements (or one number for numel 1). */
static void put_values(FILE *out, const void *p, int dtype, int64_t numel)
{
    if (numel == 1) {
        fprintf(out, "%.6g", tg__load(p, dtype, 0));
        return;
    }
    fputc('[', out);
    for (int64_t i = 0; i < numel; i++)
        fprintf(out, "%s%.4g", i ? ", " : "", tg__load(p, dtype, i));
    fputc(']', out);
}

static const char *const kind_style[4] = {
    "shape=ellipse",
    "shape=box, style=\"filled,bold\", fillcolor=\"#ffe4b5\"",
    "shape=box, style=filled, fillcolor=\"#dbeafe\"",
    "shape=plaintext, fontcolor=\"#555555\"",
};
static const char *const kind_word[4] = {"", "param", "input", "const"};

/* "\nrule: dw += dv1 * x; ..." of op node t, in the graph's names (the first
 * 64 input slots renamed). */
static void put_rule(FILE *out, const struct tg__graph *g, const struct tg_graph_names *nm,
                     const struct tg_tensor *t)
{
    enum { SLOTS = 64 };
    char in[SLOTS][128], node[128], tmpl[TG_RULE_MAX], text[2 * TG_RULE_MAX];
    const char *in_names[SLOTS];
    uint32_t n = t->n_in < SLOTS ? t->n_in : SLOTS;
    for (uint32_t i = 0; i < n; i++) {
        tg__graph_label(g, nm, t->in[i], in[i], sizeof in[i]);
        in_names[i] = in[i];
    }
    tg__graph_label(g, nm, t, node, sizeof node);
    tg__rule_template(t, tmpl, sizeof tmpl);
    double params[TG_MAX_OP_PARAMS];
    int n_params = t->desc->params ? t->desc->params(t, params) : 0;
    tg__rule_render(tmpl, tg__rule_operands(t->desc), (int)n, in_names, node, n_params, params,
                    text, sizeof text);
    fputs("\\nrule: ", out);
    put_escaped(out, text);
}

static void put_node(FILE *out, const struct tg__graph *g, int64_t k,
                     const struct tg_graph_dot_options *o, int max_values)
{
    const struct tg_tensor *t = g->order[k];
    enum tg_graph_kind kind = tg_graph_kind(t);
    char name[128], shape[160];
    tg__graph_label(g, o ? o->names : NULL, t, name, sizeof name);
    tg_tensor_format_shape(shape, sizeof shape, t->rank, t->shape);
    fprintf(out, "  t%lld [%s, label=\"", (long long)k, kind_style[kind]);
    put_escaped(out, name);
    if (kind == TG_GRAPH_OP) {
        fprintf(out, " = %s\\n%s %s", t->desc->name, shape, tg_dtype_name(t->dtype));
        put_rule(out, g, o ? o->names : NULL, t);
    } else
        fprintf(out, "\\n%s %s %s", kind_word[kind], shape, tg_dtype_name(t->dtype));
    if (t->numel <= max_values) {
        fputs("\\nvalue ", out);
        put_values(out, t->data, t->dtype, t->numel);
        const void *gr = tg_tensor_grad(t);
        if (gr) {
            fputs("\\ngrad ", out);
            put_values(out, gr, t->dtype, t->numel);
        }
    }
    fputs("\"];\n", out);
}

/* "dense 1x6" or "J 50176x784 not classified" for input slot i of node t. */
void tg__jacobian_label(struct tg_tensor *t, uint32_t i, char *buf, size_t size)
{
    struct tg_jacobian_info info;
    if (tg__local_jacobian(t, i, &info) == TG_OK)
        tg__jacobian_format(&info, buf, size);
    else
        snprintf(buf, size, "J %lldx%lld not classified", (long long)t->numel,
                 (long long)t->in[i]->numel);
}

/* The edge label of input slot i of node t: the local derivative (scalar) or
 * the structure of d(t)/d(input). */
static void put_edge_label(FILE *out, const struct tg__graph *g, const struct tg_graph_names *nm,
                           struct tg_tensor *t, uint32_t i, const double *local, int uses)
{
    const struct tg_tensor *x = t->in[i];
    char tn[128], xn[128];
    tg__graph_label(g, nm, t, tn, sizeof tn);
    tg__graph_label(g, nm, x, xn, sizeof xn);
    if (local) {
        fputs("d", out);
        put_escaped(out, tn);
        fputs("/d", out);
        put_escaped(out, xn);
        fprintf(out, " = %.6g", local[i]);
    } else if (t->desc->stops_gradient) {
        fputs("no gradient (stopped)", out);
    } else {
        char j[160];
        tg__jacobian_label(t, i, j, sizeof j);
        fputs(j, out);
    }
    if (uses > 1) fprintf(out, " (used %dx)", uses);
}

static void put_edges(FILE *out, const struct tg__graph *g, int64_t k,
                      const struct tg_graph_names *nm)
{
    struct tg_tensor *t = g->order[k];
    double local[LOCAL_MAX_IN];
    bool scalar = tg__local_derivs(t, local, NULL);
    for (uint32_t i = 0; i < t->n_in; i++) {
        int uses = 1;
        bool dup = false;
        for (uint32_t j = 0; j < t->n_in; j++)
            if (j != i && t->in[j] == t->in[i]) {
                uses++;
                dup |= j < i;
            }
        if (dup) continue; /* one edge per distinct input */
        fprintf(out, "  t%lld -> t%lld [label=\"", (long long)tg__graph_find(g, t->in[i]),
                (long long)k);
        put_edge_label(out, g, nm, t, i, scalar ? local : NULL, uses);
        /* a dashed edge: the gradient does not come back along it (detach) */
        fputs(t->desc->stops_gradient ? "\", style=dashed];\n" : "\"];\n", out);
    }
}

enum tg_status tg_graph_dot(const struct tg_tensor *root, FILE *out,
                            const struct tg_graph_dot_options *opts)
{
    if (!root) return tg__null_input("tg_graph_dot", "root");
    if (!out) return tg__fail(TG_ERR_NULL, "tg_graph_dot: out is NULL");
    if (tg__check_input(root->tape, "tg_graph_dot", root)) return tg_last_status();
    struct tg__graph g;
    enum tg_status st = tg__graph_build(&g, root);
    if (st) return st;
    int max_values = opts && opts->max_values ? opts->max_values : 4;
    const struct tg_graph_names *nm = opts ? opts->names : NULL;
    fprintf(out, "digraph tapegrad {\n  rankdir=%s;\n",
            opts && opts->rankdir ? opts->rankdir : "LR");
    fputs("  node [fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n",
          out);
    for (int64_t k = 0; k < g.n; k++) put_node(out, &g, k, opts, max_values);
    for (int64_t k = 0; k < g.n; k++)
        if (g.order[k]->desc) put_edges(out, &g, k, nm);
    fputs("}\n", out);
    tg__graph_free(&g);
    if (ferror(out)) return tg__fail(TG_ERR_IO, "tg_graph_dot: writing the graph failed");
    return TG_OK;
}
