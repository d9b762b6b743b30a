/*
 * cli/mlpio.c - data, normalization, class checks and the model file shared by
 * `tapegrad train` and `tapegrad eval` (see mlpio.h).
 *
 * The model file is a plain safetensors checkpoint of the MLP's parameters
 * ("layers.K.weight" (out, in), "layers.K.bias" (out)); its "__metadata__" holds
 * everything else eval needs, as strings, so that the file alone rebuilds the
 * model and the preprocessing:
 *     format         tapegrad-mlp
 *     architecture   4,64,3          (sizes: inputs, hidden..., outputs)
 *     activation     relu            (hidden layers; the output layer is linear)
 *     loss           xent | mse
 *     normalization  none | standardize | scale
 *     norm_mean, norm_std   (d) numbers, comma-separated   (standardize)
 *     norm_scale            one number                     (scale)
 *     target         the --target given to train ("" for the last column)
 */
#include "mlpio.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

/* The library's message without its leading "tg_function: ". */
static const char *lib_error(void)
{
    const char *e = tg_last_error(), *colon = strstr(e, ": ");
    return !strncmp(e, "tg_", 3) && colon ? colon + 2 : e;
}

/* ======================= parsers ======================= */

int mlp_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int mlp_parse_positive(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v <= 0.0) return -1;
    *out = v;
    return 0;
}

int mlp_parse_sizes(const char *s, int64_t *sizes, int max, int *n)
{
    *n = 0;
    if (!*s || !strcmp(s, "none")) return 0;
    for (const char *p = s;; p++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1000000 || *n == max) return -1;
        sizes[(*n)++] = v;
        if (!*end) return 0;
        if (*end != ',') return -1;
        p = end;
    }
}

/* ======================= data ======================= */

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

/* The file of `set` ("train", "t10k") and `what` ("images-idx3", "labels-idx1")
 * in folder dir, trying "-" and "." before "idx" and an optional ".gz". */
static bool find_member(const char *dir, const char *set, const char *what, char *buf, size_t size)
{
    static const char *const seps[] = {"-", "."}, *const exts[] = {"", ".gz"};
    size_t dash = strcspn(what, "-"); /* "images" | "labels" */
    for (int s = 0; s < 2; s++)
        for (int e = 0; e < 2; e++) {
            snprintf(buf, size, "%s/%s-%.*s%s%s-ubyte%s", dir, set, (int)dash, what, seps[s],
                     what + dash + 1, exts[e]);
            if (is_file(buf)) return true;
        }
    return false;
}

static int load_idx_pair(const char *prog, const char *images, const char *labels,
                         struct tg_dataset **out)
{
    *out = tg_dataset_load_idx(images, labels, TG_F32, 1.0);
    if (*out) return CLI_OK;
    fprintf(stderr, "%s: %s\n", prog, lib_error());
    return CLI_FAIL;
}

static int load_folder_set(const char *prog, const char *dir, const char *set,
                           struct tg_dataset **out)
{
    char images[4096], labels[4096];
    if (!find_member(dir, set, "images-idx3", images, sizeof images) ||
        !find_member(dir, set, "labels-idx1", labels, sizeof labels)) {
        fprintf(stderr, "%s: %s: no %s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz]\n",
                prog, dir, set, set);
        return CLI_FAIL;
    }
    return load_idx_pair(prog, images, labels, out);
}

static int load_csv(const char *prog, const char *path, const char *target, struct tg_dataset **out)
{
    struct tg_csv_options opt = {.dtype = TG_F32, .target_index = -1};
    long index;
    if (target && !mlp_parse_long(target, INT_MIN, INT_MAX, &index))
        opt.target_index = (int)index;
    else
        opt.target = target;
    *out = tg_dataset_load_csv(path, &opt);
    if (*out) return CLI_OK;
    fprintf(stderr, "%s: %s\n", prog, lib_error());
    return CLI_FAIL;
}

int mlp_data_load(const char *prog, const char *spec, const char *target, bool want_train,
                  bool want_test, struct mlp_data *out)
{
    memset(out, 0, sizeof *out);
    const char *comma = strchr(spec, ',');
    bool dir = is_dir(spec), file = !dir && is_file(spec);
    if (!dir && !file && !comma) {
        fprintf(stderr, "%s: %s: %s\n", prog, spec, strerror(ENOENT));
        return CLI_FAIL;
    }
    if (file) return load_csv(prog, spec, target, &out->train);
    if (target) {
        fprintf(stderr, "%s: --target applies to CSV data only, not to IDX data (%s)\n", prog,
                spec);
        return CLI_USAGE;
    }
    out->kind = MLP_DATA_IDX;
    int rc = CLI_OK;
    if (dir) {
        if (want_train) rc = load_folder_set(prog, spec, "train", &out->train);
        if (!rc && want_test) rc = load_folder_set(prog, spec, "t10k", &out->test);
    } else {
        char images[4096];
        snprintf(images, sizeof images, "%.*s", (int)(comma - spec), spec);
        rc = load_idx_pair(prog, images, comma + 1, &out->train);
    }
    if (rc) mlp_data_free(out);
    return rc;
}

void mlp_data_free(struct mlp_data *d)
{
    tg_dataset_free(d->train);
    tg_dataset_free(d->test);
    d->train = d->test = NULL;
}

int mlp_check_classes(const char *prog, const struct tg_dataset *ds, int64_t *C)
{
    const struct tg_tensor *y = tg_dataset_y(ds);
    int64_t n = tg_dataset_len(ds), max = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = tg_tensor_get(y, i);
        bool index = v >= 0 && v <= 1e6 && v == floor(v);
        if (!index || (*C > 0 && v >= (double)*C)) {
            char range[48] = "an integer >= 0";
            if (*C > 0) snprintf(range, sizeof range, "0..%lld", (long long)*C - 1);
            fprintf(stderr,
                    "%s: target %g of example %lld is not a class index (%s); pick the label "
                    "column with --target, or use --loss mse for a numeric target\n",
                    prog, v, (long long)i + 1, range);
            return CLI_FAIL;
        }
        if (v > (double)max) max = (int64_t)v;
    }
    if (*C <= 0) *C = max + 1 < 2 ? 2 : max + 1;
    return CLI_OK;
}

/* ======================= normalization ======================= */

int mlp_norm_fit(const char *prog, const struct tg_dataset *ds, enum mlp_data_kind kind,
                 struct mlp_norm *n)
{
    memset(n, 0, sizeof *n);
    if (kind == MLP_DATA_CSV) {
        n->kind = MLP_NORM_STANDARDIZE;
        if (!tg_dataset_feature_stats(ds, &n->mean, &n->std)) return CLI_OK;
        fprintf(stderr, "%s: %s\n", prog, lib_error());
        return CLI_FAIL;
    }
    const struct tg_tensor *X = tg_dataset_x(ds);
    const float *x = tg_tensor_data(X); /* (n, d) f32 */
    double big = 0.0;
    for (int64_t i = 0, m = tg_tensor_numel(X); i < m; i++)
        if (fabs(x[i]) > big) big = fabs(x[i]);
    n->kind = MLP_NORM_SCALE;
    n->scale = big > 0.0 ? 1.0 / big : 1.0;
    return CLI_OK;
}

int mlp_norm_apply(const char *prog, const struct mlp_norm *n, struct tg_dataset *ds)
{
    if (n->kind == MLP_NORM_STANDARDIZE) {
        if (!tg_dataset_standardize(ds, n->mean, n->std)) return CLI_OK;
        fprintf(stderr, "%s: %s\n", prog, lib_error());
        return CLI_FAIL;
    }
    if (n->kind == MLP_NORM_SCALE) {
        struct tg_tensor *X = tg_dataset_x(ds);
        float *x = tg_tensor_data(X); /* (n, d) f32 */
        for (int64_t i = 0, m = tg_tensor_numel(X); i < m; i++) x[i] = (float)(x[i] * n->scale);
    }
    return CLI_OK;
}

void mlp_norm_free(struct mlp_norm *n)
{
    tg_tensor_free(n->mean);
    tg_tensor_free(n->std);
    n->mean = n->std = NULL;
}

/* ======================= the model file ======================= */

/* The numbers of t, comma-separated, %.17g (round-trips exactly); malloc'ed. */
static char *join_numbers(const struct tg_tensor *t)
{
    int64_t n = tg_tensor_numel(t);
    char *s = malloc((size_t)n * 26 + 1), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (int64_t i = 0; i < n; i++) p += sprintf(p, "%s%.17g", i ? "," : "", tg_tensor_get(t, i));
    return s;
}

char *mlp_arch_str(const struct mlp_model *m, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < m->n_sizes && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", k ? "-" : "", (long long)m->sizes[k]);
    return buf;
}

static int set_norm_meta(struct tg_params *p, const struct mlp_norm *n)
{
    static const char *const kinds[] = {"none", "standardize", "scale"};
    int bad = tg_params_meta_set(p, "normalization", kinds[n->kind]) != TG_OK;
    if (n->kind == MLP_NORM_SCALE) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.17g", n->scale);
        bad |= tg_params_meta_set(p, "norm_scale", buf) != TG_OK;
    } else if (n->kind == MLP_NORM_STANDARDIZE) {
        char *mean = join_numbers(n->mean), *std = join_numbers(n->std);
        bad |= !mean || !std || tg_params_meta_set(p, "norm_mean", mean) ||
               tg_params_meta_set(p, "norm_std", std);
        free(mean);
        free(std);
    }
    return bad;
}

int mlp_model_save(const char *prog, struct mlp_model *m, const char *path)
{
    struct tg_params *p = tg_nn_mlp_params(m->mlp);
    char arch[MLP_MAX_LAYERS * 8 + 8];
    mlp_arch_str(m, arch, sizeof arch);
    for (char *c = arch; *c; c++) *c = *c == '-' ? ',' : *c;
    int bad = tg_params_meta_set(p, "format", "tapegrad-mlp") ||
              tg_params_meta_set(p, "architecture", arch) ||
              tg_params_meta_set(p, "activation", tg_nn_act_name(m->act)) ||
              tg_params_meta_set(p, "loss", tg_loss_name(m->loss)) || set_norm_meta(p, &m->norm) ||
              tg_params_meta_set(p, "target", m->target);
    if (bad || tg_checkpoint_save(p, path)) {
        fprintf(stderr, "%s: cannot save the model: %s\n", prog, lib_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Parses exactly n comma-separated numbers of s into a new f64 (n) leaf. */
static struct tg_tensor *parse_numbers(const char *s, int64_t n)
{
    double *v = malloc((size_t)n * sizeof *v); /* (n) */
    struct tg_tensor *t = NULL;
    const char *p = s;
    int64_t i = 0;
    for (; v && i < n; i++) {
        char *end;
        v[i] = strtod(p, &end);
        if (end == p || !isfinite(v[i])) break;
        p = end;
        if (i + 1 < n && *p++ != ',') break;
    }
    if (v && i == n && !*p) t = tg_tensor_from_f64(TG_F64, 1, &n, v);
    free(v);
    return t;
}

/* The metadata value of key, or NULL after printing that it is missing. */
static const char *meta(const char *prog, const char *path, const struct tg_params *p,
                        const char *key)
{
    const char *v = tg_params_meta_get(p, key);
    if (!v)
        fprintf(stderr, "%s: %s: metadata '%s' is missing (not saved by tapegrad train --save?)\n",
                prog, path, key);
    return v;
}

static int read_norm(const char *prog, const char *path, const struct tg_params *p,
                     struct mlp_model *m)
{
    const char *kind = meta(prog, path, p, "normalization"), *a, *b;
    struct mlp_norm *n = &m->norm;
    if (!kind) return CLI_FAIL;
    if (!strcmp(kind, "none")) return CLI_OK;
    if (!strcmp(kind, "scale")) {
        if (!(a = meta(prog, path, p, "norm_scale"))) return CLI_FAIL;
        n->kind = MLP_NORM_SCALE;
        if (!mlp_parse_positive(a, &n->scale)) return CLI_OK;
    } else if (!strcmp(kind, "standardize")) {
        if (!(a = meta(prog, path, p, "norm_mean")) || !(b = meta(prog, path, p, "norm_std")))
            return CLI_FAIL;
        n->kind = MLP_NORM_STANDARDIZE;
        n->mean = parse_numbers(a, m->sizes[0]);
        n->std = parse_numbers(b, m->sizes[0]);
        if (n->mean && n->std) return CLI_OK;
    }
    fprintf(stderr,
            "%s: %s: bad normalization metadata '%s' (or its numbers: %lld features expected)\n",
            prog, path, kind, (long long)m->sizes[0]);
    return CLI_FAIL;
}

static int read_header(const char *prog, const char *path, const struct tg_params *p,
                       struct mlp_model *m)
{
    const char *fmt = meta(prog, path, p, "format"), *arch, *act, *loss, *target;
    if (fmt && strcmp(fmt, "tapegrad-mlp")) {
        fprintf(stderr,
                "%s: %s: metadata format is '%s', not tapegrad-mlp (not saved by "
                "tapegrad train --save?)\n",
                prog, path, fmt);
        return CLI_FAIL;
    }
    if (!fmt || !(arch = meta(prog, path, p, "architecture")) ||
        !(act = meta(prog, path, p, "activation")) || !(loss = meta(prog, path, p, "loss")))
        return CLI_FAIL;
    target = tg_params_meta_get(p, "target");
    snprintf(m->target, sizeof m->target, "%s", target ? target : "");
    if (mlp_parse_sizes(arch, m->sizes, MLP_MAX_LAYERS + 1, &m->n_sizes) || m->n_sizes < 2) {
        fprintf(stderr, "%s: %s: bad architecture '%s' (sizes such as 4,64,3)\n", prog, path, arch);
        return CLI_FAIL;
    }
    if (tg_nn_act_parse(act, &m->act)) {
        fprintf(stderr, "%s: %s: unknown activation '%s'\n", prog, path, act);
        return CLI_FAIL;
    }
    int64_t out = m->sizes[m->n_sizes - 1];
    m->loss = !strcmp(loss, "xent") ? TG_LOSS_XENT : TG_LOSS_MSE;
    if ((strcmp(loss, "xent") && strcmp(loss, "mse")) || (m->loss == TG_LOSS_XENT && out < 2) ||
        (m->loss == TG_LOSS_MSE && out != 1)) {
        fprintf(stderr, "%s: %s: loss '%s' does not fit %lld outputs\n", prog, path, loss,
                (long long)out);
        return CLI_FAIL;
    }
    return read_norm(prog, path, p, m);
}

/* Checks that p holds exactly the tensors of the architecture. */
static int check_tensors(const char *prog, const char *path, const struct tg_params *p,
                         const struct mlp_model *m)
{
    int L = m->n_sizes - 1;
    char name[64], got[64], want[64];
    for (int k = 0; k < L; k++)
        for (int b = 0; b < 2; b++) {
            snprintf(name, sizeof name, "layers.%d.%s", k, b ? "bias" : "weight");
            const struct tg_tensor *t = tg_params_get(p, name);
            int64_t out = m->sizes[k + 1], in = m->sizes[k];
            bool fits = t && tg_tensor_rank(t) == 2 - b && tg_tensor_dim(t, 0) == out &&
                        (b || tg_tensor_dim(t, 1) == in);
            if (!fits) {
                if (b)
                    snprintf(want, sizeof want, "(%lld)", (long long)out);
                else
                    snprintf(want, sizeof want, "(%lld,%lld)", (long long)out, (long long)in);
                fprintf(stderr, "%s: %s: architecture %s needs %s of shape %s, the file has %s\n",
                        prog, path, tg_params_meta_get(p, "architecture"), name, want,
                        t ? tg_shape_str(t, got, sizeof got) : "none");
                return CLI_FAIL;
            }
        }
    if (tg_params_count(p) != (size_t)(2 * L)) {
        fprintf(stderr, "%s: %s: %zu tensors, architecture %s has %d\n", prog, path,
                tg_params_count(p), tg_params_meta_get(p, "architecture"), 2 * L);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Copies the values of from into to (same shape), converting to to's dtype. */
static void copy_values(struct tg_tensor *to, const struct tg_tensor *from)
{
    int64_t n = tg_tensor_numel(to);
    if (tg_tensor_dtype(from) == tg_tensor_dtype(to))
        memcpy(tg_tensor_data(to), tg_tensor_data(from),
               (size_t)n * tg_dtype_size(tg_tensor_dtype(to)));
    else
        for (int64_t i = 0; i < n; i++) tg_tensor_set(to, i, tg_tensor_get(from, i));
}

int mlp_model_read(const char *prog, const char *path, struct mlp_model *m)
{
    memset(m, 0, sizeof *m);
    if (!is_file(path)) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(ENOENT));
        return CLI_FAIL;
    }
    struct tg_params *p = tg_checkpoint_read(path);
    if (!p) {
        fprintf(stderr, "%s: cannot read the model: %s\n", prog, lib_error());
        return CLI_FAIL;
    }
    int rc = read_header(prog, path, p, m);
    if (!rc) rc = check_tensors(prog, path, p, m);
    struct tg_rng rng;
    tg_rng_seed(&rng, 0);
    /* f32, as the data are read: an f64 file is converted */
    if (!rc && !(m->mlp = tg_nn_mlp_new(m->sizes, m->n_sizes, m->act, TG_ACT_NONE, TG_F32,
                                        TG_INIT_UNIFORM, &rng))) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, lib_error());
        rc = CLI_FAIL;
    }
    struct tg_params *dst = tg_nn_mlp_params(m->mlp);
    for (size_t i = 0; !rc && i < tg_params_count(dst); i++)
        copy_values(tg_params_tensor(dst, i), tg_params_get(p, tg_params_name(dst, i)));
    tg_params_free(p);
    if (rc) mlp_model_free(m);
    return rc;
}

void mlp_model_free(struct mlp_model *m)
{
    tg_nn_mlp_free(m->mlp);
    m->mlp = NULL;
    mlp_norm_free(&m->norm);
}

int mlp_predict(const char *prog, struct tg_nn_mlp *mlp, const struct tg_dataset *ds, int64_t *pred)
{
    enum { B = 256 };
    struct tg_tape *T = tg_tape_new();
    int64_t n = tg_dataset_len(ds);
    enum tg_status st = T ? tg_tape_no_grad_push(T) : tg_last_status();
    for (int64_t b = 0; !st && b * B < n; b++) {
        struct tg_tensor *X, *y;
        tg_tape_reset(T);
        st = tg_dataset_batch(ds, T, b, B, &X, &y);
        struct tg_tensor *out = st ? NULL : tg_nn_mlp_forward(mlp, T, X); /* (rows, C) */
        if (!st && !out) st = tg_last_status();
        int64_t rows = tg_tensor_dim(X, 0), C = st ? 1 : tg_tensor_dim(out, 1);
        for (int64_t r = 0; !st && r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                if (tg_tensor_get(out, r * C + c) > tg_tensor_get(out, r * C + best)) best = c;
            pred[b * B + r] = best;
        }
    }
    tg_tape_free(T);
    if (!st) return CLI_OK;
    fprintf(stderr, "%s: %s\n", prog, lib_error());
    return CLI_FAIL;
}

void mlp_print_score(const char *label, enum tg_loss loss, double mean_loss, double accuracy,
                     int64_t n)
{
    printf("%s%sloss %.6f", label, *label ? " " : "", mean_loss);
    if (loss != TG_LOSS_MSE)
        printf("  accuracy %.2f%% (%lld/%lld)", 100.0 * accuracy,
               (long long)llround(accuracy * (double)n), (long long)n);
    putchar('\n');
}
