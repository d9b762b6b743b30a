/*
 * nn/checkpoint.c - safetensors checkpoints: parse and validate, load, read, save.
 *
 * A file is read into memory whole, then its header is parsed with cJSON and every
 * rule of the format is checked before any tensor is touched: the header fits the
 * file, its text is UTF-8 without a "\u0000" escape, the JSON is an object of
 * well-formed entries with known dtypes, each entry's shape matches its byte span,
 * and the spans tile the data section exactly (no overlap, no gap, nothing out of
 * bounds, no trailing bytes). Only then does load compare names, shapes and dtypes
 * with the parameters (reporting every mismatch at once) and copy. Saving writes a
 * temporary file and renames it over the target (where a symbolic link leads), so
 * a crash mid-save never destroys the previous checkpoint.
 *
 * Every tensor's bytes have a CRC-32 (zlib's) in the metadata, under the key
 * "crc32:NAME" (8 hex digits); a load verifies each one present, so that a
 * damaged data section is an error naming the tensor. Files without checksums
 * (other tools') load as before.
 *
 * cJSON allocates through tapegrad's allocator (tg_malloc, tg_free): the first
 * checkpoint call installs them with cJSON_InitHooks, which is process-wide, so
 * a program's own cJSON calls then use tapegrad's allocator too (by default
 * malloc and free, as cJSON's own). Its failures are TG_ERR_NOMEM.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <zlib.h>
#include "nn-impl.h"
#include "tapegrad/checkpoint.h"

/* 2^53 - 1: from 2^53 on, distinct JSON integers parse to the same double */
#define MAX_EXACT 9007199254740991.0

/* The metadata key of a tensor's checksum is this prefix and its name. */
#define CRC_PREFIX     "crc32:"
#define CRC_PREFIX_LEN (sizeof CRC_PREFIX - 1)

/* ---- cJSON through tapegrad's allocator ---- */

static _Thread_local bool json_oom; /* an allocation of cJSON failed */

static void *json_malloc(size_t n)
{
    void *p = tg_malloc(n);
    if (!p) json_oom = true;
    return p;
}

static void json_install_hooks(void)
{
    cJSON_Hooks h = {json_malloc, tg_free};
    cJSON_InitHooks(&h);
}

/* Before any cJSON call of a checkpoint function. */
static void json_begin(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, json_install_hooks);
    json_oom = false;
}

/* One tensor entry of a parsed header. */
struct ck_entry {
    const char *name; /* owned by the cJSON tree */
    enum tg_dtype dtype;
    int rank;
    int64_t shape[TG_MAX_DIM];
    uint64_t begin, end; /* byte offsets in the data section */
    UT_hash_handle hh;
};

/* A parsed, validated file. */
struct ck_file {
    const char *path;
    unsigned char *buf; /* (size) the whole file */
    size_t size;
    const unsigned char *data; /* (data_size) the data section, inside buf */
    size_t data_size;
    cJSON *root;
    const cJSON *meta;        /* the "__metadata__" object or NULL */
    struct ck_entry *ents;    /* (n) in header order */
    struct ck_entry **sorted; /* (n) by begin offset */
    struct ck_entry *index;   /* uthash by name */
    size_t n;
};

static void ck_close(struct ck_file *f)
{
    HASH_CLEAR(hh, f->index);
    tg_free(f->ents);
    tg_free(f->sorted);
    cJSON_Delete(f->root);
    tg_free(f->buf);
}

/* ---- reading the file ---- */

static enum tg_status read_whole(const char *fn, struct ck_file *f)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, f->path, strerror(errno));
    struct stat sb;
    enum tg_status st = TG_OK;
    errno = 0;
    if (fstat(fileno(fp), &sb) || !S_ISREG(sb.st_mode)) {
        st = tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, f->path,
                          errno ? strerror(errno) : "not a regular file");
        goto out;
    }
    f->size = (size_t)sb.st_size;
    if (!(f->buf = tg_malloc(f->size))) {
        st = TG_ERR_NOMEM;
        goto out;
    }
    if (fread(f->buf, 1, f->size, fp) != f->size)
        st = tg_set_error(TG_ERR_IO, "%s: %s: read failed%s%s", fn, f->path,
                          ferror(fp) ? ": " : " (file shrank while reading)",
                          ferror(fp) ? strerror(errno) : "");
out:
    fclose(fp);
    return st;
}

/* ---- the header ---- */

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes left), or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    uint32_t cp = s[0] & (0x7Fu >> len), min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (s[0] < 0xC0 || s[0] > 0xF4 || n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* The offset of the first byte of s (NUL-terminated) that is not well-formed
 * UTF-8, or -1. */
static long long utf8_bad(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_len(u + i, n - i))) return (long long)i;
    return -1;
}

/* The rules for the header's text that cJSON leaves unchecked and other readers
 * enforce (RFC 8259): well-formed UTF-8 throughout, no raw control character in a
 * string, and no "\u0000" escape (the NUL would cut a name or value short, so two
 * different names could read as one). */
static enum tg_status check_text(const char *fn, const struct ck_file *f, const char *json,
                                 size_t len)
{
    const unsigned char *s = (const unsigned char *)json;
    const char *what = NULL;
    bool in_str = false;
    size_t i = 0;
    while (i < len && !what) {
        size_t k = 1;
        if (s[i] >= 0x80 && !(k = utf8_len(s + i, len - i)))
            what = "bytes that are not well-formed UTF-8";
        else if (in_str && s[i] < 0x20)
            what = "a control character inside a string";
        else if (in_str && s[i] == '\\') {
            if (len - i >= 6 && !memcmp(s + i + 1, "u0000", 5))
                what = "a \"\\u0000\" escape (NUL) inside a string";
            k = 2; /* the escaped character never ends the string */
        } else if (s[i] == '"') {
            in_str = !in_str;
        }
        if (!what) i += k;
    }
    if (!what) return TG_OK;
    return tg_set_error(TG_ERR_FORMAT, "%s: %s: the header has %s at byte %zu", fn, f->path, what,
                        i + 8);
}

static bool parse_dtype(const char *s, enum tg_dtype *dt)
{
    if (!strcmp(s, "F32"))
        *dt = TG_F32;
    else if (!strcmp(s, "F64"))
        *dt = TG_F64;
    else
        return false;
    return true;
}

/* An integer in [0, 2^53 - 1] from a JSON number. */
static bool json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= MAX_EXACT) || v != (double)(uint64_t)v) return false;
    *out = (uint64_t)v;
    return true;
}

static enum tg_status bad(const char *fn, const struct ck_file *f, const char *name,
                          const char *what)
{
    return tg_set_error(TG_ERR_FORMAT, "%s: %s: tensor \"%s\": %s", fn, f->path, name, what);
}

static enum tg_status parse_shape(const char *fn, const struct ck_file *f, struct ck_entry *e,
                                  const cJSON *shape)
{
    if (!cJSON_IsArray(shape)) return bad(fn, f, e->name, "\"shape\" is missing or not an array");
    int rank = cJSON_GetArraySize(shape);
    if (rank > TG_MAX_DIM) {
        char msg[80];
        snprintf(msg, sizeof msg, "rank %d exceeds TG_MAX_DIM (%d)", rank, TG_MAX_DIM);
        return bad(fn, f, e->name, msg);
    }
    e->rank = rank;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        uint64_t v;
        if (!json_uint(d, &v) || v > INT64_MAX)
            return bad(fn, f, e->name, "\"shape\" holds something other than a size");
        e->shape[i++] = (int64_t)v;
    }
    return TG_OK;
}

/* Checks that e's shape and dtype account for exactly its byte span. */
static enum tg_status check_span(const char *fn, const struct ck_file *f, const struct ck_entry *e)
{
    uint64_t bytes = tg_dtype_size(e->dtype);
    bool overflow = false;
    for (int i = 0; i < e->rank; i++) {
        if (e->shape[i] && bytes > UINT64_MAX / (uint64_t)e->shape[i]) overflow = true;
        bytes *= (uint64_t)e->shape[i];
    }
    if (!overflow && bytes == e->end - e->begin) return TG_OK;
    char sh[160];
    tg_tensor_format_shape(sh, sizeof sh, e->rank, e->shape);
    return tg_set_error(
        TG_ERR_FORMAT,
        "%s: %s: tensor \"%s\": shape %s of %s needs %s%llu bytes but "
        "data_offsets [%llu, %llu] span %llu",
        fn, f->path, e->name, sh, e->dtype == TG_F64 ? "F64" : "F32", overflow ? "more than " : "",
        (unsigned long long)(overflow ? UINT64_MAX : bytes), (unsigned long long)e->begin,
        (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
}

static enum tg_status parse_entry(const char *fn, struct ck_file *f, struct ck_entry *e,
                                  const cJSON *j)
{
    e->name = j->string;
    if (!e->name[0]) /* a map cannot hold it (tg_params_add) */
        return bad(fn, f, e->name, "the tensor name is empty");
    if (!cJSON_IsObject(j)) return bad(fn, f, e->name, "the entry is not a JSON object");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    if (!cJSON_IsString(dt)) return bad(fn, f, e->name, "\"dtype\" is missing or not a string");
    if (!parse_dtype(dt->valuestring, &e->dtype))
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: tensor \"%s\": unknown or unsupported dtype \"%s\" "
                            "(supported: F32, F64)",
                            fn, f->path, e->name, dt->valuestring);
    if (parse_shape(fn, f, e, cJSON_GetObjectItemCaseSensitive(j, "shape"))) return TG_ERR_FORMAT;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !json_uint(cJSON_GetArrayItem(off, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(off, 1), &e->end))
        return bad(fn, f, e->name, "\"data_offsets\" is not [begin, end] with integers >= 0");
    if (e->end < e->begin) return bad(fn, f, e->name, "\"data_offsets\" has end < begin");
    return check_span(fn, f, e);
}

static enum tg_status parse_meta(const char *fn, struct ck_file *f, const cJSON *j)
{
    if (!cJSON_IsObject(j))
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: \"__metadata__\" is not a JSON object", fn,
                            f->path);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, j)
    {
        if (!kv->string[0]) /* a map cannot hold it (tg_params_meta_set) */
            return tg_set_error(TG_ERR_FORMAT, "%s: %s: \"__metadata__\" has an empty key", fn,
                                f->path);
        if (!cJSON_IsString(kv))
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: \"__metadata__\" value of \"%s\" is not a "
                                "string",
                                fn, f->path, kv->string);
    }
    f->meta = j;
    return TG_OK;
}

/* Parses the JSON and every entry; indexes entries by name, rejecting duplicates. */
static enum tg_status parse_entries(const char *fn, struct ck_file *f)
{
    size_t n = (size_t)cJSON_GetArraySize(f->root);
    f->ents = tg_malloc((n ? n : 1) * sizeof *f->ents);
    f->sorted = tg_malloc((n ? n : 1) * sizeof *f->sorted);
    if (!f->ents || !f->sorted) return TG_ERR_NOMEM;
    memset(f->ents, 0, (n ? n : 1) * sizeof *f->ents);
    const cJSON *j;
    cJSON_ArrayForEach(j, f->root)
    {
        if (!strcmp(j->string, "__metadata__")) {
            if (f->meta)
                return tg_set_error(TG_ERR_FORMAT, "%s: %s: \"__metadata__\" appears twice", fn,
                                    f->path);
            if (parse_meta(fn, f, j)) return TG_ERR_FORMAT;
            continue;
        }
        struct ck_entry *e = &f->ents[f->n], *dup;
        if (parse_entry(fn, f, e, j)) return TG_ERR_FORMAT;
        HASH_FIND(hh, f->index, e->name, strlen(e->name), dup);
        if (dup) return bad(fn, f, e->name, "the name appears twice in the header");
        HASH_ADD_KEYPTR(hh, f->index, e->name, strlen(e->name), e);
        if (!e->hh.tbl) return tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        f->sorted[f->n] = e;
        f->n++;
    }
    return TG_OK;
}

static int by_begin(const void *a, const void *b)
{
    const struct ck_entry *x = *(struct ck_entry *const *)a, *y = *(struct ck_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The spans, sorted by begin, must tile [0, data_size) exactly. */
static enum tg_status check_tiling(const char *fn, struct ck_file *f)
{
    qsort(f->sorted, f->n, sizeof *f->sorted, by_begin);
    uint64_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct ck_entry *e = f->sorted[i];
        if (e->begin < pos)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: tensors \"%s\" and \"%s\" overlap (data_offsets "
                                "[%llu, %llu] starts before byte %llu)",
                                fn, f->path, f->sorted[i - 1]->name, e->name,
                                (unsigned long long)e->begin, (unsigned long long)e->end,
                                (unsigned long long)pos);
        if (e->begin > pos)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: bytes [%llu, %llu) of the data section belong to no "
                                "tensor (gap before \"%s\")",
                                fn, f->path, (unsigned long long)pos, (unsigned long long)e->begin,
                                e->name);
        if (e->end > f->data_size)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: tensor \"%s\" ends at byte %llu but the data section "
                                "has only %zu bytes (truncated file or offsets out of bounds)",
                                fn, f->path, e->name, (unsigned long long)e->end, f->data_size);
        pos = e->end;
    }
    if (pos != f->data_size)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: %llu trailing bytes after the last tensor", fn,
                            f->path, (unsigned long long)(f->data_size - pos));
    return TG_OK;
}

/* Every "crc32:NAME" key of the metadata: 8 hex digits, NAME a tensor of the
 * file, and the CRC-32 of its bytes. */
static enum tg_status check_crcs(const char *fn, const struct ck_file *f)
{
    const cJSON *kv;
    cJSON_ArrayForEach(kv, f->meta)
    {
        if (strncmp(kv->string, CRC_PREFIX, CRC_PREFIX_LEN)) continue;
        const char *name = kv->string + CRC_PREFIX_LEN, *v = kv->valuestring;
        struct ck_entry *e;
        HASH_FIND(hh, f->index, name, strlen(name), e);
        if (!e)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: \"__metadata__\" has a checksum \"%s\" for \"%s\", "
                                "which is not a tensor of the file",
                                fn, f->path, kv->string, name);
        unsigned long want = 0;
        bool ok = strlen(v) == 8;
        for (int i = 0; ok && i < 8; i++) {
            ok = isxdigit((unsigned char)v[i]) != 0;
            want = want << 4 | (unsigned long)(isdigit((unsigned char)v[i])
                                                   ? v[i] - '0'
                                                   : tolower((unsigned char)v[i]) - 'a' + 10);
        }
        if (!ok) return bad(fn, f, name, "its checksum is not 8 hex digits");
        unsigned long got =
            crc32_z(0, f->data + e->begin, (z_size_t)(e->end - e->begin)) & 0xffffffffUL;
        if (got != want)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: tensor \"%s\": checksum mismatch (crc32 %08lx in the "
                                "header, %08lx of the data): the data is corrupt",
                                fn, f->path, name, want, got);
    }
    return TG_OK;
}

/* Fully validates the bytes f->buf (f->size). On failure f holds what was
 * allocated so far (ck_close frees it). */
static enum tg_status ck_parse(const char *fn, struct ck_file *f)
{
    if (f->size < 8)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: file is %zu bytes, shorter than the 8-byte "
                            "header length",
                            fn, f->path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->buf[i];
    if (hlen > f->size - 8)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: not a safetensors file: its first 8 bytes give a "
                            "header length of %llu, which is larger than the file "
                            "(%zu bytes after the length)",
                            fn, f->path, (unsigned long long)hlen, f->size - 8);
    const char *json = (const char *)f->buf + 8, *end = NULL;
    if (check_text(fn, f, json, (size_t)hlen)) return TG_ERR_FORMAT;
    json_begin();
    f->root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, false);
    if (!f->root && json_oom)
        return tg_set_error(TG_ERR_NOMEM, "%s: %s: out of memory parsing the header", fn, f->path);
    if (!f->root)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: bad JSON in the header near byte %lld", fn,
                            f->path, (long long)(end ? end - json : 0) + 8);
    for (const char *p = end; p < json + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: bad JSON in the header: junk after the "
                                "object at byte %lld",
                                fn, f->path, (long long)(p - json) + 8);
    if (!cJSON_IsObject(f->root))
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: the header is not a JSON object", fn, f->path);
    f->data = f->buf + 8 + hlen;
    f->data_size = f->size - 8 - (size_t)hlen;
    if (parse_entries(fn, f) || check_tiling(fn, f)) return tg_last_status();
    return check_crcs(fn, f);
}

/* Reads and fully validates f->path. */
static enum tg_status ck_open(const char *fn, struct ck_file *f)
{
    if (read_whole(fn, f)) return tg_last_status();
    return ck_parse(fn, f);
}

/* Copies e's bytes into t's buffer, converting from little-endian if needed. */
static void copy_in(const struct ck_file *f, const struct ck_entry *e, struct tg_tensor *t)
{
    unsigned char *dst = tg_tensor_data(t);
    const unsigned char *src = f->data + e->begin;
    size_t n = (size_t)(e->end - e->begin), es = tg_dtype_size(e->dtype);
    if (tg__nn_little_endian()) {
        memcpy(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i += es)
        for (size_t b = 0; b < es; b++) dst[i + b] = src[i + es - 1 - b];
}

/* ---- comparing with the parameters ---- */

/* Appends to a bounded message; counts what did not fit. */
struct msgbuf {
    char s[400];
    size_t len;
    int n, dropped;
};

static void add_mismatch(struct msgbuf *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_mismatch(struct msgbuf *m, const char *fmt, ...)
{
    char item[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    size_t need = strlen(item) + 2;
    m->n++;
    if (m->dropped || m->len + need >= sizeof m->s - 24) {
        m->dropped++;
        return;
    }
    m->len +=
        (size_t)snprintf(m->s + m->len, sizeof m->s - m->len, "%s%s", m->len ? "; " : "", item);
}

static void compare_entry(struct msgbuf *m, const struct ck_entry *e, const struct tg_tensor *t)
{
    char a[160], b[160];
    const char *fd = e->dtype == TG_F64 ? "F64" : "F32";
    const char *pd = tg_tensor_dtype(t) == TG_F64 ? "F64" : "F32";
    bool same = tg_tensor_rank(t) == e->rank;
    for (int i = 0; same && i < e->rank; i++) same = tg_tensor_shape(t)[i] == e->shape[i];
    if (!same) {
        tg_tensor_format_shape(a, sizeof a, e->rank, e->shape);
        tg_tensor_format_shape(b, sizeof b, tg_tensor_rank(t), tg_tensor_shape(t));
        add_mismatch(m, "\"%s\": shape %s in the file, %s in the model", e->name, a, b);
    }
    if (tg_tensor_dtype(t) != e->dtype)
        add_mismatch(m, "\"%s\": dtype %s in the file, %s in the model", e->name, fd, pd);
}

static enum tg_status match(const char *fn, const struct ck_file *f, const struct tg_params *p)
{
    struct msgbuf m = {.len = 0};
    size_t np = tg_params_count(p);
    for (size_t i = 0; i < np; i++) {
        const char *name = tg_params_name(p, i);
        struct ck_entry *e;
        HASH_FIND(hh, f->index, name, strlen(name), e);
        if (!e)
            add_mismatch(&m, "missing \"%s\"", name);
        else
            compare_entry(&m, e, tg_params_tensor(p, i));
    }
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->ents[i].name;
        if (!tg_params_get(p, name)) add_mismatch(&m, "unexpected \"%s\"", name);
    }
    if (!m.n) return TG_OK;
    return tg_set_error(TG_ERR_MISMATCH, "%s: %s: %d mismatch%s: %s%s%.0d%s", fn, f->path, m.n,
                        m.n == 1 ? "" : "es", m.s, m.dropped ? "; ... and " : "", m.dropped,
                        m.dropped ? " more" : "");
}

/* ---- public: load and read ---- */

enum tg_status tg_checkpoint_load(struct tg_params *params, const char *path)
{
    static const char fn[] = "tg_checkpoint_load";
    if (!params || !path)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, params ? "path" : "params");
    struct ck_file f = {.path = path};
    enum tg_status st = ck_open(fn, &f);
    if (!st) st = match(fn, &f, params);
    for (size_t i = 0; !st && i < f.n; i++)
        copy_in(&f, &f.ents[i], tg_params_get(params, f.ents[i].name));
    ck_close(&f);
    return st;
}

static enum tg_status read_into(const char *fn, const struct ck_file *f, struct tg_params *p)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct ck_entry *e = f->sorted[i];
        struct tg_tensor *t = tg_tensor_zeros(e->dtype, e->rank, e->shape);
        if (t) copy_in(f, e, t);
        if (tg_params_add_owned(p, e->name, t)) return tg_last_status();
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, f->meta)
    {
        if (strncmp(kv->string, CRC_PREFIX, CRC_PREFIX_LEN) && /* verified, not kept */
            tg_params_meta_set(p, kv->string, kv->valuestring))
            return tg_last_status();
    }
    return TG_OK;
}

struct tg_params *tg_checkpoint_read(const char *path)
{
    static const char fn[] = "tg_checkpoint_read";
    if (!path) {
        tg_set_error(TG_ERR_NULL, "%s: path is NULL", fn);
        return NULL;
    }
    struct ck_file f = {.path = path};
    struct tg_params *p = NULL;
    if (!ck_open(fn, &f) && (p = tg_params_new()) && read_into(fn, &f, p)) {
        tg_params_free(p);
        p = NULL;
    }
    ck_close(&f);
    return p;
}

struct tg_params *tg_checkpoint_read_buffer(const void *buf, size_t size)
{
    static const char fn[] = "tg_checkpoint_read_buffer";
    if (!buf && size) {
        tg_set_error(TG_ERR_NULL, "%s: buf is NULL", fn);
        return NULL;
    }
    /* ck_file owns its bytes: copy them, so that the parser is the same as for files
       and the caller's buffer is never written */
    struct ck_file f = {.path = "<buffer>", .size = size};
    struct tg_params *p = NULL;
    if (!(f.buf = tg_malloc(size ? size : 1))) return NULL;
    if (size) memcpy(f.buf, buf, size);
    if (!ck_parse(fn, &f) && (p = tg_params_new()) && read_into(fn, &f, p)) {
        tg_params_free(p);
        p = NULL;
    }
    ck_close(&f);
    return p;
}

/* ---- public: save ---- */

/* An integer as JSON integer text: cJSON prints numbers from 10^15 on in float
 * syntax with 15 digits, which integer readers reject and which loses digits. */
static cJSON *json_int(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(s);
}

static cJSON *entry_json(const struct tg_tensor *t, uint64_t begin, uint64_t end)
{
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
    bool ok = o && shape && off;
    for (int i = 0; ok && i < tg_tensor_rank(t); i++)
        ok = cJSON_AddItemToArray(shape, json_int((uint64_t)tg_tensor_shape(t)[i]));
    ok = ok && cJSON_AddItemToArray(off, json_int(begin)) &&
         cJSON_AddItemToArray(off, json_int(end)) &&
         cJSON_AddStringToObject(o, "dtype", tg_tensor_dtype(t) == TG_F64 ? "F64" : "F32");
    if (ok && cJSON_AddItemToObject(o, "shape", shape)) {
        shape = NULL;
        if (cJSON_AddItemToObject(o, "data_offsets", off)) return o;
    }
    cJSON_Delete(shape);
    cJSON_Delete(off);
    cJSON_Delete(o);
    return NULL;
}

/* The CRC-32 of t's bytes as the file holds them (little-endian). */
static unsigned long tensor_crc(const struct tg_tensor *t)
{
    size_t es = tg_dtype_size(tg_tensor_dtype(t)), n = (size_t)tg_tensor_numel(t) * es;
    const unsigned char *src = tg_tensor_data(t);
    if (tg__nn_little_endian()) return crc32_z(0, src, n);
    unsigned long crc = 0;
    unsigned char chunk[4096];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof chunk && i < n; k += es, i += es)
            for (size_t b = 0; b < es; b++) chunk[k + b] = src[i + es - 1 - b];
        crc = crc32_z(crc, chunk, k);
    }
    return crc;
}

/* Adds "crc32:NAME": "xxxxxxxx" for entry i of p to meta. */
static bool add_crc(cJSON *meta, const struct tg_params *p, size_t i)
{
    const char *name = tg_params_name(p, i);
    size_t len = strlen(name);
    char *key = tg_malloc(CRC_PREFIX_LEN + len + 1), v[16];
    if (!key) return false;
    memcpy(key, CRC_PREFIX, CRC_PREFIX_LEN);
    memcpy(key + CRC_PREFIX_LEN, name, len + 1);
    snprintf(v, sizeof v, "%08lx", tensor_crc(tg_params_tensor(p, i)) & 0xffffffffUL);
    bool ok = cJSON_AddStringToObject(meta, key, v) != NULL;
    tg_free(key);
    return ok;
}

/* The header JSON (cJSON-allocated, free with cJSON_free), or NULL. The map's
 * own metadata keys that start with "crc32:" are left out: the checksums are
 * computed afresh. */
static char *header_json(const char *fn, const struct tg_params *p)
{
    json_begin();
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    bool ok = root != NULL;
    if (ok && (tg_params_meta_count(p) || tg_params_count(p))) {
        ok = (meta = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
        for (size_t i = 0; ok && i < tg_params_meta_count(p); i++)
            if (strncmp(tg_params_meta_key(p, i), CRC_PREFIX, CRC_PREFIX_LEN))
                ok = cJSON_AddStringToObject(meta, tg_params_meta_key(p, i),
                                             tg_params_meta_value(p, i)) != NULL;
    }
    uint64_t pos = 0;
    for (size_t i = 0; ok && i < tg_params_count(p); i++) {
        const struct tg_tensor *t = tg_params_tensor(p, i);
        uint64_t bytes = (uint64_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
        cJSON *e = entry_json(t, pos, pos + bytes);
        ok = e && cJSON_AddItemToObject(root, tg_params_name(p, i), e);
        if (e && !ok) cJSON_Delete(e);
        ok = ok && add_crc(meta, p, i);
        pos += bytes;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s) tg_set_error(TG_ERR_NOMEM, "%s: out of memory building the header", fn);
    return s;
}

/* Writes t's elements little-endian. */
static bool write_tensor(FILE *fp, const struct tg_tensor *t)
{
    size_t es = tg_dtype_size(tg_tensor_dtype(t)), n = (size_t)tg_tensor_numel(t);
    const unsigned char *src = tg_tensor_data(t);
    if (tg__nn_little_endian()) return fwrite(src, es, n, fp) == n;
    unsigned char chunk[4096];
    for (size_t i = 0; i < n * es;) {
        size_t k = 0;
        for (; k < sizeof chunk && i < n * es; k += es, i += es)
            for (size_t b = 0; b < es; b++) chunk[k + b] = src[i + es - 1 - b];
        if (fwrite(chunk, 1, k, fp) != k) return false;
    }
    return true;
}

/* Writes the header length, the padded header and the data to fp. */
static bool write_all(FILE *fp, const struct tg_params *p, const char *json)
{
    size_t len = strlen(json), padded = (len + 7) & ~(size_t)7;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(le, 1, 8, fp) == 8 && fwrite(json, 1, len, fp) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (size_t i = 0; ok && i < tg_params_count(p); i++)
        ok = write_tensor(fp, tg_params_tensor(p, i));
    return ok;
}

/* fsyncs the directory holding path, so that the rename itself is durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        strcpy(dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir)
        return ENAMETOOLONG;
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return errno;
    int err = fsync(fd) && errno != EINVAL ? errno : 0; /* EINVAL: fs cannot sync dirs */
    close(fd);
    return err;
}

/* Writes everything to the open temporary file fd (closing it) and renames it. */
static enum tg_status write_tmp(const char *fn, const struct tg_params *p, const char *json, int fd,
                                const char *tmp, const char *path)
{
    struct stat sb;
    fchmod(fd, stat(path, &sb) == 0 ? (sb.st_mode & 07777) : 0644);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        int e = errno;
        close(fd);
        return tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, tmp, strerror(e));
    }
    bool ok = write_all(fp, p, json) && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int e = errno;
    if (fclose(fp) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) return tg_set_error(TG_ERR_IO, "%s: writing %s: %s", fn, tmp, strerror(e));
    if ((e = sync_dir(path)) != 0)
        return tg_set_error(TG_ERR_IO, "%s: %s was saved but syncing its directory failed: %s", fn,
                            path, strerror(e));
    return TG_OK;
}

/* Every name, metadata key and value must be UTF-8: JSON text is (RFC 8259), and
 * other readers reject a file that is not. */
static enum tg_status check_utf8(const char *fn, const struct tg_params *p)
{
    const char *what = NULL, *s = NULL;
    long long at = -1;
    for (size_t i = 0; at < 0 && i < tg_params_count(p); i++)
        at = utf8_bad(s = tg_params_name(p, i)), what = "parameter name";
    for (size_t i = 0; at < 0 && i < tg_params_meta_count(p); i++) {
        at = utf8_bad(s = tg_params_meta_key(p, i)), what = "metadata key";
        if (at < 0) at = utf8_bad(s = tg_params_meta_value(p, i)), what = "metadata value";
    }
    if (at < 0) return TG_OK;
    return tg_set_error(TG_ERR_VALUE, "%s: %s \"%.*s...\" is not valid UTF-8 at byte %lld", fn,
                        what, (int)at, s, at);
}

/* The file that a save to path replaces: path itself, or where the symbolic links
 * it names lead (followed like the kernel does, at most 40), so that saving
 * through a link replaces its target and keeps the link. A new string (tg_free),
 * or NULL with the error set. */
static char *save_target(const char *fn, const char *path)
{
    size_t n = strlen(path);
    char *cur = tg_malloc(n + 1), link[4096];
    if (cur) memcpy(cur, path, n + 1);
    for (int hops = 0; cur; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) return cur;
        ssize_t k = hops < 40 ? readlink(cur, link, sizeof link) : -1;
        if (k < 0 || (size_t)k == sizeof link) {
            tg_set_error(TG_ERR_IO, "%s: %s: cannot follow the symbolic link: %s", fn, path,
                         strerror(hops >= 40 ? ELOOP
                                  : k < 0    ? errno
                                             : ENAMETOOLONG));
            tg_free(cur);
            return NULL;
        }
        /* a relative target is relative to the directory holding the link */
        const char *slash = strrchr(cur, '/');
        size_t dir = link[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
        char *next = tg_malloc(dir + (size_t)k + 1);
        if (next) {
            memcpy(next, cur, dir);
            memcpy(next + dir, link, (size_t)k);
            next[dir + (size_t)k] = '\0';
        }
        tg_free(cur);
        cur = next;
    }
    return NULL;
}

enum tg_status tg_checkpoint_save(const struct tg_params *params, const char *path)
{
    static const char fn[] = "tg_checkpoint_save";
    if (!params || !path)
        return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, params ? "path" : "params");
    if (check_utf8(fn, params)) return TG_ERR_VALUE;
    char *target = save_target(fn, path);
    if (!target) return tg_last_status();
    char *json = header_json(fn, params);
    size_t n = strlen(target);
    char *tmp = json ? tg_malloc(n + sizeof ".tmp-XXXXXX") : NULL;
    enum tg_status st = TG_ERR_NOMEM;
    if (tmp) {
        memcpy(tmp, target, n);
        memcpy(tmp + n, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
        int fd = mkstemp(tmp);
        if (fd < 0)
            st = tg_set_error(TG_ERR_IO, "%s: cannot create a temporary file next to %s: %s", fn,
                              target, strerror(errno));
        else if ((st = write_tmp(fn, params, json, fd, tmp, target)) != TG_OK)
            unlink(tmp); /* no-op after a successful rename */
    }
    tg_free(tmp);
    tg_free(target);
    cJSON_free(json);
    return st;
}

/* ---- public: removing what interrupted saves left ---- */

/* Whether name is base + ".tmp-" + the 6 characters mkstemp puts in place of XXXXXX. */
static bool is_temp_of(const char *name, const char *base, size_t blen)
{
    if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp-", 5)) return false;
    const char *x = name + blen + 5;
    for (int i = 0; i < 6; i++)
        if (!isalnum((unsigned char)x[i])) return false;
    return x[6] == '\0';
}

static enum tg_status remove_temps(const char *fn, const char *path, size_t *removed)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    char dir[4096];
    if (slash && (size_t)(slash - path) >= sizeof dir)
        return tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, path, strerror(ENAMETOOLONG));
    snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1,
             slash ? path : ".");
    DIR *d = opendir(dir);
    if (!d) return tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, dir, strerror(errno));
    size_t blen = strlen(base), n = 0;
    enum tg_status st = TG_OK;
    const struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_temp_of(de->d_name, base, blen)) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            n++;
        else if (errno != ENOENT && !st)
            st = tg_set_error(TG_ERR_IO, "%s: cannot remove %s/%s: %s", fn, dir, de->d_name,
                              strerror(errno));
    }
    closedir(d);
    if (removed) *removed = n;
    return st;
}

enum tg_status tg_checkpoint_remove_temps(const char *path, size_t *removed)
{
    static const char fn[] = "tg_checkpoint_remove_temps";
    if (removed) *removed = 0;
    if (!path) return tg_set_error(TG_ERR_NULL, "%s: path is NULL", fn);
    char *target = save_target(fn, path); /* where saves through a link put them */
    if (!target) return tg_last_status();
    enum tg_status st = remove_temps(fn, target, removed);
    tg_free(target);
    return st;
}
