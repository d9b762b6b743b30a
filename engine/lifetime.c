/*
 * engine/lifetime.c - how long leaves and tapes live.
 *
 * A leaf that a recording takes as an input is held by that recording: each
 * recording takes one reference per leaf (the first time it uses it) and keeps
 * the leaf on its tape's pin list (an array the tape keeps across resets, so a
 * repeated recording allocates nothing); tg_tape_reset and
 * tg_tape_free drop those references. tg_tensor_free drops the caller's. The
 * last reference releases the leaf, so freeing a leaf that a live recording
 * still uses is safe: the leaf goes when the recording does (docs/errors.md,
 * "Ownership").
 *
 * Checked builds (-Dchecked=true) do not hand freed tapes and leaves back to
 * the allocator at once: they poison them and keep them in a quarantine, so
 * that a handle used after its tape or leaf was freed reads as stale and the
 * call fails with TG_ERR_STALE naming the free, instead of reading reused
 * memory. The quarantine keeps the most recent QUARANTINE_MAX objects and at
 * most QUARANTINE_BYTES bytes; older ones are released for real.
 */
#include "tape-impl.h"

/* Each recording gets a number of its own, process-wide: a leaf's pin_rec
 * equals a tape's rec only if that recording pinned it (a tape at the address
 * of a freed one gets new numbers). */
static _Atomic uint64_t rec_gen = 1;

uint64_t tg__rec_next(void)
{
    return atomic_fetch_add_explicit(&rec_gen, 1, memory_order_relaxed);
}

enum tg_status tg__leaf_pin_slow(struct tg_tape *T, struct tg_tensor *x, const char *fn)
{
    struct tg__leaf *l = tg__leaf_of(x);
    if (l->borrowed) return TG_OK;
    if (l->freed)
        return tg__fail(TG_ERR_STALE, "%s: an input leaf was freed (tg_tensor_free) before this op",
                        fn);
    if (T->n_pins == T->cap_pins) { /* kept across resets: grows once, then reused */
        size_t cap = T->cap_pins ? 2 * T->cap_pins : 32;
        struct tg_tensor **p = tg__realloc(T->pins, cap * sizeof *p);
        if (!p) return tg_last_status();
        T->pins = p;
        T->cap_pins = cap;
    }
    T->pins[T->n_pins++] = x;
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&l->pin_rec, T->rec, memory_order_relaxed);
    return TG_OK;
}

void tg__tape_unpin(struct tg_tape *T)
{
    for (size_t i = 0; i < T->n_pins; i++) tg__leaf_unref(T->pins[i]);
    T->n_pins = 0;
}

void tg__leaf_unref(struct tg_tensor *t)
{
    struct tg__leaf *l = tg__leaf_of(t);
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1) return;
    tg__free(t->grad);
    t->grad = NULL;
#if TG_CHECKED
    tg__quarantine_leaf(t);
#else
    tg__free(t);
#endif
}

#if TG_CHECKED
/* The tape every quarantined leaf points at: its epoch (0) is no node's, so a
 * freed leaf reads as a stale tensor of a freed tape. */
static struct tg_tape dead_tape;

bool tg__is_dead(const struct tg_tensor *t)
{
    return t->kind == TG_KIND_FREED || (t->kind != TG_KIND_LEAF && t->tape->epoch == 0);
}

enum { QUARANTINE_MAX = 256 };
#define QUARANTINE_BYTES ((size_t)16 << 20)

static struct {
    atomic_flag lock;
    void *obj[QUARANTINE_MAX];
    size_t bytes[QUARANTINE_MAX];
    size_t head, n, total;
} Q = {ATOMIC_FLAG_INIT, {0}, {0}, 0, 0, 0};

/* A tape in quarantine keeps its struct and its node rings (a handle reads
 * its node's kind, epoch and tape); its data arena is freed already. */
static void release(void *obj)
{
    struct tg_tensor *t = obj;
    if (t->kind == TG_KIND_FREED) {
        tg__free(t);
        return;
    }
    struct tg_tape *T = obj;
    tg__ring_free(&T->rings[RING_SCALAR]);
    tg__ring_free(&T->rings[RING_FULL]);
    tg__free(T);
}

static void quarantine(void *obj, size_t bytes)
{
    void *out[QUARANTINE_MAX];
    size_t n_out = 0;
    while (atomic_flag_test_and_set_explicit(&Q.lock, memory_order_acquire)) {
    }
    while (Q.n && (Q.n == QUARANTINE_MAX || Q.total + bytes > QUARANTINE_BYTES)) {
        out[n_out++] = Q.obj[Q.head];
        Q.total -= Q.bytes[Q.head];
        Q.head = (Q.head + 1) % QUARANTINE_MAX;
        Q.n--;
    }
    size_t at = (Q.head + Q.n) % QUARANTINE_MAX;
    Q.obj[at] = obj;
    Q.bytes[at] = bytes;
    Q.total += bytes;
    Q.n++;
    atomic_flag_clear_explicit(&Q.lock, memory_order_release);
    for (size_t i = 0; i < n_out; i++) release(out[i]);
}

void tg__quarantine_leaf(struct tg_tensor *t)
{
    memset(t->data, 0xff, (size_t)t->numel * tg__esize(t->dtype)); /* NaN in both dtypes */
    t->kind = TG_KIND_FREED;
    t->tape = &dead_tape;
    t->epoch = 1;
    t->requires_grad = 0;
    quarantine(t, sizeof(struct tg__leaf) + (size_t)t->numel * tg__esize(t->dtype));
}

void tg__quarantine_tape(struct tg_tape *T)
{
    tg__arena_free(&T->data);
    T->epoch = 0; /* every node of T now reads as stale (and as dead) */
    T->last = NULL;
    quarantine(T, sizeof *T + T->rings[RING_SCALAR].reserved + T->rings[RING_FULL].reserved);
}
#else
bool tg__is_dead(const struct tg_tensor *t)
{
    (void)t;
    return false;
}
#endif
