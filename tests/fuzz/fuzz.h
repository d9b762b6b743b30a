/*
 * tests/fuzz/fuzz.h - helpers shared by the fuzz harnesses (header-only).
 *
 * Each harness defines LLVMFuzzerTestOneInput. Built with -Dfuzz=true it links
 * against libFuzzer; otherwise driver.c supplies a main that feeds it the files
 * of the committed corpus, so the harnesses run in the `unit` suite too.
 *
 * The readers under test take a path, so the input is put into an anonymous
 * in-memory file (memfd) and opened through /proc/self/fd/N: no disk traffic,
 * nothing left behind when the process dies. A broken invariant calls abort(),
 * which both libFuzzer and the driver report as a crash.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s (last error: %s)\n", __FILE__, __LINE__,  \
                    #cond, tg_last_error());                                                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An in-memory file holding data; its path goes into path (>= 32 bytes).
 * Returns the descriptor (close it when done) or -1. */
static inline int fuzz_memfile(const void *data, size_t size, char *path, size_t path_size)
{
    int fd = memfd_create("tg-fuzz", 0);
    if (fd < 0) return -1;
    const char *p = data;
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, p + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

/* A failure message must name the function that failed: it starts with fn. */
static inline int fuzz_names(const char *fn)
{
    return strncmp(tg_last_error(), fn, strlen(fn)) == 0;
}

#endif
