/*
 * tapegrad/status.h - status codes, the per-thread last error, the allocator hook.
 *
 * Every public call that can fail either returns an `enum tg_status` or returns
 * NULL (op constructors, tensor constructors). The reason is kept per thread and
 * read back with tg_last_status() / tg_last_error(). A success does not clear it,
 * like errno: read it right after the call that failed. An op (or backward, or
 * tg_graph_dot) that receives a NULL input returns NULL (or fails) and keeps the
 * status and message of the last failure on the thread when no call has
 * succeeded since, so a chained expression reports its first cause; otherwise
 * the NULL was not made by a failure and it records TG_ERR_NULL naming itself
 * ("exp: input 1 is NULL"). Successes that end a cause: an op recorded on any
 * tape, a tensor or constant created, a tape created or reset, a backward, a
 * change of requires-grad; tg_clear_error too.
 */
#ifndef TAPEGRAD_STATUS_H
#define TAPEGRAD_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stable values: they never change meaning or number between releases. */
enum tg_status {
    TG_OK = 0,
    TG_ERR_NULL = 1,      /* a required argument was NULL */
    TG_ERR_SHAPE = 2,     /* shapes do not fit the operation */
    TG_ERR_DTYPE = 3,     /* wrong or mismatched element type */
    TG_ERR_RANGE = 4,     /* an index, axis, rank or size out of range, or overflow */
    TG_ERR_NOMEM = 5,     /* an allocation failed; nothing was changed */
    TG_ERR_TAPE = 6,      /* tensors from different tapes, or a tensor not on a tape */
    TG_ERR_STALE = 7,     /* a tensor recorded before the tape's last reset */
    TG_ERR_STATE = 8,     /* a call not allowed in the object's current state */
    TG_ERR_VALUE = 9,     /* an argument value is invalid (NaN where forbidden, ...) */
    TG_ERR_IO = 10,       /* reading or writing a file failed */
    TG_ERR_FORMAT = 11,   /* a file or string is malformed */
    TG_ERR_MISMATCH = 12, /* data does not match what was expected (names, shapes) */
    TG_ERR_NUMERIC = 13,  /* a NaN or Inf appeared where it is checked for */
    TG_ERR_GRADCHECK = 14 /* a gradient check failed */
};

/* A static English name for a status ("TG_ERR_SHAPE: shapes do not fit"); never NULL. */
const char *tg_status_str(enum tg_status s);

/* The status of the most recent failure on this thread (TG_OK if none since the
 * last tg_clear_error). */
enum tg_status tg_last_status(void);

/* The message of the most recent failure on this thread, naming the function and
 * the shapes involved, e.g. "add: shapes (3,4) and (5) cannot broadcast".
 * Never NULL; "" when there was none. Valid until the next failure on this thread. */
const char *tg_last_error(void);

/* Forget the last failure on this thread. */
void tg_clear_error(void);

/* Allocator hook, process-wide (like sqlite3_config): every allocation tapegrad
 * makes goes through these. Set it before creating any object and do not change it
 * while objects exist. Passing NULL for all three restores malloc/realloc/free.
 * Returns TG_ERR_NULL if only some of the three are NULL. */
struct tg_allocator {
    void *(*malloc_fn)(size_t size, void *ctx);
    void *(*realloc_fn)(void *p, size_t size, void *ctx);
    void (*free_fn)(void *p, void *ctx);
    void *ctx;
};
enum tg_status tg_set_allocator(const struct tg_allocator *a);

/* ---- for layers built on the public API (nn/) and user extensions ---- */

/* Records a failure as the library's own functions do (status and a printf-style
 * message, which should start with the function's name); returns s. */
enum tg_status tg_set_error(enum tg_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Allocate and free through the allocator hook. tg_malloc / tg_realloc return NULL
 * with TG_ERR_NOMEM recorded; tg_free(NULL) does nothing. */
void *tg_malloc(size_t size);
void *tg_realloc(void *p, size_t size);
void tg_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
