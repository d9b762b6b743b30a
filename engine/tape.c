/*
 * engine/tape.c - the tape: arena, recording of op nodes, and the backward sweep.
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
#include <math.h>
#include <stdio.h>
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
};

enum { CHUNK_MIN = 64 * 1024 };

static void *arena_alloc_slow(struct arena *a, size_t n, size_t align)
{
    struct chunk *c = a->cur;
    for (;;) {
        if (c) {
            size_t off = (c->used + align - 1) & ~(align - 1);
            if (off <= c->size && n <= c->size - off) {
                a->used += off + n - c->used;
                c->used = off + n;
                a->cur = c;
                return c->mem + off;
            }
            if (c->next && c->next->size >= n) { /* reuse the next chunk */
                c = c->next;
                c->used = 0;
                continue;
            }
        }
        size_t size = CHUNK_MIN;
        if (c && c->size < SIZE_MAX / 2 && c->size * 2 > size) size = c->size * 2;
        if (size < n) size = n;
        if (size > SIZE_MAX - sizeof(struct chunk)) {
            tg__fail(TG_ERR_NOMEM, "tape: allocation of %zu bytes is too large", n);
            return NULL;
        }
        struct chunk *fresh = tg__malloc(sizeof(struct chunk) + size);
        if (!fresh) return NULL;
        (*a->n_mallocs)++;
        fresh->size = size;
        fresh->used = 0;
        a->reserved += size;
        if (c) { /* insert after c: the same request sequence finds it next time */
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = a->head;
            a->head = fresh;
        }
        c = fresh;
    }
}

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
    return arena_alloc_slow(a, n, align);
}

static void arena_rewind(struct arena *a)
{
    a->cur = a->head;
    if (a->head) a->head->used = 0;
    a->used = 0;
}

static void arena_free(struct arena *a)
{
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        tg__free(c);
    }
    a->head = a->cur = NULL;
}

/* tg__rg_gen's value when `node`, the first op recorded after a change of some
 * leaf's requires-grad, was recorded (in the data arena, newest first). */
struct rg_checkpoint {
    uint64_t rg;
    const struct tg_tensor *node;
    struct rg_checkpoint *older;
};

/* ---- the owning thread (checked builds) ---- */

#if TG_CHECKED
/* Its address tells the live threads apart. */
static _Thread_local char thread_tag;
#endif

/* TG_ERR_STATE when T is used from a thread other than its creator's (checked
 * builds; nothing otherwise). */
static inline enum tg_status owner_check(const struct tg_tape *T, const char *fn)
{
#if TG_CHECKED
    if (T->owner != &thread_tag)
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
 * never gets a shape, so it takes only the bytes before the shape array: 144
 * instead of 208, so that a micrograd-style graph (a node per multiply or add)
 * moves about 30% fewer bytes through the caches (docs/performance.md). Nothing
 * reads a shape past its rank, but should something do so on such a node, it
 * stays inside the chunk: every chunk keeps NODE_SLACK bytes after its slots. */
enum {
    NODE_FULL = sizeof(struct tg_tensor),
    NODE_SCALAR = offsetof(struct tg_tensor, shape),
    NODE_SLACK = NODE_FULL - NODE_SCALAR
};
_Static_assert(NODE_SCALAR % _Alignof(struct tg_tensor) == 0,
               "a scalar node keeps the next node aligned");

/* The first chunk of a ring, and the least it grows by: a handle is told stale
 * at least until the ring has handed out all its other slots (RING_MIN bytes
 * hold 7,281 scalar or 5,040 full slots; tape.h). Beyond RING_MIN * RING_STEP a
 * ring grows by 1/RING_STEP of its size, so that it stays within about that of
 * the two recordings it must hold (every slot of the ring is used in turn, so
 * its size is the memory a long run of recordings moves through the caches). */
enum { RING_MIN = 1 << 20, RING_STEP = 8 };

struct tg_tape *tg_tape_new(void)
{
    struct tg_tape *T = tg__calloc(1, sizeof *T);
    if (!T) return NULL;
    T->epoch = 1;
    T->data.n_mallocs = &T->n_mallocs;
    T->rings[RING_SCALAR].slot = NODE_SCALAR;
    T->rings[RING_FULL].slot = NODE_FULL;
#if TG_CHECKED
    T->owner = &thread_tag;
#endif
    tg__cause_consumed();
    return T;
}

static void ring_free(struct ring *r)
{
    if (!r->cur) return;
    struct chunk *c = r->cur->next;
    r->cur->next = NULL; /* break the circle */
    for (struct chunk *n; c; c = n) {
        n = c->next;
        tg__free(c);
    }
    r->cur = NULL;
}

void tg_tape_free(struct tg_tape *T)
{
    if (!T || owner_check(T, "tg_tape_free")) return;
    arena_free(&T->data);
    ring_free(&T->rings[RING_SCALAR]);
    ring_free(&T->rings[RING_FULL]);
    tg__free(T);
}

/* Slot bytes this recording has taken from r. */
static size_t ring_rec_bytes(const struct ring *r)
{
    return r->rec_bytes + (size_t)(r->next - r->mark);
}

static size_t tape_used(const struct tg_tape *T)
{
    return T->data.used + ring_rec_bytes(&T->rings[RING_SCALAR]) +
           ring_rec_bytes(&T->rings[RING_FULL]);
}

/* Where the free slots of cur, from next on, end. */
static unsigned char *ring_limit(const struct ring *r)
{
    if (r->cur == r->guard_chunk && r->guard >= r->next) return r->guard;
    return r->cur->mem + r->cur->used;
}

/* The ring's part of a reset: the recording that ends becomes the previous one,
 * whose slots stay out of reach of the next. */
static void ring_reset(struct ring *r)
{
    r->guard = r->first; /* NULL when it had no node here: set by the next first node */
    r->guard_chunk = r->first_chunk;
    r->first = NULL;
    r->first_chunk = NULL;
    r->rec_bytes = 0;
    r->mark = r->end = r->next; /* the first node goes through node_mem_slow */
    if (r->cur) r->limit = ring_limit(r);
}

void tg_tape_reset(struct tg_tape *T)
{
    if (!T || owner_check(T, "tg_tape_reset")) return;
    T->fail_seen = 0; /* the first op of the new recording notes where it starts */
    T->rec_started = false;
    T->ck = NULL;
    tg__cause_consumed();
    size_t u = tape_used(T);
    if (u > T->high_water) T->high_water = u;
    T->epoch++;
    arena_rewind(&T->data);
    ring_reset(&T->rings[RING_SCALAR]);
    ring_reset(&T->rings[RING_FULL]);
    T->last = NULL;
    T->n_nodes = 0;
    T->grad_pending = T->grad_left = 0;
    T->grad_cur = NULL;
}

void *tg__tape_alloc(struct tg_tape *T, size_t n)
{
    if (TG_CHECKED && owner_check(T, "tape")) return NULL;
    return arena_alloc(&T->data, n, n >= 64 ? 64 : 16);
}

enum tg_status tg_tape_no_grad_push(struct tg_tape *T)
{
    if (!T) return tg__fail(TG_ERR_NULL, "tg_tape_no_grad_push: tape is NULL");
    if (owner_check(T, "tg_tape_no_grad_push")) return TG_ERR_STATE;
    T->no_grad++;
    return TG_OK;
}

enum tg_status tg_tape_no_grad_pop(struct tg_tape *T)
{
    if (!T) return tg__fail(TG_ERR_NULL, "tg_tape_no_grad_pop: tape is NULL");
    if (owner_check(T, "tg_tape_no_grad_pop")) return TG_ERR_STATE;
    if (T->no_grad == 0)
        return tg__fail(TG_ERR_STATE, "tg_tape_no_grad_pop: no no-grad scope is open");
    T->no_grad--;
    return TG_OK;
}

bool tg_tape_grad_enabled(const struct tg_tape *T)
{
    return T && !owner_check(T, "tg_tape_grad_enabled") && T->no_grad == 0;
}

void tg_tape_stats(const struct tg_tape *T, struct tg_tape_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!T || owner_check(T, "tg_tape_stats")) return;
    out->bytes_used = tape_used(T);
    out->bytes_high_water = T->high_water > out->bytes_used ? T->high_water : out->bytes_used;
    out->bytes_reserved =
        T->data.reserved + T->rings[RING_SCALAR].reserved + T->rings[RING_FULL].reserved;
    out->n_nodes = T->n_nodes;
    out->n_mallocs = T->n_mallocs;
    out->n_folded = T->n_folded;
}

/* Moves on when the free slots of cur are used up: to the next chunk, or to a
 * new chunk inserted after cur when the ring has come round to the guard (or
 * has no chunk). */
static bool ring_advance(struct tg_tape *T, struct ring *r)
{
    struct chunk *c = r->cur ? r->cur->next : NULL;
    bool blocked =
        !c || (r->guard && r->limit == r->guard) || (c == r->guard_chunk && r->guard == c->mem);
#if TG_CHECKED
    blocked = true; /* never reuse a slot: every stale handle is told apart */
#endif
    if (r->cur) r->rec_bytes += (size_t)(r->next - r->mark);
    if (blocked) {
        size_t size = r->reserved / RING_STEP > RING_MIN ? r->reserved / RING_STEP : RING_MIN;
        c = tg__malloc(sizeof(struct chunk) + size);
        if (!c) return false;
        T->n_mallocs++;
        c->size = size;
        c->used = (size - NODE_SLACK) / r->slot * r->slot;
        r->reserved += size;
        c->next = r->cur ? r->cur->next : c;
        if (r->cur) r->cur->next = c;
    }
    r->cur = c;
    r->next = r->mark = c->mem;
    r->limit = ring_limit(r);
    return true;
}

/* node_mem when r's free range is empty: at the end of a chunk's free slots,
 * and for the first node of a recording (reset empties the range), which notes
 * where the recording starts. */
static struct tg_tensor *node_mem_slow(struct tg_tape *T, struct ring *r)
{
    if (r->next == r->limit && !ring_advance(T, r)) return NULL;
    if (!r->first) {
        r->first = r->next;
        r->first_chunk = r->cur;
        if (!r->guard) {
            r->guard = r->next;
            r->guard_chunk = r->cur;
        }
    }
    r->end = r->limit;
    r->next += r->slot;
    return (struct tg_tensor *)(r->next - r->slot);
}

/* node_mem_slow for each ring, called with the tape alone: a call with one
 * argument leaves the callers' other argument registers alone, which spares the
 * scalar record path a saved register on its fast path. */
__attribute__((noinline)) static struct tg_tensor *node_mem_slow_scalar(struct tg_tape *T)
{
    return node_mem_slow(T, &T->rings[RING_SCALAR]);
}
__attribute__((noinline)) static struct tg_tensor *node_mem_slow_full(struct tg_tape *T)
{
    return node_mem_slow(T, &T->rings[RING_FULL]);
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
    return k == RING_SCALAR ? node_mem_slow_scalar(T) : node_mem_slow_full(T);
}

/* A node struct in the current node arena, every field cleared but the shape
 * (which the shape rule sets for its rank). */
static struct tg_tensor *node_alloc(struct tg_tape *T)
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
static size_t grad_bytes(const struct tg_tensor *n)
{
    return ((size_t)n->numel * tg__esize(n->dtype) + 63) & ~(size_t)63;
}

/* Points n->data at storage for its numel elements (inline for one element). */
static enum tg_status node_buffers(struct tg_tape *T, struct tg_tensor *n, const char *fn)
{
    if (n->rank == 0)
        n->numel = 1;
    else if (tg__check_shape(fn, n->rank, n->shape, tg__esize(n->dtype), &n->numel))
        return tg_last_status();
    if (n->numel == 1) {
        n->data = &n->sval;
        return TG_OK;
    }
    n->data = tg__tape_alloc(T, (size_t)n->numel * tg__esize(n->dtype));
    return n->data ? TG_OK : tg_last_status();
}

/* The tape field of a handle to a tape tensor can be trusted at any age: the
 * handle points at the start of a slot of its tape's ring (see struct ring), and
 * every node written there since has the same tape. Its kind and epoch fields
 * are those of the node in the slot now, which is a node of this recording only
 * if the ring has come round to the slot again. */
bool tg__is_stale(const struct tg_tensor *t)
{
    return t->kind != TG_KIND_LEAF && t->epoch != t->tape->epoch;
}

enum tg_status tg__check_live(const char *fn, const char *arg, const struct tg_tensor *t)
{
    if (!tg__is_stale(t)) return TG_OK;
    return tg__fail(TG_ERR_STALE, "%s: %s was recorded before its tape was reset", fn, arg);
}

enum tg_status tg__check_input(struct tg_tape *T, const char *fn, const struct tg_tensor *t)
{
    if (t->kind == TG_KIND_LEAF) return TG_OK;
    /* stale first: a stale handle on another tape is reported as stale */
    if (t->epoch != t->tape->epoch)
        return tg__fail(TG_ERR_STALE, "%s: an input was recorded before the tape was reset", fn);
    if (t->tape != T)
        return tg__fail(TG_ERR_TAPE, "%s: an input was recorded on a different tape", fn);
    return TG_OK;
}

struct tg_tensor *tg_tape_constant(struct tg_tape *T, enum tg_dtype dt, int rank,
                                   const int64_t *shape, const void *data)
{
    if (!T) {
        tg__fail(TG_ERR_NULL, "tg_tape_constant: tape is NULL");
        return NULL;
    }
    if (owner_check(T, "tg_tape_constant")) return NULL;
    if (dt != TG_F32 && dt != TG_F64) {
        tg__fail(TG_ERR_DTYPE, "tg_tape_constant: unknown dtype %d", (int)dt);
        return NULL;
    }
    if (rank < 0 || rank > TG_MAX_DIM || (rank > 0 && !shape)) {
        tg__check_shape("tg_tape_constant", rank, shape, 8, &(int64_t){0});
        return NULL;
    }
    struct tg_tensor *n = node_alloc(T);
    if (!n) return NULL;
    n->kind = TG_KIND_CONST;
    n->dtype = (uint8_t)dt;
    n->rank = (uint8_t)rank;
    for (int i = 0; i < rank; i++) n->shape[i] = shape[i];
    if (node_buffers(T, n, "tg_tape_constant")) return NULL;
    size_t bytes = (size_t)n->numel * tg__esize(dt);
    if (data)
        memcpy(n->data, data, bytes);
    else
        memset(n->data, 0, bytes);
    tg__cause_consumed();
    return n;
}

/* ---- anomaly mode ---- */

enum tg_status tg_tape_set_anomaly(struct tg_tape *T, bool on)
{
    if (!T) return tg__fail(TG_ERR_NULL, "tg_tape_set_anomaly: tape is NULL");
    if (owner_check(T, "tg_tape_set_anomaly")) return TG_ERR_STATE;
    T->anomaly = on;
    T->fail_seen = 0; /* on: every op takes the slow path, which checks */
    tg__cause_consumed();
    return TG_OK;
}

bool tg_tape_anomaly(const struct tg_tape *T)
{
    return T && !owner_check(T, "tg_tape_anomaly") && T->anomaly;
}

/* Why inputs in[0..n_in) cannot be recorded on T (the slow path of the checks). */
static enum tg_status input_error(struct tg_tape *T, const struct tg_op_desc *desc, int n_in,
                                  struct tg_tensor *const *in)
{
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            char arg[32];
            snprintf(arg, sizeof arg, "input %d", i + 1);
            return tg__null_input(desc->name, arg);
        }
    if (!T) return tg__fail(TG_ERR_NULL, "%s: tape is NULL", desc->name);
    for (int i = 0; i < n_in; i++) {
        enum tg_status st = tg__check_input(T, desc->name, in[i]);
        if (st) return st;
        if (!desc->mixed_dtypes && in[i]->dtype != in[0]->dtype)
            return tg__fail(TG_ERR_DTYPE, "%s: inputs have different dtypes (%s and %s)",
                            desc->name, tg_dtype_name((enum tg_dtype)in[0]->dtype),
                            tg_dtype_name((enum tg_dtype)in[i]->dtype));
    }
    return tg__fail(TG_ERR_STATE, "%s: inputs rejected", desc->name);
}

/* Whether x may be an input on T (T not NULL): a leaf, or a tensor of T's
 * current recording. Leaves have no tape, so the tape test comes first and
 * settles a tape tensor in one more compare (most inputs of a scalar graph are
 * nodes). */
static inline bool input_ok(const struct tg_tape *T, const struct tg_tensor *x)
{
    return x && (x->tape == T ? x->epoch == T->epoch : x->kind == TG_KIND_LEAF);
}

/* What a recorded op n does when its tape's fail_seen is behind tg__fail_gen:
 * the success consumes the last failure as the cause of later NULLs; anomaly
 * mode checks n's value (a NaN or Inf takes n off the tape again and fails);
 * the tape notes where its recording stands against requires-grad changes. */
__attribute__((noinline, cold)) static struct tg_tensor *op_recorded_slow(struct tg_tensor *n)
{
    struct tg_tape *T = n->tape;
    tg__cause_consumed();
    if (T->anomaly && tg__anomaly_forward(n)) {
        T->last = n->prev;
        T->n_nodes--;
        return NULL; /* the failure moved tg__fail_gen: the next op comes here too */
    }
    uint64_t rg = tg__gen_load(&tg__rg_gen);
    if (!T->rec_started) {
        T->rec_started = true;
        T->ck_lost = false;
        T->rec_rg = rg;
        T->ck = NULL;
    } else if (rg != (T->ck ? T->ck->rg : T->rec_rg)) {
        struct rg_checkpoint *c = tg__tape_alloc(T, sizeof *c);
        if (c) {
            *c = (struct rg_checkpoint){rg, n, T->ck};
            T->ck = c;
        } else {
            T->ck_lost = true; /* the op itself succeeded */
        }
    }
    tg__cause_consumed();
    T->fail_seen = T->anomaly ? 0 : tg__gen_load(&tg__fail_gen);
    return n;
}

/* Appends n to its tape, then computes its value with fwd. Linking first leaves
 * only n live across the call (n->tape is the tape), which spares the scalar
 * record path a saved register. */
static inline struct tg_tensor *link_and_run(struct tg_tensor *n, void (*fwd)(struct tg_tensor *))
{
    struct tg_tape *T = n->tape;
    n->prev = T->last;
    T->last = n;
    T->n_nodes++;
    fwd(n);
    /* n->tape rather than T from here: T need not be kept across the call */
    if (n->tape->fail_seen != tg__gen_load(&tg__fail_gen)) return op_recorded_slow(n);
    return n;
}

struct tg_tensor *tg__op_record(struct tg_tape *T, const struct tg_op_desc *desc, int n_in,
                                struct tg_tensor *const *in, const union tg_params *params,
                                void *aux)
{
    /* One pass over the inputs checks everything the general case needs; any
     * failure is explained by input_error. */
    bool needs_grad = false, ok = T != NULL;
    for (int i = 0; ok && i < n_in; i++) {
        const struct tg_tensor *x = in[i];
        ok = input_ok(T, x) && (desc->mixed_dtypes || x->dtype == in[0]->dtype);
        if (!ok) break;
        needs_grad |= x->requires_grad;
    }
    if (!ok) {
        input_error(T, desc, n_in, in);
        return NULL;
    }
    if (owner_check(T, desc->name)) return NULL;
    struct tg_tensor *n = node_alloc(T);
    if (!n) return NULL;
    n->kind = TG_KIND_NODE;
    n->desc = desc;
    n->dtype = n_in ? in[0]->dtype : TG_F32;
    if (n_in > 2) {
        n->in = tg__tape_alloc(T, (size_t)n_in * sizeof *n->in);
        if (!n->in) return NULL;
    }
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->n_in = (uint32_t)n_in;
    if (params) n->p = *params;
    n->aux = aux;
    if (desc->shape(n) || node_buffers(T, n, desc->name)) return NULL;
    if (n->numel <= 1) n->grad = &n->sgrad; /* none: a valid pointer to nothing */
    n->requires_grad = needs_grad && T->no_grad == 0;
    if (n->requires_grad && n->numel > 1) T->grad_pending += grad_bytes(n);
    n->backward = desc->backward;
    return link_and_run(n, desc->forward);
}

/* ---- the scalar-graph fast path ----
 * A micrograd-style graph records one node per multiply or add, so recording
 * is most of its cost. For an elementwise op whose inputs are live rank-0
 * tensors of one dtype, the node is built here with no loops, no shape rule
 * and every field written once, and its value computed by the op's one-element
 * kernel for that dtype (desc->forward1), which also picks the one the sweep
 * will call (desc->backward1); anything else (including every error) goes to
 * tg__op_record, which checks and reports it. */

/* Whether x is a rank-0 tensor that may be an input on T. */
static inline bool scalar_input_ok(const struct tg_tape *T, const struct tg_tensor *x)
{
    return input_ok(T, x) && x->rank == 0;
}

/* A one-element node of desc with inputs a and b (NULL for a unary op),
 * recorded on T. The inputs are checked. */
static inline struct tg_tensor *record_scalar(struct tg_tape *T, const struct tg_op_desc *desc,
                                              struct tg_tensor *a, struct tg_tensor *b,
                                              union tg_params p)
{
    struct tg_tensor *n = node_mem(T, RING_SCALAR);
    if (!n) return NULL;
    n->data = &n->sval;
    n->grad = &n->sgrad;
    n->tape = T;
    n->desc = desc;
    n->in = n->in2;
    n->in2[0] = a;
    n->in2[1] = b;
    n->aux = NULL;
    n->p = p;
    n->epoch = T->epoch;
    n->sweep = 0;
    n->numel = 1;
    n->n_in = b ? 2 : 1;
    n->dtype = a->dtype;
    n->rank = 0;
    n->kind = TG_KIND_NODE;
    n->requires_grad = (a->requires_grad | (b && b->requires_grad)) & (T->no_grad == 0);
    n->backward = desc->backward1[a->dtype];
    return link_and_run(n, desc->forward1[a->dtype]);
}

struct tg_tensor *tg__op_record_unary(struct tg_tape *T, const struct tg_op_desc *desc,
                                      struct tg_tensor *x, const union tg_params *params)
{
    if (TG_CHECKED && T && owner_check(T, desc->name)) return NULL;
    if (T && scalar_input_ok(T, x))
        return record_scalar(T, desc, x, NULL, params ? *params : (union tg_params){.i = {0, 0}});
    return tg__op_record(T, desc, 1, &x, params, NULL);
}

struct tg_tensor *tg__op_record_binary(struct tg_tape *T, const struct tg_op_desc *desc,
                                       struct tg_tensor *a, struct tg_tensor *b)
{
    if (TG_CHECKED && T && owner_check(T, desc->name)) return NULL;
    if (T && scalar_input_ok(T, a) && scalar_input_ok(T, b) && a->dtype == b->dtype)
        return record_scalar(T, desc, a, b, (union tg_params){.i = {0, 0}});
    struct tg_tensor *in[2] = {a, b};
    return tg__op_record(T, desc, 2, in, NULL, NULL);
}

/* ---- backward ---- */

bool tg__node_grad_current(const struct tg_tensor *t)
{
    /* sweep 0: not reached by any sweep (sweep numbers start at 1) */
    return t->sweep != 0 && t->epoch == t->tape->epoch && t->sweep == t->tape->sweep;
}

static enum tg_status check_root(const char *fn, struct tg_tensor *root,
                                 const struct tg_tensor *seed)
{
    char a[160], b[160];
    if (!root) return tg__null_input(fn, "root"); /* names a failed op's cause */
    /* stale first: the kind of a stale handle is that of whatever node now
     * holds its slot */
    if (tg__is_stale(root))
        return tg__fail(TG_ERR_STALE, "%s: root was recorded before the tape was reset", fn);
    if (seed && tg__is_stale(seed))
        return tg__fail(TG_ERR_STALE, "%s: seed was recorded before its tape was reset", fn);
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
            tg__format_shape(a, sizeof a, root->rank, root->shape);
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
        tg__format_shape(a, sizeof a, seed->rank, seed->shape);
        tg__format_shape(b, sizeof b, root->rank, root->shape);
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
static enum tg_status reserve_grads(struct tg_tape *T)
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
static enum tg_status sweep(struct tg_tape *T, struct tg_tensor *root, const struct tg_tensor *seed,
                            tg__sweep_hook hook, void *ctx)
{
    enum tg_status st;
    uint64_t s = ++T->sweep;
    grad_ready(T, root, s);
    if (seed)
        memcpy(root->grad, seed->data, (size_t)root->numel * tg__esize(root->dtype));
    else
        tg__store(root->grad, root->dtype, 0, 1.0);

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

/* TG_ERR_STATE when a leaf that an op of T's recording takes as input had its
 * requires-grad changed after that op was recorded (the op decided then whether
 * its result needs a gradient). Walks the recording only when some leaf's
 * requires-grad changed since its first op. */
static enum tg_status check_leaf_flags(const struct tg_tape *T, const char *fn)
{
    if (!T->rec_started || tg__gen_load(&tg__rg_gen) == T->rec_rg) return TG_OK;
    /* a node was recorded with the requires-grad flags of tg__rg_gen's value at
     * the latest checkpoint at or before it (or at the first op): walking back,
     * pass the checkpoints newest first. Without all checkpoints, a node only
     * counts as recorded after the first op. */
    const struct rg_checkpoint *c = T->ck_lost ? NULL : T->ck;
    uint64_t seen = c ? c->rg : T->rec_rg;
    for (const struct tg_tensor *n = T->last; n; n = n->prev) {
        for (uint32_t k = 0; k < n->n_in; k++) {
            const struct tg_tensor *x = n->in[k];
            if (x->kind == TG_KIND_LEAF && tg__leaf_of_c(x)->rg_gen > seen)
                return tg__fail(TG_ERR_STATE,
                                "%s: requires-grad of input %u of %s was changed after the op "
                                "was recorded; set it before recording (reset the tape and "
                                "record again)",
                                fn, k + 1, n->desc->name);
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
    enum tg_status st = check_root("backward", root, seed);
    if (st) return st;
    if ((st = owner_check(root->tape, "backward"))) return st;
    if ((st = check_leaf_flags(root->tape, "backward"))) return st;
    /* Memory first: after this point nothing can fail for lack of it, so a
     * failure leaves every leaf gradient as it was. */
    if ((st = reserve_grads(root->tape))) return st;
    if (!(st = sweep(root->tape, root, seed, hook, ctx))) tg__cause_consumed();
    return st;
}

enum tg_status tg_backward(struct tg_tensor *root, const struct tg_tensor *seed)
{
    return tg__backward_ex(root, seed, NULL, NULL);
}

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
    if (tg__is_stale(x))
        return tg__fail(TG_ERR_STALE, "%s: entry %zu was recorded before its tape was reset", fn,
                        k);
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
    if (!scan || T->anomaly) return;
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
    enum tg_status st = check_root(fn, root, seed);
    if (st) return st;
    if ((st = owner_check(root->tape, fn)) || (st = check_leaf_flags(root->tape, fn))) return st;
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
    if (!st) st = reserve_grads(T);
    if (st) {
        apply_release(list, n);
        return st;
    }
    for (k = 0; k < n; k++) {
        a[k].own_grad = a[k].leaf->grad;
        a[k].own_version = tg__leaf_of(a[k].leaf)->grad_version;
        if (!a[k].fold) a[k].leaf->grad = a[k].scratch;
    }
    st = sweep(T, root, seed, NULL, NULL);
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
