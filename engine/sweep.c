/*
 * engine/sweep.c - the backward sweep: one reverse walk over the recording that
 * applies each reached node's vector-Jacobian product (docs/design.md).
 */
#include "hook-impl.h"
#include "tape-impl.h"

/* ---- backward ---- */

bool tg__node_grad_current(const struct tg_tensor *t)
{
    /* sweep 0: not reached by any sweep (sweep numbers start at 1) */
    return t->sweep != 0 && t->epoch == t->tape->epoch && t->sweep == t->tape->sweep;
}

enum tg_status tg__check_root(const char *fn, struct tg_tensor *root, const struct tg_tensor *seed)
{
    char a[160], b[160];
    if (!root) return tg__null_input(fn, "root"); /* names a failed op's cause */
    /* stale first: the kind of a stale handle is that of whatever node now
     * holds its slot */
    if (tg__is_stale(root))
        return tg__fail(TG_ERR_STALE, "%s: root %s", fn,
                        tg__stale_why(root, "was recorded before the tape was reset"));
    if (seed && tg__is_stale(seed))
        return tg__fail(TG_ERR_STALE, "%s: seed %s", fn,
                        tg__stale_why(seed, "was recorded before its tape was reset"));
    if (root->kind != TG_KIND_NODE)
        return tg__fail(TG_ERR_TAPE, "%s: root was not recorded by an op (it is a %s)", fn,
                        root->kind == TG_KIND_LEAF ? "leaf" : "constant");
    if (!root->requires_grad)
        return tg__fail(TG_ERR_TAPE,
                        "%s: root needs no gradient (no input requires "
                        "grad, or it was computed in a no-grad scope)",
                        fn);
    if (!seed) {
        if (root->numel != 1) {
            tg_tensor_format_shape(a, sizeof a, root->rank, root->shape);
            return tg__fail(TG_ERR_SHAPE,
                            "%s: root of shape %s is not a scalar; pass a seed gradient", fn, a);
        }
        return TG_OK;
    }
    if (seed->dtype != root->dtype)
        return tg__fail(TG_ERR_DTYPE, "%s: seed is %s but root is %s", fn,
                        tg_dtype_name((enum tg_dtype)seed->dtype),
                        tg_dtype_name((enum tg_dtype)root->dtype));
    bool same = seed->rank == root->rank;
    for (int i = 0; same && i < root->rank; i++) same = seed->shape[i] == root->shape[i];
    if (!same) {
        tg_tensor_format_shape(a, sizeof a, seed->rank, seed->shape);
        tg_tensor_format_shape(b, sizeof b, root->rank, root->shape);
        return tg__fail(TG_ERR_SHAPE, "%s: seed shape %s differs from root shape %s", fn, a, b);
    }
    return TG_OK;
}

/* Gives a reached node a zeroed gradient for sweep s: inline for one element
 * (n->grad points at it from the recording on), else carved from the reserve
 * (or reused from an earlier sweep of this recording). */
static inline void grad_ready(struct tg_tape *T, struct tg_tensor *n, uint64_t s)
{
    n->sweep = s;
    if (n->numel <= 1) {
        n->sgrad.d = 0;
        return;
    }
    size_t bytes = grad_bytes(n);
    if (!n->grad) {
        n->grad = T->grad_cur; /* the reserve covers every node recorded so far */
        T->grad_cur += bytes;
        T->grad_left -= bytes;
    }
    memset(n->grad, 0, (size_t)n->numel * tg__esize(n->dtype));
}

/* Reserves gradient memory for every node recorded since the last reservation,
 * so that the sweep itself never allocates. The new reserve replaces the rest of
 * the old one (which stays unused until the reset). */
enum tg_status tg__reserve_grads(struct tg_tape *T)
{
    if (T->grad_pending == 0) return TG_OK;
    unsigned char *block = arena_alloc(&T->data, T->grad_pending + T->grad_left, 64);
    if (!block) return tg_last_status();
    T->grad_cur = block;
    T->grad_left += T->grad_pending;
    T->grad_pending = 0;
    return TG_OK;
}

/* Readies the inputs of a reached node n that need a gradient; a leaf's
 * gradient version counts the change its backward is about to make. */
static inline void ready_inputs(struct tg_tape *T, struct tg_tensor *n, uint64_t s)
{
    /* in and n_in in locals: the stores below could alias n as far as the
     * compiler knows, and would make it load both again for every input. */
    struct tg_tensor *const *in = n->in;
    const uint32_t n_in = n->n_in;
    for (uint32_t i = 0; i < n_in; i++) {
        struct tg_tensor *x = in[i];
        if (!x->requires_grad) continue;
        if (x->kind != TG_KIND_NODE)
            tg__leaf_of(x)->grad_version++; /* no constant requires grad */
        else if (x->sweep != s)
            grad_ready(T, x, s);
    }
}

/* The sweep itself, after the checks and with the gradient memory reserved:
 * nothing in it can fail but anomaly mode's checks. */
uint64_t tg__sweep_start(struct tg_tape *T, struct tg_tensor *root, const struct tg_tensor *seed)
{
    uint64_t s = ++T->sweep;
    grad_ready(T, root, s);
    if (seed)
        memcpy(root->grad, seed->data, (size_t)root->numel * tg__esize(root->dtype));
    else
        tg__store(root->grad, root->dtype, 0, 1.0);
    return s;
}

void tg__sweep_ready(struct tg_tape *T, struct tg_tensor *n, uint64_t s)
{
    ready_inputs(T, n, s);
}

enum tg_status tg__sweep(struct tg_tape *T, struct tg_tensor *root, const struct tg_tensor *seed,
                         tg__sweep_hook hook, void *ctx)
{
    enum tg_status st;
    /* gradient hooks (engine/hook.c) walk in a loop of their own */
    if (tg__hooks_on(T)) return tg__hook_sweep(T, root, seed, hook, ctx);
    uint64_t s = tg__sweep_start(T, root, seed);

    /* One reverse walk: creation order is topological, so every consumer of a node
     * comes before it. A node is reached when a reached consumer readied it (zeroed
     * its gradient and stamped it with this sweep); then its own backward adds its
     * vector-Jacobian product into its inputs. Only op nodes are on the list
     * (link_and_run), so every node walked has a backward kernel. The observed
     * loop is separate so that the plain sweep stays as fast as without hooks. */
    if (!hook) {
        for (struct tg_tensor *n = root; n; n = n->prev) {
            if (n->sweep != s) continue;
            ready_inputs(T, n, s);
            n->backward(n);
            if (T->anomaly && (st = tg__anomaly_backward(n))) return st;
        }
        return TG_OK;
    }
    for (struct tg_tensor *n = root; n; n = n->prev)
        if (n->sweep == s) {
            ready_inputs(T, n, s);
            hook(n, false, ctx);
            n->backward(n);
            hook(n, true, ctx);
            if (T->anomaly && (st = tg__anomaly_backward(n))) return st;
        }
    return TG_OK;
}

/* TG_ERR_STATE when a leaf that an op of the sweep from root takes as input had
 * its requires-grad changed after that op was recorded (the op decided then
 * whether its result needs a gradient). Walks the recording only when some
 * leaf's requires-grad changed since its first op, and then reads only the
 * nodes the sweep will reach (marked with a sweep number of their own), so that
 * a leaf freed after it fed an unrelated part of the recording is never read. */
enum tg_status tg__check_leaf_flags(struct tg_tensor *root, const char *fn)
{
    struct tg_tape *T = root->tape;
    if (!T->rec_started || tg__gen_load(&tg__rg_gen) == T->rec_rg) return TG_OK;
    /* a node was recorded with the requires-grad flags of tg__rg_gen's value at
     * the latest checkpoint at or before it (or at the first op): walking back,
     * pass the checkpoints newest first. Without all checkpoints, a node only
     * counts as recorded after the first op. */
    const struct rg_checkpoint *c = T->ck_lost ? NULL : T->ck;
    uint64_t seen = c ? c->rg : T->rec_rg;
    uint64_t mark = ++T->sweep; /* the real sweep takes the next number */
    root->sweep = mark;
    for (const struct tg_tensor *n = T->last; n; n = n->prev) {
        /* checkpoints count whether or not n is reached */
        bool reached = n->sweep == mark;
        for (uint32_t k = 0; reached && k < n->n_in; k++) {
            struct tg_tensor *x = n->in[k];
            if (x->kind == TG_KIND_NODE) {
                x->sweep = mark;
            } else if (x->kind == TG_KIND_LEAF && tg__leaf_of_c(x)->rg_gen > seen) {
                T->sweep++; /* no node's gradient reads as current: none is */
                return tg__fail(TG_ERR_STATE,
                                "%s: requires-grad of input %u of %s was changed after the op "
                                "was recorded; set it before recording (reset the tape and "
                                "record again)",
                                fn, k + 1, n->desc->name);
            }
        }
        if (c && n == c->node) {
            c = c->older;
            seen = c ? c->rg : T->rec_rg;
        }
    }
    return TG_OK;
}

enum tg_status tg__backward_ex(struct tg_tensor *root, const struct tg_tensor *seed,
                               tg__sweep_hook hook, void *ctx)
{
    enum tg_status st = tg__check_root("backward", root, seed);
    if (st) return st;
    if ((st = owner_check(root->tape, "backward"))) return st;
    if ((st = tg__check_leaf_flags(root, "backward"))) return st;
    /* Memory first: after this point nothing can fail for lack of it, so a
     * failure leaves every leaf gradient as it was. */
    if ((st = tg__reserve_grads(root->tape))) return st;
    if (!(st = tg__sweep(root->tape, root, seed, hook, ctx))) tg__cause_consumed();
    return st;
}

enum tg_status tg_backward(struct tg_tensor *root, const struct tg_tensor *seed)
{
    return tg__backward_ex(root, seed, NULL, NULL);
}
