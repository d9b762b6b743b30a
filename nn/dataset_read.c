/*
 * nn/dataset_read.c - dataset readers: IDX (the MNIST family, optionally gzipped)
 * and CSV of numbers.
 *
 * IDX files that start with the gzip magic are inflated member by member with
 * zlib's inflate (others are read as they are); the declared size is checked
 * against a limit first, and the element bytes are read in growing chunks, so a
 * header that claims more data than the file holds costs memory only for what is
 * really there. Every element must be finite and fit the result. CSV is read whole
 * into memory and split in place; every error names the file, line and column.
 */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "nn-impl.h"
#include "tapegrad/dataset.h"

/* ---- IDX ---- */

/* A parsed IDX file: its shape and raw big-endian elements. */
struct idx {
    int type, rank;
    int64_t shape[TG_MAX_DIM];
    int64_t numel;
    size_t esize;        /* bytes per stored element */
    unsigned char *data; /* (numel * esize) */
};

static size_t idx_esize(int type)
{
    switch (type) {
    case 0x08: /* u8 */
    case 0x09: /* i8 */
        return 1;
    case 0x0B: /* i16 */
        return 2;
    case 0x0C: /* i32 */
    case 0x0D: /* f32 */
        return 4;
    case 0x0E: /* f64 */
        return 8;
    }
    return 0;
}

/* ---- reading a file, inflating gzip members ---- */

/* A file, inflated when it starts with the gzip magic, read as is otherwise.
 * zlib's gzread would accept garbage after the last member and a member cut
 * before its trailer (it reports the latter only through gzerror), so the members
 * are inflated here, one after the other, and anything else is an error. */
struct src {
    const char *fn, *path;
    FILE *fp;
    bool gz, in_member, eof;
    uint64_t pos; /* bytes of the file consumed */
    z_stream z;   /* next_in/avail_in: the unconsumed part of `in`, also when plain */
    unsigned char in[1 << 14];
};

/* zlib's allocations go through the library's hook too. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return tg_malloc((size_t)items * size);
}
static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    tg_free(p);
}

/* Tops up the input buffer, keeping what is not consumed yet. */
static enum tg_status src_fill(struct src *s)
{
    if (s->z.avail_in) memmove(s->in, s->z.next_in, s->z.avail_in);
    size_t k = fread(s->in + s->z.avail_in, 1, sizeof s->in - s->z.avail_in, s->fp);
    if (ferror(s->fp))
        return tg_set_error(TG_ERR_IO, "%s: %s: read failed: %s", s->fn, s->path, strerror(errno));
    s->eof = k == 0;
    s->z.next_in = s->in;
    s->z.avail_in += (uInt)k;
    return TG_OK;
}

static enum tg_status src_open(struct src *s, const char *fn, const char *path)
{
    s->fn = fn;
    s->path = path;
    s->z.zalloc = z_alloc;
    s->z.zfree = z_free;
    errno = 0;
    if (!(s->fp = fopen(path, "rb")))
        return tg_set_error(TG_ERR_IO, "%s: %s: %s", fn, path,
                            errno ? strerror(errno) : "cannot open");
    if (src_fill(s) || (s->z.avail_in < 2 && !s->eof && src_fill(s))) return tg_last_status();
    s->gz = s->z.avail_in >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (!s->gz) return TG_OK;
    int r = inflateInit2(&s->z, 15 + 16); /* a gzip wrapper, not zlib's */
    if (r == Z_OK) return TG_OK;
    s->gz = false; /* nothing to end */
    if (r == Z_MEM_ERROR) return tg_set_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    return tg_set_error(TG_ERR_IO, "%s: %s: zlib failed to start (%d)", fn, path, r);
}

static void src_close(struct src *s)
{
    if (s->gz) inflateEnd(&s->z);
    if (s->fp) fclose(s->fp);
}

/* Between members: the end of the file, or the start of another gzip member. */
static enum tg_status src_next_member(struct src *s)
{
    if (s->z.avail_in < 2 && !s->eof && src_fill(s)) return tg_last_status();
    if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) {
        inflateReset(&s->z);
        s->in_member = true;
        return TG_OK;
    }
    return tg_set_error(TG_ERR_FORMAT,
                        "%s: %s: bytes after the end of the gzip data (at byte %llu)", s->fn,
                        s->path, (unsigned long long)s->pos);
}

/* Reads up to n bytes into buf; *got is how many (fewer only at the end of the data). */
static enum tg_status src_read(struct src *s, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        if (!s->z.avail_in && !s->eof && src_fill(s)) return tg_last_status();
        if (!s->gz || !s->in_member) {
            if (!s->z.avail_in) break; /* the end of the file */
            if (s->gz) {
                if (src_next_member(s)) return tg_last_status();
                continue;
            }
            size_t k = n - *got < s->z.avail_in ? n - *got : s->z.avail_in;
            memcpy(buf + *got, s->z.next_in, k);
            s->z.next_in += k;
            s->z.avail_in -= (uInt)k;
            s->pos += k;
            *got += k;
            continue;
        }
        uInt room = n - *got > UINT_MAX ? UINT_MAX : (uInt)(n - *got), had = s->z.avail_in;
        s->z.next_out = buf + *got;
        s->z.avail_out = room;
        int r = inflate(&s->z, Z_NO_FLUSH);
        *got += room - s->z.avail_out;
        s->pos += had - s->z.avail_in;
        if (r == Z_STREAM_END)
            s->in_member = false;
        else if (r == Z_MEM_ERROR)
            return tg_set_error(TG_ERR_NOMEM, "%s: out of memory", s->fn);
        else if (r == Z_BUF_ERROR && !s->z.avail_in && s->eof)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s: truncated gzip data (the file ends inside a member, "
                                "before its CRC and length trailer)",
                                s->fn, s->path);
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return tg_set_error(TG_ERR_FORMAT, "%s: %s: corrupt gzip data: %s", s->fn, s->path,
                                s->z.msg ? s->z.msg : "inflate failed");
    }
    return TG_OK;
}

/* ---- IDX ---- */

static enum tg_status idx_header(struct src *g, struct idx *x, uint64_t max_bytes, enum tg_dtype dt)
{
    const char *fn = g->fn, *path = g->path;
    unsigned char h[4 + 4 * 255];
    size_t r;
    if (src_read(g, h, 4, &r)) return tg_last_status();
    if (r < 4)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: file too short for the IDX magic", fn, path);
    x->type = h[2];
    x->rank = h[3];
    x->esize = idx_esize(x->type);
    if (h[0] || h[1] || !x->esize)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: bad IDX magic 0x%02x%02x%02x%02x (expected "
                            "0x0000TTRR with type TT in 08,09,0B,0C,0D,0E)",
                            fn, path, h[0], h[1], h[2], h[3]);
    if (x->rank < 1 || x->rank > TG_MAX_DIM)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: IDX rank %d is not in 1..%d", fn, path, x->rank,
                            TG_MAX_DIM);
    if (src_read(g, h + 4, 4 * (size_t)x->rank, &r)) return tg_last_status();
    if (r < 4 * (size_t)x->rank)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: truncated IDX header (%d dimensions "
                            "announced)",
                            fn, path, x->rank);
    x->numel = 1;
    for (int i = 0; i < x->rank; i++) {
        const unsigned char *p = h + 4 + 4 * i;
        x->shape[i] =
            (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        if (x->shape[i] && x->numel > (INT64_MAX / 8) / x->shape[i])
            return tg_set_error(TG_ERR_RANGE, "%s: %s: IDX dimensions are too large", fn, path);
        x->numel *= x->shape[i];
    }
    /* the larger of the raw data and the tensor made of it */
    size_t es = x->esize > tg_dtype_size(dt) ? x->esize : tg_dtype_size(dt);
    if ((uint64_t)x->numel * es > max_bytes) {
        char sh[160];
        tg_tensor_format_shape(sh, sizeof sh, x->rank, x->shape);
        return tg_set_error(TG_ERR_RANGE,
                            "%s: %s: the header declares %s, %llu bytes, more than the limit "
                            "of %llu bytes (max_bytes)",
                            fn, path, sh, (unsigned long long)x->numel * es,
                            (unsigned long long)max_bytes);
    }
    return TG_OK;
}

/* Reads exactly numel * esize bytes, growing the buffer as data really arrives. */
static enum tg_status idx_data(struct src *g, struct idx *x)
{
    const char *fn = g->fn, *path = g->path;
    uint64_t want = (uint64_t)x->numel * x->esize;
    if (want > SIZE_MAX / 2) return tg_set_error(TG_ERR_RANGE, "%s: %s: too large", fn, path);
    size_t cap = want < (1u << 16) ? (size_t)want : (1u << 16), got = 0, r;
    if (!(x->data = tg_malloc(cap ? cap : 1))) return TG_ERR_NOMEM;
    while (got < want) {
        if (got == cap) {
            size_t c = cap * 2 < want ? cap * 2 : (size_t)want;
            unsigned char *q = tg_realloc(x->data, c);
            if (!q) return TG_ERR_NOMEM;
            x->data = q;
            cap = c;
        }
        if (src_read(g, x->data + got, cap - got, &r)) return tg_last_status();
        if (r == 0) break;
        got += r;
    }
    if (got < want)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: truncated: the header announces %llu bytes "
                            "of data, the file has %zu",
                            fn, path, (unsigned long long)want, got);
    unsigned char extra;
    if (src_read(g, &extra, 1, &r)) return tg_last_status();
    if (r > 0)
        return tg_set_error(TG_ERR_FORMAT,
                            "%s: %s: bytes after the %llu bytes of data that the "
                            "header announces",
                            fn, path, (unsigned long long)want);
    return TG_OK;
}

/* Element i of x, decoded from big-endian. */
static double idx_get(const struct idx *x, int64_t i)
{
    const unsigned char *p = x->data + (size_t)i * x->esize;
    uint64_t u = 0;
    for (size_t b = 0; b < x->esize; b++) u = u << 8 | p[b];
    switch (x->type) {
    case 0x08:
        return (double)p[0];
    case 0x09:
        return (double)(int8_t)p[0];
    case 0x0B:
        return (double)(int16_t)(uint16_t)u;
    case 0x0C:
        return (double)(int32_t)(uint32_t)u;
    case 0x0D: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return (double)f;
    }
    default: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

static enum tg_status idx_open(const char *fn, const char *path, struct idx *x, uint64_t max_bytes,
                               enum tg_dtype dt)
{
    memset(x, 0, sizeof *x);
    if (!path) return tg_set_error(TG_ERR_NULL, "%s: path is NULL", fn);
    struct src g = {.fp = NULL};
    enum tg_status st = src_open(&g, fn, path);
    if (!st) st = idx_header(&g, x, max_bytes ? max_bytes : TG_DATASET_MAX_BYTES, dt);
    if (!st) st = idx_data(&g, x);
    src_close(&g);
    return st;
}

/* Element i of x (raw), times scale (v), must be finite and fit dt: a NaN or an
 * infinity in the data, or one made by the conversion, would train on garbage. */
static enum tg_status idx_value_ok(const char *fn, const char *path, const struct idx *x, int64_t i,
                                   double raw, double v, double scale, enum tg_dtype dt)
{
    bool fits = isfinite(v) && (dt == TG_F64 || fabs(v) <= FLT_MAX);
    if (fits && isfinite(raw)) return TG_OK;
    char at[160];
    int64_t c[TG_MAX_DIM], r = i;
    for (int d = x->rank - 1; d >= 0; d--) {
        c[d] = x->shape[d] ? r % x->shape[d] : 0;
        r = x->shape[d] ? r / x->shape[d] : 0;
    }
    tg_tensor_format_shape(at, sizeof at, x->rank, c);
    if (!isfinite(raw))
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: element %lld at %s is %s", fn, path,
                            (long long)i, at, isnan(raw) ? "NaN" : "infinite");
    if (scale == 1.0)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s: element %lld at %s (%g) is too large for %s",
                            fn, path, (long long)i, at, raw, tg_dtype_name(dt));
    return tg_set_error(TG_ERR_RANGE,
                        "%s: %s: element %lld at %s (%g) times scale %g is too large for %s", fn,
                        path, (long long)i, at, raw, scale, tg_dtype_name(dt));
}

/* x's elements times scale into a new leaf of the given shape. */
static struct tg_tensor *idx_tensor(const char *fn, const char *path, const struct idx *x,
                                    enum tg_dtype dt, int rank, const int64_t *shape, double scale)
{
    struct tg_tensor *t = tg_tensor_zeros(dt, rank, shape);
    if (!t) return NULL;
    void *d = tg_tensor_data(t); /* (numel) */
    for (int64_t i = 0; i < x->numel; i++) {
        double raw = idx_get(x, i), v = raw * scale;
        if (idx_value_ok(fn, path, x, i, raw, v, scale, dt)) {
            tg_tensor_free(t);
            return NULL;
        }
        if (dt == TG_F64)
            ((double *)d)[i] = v;
        else
            ((float *)d)[i] = (float)v;
    }
    return t;
}

static bool dtype_ok(const char *fn, enum tg_dtype dt)
{
    if (dt == TG_F32 || dt == TG_F64) return true;
    tg_set_error(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
    return false;
}

struct tg_tensor *tg_dataset_read_idx_limit(const char *path, enum tg_dtype dt, uint64_t max_bytes)
{
    static const char fn[] = "tg_dataset_read_idx";
    struct idx x = {0};
    struct tg_tensor *t = NULL;
    if (dtype_ok(fn, dt) && !idx_open(fn, path, &x, max_bytes, dt))
        t = idx_tensor(fn, path, &x, dt, x.rank, x.shape, 1.0);
    tg_free(x.data);
    return t;
}

struct tg_tensor *tg_dataset_read_idx(const char *path, enum tg_dtype dt)
{
    return tg_dataset_read_idx_limit(path, dt, 0);
}

struct tg_dataset *tg_dataset_load_idx_limit(const char *images_path, const char *labels_path,
                                             enum tg_dtype dt, double scale, uint64_t max_bytes)
{
    static const char fn[] = "tg_dataset_load_idx";
    struct idx im = {0}, lb = {0};
    struct tg_tensor *X = NULL, *y = NULL;
    if (!isfinite(scale)) {
        tg_set_error(TG_ERR_VALUE, "%s: scale %g is not finite", fn, scale);
        return NULL;
    }
    if (!dtype_ok(fn, dt) || idx_open(fn, images_path, &im, max_bytes, dt) ||
        idx_open(fn, labels_path, &lb, max_bytes, dt))
        goto out;
    if (lb.rank != 1 || lb.shape[0] != im.shape[0]) {
        char a[160], b[160];
        tg_tensor_format_shape(a, sizeof a, im.rank, im.shape);
        tg_tensor_format_shape(b, sizeof b, lb.rank, lb.shape);
        tg_set_error(TG_ERR_MISMATCH,
                     "%s: images %s of %s do not match labels %s of %s (need "
                     "(n, ...) and (n))",
                     fn, images_path, a, labels_path, b);
        goto out;
    }
    int64_t n = im.shape[0], d = 1; /* images (n, ...) flatten to (n, d) */
    for (int i = 1; i < im.rank; i++) d *= im.shape[i];
    X = idx_tensor(fn, images_path, &im, dt, 2, (int64_t[]){n, d}, scale);
    y = X ? idx_tensor(fn, labels_path, &lb, dt, 1, &n, 1.0) : NULL;
out:
    tg_free(im.data);
    tg_free(lb.data);
    if (X && !y) tg_tensor_free(X);
    return X && y ? tg_dataset_new(X, y) : NULL;
}

struct tg_dataset *tg_dataset_load_idx(const char *images_path, const char *labels_path,
                                       enum tg_dtype dt, double scale)
{
    return tg_dataset_load_idx_limit(images_path, labels_path, dt, scale, 0);
}

/* ---- CSV ---- */

/* The file being parsed: the whole text, split in place. */
struct csv {
    const char *fn, *path;
    char *text; /* NUL-terminated */
    char *body; /* text after a UTF-8 byte order mark */
    char delim;
    uint64_t max_bytes;
    enum tg_dtype dt; /* of the result: an F32 field must fit a float */
    int64_t ncols;
    double *vals; /* (nrows, ncols) */
    int64_t nrows, cap;
    char **names;  /* (ncols) header fields, or NULL without a header */
    char **f;      /* (ncols) scratch: the fields of the current line */
    int64_t *cols; /* (ncols) scratch: their 1-based character columns */
};

static enum tg_status read_text(struct csv *c)
{
    FILE *fp = fopen(c->path, "rb");
    if (!fp) return tg_set_error(TG_ERR_IO, "%s: %s: %s", c->fn, c->path, strerror(errno));
    size_t len = 0, cap = 4096;
    enum tg_status st = TG_OK;
    c->text = tg_malloc(cap);
    while (c->text) {
        len += fread(c->text + len, 1, cap - 1 - len, fp);
        if (len > c->max_bytes) {
            st = tg_set_error(TG_ERR_RANGE,
                              "%s: %s: larger than the limit of %llu bytes "
                              "(max_bytes)",
                              c->fn, c->path, (unsigned long long)c->max_bytes);
            break;
        }
        if (len < cap - 1) break;
        char *q = cap <= SIZE_MAX / 2 ? tg_realloc(c->text, cap *= 2) : NULL;
        if (!q) st = TG_ERR_NOMEM;
        if (!q) break;
        c->text = q;
    }
    if (!c->text)
        st = TG_ERR_NOMEM;
    else if (st)
        ;
    else if (ferror(fp))
        st = tg_set_error(TG_ERR_IO, "%s: %s: read failed: %s", c->fn, c->path, strerror(errno));
    else
        c->text[len] = '\0';
    fclose(fp);
    const char *nul = st ? NULL : memchr(c->text, '\0', len);
    if (nul) {
        int64_t line = 1;
        for (const char *p = c->text; p < nul; p++) line += *p == '\n';
        st = tg_set_error(TG_ERR_FORMAT, "%s: %s:%lld: a NUL byte (not a text file?)", c->fn,
                          c->path, (long long)line);
    }
    if (!st) c->body = c->text + (len >= 3 && !memcmp(c->text, "\xEF\xBB\xBF", 3) ? 3 : 0);
    return st;
}

static char *trim(char *s, char **end)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *e = '\0';
    if (end) *end = e;
    return s;
}

/* Splits line (NUL-terminated) at the delimiter in place; returns the field count
 * and sets fields[i] / cols[i] (1-based character column) for i < max. */
static int64_t split(const struct csv *c, char *line, char **fields, int64_t *cols, int64_t max)
{
    int64_t n = 0;
    char *p = line;
    for (;;) {
        char *d = strchr(p, c->delim);
        if (d) *d = '\0';
        if (n < max) {
            fields[n] = trim(p, NULL);
            cols[n] = (int64_t)(fields[n] - line) + 1;
        }
        n++;
        if (!d) return n;
        p = d + 1;
    }
}

static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    return *s == '\0';
}

static int64_t count_fields(const char *line, char delim)
{
    int64_t n = 1;
    for (; *line; line++) n += *line == delim;
    return n;
}

static enum tg_status parse_row(struct csv *c, char *line, int64_t lineno)
{
    char **f = c->f;
    int64_t *cols = c->cols;
    int64_t n = count_fields(line, c->delim);
    if (n != c->ncols)
        return tg_set_error(TG_ERR_FORMAT, "%s: %s:%lld: expected %lld fields, found %lld", c->fn,
                            c->path, (long long)lineno, (long long)c->ncols, (long long)n);
    if (c->nrows == c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 64;
        if ((uint64_t)cap > SIZE_MAX / sizeof(double) / (uint64_t)c->ncols)
            return tg_set_error(TG_ERR_RANGE, "%s: %s: too many rows", c->fn, c->path);
        int64_t max_rows = (int64_t)(c->max_bytes / sizeof(double) / (uint64_t)c->ncols);
        if (c->nrows >= max_rows)
            return tg_set_error(TG_ERR_RANGE,
                                "%s: %s:%lld: the values take more than the limit of %llu "
                                "bytes (max_bytes)",
                                c->fn, c->path, (long long)lineno,
                                (unsigned long long)c->max_bytes);
        if (cap > max_rows) cap = max_rows;
        double *q = tg_realloc(c->vals, (size_t)cap * (size_t)c->ncols * sizeof *q);
        if (!q) return TG_ERR_NOMEM;
        c->vals = q;
        c->cap = cap;
    }
    split(c, line, f, cols, c->ncols);
    double *row = c->vals + c->nrows * c->ncols; /* (ncols) */
    for (int64_t j = 0; j < c->ncols; j++) {
        char *end;
        errno = 0;
        row[j] = strtod(f[j], &end);
        /* strtod also takes hexadecimal ("0x1p3"), which is no CSV number */
        if (!f[j][0] || *end || !isfinite(row[j]) || strpbrk(f[j], "xX"))
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s:%lld:%lld: field %lld \"%.40s\" is not a "
                                "finite number",
                                c->fn, c->path, (long long)lineno, (long long)cols[j],
                                (long long)j + 1, f[j]);
        if (c->dt == TG_F32 && fabs(row[j]) > FLT_MAX)
            return tg_set_error(TG_ERR_FORMAT,
                                "%s: %s:%lld:%lld: field %lld \"%.40s\" is too large for F32 "
                                "(would become infinite)",
                                c->fn, c->path, (long long)lineno, (long long)cols[j],
                                (long long)j + 1, f[j]);
    }
    c->nrows++;
    return TG_OK;
}

/* Resolves the target column from the options and the header names (or NULL). */
static enum tg_status find_target(const struct csv *c, const struct tg_dataset_csv_options *o,
                                  int64_t *target)
{
    char **names = c->names;
    if (o->target) {
        if (!names)
            return tg_set_error(TG_ERR_VALUE,
                                "%s: %s: target \"%s\" given by name but the file "
                                "has no header",
                                c->fn, c->path, o->target);
        for (int64_t j = 0; j < c->ncols; j++)
            if (!strcmp(names[j], o->target)) return (*target = j, TG_OK);
        return tg_set_error(TG_ERR_VALUE, "%s: %s: no column named \"%s\" in the header", c->fn,
                            c->path, o->target);
    }
    int64_t t = o->target_index < 0 ? c->ncols + o->target_index : o->target_index;
    if (t < 0 || t >= c->ncols)
        return tg_set_error(TG_ERR_VALUE, "%s: %s: target index %d out of range (%lld columns)",
                            c->fn, c->path, o->target_index, (long long)c->ncols);
    *target = t;
    return TG_OK;
}

/* Strips one pair of double quotes around each header name. */
static void unquote(char **names, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        size_t len = strlen(names[j]);
        if (len >= 2 && names[j][0] == '"' && names[j][len - 1] == '"') {
            names[j][len - 1] = '\0';
            names[j]++;
        }
    }
}

/* The first non-blank line fixes the column count; it is the header or data. */
static enum tg_status first_line(struct csv *c, char *line, int64_t lineno, bool header)
{
    c->ncols = count_fields(line, c->delim);
    c->f = tg_malloc((size_t)c->ncols * sizeof *c->f);
    c->cols = tg_malloc((size_t)c->ncols * sizeof *c->cols);
    if (!c->f || !c->cols) return TG_ERR_NOMEM;
    if (!header) return parse_row(c, line, lineno);
    if (!(c->names = tg_malloc((size_t)c->ncols * sizeof *c->names))) return TG_ERR_NOMEM;
    split(c, line, c->names, c->cols, c->ncols);
    unquote(c->names, c->ncols);
    return TG_OK;
}

static enum tg_status parse_lines(struct csv *c, bool header)
{
    int64_t lineno = 0;
    for (char *line = c->body; line;) {
        char *nl = strpbrk(line, "\r\n"); /* "\n", "\r\n" or a lone "\r" */
        if (nl && nl[0] == '\r' && nl[1] == '\n') *nl++ = '\0';
        if (nl) *nl = '\0';
        lineno++;
        enum tg_status st = TG_OK;
        if (blank(line))
            ;
        else if (!c->f)
            st = first_line(c, line, lineno, header);
        else
            st = parse_row(c, line, lineno);
        if (st) return st;
        line = nl ? nl + 1 : NULL;
    }
    return TG_OK;
}

/* Splits the parsed values into X (nrows, ncols-1) and y (nrows). */
static struct tg_dataset *csv_dataset(const struct csv *c, enum tg_dtype dt, int64_t target)
{
    int64_t n = c->nrows, d = c->ncols - 1;
    struct tg_tensor *X = tg_tensor_zeros(dt, 2, (int64_t[]){n, d});
    struct tg_tensor *y = tg_tensor_zeros(dt, 1, &n);
    for (int64_t i = 0; X && y && i < n; i++) {
        const double *row = c->vals + i * c->ncols; /* (ncols) */
        for (int64_t j = 0, k = 0; j < c->ncols; j++)
            if (j == target)
                tg_tensor_set(y, i, row[j]);
            else
                tg_tensor_set(X, i * d + k++, row[j]);
    }
    return tg_dataset_new(X, y);
}

static enum tg_status csv_check(const struct csv *c)
{
    if (c->ncols < 2)
        return tg_set_error(TG_ERR_VALUE,
                            "%s: %s: %lld column%s; need a target and at least one "
                            "feature",
                            c->fn, c->path, (long long)c->ncols, c->ncols == 1 ? "" : "s");
    if (c->nrows < 1) return tg_set_error(TG_ERR_VALUE, "%s: %s: no data rows", c->fn, c->path);
    return TG_OK;
}

struct tg_dataset *tg_dataset_load_csv(const char *path, const struct tg_dataset_csv_options *opt)
{
    static const char fn[] = "tg_dataset_load_csv";
    struct tg_dataset_csv_options o =
        opt ? *opt : (struct tg_dataset_csv_options){.target_index = -1};
    struct csv c = {.fn = fn,
                    .path = path,
                    .delim = o.delimiter ? o.delimiter : ',',
                    .dt = o.dtype,
                    .max_bytes = o.max_bytes ? o.max_bytes : TG_DATASET_MAX_BYTES};
    struct tg_dataset *ds = NULL;
    int64_t target = 0;
    if (!path)
        tg_set_error(TG_ERR_NULL, "%s: path is NULL", fn);
    else if (c.delim == '\n' || c.delim == '\r' || c.delim == '"')
        tg_set_error(TG_ERR_VALUE, "%s: delimiter '\\x%02x' is not allowed", fn,
                     (unsigned char)c.delim);
    else if (dtype_ok(fn, o.dtype) && !read_text(&c) && !parse_lines(&c, !o.no_header) &&
             !csv_check(&c) && !find_target(&c, &o, &target))
        ds = csv_dataset(&c, o.dtype, target);
    tg_free(c.text);
    tg_free(c.vals);
    tg_free(c.names);
    tg_free(c.f);
    tg_free(c.cols);
    return ds;
}
