/*
 * nn/model.c - a trained MLP with its loss and input normalization, saved as one
 * safetensors file and read back (tapegrad/model.h).
 *
 * The file holds the MLP's parameters under their map names; "__metadata__"
 * holds everything else, as strings, so that the file alone rebuilds the model
 * and the preprocessing:
 *     format             tapegrad-mlp
 *     architecture       4,64,3        (sizes: inputs, hidden..., outputs)
 *     activation         relu          (hidden layers; "none" without any)
 *     output_activation  none          (the last layer; absent in older files)
 *     loss               xent | mse | bce | hinge
 *     normalization      none | standardize | scale
 *     norm_mean, norm_std   (in) numbers, comma-separated, %.17g   (standardize)
 *     norm_scale            one number                             (scale)
 * Other keys of the MLP's map (the CLI's "target") travel along untouched.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tapegrad/model.h"
#include "nn-impl.h"

#define MAX_LAYERS 64 /* the most dense layers a file may describe */

struct tg_nn_model {
    struct tg_nn_mlp *mlp; /* owned */
    enum tg_nn_loss loss;
    enum tg_nn_norm norm;
    struct tg_tensor *mean, *std; /* STANDARDIZE: f64 (in) each, owned */
    double scale;                 /* SCALE */
};

static const char *const norm_names[] = {"none", "standardize", "scale"};
enum { N_NORMS = sizeof norm_names / sizeof norm_names[0], N_LOSSES = 4 };

/* The MLP's input size (0 for an MLP without layers, which tg_nn_mlp_new refuses). */
static int64_t in_size(const struct tg_nn_mlp *mlp)
{
    return tg_nn_mlp_layers(mlp) ? tg_tensor_dim(tg_nn_mlp_weight(mlp, 0), 1) : 0;
}

static int64_t out_size(const struct tg_nn_mlp *mlp)
{
    int L = tg_nn_mlp_layers(mlp);
    return L ? tg_tensor_dim(tg_nn_mlp_weight(mlp, L - 1), 0) : 0;
}

/* TG_ERR_VALUE unless loss is known and fits `outputs`. */
static enum tg_status check_loss(const char *fn, enum tg_nn_loss loss, int64_t outputs)
{
    if ((int)loss < 0 || (int)loss >= N_LOSSES)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown loss %d", fn, (int)loss);
    if (loss == TG_LOSS_XENT ? outputs < 2 : outputs != 1)
        return tg_set_error(TG_ERR_VALUE, "%s: loss '%s' does not fit %lld outputs", fn,
                            tg_nn_loss_name(loss), (long long)outputs);
    return TG_OK;
}

struct tg_nn_model *tg_nn_model_new(struct tg_nn_mlp *mlp, enum tg_nn_loss loss)
{
    if (!mlp) {
        if (tg_last_status() == TG_OK) tg_set_error(TG_ERR_NULL, "tg_nn_model_new: mlp is NULL");
        return NULL;
    }
    struct tg_nn_model *m = NULL;
    if (check_loss("tg_nn_model_new", loss, out_size(mlp)) || !(m = tg_malloc(sizeof *m))) {
        tg_nn_mlp_free(mlp);
        return NULL;
    }
    *m = (struct tg_nn_model){.mlp = mlp, .loss = loss, .scale = 1.0};
    return m;
}

static void clear_norm(struct tg_nn_model *m)
{
    tg_tensor_free(m->mean);
    tg_tensor_free(m->std);
    m->mean = m->std = NULL;
    m->norm = TG_NORM_NONE;
    m->scale = 1.0;
}

void tg_nn_model_free(struct tg_nn_model *m)
{
    if (!m) return;
    clear_norm(m);
    tg_nn_mlp_free(m->mlp);
    tg_free(m);
}

struct tg_nn_mlp *tg_nn_model_mlp(const struct tg_nn_model *m)
{
    return m ? m->mlp : NULL;
}

enum tg_nn_loss tg_nn_model_loss(const struct tg_nn_model *m)
{
    return m ? m->loss : TG_LOSS_MSE;
}

enum tg_nn_norm tg_nn_model_norm(const struct tg_nn_model *m, const struct tg_tensor **mean,
                                 const struct tg_tensor **std, double *scale)
{
    if (mean) *mean = m ? m->mean : NULL;
    if (std) *std = m ? m->std : NULL;
    if (scale) *scale = m ? m->scale : 1.0;
    return m ? m->norm : TG_NORM_NONE;
}

/* ======================= data ======================= */

/* TG_ERR_NULL / TG_ERR_SHAPE unless ds has the MLP's input size. */
static enum tg_status check_data(const char *fn, const struct tg_nn_model *m,
                                 const struct tg_dataset *ds)
{
    if (!m || !ds) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, m ? "ds" : "m");
    if (tg_dataset_features(ds) != in_size(m->mlp))
        return tg_set_error(TG_ERR_SHAPE, "%s: the data have %lld features, the model takes %lld",
                            fn, (long long)tg_dataset_features(ds), (long long)in_size(m->mlp));
    return TG_OK;
}

/* The index of the first NaN or Inf of t's n elements, or -1 (typed loops: a
 * dataset may hold tens of millions). */
static int64_t first_nonfinite(const struct tg_tensor *t, int64_t n)
{
    if (tg_tensor_dtype(t) == TG_F32) {
        const float *x = tg_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) return i;
    } else {
        const double *x = tg_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) return i;
    }
    return -1;
}

/* TG_ERR_NUMERIC naming the first NaN or Inf of ds's inputs (and targets). */
static enum tg_status check_finite(const char *fn, const struct tg_dataset *ds, bool targets)
{
    const struct tg_tensor *X = tg_dataset_x(ds), *y = tg_dataset_y(ds);
    int64_t n = tg_dataset_len(ds), d = tg_dataset_features(ds);
    int64_t i = first_nonfinite(X, n * d);
    if (i >= 0)
        return tg_set_error(TG_ERR_NUMERIC, "%s: example %lld, feature %lld (0-based) is %g", fn,
                            (long long)(i / d), (long long)(i % d), tg_tensor_get(X, i));
    if (targets && (i = first_nonfinite(y, n)) >= 0)
        return tg_set_error(TG_ERR_NUMERIC, "%s: example %lld (0-based), target is %g", fn,
                            (long long)i, tg_tensor_get(y, i));
    return TG_OK;
}

enum tg_status tg_nn_model_fit_norm(struct tg_nn_model *m, enum tg_nn_norm kind,
                                    const struct tg_dataset *ds)
{
    static const char fn[] = "tg_nn_model_fit_norm";
    enum tg_status st = check_data(fn, m, ds);
    if (st) return st;
    if ((int)kind < 0 || (int)kind >= N_NORMS)
        return tg_set_error(TG_ERR_VALUE, "%s: unknown normalization %d", fn, (int)kind);
    if ((st = check_finite(fn, ds, false))) return st;
    struct tg_tensor *mean = NULL, *std = NULL;
    if (kind == TG_NORM_STANDARDIZE && (st = tg_dataset_feature_stats(ds, &mean, &std))) return st;
    double big = 0.0;
    const struct tg_tensor *X = tg_dataset_x(ds);
    for (int64_t i = 0, n = tg_tensor_numel(X); kind == TG_NORM_SCALE && i < n; i++)
        big = fmax(big, fabs(tg_tensor_get(X, i)));
    clear_norm(m);
    m->norm = kind;
    m->mean = mean;
    m->std = std;
    m->scale = big > 0.0 ? 1.0 / big : 1.0;
    return TG_OK;
}

/* x *= scale over X's elements, in X's dtype. */
static void scale_inputs(struct tg_tensor *X, double scale)
{
    int64_t n = tg_tensor_numel(X);
    if (tg_tensor_dtype(X) == TG_F32) {
        float *x = tg_tensor_data(X); /* (n, d) */
        for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] * scale);
    } else {
        double *x = tg_tensor_data(X); /* (n, d) */
        for (int64_t i = 0; i < n; i++) x[i] *= scale;
    }
}

enum tg_status tg_nn_model_normalize(const struct tg_nn_model *m, struct tg_dataset *ds)
{
    static const char fn[] = "tg_nn_model_normalize";
    enum tg_status st = check_data(fn, m, ds);
    if (!st) st = check_finite(fn, ds, true);
    if (st) return st;
    if (m->norm == TG_NORM_STANDARDIZE) return tg_dataset_standardize(ds, m->mean, m->std);
    if (m->norm == TG_NORM_SCALE) scale_inputs(tg_dataset_x(ds), m->scale);
    return TG_OK;
}

enum tg_status tg_nn_model_predict(const struct tg_nn_model *m, const struct tg_dataset *ds,
                                   double *out)
{
    enum { B = 256 };
    enum tg_status st = check_data("tg_nn_model_predict", m, ds);
    if (!st && !out) st = tg_set_error(TG_ERR_NULL, "tg_nn_model_predict: out is NULL");
    if (st) return st;
    struct tg_tape *T = tg_tape_new();
    st = T ? tg_tape_no_grad_push(T) : tg_last_status();
    int64_t n = tg_dataset_len(ds);
    for (int64_t b = 0; !st && b * B < n; b++) {
        struct tg_tensor *X, *y, *Y;
        tg_tape_reset(T);
        st = tg_dataset_batch(ds, T, b, B, &X, &y);
        if (!st && !(Y = tg_nn_mlp_forward(m->mlp, T, X))) st = tg_last_status(); /* (rows, C) */
        int64_t rows = st ? 0 : tg_tensor_dim(X, 0), C = st ? 1 : tg_tensor_dim(Y, 1);
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; m->loss == TG_LOSS_XENT && c < C; c++)
                if (tg_tensor_get(Y, r * C + c) > tg_tensor_get(Y, r * C + best)) best = c;
            out[b * B + r] = m->loss == TG_LOSS_XENT ? (double)best : tg_tensor_get(Y, r * C);
        }
    }
    tg_tape_free(T);
    return st;
}

/* ======================= saving ======================= */

/* TG_ERR_NUMERIC naming the first NaN or Inf parameter of p. */
static enum tg_status check_params(const char *fn, const char *path, const struct tg_params *p)
{
    for (size_t k = 0; k < tg_params_count(p); k++) {
        const struct tg_tensor *t = tg_params_tensor(p, k);
        for (int64_t i = 0, n = tg_tensor_numel(t); i < n; i++) {
            double v = tg_tensor_get(t, i);
            if (!isfinite(v))
                return tg_set_error(TG_ERR_NUMERIC, "%s: %s: %s[%lld] is %g", fn, path,
                                    tg_params_name(p, k), (long long)i, v);
        }
    }
    return TG_OK;
}

/* The numbers of t, comma-separated, %.17g (round-trips exactly); tg_malloc'ed. */
static char *join_numbers(const struct tg_tensor *t)
{
    int64_t n = tg_tensor_numel(t);
    char *s = tg_malloc((size_t)n * 26 + 1), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (int64_t i = 0; i < n; i++) p += sprintf(p, "%s%.17g", i ? "," : "", tg_tensor_get(t, i));
    return s;
}

static enum tg_status set_norm_meta(struct tg_params *p, const struct tg_nn_model *m)
{
    enum tg_status st = tg_params_meta_set(p, "normalization", norm_names[m->norm]);
    if (!st && m->norm == TG_NORM_SCALE) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.17g", m->scale);
        st = tg_params_meta_set(p, "norm_scale", buf);
    } else if (!st && m->norm == TG_NORM_STANDARDIZE) {
        char *mean = join_numbers(m->mean), *std = mean ? join_numbers(m->std) : NULL;
        st = !std ? TG_ERR_NOMEM : tg_params_meta_set(p, "norm_mean", mean);
        if (!st) st = tg_params_meta_set(p, "norm_std", std);
        tg_free(mean);
        tg_free(std);
    }
    return st;
}

/* "4,64,3": the MLP's sizes. */
static void arch_str(const struct tg_nn_mlp *mlp, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "%lld", (long long)in_size(mlp));
    for (int k = 0; k < tg_nn_mlp_layers(mlp) && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, ",%lld",
                               (long long)tg_tensor_dim(tg_nn_mlp_weight(mlp, k), 0));
}

enum tg_status tg_nn_model_save(struct tg_nn_model *m, const char *path)
{
    static const char fn[] = "tg_nn_model_save";
    if (!m || !path) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, m ? "path" : "m");
    struct tg_params *p = tg_nn_mlp_params(m->mlp);
    enum tg_status st = check_params(fn, path, p);
    if (st) return st;
    int L = tg_nn_mlp_layers(m->mlp);
    char arch[MAX_LAYERS * 24];
    arch_str(m->mlp, arch, sizeof arch);
    const char *hidden = L > 1 ? tg_nn_act_name(tg_nn_mlp_act(m->mlp, 0)) : "none";
    if (!(st = tg_params_meta_set(p, "format", "tapegrad-mlp")) &&
        !(st = tg_params_meta_set(p, "architecture", arch)) &&
        !(st = tg_params_meta_set(p, "activation", hidden)) &&
        !(st = tg_params_meta_set(p, "output_activation",
                                  tg_nn_act_name(tg_nn_mlp_act(m->mlp, L - 1)))) &&
        !(st = tg_params_meta_set(p, "loss", tg_nn_loss_name(m->loss))) &&
        !(st = set_norm_meta(p, m)))
        st = tg_checkpoint_save(p, path);
    return st;
}

/* ======================= loading ======================= */

/* What the metadata say, before the MLP exists. */
struct header {
    int64_t sizes[MAX_LAYERS + 1];
    int n_sizes;
    enum tg_act hidden, output;
    enum tg_nn_loss loss;
};

/* The value of key, or NULL with TG_ERR_FORMAT naming it. */
static const char *meta(const char *path, const struct tg_params *p, const char *key)
{
    const char *v = tg_params_meta_get(p, key);
    if (!v)
        tg_set_error(TG_ERR_FORMAT,
                     "tg_nn_model_load: %s: metadata '%s' is missing (not saved by "
                     "tg_nn_model_save or tapegrad train --save?)",
                     path, key);
    return v;
}

static enum tg_status bad_meta(const char *path, const char *key, const char *value,
                               const char *want)
{
    return tg_set_error(TG_ERR_FORMAT, "tg_nn_model_load: %s: bad %s '%s' (%s)", path, key, value,
                        want);
}

/* "4,64,3" into h->sizes: 2 to MAX_LAYERS + 1 sizes, each 1 .. 2^31. */
static enum tg_status parse_arch(const char *path, const char *s, struct header *h)
{
    const char *p = s;
    for (h->n_sizes = 0;; p++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > (1LL << 31) || h->n_sizes == MAX_LAYERS + 1) break;
        h->sizes[h->n_sizes++] = v;
        if (!*end && h->n_sizes >= 2) return TG_OK;
        if (*end != ',') break;
        p = end;
    }
    return bad_meta(path, "architecture", s, "sizes such as 4,64,3");
}

static enum tg_status parse_loss(const char *path, const char *s, enum tg_nn_loss *loss)
{
    for (int i = 0; i < N_LOSSES; i++)
        if (!strcmp(s, tg_nn_loss_name((enum tg_nn_loss)i)))
            return *loss = (enum tg_nn_loss)i, TG_OK;
    return bad_meta(path, "loss", s, "xent, mse, bce or hinge");
}

static enum tg_status read_header(const char *path, const struct tg_params *p, struct header *h)
{
    const char *fmt = meta(path, p, "format"), *arch, *act, *out, *loss;
    if (!fmt) return TG_ERR_FORMAT;
    if (strcmp(fmt, "tapegrad-mlp"))
        return tg_set_error(TG_ERR_FORMAT,
                            "tg_nn_model_load: %s: metadata format is '%s', not tapegrad-mlp "
                            "(not saved by tg_nn_model_save or tapegrad train --save?)",
                            path, fmt);
    if (!(arch = meta(path, p, "architecture")) || !(act = meta(path, p, "activation")) ||
        !(loss = meta(path, p, "loss")))
        return TG_ERR_FORMAT;
    out = tg_params_meta_get(p, "output_activation");
    enum tg_status st = parse_arch(path, arch, h);
    if (!st && tg_nn_act_parse(act, &h->hidden))
        st = bad_meta(path, "activation", act, "an activation name such as relu");
    h->output = TG_ACT_NONE;
    if (!st && out && tg_nn_act_parse(out, &h->output))
        st = bad_meta(path, "output_activation", out, "an activation name such as none");
    if (!st) st = parse_loss(path, loss, &h->loss);
    if (!st && check_loss("tg_nn_model_load", h->loss, h->sizes[h->n_sizes - 1]))
        st =
            tg_set_error(TG_ERR_FORMAT, "tg_nn_model_load: %s: loss '%s' does not fit %lld outputs",
                         path, loss, (long long)h->sizes[h->n_sizes - 1]);
    return st;
}

/* TG_ERR_MISMATCH unless p holds exactly the tensors of the architecture. */
static enum tg_status check_tensors(const char *path, const struct tg_params *p,
                                    const struct header *h)
{
    int L = h->n_sizes - 1;
    char name[64], got[64], want[64];
    const char *arch = tg_params_meta_get(p, "architecture");
    for (int k = 0; k < L; k++)
        for (int b = 0; b < 2; b++) {
            snprintf(name, sizeof name, "layers.%d.%s", k, b ? "bias" : "weight");
            const struct tg_tensor *t = tg_params_get(p, name);
            int64_t shape[2] = {h->sizes[k + 1], h->sizes[k]};
            bool fits = t && tg_tensor_rank(t) == 2 - b && tg_tensor_dim(t, 0) == shape[0] &&
                        (b || tg_tensor_dim(t, 1) == shape[1]);
            if (fits) continue;
            tg_tensor_format_shape(want, sizeof want, 2 - b, shape);
            return tg_set_error(TG_ERR_MISMATCH,
                                "tg_nn_model_load: %s: architecture %s needs %s of shape %s, "
                                "the file has %s",
                                path, arch, name, want,
                                t ? tg_tensor_shape_str(t, got, sizeof got) : "none");
        }
    if (tg_params_count(p) != (size_t)(2 * L))
        return tg_set_error(TG_ERR_MISMATCH,
                            "tg_nn_model_load: %s: %zu tensors, architecture %s has %d", path,
                            tg_params_count(p), arch, 2 * L);
    return TG_OK;
}

/* Exactly n comma-separated finite numbers of s into a new f64 (n) leaf, or NULL. */
static struct tg_tensor *parse_numbers(const char *s, int64_t n)
{
    struct tg_tensor *t = tg_tensor_zeros(TG_F64, 1, &n);
    double *v = t ? tg_tensor_data(t) : NULL; /* (n) */
    const char *p = s;
    int64_t i = 0;
    for (; v && i < n; i++) {
        char *end;
        v[i] = strtod(p, &end);
        if (end == p || !isfinite(v[i])) break;
        p = end;
        if (i + 1 < n && *p++ != ',') break;
    }
    if (v && i == n && !*p) return t;
    tg_tensor_free(t);
    return NULL;
}

static enum tg_status read_norm(const char *path, const struct tg_params *p, struct tg_nn_model *m)
{
    const char *kind = meta(path, p, "normalization"), *a, *b;
    if (!kind) return TG_ERR_FORMAT;
    int64_t d = in_size(m->mlp);
    char want[64];
    if (!strcmp(kind, "none")) return TG_OK;
    if (!strcmp(kind, "scale")) {
        if (!(a = meta(path, p, "norm_scale"))) return TG_ERR_FORMAT;
        char *end;
        m->scale = strtod(a, &end);
        m->norm = TG_NORM_SCALE;
        if (end == a || *end || !isfinite(m->scale) || m->scale <= 0)
            return bad_meta(path, "norm_scale", a, "a finite number > 0");
        return TG_OK;
    }
    if (strcmp(kind, "standardize"))
        return bad_meta(path, "normalization", kind, "none, standardize or scale");
    if (!(a = meta(path, p, "norm_mean")) || !(b = meta(path, p, "norm_std"))) return TG_ERR_FORMAT;
    m->norm = TG_NORM_STANDARDIZE;
    snprintf(want, sizeof want, "%lld finite numbers", (long long)d);
    if (!(m->mean = parse_numbers(a, d))) return bad_meta(path, "norm_mean", a, want);
    if (!(m->std = parse_numbers(b, d))) return bad_meta(path, "norm_std", b, want);
    return TG_OK;
}

/* The file's values into the MLP's tensors (same names and shapes), converting,
 * and its metadata into the MLP's map. */
static enum tg_status copy_in(const struct tg_params *from, struct tg_params *to)
{
    for (size_t k = 0; k < tg_params_count(to); k++) {
        struct tg_tensor *dst = tg_params_tensor(to, k);
        const struct tg_tensor *src = tg_params_get(from, tg_params_name(to, k));
        for (int64_t i = 0, n = tg_tensor_numel(dst); i < n; i++)
            tg_tensor_set(dst, i, tg_tensor_get(src, i));
    }
    enum tg_status st = TG_OK;
    for (size_t k = 0; !st && k < tg_params_meta_count(from); k++)
        st = tg_params_meta_set(to, tg_params_meta_key(from, k), tg_params_meta_value(from, k));
    return st;
}

struct tg_nn_model *tg_nn_model_load(const char *path, enum tg_dtype dt)
{
    if (!path) {
        tg_set_error(TG_ERR_NULL, "tg_nn_model_load: path is NULL");
        return NULL;
    }
    if (dt != TG_F32 && dt != TG_F64) {
        tg_set_error(TG_ERR_DTYPE, "tg_nn_model_load: %s: unknown dtype %d", path, (int)dt);
        return NULL;
    }
    struct tg_params *p = tg_checkpoint_read(path);
    if (!p) return NULL;
    struct header h;
    struct tg_nn_model *m = NULL;
    enum tg_status st = read_header(path, p, &h);
    if (!st) st = check_tensors(path, p, &h);
    if (!st) st = check_params("tg_nn_model_load", path, p);
    struct tg_rng rng;
    tg_rng_seed(&rng, 0);
    if (!st)
        m = tg_nn_model_new(
            tg_nn_mlp_new(h.sizes, h.n_sizes, h.hidden, h.output, dt, TG_INIT_UNIFORM, &rng),
            h.loss);
    if (!st && !m) st = tg_last_status();
    if (!st) st = read_norm(path, p, m);
    if (!st) st = copy_in(p, tg_nn_mlp_params(m->mlp));
    tg_params_free(p);
    if (!st) return m;
    tg_nn_model_free(m);
    return NULL;
}
