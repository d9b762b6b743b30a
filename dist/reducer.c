/*
 * dist/reducer.c - gradient averaging in buckets, overlapped with the backward
 * sweep (the scheme of PyTorch DDP's Reducer and Horovod's tensor fusion).
 *
 * The parameters that require grad are taken last-first, the order in which a
 * sweep finishes their gradients, and cut into buckets of about bucket_bytes,
 * each one contiguous buffer of one dtype. A gradient hook on each parameter
 * (hook.h) copies its final gradient, times the rank's weight, into its
 * bucket; when a bucket holds all of its gradients, it and every full bucket
 * after it are sent with MPI_Iallreduce. Buckets go out strictly in index
 * order, so every rank posts the same collectives in the same order whatever
 * order its hooks fire in (non-blocking collectives are matched by order).
 * Every hook also polls the sent requests, since Open MPI progresses
 * non-blocking collectives only inside MPI calls. The counts are all-reduced
 * when the step begins (they are known then), so a hook packs weight /
 * (sum of the ranks' counts) times its gradient and the sums that come back are
 * the averages: a bucket all-reduced in the gradient itself needs no pass after
 * the all-reduce. tg_dist_reducer_finish packs whatever no hook delivered, sends
 * the rest and one flag per rank (set by tg_dist_reducer_abandon), waits, and
 * copies the shared buckets back.
 */
#include <math.h>
#include <string.h>
#include <tapegrad/hook.h>
#include "dist-impl.h"

struct entry {
    struct tg_dist_reducer *r;
    struct tg_tensor *t;
    int bucket;
    int64_t off, numel; /* elements, in the bucket's buffer */
    int64_t hook_id;
    bool packed;
};

struct bucket {
    enum tg_dtype dt;
    int64_t numel;
    int n_entries, pending;
    void *own; /* (numel) of dt */
    void *buf; /* what is sent: own, or a one-entry bucket's gradient itself */
    MPI_Request req;
};

struct tg_dist_reducer {
    struct tg_dist *d;
    struct tg_params *p;
    struct entry *e;
    int n_e;
    struct bucket *b;
    int n_b, next_send;
    bool armed;
    double weight, count, count_sum, scale; /* scale = weight / count_sum, once known */
    double failed, failed_sum;              /* 1 on a rank that abandoned the step */
    MPI_Request count_req, failed_req;
    struct tg_dist_reducer_stats stats;
};

/* Waits for the counts' all-reduce begun by tg_dist_reducer_begin (long done
 * by the first hook) and sets r->scale. */
static enum tg_status need_counts(struct tg_dist_reducer *r, const char *fn)
{
    if (r->count_req == MPI_REQUEST_NULL) return TG_OK;
    enum tg_status st = tg__dist_wait(r->d, 1, &r->count_req, fn, "count all-reduce");
    if (st) return st;
    r->scale = r->count_sum > 0.0 ? r->weight / r->count_sum : 0.0;
    return TG_OK;
}

/* Writes weight / count_sum * src (NULL: zeros) into the bucket at e->off. */
static void pack(struct tg_dist_reducer *r, struct entry *e, void *src)
{
    struct bucket *b = &r->b[e->bucket];
    double w = r->scale;
    b->buf = b->n_entries == 1 && src ? src : b->own; /* a lone gradient is sent in place */
    if (b->buf == src && w == 1.0) {
        /* nothing to copy or scale */
    } else if (b->dt == TG_F64) {
        double *dst = (double *)b->buf + e->off;
        const double *s = src;
        for (int64_t k = 0; k < e->numel; k++) dst[k] = s ? w * s[k] : 0.0;
    } else {
        float *dst = (float *)b->buf + e->off;
        const float *s = src;
        float wf = (float)w;
        for (int64_t k = 0; k < e->numel; k++) dst[k] = s ? wf * s[k] : 0.0f;
    }
    e->packed = true;
    b->pending--;
}

/* Sends every bucket that is full, in order, stopping at the first that is not. */
static enum tg_status send_ready(struct tg_dist_reducer *r, const char *fn)
{
    while (r->next_send < r->n_b && r->b[r->next_send].pending == 0) {
        struct bucket *b = &r->b[r->next_send];
        int rc =
            MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->numel,
                           b->dt == TG_F64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, r->d->comm, &b->req);
        if (rc != MPI_SUCCESS) return tg__dist_mpi_fail(fn, "MPI_Iallreduce", rc);
        r->next_send++;
    }
    return TG_OK;
}

/* The hook on each parameter: its gradient for this sweep is final. */
static enum tg_status on_grad(struct tg_tensor *t, struct tg_tensor *grad, void *user)
{
    struct entry *e = user;
    struct tg_dist_reducer *r = e->r;
    if (!r->armed || e->packed) return TG_OK;
    static const char fn[] = "tg_dist_reducer (gradient hook)";
    double t0 = tg__dist_now();
    enum tg_status st = need_counts(r, fn);
    if (st) return st;
    pack(r, e, tg_tensor_data(grad));
    int before = r->next_send;
    st = send_ready(r, fn);
    r->stats.sent_in_backward += r->next_send - before;
    if (!st && r->next_send > 0) { /* let MPI move the sent buckets on */
        int flag = 0;
        MPI_Test(&r->b[r->next_send - 1].req, &flag, MPI_STATUS_IGNORE);
    }
    r->stats.total_hook_time += tg__dist_now() - t0;
    return st;
}

/* Cuts the entries into buckets; allocates the buffers. */
static enum tg_status make_buckets(struct tg_dist_reducer *r, size_t bucket_bytes)
{
    r->b = tg_malloc((size_t)(r->n_e ? r->n_e : 1) * sizeof *r->b);
    if (!r->b) return TG_ERR_NOMEM;
    size_t bytes = 0;
    for (int i = 0; i < r->n_e; i++) {
        struct entry *e = &r->e[i];
        enum tg_dtype dt = tg_tensor_dtype(e->t);
        size_t eb = (size_t)e->numel * tg_dtype_size(dt);
        struct bucket *cur = r->n_b ? &r->b[r->n_b - 1] : NULL;
        if (!cur || cur->dt != dt || bytes + eb > bucket_bytes ||
            cur->numel + e->numel > INT32_MAX) {
            r->b[r->n_b++] = (struct bucket){dt, 0, 0, 0, NULL, NULL, MPI_REQUEST_NULL};
            cur = &r->b[r->n_b - 1];
            bytes = 0;
        }
        e->bucket = r->n_b - 1;
        e->off = cur->numel;
        cur->numel += e->numel;
        cur->n_entries++;
        bytes += eb;
    }
    for (int k = 0; k < r->n_b; k++) {
        struct bucket *b = &r->b[k];
        b->own = tg_malloc((size_t)(b->numel ? b->numel : 1) * tg_dtype_size(b->dt));
        if (!b->own) return TG_ERR_NOMEM;
        r->stats.bytes += b->numel * (int64_t)tg_dtype_size(b->dt);
    }
    r->stats.n_buckets = r->n_b;
    return TG_OK;
}

/* The entries that require grad, last parameter first, each with its hook. */
static enum tg_status make_entries(struct tg_dist_reducer *r, const char *fn)
{
    size_t n = tg_params_count(r->p);
    r->e = tg_malloc((n ? n : 1) * sizeof *r->e);
    if (!r->e) return TG_ERR_NOMEM;
    for (size_t i = n; i-- > 0;) {
        struct tg_tensor *t = tg_params_tensor(r->p, i);
        if (!tg_tensor_requires_grad(t)) continue;
        if (tg_tensor_numel(t) > INT32_MAX)
            return tg_set_error(TG_ERR_RANGE, "%s: '%s' has more than 2^31 - 1 elements", fn,
                                tg_params_name(r->p, i));
        r->e[r->n_e] = (struct entry){r, t, 0, 0, tg_tensor_numel(t), 0, false};
        r->n_e++;
    }
    for (int i = 0; i < r->n_e; i++)
        if (!(r->e[i].hook_id = tg_hook_add(r->e[i].t, on_grad, &r->e[i]))) return tg_last_status();
    return TG_OK;
}

void tg_dist_reducer_free(struct tg_dist_reducer *r)
{
    if (!r) return;
    for (int i = 0; r->e && i < r->n_e; i++)
        if (r->e[i].hook_id) tg_hook_remove(r->e[i].t, r->e[i].hook_id);
    for (int k = 0; r->b && k < r->n_b; k++) tg_free(r->b[k].own);
    tg_free(r->b);
    tg_free(r->e);
    tg_free(r);
}

struct tg_dist_reducer *tg_dist_reducer_new(struct tg_dist *d, struct tg_params *p,
                                            size_t bucket_bytes)
{
    static const char fn[] = "tg_dist_reducer_new";
    if (!d) {
        tg_set_error(TG_ERR_NULL, "%s: not initialised (d is NULL)", fn);
        return NULL;
    }
    if (tg_dist_check_params(d, p)) return NULL;
    struct tg_dist_reducer *r = tg_malloc(sizeof *r);
    if (!r) return NULL;
    *r = (struct tg_dist_reducer){
        .d = d, .p = p, .count_req = MPI_REQUEST_NULL, .failed_req = MPI_REQUEST_NULL};
    enum tg_status st = make_entries(r, fn);
    if (!st) st = make_buckets(r, bucket_bytes ? bucket_bytes : (size_t)1 << 20);
    if (st) {
        if (st == TG_ERR_NOMEM) tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        tg_dist_reducer_free(r);
        return NULL;
    }
    return r;
}

static enum tg_status check_weights(double weight, double count, const char *fn)
{
    if (!isfinite(weight) || !isfinite(count) || count < 0.0)
        return tg_set_error(TG_ERR_VALUE, "%s: weight %g and count %g must be finite, count >= 0",
                            fn, weight, count);
    return TG_OK;
}

enum tg_status tg_dist_reducer_begin(struct tg_dist_reducer *r, double weight, double count)
{
    static const char fn[] = "tg_dist_reducer_begin";
    if (!r) return tg_set_error(TG_ERR_NULL, "%s: reducer is NULL", fn);
    enum tg_status st = check_weights(weight, count, fn);
    if (st) return st;
    if (r->armed)
        return tg_set_error(TG_ERR_STATE, "%s: already begun (finish the step first)", fn);
    r->weight = weight;
    r->count = count;
    r->failed = 0.0;
    int rc =
        MPI_Iallreduce(&r->count, &r->count_sum, 1, MPI_DOUBLE, MPI_SUM, r->d->comm, &r->count_req);
    if (rc != MPI_SUCCESS) return tg__dist_mpi_fail(fn, "MPI_Iallreduce", rc);
    for (int i = 0; i < r->n_e; i++) r->e[i].packed = false;
    for (int k = 0; k < r->n_b; k++) r->b[k].pending = r->b[k].n_entries;
    r->next_send = 0;
    r->stats.sent_in_backward = 0;
    r->armed = true;
    return TG_OK;
}

/* Copies the shared buckets' averages back into the gradients (a bucket
 * all-reduced in the gradient itself holds its average already). */
static void unpack(struct tg_dist_reducer *r)
{
    for (int i = 0; i < r->n_e; i++) {
        struct entry *e = &r->e[i];
        struct bucket *b = &r->b[e->bucket];
        void *g = tg_tensor_grad_mut(e->t);
        if (!g || b->buf == g) continue;
        size_t es = tg_dtype_size(b->dt);
        memcpy(g, (const char *)b->buf + (size_t)e->off * es, (size_t)e->numel * es);
    }
}

/* Sends what is left and the counts, waits for everything. */
static enum tg_status complete(struct tg_dist_reducer *r, const char *fn)
{
    enum tg_status st = need_counts(r, fn);
    for (int i = 0; i < r->n_e && !st; i++)
        if (!r->e[i].packed) pack(r, &r->e[i], tg_tensor_grad_mut(r->e[i].t));
    if (!st) st = send_ready(r, fn);
    if (!st) {
        int rc = MPI_Iallreduce(&r->failed, &r->failed_sum, 1, MPI_DOUBLE, MPI_SUM, r->d->comm,
                                &r->failed_req);
        if (rc != MPI_SUCCESS) st = tg__dist_mpi_fail(fn, "MPI_Iallreduce", rc);
    }
    for (int k = 0; k < r->n_b && !st; k++)
        st = tg__dist_wait(r->d, 1, &r->b[k].req, fn, "gradient all-reduce");
    if (!st) st = tg__dist_wait(r->d, 1, &r->failed_req, fn, "status all-reduce");
    if (!st) r->armed = false; /* else the communicator is unusable: see dist.h */
    return st;
}

enum tg_status tg_dist_reducer_finish(struct tg_dist_reducer *r)
{
    static const char fn[] = "tg_dist_reducer_finish";
    if (!r) return tg_set_error(TG_ERR_NULL, "%s: reducer is NULL", fn);
    if (!r->armed) return tg_set_error(TG_ERR_STATE, "%s: not begun (tg_dist_reducer_begin)", fn);
    double t0 = tg__dist_now();
    enum tg_status st = complete(r, fn);
    if (st) return st;
    if (r->failed_sum > 0.0)
        return tg_set_error(TG_ERR_STATE,
                            "%s: another rank failed its step "
                            "(tg_dist_reducer_abandon); the gradients are not averaged",
                            fn);
    if (!(r->count_sum > 0.0))
        return tg_set_error(TG_ERR_VALUE, "%s: the ranks' counts sum to %g (no samples anywhere)",
                            fn, r->count_sum);
    unpack(r);
    r->stats.steps++;
    r->stats.last_exposed = tg__dist_now() - t0;
    r->stats.total_exposed += r->stats.last_exposed;
    return TG_OK;
}

enum tg_status tg_dist_reducer_abandon(struct tg_dist_reducer *r)
{
    static const char fn[] = "tg_dist_reducer_abandon";
    if (!r) return tg_set_error(TG_ERR_NULL, "%s: reducer is NULL", fn);
    if (!r->armed) return tg_set_error(TG_ERR_STATE, "%s: not begun (tg_dist_reducer_begin)", fn);
    r->failed = 1.0;
    return complete(r, fn);
}

enum tg_status tg_dist_reducer_stats(const struct tg_dist_reducer *r,
                                     struct tg_dist_reducer_stats *out)
{
    if (!r || !out) return tg_set_error(TG_ERR_NULL, "tg_dist_reducer_stats: NULL argument");
    *out = r->stats;
    return TG_OK;
}

enum tg_status tg_dist_allreduce_grads(struct tg_dist *d, struct tg_params *p, double weight,
                                       double count)
{
    static const char fn[] = "tg_dist_allreduce_grads";
    enum tg_status st = check_weights(weight, count, fn);
    if (st) return st; /* before any collective: the caller's own mistake */
    struct tg_dist_reducer *r = tg_dist_reducer_new(d, p, (size_t)64 << 20);
    if (!r) return tg_last_status();
    if (!(st = tg_dist_reducer_begin(r, weight, count))) st = tg_dist_reducer_finish(r);
    tg_dist_reducer_free(r);
    return st;
}
