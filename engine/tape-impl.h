/*
 * engine/tape-impl.h - the tape's layout and memory, shared by the files that
 * make up the tape (never installed; ops/ does not include it):
 *   engine/arena.c   the data arena and the node rings
 *   engine/tape.c    tapes: new, free, reset, constants, modes, stale checks
 *   engine/record.c  recording an op node (and the scalar-graph fast path)
 *   engine/sweep.c   the backward sweep
 *   engine/apply.c   the backward sweep that updates leaves (tg_backward_apply)
 *
 * Memory: values and gradients come from a chunked bump arena that reset
 * rewinds; chunks are kept and reused in the same order, so a repeated
 * computation makes no allocation. One-element nodes keep their value and
 * gradient inline (scalar graphs touch the data arena not at all).
 *
 * Node structs come from two rings of fixed-size slots, one for the short nodes
 * of the scalar record path and one for full nodes (see node_mem). A ring is
 * never rewound: each recording continues where the previous one stopped and
 * wraps around, and it never reuses the slots of the current or the previous
 * recording (it grows instead). So a handle keeps pointing at the start of a
 * slot of its own tape for as long as the tape lives, whose `tape`, `kind` and
 * `epoch` fields are those of a real node: its epoch tells a stale handle apart
 * until the ring comes round to its slot again, and reading it never crashes.
 */
#ifndef TG_TAPE_IMPL_H
#define TG_TAPE_IMPL_H

#include <string.h>
#include "engine-impl.h"
#include "sweep-hook.h"
#include "tg-config.h"

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(64) unsigned char mem[];
};

struct arena {
    struct chunk *head, *cur;
    size_t used;     /* bytes handed out in this recording (including padding) */
    size_t reserved; /* bytes of all chunks */
    size_t *n_mallocs;
};

/* A ring of node slots of one size: chunks linked in a circle (a chunk's `used`
 * is the bytes of its slots). Slots are taken in ring order. The guard is the
 * first slot of the previous recording (of this one while there was none): the
 * ring stops there, and a new chunk goes in where it stopped. So the ring
 * never hands out a slot of the current or the previous recording, and grows
 * until it holds both. */
struct ring {
    unsigned char *next, *end; /* the free slots of cur (end is next after a reset) */
    unsigned char *limit;      /* where the free slots of cur end: its last slot, or the guard */
    struct chunk *cur;
    unsigned char *guard; /* a slot in guard_chunk, or NULL for none */
    struct chunk *guard_chunk;
    unsigned char *first; /* this recording's first slot, or NULL */
    struct chunk *first_chunk;
    unsigned char *mark; /* slots of cur before mark are counted in rec_bytes */
    size_t rec_bytes;    /* slot bytes taken by this recording (up to mark) */
    size_t slot;         /* bytes per slot */
    size_t reserved;     /* bytes of all chunks */
};

enum { RING_SCALAR = 0, RING_FULL = 1 };

struct tg_tape {
    struct arena data;
    struct ring rings[2]; /* RING_SCALAR, RING_FULL */
    uint64_t epoch;       /* the recording in progress; starts at 1 */
    uint64_t sweep;       /* the last backward sweep's id */
    struct tg_tensor *last;
    size_t n_nodes;
    size_t high_water;
    size_t n_mallocs;
    size_t n_folded; /* updates the last tg_backward_apply folded into an op */
    int no_grad;
    bool anomaly;
    /* The slow path of recording an op (op_recorded_slow) runs when tg__fail_gen
     * differs from fail_seen: once after each failure or requires-grad change
     * anywhere, always in anomaly mode (fail_seen 0), and for the first op of
     * each recording. */
    uint64_t fail_seen;
    /* Requires-grad changes against this recording: tg__rg_gen at its first op
     * (rec_started), and a checkpoint for each change seen while recording. */
    bool rec_started;
    bool ck_lost; /* a checkpoint could not be allocated: check conservatively */
    uint64_t rec_rg;
    struct rg_checkpoint *ck; /* the newest */
    const void *owner;        /* checked builds: the creating thread's tag */
    /* Gradient memory of multi-element nodes, reserved before a sweep so that a
     * sweep cannot run out of memory halfway. grad_pending: bytes recorded nodes
     * that need a gradient may still ask for; grad_cur/grad_left: the reserve. */
    size_t grad_pending, grad_left;
    unsigned char *grad_cur;
    struct tg__hooks *node_hooks; /* hooked nodes of this recording (engine/hook.c) */
    /* tg_recompute (engine/recompute.c): the scratch tape segments are recorded
     * on, the recording's nodes that recompute in backward (the sweep then
     * takes engine/hook.c's loop), and the failure of such a backward, which
     * that loop reports */
    struct tg_tape *recompute;
    size_t n_recompute;
    enum tg_status sweep_status;
    /* Leaves this recording holds (engine/lifetime.c): pins[0..n_pins), an
     * array of cap_pins kept across resets; and the recording's process-wide
     * number (a new one at each reset). */
    struct tg_tensor **pins;
    size_t n_pins, cap_pins;
    uint64_t rec;
};

/* tg__rg_gen's value when `node`, the first op recorded after a change of some
 * leaf's requires-grad, was recorded (in the data arena, newest first). */
struct rg_checkpoint {
    uint64_t rg;
    const struct tg_tensor *node;
    struct rg_checkpoint *older;
};

/* ---- engine/arena.c ---- */
void *tg__arena_alloc_slow(struct arena *a, size_t n, size_t align);
void tg__arena_rewind(struct arena *a);
void tg__arena_free(struct arena *a);
void tg__ring_free(struct ring *r);
void tg__ring_reset(struct ring *r);
/* Bytes of the current recording: its data and its node slots. */
size_t tg__tape_used(const struct tg_tape *T);
/* node_mem when the ring's free range is empty, one function per ring. */
struct tg_tensor *tg__node_mem_slow_scalar(struct tg_tape *T);
struct tg_tensor *tg__node_mem_slow_full(struct tg_tape *T);

/* ---- engine/tape.c ---- */
#if TG_CHECKED
/* Its address tells the live threads apart. */
extern _Thread_local char tg__thread_tag;
#endif

/* ---- engine/lifetime.c ---- */
/* A new recording number (never 0, never seen before in this process). */
uint64_t tg__rec_next(void);
/* Makes leaf x held by T's recording until T's reset or free. TG_ERR_STALE when
 * x was freed, TG_ERR_NOMEM; fn names the op. */
enum tg_status tg__leaf_pin_slow(struct tg_tape *T, struct tg_tensor *x, const char *fn);
/* Drops the references T's recording holds (at reset and free). */
void tg__tape_unpin(struct tg_tape *T);
#if TG_CHECKED
/* Poisons T (its data arena freed, every node stale) and keeps it in the
 * quarantine instead of freeing it. */
void tg__quarantine_tape(struct tg_tape *T);
#endif

/* Leaf x, an input of an op on T, is held by T's recording: one load and a
 * compare once it is. */
static inline enum tg_status leaf_pin(struct tg_tape *T, struct tg_tensor *x, const char *fn)
{
    if (atomic_load_explicit(&tg__leaf_of(x)->pin_rec, memory_order_relaxed) == T->rec)
        return TG_OK;
    return tg__leaf_pin_slow(T, x, fn);
}

/* ---- engine/record.c ---- */
/* Points n->data at storage for its numel elements (inline for one element). */
enum tg_status tg__node_buffers(struct tg_tape *T, struct tg_tensor *n, const char *fn);

/* ---- engine/sweep.c: what tg_backward and tg_backward_apply share ---- */
/* The checks of a backward call's root and seed (fn names the call). */
enum tg_status tg__check_root(const char *fn, struct tg_tensor *root, const struct tg_tensor *seed);
/* TG_ERR_STATE when a leaf that the sweep from root reaches had its
 * requires-grad changed after an op that takes it was recorded. */
enum tg_status tg__check_leaf_flags(struct tg_tensor *root, const char *fn);
/* Reserves gradient memory for every node recorded since the last reservation. */
enum tg_status tg__reserve_grads(struct tg_tape *T);
/* The sweep, after the checks and with the gradient memory reserved. */
enum tg_status tg__sweep(struct tg_tape *T, struct tg_tensor *root, const struct tg_tensor *seed,
                         tg__sweep_hook hook, void *ctx);

/* TG_ERR_STATE when T was freed or is used from a thread other than its
 * creator's (checked builds; nothing otherwise). */
static inline enum tg_status owner_check(const struct tg_tape *T, const char *fn)
{
#if TG_CHECKED
    if (T->epoch == 0) /* quarantined by tg_tape_free (engine/lifetime.c) */
        return tg__fail(TG_ERR_STATE, "%s: the tape was freed (tg_tape_free)", fn);
    if (T->owner != &tg__thread_tag)
        return tg__fail(TG_ERR_STATE,
                        "%s: tape used from a second thread (a tape belongs to the thread "
                        "that created it)",
                        fn);
#else
    (void)T;
    (void)fn;
#endif
    return TG_OK;
}

/* The sizes of node structs. A node of the scalar record path has rank 0 and
 * never gets a shape, so it takes only the bytes before the shape array, and a
 * micrograd-style graph (a node per multiply or add) moves fewer bytes through
 * the caches while it is recorded and swept. Nothing
 * reads a shape past its rank, but should something do so on such a node, it
 * stays inside the chunk: every chunk keeps NODE_SLACK bytes after its slots. */
enum {
    NODE_FULL = sizeof(struct tg_tensor),
    NODE_SCALAR = offsetof(struct tg_tensor, shape),
    NODE_SLACK = NODE_FULL - NODE_SCALAR
};
_Static_assert(NODE_SCALAR % _Alignof(struct tg_tensor) == 0,
               "a scalar node keeps the next node aligned");

/* The common case inline: the request fits the current chunk. */
static inline void *arena_alloc(struct arena *a, size_t n, size_t align)
{
    struct chunk *c = a->cur;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off <= c->size && n <= c->size - off) {
            a->used += off + n - c->used;
            c->used = off + n;
            return c->mem + off;
        }
    }
    return tg__arena_alloc_slow(a, n, align);
}

/* Memory for one node struct: a slot of ring k (RING_SCALAR: NODE_SCALAR
 * bytes, RING_FULL: NODE_FULL). Every op takes one, so the common case is a
 * bump of a pointer with no ring bookkeeping. */
static inline struct tg_tensor *node_mem(struct tg_tape *T, int k)
{
    struct ring *r = &T->rings[k];
    const size_t size = k == RING_SCALAR ? NODE_SCALAR : NODE_FULL;
    /* as integers: both are NULL until the ring's first node */
    if (__builtin_expect((uintptr_t)r->end - (uintptr_t)r->next >= size, 1)) {
        struct tg_tensor *n = (struct tg_tensor *)r->next;
        r->next += size;
        return n;
    }
    return k == RING_SCALAR ? tg__node_mem_slow_scalar(T) : tg__node_mem_slow_full(T);
}

/* A node struct in the current node arena, every field cleared but the shape
 * (which the shape rule sets for its rank). */
static inline struct tg_tensor *node_alloc(struct tg_tape *T)
{
    struct tg_tensor *n = node_mem(T, RING_FULL);
    if (!n) return NULL;
    memset(n, 0, offsetof(struct tg_tensor, shape));
    n->tape = T;
    n->epoch = T->epoch;
    n->in = n->in2;
    return n;
}

/* The reserve a multi-element node's gradient takes (64-byte aligned). */
static inline size_t grad_bytes(const struct tg_tensor *n)
{
    return ((size_t)n->numel * tg__esize(n->dtype) + 63) & ~(size_t)63;
}

#endif
