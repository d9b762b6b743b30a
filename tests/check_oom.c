/*
 * tests/check_oom.c - out of memory: every allocation of a forward + backward
 * pass is made to fail in turn; each failure must come back as TG_ERR_NOMEM,
 * leak nothing (the sanitizer and valgrind runs check that), leave the leaf
 * gradients untouched, and leave the tape usable once memory is back.
 * The same for checkpoints: a save, load or read that runs out of memory returns
 * TG_ERR_NOMEM, leaks nothing, and leaves the file on disk and the model as they
 * were, cJSON's allocations (the header) included. The number of allocation
 * points swept is printed at the end (docs/reliability.md).
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <tapegrad/tapegrad.h>
#include "failalloc.h"

/* A small tensor graph large enough to need several arena chunks. */
static struct tg_tensor *graph(struct tg_tape *T, struct tg_tensor *w, struct tg_tensor *x)
{
    struct tg_tensor *h = tg_tanh(T, tg_mul(T, x, w));         /* (64,300) */
    struct tg_tensor *s = tg_sigmoid(T, tg_add(T, h, x));      /* (64,300) */
    return tg_mean(T, tg_pow_scalar(T, tg_sub(T, s, h), 2.0)); /* () */
}

START_TEST(test_oom_sweep_step)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    struct tg_tensor *w = tg_tensor_uniform(TG_F32, 2, (int64_t[]){64, 300}, &rng, -1, 1);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 1, (int64_t[]){300}, &rng, -1, 1);
    tg_tensor_set_requires_grad(w, true);
    /* the reference gradient */
    struct tg_tape *R = tg_tape_new();
    ck_assert_int_eq(tg_backward(graph(R, w, x), NULL), TG_OK);
    double ref = tg_tensor_grad_get(w, 77);
    tg_tape_free(R);
    int completed = 0;
    for (long n = 1; n < 1000 && !completed; n++) {
        tg_tensor_zero_grad(w);
        failalloc_arm(n, true);
        struct tg_tape *T = tg_tape_new();
        enum tg_status st = TG_OK;
        if (T) {
            struct tg_tensor *loss = graph(T, w, x);
            st = loss ? tg_backward(loss, NULL) : tg_last_status();
        } else {
            st = tg_last_status();
        }
        bool failed = failalloc_failures > 0;
        failalloc_disarm();
        if (!failed) {
            ck_assert_int_eq(st, TG_OK);
            completed = 1;
        } else {
            ck_assert_msg(st == TG_ERR_NOMEM, "allocation %ld: status %s (%s)", n,
                          tg_status_str(st), tg_last_error());
            /* memory is back: the same tape works, gradients were not half-added */
            if (T) {
                for (int64_t i = 0; i < tg_tensor_numel(w); i++)
                    ck_assert_msg(tg_tensor_grad_get(w, i) == 0, "allocation %ld: grad touched", n);
                tg_tape_reset(T);
                ck_assert_int_eq(tg_backward(graph(T, w, x), NULL), TG_OK);
                ck_assert(fabs(tg_tensor_grad_get(w, 77) - ref) <= 1e-6 * fabs(ref) + 1e-12);
            }
        }
        tg_tape_free(T);
    }
    ck_assert_msg(completed, "the step never completed");
    tg_set_allocator(NULL);
    tg_tensor_free(w);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_oom_constructors)
{
    for (long n = 1; n <= 3; n++) {
        failalloc_arm(n, true);
        struct tg_tensor *t = tg_tensor_zeros(TG_F64, 2, (int64_t[]){10, 10});
        enum tg_status st = t ? tg_tensor_set_requires_grad(t, true) : tg_last_status();
        failalloc_disarm();
        if (n <= 2) ck_assert_int_eq(st, TG_ERR_NOMEM);
        if (t) {
            ck_assert_int_eq(tg_tensor_set_requires_grad(t, true), TG_OK); /* usable again */
            tg_tensor_free(t);
        }
    }
    failalloc_arm(1, true);
    ck_assert_ptr_null(tg_tape_new());
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    failalloc_disarm();
    tg_set_allocator(NULL);
}
END_TEST

/* ---- checkpoints ---- */

static char ck_dir[64], ck_path[128];

static struct tg_params *ck_model(double v)
{
    struct tg_params *p = tg_params_new();
    ck_assert_int_eq(tg_params_add_owned(p, "w", tg_tensor_full(TG_F32, 2, (int64_t[]){3, 4}, v)),
                     TG_OK);
    ck_assert_int_eq(tg_params_add_owned(p, "b", tg_tensor_full(TG_F64, 1, (int64_t[]){4}, v)),
                     TG_OK);
    for (int i = 0; i < 40; i++) { /* enough entries for the name index to grow */
        char name[16];
        snprintf(name, sizeof name, "extra.%d", i);
        ck_assert_int_eq(tg_params_add_owned(p, name, tg_tensor_full(TG_F32, 0, NULL, v)), TG_OK);
    }
    ck_assert_int_eq(tg_params_meta_set(p, "v", v > 0 ? "pos" : "neg"), TG_OK);
    return p;
}

/* Every element of every entry equals v. */
static bool ck_all(const struct tg_params *p, double v)
{
    if (!p || tg_params_count(p) != 42) return false;
    for (size_t e = 0; e < tg_params_count(p); e++)
        for (int64_t i = 0; i < tg_tensor_numel(tg_params_tensor(p, e)); i++)
            if (tg_tensor_get(tg_params_tensor(p, e), i) != v) return false;
    return true;
}

static int ck_entries(void)
{
    DIR *d = opendir(ck_dir);
    int n = 0;
    const struct dirent *de;
    while ((de = readdir(d))) n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static long swept; /* allocation points made to fail, over the whole suite */

/* Runs op with the n-th allocation failing (sticky or once) for n = 1, 2, ...
 * until it completes; each failed run must return TG_ERR_NOMEM and pass after(). */
#define SWEEP(sticky, op, after)                                                                   \
    do {                                                                                           \
        bool done_ = false;                                                                        \
        for (long n = 1; n < 5000 && !done_; n++) {                                                \
            failalloc_arm(n, sticky);                                                              \
            swept++;                                                                               \
            enum tg_status st = (op);                                                              \
            bool failed = failalloc_failures > 0;                                                  \
            failalloc_disarm();                                                                    \
            if (!failed) {                                                                         \
                ck_assert_msg(st == TG_OK, "%s: %s", #op, tg_last_error());                        \
                done_ = true;                                                                      \
            } else {                                                                               \
                ck_assert_msg(st == TG_ERR_NOMEM, "%s, allocation %ld: %s (%s)", #op, n,           \
                              tg_status_str(st), tg_last_error());                                 \
                after;                                                                             \
            }                                                                                      \
        }                                                                                          \
        ck_assert_msg(done_, "%s never completed", #op);                                           \
    } while (0)

static enum tg_status read_status(struct tg_params **out, bool from_buffer, const void *buf,
                                  size_t size)
{
    *out = from_buffer ? tg_checkpoint_read_buffer(buf, size) : tg_checkpoint_read(ck_path);
    return *out ? TG_OK : tg_last_status();
}

/* cJSON's allocations go through the hook: a header of 200 metadata entries
 * (each a JSON node, a key and a value) is parsed before the file is rejected
 * for a trailing byte, with no allocation of tapegrad's own per entry. */
static long counted;
static void *count_malloc(size_t n, void *ctx)
{
    (void)ctx;
    counted++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    counted++;
    return realloc(p, n);
}
static void count_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

START_TEST(test_json_through_hook)
{
    static char buf[16384];
    int len = snprintf(buf + 8, sizeof buf - 8, "{\"__metadata__\":{");
    for (int i = 0; i < 200; i++)
        len += snprintf(buf + 8 + len, sizeof buf - 8 - (size_t)len, "%s\"k%d\":\"v%d\"",
                        i ? "," : "", i, i);
    len += snprintf(buf + 8 + len, sizeof buf - 8 - (size_t)len, "}}");
    for (int i = 0; i < 8; i++) buf[i] = (char)((uint64_t)len >> (8 * i));
    buf[8 + len] = 'x'; /* one trailing byte in the data section */
    static const struct tg_allocator a = {count_malloc, count_realloc, count_free, NULL};
    tg_set_allocator(&a);
    counted = 0;
    ck_assert_ptr_null(tg_checkpoint_read_buffer(buf, 8 + (size_t)len + 1));
    tg_set_allocator(NULL);
    ck_assert_msg(strstr(tg_last_error(), "trailing"), "%s", tg_last_error());
    ck_assert_msg(counted >= 3 * 200, "%ld allocations through the hook", counted);
}
END_TEST

START_TEST(test_oom_checkpoint)
{
    bool sticky = _i == 1;
    snprintf(ck_dir, sizeof ck_dir, "/tmp/tg-oom-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(ck_dir));
    snprintf(ck_path, sizeof ck_path, "%s/m.safetensors", ck_dir);
    struct tg_params *a = ck_model(1.5), *b = ck_model(-2.5), *m = ck_model(0), *r = NULL;
    ck_assert_int_eq(tg_checkpoint_save(a, ck_path), TG_OK);
    /* save: the old file stays, no temporary file is left */
    SWEEP(sticky, tg_checkpoint_save(b, ck_path), {
        ck_assert_int_eq(ck_entries(), 1);
        struct tg_params *old = tg_checkpoint_read(ck_path);
        ck_assert(ck_all(old, 1.5));
        tg_params_free(old);
    });
    /* load: the model is untouched */
    SWEEP(sticky, tg_checkpoint_load(m, ck_path), ck_assert(ck_all(m, 0)));
    ck_assert(ck_all(m, -2.5));
    /* read, from the file and from memory */
    SWEEP(sticky, read_status(&r, false, NULL, 0), ck_assert_ptr_null(r));
    ck_assert(ck_all(r, -2.5));
    size_t size = 0;
    FILE *fp = fopen(ck_path, "rb");
    static unsigned char buf[1 << 16];
    size = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    tg_params_free(r);
    SWEEP(sticky, read_status(&r, true, buf, size), ck_assert_ptr_null(r));
    ck_assert(ck_all(r, -2.5));
    tg_params_free(r);
    tg_set_allocator(NULL);
    tg_params_free(a);
    tg_params_free(b);
    tg_params_free(m);
    unlink(ck_path);
    ck_assert_int_eq(rmdir(ck_dir), 0);
}
END_TEST

/* ---- every constructor of nn/ ---- */

static char nn_dir[64];

static enum tg_status status_of(const void *p)
{
    return p ? TG_OK : tg_last_status();
}

static struct tg_nn_mlp *small_mlp(void)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    return tg_nn_mlp_new((int64_t[]){3, 5, 4, 2}, 4, TG_ACT_TANH, TG_ACT_NONE, TG_F64,
                         TG_INIT_XAVIER_UNIFORM, &rng);
}

/* 6 rows of 3 features and a target in {0, 1}, as a new dataset. */
static struct tg_dataset *small_ds(void)
{
    struct tg_tensor *X = tg_tensor_zeros(TG_F64, 2, (int64_t[]){6, 3});
    struct tg_tensor *y = tg_tensor_zeros(TG_F64, 1, (int64_t[]){6});
    for (int i = 0; X && y && i < 18; i++) tg_tensor_set(X, i, (i * 7 % 5) - 2.0);
    for (int i = 0; X && y && i < 6; i++) tg_tensor_set(y, i, i % 2);
    return tg_dataset_new(X, y);
}

static enum tg_status op_mlp(void)
{
    struct tg_nn_mlp *m = small_mlp();
    enum tg_status st = status_of(m);
    tg_nn_mlp_free(m);
    return st;
}

static enum tg_status op_optim(enum tg_nn_optim_kind kind)
{
    failalloc_pause(); /* the model is not what is tested */
    struct tg_nn_mlp *m = small_mlp();
    ck_assert_ptr_nonnull(m);
    failalloc_resume();
    struct tg_nn_optim_config cfg = tg_nn_optim_defaults(kind);
    struct tg_nn_optim *o = tg_nn_optim_new(tg_nn_mlp_params(m), &cfg);
    enum tg_status st = status_of(o);
    tg_nn_optim_free(o);
    tg_nn_mlp_free(m);
    return st;
}

static enum tg_status op_params(void)
{
    struct tg_params *p = tg_params_new();
    enum tg_status st = status_of(p);
    for (int i = 0; !st && i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "p.%d", i);
        st = tg_params_add_owned(p, name, tg_tensor_full(TG_F32, 1, (int64_t[]){2}, i));
    }
    if (!st) st = tg_params_meta_set(p, "k", "v");
    tg_params_free(p);
    return st;
}

static enum tg_status op_dataset(void)
{
    struct tg_dataset *ds = small_ds(), *tr = NULL, *te = NULL;
    struct tg_tensor *mean = NULL, *sd = NULL;
    enum tg_status st = status_of(ds);
    if (!st) st = tg_dataset_split(ds, 0.5, &tr, &te);
    if (!st) st = tg_dataset_feature_stats(tr, &mean, &sd);
    tg_tensor_free(mean);
    tg_tensor_free(sd);
    tg_dataset_free(tr);
    tg_dataset_free(te);
    tg_dataset_free(ds);
    return st;
}

static char *nn_file(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", nn_dir, name);
    return p;
}

static enum tg_status op_csv(void)
{
    struct tg_dataset *ds = tg_dataset_load_csv(nn_file("d.csv"), NULL);
    enum tg_status st = status_of(ds);
    tg_dataset_free(ds);
    return st;
}

static enum tg_status op_idx(void)
{
    char im[128];
    snprintf(im, sizeof im, "%s", nn_file("im.idx.gz"));
    struct tg_dataset *ds = tg_dataset_load_idx(im, nn_file("lb.idx"), TG_F32, 1.0 / 255);
    enum tg_status st = status_of(ds);
    tg_dataset_free(ds);
    return st;
}

static enum tg_status op_train(void)
{
    failalloc_pause();
    struct tg_nn_mlp *m = small_mlp();
    struct tg_dataset *ds = small_ds();
    ck_assert(m && ds);
    failalloc_resume();
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT;
    c.batch_size = 4;
    c.shuffle = true;
    c.max_epochs = 2;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    enum tg_status st = tg_nn_train(&model, ds, &c, NULL);
    failalloc_pause();
    tg_dataset_free(ds);
    tg_nn_mlp_free(m);
    return st;
}

static void write_file(const char *path, const void *bytes, size_t n, bool gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, bytes, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(g), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

/* Every constructor of nn/ with its allocations failing one after the other (once,
 * then sticky), memory returned uninitialised: TG_ERR_NOMEM, no crash, no leak. */
START_TEST(test_oom_nn_constructors)
{
    bool sticky = _i == 1;
    snprintf(nn_dir, sizeof nn_dir, "/tmp/tg-oom-nn-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(nn_dir));
    const char csv[] = "a,b,c\n1,2,0\n3,4,1\n5,6,0\n";
    write_file(nn_file("d.csv"), csv, sizeof csv - 1, false);
    unsigned char im[4 + 12 + 24], lb[8 + 2];
    memcpy(im, (unsigned char[]){0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4}, 16);
    for (int i = 0; i < 24; i++) im[16 + i] = (unsigned char)(i * 11);
    memcpy(lb, (unsigned char[]){0, 0, 8, 1, 0, 0, 0, 2, 1, 0}, 10);
    write_file(nn_file("im.idx.gz"), im, sizeof im, true);
    write_file(nn_file("lb.idx"), lb, sizeof lb, false);
    SWEEP(sticky, op_mlp(), (void)0);
    SWEEP(sticky, op_params(), (void)0);
    for (int k = TG_OPTIM_SGD; k <= TG_OPTIM_ADAMW; k++)
        SWEEP(sticky, op_optim((enum tg_nn_optim_kind)k), (void)0);
    SWEEP(sticky, op_dataset(), (void)0);
    SWEEP(sticky, op_csv(), (void)0);
    SWEEP(sticky, op_idx(), (void)0);
    SWEEP(sticky, op_train(), (void)0);
    tg_set_allocator(NULL);
    unlink(nn_file("d.csv"));
    unlink(nn_file("im.idx.gz"));
    unlink(nn_file("lb.idx"));
    ck_assert_int_eq(rmdir(nn_dir), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("sweep");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_oom_sweep_step);
    tcase_add_test(tc, test_oom_constructors);
    tcase_add_loop_test(tc, test_oom_checkpoint, 0, 2); /* a single failure, then sticky */
    tcase_add_loop_test(tc, test_oom_nn_constructors, 0, 2);
    tcase_add_test(tc, test_json_through_hook);
    suite_add_tcase(s, tc);
    int st = tg_test_run_suite(s);
    if (getenv("CK_FORK") && !strcmp(getenv("CK_FORK"), "no"))
        printf("oom: %ld allocation points swept\n", swept);
    return st;
}
