/*
 * tests/check_io.c - named parameters, safetensors checkpoints and datasets.
 *
 * Reference data comes from independent writers: tests/reference/
 * safetensors_interop.py (torch + struct/json) wrote tests/data/
 * torch_written.safetensors and reads back what we write; tests/data/
 * gen_idx_fixtures.py (struct + gzip) wrote the IDX fixtures; the Fashion-MNIST
 * values were derived with numpy from the installed files. Corrupt inputs are
 * built here byte by byte, each one breaking a single rule of the format.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>
#include <tapegrad/tapegrad.h>

#define DATA    TG_SOURCE_DIR "/tests/data/"
#define FASHION "/usr/share/datasets/fashion-mnist/"

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tg-io-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    rmdir(tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Asserts that status expression `st` (evaluated once) is `want` and that the
 * message contains `substr`. */
#define ck_assert_error(st, want, substr)                                                          \
    do {                                                                                           \
        enum tg_status st_ = (st), want_ = (want);                                                 \
        ck_assert_msg(st_ == want_, "status %s, want %s (%s)", tg_status_str(st_),                 \
                      tg_status_str(want_), tg_last_error());                                      \
        ck_assert_msg(strstr(tg_last_error(), substr), "message \"%s\" lacks \"%s\"",              \
                      tg_last_error(), substr);                                                    \
    } while (0)

/* ======================== named parameters ======================== */

static struct tg_tensor *vec(enum tg_dtype dt, int64_t n, double start)
{
    struct tg_tensor *t = tg_tensor_arange(dt, start, start + (double)n - 0.5, 1);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(test_params_basic)
{
    struct tg_params *p = tg_params_new();
    struct tg_tensor *w = vec(TG_F32, 6, 0), *b = vec(TG_F64, 3, 10), *other = vec(TG_F32, 2, 0);
    ck_assert_int_eq(tg_params_add(p, "layers.0.weight", w), TG_OK);
    ck_assert_int_eq(tg_params_add(p, "layers.0.bias", b), TG_OK);
    ck_assert_int_eq(tg_params_add_owned(p, "extra", tg_scalar(TG_F64, 7)), TG_OK);
    ck_assert_uint_eq(tg_params_count(p), 3);
    ck_assert_str_eq(tg_params_name(p, 0), "layers.0.weight");
    ck_assert_str_eq(tg_params_name(p, 1), "layers.0.bias");
    ck_assert_str_eq(tg_params_name(p, 2), "extra");
    ck_assert_ptr_eq(tg_params_tensor(p, 1), b);
    ck_assert_ptr_eq(tg_params_get(p, "layers.0.weight"), w);
    ck_assert_double_eq(tg_item(tg_params_get(p, "extra")), 7);
    ck_assert_int_eq(tg_params_numel(p), 10);
    /* errors leave the map unchanged */
    ck_assert_error(tg_params_add(p, "layers.0.bias", other), TG_ERR_VALUE, "already present");
    ck_assert_error(tg_params_add(p, "w2", w), TG_ERR_VALUE, "\"layers.0.weight\"");
    ck_assert_error(tg_params_add(p, "", other), TG_ERR_VALUE, "empty name");
    ck_assert_error(tg_params_add(p, "__metadata__", other), TG_ERR_VALUE, "reserved");
    ck_assert_error(tg_params_add(NULL, "x", other), TG_ERR_NULL, "tg_params_add");
    tg_clear_error();
    ck_assert_error(tg_params_add(p, "x", NULL), TG_ERR_NULL, "tensor is NULL");
    /* a NULL from a failed constructor keeps that constructor's message */
    ck_assert_int_eq(tg_params_add_owned(p, "bad", tg_tensor_zeros(TG_F32, 9, (int64_t[9]){1})),
                     TG_ERR_RANGE);
    /* add_owned frees its tensor when it fails (valgrind checks there is no leak) */
    ck_assert_error(tg_params_add_owned(p, "extra", vec(TG_F32, 4, 0)), TG_ERR_VALUE,
                    "already present");
    ck_assert_uint_eq(tg_params_count(p), 3);
    ck_assert_ptr_null(tg_params_get(p, "nope"));
    ck_assert_error(tg_last_status(), TG_ERR_VALUE, "no parameter named \"nope\"");
    ck_assert_ptr_null(tg_params_name(p, 3));
    ck_assert_error(tg_last_status(), TG_ERR_RANGE, "index 3");
    ck_assert_ptr_null(tg_params_tensor(NULL, 0));
    tg_params_free(p); /* frees "extra", not the borrowed ones */
    ck_assert_double_eq(tg_tensor_get(w, 5), 5);
    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_tensor_free(other);
    tg_params_free(NULL);
}
END_TEST

START_TEST(test_params_zero_grad_and_nodes)
{
    struct tg_params *p = tg_params_new();
    struct tg_tensor *w = vec(TG_F64, 3, 1), *frozen = vec(TG_F64, 2, 0);
    tg_tensor_set_requires_grad(w, true);
    tg_params_add(p, "w", w);
    tg_params_add(p, "frozen", frozen);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *loss = tg_sum(T, tg_mul(T, w, w));
    ck_assert_int_eq(tg_backward(loss, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(w, 2), 6);
    ck_assert_int_eq(tg_params_zero_grad(p), TG_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_grad_get(w, i), 0);
    ck_assert_error(tg_params_add(p, "node", tg_mul(T, w, w)), TG_ERR_STATE, "not a leaf");
    ck_assert_error(tg_params_zero_grad(NULL), TG_ERR_NULL, "tg_params_zero_grad");
    tg_tape_free(T);
    tg_params_free(p);
    tg_tensor_free(w);
    tg_tensor_free(frozen);
}
END_TEST

START_TEST(test_params_many_and_meta)
{
    struct tg_params *p = tg_params_new();
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        ck_assert_int_eq(tg_params_add_owned(p, name, tg_scalar(TG_F32, i)), TG_OK);
    }
    for (int i = 1999; i >= 0; i--) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        ck_assert_double_eq(tg_item(tg_params_get(p, name)), i);
        ck_assert_str_eq(tg_params_name(p, (size_t)i), name);
    }
    ck_assert_int_eq(tg_params_numel(p), 2000);
    ck_assert_int_eq(tg_params_meta_set(p, "epoch", "1"), TG_OK);
    ck_assert_int_eq(tg_params_meta_set(p, "arch", "mlp"), TG_OK);
    ck_assert_int_eq(tg_params_meta_set(p, "epoch", "2"), TG_OK);
    ck_assert_uint_eq(tg_params_meta_count(p), 2);
    ck_assert_str_eq(tg_params_meta_key(p, 0), "epoch");
    ck_assert_str_eq(tg_params_meta_value(p, 0), "2");
    ck_assert_str_eq(tg_params_meta_get(p, "arch"), "mlp");
    ck_assert_ptr_null(tg_params_meta_get(p, "none"));
    ck_assert_ptr_null(tg_params_meta_key(p, 2));
    ck_assert_error(tg_params_meta_set(p, "", "x"), TG_ERR_VALUE, "empty key");
    tg_params_free(p);
}
END_TEST

/* An allocator that fails after `budget` allocations. */
static long budget;
static void *limited_malloc(size_t n, void *c)
{
    return budget-- > 0 ? malloc(n) : NULL;
}
static void *limited_realloc(void *p, size_t n, void *c)
{
    return budget-- > 0 ? realloc(p, n) : NULL;
}
static void plain_free(void *p, void *c)
{
    free(p);
}

/* Every allocation failure while building a map is an error, never an exit. */
START_TEST(test_params_out_of_memory)
{
    struct tg_allocator a = {limited_malloc, limited_realloc, plain_free, NULL};
    bool completed = false;
    for (long k = 0; k < 400 && !completed; k++) {
        tg_set_allocator(&a);
        budget = k;
        struct tg_params *p = tg_params_new();
        enum tg_status st = p ? TG_OK : TG_ERR_NOMEM;
        char name[16];
        for (int i = 0; i < 40 && !st; i++) {
            snprintf(name, sizeof name, "p%d", i);
            st = tg_params_add_owned(p, name, tg_scalar(TG_F32, i));
        }
        if (!st) st = tg_params_meta_set(p, "k", "v");
        tg_set_allocator(NULL);
        if (st) {
            ck_assert_msg(st == TG_ERR_NOMEM, "k=%ld: %s", k, tg_last_error());
            for (size_t i = 0; i < tg_params_count(p); i++)
                ck_assert_double_eq(tg_item(tg_params_tensor(p, i)), (double)i);
        }
        completed = st == TG_OK;
        tg_params_free(p);
    }
    ck_assert(completed);
}
END_TEST

/* ======================== checkpoints ======================== */

/* The values tests/reference/safetensors_interop.py expects (expected_from_c). */
static struct tg_params *c_written_params(void)
{
    struct tg_params *p = tg_params_new();
    struct tg_tensor *a = tg_tensor_zeros(TG_F32, 2, (int64_t[]){2, 3});
    struct tg_tensor *b = tg_tensor_zeros(TG_F64, 1, (int64_t[]){4});
    for (int i = 0; i < 6; i++) tg_tensor_set(a, i, i / 2.0 - 1);
    for (int i = 0; i < 4; i++) tg_tensor_set(b, i, 1.0 / (i + 1));
    tg_params_add_owned(p, "a", a);
    tg_params_add_owned(p, "b", b);
    tg_params_add_owned(p, "c", tg_scalar(TG_F64, 42));
    tg_params_meta_set(p, "epoch", "3");
    tg_params_meta_set(p, "note", "tapegrad \"test\"");
    ck_assert_uint_eq(tg_params_count(p), 3);
    return p;
}

/* Zero tensors with the same names, shapes and dtypes as p. */
static struct tg_params *zeros_like(const struct tg_params *p)
{
    struct tg_params *q = tg_params_new();
    for (size_t i = 0; i < tg_params_count(p); i++) {
        const struct tg_tensor *t = tg_params_tensor(p, i);
        tg_params_add_owned(
            q, tg_params_name(p, i),
            tg_tensor_zeros(tg_tensor_dtype(t), tg_tensor_rank(t), tg_tensor_shape(t)));
    }
    ck_assert_uint_eq(tg_params_count(q), tg_params_count(p));
    return q;
}

static void assert_same_values(const struct tg_params *p, const struct tg_params *q)
{
    ck_assert_uint_eq(tg_params_count(p), tg_params_count(q));
    for (size_t i = 0; i < tg_params_count(p); i++) {
        const struct tg_tensor *a = tg_params_tensor(p, i);
        const struct tg_tensor *b = tg_params_get(q, tg_params_name(p, i));
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(tg_tensor_dtype(a), tg_tensor_dtype(b));
        ck_assert_int_eq(tg_tensor_numel(a), tg_tensor_numel(b));
        for (int64_t k = 0; k < tg_tensor_numel(a); k++)
            ck_assert_double_eq(tg_tensor_get(a, k), tg_tensor_get(b, k));
    }
}

START_TEST(test_save_load_roundtrip)
{
    make_tmpdir();
    struct tg_params *p = c_written_params(), *q = zeros_like(p);
    tg_params_add_owned(p, "empty", tg_tensor_zeros(TG_F64, 2, (int64_t[]){3, 0}));
    tg_params_add_owned(q, "empty", tg_tensor_zeros(TG_F64, 2, (int64_t[]){3, 0}));
    const char *path = tmp_path("model.safetensors");
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    ck_assert_int_eq(count_files(), 1); /* no temporary file left behind */
    ck_assert_int_eq(tg_checkpoint_load(q, path), TG_OK);
    assert_same_values(p, q);
    struct tg_params *r = tg_checkpoint_read(path);
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < tg_params_count(p); i++) /* data order = save order */
        ck_assert_str_eq(tg_params_name(r, i), tg_params_name(p, i));
    assert_same_values(p, r);
    ck_assert_str_eq(tg_params_meta_get(r, "note"), "tapegrad \"test\"");
    ck_assert_str_eq(tg_params_meta_get(r, "epoch"), "3");
    /* saving again replaces the file */
    tg_tensor_set(tg_params_get(p, "c"), 0, -1);
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    ck_assert_int_eq(tg_checkpoint_load(q, path), TG_OK);
    ck_assert_double_eq(tg_item(tg_params_get(q, "c")), -1);
    ck_assert_int_eq(count_files(), 1);
    tg_params_free(p);
    tg_params_free(q);
    tg_params_free(r);
    remove_tmpdir();
}
END_TEST

/* A write that fails half-way (the file size limit) leaves the old checkpoint. */
START_TEST(test_save_interrupted_keeps_old)
{
    make_tmpdir();
    const char *path = tmp_path("keep.safetensors");
    struct tg_params *p = c_written_params(), *q = zeros_like(p);
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    struct tg_params *big = tg_params_new();
    tg_params_add_owned(big, "w", tg_tensor_ones(TG_F64, 1, (int64_t[]){100000}));
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    enum tg_status st = tg_checkpoint_save(big, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    ck_assert_error(st, TG_ERR_IO, "tg_checkpoint_save");
    ck_assert_int_eq(count_files(), 1); /* the temporary file was removed */
    ck_assert_int_eq(tg_checkpoint_load(q, path), TG_OK);
    assert_same_values(p, q);
    ck_assert_error(tg_checkpoint_save(p, "/nonexistent-dir/x.safetensors"), TG_ERR_IO,
                    "/nonexistent-dir/x.safetensors");
    ck_assert_error(tg_checkpoint_save(NULL, path), TG_ERR_NULL, "params");
    tg_params_free(p);
    tg_params_free(q);
    tg_params_free(big);
    remove_tmpdir();
}
END_TEST

/* The fixture that torch values written by the Python script produced. */
START_TEST(test_load_torch_fixture)
{
    struct tg_params *r = tg_checkpoint_read(DATA "torch_written.safetensors");
    ck_assert_msg(r != NULL, "%s", tg_last_error());
    ck_assert_uint_eq(tg_params_count(r), 5);
    const struct tg_tensor *w = tg_params_get(r, "layers.0.weight");
    ck_assert_int_eq(tg_tensor_dtype(w), TG_F32);
    ck_assert_int_eq(tg_tensor_rank(w), 2);
    ck_assert_int_eq(tg_tensor_dim(w, 0), 3);
    ck_assert_int_eq(tg_tensor_dim(w, 1), 4);
    for (int i = 0; i < 12; i++) ck_assert_double_eq(tg_tensor_get(w, i), (i - 5) / 8.0);
    const struct tg_tensor *b = tg_params_get(r, "layers.0.bias");
    ck_assert_int_eq(tg_tensor_dtype(b), TG_F64);
    ck_assert_double_eq(tg_tensor_get(b, 0), M_PI);
    ck_assert_double_eq(tg_tensor_get(b, 1), -M_E);
    ck_assert_double_eq(tg_tensor_get(b, 2), 1e-300);
    const struct tg_tensor *s = tg_params_get(r, "sin");
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(tg_tensor_get(s, i), sin(i), 1e-15);
    ck_assert_int_eq(tg_tensor_rank(tg_params_get(r, "scale")), 0);
    ck_assert_double_eq(tg_item(tg_params_get(r, "scale")), -2.5);
    ck_assert_int_eq(tg_tensor_numel(tg_params_get(r, "empty")), 0);
    ck_assert_int_eq(tg_tensor_dim(tg_params_get(r, "empty"), 1), 2);
    ck_assert_str_eq(tg_params_meta_get(r, "format"), "pt");
    /* and into a model's own tensors */
    struct tg_params *q = zeros_like(r);
    ck_assert_int_eq(tg_checkpoint_load(q, DATA "torch_written.safetensors"), TG_OK);
    assert_same_values(r, q);
    tg_params_free(q);
    tg_params_free(r);
}
END_TEST

START_TEST(test_save_python_reads)
{
    if (access("/usr/bin/python3", X_OK) ||
        system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1")) {
        printf("test_save_python_reads: skipped (no /usr/bin/python3 with torch and numpy)\n");
        return;
    }
    make_tmpdir();
    struct tg_params *p = c_written_params();
    const char *path = tmp_path("from_c.safetensors");
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/safetensors_interop.py read %s",
             TG_SOURCE_DIR, path);
    ck_assert_int_eq(system(cmd), 0);
    tg_params_free(p);
    remove_tmpdir();
}
END_TEST

START_TEST(test_load_mismatch)
{
    make_tmpdir();
    const char *path = tmp_path("m.safetensors");
    struct tg_params *p = c_written_params(); /* a (2,3) F32, b (4) F64, c () F64 */
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    struct tg_params *q = tg_params_new();
    tg_params_add_owned(q, "a", tg_tensor_full(TG_F32, 2, (int64_t[]){3, 2}, 9));
    tg_params_add_owned(q, "b", tg_tensor_full(TG_F32, 1, (int64_t[]){4}, 9));
    tg_params_add_owned(q, "d", tg_tensor_full(TG_F64, 0, NULL, 9));
    ck_assert_error(tg_checkpoint_load(q, path), TG_ERR_MISMATCH, "4 mismatches");
    const char *want[] = {"\"a\": shape (2,3) in the file, (3,2) in the model",
                          "\"b\": dtype F64 in the file, F32 in the model", "missing \"d\"",
                          "unexpected \"c\"", "m.safetensors"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(strstr(tg_last_error(), want[i]), "%s lacks %s", tg_last_error(), want[i]);
    for (size_t i = 0; i < 3; i++) /* nothing was modified */
        ck_assert_double_eq(tg_tensor_get(tg_params_tensor(q, i), 0), 9);
    /* many mismatches: the message stays bounded and counts the rest */
    struct tg_params *many = tg_params_new();
    char name[64];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "a.rather.long.parameter.name.%d", i);
        tg_params_add_owned(many, name, tg_scalar(TG_F32, 0));
    }
    ck_assert_error(tg_checkpoint_load(many, path), TG_ERR_MISMATCH, "103 mismatches");
    ck_assert_msg(strstr(tg_last_error(), "more"), "%s", tg_last_error());
    ck_assert_error(tg_checkpoint_load(q, tmp_path("absent")), TG_ERR_IO, "absent");
    ck_assert_error(tg_checkpoint_load(q, tmpdir), TG_ERR_IO, "tg_checkpoint_load");
    tg_params_free(many);
    tg_params_free(p);
    tg_params_free(q);
    remove_tmpdir();
}
END_TEST

/* Corrupt files, each breaking one rule. `data` zero bytes follow the header;
 * hlen_extra is added to the header length written in the first 8 bytes. */
static const struct bad_case {
    const char *json;
    size_t data;
    long hlen_extra;
    const char *expect;
} bad_cases[] = {
    {NULL, 0, 0, "shorter than the 8-byte header length"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 1000,
     "is larger than the file"},
    {"{\"a\":{\"dtype\":\"F32\",", 0, 0, "bad JSON"},
    {"", 0, 0, "bad JSON"},
    {"{} x", 0, 0, "junk after the object"},
    {"[1,2]", 0, 0, "the header is not a JSON object"},
    {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0,
     "unknown or unsupported dtype \"F16\""},
    {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "\"dtype\" is missing"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
     "shape (3) of F32 needs 12 bytes but data_offsets [0, 8] span 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, 0, "overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0,
     "ends at byte 8 but the data section has only 4 bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, 0, "4 trailing bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0,
     "bytes [0, 4) of the data section belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, 0, "appears twice"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0,
     "rank 9 exceeds"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "\"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, 0, "\"shape\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8, 0,
     "\"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, "\"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, 0, "end < begin"},
    {"{\"__metadata__\":{\"k\":1}}", 0, 0, "value of \"k\" is not a string"},
    {"{\"__metadata__\":[]}", 0, 0, "\"__metadata__\" is not a JSON object"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
     "\"data_offsets\":[0,8]}}",
     8, 0, "needs more than"},
    {"{\"a\":5}", 0, 0, "the entry is not a JSON object"},
};

START_TEST(test_corrupt_files)
{
    const struct bad_case *c = &bad_cases[_i];
    make_tmpdir();
    const char *path = tmp_path("bad.safetensors");
    unsigned char buf[1024] = {0};
    size_t n = 3;
    if (c->json) {
        size_t len = strlen(c->json);
        uint64_t hlen = len + (uint64_t)c->hlen_extra;
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
        memcpy(buf + 8, c->json, len);
        n = 8 + len + c->data;
    }
    write_bytes(path, buf, n);
    ck_assert_ptr_null(tg_checkpoint_read(path));
    ck_assert_error(tg_last_status(), TG_ERR_FORMAT, c->expect);
    ck_assert_error(tg_last_status(), TG_ERR_FORMAT, "bad.safetensors");
    struct tg_params *p = tg_params_new();
    tg_params_add_owned(p, "a", tg_tensor_full(TG_F32, 1, (int64_t[]){2}, 5));
    ck_assert_error(tg_checkpoint_load(p, path), TG_ERR_FORMAT, c->expect);
    ck_assert_double_eq(tg_tensor_get(tg_params_get(p, "a"), 1), 5);
    tg_params_free(p);
    remove_tmpdir();
}
END_TEST

/* Every truncation of a valid file is rejected; no single-byte corruption crashes
 * (the sanitizer and valgrind runs check the reads). */
START_TEST(test_truncations_and_flips)
{
    make_tmpdir();
    struct tg_params *p = c_written_params();
    const char *path = tmp_path("t.safetensors");
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert(n > 8 && n < sizeof buf);
    const char *cut = tmp_path("cut.safetensors");
    for (size_t k = 0; k < n; k++) {
        write_bytes(cut, buf, k);
        ck_assert_ptr_null(tg_checkpoint_read(cut));
        ck_assert_msg(tg_last_status() == TG_ERR_FORMAT, "cut at %zu: %s", k, tg_last_error());
    }
    for (size_t k = 0; k < n; k++) {
        buf[k] ^= 0x5a;
        write_bytes(cut, buf, n);
        struct tg_params *r = tg_checkpoint_read(cut);
        ck_assert_msg(r || tg_last_status() == TG_ERR_FORMAT, "flip at %zu: %s", k,
                      tg_last_error());
        tg_params_free(r);
        buf[k] ^= 0x5a;
    }
    tg_params_free(p);
    remove_tmpdir();
}
END_TEST

/* ======================== datasets: IDX ======================== */

START_TEST(test_idx_fixtures)
{
    /* tiny-images: u8 (5, 3, 4), element i = (37 i + 11) % 256 */
    struct tg_tensor *im = tg_idx_read(DATA "tiny-images-idx3-ubyte.gz", TG_F32);
    ck_assert_msg(im != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_rank(im), 3);
    ck_assert_int_eq(tg_tensor_dim(im, 0), 5);
    ck_assert_int_eq(tg_tensor_dim(im, 1), 3);
    ck_assert_int_eq(tg_tensor_dim(im, 2), 4);
    for (int i = 0; i < 60; i++) ck_assert_double_eq(tg_tensor_get(im, i), (37 * i + 11) % 256);
    /* labels 3 1 4 1 5, gzipped and plain */
    struct tg_tensor *lg = tg_idx_read(DATA "tiny-labels-idx1-ubyte.gz", TG_F64);
    struct tg_tensor *lp = tg_idx_read(DATA "tiny-labels-idx1-ubyte", TG_F64);
    const double labels[5] = {3, 1, 4, 1, 5};
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(tg_tensor_get(lg, i), labels[i]);
        ck_assert_double_eq(tg_tensor_get(lp, i), labels[i]);
    }
    /* i16 (2, 3): -300 -1 0 1 255 32767; f64 (3): 0.1 -2.5 1e300 */
    struct tg_tensor *s = tg_idx_read(DATA "tiny-i16-idx2.gz", TG_F64);
    const double sv[6] = {-300, -1, 0, 1, 255, 32767};
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_get(s, i), sv[i]);
    struct tg_tensor *d = tg_idx_read(DATA "tiny-f64-idx1", TG_F64);
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
    {{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1}, 9, "announces 4294967295 bytes"},
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
    ck_assert_ptr_null(tg_idx_read(plain, TG_F32));
    ck_assert_error(tg_last_status(), strstr(c->expect, "large") ? TG_ERR_RANGE : TG_ERR_FORMAT,
                    c->expect);
    ck_assert_error(tg_last_status(), tg_last_status(), "bad-idx");
    gzFile g = gzopen(tmp_path("bad-idx.gz"), "wb");
    ck_assert_int_eq(gzwrite(g, c->bytes, (unsigned)c->n), (int)c->n);
    gzclose(g);
    ck_assert_ptr_null(tg_idx_read(tmp_path("bad-idx.gz"), TG_F32));
    ck_assert_error(tg_last_status(), strstr(c->expect, "large") ? TG_ERR_RANGE : TG_ERR_FORMAT,
                    c->expect);
    remove_tmpdir();
}
END_TEST

START_TEST(test_idx_io_and_gzip_errors)
{
    make_tmpdir();
    ck_assert_ptr_null(tg_idx_read(tmp_path("none.gz"), TG_F32));
    ck_assert_error(tg_last_status(), TG_ERR_IO, "none.gz");
    ck_assert_ptr_null(tg_idx_read(NULL, TG_F32));
    ck_assert_error(tg_last_status(), TG_ERR_NULL, "tg_idx_read");
    ck_assert_ptr_null(tg_idx_read(DATA "tiny-f64-idx1", (enum tg_dtype)7));
    ck_assert_error(tg_last_status(), TG_ERR_DTYPE, "unknown dtype");
    /* a gzip stream whose compressed data is garbage, and one cut short */
    FILE *f = fopen(DATA "tiny-images-idx3-ubyte.gz", "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(tmp_path("cut.gz"), buf, n - 30);
    ck_assert_ptr_null(tg_idx_read(tmp_path("cut.gz"), TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    for (size_t i = 12; i < n - 8; i++) buf[i] ^= 0xa5;
    write_bytes(tmp_path("garbage.gz"), buf, n);
    ck_assert_ptr_null(tg_idx_read(tmp_path("garbage.gz"), TG_F32));
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
    struct tg_csv_options o = {.dtype = TG_F64, .target = "species"};
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
    o = (struct tg_csv_options){.dtype = TG_F64, .delimiter = ';', .target_index = 0};
    ds = tg_dataset_load_csv(DATA "semicolon_crlf.csv", &o);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_double_eq(tg_tensor_get(tg_dataset_y(ds), 1), -4.5);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 2), 0.5);
    ck_assert_double_eq(tg_tensor_get(tg_dataset_x(ds), 3), 6);
    tg_dataset_free(ds);
    /* no header: the first line is data */
    o = (struct tg_csv_options){.dtype = TG_F64, .no_header = true, .target_index = -2};
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
    struct tg_csv_options opt;
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

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, test_params_basic);
    tcase_add_test(tc, test_params_zero_grad_and_nodes);
    tcase_add_test(tc, test_params_many_and_meta);
    tcase_add_test(tc, test_params_out_of_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_save_interrupted_keeps_old);
    tcase_add_test(tc, test_load_torch_fixture);
    tcase_add_test(tc, test_save_python_reads);
    tcase_add_test(tc, test_load_mismatch);
    tcase_add_loop_test(tc, test_corrupt_files, 0, sizeof bad_cases / sizeof bad_cases[0]);
    tcase_add_test(tc, test_truncations_and_flips);
    suite_add_tcase(s, tc);
    tc = tcase_create("dataset");
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
