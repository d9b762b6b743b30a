/*
 * engine/grad.c - tg_grad: the backward pass recorded as ops, so that gradients
 * are tensors of the tape and can be differentiated again.
 *
 * tg_backward runs each node's fast kernel and adds numbers into buffers. Here
 * the same reverse walk (creation order is topological) keeps each node's
 * gradient as a tensor of the tape and asks the node's descriptor to record its
 * vector-Jacobian product as ops of the table (desc->vjp_graph). A node's
 * gradient is the sum of what its consumers send it; sums are recorded with the
 * engine's own descriptor grad_sum below (the engine calls no op of ops/, so it
 * cannot record an add), whose VJP passes the gradient through unchanged.
 *
 * Per tensor the walk keeps a slot in a hash map keyed by the tensor's address:
 *   dep     the tensor is a requested input or depends on one through nodes that
 *           require grad (a forward pass, oldest first);
 *   reached the tensor is on a path from an output to a requested input (a
 *           first reverse pass, which also checks that every op on such a path
 *           has a vjp_graph, before anything is recorded);
 *   g       its gradient so far (the second reverse pass, which records).
 */
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/grad.h"

/* ---- grad_sum: y = x1 + ... + xn, all of one shape (gradient accumulation) ---- */

static enum tg_status grad_sum_shape(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0];
    for (uint32_t k = 1; k < out->n_in; k++) {
        const struct tg_tensor *b = out->in[k];
        bool same = b->rank == a->rank;
        for (int d = 0; same && d < a->rank; d++) same = a->shape[d] == b->shape[d];
        if (!same) return tg__fail(TG_ERR_SHAPE, "grad_sum: inputs of different shapes");
    }
    out->rank = a->rank;
    memcpy(out->shape, a->shape, sizeof out->shape);
    return TG_OK;
}

/* The loops of grad_sum per element type: y = sum_k x_k, dx_k += dy. */
#define GRAD_SUM_LOOPS(T)                                                                          \
    static void grad_sum_fwd_##T(struct tg_tensor *out)                                            \
    {                                                                                              \
        T *y = out->data;                                                                          \
        const T *a = out->in[0]->data;                                                             \
        for (int64_t i = 0; i < out->numel; i++) y[i] = a[i];                                      \
        for (uint32_t k = 1; k < out->n_in; k++) {                                                 \
            const T *b = out->in[k]->data;                                                         \
            for (int64_t i = 0; i < out->numel; i++) y[i] += b[i];                                 \
        }                                                                                          \
    }                                                                                              \
    static void grad_sum_bwd_##T(struct tg_tensor *out)                                            \
    {                                                                                              \
        const T *g = out->grad;                                                                    \
        for (uint32_t k = 0; k < out->n_in; k++) {                                                 \
            struct tg_tensor *x = out->in[k];                                                      \
            if (!x->requires_grad) continue;                                                       \
            T *gx = x->grad;                                                                       \
            for (int64_t i = 0; i < out->numel; i++) gx[i] += g[i];                                \
        }                                                                                          \
    }
GRAD_SUM_LOOPS(float)
GRAD_SUM_LOOPS(double)

/* y = sum_k x_k (same shape and dtype: the gradients it adds are) */
static void grad_sum_forward(struct tg_tensor *out)
{
    if (out->dtype == TG_F64)
        grad_sum_fwd_double(out);
    else
        grad_sum_fwd_float(out);
}

/* dx_k += dy */
static void grad_sum_backward(struct tg_tensor *out)
{
    if (out->dtype == TG_F64)
        grad_sum_bwd_double(out);
    else
        grad_sum_bwd_float(out);
}

static enum tg_status grad_sum_vjp_graph(struct tg_tape *T, struct tg_tensor *out,
                                         struct tg_tensor *dy, const bool *need,
                                         struct tg_tensor **dx)
{
    (void)T;
    for (uint32_t k = 0; k < out->n_in; k++)
        if (need[k]) dx[k] = dy;
    return TG_OK;
}

/* Not an op of the table (op -1, tg_tensor_op reports TG_OP_NONE): only tg_grad
 * records it. */
static const struct tg_op_desc grad_sum_desc = {
    .op = -1,
    .name = "grad_sum",
    .arity = -1,
    .formula = "y = x1 + ... + xn (a sum of gradients, recorded by tg_grad)",
    .vjp = "dxk += dy",
    .shape = grad_sum_shape,
    .forward = grad_sum_forward,
    .backward = grad_sum_backward,
    .elementwise = true,
    .vjp_graph = grad_sum_vjp_graph,
};

/* ---- the map: tensor -> slot ---- */

struct slot {
    const struct tg_tensor *key;
    struct tg_tensor *g;
    bool wanted, dep, reached;
    bool chain; /* a node collected for the walk */
};

struct map {
    struct slot *s;
    size_t cap, used; /* cap: a power of two, at least twice used */
};

static size_t hash_ptr(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

static struct slot *map_find(const struct map *m, const struct tg_tensor *t)
{
    for (size_t i = hash_ptr(t) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].key == t) return &m->s[i];
        if (!m->s[i].key) return NULL;
    }
}

static struct slot *map_put(struct map *m, const struct tg_tensor *t);

static bool map_grow(struct map *m)
{
    struct map n = {tg__calloc(m->cap * 2, sizeof *n.s), m->cap * 2, 0};
    if (!n.s) return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->s[i].key) *map_put(&n, m->s[i].key) = m->s[i];
    tg__free(m->s);
    *m = n;
    return true;
}

/* The slot of t, added (zeroed) when new; NULL only when growing failed. */
static struct slot *map_put(struct map *m, const struct tg_tensor *t)
{
    if (2 * (m->used + 1) > m->cap && !map_grow(m)) return NULL;
    size_t i = hash_ptr(t) & (m->cap - 1);
    while (m->s[i].key && m->s[i].key != t) i = (i + 1) & (m->cap - 1);
    if (!m->s[i].key) {
        m->s[i].key = t;
        m->used++;
    }
    return &m->s[i];
}

/* ---- checks ---- */

static enum tg_status check_seed(int k, const struct tg_tensor *y, const struct tg_tensor *s)
{
    char a[160], b[160];
    if (!s) {
        if (y->numel == 1) return TG_OK;
        tg_tensor_format_shape(a, sizeof a, y->rank, y->shape);
        return tg__fail(TG_ERR_SHAPE, "tg_grad: output %d of shape %s is not a scalar; pass a seed",
                        k, a);
    }
    if (tg__check_live("tg_grad", "a seed", s)) return TG_ERR_STALE;
    if (s->kind != TG_KIND_LEAF && s->tape != y->tape)
        return tg__fail(TG_ERR_TAPE, "tg_grad: seed %d is on a different tape", k);
    if (s->dtype != y->dtype)
        return tg__fail(TG_ERR_DTYPE, "tg_grad: seed %d is %s but output %d is %s", k,
                        tg_dtype_name((enum tg_dtype)s->dtype), k,
                        tg_dtype_name((enum tg_dtype)y->dtype));
    bool same = s->rank == y->rank;
    for (int d = 0; same && d < y->rank; d++) same = s->shape[d] == y->shape[d];
    if (same) return TG_OK;
    tg_tensor_format_shape(a, sizeof a, s->rank, s->shape);
    tg_tensor_format_shape(b, sizeof b, y->rank, y->shape);
    return tg__fail(TG_ERR_SHAPE, "tg_grad: seed %d of shape %s differs from output shape %s", k, a,
                    b);
}

static enum tg_status check_args(int n_out, struct tg_tensor *const *outputs,
                                 struct tg_tensor *const *seeds, int n_in,
                                 struct tg_tensor *const *inputs, struct tg_tensor **grads)
{
    char arg[32];
    if (!outputs || n_out < 1) return tg__fail(TG_ERR_NULL, "tg_grad: no outputs");
    if (!inputs || n_in < 1) return tg__fail(TG_ERR_NULL, "tg_grad: no inputs");
    if (!grads) return tg__fail(TG_ERR_NULL, "tg_grad: grads is NULL");
    for (int k = 0; k < n_out; k++) {
        struct tg_tensor *y = outputs[k];
        snprintf(arg, sizeof arg, "output %d", k);
        if (!y) return tg__null_input("tg_grad", arg);
        if (tg__check_live("tg_grad", arg, y)) return TG_ERR_STALE;
        if (y->kind == TG_KIND_LEAF)
            return tg__fail(TG_ERR_TAPE, "tg_grad: output %d is a leaf, not a tensor of a tape", k);
        if (y->tape != outputs[0]->tape)
            return tg__fail(TG_ERR_TAPE, "tg_grad: outputs 0 and %d are on different tapes", k);
        enum tg_status st = check_seed(k, y, seeds ? seeds[k] : NULL);
        if (st) return st;
    }
    for (int i = 0; i < n_in; i++) {
        const struct tg_tensor *x = inputs[i];
        snprintf(arg, sizeof arg, "input %d", i);
        if (!x) return tg__null_input("tg_grad", arg);
        if (tg__check_live("tg_grad", arg, x)) return TG_ERR_STALE;
        if (x->kind != TG_KIND_LEAF && x->tape != outputs[0]->tape)
            return tg__fail(TG_ERR_TAPE, "tg_grad: input %d is on a different tape", i);
        if (!x->requires_grad)
            return tg__fail(TG_ERR_STATE, "tg_grad: input %d requires no gradient", i);
    }
    return TG_OK;
}

/* ---- the walk ---- */

struct walk {
    struct tg_tape *T;
    struct map m;
    struct tg_tensor **nodes; /* newest first */
    size_t n;
    uint32_t max_in;
    bool *need;
    struct tg_tensor **dx;
};

static bool on_chain(const struct walk *w, const struct tg_tensor *t)
{
    const struct slot *s = map_find(&w->m, t);
    return s && s->chain;
}

/* Every node up to the newest output, newest first, each with a slot. (The
 * requested inputs have slots already: `chain` tells the nodes walked.) */
static enum tg_status collect(struct walk *w, int n_out, struct tg_tensor *const *outputs)
{
    struct tg_tensor *newest = NULL;
    for (int k = 0; k < n_out; k++) {
        struct tg_tensor *y = outputs[k];
        if (y->kind != TG_KIND_NODE || on_chain(w, y)) continue;
        /* not on the chain of the newest so far, which holds every older node */
        newest = y;
        for (struct tg_tensor *n = y; n && !on_chain(w, n); n = n->prev) {
            struct slot *s = map_put(&w->m, n);
            if (!s) return TG_ERR_NOMEM;
            s->chain = true;
            w->n++;
        }
    }
    if (w->n && !(w->nodes = tg__calloc(w->n, sizeof *w->nodes))) return TG_ERR_NOMEM;
    size_t i = 0;
    for (struct tg_tensor *n = newest; n; n = n->prev) {
        w->nodes[i++] = n;
        if (n->n_in > w->max_in) w->max_in = n->n_in;
    }
    w->need = tg__calloc(w->max_in + 1, sizeof *w->need);
    w->dx = tg__calloc(w->max_in + 1, sizeof *w->dx);
    return w->need && w->dx ? TG_OK : TG_ERR_NOMEM;
}

static bool is_dep(const struct walk *w, const struct tg_tensor *t)
{
    const struct slot *s = map_find(&w->m, t);
    return s && s->dep;
}

/* Which tensors depend on a requested input, oldest first. */
static void mark_dep(struct walk *w)
{
    for (size_t i = w->n; i-- > 0;) {
        struct tg_tensor *n = w->nodes[i];
        struct slot *s = map_find(&w->m, n);
        s->dep = s->wanted;
        for (uint32_t k = 0; !s->dep && n->requires_grad && k < n->n_in; k++)
            s->dep = is_dep(w, n->in[k]);
    }
}

/* need[k] for node n's inputs; whether any is set. */
static bool fill_need(struct walk *w, const struct tg_tensor *n)
{
    bool any = false;
    for (uint32_t k = 0; k < n->n_in; k++) any |= w->need[k] = is_dep(w, n->in[k]);
    return any;
}

/* Which tensors lie on a path from an output to a requested input; every op on
 * one must have a vjp_graph. Records nothing. */
static enum tg_status mark_reached(struct walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct tg_tensor *n = w->nodes[i];
        struct slot *s = map_find(&w->m, n);
        if (!s->reached || !s->dep || !fill_need(w, n)) continue;
        if (!n->desc->vjp_graph)
            return tg__fail(TG_ERR_STATE, "tg_grad: op %s has no differentiable VJP yet",
                            n->desc->name);
        for (uint32_t k = 0; k < n->n_in; k++)
            if (w->need[k]) map_find(&w->m, n->in[k])->reached = true;
    }
    return TG_OK;
}

/* s->g += c, recording a grad_sum when s already has a gradient. */
static enum tg_status accumulate(struct walk *w, struct slot *s, struct tg_tensor *c)
{
    if (!s->g) {
        s->g = c;
        return TG_OK;
    }
    struct tg_tensor *in[2] = {s->g, c};
    s->g = tg__op_record(w->T, &grad_sum_desc, 2, in, NULL, NULL);
    return s->g ? TG_OK : tg_last_status();
}

/* A VJP must give each input a gradient of its own shape and dtype. */
static enum tg_status check_dx(const struct tg_tensor *n, uint32_t k, const struct tg_tensor *d)
{
    const struct tg_tensor *x = n->in[k];
    bool same = d->rank == x->rank && d->dtype == x->dtype;
    for (int i = 0; same && i < x->rank; i++) same = d->shape[i] == x->shape[i];
    if (same) return TG_OK;
    char a[160], b[160];
    tg_tensor_format_shape(a, sizeof a, d->rank, d->shape);
    tg_tensor_format_shape(b, sizeof b, x->rank, x->shape);
    return tg__fail(TG_ERR_STATE, "tg_grad: the VJP of op %s gave input %u a gradient %s, not %s",
                    n->desc->name, k + 1, a, b);
}

/* The second reverse pass: records every VJP on a path. */
static enum tg_status record_vjps(struct walk *w)
{
    enum tg_status st;
    for (size_t i = 0; i < w->n; i++) {
        struct tg_tensor *n = w->nodes[i];
        struct slot *s = map_find(&w->m, n);
        if (!s->g || !s->reached || !s->dep || !fill_need(w, n)) continue;
        memset(w->dx, 0, w->max_in * sizeof *w->dx);
        if ((st = n->desc->vjp_graph(w->T, n, s->g, w->need, w->dx))) return st;
        for (uint32_t k = 0; k < n->n_in; k++) {
            if (!w->need[k] || !w->dx[k]) continue;
            if ((st = check_dx(n, k, w->dx[k])) ||
                (st = accumulate(w, map_find(&w->m, n->in[k]), w->dx[k])))
                return st;
        }
    }
    return TG_OK;
}

/* A tensor of T with the shape and dtype of like, filled with v. */
static struct tg_tensor *filled(struct tg_tape *T, const struct tg_tensor *like, double v)
{
    struct tg_tensor *c =
        tg_tape_constant(T, (enum tg_dtype)like->dtype, like->rank, like->shape, NULL);
    if (c && v != 0)
        for (int64_t i = 0; i < c->numel; i++) tg__store(c->data, c->dtype, i, v);
    return c;
}

/* What grads[i] returns for the gradient g: always a tensor of T, requiring no
 * grad without create_graph. */
static struct tg_tensor *result_of(struct tg_tape *T, struct tg_tensor *g,
                                   const struct tg_tensor *x, bool create_graph)
{
    if (!g) return filled(T, x, 0);
    if (g->kind != TG_KIND_LEAF && (create_graph || !g->requires_grad)) return g;
    if (create_graph && g->requires_grad) /* a seed leaf: a node, to stay differentiable */
        return tg__op_record(T, &grad_sum_desc, 1, &g, NULL, NULL);
    return tg_tape_constant(T, (enum tg_dtype)g->dtype, g->rank, g->shape, g->data);
}

static enum tg_status seed_outputs(struct walk *w, int n_out, struct tg_tensor *const *outputs,
                                   struct tg_tensor *const *seeds)
{
    for (int k = 0; k < n_out; k++) {
        struct slot *s = map_put(&w->m, outputs[k]);
        if (!s) return TG_ERR_NOMEM;
        s->reached = true;
        struct tg_tensor *c = seeds && seeds[k] ? seeds[k] : filled(w->T, outputs[k], 1);
        if (!c) return tg_last_status();
        enum tg_status st = accumulate(w, s, c);
        if (st) return st;
    }
    return TG_OK;
}

static enum tg_status run(struct walk *w, int n_out, struct tg_tensor *const *outputs,
                          struct tg_tensor *const *seeds, int n_in, struct tg_tensor *const *inputs,
                          const struct tg_grad_options *o, struct tg_tensor **grads)
{
    enum tg_status st;
    for (int i = 0; i < n_in; i++) {
        struct slot *s = map_put(&w->m, inputs[i]);
        if (!s) return TG_ERR_NOMEM;
        s->wanted = true;
    }
    if ((st = collect(w, n_out, outputs))) return st;
    /* inputs that are not nodes (leaves, constants) depend on themselves alone */
    for (int i = 0; i < n_in; i++) map_find(&w->m, inputs[i])->dep = true;
    mark_dep(w);
    for (int k = 0; k < n_out; k++) {
        struct slot *s = map_put(&w->m, outputs[k]);
        if (!s) return TG_ERR_NOMEM;
        s->reached = true;
    }
    if ((st = mark_reached(w))) return st;
    for (int i = 0; i < n_in; i++)
        if (!map_find(&w->m, inputs[i])->reached && !o->allow_unused)
            return tg__fail(TG_ERR_TAPE,
                            "tg_grad: input %d is not on the graph of the outputs (no output "
                            "depends on it; allow_unused gives it a zero gradient)",
                            i);
    if ((st = seed_outputs(w, n_out, outputs, seeds)) || (st = record_vjps(w))) return st;
    for (int i = 0; i < n_in; i++) {
        struct slot *s = map_find(&w->m, inputs[i]);
        if (!(grads[i] = result_of(w->T, s->reached ? s->g : NULL, inputs[i], o->create_graph)))
            return tg_last_status();
    }
    return TG_OK;
}

enum tg_status tg_grad(int n_out, struct tg_tensor *const *outputs, struct tg_tensor *const *seeds,
                       int n_in, struct tg_tensor *const *inputs,
                       const struct tg_grad_options *options, struct tg_tensor **grads)
{
    for (int i = 0; grads && i < n_in; i++) grads[i] = NULL;
    enum tg_status st = check_args(n_out, outputs, seeds, n_in, inputs, grads);
    if (st) return st;
    struct tg_grad_options o = options ? *options : (struct tg_grad_options){0};
    struct walk w = {.T = outputs[0]->tape};
    w.m.cap = 64;
    if (!(w.m.s = tg__calloc(w.m.cap, sizeof *w.m.s))) return TG_ERR_NOMEM;
    bool scope = !o.create_graph;
    if (scope && (st = tg_tape_no_grad_push(w.T))) scope = false;
    if (!st) st = run(&w, n_out, outputs, seeds, n_in, inputs, &o, grads);
    if (scope) tg_tape_no_grad_pop(w.T);
    tg__free(w.m.s);
    tg__free(w.nodes);
    tg__free(w.need);
    tg__free(w.dx);
    if (st) {
        for (int i = 0; i < n_in; i++) grads[i] = NULL;
        return st;
    }
    tg__cause_consumed();
    return TG_OK;
}
