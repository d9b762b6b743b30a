/*
 * dist/dist.c - the communicator: MPI start and end, rank and size, waits with a
 * time limit, the parameter-list check, the broadcast of parameters and the
 * rank-0 checkpoint.
 *
 * MPI's blocking collectives wait forever for a rank that died (Open MPI without
 * fault tolerance gives no error to the survivors), so every collective here is
 * the non-blocking form waited for by polling with a deadline (tg__dist_wait).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tapegrad/checkpoint.h>
#include "dist-impl.h"

double tg__dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum tg_status tg__dist_mpi_fail(const char *fn, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return tg_set_error(TG_ERR_IO, "%s: %s failed: %s", fn, what, msg);
}

enum tg_status tg__dist_wait(const struct tg_dist *d, int n, MPI_Request *reqs, const char *fn,
                             const char *what)
{
    double t0 = tg__dist_now();
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return tg__dist_mpi_fail(fn, what, rc);
        if (done) return TG_OK;
        double waited = tg__dist_now() - t0;
        if (waited > d->timeout)
            return tg_set_error(TG_ERR_IO,
                                "%s: %s: no answer from the other ranks after %.3g s (a rank died "
                                "or stopped calling); end the job with tg_dist_abort",
                                fn, what, waited);
        /* Spin for the first ms (a quick answer is caught at once), then sleep
         * 5% of the time waited so far, 20 us to 1 ms: a long wait leaves the CPU
         * to the ranks being waited for when cores are shared. */
        if (waited > 1e-3) {
            double s = waited * 0.05 < 2e-5 ? 2e-5 : waited * 0.05 > 1e-3 ? 1e-3 : waited * 0.05;
            nanosleep(&(struct timespec){0, (long)(s * 1e9)}, NULL);
        }
    }
}

enum tg_status tg__dist_allreduce(const struct tg_dist *d, void *buf, int n, MPI_Datatype type,
                                  MPI_Op op, const char *fn)
{
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, op, d->comm, &req);
    if (rc != MPI_SUCCESS) return tg__dist_mpi_fail(fn, "MPI_Iallreduce", rc);
    return tg__dist_wait(d, 1, &req, fn, "all-reduce");
}

uint64_t tg__dist_hash(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

enum tg_status tg__dist_same(const struct tg_dist *d, uint64_t h, bool *same, const char *fn)
{
    uint64_t v[2] = {h, ~h}; /* max(~h) = ~min(h) */
    enum tg_status st = tg__dist_allreduce(d, v, 2, MPI_UINT64_T, MPI_MAX, fn);
    if (st) return st;
    *same = v[0] == ~v[1];
    return TG_OK;
}

/* ---- start, end ---- */

static struct tg_dist *wrap(MPI_Comm comm, bool owns_mpi, const char *fn)
{
    struct tg_dist *d = tg_malloc(sizeof *d);
    if (!d) return NULL;
    *d = (struct tg_dist){MPI_COMM_NULL, 0, 1, owns_mpi, 300.0};
    int rc = MPI_Comm_dup(comm, &d->comm);
    if (rc != MPI_SUCCESS) {
        tg__dist_mpi_fail(fn, "MPI_Comm_dup", rc);
        tg_free(d);
        return NULL;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    return d;
}

struct tg_dist *tg_dist_init(int *argc, char ***argv)
{
    static const char fn[] = "tg_dist_init";
    int inited = 0, finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
        tg_set_error(TG_ERR_STATE, "%s: MPI was already finalized", fn);
        return NULL;
    }
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            tg__dist_mpi_fail(fn, "MPI_Init_thread", rc);
            return NULL;
        }
    }
    struct tg_dist *d = wrap(MPI_COMM_WORLD, !inited, fn);
    if (!d && !inited) MPI_Finalize();
    return d;
}

struct tg_dist *tg_dist_adopt(MPI_Comm comm)
{
    static const char fn[] = "tg_dist_adopt";
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized) {
        tg_set_error(TG_ERR_STATE, "%s: MPI is %s (call MPI_Init first, or use tg_dist_init)", fn,
                     finalized ? "finalized" : "not initialised");
        return NULL;
    }
    if (comm == MPI_COMM_NULL) {
        tg_set_error(TG_ERR_VALUE, "%s: the communicator is MPI_COMM_NULL", fn);
        return NULL;
    }
    return wrap(comm, false, fn);
}

void tg_dist_finalize(struct tg_dist *d)
{
    if (!d) return;
    MPI_Comm_free(&d->comm);
    bool fin = d->owns_mpi;
    tg_free(d);
    if (fin) MPI_Finalize();
}

void tg_dist_abort(struct tg_dist *d, int code)
{
    if (!d) {
        tg_set_error(TG_ERR_NULL, "tg_dist_abort: not initialised (d is NULL)");
        return;
    }
    MPI_Abort(d->comm, code);
}

int tg_dist_rank(const struct tg_dist *d)
{
    if (!d) return tg_set_error(TG_ERR_NULL, "tg_dist_rank: not initialised (d is NULL)"), -1;
    return d->rank;
}

int tg_dist_size(const struct tg_dist *d)
{
    if (!d) return tg_set_error(TG_ERR_NULL, "tg_dist_size: not initialised (d is NULL)"), -1;
    return d->size;
}

enum tg_status tg_dist_set_timeout(struct tg_dist *d, double seconds)
{
    if (!d) return tg_set_error(TG_ERR_NULL, "tg_dist_set_timeout: not initialised (d is NULL)");
    if (!(seconds > 0.0))
        return tg_set_error(TG_ERR_VALUE, "tg_dist_set_timeout: %g is not > 0", seconds);
    d->timeout = seconds;
    return TG_OK;
}

/* ---- the parameter-list check ---- */

/* Appends entry i's description "name dtype (shape) grad" and a '\n' to *buf. */
static enum tg_status describe(const struct tg_params *p, char **buf, size_t *len, size_t *cap)
{
    for (size_t i = 0; i < tg_params_count(p); i++) {
        const struct tg_tensor *t = tg_params_tensor(p, i);
        char shape[160];
        tg_tensor_shape_str(t, shape, sizeof shape);
        const char *name = tg_params_name(p, i);
        size_t need = strlen(name) + strlen(shape) + 32;
        if (*len + need > *cap) {
            size_t nc = 2 * (*len + need);
            char *nb = tg_realloc(*buf, nc);
            if (!nb) return TG_ERR_NOMEM;
            *buf = nb, *cap = nc;
        }
        *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s %s %s%s\n", name,
                                 tg_dtype_name(tg_tensor_dtype(t)), shape,
                                 tg_tensor_requires_grad(t) ? " grad" : "");
    }
    return TG_OK;
}

/* The k-th line (0-based) of s (lines end in '\n'), its length in *n; NULL past the end. */
static const char *line_at(const char *s, size_t len, size_t k, int *n)
{
    size_t i = 0;
    for (; k > 0 && i < len; i++)
        if (s[i] == '\n') k--;
    if (i >= len) return NULL;
    const char *e = memchr(s + i, '\n', len - i);
    *n = (int)(e - (s + i));
    return s + i;
}

/* Fills msg with, for each rank that differs from rank 0, its first difference. */
static void report(const char *all, const int *lens, const int *offs, int size, char *msg,
                   size_t cap)
{
    size_t used = 0;
    for (int r = 1; r < size && used + 1 < cap; r++) {
        const char *a = all + offs[0], *b = all + offs[r];
        if (lens[r] == lens[0] && memcmp(a, b, (size_t)lens[0]) == 0) continue;
        for (size_t k = 0;; k++) {
            int na = 0, nb = 0;
            const char *la = line_at(a, (size_t)lens[0], k, &na);
            const char *lb = line_at(b, (size_t)lens[r], k, &nb);
            if (la && lb && na == nb && memcmp(la, lb, (size_t)na) == 0) continue;
            if (la && lb)
                used += (size_t)snprintf(msg + used, cap - used,
                                         "; rank %d entry %zu is '%.*s', rank 0's '%.*s'", r, k, nb,
                                         lb, na, la);
            else
                used += (size_t)snprintf(msg + used, cap - used,
                                         "; rank %d has %s entries than rank 0 (entry %zu: '%.*s')",
                                         r, la ? "fewer" : "more", k, la ? na : nb, la ? la : lb);
            break;
        }
        if (used >= cap) used = cap - 1;
    }
}

/* Gathers every rank's description and fails with TG_ERR_MISMATCH on every rank. */
static enum tg_status mismatch(const struct tg_dist *d, const char *desc, int len, const char *fn)
{
    int *lens = tg_malloc(2 * (size_t)d->size * sizeof *lens);
    if (!lens) return TG_ERR_NOMEM;
    int *offs = lens + d->size;
    MPI_Request req;
    enum tg_status st = TG_OK;
    int rc = MPI_Iallgather(&len, 1, MPI_INT, lens, 1, MPI_INT, d->comm, &req);
    if (rc != MPI_SUCCESS) st = tg__dist_mpi_fail(fn, "MPI_Iallgather", rc);
    if (!st) st = tg__dist_wait(d, 1, &req, fn, "gathering the parameter lists");
    char *all = NULL;
    if (!st) {
        size_t total = 0;
        for (int r = 0; r < d->size; r++) offs[r] = (int)total, total += (size_t)lens[r];
        all = tg_malloc(total + 1);
        if (!all) st = TG_ERR_NOMEM;
    }
    if (!st) {
        rc = MPI_Iallgatherv(desc, len, MPI_CHAR, all, lens, offs, MPI_CHAR, d->comm, &req);
        if (rc != MPI_SUCCESS) st = tg__dist_mpi_fail(fn, "MPI_Iallgatherv", rc);
        if (!st) st = tg__dist_wait(d, 1, &req, fn, "gathering the parameter lists");
    }
    if (!st) {
        char msg[400] = "";
        report(all, lens, offs, d->size, msg, sizeof msg);
        st = tg_set_error(TG_ERR_MISMATCH,
                          "%s: the ranks' parameter lists differ (names, dtypes, "
                          "shapes or requires-grad)%s",
                          fn, msg);
    }
    tg_free(all);
    tg_free(lens);
    return st;
}

static enum tg_status check_params(struct tg_dist *d, const struct tg_params *p, const char *fn)
{
    if (!d) return tg_set_error(TG_ERR_NULL, "%s: not initialised (d is NULL)", fn);
    if (!p) return tg_set_error(TG_ERR_NULL, "%s: params is NULL", fn);
    size_t len = 0, cap = 256;
    char *desc = tg_malloc(cap);
    if (!desc) return TG_ERR_NOMEM;
    desc[0] = '\0';
    enum tg_status st = describe(p, &desc, &len, &cap);
    if (st == TG_ERR_NOMEM) {
        tg_free(desc);
        return tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (len > (size_t)1 << 30) {
        tg_free(desc);
        return tg_set_error(TG_ERR_RANGE, "%s: parameter list too long", fn);
    }
    bool same = false;
    st = tg__dist_same(d, tg__dist_hash(TG__DIST_FNV, desc, len), &same, fn);
    if (!st && !same) st = mismatch(d, desc, (int)len, fn);
    tg_free(desc);
    return st;
}

enum tg_status tg_dist_check_params(struct tg_dist *d, const struct tg_params *p)
{
    return check_params(d, p, "tg_dist_check_params");
}

static MPI_Datatype mpi_type(const struct tg_tensor *t)
{
    return tg_tensor_dtype(t) == TG_F64 ? MPI_DOUBLE : MPI_FLOAT;
}

enum tg_status tg_dist_broadcast_params(struct tg_dist *d, struct tg_params *p)
{
    static const char fn[] = "tg_dist_broadcast_params";
    enum tg_status st = check_params(d, p, fn);
    size_t n = tg_params_count(p);
    for (size_t i = 0; i < n && !st; i++) {
        struct tg_tensor *t = tg_params_tensor(p, i);
        int64_t numel = tg_tensor_numel(t);
        for (int64_t off = 0; off < numel && !st; off += INT32_MAX) {
            int cnt = (int)(numel - off < INT32_MAX ? numel - off : INT32_MAX);
            char *data =
                (char *)tg_tensor_data(t) + (size_t)off * tg_dtype_size(tg_tensor_dtype(t));
            MPI_Request req;
            int rc = MPI_Ibcast(data, cnt, mpi_type(t), 0, d->comm, &req);
            if (rc != MPI_SUCCESS)
                st = tg__dist_mpi_fail(fn, "MPI_Ibcast", rc);
            else
                st = tg__dist_wait(d, 1, &req, fn, "broadcast");
        }
    }
    return st;
}

enum tg_status tg_dist_checkpoint_save(struct tg_dist *d, const struct tg_params *p,
                                       const char *path)
{
    static const char fn[] = "tg_dist_checkpoint_save";
    if (!d) return tg_set_error(TG_ERR_NULL, "%s: not initialised (d is NULL)", fn);
    if (!p || !path) return tg_set_error(TG_ERR_NULL, "%s: params or path is NULL", fn);
    if (d->rank != 0) return TG_OK;
    return tg_checkpoint_save(p, path);
}
