/*
 * cli/mlpio.c - data, class checks and the model shared by `tapegrad train`
 * and `tapegrad eval` (see mlpio.h).
 *
 * The model file is the library's (tapegrad/model.h, nn/model.c), so that a
 * program can load what `tapegrad train --save` wrote; the command adds one
 * metadata key, "target": the --target given to train ("" for the last column).
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
const char *mlp_lib_error(void)
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
    fprintf(stderr, "%s: %s\n", prog, mlp_lib_error());
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
    struct tg_dataset_csv_options opt = {.dtype = TG_F32, .target_index = -1};
    long index;
    if (target && !mlp_parse_long(target, INT_MIN, INT_MAX, &index))
        opt.target_index = (int)index;
    else
        opt.target = target;
    *out = tg_dataset_load_csv(path, &opt);
    if (*out) return CLI_OK;
    fprintf(stderr, "%s: %s\n", prog, mlp_lib_error());
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

/* ======================= the model ======================= */

/* The facts of m->mlp that the command prints, from the MLP itself. */
static void describe(struct mlp_model *m)
{
    m->mlp = tg_nn_model_mlp(m->nm);
    m->loss = tg_nn_model_loss(m->nm);
    int L = tg_nn_mlp_layers(m->mlp);
    m->n_sizes = L + 1;
    m->sizes[0] = tg_tensor_dim(tg_nn_mlp_weight(m->mlp, 0), 1);
    for (int k = 0; k < L; k++) m->sizes[k + 1] = tg_tensor_dim(tg_nn_mlp_weight(m->mlp, k), 0);
    m->act = L > 1 ? tg_nn_mlp_act(m->mlp, 0) : TG_ACT_NONE;
}

int mlp_model_new(const char *prog, struct mlp_model *m, enum tg_nn_init init, struct tg_rng *rng)
{
    m->nm = tg_nn_model_new(
        tg_nn_mlp_new(m->sizes, m->n_sizes, m->act, TG_ACT_NONE, TG_F32, init, rng), m->loss);
    if (!m->nm) {
        fprintf(stderr, "%s: %s\n", prog, mlp_lib_error());
        return CLI_FAIL;
    }
    enum tg_act act = m->act;
    describe(m);
    m->act = act; /* a model without hidden layers still prints the --activation */
    return CLI_OK;
}

int mlp_model_save(const char *prog, struct mlp_model *m, const char *path)
{
    struct tg_params *p = tg_nn_mlp_params(m->mlp);
    if (tg_params_meta_set(p, "target", m->target) || tg_nn_model_save(m->nm, path)) {
        fprintf(stderr, "%s: cannot save the model: %s\n", prog, mlp_lib_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

int mlp_model_read(const char *prog, const char *path, struct mlp_model *m)
{
    memset(m, 0, sizeof *m);
    if (!is_file(path)) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(ENOENT));
        return CLI_FAIL;
    }
    /* f32, as the data are read: an f64 file is converted */
    if (!(m->nm = tg_nn_model_load(path, TG_F32))) {
        fprintf(stderr, "%s: cannot read the model: %s\n", prog, mlp_lib_error());
        return CLI_FAIL;
    }
    describe(m);
    const char *target = tg_params_meta_get(tg_nn_mlp_params(m->mlp), "target");
    snprintf(m->target, sizeof m->target, "%s", target ? target : "");
    return CLI_OK;
}

void mlp_model_free(struct mlp_model *m)
{
    tg_nn_model_free(m->nm);
    m->nm = NULL;
    m->mlp = NULL;
}

int mlp_normalize(const char *prog, const struct mlp_model *m, const char *what,
                  struct tg_dataset *ds)
{
    if (!tg_nn_model_normalize(m->nm, ds)) return CLI_OK;
    fprintf(stderr, "%s: %s: %s\n", prog, what, mlp_lib_error());
    return CLI_FAIL;
}

int mlp_check_params(const char *prog, const struct mlp_model *m)
{
    const struct tg_params *p = tg_nn_mlp_params(m->mlp);
    for (size_t k = 0; k < tg_params_count(p); k++) {
        const struct tg_tensor *t = tg_params_tensor(p, k);
        for (int64_t i = 0, n = tg_tensor_numel(t); i < n; i++) {
            double v = tg_tensor_get(t, i);
            if (isfinite(v)) continue;
            fprintf(stderr, "%s: training left a non-finite parameter: %s[%lld] is %g\n", prog,
                    tg_params_name(p, k), (long long)i, v);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

char *mlp_arch_str(const struct mlp_model *m, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < m->n_sizes && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", k ? "-" : "", (long long)m->sizes[k]);
    return buf;
}

void mlp_print_score(const char *label, enum tg_nn_loss loss, double mean_loss, double accuracy,
                     int64_t n)
{
    printf("%s%sloss %.6f", label, *label ? " " : "", mean_loss);
    if (loss != TG_LOSS_MSE)
        printf("  accuracy %.2f%% (%lld/%lld)", 100.0 * accuracy,
               (long long)llround(accuracy * (double)n), (long long)n);
    putchar('\n');
}
