/*
 * tests/check_crashsafe.c - checkpoints survive being killed mid-save.
 *
 * A child process saves two alternating value sets A and B to one path in a
 * loop; the parent kills it with SIGKILL after a random delay (up to a few save
 * durations, so kills land in every phase: creating the temporary file, writing,
 * fsync, rename). After every kill the file at the path must load intact and
 * hold exactly A or exactly B, never a mixture, never a broken file. Killed saves
 * leave their temporary files behind (nothing can run on SIGKILL); the test
 * counts them and checks that tg_checkpoint_remove_temps removes them all.
 *
 * `check_crashsafe N` does N kills: 20 in the `unit` suite, 200 in `slow`.
 * Also here: padded, truncated and bit-flipped files are rejected with a message
 * saying what is wrong (check_io.c covers each header rule one by one).
 */
#include <check.h>
#include "run-suite.h"
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>

static int kills = 20;
static char dir[64], path[128];

/* A model of ~50 KB: "w" F32 (64,128), "b" F64 (2000), "s" F32 (). Set v (0 or 1)
 * fills every element with a value that tells set and position apart. */
static struct tg_params *model(void)
{
    struct tg_params *p = tg_params_new();
    ck_assert_int_eq(tg_params_add_owned(p, "w", tg_tensor_zeros(TG_F32, 2, (int64_t[]){64, 128})),
                     TG_OK);
    ck_assert_int_eq(tg_params_add_owned(p, "b", tg_tensor_zeros(TG_F64, 1, (int64_t[]){2000})),
                     TG_OK);
    ck_assert_int_eq(tg_params_add_owned(p, "s", tg_tensor_zeros(TG_F32, 0, NULL)), TG_OK);
    return p;
}

static double value(int set, size_t entry, int64_t i)
{
    return (set ? -1.0 : 1.0) * (double)(1 + entry * 100000 + (size_t)i % 4096);
}

static void fill(struct tg_params *p, int set)
{
    for (size_t e = 0; e < tg_params_count(p); e++) {
        struct tg_tensor *t = tg_params_tensor(p, e);
        for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, value(set, e, i));
    }
    tg_params_meta_set(p, "set", set ? "B" : "A");
}

/* Which set m holds entirely (0 or 1), or -1 for a mixture. */
static int which_set(const struct tg_params *m)
{
    int set = tg_tensor_get(tg_params_tensor(m, 0), 0) < 0;
    for (size_t e = 0; e < tg_params_count(m); e++) {
        const struct tg_tensor *t = tg_params_tensor(m, e);
        for (int64_t i = 0; i < tg_tensor_numel(t); i++)
            if (tg_tensor_get(t, i) != value(set, e, i)) return -1;
    }
    const char *meta = tg_params_meta_get(m, "set");
    return meta && !strcmp(meta, set ? "B" : "A") ? set : -1;
}

static size_t count_temps(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    const struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void child_loop(struct tg_params *p)
{
    for (int set = 1;; set ^= 1) {
        fill(p, set);
        if (tg_checkpoint_save(p, path)) _exit(3);
    }
}

START_TEST(test_kill_during_save)
{
    snprintf(dir, sizeof dir, "/tmp/tg-crashsafe-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct tg_params *p = model();
    fill(p, 0);
    double t0 = now();
    for (int i = 0; i < 5; i++) ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    double save_us = (now() - t0) / 5 * 1e6 + 50; /* + the fork */
    unsigned seed = (unsigned)time(NULL);
    printf("crashsafe: %d kills, save takes %.0f us, seed %u\n", kills, save_us, seed);
    srand(seed);
    int seen[2] = {0, 0};
    for (int k = 0; k < kills; k++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) child_loop(p);
        usleep((useconds_t)(rand() % (int)(4 * save_us)));
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int ws;
        ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
        ck_assert_msg(WIFSIGNALED(ws), "kill %d: the child failed to save (exit %d)", k,
                      WEXITSTATUS(ws));
        struct tg_params *r = tg_checkpoint_read(path);
        ck_assert_msg(r != NULL, "kill %d: %s", k, tg_last_error());
        int set = which_set(r);
        ck_assert_msg(set >= 0, "kill %d: the file mixes the two value sets", k);
        seen[set]++;
        /* and it loads into the model */
        struct tg_params *m = model();
        ck_assert_int_eq(tg_checkpoint_load(m, path), TG_OK);
        tg_params_free(m);
        tg_params_free(r);
    }
    size_t left = count_temps(), removed = 99;
    printf("crashsafe: A %d times, B %d times; %zu temporary files left\n", seen[0], seen[1], left);
    ck_assert_uint_le(left, (size_t)kills);
    ck_assert_int_eq(tg_checkpoint_remove_temps(path, &removed), TG_OK);
    ck_assert_uint_eq(removed, left);
    ck_assert_uint_eq(count_temps(), 0);
    struct tg_params *r = tg_checkpoint_read(path); /* untouched by the cleanup */
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ge(which_set(r), 0);
    tg_params_free(r);
    tg_params_free(p);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0); /* nothing else was left in the directory */
}
END_TEST

/* The bytes of a saved file, in a malloc'ed buffer of *n bytes. */
static unsigned char *saved_bytes(struct tg_params *p, size_t *n)
{
    char tmpl[] = "/tmp/tg-crashsafe-XXXXXX", file[64];
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(file, sizeof file, "%s/f", tmpl);
    ck_assert_int_eq(tg_checkpoint_save(p, file), TG_OK);
    FILE *fp = fopen(file, "rb");
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    unlink(file);
    rmdir(tmpl);
    return buf;
}

static void expect_reject(const unsigned char *buf, size_t n, const char *what)
{
    struct tg_params *r = tg_checkpoint_read_buffer(buf, n);
    ck_assert_msg(r == NULL, "accepted: %s", what);
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    ck_assert_msg(strstr(tg_last_error(), "tg_checkpoint_read_buffer") &&
                      strstr(tg_last_error(), what),
                  "want \"%s\", got \"%s\"", what, tg_last_error());
}

START_TEST(test_damaged_files)
{
    struct tg_params *p = model();
    fill(p, 1);
    size_t n;
    unsigned char *buf = saved_bytes(p, &n);
    struct tg_params *ok = tg_checkpoint_read_buffer(buf, n);
    ck_assert_ptr_nonnull(ok);
    ck_assert_int_eq(which_set(ok), 1);
    tg_params_free(ok);
    /* padded: bytes appended after the data (a torn write of a longer file) */
    unsigned char *pad = malloc(n + 16);
    memcpy(pad, buf, n);
    memset(pad + n, 0, 16);
    expect_reject(pad, n + 16, "16 trailing bytes");
    free(pad);
    /* truncated in the data, in the header, in the length */
    expect_reject(buf, n - 1, "truncated file");
    expect_reject(buf, 40, "is larger than the file");
    expect_reject(buf, 5, "shorter than the 8-byte header length");
    /* bit flips in the header length, the JSON, a dtype, a shape, an offset */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    buf[5] ^= 0x10;
    expect_reject(buf, n, "is larger than the file");
    buf[5] ^= 0x10;
    char *json = (char *)buf + 8;
    char *f32 = strstr(json, "\"F32\"");
    f32[2] ^= 0x01; /* "F22" */
    expect_reject(buf, n, "unknown or unsupported dtype \"F22\"");
    f32[2] ^= 0x01;
    char *shape = strstr(json, "[64,128]");
    shape[1] ^= 0x02; /* [44,128]: shape and span disagree */
    expect_reject(buf, n, "needs 22528 bytes but data_offsets");
    shape[1] ^= 0x02;
    char *brace = memchr(json, '{', (size_t)hlen);
    *brace ^= 0x01; /* 'z' */
    expect_reject(buf, n, "bad JSON");
    *brace ^= 0x01;
    /* a flip of one bit in the data: the tensor's checksum names it */
    buf[n - 100] ^= 0x01;
    expect_reject(buf, n, "tensor \"b\": checksum mismatch");
    buf[n - 100] ^= 0x01;
    buf[8 + hlen + 1000] ^= 0x80;
    expect_reject(buf, n, "tensor \"w\": checksum mismatch");
    buf[8 + hlen + 1000] ^= 0x80;
    free(buf);
    tg_params_free(p);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1) kills = atoi(argv[1]);
    Suite *s = suite_create("crashsafe");
    TCase *tc = tcase_create("crashsafe");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_kill_during_save);
    tcase_add_test(tc, test_damaged_files);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
