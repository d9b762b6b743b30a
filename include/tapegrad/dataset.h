/*
 * tapegrad/dataset.h - datasets: IDX and CSV readers, shuffling, mini-batches,
 * standardization and train/test splits.
 *
 * A dataset holds X (n, d), one row per example, and y (n), the targets (class
 * indices stored as numbers, or regression values), both leaves of one dtype.
 * Its rows are visited in an order that tg_dataset_shuffle permutes (the data
 * itself does not move); batches copy rows in that order into tensors the caller
 * provides or into constants on a tape, so a training loop allocates nothing per
 * batch once warm.
 */
#ifndef TAPEGRAD_DATASET_H
#define TAPEGRAD_DATASET_H

#include <stdbool.h>
#include <stdint.h>
#include "tape.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tg_dataset;

/*
 * A dataset over X (n, d) and y (n), leaves of the same dtype, n >= 1. The dataset
 * takes ownership of both, also when it fails (then they are freed), so results
 * of constructors can be passed directly. NULL with TG_ERR_NULL (a NULL tensor
 * keeps the message of the failure that produced it), TG_ERR_SHAPE, TG_ERR_DTYPE,
 * TG_ERR_STATE (a tape node), TG_ERR_NOMEM.
 */
struct tg_dataset *tg_dataset_new(struct tg_tensor *X, struct tg_tensor *y);
/* Frees the dataset and its tensors. NULL is a no-op. */
void tg_dataset_free(struct tg_dataset *ds);

/* Number of examples n, of features d (0 for NULL). */
int64_t tg_dataset_len(const struct tg_dataset *ds);
int64_t tg_dataset_features(const struct tg_dataset *ds);
/* X (n, d) and y (n), borrowed from the dataset, in storage order (not shuffled).
 * Writable: e.g. to scale the features in place. */
struct tg_tensor *tg_dataset_x(const struct tg_dataset *ds);
struct tg_tensor *tg_dataset_y(const struct tg_dataset *ds);

/* ---- readers ---- */

/* The readers' default limit on the size of what they build (1 GiB): the bytes of
 * the largest tensor, or of the raw data, that one file may make them allocate. A
 * few megabytes of gzip can inflate to gigabytes; the limit is checked against the
 * size a file declares before anything is allocated for it. */
#define TG_DATASET_MAX_BYTES ((uint64_t)1 << 30)

/*
 * Reads an IDX file (the MNIST family format: magic 0x0000TTRR with element type
 * TT = 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 and rank RR, then
 * RR big-endian u32 dimensions, then the big-endian elements) into a new leaf of
 * that rank and shape, converted to dt. A gzip-compressed file (".gz": one or
 * more members) is read transparently. NULL with TG_ERR_IO (cannot open or read),
 * TG_ERR_FORMAT (the message says which: bad magic or rank, truncated data or
 * bytes after the data; corrupt or truncated gzip data, or bytes after it; a NaN
 * or infinite element, or one too large for F32, with its index), TG_ERR_RANGE
 * (the declared size exceeds TG_DATASET_MAX_BYTES), TG_ERR_DTYPE, TG_ERR_NOMEM.
 */
struct tg_tensor *tg_dataset_read_idx(const char *path, enum tg_dtype dt);
/* tg_dataset_read_idx with the limit max_bytes instead of TG_DATASET_MAX_BYTES (0: the
 * default): the header's declared element count times the larger of the stored
 * and the result element size must not exceed it (else TG_ERR_RANGE). */
struct tg_tensor *tg_dataset_read_idx_limit(const char *path, enum tg_dtype dt, uint64_t max_bytes);

/*
 * A dataset from an IDX images file (n, ...) and an IDX labels file (n): X is the
 * images flattened to (n, d) and multiplied by `scale` (1.0/255 maps bytes to
 * [0, 1]), y the labels. Errors as tg_dataset_read_idx, and TG_ERR_MISMATCH when the
 * counts differ or the labels file is not rank 1, TG_ERR_SHAPE when they hold no
 * examples (n == 0), TG_ERR_VALUE (scale not finite), TG_ERR_RANGE (an element
 * times scale too large for dt).
 */
struct tg_dataset *tg_dataset_load_idx(const char *images_path, const char *labels_path,
                                       enum tg_dtype dt, double scale);
/* tg_dataset_load_idx with the limit max_bytes per file (0: TG_DATASET_MAX_BYTES),
 * as tg_dataset_read_idx_limit. */
struct tg_dataset *tg_dataset_load_idx_limit(const char *images_path, const char *labels_path,
                                             enum tg_dtype dt, double scale, uint64_t max_bytes);

/* Options of tg_dataset_load_csv; zero-initialise, then set what differs. */
struct tg_dataset_csv_options {
    enum tg_dtype dtype; /* of X and y (TG_F32 when zero-initialised) */
    char delimiter;      /* ',' when 0 */
    bool no_header;      /* the first line is data, not column names */
    const char *target;  /* the target column's name (needs a header), or NULL: */
    int target_index;    /* ... its 0-based index; negative counts from the end
                            (zero-initialised: column 0; use -1 for the last) */
    uint64_t max_bytes;  /* the largest file, and value table (8 bytes a value),
                            read; 0: TG_DATASET_MAX_BYTES */
};

/*
 * Reads a CSV file of numbers (a header row of names unless opt->no_header, then
 * one row per example, all with the same number of fields) into a dataset: y is
 * the target column, X the other columns in order. Fields may be surrounded by
 * spaces; empty lines are skipped; "\n", "\r\n" and "\r" line ends are accepted;
 * a UTF-8 byte order mark at the start is skipped; quotes are allowed around
 * header names only. Numbers are decimal (strtod's syntax without hexadecimal,
 * "inf" or "nan"). opt NULL means the defaults with the last column as the
 * target. NULL with TG_ERR_IO, TG_ERR_FORMAT (a row with the wrong number of
 * fields, a field that is not a finite decimal number, or one too large for an
 * F32 result: the message gives "path:line:column"), TG_ERR_VALUE (no such target
 * column, fewer than 2 columns, no data rows), TG_ERR_RANGE (the file or its
 * values exceed max_bytes), TG_ERR_NOMEM.
 */
struct tg_dataset *tg_dataset_load_csv(const char *path, const struct tg_dataset_csv_options *opt);

/* ---- order and batches ---- */

/* Shuffles the visiting order uniformly (Fisher-Yates with rng, which advances).
 * The same seed gives the same order everywhere. TG_ERR_NULL. */
enum tg_status tg_dataset_shuffle(struct tg_dataset *ds, struct tg_rng *rng);

/* Number of batches of batch_size rows per epoch, the last one possibly shorter:
 * ceil(n / batch_size); 0 with TG_ERR_VALUE when batch_size < 1. */
int64_t tg_dataset_batch_count(const struct tg_dataset *ds, int64_t batch_size);

/*
 * Copies the rows at positions start .. start+rows-1 of the visiting order into
 * X (rows, d) and y (rows), caller-provided tensors of the dataset's dtype
 * (leaves, or tape constants not yet used by an op), where rows = X's first
 * dimension. TG_ERR_NULL, TG_ERR_SHAPE / TG_ERR_DTYPE (X or y do not fit),
 * TG_ERR_RANGE (start < 0 or start + rows > n). Nothing is allocated.
 */
enum tg_status tg_dataset_batch_into(const struct tg_dataset *ds, int64_t start,
                                     struct tg_tensor *X, struct tg_tensor *y);

/*
 * Batch number b (0-based) of batch_size rows as two new constants on T: *X
 * (rows, d) and *y (rows), rows = min(batch_size, n - b*batch_size). They live
 * until T is reset. TG_ERR_NULL, TG_ERR_VALUE (batch_size < 1), TG_ERR_RANGE (b
 * out of range), TG_ERR_NOMEM; on failure *X and *y are NULL.
 */
enum tg_status tg_dataset_batch(const struct tg_dataset *ds, struct tg_tape *T, int64_t b,
                                int64_t batch_size, struct tg_tensor **X, struct tg_tensor **y);

/* ---- preprocessing ---- */

/*
 * Per-feature mean and standard deviation (population, dividing by n) of X, as new
 * f64 leaves of shape (d) owned by the caller (save them with the model's
 * parameters to apply the same transform later). TG_ERR_NULL, TG_ERR_NOMEM;
 * on failure *mean and *std are NULL.
 */
enum tg_status tg_dataset_feature_stats(const struct tg_dataset *ds, struct tg_tensor **mean,
                                        struct tg_tensor **std);
/*
 * X[:, j] = (X[:, j] - mean[j]) / std[j], with mean and std from
 * tg_dataset_feature_stats of the training set (apply to train and test alike).
 * A feature with std[j] == 0 (constant on the training set) is only centered.
 * TG_ERR_NULL, TG_ERR_SHAPE (mean or std not of shape (d)), TG_ERR_VALUE (a
 * negative or non-finite std).
 */
enum tg_status tg_dataset_standardize(struct tg_dataset *ds, const struct tg_tensor *mean,
                                      const struct tg_tensor *std);

/*
 * Splits ds into two new datasets (copies; ds is unchanged): *test gets the first
 * round(n * test_fraction) rows of the visiting order, *train the rest. Shuffle
 * first (tg_dataset_shuffle) for a random split. TG_ERR_NULL, TG_ERR_VALUE (a
 * fraction outside (0, 1) or one that leaves a side empty), TG_ERR_NOMEM; on
 * failure *train and *test are NULL.
 */
enum tg_status tg_dataset_split(const struct tg_dataset *ds, double test_fraction,
                                struct tg_dataset **train, struct tg_dataset **test);

#ifdef __cplusplus
}
#endif
#endif
