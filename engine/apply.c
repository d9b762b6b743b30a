/*
 * engine/apply.c - tg_backward_apply: the backward sweep that updates the listed
 * leaves in place as their gradients become final.
 */
#include <math.h>
#include "hook-impl.h"
#include "tape-impl.h"

/* ---- backward that updates leaves in place (tg_backward_apply) ----
 * Each listed leaf gets a state (struct tg__apply) hung on its apply field. Before
 * the sweep: the inputs of every recorded node are counted against the listed
 * leaves; a leaf with one consumer whose op can fold the update (linear: W and
 * b; matmul: one operand) is marked so, and that op's backward writes
 * value = beta value + alpha g itself, e.g. as the GEMM's alpha and beta. Every
 * other leaf's gradient is pointed at zeroed scratch memory for the sweep and
 * applied after it. The leaves' own gradient buffers are never touched. */

static void apply_release(const struct tg_apply *list, size_t n)
{
    for (size_t k = 0; k < n; k++) tg__leaf_of(list[k].leaf)->apply = NULL;
}

/* Checks entry k and hangs state a on its leaf (apply already set: listed twice,
 * or held by another update in progress). */
static enum tg_status apply_claim(const struct tg_apply *e, size_t k, struct tg__apply *a)
{
    static const char fn[] = "tg_backward_apply";
    struct tg_tensor *x = e->leaf;
    if (!x) return tg__fail(TG_ERR_NULL, "%s: entry %zu: leaf is NULL", fn, k);
    if (tg__is_stale(x) || (x->kind == TG_KIND_LEAF && tg__leaf_of(x)->freed))
        return tg__fail(TG_ERR_STALE, "%s: entry %zu %s", fn, k,
                        tg__stale_why(x, "was recorded before its tape was reset"));
    if (x->kind != TG_KIND_LEAF)
        return tg__fail(TG_ERR_TAPE, "%s: entry %zu is not a leaf (it is a tape %s)", fn, k,
                        x->kind == TG_KIND_NODE ? "node" : "constant");
    if (!x->requires_grad || !x->grad)
        return tg__fail(TG_ERR_STATE, "%s: entry %zu does not require grad", fn, k);
    if (!isfinite(e->alpha) || !isfinite(e->beta))
        return tg__fail(TG_ERR_VALUE, "%s: entry %zu: alpha %g and beta %g must be finite", fn, k,
                        e->alpha, e->beta);
    if (tg__leaf_of(x)->apply)
        return tg__fail(TG_ERR_VALUE, "%s: entry %zu repeats a leaf listed before it", fn, k);
    memset(a, 0, sizeof *a);
    a->alpha = e->alpha;
    a->beta = e->beta;
    a->leaf = x;
    tg__leaf_of(x)->apply = a;
    return TG_OK;
}

/* Counts, for every listed leaf, the inputs of recorded nodes that are it, and
 * notes the last-recorded such node. Only the states in [a, a + n) count. */
static void apply_count_uses(struct tg_tape *T, struct tg__apply *a, size_t n)
{
    for (struct tg_tensor *nd = T->last; nd; nd = nd->prev)
        for (uint32_t i = 0; i < nd->n_in; i++) {
            struct tg_tensor *x = nd->in[i];
            struct tg__apply *s = x->kind == TG_KIND_LEAF ? tg__leaf_of(x)->apply : NULL;
            if (s >= a && s < a + n && s->uses++ == 0) {
                s->node = nd; /* going back, the first seen is the last recorded */
                s->slot = i;
            }
        }
}

/* Marks the updates that their one consumer folds into its backward. */
static void apply_plan(struct tg_tape *T, struct tg__apply *a, size_t n)
{
    /* One-element leaves never fold (no op that folds takes a rank-0 input), so
     * a scalar graph is not scanned. Nothing folds in anomaly mode, where a
     * sweep that fails must leave every value as it was. */
    bool scan = false;
    for (size_t k = 0; k < n; k++) scan |= a[k].leaf->rank > 0;
    if (!scan || T->anomaly || tg__hooks_on(T)) return; /* hooks: every g is seen */
    apply_count_uses(T, a, n);
    for (size_t k = 0; k < n; k++) {
        struct tg__apply *s = &a[k];
        const struct tg_op_desc *d = s->uses == 1 ? s->node->desc : NULL;
        s->fold = d && d->can_fold && d->can_fold(s->node, s->slot);
    }
}

/* value = beta value + alpha g over n elements (g NULL: zero) */
#define APPLY_LOOP(T)                                                                              \
    static void apply_##T(T *restrict v, const T *restrict g, int64_t n, T alpha, T beta)          \
    {                                                                                              \
        if (g)                                                                                     \
            for (int64_t i = 0; i < n; i++) v[i] = beta * v[i] + alpha * g[i];                     \
        else if (beta != 1)                                                                        \
            for (int64_t i = 0; i < n; i++) v[i] = beta * v[i];                                    \
    }
APPLY_LOOP(float)
APPLY_LOOP(double)

enum tg_status tg_backward_apply(struct tg_tensor *root, const struct tg_tensor *seed,
                                 const struct tg_apply *list, size_t n)
{
    static const char fn[] = "tg_backward_apply";
    enum tg_status st = tg__check_root(fn, root, seed);
    if (st) return st;
    if ((st = owner_check(root->tape, fn)) || (st = tg__check_leaf_flags(root, fn))) return st;
    if (n && !list) return tg__fail(TG_ERR_NULL, "%s: list is NULL but n is %zu", fn, n);
    struct tg_tape *T = root->tape;
    if (n > SIZE_MAX / sizeof(struct tg__apply))
        return tg__fail(TG_ERR_RANGE, "%s: n %zu is too large", fn, n);
    struct tg__apply *a = n ? tg__tape_alloc(T, n * sizeof *a) : NULL;
    if (n && !a) return tg_last_status();
    size_t k;
    for (k = 0; k < n; k++)
        if ((st = apply_claim(&list[k], k, &a[k]))) {
            apply_release(list, k); /* entry k's leaf is not ours: its state stays */
            return st;
        }
    apply_plan(T, a, n);
    /* Memory for scratch and for the sweep's gradients, before anything changes. */
    for (k = 0; k < n && !st; k++) {
        struct tg__apply *s = &a[k];
        if (s->fold) continue;
        size_t bytes = (size_t)s->leaf->numel * tg__esize(s->leaf->dtype);
        s->scratch = s->leaf->numel <= 1 ? (void *)&s->one : tg__tape_alloc(T, bytes);
        if (s->scratch)
            memset(s->scratch, 0, bytes);
        else
            st = tg_last_status();
    }
    if (!st) st = tg__reserve_grads(T);
    if (st) {
        apply_release(list, n);
        return st;
    }
    for (k = 0; k < n; k++) {
        a[k].own_grad = a[k].leaf->grad;
        a[k].own_version = tg__leaf_of(a[k].leaf)->grad_version;
        if (!a[k].fold) a[k].leaf->grad = a[k].scratch;
    }
    st = tg__sweep(T, root, seed, NULL, NULL);
    for (k = 0; k < n; k++) {
        a[k].leaf->grad = a[k].own_grad;
        tg__leaf_of(a[k].leaf)->grad_version = a[k].own_version;
    }
    /* The sweep fails only in anomaly mode, where nothing folded: no value changed. */
    T->n_folded = 0;
    for (k = 0; k < n && !st; k++) {
        struct tg__apply *s = &a[k];
        T->n_folded += s->done;
        if (s->done) continue;
        /* not folded, or folded at a node the sweep did not reach (g = 0) */
        const void *g = s->fold ? NULL : s->scratch;
        if (s->leaf->dtype == TG_F64)
            apply_double(s->leaf->data, g, s->leaf->numel, s->alpha, s->beta);
        else
            apply_float(s->leaf->data, g, s->leaf->numel, (float)s->alpha, (float)s->beta);
    }
    apply_release(list, n);
    if (!st) tg__cause_consumed();
    return st;
}
