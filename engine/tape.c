/*
 * engine/tape.c - tapes: new, free, reset, modes, constants, and the checks
 * that tell a live tensor from a stale handle (memory: engine/tape-impl.h).
 */
#include <stdio.h>
#include "hook-impl.h"
#include "tape-impl.h"

/* ---- the owning thread (checked builds) ---- */

#if TG_CHECKED
/* Its address tells the live threads apart. */
_Thread_local char tg__thread_tag;
#endif

struct tg_tape *tg_tape_new(void)
{
    struct tg_tape *T = tg__calloc(1, sizeof *T);
    if (!T) return NULL;
    T->epoch = 1;
    T->rec = tg__rec_next();
    T->data.n_mallocs = &T->n_mallocs;
    T->rings[RING_SCALAR].slot = NODE_SCALAR;
    T->rings[RING_FULL].slot = NODE_FULL;
#if TG_CHECKED
    T->owner = &tg__thread_tag;
#endif
    tg__cause_consumed();
    return T;
}

void tg_tape_free(struct tg_tape *T)
{
    if (!T || owner_check(T, "tg_tape_free")) return;
    tg__hooks_tape_clear(T);
    tg_tape_free(T->recompute);
    tg__tape_unpin(T);
    tg__free(T->pins);
    T->pins = NULL;
    T->cap_pins = 0;
#if TG_CHECKED
    tg__quarantine_tape(T);
    return;
#endif
    tg__arena_free(&T->data);
    tg__ring_free(&T->rings[RING_SCALAR]);
    tg__ring_free(&T->rings[RING_FULL]);
    tg__free(T);
}

void tg_tape_reset(struct tg_tape *T)
{
    if (!T || owner_check(T, "tg_tape_reset")) return;
    tg__hooks_tape_clear(T);
    T->n_recompute = 0;
    T->fail_seen = 0; /* the first op of the new recording notes where it starts */
    T->rec_started = false;
    T->ck = NULL;
    tg__cause_consumed();
    size_t u = tg__tape_used(T);
    if (u > T->high_water) T->high_water = u;
    T->epoch++;
    tg__tape_unpin(T);
    T->rec = tg__rec_next();
    tg__arena_rewind(&T->data);
    tg__ring_reset(&T->rings[RING_SCALAR]);
    tg__ring_reset(&T->rings[RING_FULL]);
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
    out->bytes_used = tg__tape_used(T);
    out->bytes_high_water = T->high_water > out->bytes_used ? T->high_water : out->bytes_used;
    out->bytes_reserved =
        T->data.reserved + T->rings[RING_SCALAR].reserved + T->rings[RING_FULL].reserved;
    out->n_nodes = T->n_nodes;
    out->n_mallocs = T->n_mallocs;
    out->n_folded = T->n_folded;
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

const char *tg__stale_why(const struct tg_tensor *t, const char *reset)
{
    if (t->kind == TG_KIND_LEAF && tg__leaf_of_c(t)->freed)
        return "was freed (tg_tensor_free; a recording still holds it)";
    if (t->kind == TG_KIND_FREED) return "was freed (tg_tensor_free)";
    if (tg__is_dead(t)) return "belongs to a tape that was freed (tg_tape_free)";
    return reset;
}

enum tg_status tg__check_live(const char *fn, const char *arg, const struct tg_tensor *t)
{
    if (!tg__is_stale(t) && !(t->kind == TG_KIND_LEAF && tg__leaf_of_c(t)->freed)) return TG_OK;
    return tg__fail(TG_ERR_STALE, "%s: %s %s", fn, arg,
                    tg__stale_why(t, "was recorded before its tape was reset"));
}

enum tg_status tg__check_input(struct tg_tape *T, const char *fn, const struct tg_tensor *t)
{
    if (t->kind == TG_KIND_LEAF) return TG_OK;
    /* stale first: a stale handle on another tape is reported as stale */
    if (t->epoch != t->tape->epoch)
        return tg__fail(TG_ERR_STALE, "%s: an input %s", fn,
                        tg__stale_why(t, "was recorded before the tape was reset"));
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
    if (tg__node_buffers(T, n, "tg_tape_constant")) return NULL;
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
