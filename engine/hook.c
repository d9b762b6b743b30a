/*
 * engine/hook.c - gradient hooks (tapegrad/hook.h): keeping them, and the
 * backward sweep that calls them.
 *
 * A tensor's hooks are one struct tg__hooks: an array in the order added. A
 * leaf points at its own (struct tg__leaf's hooks); a tape keeps its hooked
 * nodes in a uthash table keyed by the node's address, emptied at reset. The
 * plain sweep (engine/sweep.c) asks tg__hooks_on once and otherwise never looks
 * here, so that hooks cost nothing where there are none.
 *
 * A leaf's hooks run when its gradient is complete for the sweep, that is after
 * the backward of the last node, in sweep order, that passes it a gradient. The
 * sweep cannot know which node that is while it walks (a node is reached only
 * once a consumer readies it), so, when some leaf has hooks, a first walk marks
 * the nodes the sweep will reach, exactly as the sweep readies them, and notes
 * in each hooked leaf the last reached consumer; the sweep then runs the leaf's
 * hooks right after that consumer's backward.
 */
#include <stdio.h>
#include "hook-impl.h"
#include "tape-impl.h"
#include "tapegrad/hook.h"

#define HASH_NONFATAL_OOM    1
#define uthash_malloc(sz)    tg__malloc(sz)
#define uthash_free(ptr, sz) tg__free(ptr)
#include <uthash.h>

struct hook {
    int64_t id; /* 0: removed while a hook was running (compacted later) */
    tg_hook_fn fn;
    tg_hook_replace_fn replace; /* exactly one of fn and replace is set */
    void *user;
};

struct tg__hooks {
    struct tg_tensor *t; /* the hooked tensor; the key of a tape's table */
    UT_hash_handle hh;
    struct hook *v; /* n entries (removed ones included), room for cap */
    int n, cap;
    /* leaves: the last consumer the latest hooked sweep found, and its number */
    const struct tg_tensor *last;
    uint64_t last_sweep;
};

/* Leaves that have a hook, in the whole process: when 0, a sweep needs no
 * first walk for leaves (and a tape without hooked nodes sweeps plainly). */
static _Atomic uint64_t leaves_hooked;
static _Atomic int64_t next_id;
/* Hook calls running on this thread: a removal then only marks the entry, so
 * that the array the sweep walks stays put. */
static _Thread_local int running;

bool tg__hooks_on(const struct tg_tape *T)
{
    return T->node_hooks || T->n_recompute || tg__gen_load(&leaves_hooked);
}

static int live_count(const struct tg__hooks *h)
{
    int c = 0;
    for (int k = 0; h && k < h->n; k++) c += h->v[k].id != 0;
    return c;
}

/* Drops the removed entries (never while a hook runs). */
static void compact(struct tg__hooks *h)
{
    int j = 0;
    for (int k = 0; k < h->n; k++)
        if (h->v[k].id) h->v[j++] = h->v[k];
    h->n = j;
}

static struct tg__hooks *hooks_of(const struct tg_tensor *t)
{
    if (t->kind == TG_KIND_LEAF) return tg__leaf_of_c(t)->hooks;
    struct tg__hooks *h = NULL;
    HASH_FIND_PTR(t->tape->node_hooks, &t, h);
    return h;
}

static void hooks_free(struct tg__hooks *h)
{
    tg__free(h->v);
    tg__free(h);
}

/* Unlinks and frees t's hooks, which hold no live entry. */
static void hooks_drop(struct tg_tensor *t, struct tg__hooks *h)
{
    if (t->kind == TG_KIND_LEAF) {
        tg__leaf_of(t)->hooks = NULL;
        atomic_fetch_sub_explicit(&leaves_hooked, 1, memory_order_relaxed);
    } else {
        HASH_DEL(t->tape->node_hooks, h);
    }
    hooks_free(h);
}

/* t's hooks, made empty and linked if it had none; NULL with TG_ERR_NOMEM. */
static struct tg__hooks *hooks_get(struct tg_tensor *t, const char *fn)
{
    struct tg__hooks *h = hooks_of(t);
    if (h) return h;
    if (!(h = tg__calloc(1, sizeof *h))) return NULL;
    h->t = t;
    if (t->kind == TG_KIND_LEAF) {
        tg__leaf_of(t)->hooks = h;
        atomic_fetch_add_explicit(&leaves_hooked, 1, memory_order_relaxed);
        return h;
    }
    HASH_ADD_PTR(t->tape->node_hooks, t, h);
    if (!h->hh.tbl) {
        tg__free(h);
        tg__fail(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    return h;
}

/* The checks tg_hook_add, tg_hook_remove and tg_hook_count share. */
static enum tg_status check_tensor(const char *fn, const struct tg_tensor *t)
{
    if (!t) return tg__null_input(fn, "t");
    if (tg__check_live(fn, "t", t)) return TG_ERR_STALE;
    if (t->kind == TG_KIND_CONST)
        return tg__fail(TG_ERR_TAPE, "%s: t is a constant, which has no gradient", fn);
    if (t->kind == TG_KIND_NODE) return owner_check(t->tape, fn);
    return TG_OK;
}

static int64_t hook_add(const char *fn, struct tg_tensor *t, struct hook e, bool have_fn)
{
    if (check_tensor(fn, t)) return 0;
    if (!have_fn) {
        tg__fail(TG_ERR_NULL, "%s: fn is NULL", fn);
        return 0;
    }
    struct tg__hooks *h = hooks_get(t, fn);
    if (!h) return 0;
    if (!running) compact(h);
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 2;
        struct hook *v = cap < INT32_MAX / 2 ? tg__realloc(h->v, (size_t)cap * sizeof *v) : NULL;
        if (!v) {
            if (!live_count(h) && !running) hooks_drop(t, h);
            tg__fail(TG_ERR_NOMEM, "%s: out of memory", fn);
            return 0;
        }
        h->v = v;
        h->cap = cap;
    }
    e.id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
    h->v[h->n++] = e;
    return e.id;
}

int64_t tg_hook_add(struct tg_tensor *t, tg_hook_fn fn, void *user)
{
    return hook_add("tg_hook_add", t, (struct hook){.fn = fn, .user = user}, fn != NULL);
}

int64_t tg_hook_add_replace(struct tg_tensor *t, tg_hook_replace_fn fn, void *user)
{
    return hook_add("tg_hook_add_replace", t, (struct hook){.replace = fn, .user = user},
                    fn != NULL);
}

enum tg_status tg_hook_remove(struct tg_tensor *t, int64_t id)
{
    static const char fn[] = "tg_hook_remove";
    enum tg_status st = check_tensor(fn, t);
    if (st) return st;
    struct tg__hooks *h = hooks_of(t);
    int k = 0;
    while (h && k < h->n && (id <= 0 || h->v[k].id != id)) k++;
    if (!h || k == h->n)
        return tg__fail(TG_ERR_RANGE, "%s: t has no hook with id %lld", fn, (long long)id);
    h->v[k].id = 0;
    if (!running) {
        compact(h);
        if (h->n == 0) hooks_drop(t, h);
    }
    return TG_OK;
}

int tg_hook_count(const struct tg_tensor *t)
{
    if (!t || t->kind == TG_KIND_CONST || tg__check_live("tg_hook_count", "t", t)) return 0;
    return live_count(hooks_of(t));
}

void tg__hooks_leaf_free(struct tg__leaf *l)
{
    if (l->hooks) hooks_drop(&l->t, l->hooks);
}

void tg__hooks_tape_clear(struct tg_tape *T)
{
    struct tg__hooks *h, *tmp;
    HASH_ITER(hh, T->node_hooks, h, tmp)
    {
        HASH_DEL(T->node_hooks, h);
        hooks_free(h);
    }
}

/* ---- the hooked sweep ---- */

/* Copies the replacement r into t's gradient g, after checking it. */
static enum tg_status take_replacement(const struct tg_tensor *t, void *g,
                                       const struct tg_tensor *r)
{
    static const char fn[] = "gradient hook";
    char a[160], b[160];
    if (tg__check_live(fn, "the replacement gradient", r)) return TG_ERR_STALE;
    bool same = r->rank == t->rank;
    for (int i = 0; same && i < t->rank; i++) same = r->shape[i] == t->shape[i];
    if (!same) {
        tg_tensor_format_shape(a, sizeof a, t->rank, t->shape);
        tg_tensor_format_shape(b, sizeof b, r->rank, r->shape);
        return tg__fail(TG_ERR_SHAPE,
                        "%s: the replacement gradient has shape %s, but the hooked tensor "
                        "has shape %s",
                        fn, b, a);
    }
    if (r->dtype != t->dtype)
        return tg__fail(TG_ERR_DTYPE,
                        "%s: the replacement gradient is %s, but the hooked "
                        "tensor is %s",
                        fn, tg_dtype_name((enum tg_dtype)r->dtype),
                        tg_dtype_name((enum tg_dtype)t->dtype));
    if (r->data != g) memmove(g, r->data, (size_t)t->numel * tg__esize(t->dtype));
    return TG_OK;
}

/* Calls one hook with the view of gradient g of t; a failure without a
 * message of its own gets one. */
static enum tg_status call_hook(struct tg_tensor *t, struct tg_tensor *view, void *g,
                                const struct hook *e)
{
    uint64_t gen = tg__gen_load(&tg__fail_gen);
    struct tg_tensor *r = NULL;
    enum tg_status st = e->fn ? e->fn(t, view, e->user) : e->replace(t, view, &r, e->user);
    if (st == TG_OK && r) return take_replacement(t, g, r);
    if (st != TG_OK && tg__gen_load(&tg__fail_gen) == gen)
        tg__fail(st, "backward: gradient hook %lld stopped the sweep (%s)", (long long)e->id,
                 tg_status_str(st));
    return st;
}

/* Runs the hooks of t (gradient g) that were there when the call began. */
static enum tg_status run_hooks(struct tg__hooks *h, struct tg_tensor *t, void *g)
{
    struct tg__leaf view;
    memset(&view, 0, sizeof view);
    view.t.data = g;
    view.t.numel = t->numel;
    view.t.dtype = t->dtype;
    view.t.rank = t->rank;
    view.t.kind = TG_KIND_LEAF;
    view.borrowed = true; /* on the stack: no recording pins it */
    view.t.in = view.t.in2;
    memcpy(view.t.shape, t->shape, sizeof t->shape);
    enum tg_status st = TG_OK;
    const int n = h->n; /* hooks added from here on run from the next sweep */
    running++;
    for (int k = 0; k < n && !st; k++) {
        struct hook e = h->v[k]; /* a copy: a hook that adds one may move the array */
        if (e.id) st = call_hook(t, &view.t, g, &e);
    }
    running--;
    return st;
}

/* Marks the nodes the sweep from root will reach and notes in each hooked leaf
 * its last reached consumer, for sweep number s = the number this walk takes
 * plus one. */
static void find_last_consumers(struct tg_tape *T, struct tg_tensor *root)
{
    uint64_t mark = ++T->sweep;
    root->sweep = mark;
    for (struct tg_tensor *n = root; n; n = n->prev) {
        if (n->sweep != mark) continue;
        for (uint32_t i = 0; i < n->n_in; i++) {
            struct tg_tensor *x = n->in[i];
            if (!x->requires_grad) continue;
            if (x->kind == TG_KIND_NODE) {
                x->sweep = mark;
            } else {
                struct tg__hooks *h = tg__leaf_of(x)->hooks;
                if (h) {
                    h->last = n;
                    h->last_sweep = mark + 1;
                }
            }
        }
    }
}

/* The hooks of the leaves whose last consumer in sweep s is n. */
static enum tg_status leaf_hooks(struct tg_tensor *n, uint64_t s)
{
    enum tg_status st = TG_OK;
    for (uint32_t i = 0; i < n->n_in && !st; i++) {
        struct tg_tensor *x = n->in[i];
        struct tg__hooks *h = x->kind == TG_KIND_LEAF ? tg__leaf_of(x)->hooks : NULL;
        if (!h || !x->requires_grad || h->last != n || h->last_sweep != s) continue;
        h->last_sweep = 0; /* once, also for x * x */
        st = run_hooks(h, x, x->grad);
    }
    return st;
}

enum tg_status tg__hook_sweep(struct tg_tape *T, struct tg_tensor *root,
                              const struct tg_tensor *seed, tg__sweep_hook obs, void *ctx)
{
    enum tg_status st = TG_OK;
    const bool leaves = tg__gen_load(&leaves_hooked) != 0;
    if (leaves) find_last_consumers(T, root);
    uint64_t s = tg__sweep_start(T, root, seed);
    T->sweep_status = TG_OK;
    for (struct tg_tensor *n = root; n && !st; n = n->prev) {
        if (n->sweep != s) continue;
        tg__sweep_ready(T, n, s);
        struct tg__hooks *h = NULL;
        if (T->node_hooks) HASH_FIND_PTR(T->node_hooks, &n, h);
        if (h && (st = run_hooks(h, n, n->grad))) break;
        if (obs) obs(n, false, ctx);
        n->backward(n);
        if ((st = T->sweep_status)) break; /* a recomputation failed (engine/recompute.c) */
        if (obs) obs(n, true, ctx);
        if (T->anomaly && (st = tg__anomaly_backward(n))) return st;
        if (leaves) st = leaf_hooks(n, s);
    }
    if (st) T->sweep++; /* a stopped sweep leaves no node's gradient current */
    return st;
}
