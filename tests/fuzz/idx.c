/*
 * tests/fuzz/idx.c - fuzzes the IDX reader: the input bytes are an IDX file (or,
 * when they start with the gzip magic, a gzip stream of one), read with
 * tg_dataset_read_idx; then the same bytes gzip-compressed by zlib are read again, and
 * the two results must agree exactly (the reader promises to decompress
 * transparently), and every value read must be finite. A rank-1 result is also
 * loaded as both images and labels by tg_dataset_load_idx.
 */
#include <math.h>
#include <zlib.h>
#include "fuzz.h"

/* data gzip-compressed into a new buffer (*out, freed by the caller), or 0. */
static size_t gzip_bytes(const uint8_t *data, size_t size, unsigned char **out)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    size_t cap = deflateBound(&z, (uLong)size) + 32;
    *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    int r = *out ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
    size_t n = r == Z_STREAM_END ? z.total_out : 0;
    deflateEnd(&z);
    return n;
}

static int same_tensor(const struct tg_tensor *x, const struct tg_tensor *y)
{
    if (tg_tensor_rank(x) != tg_tensor_rank(y) || tg_tensor_dtype(x) != tg_tensor_dtype(y))
        return 0;
    for (int d = 0; d < tg_tensor_rank(x); d++)
        if (tg_tensor_shape(x)[d] != tg_tensor_shape(y)[d]) return 0;
    size_t bytes = (size_t)tg_tensor_numel(x) * tg_dtype_size(tg_tensor_dtype(x));
    return !bytes || !memcmp(tg_tensor_data(x), tg_tensor_data(y), bytes);
}

static struct tg_tensor *read_checked(const uint8_t *data, size_t size, enum tg_dtype dt,
                                      enum tg_status *st)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return (*st = TG_ERR_IO), NULL;
    tg_clear_error();
    struct tg_tensor *t = tg_dataset_read_idx(path, dt);
    *st = t ? TG_OK : tg_last_status();
    FUZZ_CHECK(*st == TG_OK || *st == TG_ERR_FORMAT || *st == TG_ERR_RANGE || *st == TG_ERR_NOMEM);
    if (*st == TG_ERR_FORMAT || *st == TG_ERR_RANGE) FUZZ_CHECK(fuzz_names("tg_dataset_read_idx"));
    /* the reader rejects NaN, Inf and values that do not fit dt */
    for (int64_t i = 0; t && i < tg_tensor_numel(t); i++) FUZZ_CHECK(isfinite(tg_tensor_get(t, i)));
    if (t && tg_tensor_rank(t) == 1) {
        struct tg_dataset *ds = tg_dataset_load_idx(path, path, dt, 0.5);
        /* a dataset needs n >= 1 examples */
        int64_t n = tg_tensor_shape(t)[0];
        FUZZ_CHECK(ds || tg_last_status() == TG_ERR_NOMEM ||
                   (n == 0 && tg_last_status() == TG_ERR_SHAPE));
        if (ds) FUZZ_CHECK(tg_dataset_len(ds) == tg_tensor_shape(t)[0]);
        tg_dataset_free(ds);
    }
    close(fd);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum tg_dtype dt = size % 2 ? TG_F64 : TG_F32;
    enum tg_status sa, sb;
    struct tg_tensor *a = read_checked(data, size, dt, &sa);
    unsigned char *gz = NULL;
    size_t n = gzip_bytes(data, size, &gz);
    /* input that is itself gzip would be decompressed only once by the reader */
    int plain = size < 2 || data[0] != 0x1f || data[1] != 0x8b;
    if (n && plain) {
        struct tg_tensor *b = read_checked(gz, n, dt, &sb);
        FUZZ_CHECK(sa == sb);
        if (a && b) FUZZ_CHECK(same_tensor(a, b));
        tg_tensor_free(b);
    }
    free(gz);
    tg_tensor_free(a);
    return 0;
}
