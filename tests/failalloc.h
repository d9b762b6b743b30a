/*
 * tests/failalloc.h - an allocator hook that fails the N-th allocation, for
 * out-of-memory sweeps. Header-only so that every test binary can use it.
 *
 *   failalloc_arm(n): allocations succeed until the n-th from now, which fails
 *   (and so do all later ones while `sticky` is set); failalloc_disarm() stops it.
 *   Memory that malloc returns is not zeroed (filled with 0xA5).
 */
#ifndef TG_TEST_FAILALLOC_H
#define TG_TEST_FAILALLOC_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/status.h>

static long failalloc_countdown = -1; /* < 0: disarmed */
static long failalloc_failures;
static bool failalloc_sticky;

static bool failalloc_should_fail(void)
{
    if (failalloc_countdown < 0) return false;
    if (failalloc_countdown == 0) {
        failalloc_failures++;
        if (!failalloc_sticky) failalloc_countdown = -1;
        return true;
    }
    failalloc_countdown--;
    return false;
}

/* Returned memory is filled with 0xA5, as malloc may leave it: code that reads a
 * field it never set (a pointer freed on a fail path) then crashes. */
static void *failalloc_malloc(size_t n, void *ctx)
{
    (void)ctx;
    void *p = failalloc_should_fail() ? NULL : malloc(n);
    if (p) memset(p, 0xA5, n);
    return p;
}
static void *failalloc_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return failalloc_should_fail() ? NULL : realloc(p, n);
}
static void failalloc_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

/* Installs the hook; the n-th allocation from now (1-based) fails. */
static inline void failalloc_arm(long n, bool sticky)
{
    static const struct tg_allocator a = {failalloc_malloc, failalloc_realloc, failalloc_free,
                                          NULL};
    tg_set_allocator(&a);
    failalloc_countdown = n - 1;
    failalloc_failures = 0;
    failalloc_sticky = sticky;
}

static inline void failalloc_disarm(void)
{
    failalloc_countdown = -1;
}

/* Stops counting and failing (for set-up inside a sweep) until failalloc_resume(). */
static long failalloc_paused = -1;
static inline void failalloc_pause(void)
{
    failalloc_paused = failalloc_countdown;
    failalloc_countdown = -1;
}
static inline void failalloc_resume(void)
{
    failalloc_countdown = failalloc_paused;
}

#endif
