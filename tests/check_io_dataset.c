/*
 * tests/check_io_dataset.c - datasets: the IDX and CSV readers, the dataset
 * object, shuffling, batches, standardization and splits (the "dataset" tcase of
 * the io suite, run by tests/check_io.c).
 *
 * The IDX fixtures come from tests/data/gen_idx_fixtures.py (struct + gzip), the
 * crafted IDX and CSV files from tests/make_crafted.py (tests/data/crafted/); the
 * Fashion-MNIST values were derived with numpy from the installed files.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <tapegrad/tapegrad.h>
#include "io_common.h"

#define FASHION "/usr/share/datasets/fashion-mnist/"

/* ======================== datasets: IDX ======================== */

START_TEST(test_idx_fixtures)
{
    /* tiny-images: u8 (5, 3, 4), element i = (37 i + 11) % 256 */
    struct tg_tensor *im = tg_dataset_read_idx(DATA "tiny-images-idx3-ubyte.gz", TG_F32);
    ck_assert_msg(im != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_rank(im), 3);
    ck_assert_int_eq(tg_tensor_dim(im, 0), 5);
    ck_assert_int_eq(tg_tensor_dim(im, 1), 3);
    ck_assert_int_eq(tg_tensor_dim(im, 2), 4);
    for (int i = 0; i < 60; i++) ck_assert_double_eq(tg_tensor_get(im, i), (37 * i + 11) % 256);
    /* labels 3 1 4 1 5, gzipped and plain */
    struct tg_tensor *lg = tg_dataset_read_idx(DATA "tiny-labels-idx1-ubyte.gz", TG_F64);
    struct tg_tensor *lp = tg_dataset_read_idx(DATA "tiny-labels-idx1-ubyte", TG_F64);
    const double labels[5] = {3, 1, 4, 1, 5};
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(tg_tensor_get(lg, i), labels[i]);
        ck_assert_double_eq(tg_tensor_get(lp, i), labels[i]);
    }
    /* i16 (2, 3): -300 -1 0 1 255 32767; f64 (3): 0.1 -2.5 1e300 */
    struct tg_tensor *s = tg_dataset_read_idx(DATA "tiny-i16-idx2.gz", TG_F64);
    const double sv[6] = {-300, -1, 0, 1, 255, 32767};
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_get(s, i), sv[i]);
    struct tg_tensor *d = tg_dataset_read_idx(DATA "tiny-f64-idx1", TG_F64);
    ck_assert_double_eq(tg_tensor_get(d, 0), 0.1);
    ck_assert_double_eq(tg_tensor_get(d, 1), -2.5);
    ck_assert_double_eq(tg_tensor_get(d, 2), 1e300);
    tg_tensor_free(im);
    tg_tensor_free(lg);
    tg_tensor_free(lp);
    tg_tensor_free(s);
    tg_tensor_free(d);
}
END_TEST

/* Broken IDX files, plain and gzipped. */
static const struct idx_case {
    unsigned char bytes[24];
    size_t n;
    const char *expect;
} idx_cases[] = {
    {{0}, 0, "too short for the IDX magic"},
    {{0, 0, 8}, 3, "too short for the IDX magic"},
    {{1, 0, 8, 1, 0, 0, 0, 1, 7}, 9, "bad IDX magic 0x01000801"},
    {{0, 0, 0x0A, 1, 0, 0, 0, 1, 7}, 9, "bad IDX magic"},
    {{0, 0, 8, 0}, 4, "IDX rank 0"},
    {{0, 0, 8, 9}, 4, "IDX rank 9"},
    {{0, 0, 8, 2, 0, 0, 0, 2, 0, 0}, 10, "truncated IDX header"},
    {{0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3}, 11, "announces 4 bytes of data, the file has 3"},
    {{0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3}, 11, "bytes after the 2 bytes of data"},
    {{0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0}, 14, "announces 8 bytes"},
    {{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1},
     9,
     "declares (4294967295), 17179869180 bytes, more than the limit"},
    {{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
     16,
     "too large"},
};

START_TEST(test_idx_errors)
{
    const struct idx_case *c = &idx_cases[_i];
    make_tmpdir();
    const char *plain = tmp_path("bad-idx");
    write_bytes(plain, c->bytes, c->n);
    ck_assert_ptr_null(tg_dataset_read_idx(plain, TG_F32));
    ck_assert_error(tg_last_status(),
                    strstr(c->expect, "large") || strstr(c->expect, "limit") ? TG_ERR_RANGE
                                                                             : TG_ERR_FORMAT,
                    c->expect);
    ck_assert_error(tg_last_status(), tg_last_status(), "bad-idx");
    gzFile g = gzopen(tmp_path("bad-idx.gz"), "wb");
    ck_assert_int_eq(gzwrite(g, c->bytes, (unsigned)c->n), (int)c->n);
    gzclose(g);
    ck_assert_ptr_null(tg_dataset_read_idx(tmp_path("bad-idx.gz"), TG_F32));
    ck_assert_error(tg_last_status(),
                    strstr(c->expect, "large") || strstr(c->expect, "limit") ? TG_ERR_RANGE
                                                                             : TG_ERR_FORMAT,
                    c->expect);
    remove_tmpdir();
}
END_TEST

START_TEST(test_idx_io_and_gzip_errors)
{
    make_tmpdir();
    ck_assert_ptr_null(tg_dataset_read_idx(tmp_path("none.gz"), TG_F32));
    ck_assert_error(tg_last_status(), TG_ERR_IO, "none.gz");
    ck_assert_ptr_null(tg_dataset_read_idx(NULL, TG_F32));
    ck_assert_error(tg_last_status(), TG_ERR_NULL, "tg_dataset_read_idx");
    ck_assert_ptr_null(tg_dataset_read_idx(DATA "tiny-f64-idx1", (enum tg_dtype)7));
    ck_assert_error(tg_last_status(), TG_ERR_DTYPE, "unknown dtype");
    /* a gzip stream whose compressed data is garbage, and one cut short */
    FILE *f = fopen(DATA "tiny-images-idx3-ubyte.gz", "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(tmp_path("cut.gz"), buf, n - 30);
    ck_assert_ptr_null(tg_dataset_read_idx(tmp_path("cut.gz"), TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    for (size_t i = 12; i < n - 8; i++) buf[i] ^= 0xa5;
    write_bytes(tmp_path("garbage.gz"), buf, n);
    ck_assert_ptr_null(tg_dataset_read_idx(tmp_path("garbage.gz"), TG_F32));
    ck_assert_error(tg_last_status(), TG_ERR_FORMAT, "garbage.gz");
    remove_tmpdir();
}
END_TEST

START_TEST(test_dataset_load_idx)
{
    struct tg_dataset *ds = tg_dataset_load_idx(DATA "tiny-images-idx3-ubyte.gz",
                                                DATA "tiny-labels-idx1-ubyte", TG_F64, 1.0 / 255);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_len(ds), 5);
    ck_assert_int_eq(tg_dataset_features(ds), 12);
    for (int i = 0; i < 60; i++)
        ck_assert_double_eq_tol(tg_tensor_get(tg_dataset_x(ds), i), (37 * i + 11) % 256 / 255.0,
                                1e-15);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 2), 4);
    tg_dataset_free(ds);
    /* images (5, 3, 4) against labels (2, 3): not (n) */
    ck_assert_ptr_null(
        tg_dataset_load_idx(DATA "tiny-images-idx3-ubyte.gz", DATA "tiny-i16-idx2.gz", TG_F32, 1));
    ck_assert_error(tg_last_status(), TG_ERR_MISMATCH, "(5,3,4)");
    /* counts differ: 5 images, 3 labels */
    ck_assert_ptr_null(
        tg_dataset_load_idx(DATA "tiny-images-idx3-ubyte.gz", DATA "tiny-f64-idx1", TG_F32, 1));
    ck_assert_error(tg_last_status(), TG_ERR_MISMATCH, "labels");
    ck_assert_ptr_null(
        tg_dataset_load_idx(DATA "tiny-images-idx3-ubyte.gz", DATA "missing.gz", TG_F32, 1));
    ck_assert_error(tg_last_status(), TG_ERR_IO, "missing.gz");
}
END_TEST

/* The real Fashion-MNIST files; values derived with numpy from the same files. */
START_TEST(test_fashion_mnist)
{
    if (access(FASHION "train-images-idx3-ubyte.gz", R_OK) ||
        access(FASHION "t10k-labels-idx1-ubyte.gz", R_OK)) {
        printf("test_fashion_mnist: skipped (" FASHION " not installed)\n");
        return;
    }
    struct tg_dataset *tr = tg_dataset_load_idx(FASHION "train-images-idx3-ubyte.gz",
                                                FASHION "train-labels-idx1-ubyte.gz", TG_F32, 1);
    ck_assert_msg(tr != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_len(tr), 60000);
    ck_assert_int_eq(tg_dataset_features(tr), 28 * 28);
    const struct tg_tensor *X = tg_dataset_x(tr), *y = tg_dataset_y(tr);
    const double first_labels[5] = {9, 0, 0, 3, 0};
    for (int i = 0; i < 5; i++) ck_assert_double_eq(tg_tensor_get(y, i), first_labels[i]);
    ck_assert_double_eq(tg_tensor_get(y, 59999), 5);
    ck_assert_double_eq(tg_tensor_get(X, 96), 1);
    ck_assert_double_eq(tg_tensor_get(X, 99), 13);
    ck_assert_double_eq(tg_tensor_get(X, 100), 73);
    ck_assert_double_eq(tg_tensor_get(X, 14 * 28 + 14), 217);
    double sum = 0, label_sum = 0;
    for (int i = 0; i < 784; i++) sum += tg_tensor_get(X, i);
    for (int i = 0; i < 60000; i++) label_sum += tg_tensor_get(y, i);
    ck_assert_double_eq(sum, 76247);
    ck_assert_double_eq(label_sum, 270000);
    tg_dataset_free(tr);
    struct tg_dataset *te = tg_dataset_load_idx(FASHION "t10k-images-idx3-ubyte.gz",
                                                FASHION "t10k-labels-idx1-ubyte.gz", TG_F32, 1);
    ck_assert_int_eq(tg_dataset_len(te), 10000);
    ck_assert_int_eq(tg_dataset_features(te), 784);
    const double test_labels[5] = {9, 2, 1, 1, 6};
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(tg_tensor_get(tg_dataset_y(te), i), test_labels[i]);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(te), 215), 3);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(te), 14 * 28 + 14), 110);
    tg_dataset_free(te);
}
END_TEST

/* ======================== datasets: CSV ======================== */

START_TEST(test_csv)
{
    /* small.csv: sepal_length, sepal_width, "species", petal_length; a blank line */
    struct tg_dataset_csv_options o = {.dtype = TG_F64, .target = "species"};
    struct tg_dataset *ds = tg_dataset_load_csv(DATA "small.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_len(ds), 4);
    ck_assert_int_eq(tg_dataset_features(ds), 3);
    const double X[12] = {5.1, 3.5, 1.4, 4.9, 3.0, 1.4, 6.3, 3.3, 6.0, 7.0, 3.2, 4.7};
    const double y[4] = {0, 0, 2, 1};
    for (int i = 0; i < 12; i++) ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), i), X[i]);
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), i), y[i]);
    tg_dataset_free(ds);
    /* defaults (opt NULL): the last column is the target, f32 */
    ds = tg_dataset_load_csv(DATA "small.csv", NULL);
    ck_assert_int_eq(tg_tensor_dtype(tg_dataset_x(ds)), TG_F32);
    ck_assert_double_eq_tol(tg_tensor_get(tg_dataset_y(ds), 2), 6.0, 1e-6);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 5), 0); /* species of row 1 */
    tg_dataset_free(ds);
    /* semicolons, CRLF, target by index 0 */
    o = (struct tg_dataset_csv_options){.dtype = TG_F64, .delimiter = ';', .target_index = 0};
    ds = tg_dataset_load_csv(DATA "semicolon_crlf.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 1), -4.5);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 2), 0.5);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 3), 6);
    tg_dataset_free(ds);
    /* no header: the first line is data */
    o = (struct tg_dataset_csv_options){.dtype = TG_F64, .no_header = true, .target_index = -2};
    make_tmpdir();
    write_bytes(tmp_path("nh.csv"), "1,2,3\n4,5,6", 11);
    ds = tg_dataset_load_csv(tmp_path("nh.csv"), &o);
    ck_assert_int_eq(tg_dataset_len(ds), 2);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 1), 5);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 1), 3);
    tg_dataset_free(ds);
    remove_tmpdir();
}
END_TEST

static const struct csv_case {
    const char *text;
    struct tg_dataset_csv_options opt;
    enum tg_status st;
    const char *expect;
} csv_cases[] = {
    {"a,b,c\n1,2,3\n4,5\n",
     {.target_index = -1},
     TG_ERR_FORMAT,
     "bad.csv:3: expected 3 fields, found 2"},
    {"a,b,c\n1,2,3\n4,5,6,7\n", {.target_index = -1}, TG_ERR_FORMAT, "found 4"},
    {"a,b,c\n1, abc,3\n",
     {.target_index = -1},
     TG_ERR_FORMAT,
     "bad.csv:2:4: field 2 \"abc\" is not a finite number"},
    {"a,b,c\n1,,3\n", {.target_index = -1}, TG_ERR_FORMAT, "bad.csv:2:3: field 2 \"\""},
    {"a,b,c\n\n1,2,nan\n", {.target_index = -1}, TG_ERR_FORMAT, "bad.csv:3:5: field 3"},
    {"a,b,c\n1,2,3x\n", {.target_index = -1}, TG_ERR_FORMAT, "\"3x\""},
    {"a,b,c\n1,2,3\n", {.target = "d"}, TG_ERR_VALUE, "no column named \"d\""},
    {"1,2,3\n", {.target = "a", .no_header = true}, TG_ERR_VALUE, "has no header"},
    {"a,b,c\n1,2,3\n", {.target_index = 3}, TG_ERR_VALUE, "target index 3 out of range"},
    {"a,b,c\n1,2,3\n", {.target_index = -4}, TG_ERR_VALUE, "target index -4"},
    {"a\n1\n2\n", {.target_index = -1}, TG_ERR_VALUE, "1 column; need a target"},
    {"a,b,c\n\n", {.target_index = -1}, TG_ERR_VALUE, "no data rows"},
    {"", {.target_index = -1}, TG_ERR_VALUE, "0 columns"},
    {"a,b\n1,2\n", {.target_index = -1, .delimiter = '\n'}, TG_ERR_VALUE, "delimiter"},
    {"a,b\n1,2\n3\0,4\n", {.target_index = -1}, TG_ERR_FORMAT, "bad.csv:3: a NUL byte"},
    {"a,b\n1,2\n", {.target_index = -1, .dtype = (enum tg_dtype)5}, TG_ERR_DTYPE, "dtype"},
};

START_TEST(test_csv_errors)
{
    const struct csv_case *c = &csv_cases[_i];
    make_tmpdir();
    size_t len = strlen(c->text);
    if (strstr(c->expect, "NUL")) len += 1 + strlen(c->text + len + 1);
    write_bytes(tmp_path("bad.csv"), c->text, len);
    ck_assert_ptr_null(tg_dataset_load_csv(tmp_path("bad.csv"), &c->opt));
    ck_assert_error(tg_last_status(), c->st, c->expect);
    ck_assert_error(tg_last_status(), c->st, "tg_dataset_load_csv");
    ck_assert_ptr_null(tg_dataset_load_csv(tmp_path("absent.csv"), &c->opt));
    ck_assert_int_ne(tg_last_status(), TG_OK);
    remove_tmpdir();
}
END_TEST

/* ======================== the dataset object ======================== */

/* n rows of d features: X[i][j] = 10 i + j, y[i] = i. */
static struct tg_dataset *grid(enum tg_dtype dt, int64_t n, int64_t d)
{
    struct tg_tensor *X = tg_tensor_zeros(dt, 2, (int64_t[]){n, d});
    struct tg_tensor *y = tg_tensor_arange(dt, 0, (double)n, 1);
    for (int64_t i = 0; i < n * d; i++) tg_tensor_set(X, i, 10.0 * (i / d) + i % d);
    struct tg_dataset *ds = tg_dataset_new(X, y);
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* Each row of a batch is intact: X[r][j] = 10 y[r] + j. Returns the sum of y. */
static double check_rows(const struct tg_tensor *X, const struct tg_tensor *y, int64_t d)
{
    double s = 0;
    for (int64_t r = 0; r < tg_tensor_dim(y, 0); r++) {
        double label = tg_tensor_get(y, r);
        for (int64_t j = 0; j < d; j++)
            ck_assert_double_eq(tg_tensor_get(X, r * d + j), 10 * label + (double)j);
        s += label;
    }
    return s;
}

START_TEST(test_dataset_new_errors)
{
    int64_t s23[2] = {2, 3}, s3[1] = {3};
    ck_assert_ptr_null(
        tg_dataset_new(tg_tensor_zeros(TG_F32, 2, s23), tg_tensor_zeros(TG_F32, 1, s3)));
    ck_assert_error(tg_last_status(), TG_ERR_SHAPE, "X (2,3) and y (3)");
    ck_assert_ptr_null(tg_dataset_new(tg_tensor_zeros(TG_F32, 2, s23),
                                      tg_tensor_zeros(TG_F64, 1, (int64_t[]){2})));
    ck_assert_error(tg_last_status(), TG_ERR_DTYPE, "X is f32 but y is f64");
    tg_clear_error();
    ck_assert_ptr_null(tg_dataset_new(NULL, tg_tensor_zeros(TG_F32, 1, s3)));
    ck_assert_error(tg_last_status(), TG_ERR_NULL, "X is NULL");
    ck_assert_ptr_null(tg_dataset_new(tg_tensor_zeros(TG_F32, 2, (int64_t[]){0, 3}),
                                      tg_tensor_zeros(TG_F32, 1, (int64_t[]){0})));
    ck_assert_error(tg_last_status(), TG_ERR_SHAPE, "n >= 1");
    tg_dataset_free(NULL);
    ck_assert_int_eq(tg_dataset_len(NULL), 0);
}
END_TEST

START_TEST(test_shuffle)
{
    struct tg_dataset *a = grid(TG_F64, 50, 2), *b = grid(TG_F64, 50, 2);
    struct tg_rng r1, r2;
    tg_rng_seed(&r1, 7);
    tg_rng_seed(&r2, 7);
    ck_assert_int_eq(tg_dataset_shuffle(a, &r1), TG_OK);
    ck_assert_int_eq(tg_dataset_shuffle(b, &r2), TG_OK);
    struct tg_tensor *Xa = tg_tensor_zeros(TG_F64, 2, (int64_t[]){50, 2});
    struct tg_tensor *ya = tg_tensor_zeros(TG_F64, 1, (int64_t[]){50});
    struct tg_tensor *Xb = tg_tensor_zeros(TG_F64, 2, (int64_t[]){50, 2});
    struct tg_tensor *yb = tg_tensor_zeros(TG_F64, 1, (int64_t[]){50});
    ck_assert_int_eq(tg_dataset_batch_into(a, 0, Xa, ya), TG_OK);
    ck_assert_int_eq(tg_dataset_batch_into(b, 0, Xb, yb), TG_OK);
    bool seen[50] = {false}, moved = false;
    for (int i = 0; i < 50; i++) {
        double v = tg_tensor_get(ya, i);
        ck_assert_double_eq(v, tg_tensor_get(yb, i)); /* same seed, same order */
        ck_assert(!seen[(int)v]);                     /* a permutation */
        seen[(int)v] = true;
        moved |= v != i;
    }
    ck_assert(moved);
    ck_assert_double_eq(check_rows(Xa, ya, 2), 49 * 50 / 2);
    ck_assert_int_eq(tg_dataset_shuffle(a, NULL), TG_ERR_NULL);
    tg_tensor_free(Xa);
    tg_tensor_free(ya);
    tg_tensor_free(Xb);
    tg_tensor_free(yb);
    tg_dataset_free(a);
    tg_dataset_free(b);
    /* uniform: each of the 6 orders of 3 rows comes up 6000/6 times, within 5 sigma */
    struct tg_dataset *t = grid(TG_F32, 3, 1);
    struct tg_tensor *X = tg_tensor_zeros(TG_F32, 2, (int64_t[]){3, 1});
    struct tg_tensor *y = tg_tensor_zeros(TG_F32, 1, (int64_t[]){3});
    int counts[27] = {0};
    for (int k = 0; k < 6000; k++) {
        tg_dataset_shuffle(t, &r1);
        tg_dataset_batch_into(t, 0, X, y);
        counts[(int)(9 * tg_tensor_get(y, 0) + 3 * tg_tensor_get(y, 1) + tg_tensor_get(y, 2))]++;
    }
    const int perms[6] = {5, 7, 11, 15, 19, 21}; /* 012 021 102 120 201 210 in base 3 */
    for (int i = 0; i < 6; i++)
        ck_assert_msg(abs(counts[perms[i]] - 1000) < 145, "order %d: %d", perms[i],
                      counts[perms[i]]);
    tg_tensor_free(X);
    tg_tensor_free(y);
    tg_dataset_free(t);
}
END_TEST

START_TEST(test_batches)
{
    struct tg_dataset *ds = grid(TG_F32, 10, 3);
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_dataset_shuffle(ds, &rng);
    ck_assert_int_eq(tg_dataset_batch_count(ds, 4), 3);
    ck_assert_int_eq(tg_dataset_batch_count(ds, 10), 1);
    ck_assert_int_eq(tg_dataset_batch_count(ds, 0), 0);
    ck_assert_error(tg_last_status(), TG_ERR_VALUE, "batch_size 0");
    /* caller-provided tensors */
    struct tg_tensor *X = tg_tensor_zeros(TG_F32, 2, (int64_t[]){4, 3});
    struct tg_tensor *y = tg_tensor_zeros(TG_F32, 1, (int64_t[]){4});
    for (int64_t s = 0; s + 4 <= 10; s += 4) {
        ck_assert_int_eq(tg_dataset_batch_into(ds, s, X, y), TG_OK);
        check_rows(X, y, 3);
    }
    ck_assert_error(tg_dataset_batch_into(ds, 8, X, y), TG_ERR_RANGE, "rows [8, 12)");
    struct tg_tensor *X64 = tg_tensor_zeros(TG_F64, 2, (int64_t[]){4, 3});
    ck_assert_error(tg_dataset_batch_into(ds, 0, X64, y), TG_ERR_DTYPE, "f32");
    struct tg_tensor *Xw = tg_tensor_zeros(TG_F32, 2, (int64_t[]){4, 2});
    ck_assert_error(tg_dataset_batch_into(ds, 0, Xw, y), TG_ERR_SHAPE, "(4,2)");
    /* tape constants: every row once per epoch; no allocation once the tape is warm */
    struct tg_tape *T = tg_tape_new();
    size_t mallocs = 0;
    for (int epoch = 0; epoch < 3; epoch++) {
        tg_dataset_shuffle(ds, &rng);
        double sum = 0;
        for (int64_t b = 0; b < tg_dataset_batch_count(ds, 4); b++) {
            tg_tape_reset(T);
            struct tg_tensor *bx, *by;
            ck_assert_int_eq(tg_dataset_batch(ds, T, b, 4, &bx, &by), TG_OK);
            ck_assert_int_eq(tg_tensor_dim(bx, 0), b == 2 ? 2 : 4);
            sum += check_rows(bx, by, 3);
        }
        ck_assert_double_eq(sum, 45);
        struct tg_tape_stats st;
        tg_tape_stats(T, &st);
        if (epoch == 1) mallocs = st.n_mallocs;
        if (epoch == 2) ck_assert_uint_eq(st.n_mallocs, mallocs);
    }
    struct tg_tensor *bx = X, *by = y;
    ck_assert_error(tg_dataset_batch(ds, T, 3, 4, &bx, &by), TG_ERR_RANGE, "batch 3 out of range");
    ck_assert_ptr_null(bx);
    ck_assert_error(tg_dataset_batch(ds, T, 0, 0, &bx, &by), TG_ERR_VALUE, "batch_size 0");
    ck_assert_error(tg_dataset_batch(ds, NULL, 0, 4, &bx, &by), TG_ERR_NULL, "T is NULL");
    tg_tape_free(T);
    tg_tensor_free(X);
    tg_tensor_free(y);
    tg_tensor_free(X64);
    tg_tensor_free(Xw);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_standardize_and_split)
{
    /* train: columns [1 2 3 4] (mean 2.5, std sqrt(1.25)), [7 7 7 7] (std 0) */
    double tr[8] = {1, 7, 2, 7, 3, 7, 4, 7}, te[4] = {0, 9, 5, 7};
    struct tg_dataset *train = tg_dataset_new(tg_tensor_from(TG_F64, 2, (int64_t[]){4, 2}, tr),
                                              tg_tensor_zeros(TG_F64, 1, (int64_t[]){4}));
    struct tg_dataset *test = tg_dataset_new(tg_tensor_from(TG_F64, 2, (int64_t[]){2, 2}, te),
                                             tg_tensor_zeros(TG_F64, 1, (int64_t[]){2}));
    struct tg_tensor *mean, *std;
    ck_assert_int_eq(tg_dataset_feature_stats(train, &mean, &std), TG_OK);
    ck_assert_double_eq(tg_tensor_get(mean, 0), 2.5);
    ck_assert_double_eq(tg_tensor_get(mean, 1), 7);
    ck_assert_double_eq_tol(tg_tensor_get(std, 0), sqrt(1.25), 1e-15);
    ck_assert_double_eq(tg_tensor_get(std, 1), 0);
    ck_assert_int_eq(tg_dataset_standardize(train, mean, std), TG_OK);
    ck_assert_int_eq(tg_dataset_standardize(test, mean, std), TG_OK);
    const struct tg_tensor *X = tg_dataset_x(test);
    ck_assert_double_eq_tol(tg_tensor_get(X, 0), -2.5 / sqrt(1.25), 1e-15);
    ck_assert_double_eq(tg_tensor_get(X, 1), 2); /* std 0: only centered */
    ck_assert_double_eq_tol(tg_tensor_get(X, 2), 2.5 / sqrt(1.25), 1e-15);
    struct tg_tensor *m2, *s2; /* the standardized training set has mean 0, std 1 */
    tg_dataset_feature_stats(train, &m2, &s2);
    ck_assert_double_eq_tol(tg_tensor_get(m2, 0), 0, 1e-15);
    ck_assert_double_eq_tol(tg_tensor_get(s2, 0), 1, 1e-15);
    struct tg_tensor *bad = tg_tensor_full(TG_F64, 1, (int64_t[]){2}, -1);
    ck_assert_error(tg_dataset_standardize(test, mean, bad), TG_ERR_VALUE, "std -1");
    struct tg_tensor *m3 = tg_tensor_zeros(TG_F64, 1, (int64_t[]){3});
    ck_assert_error(tg_dataset_standardize(test, m3, std), TG_ERR_SHAPE, "mean (3)");
    tg_tensor_free(m3);
    tg_tensor_free(bad);
    tg_tensor_free(mean);
    tg_tensor_free(std);
    tg_tensor_free(m2);
    tg_tensor_free(s2);
    tg_dataset_free(train);
    tg_dataset_free(test);
    /* split follows the visiting order */
    struct tg_dataset *ds = grid(TG_F64, 10, 2), *a, *b;
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_dataset_shuffle(ds, &rng);
    ck_assert_int_eq(tg_dataset_split(ds, 0.3, &a, &b), TG_OK);
    ck_assert_int_eq(tg_dataset_len(a), 7);
    ck_assert_int_eq(tg_dataset_len(b), 3);
    double sum = check_rows(tg_dataset_x(a), tg_dataset_y(a), 2) +
                 check_rows(tg_dataset_x(b), tg_dataset_y(b), 2);
    ck_assert_double_eq(sum, 45);
    struct tg_tensor *X3 = tg_tensor_zeros(TG_F64, 2, (int64_t[]){3, 2});
    struct tg_tensor *y3 = tg_tensor_zeros(TG_F64, 1, (int64_t[]){3});
    tg_dataset_batch_into(ds, 0, X3, y3);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(tg_tensor_get(tg_dataset_y(b), i), tg_tensor_get(y3, i));
    tg_tensor_free(X3);
    tg_tensor_free(y3);
    tg_dataset_free(a);
    tg_dataset_free(b);
    ck_assert_error(tg_dataset_split(ds, 0.01, &a, &b), TG_ERR_VALUE, "leaves the test or train");
    ck_assert_ptr_null(a);
    ck_assert_error(tg_dataset_split(ds, 1.0, &a, &b), TG_ERR_VALUE, "test_fraction 1");
    ck_assert_error(tg_dataset_split(ds, NAN, &a, &b), TG_ERR_VALUE, "test_fraction");
    tg_dataset_free(ds);
}
END_TEST

/* ======================== crafted files (tests/make_crafted.py) ======================== */

#define CRAFTED DATA "crafted/"

/* IDX files that must fail, and how (the reader used to accept all but the bomb:
 * NaN and Inf as data, 1e300 as an F32 inf, garbage or nothing after the gzip
 * member; the bomb was inflated into a buffer of the declared 2 GB). */
static const struct crafted_idx {
    const char *file;
    enum tg_dtype dt;
    enum tg_status st;
    const char *expect;
} crafted_idx[] = {
    {"f64-inf.idx", TG_F64, TG_ERR_FORMAT, "element 1 at (1) is infinite"},
    {"f64-nan.idx", TG_F32, TG_ERR_FORMAT, "element 3 at (1,1) is NaN"},
    {"f32-nan.idx.gz", TG_F64, TG_ERR_FORMAT, "element 0 at (0) is NaN"},
    {"f64-huge.idx", TG_F32, TG_ERR_FORMAT, "element 2 at (2) (1e+300) is too large for f32"},
    {"bomb.idx.gz", TG_F32, TG_ERR_RANGE,
     "declares (2000000000), 8000000000 bytes, more than the limit of 1073741824 bytes"},
    {"garbage-after.idx.gz", TG_F32, TG_ERR_FORMAT,
     "bytes after the end of the gzip data (at byte 32)"},
    {"zeros-after.idx.gz", TG_F32, TG_ERR_FORMAT, "bytes after the end of the gzip data"},
    {"no-trailer.idx.gz", TG_F32, TG_ERR_FORMAT, "truncated gzip data"},
};

START_TEST(test_crafted_idx)
{
    const struct crafted_idx *c = &crafted_idx[_i];
    char path[512];
    snprintf(path, sizeof path, CRAFTED "%s", c->file);
    tg_clear_error();
    ck_assert_ptr_null(tg_dataset_read_idx(path, c->dt));
    ck_assert_error(tg_last_status(), c->st, c->expect);
    ck_assert_error(tg_last_status(), c->st, c->file);
    /* as the images and the labels of a dataset: the same (the (2,2) file cannot
       be labels) */
    if (strcmp(c->file, "f64-nan.idx")) {
        ck_assert_ptr_null(tg_dataset_load_idx(path, path, c->dt, 1.0));
        ck_assert_error(tg_last_status(), c->st, c->expect);
    }
}
END_TEST

START_TEST(test_crafted_idx_valid)
{
    /* two concatenated gzip members (as `cat a.gz b.gz` makes) are one file */
    struct tg_tensor *a = tg_dataset_read_idx(CRAFTED "two-members.idx.gz", TG_F64);
    ck_assert_msg(a != NULL, "%s", tg_last_error());
    const double want[4] = {3, 1, 4, 1};
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_get(a, i), want[i]);
    tg_tensor_free(a);
    /* 1e300 is fine as F64 */
    a = tg_dataset_read_idx(CRAFTED "f64-huge.idx", TG_F64);
    ck_assert_msg(a != NULL, "%s", tg_last_error());
    ck_assert_double_eq(tg_tensor_get(a, 2), 1e300);
    tg_tensor_free(a);
    /* a scale that makes a value too large: the scale's fault, TG_ERR_RANGE */
    ck_assert_ptr_null(
        tg_dataset_load_idx(CRAFTED "labels.idx.gz", CRAFTED "labels.idx.gz", TG_F32, 1e38));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE,
                    "element 2 at (2) (4) times scale 1e+38 is too large for f32");
    ck_assert_ptr_null(
        tg_dataset_load_idx(CRAFTED "labels.idx.gz", CRAFTED "labels.idx.gz", TG_F64, NAN));
    ck_assert_error(tg_last_status(), TG_ERR_VALUE, "scale nan is not finite");
    /* the limit: 4 elements of 8 bytes as F64 */
    ck_assert_ptr_null(tg_dataset_read_idx_limit(CRAFTED "labels.idx.gz", TG_F64, 31));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE, "(4), 32 bytes, more than the limit of 31");
    a = tg_dataset_read_idx_limit(CRAFTED "labels.idx.gz", TG_F64, 32);
    ck_assert_msg(a != NULL, "%s", tg_last_error());
    tg_tensor_free(a);
    ck_assert_ptr_null(
        tg_dataset_load_idx_limit(CRAFTED "labels.idx.gz", CRAFTED "labels.idx.gz", TG_F32, 1, 15));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE, "tg_dataset_load_idx");
    struct tg_dataset *ds =
        tg_dataset_load_idx_limit(CRAFTED "labels.idx.gz", CRAFTED "labels.idx.gz", TG_F32, 1, 16);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_crafted_csv)
{
    /* a UTF-8 byte order mark is not part of the first name */
    struct tg_dataset_csv_options o = {.dtype = TG_F64, .target = "x"};
    struct tg_dataset *ds = tg_dataset_load_csv(CRAFTED "bom.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 1), 3);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 1), 4);
    tg_dataset_free(ds);
    /* CR-only line ends: two rows, not "no data rows" */
    o = (struct tg_dataset_csv_options){.dtype = TG_F64, .target_index = -1};
    ds = tg_dataset_load_csv(CRAFTED "cr-only.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_dataset_len(ds), 2);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 1), 4);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 1), 3);
    tg_dataset_free(ds);
    /* hexadecimal, which strtod takes */
    ck_assert_ptr_null(tg_dataset_load_csv(CRAFTED "hex.csv", &o));
    ck_assert_error(tg_last_status(), TG_ERR_FORMAT, "hex.csv:3:1: field 1 \"0x10\"");
    ck_assert_ptr_null(tg_dataset_load_csv(CRAFTED "hex-float.csv", &o));
    ck_assert_error(tg_last_status(), TG_ERR_FORMAT, "hex-float.csv:3:1: field 1 \"0x1p3\"");
    /* the limit: the file (15 bytes), then the values (8 bytes each) */
    o.max_bytes = 14;
    ck_assert_ptr_null(tg_dataset_load_csv(CRAFTED "bom.csv", &o));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE, "bom.csv: larger than the limit of 14 bytes");
    o.max_bytes = 31; /* the second row's values would make 32 */
    ck_assert_ptr_null(tg_dataset_load_csv(CRAFTED "bom.csv", &o));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE, "bom.csv:3: the values take more than");
    o.max_bytes = 32;
    ds = tg_dataset_load_csv(CRAFTED "bom.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    tg_dataset_free(ds);
}
END_TEST

TCase *io_dataset_tcase(void)
{
    TCase *tc = tcase_create("dataset");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_idx_fixtures);
    tcase_add_loop_test(tc, test_idx_errors, 0, sizeof idx_cases / sizeof idx_cases[0]);
    tcase_add_test(tc, test_idx_io_and_gzip_errors);
    tcase_add_test(tc, test_dataset_load_idx);
    tcase_add_test(tc, test_fashion_mnist);
    tcase_add_test(tc, test_csv);
    tcase_add_loop_test(tc, test_csv_errors, 0, sizeof csv_cases / sizeof csv_cases[0]);
    tcase_add_test(tc, test_dataset_new_errors);
    tcase_add_test(tc, test_shuffle);
    tcase_add_test(tc, test_batches);
    tcase_add_test(tc, test_standardize_and_split);
    tcase_add_loop_test(tc, test_crafted_idx, 0, sizeof crafted_idx / sizeof crafted_idx[0]);
    tcase_add_test(tc, test_crafted_idx_valid);
    tcase_add_test(tc, test_crafted_csv);
    return tc;
}
