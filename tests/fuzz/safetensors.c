/*
 * tests/fuzz/safetensors.c - fuzzes the checkpoint parser: the input bytes are a
 * safetensors file, given to tg_checkpoint_read_buffer, to tg_checkpoint_read and
 * to tg_checkpoint_load against a small fixed parameter map ("w" F32 (2,3), "b"
 * F32 (3), "s" F64 ()).
 *
 * Invariants besides "no crash, no leak, no UB": the buffer and the file readers
 * agree (same success, same status, same tensors), and load rejects as malformed
 * exactly the files that read does; every failure has a message
 * naming its function and a status the contract allows; a failed load leaves the
 * map's values untouched; a successful read saves and re-reads to the same bytes'
 * meaning (round trip).
 */
#include "fuzz.h"

static struct tg_params *fixed_map(void)
{
    struct tg_params *p = tg_params_new();
    if (!p) return NULL;
    tg_params_add_owned(p, "w", tg_tensor_full(TG_F32, 2, (int64_t[]){2, 3}, 7.0));
    tg_params_add_owned(p, "b", tg_tensor_full(TG_F32, 1, (int64_t[]){3}, 7.0));
    tg_params_add_owned(p, "s", tg_tensor_full(TG_F64, 0, NULL, 7.0));
    return p;
}

static int same_params(const struct tg_params *a, const struct tg_params *b)
{
    if (tg_params_count(a) != tg_params_count(b)) return 0;
    if (tg_params_meta_count(a) != tg_params_meta_count(b)) return 0;
    for (size_t i = 0; i < tg_params_count(a); i++) {
        const struct tg_tensor *x = tg_params_tensor(a, i), *y = tg_params_tensor(b, i);
        if (strcmp(tg_params_name(a, i), tg_params_name(b, i))) return 0;
        if (tg_tensor_dtype(x) != tg_tensor_dtype(y) || tg_tensor_rank(x) != tg_tensor_rank(y))
            return 0;
        for (int d = 0; d < tg_tensor_rank(x); d++)
            if (tg_tensor_shape(x)[d] != tg_tensor_shape(y)[d]) return 0;
        size_t bytes = (size_t)tg_tensor_numel(x) * tg_dtype_size(tg_tensor_dtype(x));
        if (bytes && memcmp(tg_tensor_data(x), tg_tensor_data(y), bytes)) return 0;
    }
    for (size_t i = 0; i < tg_params_meta_count(a); i++)
        if (strcmp(tg_params_meta_key(a, i), tg_params_meta_key(b, i)) ||
            strcmp(tg_params_meta_value(a, i), tg_params_meta_value(b, i)))
            return 0;
    return 1;
}

/* Saves p to a fresh temporary file and reads it back: the same map. */
static void round_trip(const struct tg_params *p)
{
    /* tmpfs where there is one: the save's fsyncs then cost nothing */
    char dir[] = "/dev/shm/tg-fuzz-XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        memcpy(dir, "/tmp/tg-fuzz-XXXXXX", sizeof "/tmp/tg-fuzz-XXXXXX");
        if (!mkdtemp(dir)) return;
    }
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    FUZZ_CHECK(tg_checkpoint_save(p, path) == TG_OK);
    struct tg_params *q = tg_checkpoint_read(path);
    FUZZ_CHECK(q && same_params(p, q));
    tg_params_free(q);
    unlink(path);
    rmdir(dir);
}

/* read_st: what tg_checkpoint_read said of the same file. One parser, one rule:
 * a file that read rejects as malformed, load rejects so too, and the other way. */
static void check_load(const char *path, enum tg_status read_st)
{
    struct tg_params *m = fixed_map();
    if (!m) return;
    enum tg_status st = tg_checkpoint_load(m, path);
    FUZZ_CHECK(st == TG_OK || st == TG_ERR_FORMAT || st == TG_ERR_MISMATCH || st == TG_ERR_NOMEM);
    if (st != TG_ERR_NOMEM && read_st != TG_ERR_NOMEM)
        FUZZ_CHECK((st == TG_ERR_FORMAT) == (read_st == TG_ERR_FORMAT));
    if (st && st != TG_ERR_NOMEM) FUZZ_CHECK(fuzz_names("tg_checkpoint_load"));
    if (st) /* nothing modified */
        for (size_t i = 0; i < tg_params_count(m); i++)
            FUZZ_CHECK(tg_tensor_get(tg_params_tensor(m, i), 0) == 7.0);
    tg_params_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_clear_error();
    struct tg_params *a = tg_checkpoint_read_buffer(data, size);
    enum tg_status sa = a ? TG_OK : tg_last_status();
    FUZZ_CHECK(sa == TG_OK || sa == TG_ERR_FORMAT || sa == TG_ERR_NOMEM);
    if (sa == TG_ERR_FORMAT) FUZZ_CHECK(fuzz_names("tg_checkpoint_read_buffer"));

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd >= 0) {
        struct tg_params *b = tg_checkpoint_read(path);
        enum tg_status sb = b ? TG_OK : tg_last_status();
        FUZZ_CHECK(sa == sb);
        if (sb == TG_ERR_FORMAT) FUZZ_CHECK(fuzz_names("tg_checkpoint_read"));
        if (a && b) FUZZ_CHECK(same_params(a, b));
        tg_params_free(b);
        check_load(path, sb);
        close(fd);
    }
    if (a) round_trip(a);
    tg_params_free(a);
    return 0;
}
