/*
 * engine/arena.c - the data arena and the node rings (layout and reasons in
 * engine/tape-impl.h).
 */
#include "tape-impl.h"

enum { CHUNK_MIN = 64 * 1024 };

void *tg__arena_alloc_slow(struct arena *a, size_t n, size_t align)
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

void tg__arena_rewind(struct arena *a)
{
    a->cur = a->head;
    if (a->head) a->head->used = 0;
    a->used = 0;
}

void tg__arena_free(struct arena *a)
{
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        tg__free(c);
    }
    a->head = a->cur = NULL;
}

/* The first chunk of a ring, and the least it grows by: a handle is told stale
 * at least until the ring has handed out all its other slots (RING_MIN bytes
 * hold 7,281 scalar or 5,040 full slots; tape.h). Beyond RING_MIN * RING_STEP a
 * ring grows by 1/RING_STEP of its size, so that it stays within about that of
 * the two recordings it must hold (every slot of the ring is used in turn, so
 * its size is the memory a long run of recordings moves through the caches). */
enum { RING_MIN = 1 << 20, RING_STEP = 8 };

void tg__ring_free(struct ring *r)
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

/* Slot bytes this recording has taken from r. */
static size_t ring_rec_bytes(const struct ring *r)
{
    return r->rec_bytes + (size_t)(r->next - r->mark);
}

size_t tg__tape_used(const struct tg_tape *T)
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
void tg__ring_reset(struct ring *r)
{
    r->guard = r->first; /* NULL when it had no node here: set by the next first node */
    r->guard_chunk = r->first_chunk;
    r->first = NULL;
    r->first_chunk = NULL;
    r->rec_bytes = 0;
    r->mark = r->end = r->next; /* the first node goes through node_mem_slow */
    if (r->cur) r->limit = ring_limit(r);
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
__attribute__((noinline)) struct tg_tensor *tg__node_mem_slow_scalar(struct tg_tape *T)
{
    return node_mem_slow(T, &T->rings[RING_SCALAR]);
}
__attribute__((noinline)) struct tg_tensor *tg__node_mem_slow_full(struct tg_tape *T)
{
    return node_mem_slow(T, &T->rings[RING_FULL]);
}
