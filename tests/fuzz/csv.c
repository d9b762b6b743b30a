/*
 * tests/fuzz/csv.c - fuzzes the CSV reader. The first input byte picks the
 * options (delimiter, header or not, target by index or by the name "y"), the
 * rest is the file given to tg_dataset_load_csv.
 *
 * Invariants: a failure has a status the contract allows and a message naming
 * the function; a success has n >= 1 rows and d >= 1 features, and all its
 * values are finite (the reader rejects anything else).
 */
#include <math.h>
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char delims[] = {0, ',', ';', '\t', ' ', '|', 'e', '"'};
    uint8_t sel = data[0];
    struct tg_dataset_csv_options o = {
        .dtype = sel & 0x80 ? TG_F64 : TG_F32,
        .delimiter = delims[sel & 7],
        .no_header = (sel & 8) != 0,
        .target = sel & 0x10 ? "y" : NULL,
        .target_index = (sel >> 5 & 3) - 2, /* -2 .. 1 */
    };
    char path[64];
    int fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
    if (fd < 0) return 0;
    tg_clear_error();
    struct tg_dataset *ds = tg_dataset_load_csv(path, (sel & 0x60) == 0x60 ? NULL : &o);
    if (!ds) {
        enum tg_status st = tg_last_status();
        FUZZ_CHECK(st == TG_ERR_FORMAT || st == TG_ERR_VALUE || st == TG_ERR_RANGE ||
                   st == TG_ERR_NOMEM);
        if (st != TG_ERR_NOMEM) FUZZ_CHECK(fuzz_names("tg_dataset_load_csv"));
    } else {
        int64_t n = tg_dataset_len(ds), d = tg_dataset_features(ds);
        FUZZ_CHECK(n >= 1 && d >= 1);
        const struct tg_tensor *X = tg_dataset_x(ds), *y = tg_dataset_y(ds);
        for (int64_t i = 0; i < n * d; i++) FUZZ_CHECK(isfinite(tg_tensor_get(X, i)));
        for (int64_t i = 0; i < n; i++) FUZZ_CHECK(isfinite(tg_tensor_get(y, i)));
    }
    tg_dataset_free(ds);
    close(fd);
    return 0;
}
