/*
 * nn/dataset.c - the dataset object: ownership, visiting order, mini-batches,
 * standardization and train/test splits. The file readers (IDX, CSV) are in
 * nn/dataset_read.c.
 *
 * Rows are never moved: `order` maps a position in the visiting order to a row of
 * X, so shuffling is O(n) on indices and a batch is a gather of whole rows
 * (memcpy of d elements each) into tensors that already exist.
 */
#include <math.h>
#include <string.h>
#include "nn-impl.h"
#include "tapegrad/dataset.h"

struct tg_dataset {
    struct tg_tensor *X; /* (n, d) */
    struct tg_tensor *y; /* (n) */
    int64_t n, d;
    int64_t *order; /* (n) visiting position -> row of X */
};

static enum tg_status check_xy(const char *fn, const struct tg_tensor *X, const struct tg_tensor *y)
{
    if (!X || !y) {
        if (tg_last_status() == TG_OK)
            tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, X ? "y" : "X");
        return tg_last_status();
    }
    if (!tg_tensor_is_leaf(X) || !tg_tensor_is_leaf(y))
        return tg_set_error(TG_ERR_STATE, "%s: X and y must be leaves, not tape nodes", fn);
    char a[64], b[64];
    if (tg_tensor_rank(X) != 2 || tg_tensor_rank(y) != 1 || tg_tensor_dim(X, 0) < 1 ||
        tg_tensor_dim(X, 0) != tg_tensor_dim(y, 0))
        return tg_set_error(TG_ERR_SHAPE, "%s: X %s and y %s are not (n, d) and (n) with n >= 1",
                            fn, tg_tensor_shape_str(X, a, sizeof a),
                            tg_tensor_shape_str(y, b, sizeof b));
    if (tg_tensor_dtype(X) != tg_tensor_dtype(y))
        return tg_set_error(TG_ERR_DTYPE, "%s: X is %s but y is %s", fn,
                            tg_dtype_name(tg_tensor_dtype(X)), tg_dtype_name(tg_tensor_dtype(y)));
    return TG_OK;
}

struct tg_dataset *tg_dataset_new(struct tg_tensor *X, struct tg_tensor *y)
{
    struct tg_dataset *ds = NULL;
    if (check_xy("tg_dataset_new", X, y)) goto fail;
    if (!(ds = tg_malloc(sizeof *ds))) goto fail;
    ds->X = X;
    ds->y = y;
    ds->n = tg_tensor_dim(X, 0);
    ds->d = tg_tensor_dim(X, 1);
    if ((uint64_t)ds->n > SIZE_MAX / sizeof *ds->order ||
        !(ds->order = tg_malloc((size_t)ds->n * sizeof *ds->order))) {
        tg_free(ds);
        goto fail;
    }
    for (int64_t i = 0; i < ds->n; i++) ds->order[i] = i;
    return ds;
fail:
    tg_tensor_free(X);
    tg_tensor_free(y);
    return NULL;
}

void tg_dataset_free(struct tg_dataset *ds)
{
    if (!ds) return;
    tg_tensor_free(ds->X);
    tg_tensor_free(ds->y);
    tg_free(ds->order);
    tg_free(ds);
}

int64_t tg_dataset_len(const struct tg_dataset *ds)
{
    return ds ? ds->n : 0;
}
int64_t tg_dataset_features(const struct tg_dataset *ds)
{
    return ds ? ds->d : 0;
}
struct tg_tensor *tg_dataset_x(const struct tg_dataset *ds)
{
    return ds ? ds->X : NULL;
}
struct tg_tensor *tg_dataset_y(const struct tg_dataset *ds)
{
    return ds ? ds->y : NULL;
}

void tg__dataset_reset_order(struct tg_dataset *ds)
{
    for (int64_t i = 0; i < ds->n; i++) ds->order[i] = i;
}

enum tg_status tg_dataset_shuffle(struct tg_dataset *ds, struct tg_rng *rng)
{
    if (!ds || !rng)
        return tg_set_error(TG_ERR_NULL, "tg_dataset_shuffle: %s is NULL", ds ? "rng" : "ds");
    for (int64_t i = ds->n - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
        int64_t t = ds->order[i];
        ds->order[i] = ds->order[j];
        ds->order[j] = t;
    }
    return TG_OK;
}

int64_t tg_dataset_batch_count(const struct tg_dataset *ds, int64_t batch_size)
{
    if (!ds) {
        tg_set_error(TG_ERR_NULL, "tg_dataset_batch_count: ds is NULL");
        return 0;
    }
    if (batch_size < 1) {
        tg_set_error(TG_ERR_VALUE, "tg_dataset_batch_count: batch_size %lld < 1",
                     (long long)batch_size);
        return 0;
    }
    return ds->n / batch_size + (ds->n % batch_size != 0);
}

/* Copies rows order[start .. start+rows) into the buffers X (rows, d) and y (rows). */
static void gather(const struct tg_dataset *ds, int64_t start, int64_t rows, void *X, void *y)
{
    size_t es = tg_dtype_size(tg_tensor_dtype(ds->X)), row = (size_t)ds->d * es;
    const unsigned char *sx = tg_tensor_data(ds->X), *sy = tg_tensor_data(ds->y);
    unsigned char *dx = X, *dy = y;
    for (int64_t i = 0; i < rows; i++) {
        size_t r = (size_t)ds->order[start + i];
        memcpy(dx + (size_t)i * row, sx + r * row, row);
        memcpy(dy + (size_t)i * es, sy + r * es, es);
    }
}

enum tg_status tg_dataset_batch_into(const struct tg_dataset *ds, int64_t start,
                                     struct tg_tensor *X, struct tg_tensor *y)
{
    static const char fn[] = "tg_dataset_batch_into";
    if (!ds || !X || !y)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, !ds ? "ds" : !X ? "X" : "y");
    int64_t rows = tg_tensor_dim(X, 0);
    char a[64], b[64];
    if (tg_tensor_rank(X) != 2 || tg_tensor_dim(X, 1) != ds->d || tg_tensor_rank(y) != 1 ||
        tg_tensor_dim(y, 0) != rows)
        return tg_set_error(TG_ERR_SHAPE, "%s: X %s and y %s do not fit (rows, %lld) and (rows)",
                            fn, tg_tensor_shape_str(X, a, sizeof a),
                            tg_tensor_shape_str(y, b, sizeof b), (long long)ds->d);
    enum tg_dtype dt = tg_tensor_dtype(ds->X);
    if (tg_tensor_dtype(X) != dt || tg_tensor_dtype(y) != dt)
        return tg_set_error(TG_ERR_DTYPE, "%s: X and y must be %s like the dataset", fn,
                            tg_dtype_name(dt));
    if (start < 0 || start > ds->n || rows > ds->n - start)
        return tg_set_error(TG_ERR_RANGE, "%s: rows [%lld, %lld) are outside the dataset's %lld",
                            fn, (long long)start, (long long)start + rows, (long long)ds->n);
    gather(ds, start, rows, tg_tensor_data(X), tg_tensor_data(y));
    return TG_OK;
}

enum tg_status tg_dataset_batch(const struct tg_dataset *ds, struct tg_tape *T, int64_t b,
                                int64_t batch_size, struct tg_tensor **X, struct tg_tensor **y)
{
    static const char fn[] = "tg_dataset_batch";
    if (!X || !y) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, X ? "y" : "X");
    *X = *y = NULL;
    if (!ds || !T) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, ds ? "T" : "ds");
    int64_t nb = tg_dataset_batch_count(ds, batch_size);
    if (!nb)
        return tg_set_error(TG_ERR_VALUE, "%s: batch_size %lld < 1", fn, (long long)batch_size);
    if (b < 0 || b >= nb)
        return tg_set_error(TG_ERR_RANGE, "%s: batch %lld out of range (%lld batches of %lld)", fn,
                            (long long)b, (long long)nb, (long long)batch_size);
    int64_t start = b * batch_size, rows = ds->n - start < batch_size ? ds->n - start : batch_size;
    enum tg_dtype dt = tg_tensor_dtype(ds->X);
    struct tg_tensor *bx = tg_tape_constant(T, dt, 2, (int64_t[]){rows, ds->d}, NULL);
    struct tg_tensor *by = bx ? tg_tape_constant(T, dt, 1, (int64_t[]){rows}, NULL) : NULL;
    if (!by) return tg_last_status();
    gather(ds, start, rows, tg_tensor_data(bx), tg_tensor_data(by));
    *X = bx;
    *y = by;
    return TG_OK;
}

/* ---- preprocessing ---- */

enum tg_status tg_dataset_feature_stats(const struct tg_dataset *ds, struct tg_tensor **mean,
                                        struct tg_tensor **std)
{
    static const char fn[] = "tg_dataset_feature_stats";
    if (!mean || !std)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, mean ? "std" : "mean");
    *mean = *std = NULL;
    if (!ds) return tg_set_error(TG_ERR_NULL, "%s: ds is NULL", fn);
    struct tg_tensor *m = tg_tensor_zeros(TG_F64, 1, &ds->d);
    struct tg_tensor *s = tg_tensor_zeros(TG_F64, 1, &ds->d);
    if (!m || !s) {
        tg_tensor_free(m);
        tg_tensor_free(s);
        return tg_last_status();
    }
    double *mu = tg_tensor_data(m), *sd = tg_tensor_data(s); /* (d) each */
    const void *x = tg_tensor_data(ds->X);                   /* (n, d) */
    enum tg_dtype dt = tg_tensor_dtype(ds->X);
    /* Two passes (mean, then squared deviations): no cancellation of E[x^2]-E[x]^2. */
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t j = 0; j < ds->d; j++)
            mu[j] += dt == TG_F64 ? ((const double *)x)[i * ds->d + j]
                                  : ((const float *)x)[i * ds->d + j];
    for (int64_t j = 0; j < ds->d; j++) mu[j] /= (double)ds->n;
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t j = 0; j < ds->d; j++) {
            double v = dt == TG_F64 ? ((const double *)x)[i * ds->d + j]
                                    : ((const float *)x)[i * ds->d + j];
            sd[j] += (v - mu[j]) * (v - mu[j]);
        }
    for (int64_t j = 0; j < ds->d; j++) sd[j] = sqrt(sd[j] / (double)ds->n);
    *mean = m;
    *std = s;
    return TG_OK;
}

static enum tg_status check_stats(const char *fn, const struct tg_dataset *ds,
                                  const struct tg_tensor *mean, const struct tg_tensor *std)
{
    if (!ds || !mean || !std)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, !ds ? "ds" : !mean ? "mean" : "std");
    char a[64], b[64];
    if (tg_tensor_rank(mean) != 1 || tg_tensor_dim(mean, 0) != ds->d || tg_tensor_rank(std) != 1 ||
        tg_tensor_dim(std, 0) != ds->d)
        return tg_set_error(TG_ERR_SHAPE, "%s: mean %s and std %s must be (%lld)", fn,
                            tg_tensor_shape_str(mean, a, sizeof a),
                            tg_tensor_shape_str(std, b, sizeof b), (long long)ds->d);
    for (int64_t j = 0; j < ds->d; j++) {
        double s = tg_tensor_get(std, j), m = tg_tensor_get(mean, j);
        if (!(s >= 0) || !isfinite(s) || !isfinite(m))
            return tg_set_error(TG_ERR_VALUE, "%s: feature %lld has mean %g and std %g", fn,
                                (long long)j, m, s);
    }
    return TG_OK;
}

enum tg_status tg_dataset_standardize(struct tg_dataset *ds, const struct tg_tensor *mean,
                                      const struct tg_tensor *std)
{
    enum tg_status st = check_stats("tg_dataset_standardize", ds, mean, std);
    if (st) return st;
    void *x = tg_tensor_data(ds->X); /* (n, d) */
    bool f64 = tg_tensor_dtype(ds->X) == TG_F64;
    for (int64_t j = 0; j < ds->d; j++) {
        double m = tg_tensor_get(mean, j), s = tg_tensor_get(std, j);
        double inv = s > 0 ? 1 / s : 1;
        for (int64_t i = 0; i < ds->n; i++) {
            int64_t k = i * ds->d + j;
            if (f64)
                ((double *)x)[k] = (((double *)x)[k] - m) * inv;
            else
                ((float *)x)[k] = (float)((((float *)x)[k] - m) * inv);
        }
    }
    return TG_OK;
}

/* A new dataset of rows order[start .. start+rows). */
static struct tg_dataset *subset(const struct tg_dataset *ds, int64_t start, int64_t rows)
{
    enum tg_dtype dt = tg_tensor_dtype(ds->X);
    struct tg_tensor *X = tg_tensor_zeros(dt, 2, (int64_t[]){rows, ds->d});
    struct tg_tensor *y = tg_tensor_zeros(dt, 1, &rows);
    if (X && y) gather(ds, start, rows, tg_tensor_data(X), tg_tensor_data(y));
    return tg_dataset_new(X, y);
}

enum tg_status tg_dataset_split(const struct tg_dataset *ds, double test_fraction,
                                struct tg_dataset **train, struct tg_dataset **test)
{
    static const char fn[] = "tg_dataset_split";
    if (!train || !test)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, train ? "test" : "train");
    *train = *test = NULL;
    if (!ds) return tg_set_error(TG_ERR_NULL, "%s: ds is NULL", fn);
    double nt = test_fraction * (double)ds->n;
    int64_t n_test = test_fraction > 0 && test_fraction < 1 ? (int64_t)llround(nt) : 0;
    if (n_test < 1 || n_test >= ds->n)
        return tg_set_error(TG_ERR_VALUE,
                            "%s: test_fraction %g of %lld rows leaves the test or train side "
                            "empty (need 0 < round(fraction * n) < n)",
                            fn, test_fraction, (long long)ds->n);
    struct tg_dataset *te = subset(ds, 0, n_test);
    struct tg_dataset *tr = te ? subset(ds, n_test, ds->n - n_test) : NULL;
    if (!tr) {
        tg_dataset_free(te);
        return tg_last_status();
    }
    *train = tr;
    *test = te;
    return TG_OK;
}

int64_t *tg__dataset_order(struct tg_dataset *ds)
{
    return ds->order;
}
