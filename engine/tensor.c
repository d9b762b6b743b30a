/*
 * engine/tensor.c - leaf tensors: constructors, accessors, the random generator.
 *
 * A leaf is one allocation: its struct (struct tg__leaf) followed by its element
 * buffer. Its gradient buffer is a second allocation made when requires-grad is
 * turned on.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "hook-impl.h"

/* ---- random numbers: xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tg_rng_seed(struct tg_rng *rng, uint64_t seed)
{
    if (!rng) return;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t tg_rng_next(struct tg_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double tg_rng_uniform(struct tg_rng *rng)
{
    return (double)(tg_rng_next(rng) >> 11) * 0x1.0p-53;
}

double tg_rng_normal(struct tg_rng *rng)
{
    double u = 1.0 - tg_rng_uniform(rng); /* (0, 1]: log(u) is finite */
    double v = tg_rng_uniform(rng);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

uint64_t tg_rng_below(struct tg_rng *rng, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t r;
    do r = tg_rng_next(rng);
    while (r >= lim);
    return r % n;
}

/* ---- shapes ---- */

enum tg_status tg__check_shape(const char *fn, int rank, const int64_t *shape, size_t elem,
                               int64_t *numel)
{
    if (rank < 0 || rank > TG_MAX_DIM)
        return tg__fail(TG_ERR_RANGE, "%s: rank %d is outside 0..%d", fn, rank, TG_MAX_DIM);
    if (rank > 0 && !shape) return tg__fail(TG_ERR_NULL, "%s: shape is NULL", fn);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return tg__fail(TG_ERR_RANGE, "%s: dimension %d is negative (%lld)", fn, i,
                            (long long)shape[i]);
        if (shape[i] && n > (int64_t)(PTRDIFF_MAX / (ptrdiff_t)elem) / shape[i]) {
            char b[160];
            tg_tensor_format_shape(b, sizeof b, rank, shape);
            return tg__fail(TG_ERR_RANGE, "%s: shape %s is too large (size overflows)", fn, b);
        }
        n *= shape[i];
    }
    *numel = n;
    return TG_OK;
}

static struct tg_tensor *leaf_new(const char *fn, enum tg_dtype dt, int rank, const int64_t *shape)
{
    int64_t numel;
    if (dt != TG_F32 && dt != TG_F64) {
        tg__fail(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
        return NULL;
    }
    if (tg__check_shape(fn, rank, shape, tg__esize(dt), &numel)) return NULL;
    size_t head = (sizeof(struct tg__leaf) + 63) & ~(size_t)63;
    size_t bytes = (size_t)numel * tg__esize(dt);
    if (bytes > SIZE_MAX - head) {
        tg__fail(TG_ERR_RANGE, "%s: tensor too large", fn);
        return NULL;
    }
    struct tg__leaf *l = tg__malloc(head + bytes);
    if (!l) return NULL;
    memset(l, 0, sizeof *l);
    atomic_init(&l->refs, 1); /* the caller's */
    struct tg_tensor *t = &l->t;
    t->data = (char *)t + head;
    memset(t->data, 0, bytes);
    t->numel = numel;
    t->rank = (uint8_t)rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
    t->dtype = (uint8_t)dt;
    t->kind = TG_KIND_LEAF;
    t->in = t->in2;
    tg__cause_consumed();
    return t;
}

struct tg_tensor *tg_tensor_zeros(enum tg_dtype dt, int rank, const int64_t *shape)
{
    return leaf_new("tg_tensor_zeros", dt, rank, shape);
}

static void fill(struct tg_tensor *t, double v)
{
    for (int64_t i = 0; i < t->numel; i++) tg__store(t->data, t->dtype, i, v);
}

struct tg_tensor *tg_tensor_full(enum tg_dtype dt, int rank, const int64_t *shape, double v)
{
    struct tg_tensor *t = leaf_new("tg_tensor_full", dt, rank, shape);
    if (t) fill(t, v);
    return t;
}

struct tg_tensor *tg_tensor_ones(enum tg_dtype dt, int rank, const int64_t *shape)
{
    struct tg_tensor *t = leaf_new("tg_tensor_ones", dt, rank, shape);
    if (t) fill(t, 1.0);
    return t;
}

struct tg_tensor *tg_tensor_from(enum tg_dtype dt, int rank, const int64_t *shape, const void *data)
{
    if (!data) {
        tg__fail(TG_ERR_NULL, "tg_tensor_from: data is NULL");
        return NULL;
    }
    struct tg_tensor *t = leaf_new("tg_tensor_from", dt, rank, shape);
    if (t) memcpy(t->data, data, (size_t)t->numel * tg__esize(dt));
    return t;
}

struct tg_tensor *tg_tensor_from_f64(enum tg_dtype dt, int rank, const int64_t *shape,
                                     const double *data)
{
    if (!data) {
        tg__fail(TG_ERR_NULL, "tg_tensor_from_f64: data is NULL");
        return NULL;
    }
    struct tg_tensor *t = leaf_new("tg_tensor_from_f64", dt, rank, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) tg__store(t->data, dt, i, data[i]);
    return t;
}

struct tg_tensor *tg_tensor_scalar(enum tg_dtype dt, double v)
{
    struct tg_tensor *t = leaf_new("tg_tensor_scalar", dt, 0, NULL);
    if (t) fill(t, v);
    return t;
}

struct tg_tensor *tg_tensor_arange(enum tg_dtype dt, double start, double stop, double step)
{
    if (!(step != 0) || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
        tg__fail(TG_ERR_VALUE, "tg_tensor_arange: start, stop and step must be finite, step != 0");
        return NULL;
    }
    double n = ceil((stop - start) / step);
    if (n < 0) n = 0;
    if (n > 9.0e15) {
        tg__fail(TG_ERR_RANGE, "tg_tensor_arange: %g elements is too many", n);
        return NULL;
    }
    int64_t shape[1] = {(int64_t)n};
    struct tg_tensor *t = leaf_new("tg_tensor_arange", dt, 1, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) tg__store(t->data, dt, i, start + (double)i * step);
    return t;
}

struct tg_tensor *tg_tensor_uniform(enum tg_dtype dt, int rank, const int64_t *shape,
                                    struct tg_rng *rng, double lo, double hi)
{
    if (!rng) {
        tg__fail(TG_ERR_NULL, "tg_tensor_uniform: rng is NULL");
        return NULL;
    }
    if (!isfinite(lo) || !isfinite(hi) || hi < lo) {
        tg__fail(TG_ERR_VALUE, "tg_tensor_uniform: need finite lo <= hi (got %g, %g)", lo, hi);
        return NULL;
    }
    struct tg_tensor *t = leaf_new("tg_tensor_uniform", dt, rank, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg__store(t->data, dt, i, lo + (hi - lo) * tg_rng_uniform(rng));
    return t;
}

struct tg_tensor *tg_tensor_normal(enum tg_dtype dt, int rank, const int64_t *shape,
                                   struct tg_rng *rng, double mean, double std)
{
    if (!rng) {
        tg__fail(TG_ERR_NULL, "tg_tensor_normal: rng is NULL");
        return NULL;
    }
    if (!isfinite(mean) || !isfinite(std) || std < 0) {
        tg__fail(TG_ERR_VALUE, "tg_tensor_normal: need finite mean and std >= 0 (got %g, %g)", mean,
                 std);
        return NULL;
    }
    struct tg_tensor *t = leaf_new("tg_tensor_normal", dt, rank, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg__store(t->data, dt, i, mean + std * tg_rng_normal(rng));
    return t;
}

struct tg_tensor *tg_tensor_to(const struct tg_tensor *t, enum tg_dtype dt)
{
    if (!t) {
        tg__null_input("tg_tensor_to", "t");
        return NULL;
    }
    if (tg__check_live("tg_tensor_to", "t", t)) return NULL;
    struct tg_tensor *c = leaf_new("tg_tensor_to", dt, t->rank, t->shape);
    if (!c) return NULL;
    if (dt == t->dtype)
        memcpy(c->data, t->data, (size_t)t->numel * tg__esize(dt));
    else
        for (int64_t i = 0; i < t->numel; i++)
            tg__store(c->data, dt, i, tg__load(t->data, t->dtype, i));
    return c;
}

struct tg_tensor *tg_tensor_copy(const struct tg_tensor *t)
{
    if (!t) {
        tg__null_input("tg_tensor_copy", "t");
        return NULL;
    }
    if (tg__check_live("tg_tensor_copy", "t", t)) return NULL;
    return tg_tensor_to(t, (enum tg_dtype)t->dtype);
}

void tg_tensor_free(struct tg_tensor *t)
{
    if (!t || tg__check_live("tg_tensor_free", "t", t)) return;
    if (t->kind != TG_KIND_LEAF) {
        tg__fail(TG_ERR_STATE, "tg_tensor_free: tensor belongs to a tape (reset or free the tape)");
        return;
    }
    tg__hooks_leaf_free(tg__leaf_of(t)); /* its hooks go with the caller's handle */
    /* a recording that uses t holds it until its tape's reset or free */
    tg__leaf_of(t)->freed = true;
    tg__leaf_unref(t);
}

enum tg_status tg_tensor_set_requires_grad(struct tg_tensor *t, bool on)
{
    if (!t) return tg__fail(TG_ERR_NULL, "tg_tensor_set_requires_grad: t is NULL");
    if (tg__check_live("tg_tensor_set_requires_grad", "t", t)) return TG_ERR_STALE;
    if (t->kind != TG_KIND_LEAF)
        return tg__fail(TG_ERR_STATE,
                        "tg_tensor_set_requires_grad: only leaves can be made to require grad");
    struct tg__leaf *l = tg__leaf_of(t);
    if (on != (bool)t->requires_grad) {
        /* a sweep checks its recording's leaves against this (engine/sweep.c) */
        l->rg_gen = atomic_fetch_add_explicit(&tg__rg_gen, 1, memory_order_relaxed) + 1;
        atomic_fetch_add_explicit(&tg__fail_gen, 1, memory_order_relaxed);
    }
    if (on && !t->grad) {
        t->grad = tg__calloc((size_t)t->numel, tg__esize(t->dtype));
        if (!t->grad) return tg_last_status();
    } else if (!on) {
        tg__free(t->grad);
        t->grad = NULL;
    }
    t->requires_grad = on;
    l->grad_version++;
    tg__cause_consumed();
    return TG_OK;
}

enum tg_status tg_tensor_zero_grad(struct tg_tensor *t)
{
    if (!t) return tg__fail(TG_ERR_NULL, "tg_tensor_zero_grad: t is NULL");
    /* a stale node's gradient buffer may be a live node's memory now */
    if (tg__check_live("tg_tensor_zero_grad", "t", t)) return TG_ERR_STALE;
    if (t->grad) memset(t->grad, 0, (size_t)t->numel * tg__esize(t->dtype));
    if (t->kind == TG_KIND_LEAF) tg__leaf_of(t)->grad_version++;
    return TG_OK;
}

/* ---- accessors ----
 * Each checks its tensor before reading it: a stale handle (a tape tensor
 * recorded before its tape's last reset) gets the answer a NULL one gets, with
 * TG_ERR_STALE recorded. Leaves are settled by one compare. */

/* Whether t can be read: not NULL and not stale (recording TG_ERR_STALE). */
static inline bool readable(const char *fn, const struct tg_tensor *t)
{
    return t && (t->kind == TG_KIND_LEAF || !tg__check_live(fn, "t", t));
}

enum tg_dtype tg_tensor_dtype(const struct tg_tensor *t)
{
    return readable("tg_tensor_dtype", t) ? (enum tg_dtype)t->dtype : TG_F32;
}
int tg_tensor_rank(const struct tg_tensor *t)
{
    return readable("tg_tensor_rank", t) ? t->rank : 0;
}
const int64_t *tg_tensor_shape(const struct tg_tensor *t)
{
    return readable("tg_tensor_shape", t) ? t->shape : NULL;
}
int64_t tg_tensor_dim(const struct tg_tensor *t, int axis)
{
    if (!readable("tg_tensor_dim", t)) return 0;
    if (axis < 0) axis += t->rank;
    return (axis >= 0 && axis < t->rank) ? t->shape[axis] : 0;
}
int64_t tg_tensor_numel(const struct tg_tensor *t)
{
    return readable("tg_tensor_numel", t) ? t->numel : 0;
}
bool tg_tensor_requires_grad(const struct tg_tensor *t)
{
    return readable("tg_tensor_requires_grad", t) && t->requires_grad;
}
bool tg_tensor_is_leaf(const struct tg_tensor *t)
{
    return readable("tg_tensor_is_leaf", t) && t->kind == TG_KIND_LEAF;
}
void *tg_tensor_data(const struct tg_tensor *t)
{
    return readable("tg_tensor_data", t) ? t->data : NULL;
}
/* The gradient buffer, for reading (no change counted). */
static const void *grad_of(const char *fn, const struct tg_tensor *t)
{
    if (!readable(fn, t)) return NULL;
    if (t->kind == TG_KIND_NODE && !tg__node_grad_current(t)) return NULL;
    return t->grad;
}

const void *tg_tensor_grad(const struct tg_tensor *t)
{
    return grad_of("tg_tensor_grad", t);
}

void *tg_tensor_grad_mut(struct tg_tensor *t)
{
    void *g = (void *)grad_of("tg_tensor_grad_mut", t);
    /* a writable pointer goes out: the leaf's gradient may change */
    if (g && t->kind == TG_KIND_LEAF) tg__leaf_of(t)->grad_version++;
    return g;
}

uint64_t tg_tensor_grad_version(const struct tg_tensor *t)
{
    return readable("tg_tensor_grad_version", t) && t->kind == TG_KIND_LEAF
               ? tg__leaf_of_c(t)->grad_version
               : 0;
}

double tg_tensor_get(const struct tg_tensor *t, int64_t i)
{
    if (!t) {
        tg__null_input("tg_tensor_get", "t");
        return NAN;
    }
    if (tg__check_live("tg_tensor_get", "t", t)) return NAN;
    if (i < 0 || i >= t->numel) {
        tg__fail(TG_ERR_RANGE, "tg_tensor_get: index %lld outside 0..%lld", (long long)i,
                 (long long)t->numel - 1);
        return NAN;
    }
    return tg__load(t->data, t->dtype, i);
}

double tg_tensor_grad_get(const struct tg_tensor *t, int64_t i)
{
    if (!t) {
        tg__null_input("tg_tensor_grad_get", "t");
        return NAN;
    }
    if (tg__check_live("tg_tensor_grad_get", "t", t)) return NAN;
    if (!grad_of("tg_tensor_grad_get", t)) {
        tg__fail(TG_ERR_STATE, "tg_tensor_grad_get: tensor has no gradient");
        return NAN;
    }
    if (i < 0 || i >= t->numel) {
        tg__fail(TG_ERR_RANGE, "tg_tensor_grad_get: index %lld outside 0..%lld", (long long)i,
                 (long long)t->numel - 1);
        return NAN;
    }
    return tg__load(t->grad, t->dtype, i);
}

enum tg_status tg_tensor_set(struct tg_tensor *t, int64_t i, double v)
{
    if (!t) return tg__fail(TG_ERR_NULL, "tg_tensor_set: t is NULL");
    /* a stale constant's buffer may be a live node's memory now */
    if (tg__check_live("tg_tensor_set", "t", t)) return TG_ERR_STALE;
    if (t->kind == TG_KIND_NODE)
        return tg__fail(TG_ERR_STATE, "tg_tensor_set: cannot write an op's result");
    if (i < 0 || i >= t->numel)
        return tg__fail(TG_ERR_RANGE, "tg_tensor_set: index %lld outside 0..%lld", (long long)i,
                        (long long)t->numel - 1);
    tg__store(t->data, t->dtype, i, v);
    return TG_OK;
}

double tg_tensor_item(const struct tg_tensor *t)
{
    if (!t) {
        tg__null_input("tg_tensor_item", "t");
        return NAN;
    }
    if (tg__check_live("tg_tensor_item", "t", t)) return NAN;
    if (t->numel != 1) {
        char b[160];
        tg_tensor_format_shape(b, sizeof b, t->rank, t->shape);
        tg__fail(TG_ERR_SHAPE, "tg_tensor_item: tensor of shape %s has %lld elements, not 1", b,
                 (long long)t->numel);
        return NAN;
    }
    return tg__load(t->data, t->dtype, 0);
}

char *tg_tensor_shape_str(const struct tg_tensor *t, char *buf, size_t size)
{
    if (!buf || !size) return buf;
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    if (tg__check_live("tg_tensor_shape_str", "t", t)) {
        snprintf(buf, size, "(stale)");
        return buf;
    }
    tg_tensor_format_shape(buf, size, t->rank, t->shape);
    return buf;
}

const char *tg_dtype_name(enum tg_dtype dt)
{
    return dt == TG_F64 ? "f64" : dt == TG_F32 ? "f32" : "?";
}

size_t tg_dtype_size(enum tg_dtype dt)
{
    return dt == TG_F64 ? 8 : dt == TG_F32 ? 4 : 0;
}
