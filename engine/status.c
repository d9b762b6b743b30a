/*
 * engine/status.c - status strings, the per-thread last error, the allocator hook.
 *
 * The last error is thread-local so that tapes on different threads report their
 * own failures. Beside it, a flag says whether it may still be the cause of a
 * NULL that a later call receives: set by every failure, cleared by the next
 * success (docs/errors.md, "Where a NULL came from"). The allocator hook is
 * process-wide by design (set once, first).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine-impl.h"

static _Thread_local enum tg_status last_status = TG_OK;
static _Thread_local char last_msg[512];
/* The last failure has not been followed by a success on this thread. */
static _Thread_local bool cause_pending;

_Atomic uint64_t tg__fail_gen = 1;
_Atomic uint64_t tg__rg_gen = 1;

const char *tg_status_str(enum tg_status s)
{
    switch (s) {
    case TG_OK:
        return "TG_OK: success";
    case TG_ERR_NULL:
        return "TG_ERR_NULL: a required argument is NULL";
    case TG_ERR_SHAPE:
        return "TG_ERR_SHAPE: shapes do not fit";
    case TG_ERR_DTYPE:
        return "TG_ERR_DTYPE: wrong or mismatched dtype";
    case TG_ERR_RANGE:
        return "TG_ERR_RANGE: out of range";
    case TG_ERR_NOMEM:
        return "TG_ERR_NOMEM: out of memory";
    case TG_ERR_TAPE:
        return "TG_ERR_TAPE: wrong tape or not recorded";
    case TG_ERR_STALE:
        return "TG_ERR_STALE: tensor predates the tape's reset";
    case TG_ERR_STATE:
        return "TG_ERR_STATE: not allowed in this state";
    case TG_ERR_VALUE:
        return "TG_ERR_VALUE: invalid value";
    case TG_ERR_IO:
        return "TG_ERR_IO: input/output error";
    case TG_ERR_FORMAT:
        return "TG_ERR_FORMAT: malformed data";
    case TG_ERR_MISMATCH:
        return "TG_ERR_MISMATCH: data does not match";
    case TG_ERR_NUMERIC:
        return "TG_ERR_NUMERIC: NaN or Inf";
    case TG_ERR_GRADCHECK:
        return "TG_ERR_GRADCHECK: gradient check failed";
    }
    return "unknown status";
}

enum tg_status tg_last_status(void)
{
    return last_status;
}

const char *tg_last_error(void)
{
    return last_msg;
}

void tg_clear_error(void)
{
    last_status = TG_OK;
    last_msg[0] = '\0';
    cause_pending = false;
}

static enum tg_status record(enum tg_status s, const char *fmt, va_list ap)
{
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    last_status = s;
    cause_pending = true;
    /* every tape's next recorded op takes its slow path once and consumes it */
    atomic_fetch_add_explicit(&tg__fail_gen, 1, memory_order_relaxed);
    return s;
}

void tg__cause_consumed(void)
{
    cause_pending = false;
}

void tg__rename_failure(const char *from, const char *to)
{
    size_t n = strlen(from);
    if (!cause_pending || strncmp(last_msg, from, n) != 0 || last_msg[n] != ':') return;
    char rest[sizeof last_msg];
    snprintf(rest, sizeof rest, "%s", last_msg + n);
    snprintf(last_msg, sizeof last_msg, "%s%s", to, rest);
}

enum tg_status tg__null_input(const char *fn, const char *arg)
{
    if (cause_pending && last_status != TG_OK) return last_status;
    return tg__fail(TG_ERR_NULL, "%s: %s is NULL", fn, arg);
}

char *tg_tensor_format_shape(char *buf, size_t size, int rank, const int64_t *shape)
{
    size_t n = 0;
    if (!buf || size == 0) return buf;
    n += (size_t)snprintf(buf + n, size - n, "(");
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, ")");
    return buf;
}

/* ---- the allocator hook ---- */

static void *sys_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return malloc(n);
}
static void *sys_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return realloc(p, n);
}
static void sys_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static struct tg_allocator alloc = {sys_malloc, sys_realloc, sys_free, NULL};

enum tg_status tg_set_allocator(const struct tg_allocator *a)
{
    if (!a || (!a->malloc_fn && !a->realloc_fn && !a->free_fn)) {
        alloc = (struct tg_allocator){sys_malloc, sys_realloc, sys_free, NULL};
        return TG_OK;
    }
    if (!a->malloc_fn || !a->realloc_fn || !a->free_fn)
        return tg__fail(TG_ERR_NULL, "tg_set_allocator: malloc_fn, realloc_fn and free_fn "
                                     "must all be set (or all NULL)");
    alloc = *a;
    return TG_OK;
}

void *tg__malloc(size_t n)
{
    void *p = alloc.malloc_fn(n ? n : 1, alloc.ctx);
    if (!p) tg__fail(TG_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *tg__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        tg__fail(TG_ERR_RANGE, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = tg__malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *tg__realloc(void *p, size_t n)
{
    void *q = alloc.realloc_fn(p, n ? n : 1, alloc.ctx);
    if (!q) tg__fail(TG_ERR_NOMEM, "out of memory reallocating %zu bytes", n);
    return q;
}

void tg__free(void *p)
{
    if (p) alloc.free_fn(p, alloc.ctx);
}

/* ---- the public wrappers for layers built on the public API ---- */

enum tg_status tg_set_error(enum tg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(s, fmt, ap);
    va_end(ap);
    return s;
}

void *tg_malloc(size_t size)
{
    return tg__malloc(size);
}

void *tg_realloc(void *p, size_t size)
{
    return tg__realloc(p, size);
}

void tg_free(void *p)
{
    tg__free(p);
}
