/*
 * tests/check_model.c - the model file (tapegrad/model.h, nn/model.c): save and
 * load round trips with each normalization, errors that name the file, the
 * tensor, the element or the metadata key, refused NaN parameters and data, and
 * a program that loads a model `tapegrad train` saved and gets the predictions
 * and the loss that `tapegrad eval` prints.
 * Usage: check_model PATH/TO/tapegrad PATH/TO/tests/data
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>

static const char *tapegrad_exe, *data_dir;
static char tmp_dir[] = "/tmp/check_model-XXXXXX";

/* A path in the test's temporary folder (a static buffer per slot). */
static const char *tmp_path(int slot, const char *name)
{
    static char buf[4][512];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmp_dir, name);
    return buf[slot];
}

/* A dataset of n examples of d features with values from rng and targets i % C. */
static struct tg_dataset *random_data(struct tg_rng *rng, int64_t n, int64_t d, int64_t C,
                                      double lo, double hi)
{
    struct tg_tensor *X = tg_tensor_uniform(TG_F32, 2, (int64_t[]){n, d}, rng, lo, hi);
    struct tg_tensor *y = tg_tensor_zeros(TG_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) tg_tensor_set(y, i, (double)(i % C));
    struct tg_dataset *ds = tg_dataset_new(X, y);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    return ds;
}

static struct tg_nn_model *new_model(const int64_t *sizes, int n, enum tg_act act,
                                     enum tg_nn_loss loss, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    struct tg_nn_model *m = tg_nn_model_new(
        tg_nn_mlp_new(sizes, n, act, TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng), loss);
    ck_assert_msg(m != NULL, "%s", tg_last_error());
    return m;
}

/* Same names, shapes and bit-identical values. */
static void assert_same_params(const struct tg_params *a, const struct tg_params *b)
{
    ck_assert_uint_eq(tg_params_count(a), tg_params_count(b));
    for (size_t k = 0; k < tg_params_count(a); k++) {
        const struct tg_tensor *s = tg_params_tensor(a, k);
        const struct tg_tensor *t = tg_params_get(b, tg_params_name(a, k));
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(tg_tensor_numel(s), tg_tensor_numel(t));
        for (int64_t i = 0; i < tg_tensor_numel(s); i++)
            ck_assert(tg_tensor_get(s, i) == tg_tensor_get(t, i));
    }
}

/* A classifier with standardized inputs: the loaded model has the same weights,
 * activation, loss, normalization (to the last bit), extra metadata, and gives
 * the same predictions on data normalized by each. */
START_TEST(test_roundtrip_standardize)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    struct tg_dataset *a = random_data(&rng, 40, 5, 3, -3, 7);
    tg_rng_seed(&rng, 1);
    struct tg_dataset *b = random_data(&rng, 40, 5, 3, -3, 7);
    struct tg_nn_model *m = new_model((int64_t[]){5, 8, 6, 3}, 4, TG_ACT_TANH, TG_LOSS_XENT, 2);
    ck_assert_int_eq(tg_nn_model_fit_norm(m, TG_NORM_STANDARDIZE, a), TG_OK);
    ck_assert_int_eq(tg_params_meta_set(tg_nn_mlp_params(tg_nn_model_mlp(m)), "target", "k"),
                     TG_OK);
    const char *path = tmp_path(0, "std.safetensors");
    ck_assert_msg(tg_nn_model_save(m, path) == TG_OK, "%s", tg_last_error());
    struct tg_nn_model *r = tg_nn_model_load(path, TG_F32);
    ck_assert_msg(r != NULL, "%s", tg_last_error());
    struct tg_nn_mlp *mlp = tg_nn_model_mlp(r);
    ck_assert_int_eq(tg_nn_mlp_layers(mlp), 3);
    ck_assert_int_eq(tg_nn_mlp_act(mlp, 0), TG_ACT_TANH);
    ck_assert_int_eq(tg_nn_mlp_act(mlp, 2), TG_ACT_NONE);
    ck_assert_int_eq(tg_nn_model_loss(r), TG_LOSS_XENT);
    assert_same_params(tg_nn_mlp_params(tg_nn_model_mlp(m)), tg_nn_mlp_params(mlp));
    ck_assert_str_eq(tg_params_meta_get(tg_nn_mlp_params(mlp), "target"), "k");
    const struct tg_tensor *mean[2], *std[2];
    double scale;
    ck_assert_int_eq(tg_nn_model_norm(m, &mean[0], &std[0], NULL), TG_NORM_STANDARDIZE);
    ck_assert_int_eq(tg_nn_model_norm(r, &mean[1], &std[1], &scale), TG_NORM_STANDARDIZE);
    ck_assert(scale == 1.0);
    for (int64_t j = 0; j < 5; j++) {
        ck_assert(tg_tensor_get(mean[0], j) == tg_tensor_get(mean[1], j));
        ck_assert(tg_tensor_get(std[0], j) == tg_tensor_get(std[1], j));
        ck_assert(tg_tensor_get(std[1], j) > 1.0); /* the data spread over [-3, 7) */
    }
    ck_assert_int_eq(tg_nn_model_normalize(m, a), TG_OK);
    ck_assert_int_eq(tg_nn_model_normalize(r, b), TG_OK);
    double pa[40], pb[40];
    ck_assert_int_eq(tg_nn_model_predict(m, a, pa), TG_OK);
    ck_assert_int_eq(tg_nn_model_predict(r, b, pb), TG_OK);
    for (int i = 0; i < 40; i++) {
        ck_assert(pa[i] == pb[i]);
        ck_assert(pa[i] == 0 || pa[i] == 1 || pa[i] == 2);
    }
    tg_nn_model_free(m);
    tg_nn_model_free(r);
    tg_dataset_free(a);
    tg_dataset_free(b);
}
END_TEST

/* A regression model (one output, MSE) with scaled inputs, loaded in f64: the
 * prediction is the MLP's output, computed by hand here for a 2-1 network. */
START_TEST(test_roundtrip_scale_f64)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 4);
    struct tg_dataset *a = random_data(&rng, 7, 2, 1, -4, 2);
    struct tg_nn_model *m = new_model((int64_t[]){2, 1}, 2, TG_ACT_RELU, TG_LOSS_MSE, 5);
    ck_assert_int_eq(tg_nn_model_fit_norm(m, TG_NORM_SCALE, a), TG_OK);
    double big = 0, scale;
    for (int64_t i = 0; i < 14; i++) big = fmax(big, fabs(tg_tensor_get(tg_dataset_x(a), i)));
    ck_assert_int_eq(tg_nn_model_norm(m, NULL, NULL, &scale), TG_NORM_SCALE);
    ck_assert(scale == 1.0 / big);
    const char *path = tmp_path(0, "scale.safetensors");
    ck_assert_int_eq(tg_nn_model_save(m, path), TG_OK);
    struct tg_nn_model *r = tg_nn_model_load(path, TG_F64);
    ck_assert_msg(r != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_dtype(tg_nn_mlp_weight(tg_nn_model_mlp(r), 0)), TG_F64);
    ck_assert_int_eq(tg_nn_model_norm(r, NULL, NULL, &scale), TG_NORM_SCALE);
    ck_assert(scale == 1.0 / big);
    double x[2] = {tg_tensor_get(tg_dataset_x(a), 0), tg_tensor_get(tg_dataset_x(a), 1)};
    ck_assert_int_eq(tg_nn_model_normalize(m, a), TG_OK);
    double p[7];
    ck_assert_int_eq(tg_nn_model_predict(m, a, p), TG_OK);
    const struct tg_tensor *W = tg_nn_mlp_weight(tg_nn_model_mlp(r), 0);
    double want = tg_tensor_get(W, 0) * (float)(x[0] * scale) +
                  tg_tensor_get(W, 1) * (float)(x[1] * scale) +
                  tg_tensor_get(tg_nn_mlp_bias(tg_nn_model_mlp(r), 0), 0);
    ck_assert_double_eq_tol(p[0], want, 1e-6);
    tg_nn_model_free(m);
    tg_nn_model_free(r);
    tg_dataset_free(a);
}
END_TEST

/* Non-finite parameters are never saved nor loaded; non-finite data are never
 * normalized; each message names where. */
START_TEST(test_nonfinite)
{
    struct tg_nn_model *m = new_model((int64_t[]){3, 4, 2}, 3, TG_ACT_RELU, TG_LOSS_XENT, 0);
    struct tg_tensor *W1 = tg_nn_mlp_weight(tg_nn_model_mlp(m), 1);
    tg_tensor_set(W1, 5, NAN);
    const char *path = tmp_path(0, "nan.safetensors");
    unlink(path);
    ck_assert_int_eq(tg_nn_model_save(m, path), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "nan.safetensors: layers.1.weight[5] is nan"), "%s",
                  tg_last_error());
    ck_assert_int_eq(access(path, F_OK), -1);
    /* a file with an Inf weight, written by the checkpoint layer directly */
    tg_tensor_set(W1, 5, 0.5);
    ck_assert_int_eq(tg_nn_model_save(m, path), TG_OK);
    struct tg_params *p = tg_checkpoint_read(path);
    tg_tensor_set(tg_params_get(p, "layers.0.bias"), 2, INFINITY);
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    tg_params_free(p);
    ck_assert_ptr_null(tg_nn_model_load(path, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "nan.safetensors: layers.0.bias[2] is inf"), "%s",
                  tg_last_error());
    /* data */
    struct tg_rng rng;
    tg_rng_seed(&rng, 0);
    struct tg_dataset *ds = random_data(&rng, 6, 3, 2, 0, 1);
    tg_tensor_set(tg_dataset_x(ds), 4 * 3 + 1, NAN);
    ck_assert_int_eq(tg_nn_model_fit_norm(m, TG_NORM_SCALE, ds), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "example 4, feature 1 (0-based) is nan"), "%s",
                  tg_last_error());
    ck_assert_int_eq(tg_nn_model_norm(m, NULL, NULL, NULL), TG_NORM_NONE);
    ck_assert_int_eq(tg_nn_model_normalize(m, ds), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "tg_nn_model_normalize: example 4, feature 1"), "%s",
                  tg_last_error());
    tg_tensor_set(tg_dataset_x(ds), 4 * 3 + 1, 0.25);
    tg_tensor_set(tg_dataset_y(ds), 2, -INFINITY);
    ck_assert_int_eq(tg_nn_model_normalize(m, ds), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "example 2 (0-based), target is -inf"), "%s",
                  tg_last_error());
    tg_dataset_free(ds);
    /* f64 data too */
    struct tg_tensor *X = tg_tensor_zeros(TG_F64, 2, (int64_t[]){2, 3});
    tg_tensor_set(X, 5, INFINITY);
    ds = tg_dataset_new(X, tg_tensor_zeros(TG_F64, 1, (int64_t[]){2}));
    ck_assert_int_eq(tg_nn_model_normalize(m, ds), TG_ERR_NUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "example 1, feature 2 (0-based) is inf"), "%s",
                  tg_last_error());
    tg_dataset_free(ds);
    tg_nn_model_free(m);
}
END_TEST

/* Files that are not models: each error names the file and what is wrong. */
START_TEST(test_load_errors)
{
    const char *missing = tmp_path(0, "missing.safetensors");
    ck_assert_ptr_null(tg_nn_model_load(missing, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_IO);
    ck_assert_msg(strstr(tg_last_error(), missing), "%s", tg_last_error());
    /* a plain checkpoint without the metadata */
    const char *plain = tmp_path(1, "plain.safetensors");
    struct tg_params *p = tg_params_new();
    tg_params_add_owned(p, "w", tg_tensor_zeros(TG_F32, 1, (int64_t[]){3}));
    ck_assert_int_eq(tg_checkpoint_save(p, plain), TG_OK);
    ck_assert_ptr_null(tg_nn_model_load(plain, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    ck_assert_msg(strstr(tg_last_error(), "plain.safetensors: metadata 'format' is missing"), "%s",
                  tg_last_error());
    /* metadata that disagree with the tensors */
    tg_params_meta_set(p, "format", "tapegrad-mlp");
    tg_params_meta_set(p, "architecture", "3,2");
    tg_params_meta_set(p, "activation", "relu");
    tg_params_meta_set(p, "loss", "xent");
    tg_params_meta_set(p, "normalization", "none");
    ck_assert_int_eq(tg_checkpoint_save(p, plain), TG_OK);
    ck_assert_ptr_null(tg_nn_model_load(plain, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_MISMATCH);
    ck_assert_msg(strstr(tg_last_error(), "plain.safetensors: architecture 3,2 needs "
                                          "layers.0.weight of shape (2,3), the file has none"),
                  "%s", tg_last_error());
    static const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"architecture", "3", "bad architecture '3'"},
        {"architecture", "3,x", "bad architecture '3,x'"},
        {"activation", "swish", "bad activation 'swish'"},
        {"loss", "mse", "loss 'mse' does not fit 2 outputs"},
        {"normalization", "whiten", "bad normalization 'whiten'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tg_nn_model *m = new_model((int64_t[]){3, 2}, 2, TG_ACT_RELU, TG_LOSS_XENT, 0);
        ck_assert_int_eq(tg_nn_model_save(m, plain), TG_OK);
        struct tg_params *q = tg_checkpoint_read(plain);
        tg_params_meta_set(q, bad[i].key, bad[i].value);
        ck_assert_int_eq(tg_checkpoint_save(q, plain), TG_OK);
        ck_assert_ptr_null(tg_nn_model_load(plain, TG_F32));
        ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
        ck_assert_msg(strstr(tg_last_error(), bad[i].msg) && strstr(tg_last_error(), plain),
                      "%s: %s", bad[i].key, tg_last_error());
        tg_params_free(q);
        tg_nn_model_free(m);
    }
    tg_params_free(p);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 0);
    tg_clear_error();
    ck_assert_ptr_null(tg_nn_model_new(NULL, TG_LOSS_XENT));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    struct tg_nn_mlp *mlp = tg_nn_mlp_new((int64_t[]){2, 1}, 2, TG_ACT_RELU, TG_ACT_NONE, TG_F32,
                                          TG_INIT_UNIFORM, &rng);
    ck_assert_ptr_null(tg_nn_model_new(mlp, TG_LOSS_XENT)); /* frees mlp */
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_msg(strstr(tg_last_error(), "loss 'xent' does not fit 1 outputs"), "%s",
                  tg_last_error());
    ck_assert_ptr_null(tg_nn_model_load(NULL, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_nn_model_load("x", (enum tg_dtype)7));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    struct tg_nn_model *m = new_model((int64_t[]){3, 2}, 2, TG_ACT_RELU, TG_LOSS_XENT, 0);
    ck_assert_int_eq(tg_nn_model_save(m, NULL), TG_ERR_NULL);
    ck_assert_int_eq(tg_nn_model_save(NULL, "x"), TG_ERR_NULL);
    ck_assert_int_eq(tg_nn_model_normalize(m, NULL), TG_ERR_NULL);
    ck_assert_int_eq(tg_nn_model_predict(m, NULL, NULL), TG_ERR_NULL);
    struct tg_dataset *ds = random_data(&rng, 4, 5, 2, 0, 1);
    ck_assert_int_eq(tg_nn_model_fit_norm(m, TG_NORM_SCALE, ds), TG_ERR_SHAPE);
    ck_assert_msg(strstr(tg_last_error(), "the data have 5 features, the model takes 3"), "%s",
                  tg_last_error());
    ck_assert_int_eq(tg_nn_model_fit_norm(m, (enum tg_nn_norm)9, ds), TG_ERR_SHAPE);
    tg_dataset_free(ds);
    ds = random_data(&rng, 4, 3, 2, 0, 1);
    ck_assert_int_eq(tg_nn_model_fit_norm(m, (enum tg_nn_norm)9, ds), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_nn_model_mlp(NULL));
    ck_assert_int_eq(tg_nn_model_norm(NULL, NULL, NULL, NULL), TG_NORM_NONE);
    tg_nn_model_free(NULL);
    tg_dataset_free(ds);
    tg_nn_model_free(m);
}
END_TEST

/* Runs cmd; its stdout into out (size bytes at most). */
static int run(const char *cmd, char *out, size_t size)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    return pclose(f);
}

/* A program (this test) loads the model that `tapegrad train --save` wrote and
 * gets what `tapegrad eval` prints: the loss line (tg_nn_evaluate on the normalized
 * data) and the confusion matrix (tg_nn_model_predict). */
START_TEST(test_cli_model)
{
    char cmd[4096], out[8192], want[8192];
    const char *model = tmp_path(0, "cli.safetensors");
    char csv[1024];
    snprintf(csv, sizeof csv, "%s/blobs3.csv", data_dir);
    snprintf(cmd, sizeof cmd,
             "'%s' train '%s' --target species --hidden 16,8 --epochs 15 --lr 0.01 --save '%s'",
             tapegrad_exe, csv, model);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "'%s' eval '%s' '%s'", tapegrad_exe, model, csv);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);

    struct tg_nn_model *m = tg_nn_model_load(model, TG_F32);
    ck_assert_msg(m != NULL, "%s", tg_last_error());
    struct tg_nn_mlp *mlp = tg_nn_model_mlp(m);
    struct tg_dataset_csv_options opt = {
        .dtype = TG_F32, .target = tg_params_meta_get(tg_nn_mlp_params(mlp), "target")};
    ck_assert_str_eq(opt.target, "species");
    struct tg_dataset *ds = tg_dataset_load_csv(csv, &opt);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(tg_nn_model_normalize(m, ds), TG_OK);
    struct tg_nn_module model_if = tg_nn_mlp_module(mlp);
    double loss, acc;
    ck_assert_int_eq(tg_nn_evaluate(&model_if, ds, tg_nn_model_loss(m), &loss, &acc), TG_OK);
    int64_t n = tg_dataset_len(ds), conf[3][3] = {{0}}, right = 0;
    double pred[150];
    ck_assert_int_eq(n, 150);
    ck_assert_int_eq(tg_nn_model_predict(m, ds, pred), TG_OK);
    for (int64_t i = 0; i < n; i++) {
        int t = (int)tg_tensor_get(tg_dataset_y(ds), i), p = (int)pred[i];
        conf[t][p]++;
        right += t == p;
    }
    ck_assert_int_eq(llround(acc * (double)n), right);
    int at = snprintf(want, sizeof want,
                      "model: 4-16-8-3 relu, loss xent; data: 150 examples\n"
                      "loss %.6f  accuracy %.2f%% (%lld/150)\n"
                      "confusion matrix (rows: true class, columns: predicted class):\n"
                      "true\\pred    0    1    2\n",
                      loss, 100.0 * acc, (long long)right);
    for (int t = 0; t < 3; t++)
        at += snprintf(want + at, sizeof want - (size_t)at, "%9d%5lld%5lld%5lld\n", t,
                       (long long)conf[t][0], (long long)conf[t][1], (long long)conf[t][2]);
    ck_assert_str_eq(out, want);
    ck_assert_int_gt(right, 120); /* the blobs are easy: a sanity check on the training */
    tg_dataset_free(ds);
    tg_nn_model_free(m);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("file");
    tcase_add_test(tc, test_roundtrip_standardize);
    tcase_add_test(tc, test_roundtrip_scale_f64);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    if (tapegrad_exe) {
        tc = tcase_create("cli");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_cli_model);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 3) {
        tapegrad_exe = argv[1];
        data_dir = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: check_model [PATH/TO/tapegrad PATH/TO/tests/data]\n");
        return 2;
    }
    if (!mkdtemp(tmp_dir)) return 1;
    int rc = tg_test_run_suite(model_suite());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
