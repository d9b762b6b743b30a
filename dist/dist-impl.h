/*
 * dist/dist-impl.h - what the files of dist/ share (never installed).
 *
 * Every collective call of dist/ is non-blocking underneath and waited for by
 * tg__dist_wait, which polls with the communicator's time limit, so that a dead
 * rank turns into TG_ERR_IO instead of a hang.
 */
#ifndef TG_DIST_IMPL_H
#define TG_DIST_IMPL_H

#include <tapegrad/dist.h>

struct tg_dist {
    MPI_Comm comm; /* our duplicate, errors returned */
    int rank, size;
    bool owns_mpi;  /* tg_dist_init started MPI: tg_dist_finalize ends it */
    double timeout; /* seconds a wait may take */
};

/* Wall-clock seconds (CLOCK_MONOTONIC). */
double tg__dist_now(void);
/* Records TG_ERR_IO for MPI error code `rc` of call `what` in function fn. */
enum tg_status tg__dist_mpi_fail(const char *fn, const char *what, int rc);
/* Waits for the n requests (completed ones are MPI_REQUEST_NULL) within d's
 * timeout; TG_ERR_IO naming fn and what on an MPI error or on timeout. */
enum tg_status tg__dist_wait(const struct tg_dist *d, int n, MPI_Request *reqs, const char *fn,
                             const char *what);
/* A blocking all-reduce in place of n elements, through tg__dist_wait. */
enum tg_status tg__dist_allreduce(const struct tg_dist *d, void *buf, int n, MPI_Datatype type,
                                  MPI_Op op, const char *fn);
/* 64-bit FNV-1a of n bytes, continuing from h (start with TG__DIST_FNV). */
#define TG__DIST_FNV 14695981039346656037ULL
uint64_t tg__dist_hash(uint64_t h, const void *data, size_t n);
/* Whether every rank passed the same value: an all-reduce of (max h, max ~h). */
enum tg_status tg__dist_same(const struct tg_dist *d, uint64_t h, bool *same, const char *fn);

#endif
