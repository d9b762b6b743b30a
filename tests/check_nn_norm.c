/*
 * tests/check_nn_norm.c - the batch norm, layer norm, embedding and dropout
 * layers (nn/norm_layers.c) and the train/eval mode: PyTorch's names in the
 * parameter map, running statistics updated by training, untouched by the
 * optimizer, used by evaluation, saved and loaded by checkpoints; dropout only
 * in training; a name clash leaves the map as it was. Expected values come from
 * the definitions, computed here.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>
#include "failalloc.h"

static void expect_names(const struct tg_params *p, const char *const *want, size_t n)
{
    ck_assert_uint_eq(tg_params_count(p), n);
    for (size_t i = 0; i < n; i++) ck_assert_str_eq(tg_params_name(p, i), want[i]);
}

/* x (4, 3): channel c holds c + {1, -1, 3, 5} */
static struct tg_tensor *bn_input(void)
{
    double v[12];
    const double base[4] = {1, -1, 3, 5};
    for (int n = 0; n < 4; n++)
        for (int c = 0; c < 3; c++) v[n * 3 + c] = c + base[n];
    return tg_tensor_from_f64(TG_F64, 2, (int64_t[]){4, 3}, v);
}

START_TEST(test_batch_norm_layer)
{
    struct tg_params *p = tg_params_new();
    struct tg_nn_batch_norm *bn =
        tg_nn_batch_norm_new(p, "bn1", 3, true, TG_BATCH_NORM_MOMENTUM, TG_BATCH_NORM_EPS, TG_F64);
    ck_assert_msg(bn != NULL, "%s", tg_last_error());
    const char *names[] = {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                           "bn1.num_batches_tracked"};
    expect_names(p, names, 5);
    struct tg_tensor *x = bn_input(), *rm = tg_params_get(p, "bn1.running_mean");
    struct tg_tensor *rv = tg_params_get(p, "bn1.running_var"), *w = tg_params_get(p, "bn1.weight");
    ck_assert(!tg_tensor_requires_grad(rm) && tg_tensor_requires_grad(w));
    struct tg_tape *T = tg_tape_new();

    /* evaluation before any statistics */
    ck_assert_ptr_null(tg_nn_batch_norm_forward(bn, T, x, TG_NN_EVAL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);

    /* a training step: batch mean c + 2, biased var 5, unbiased 20/3 */
    struct tg_tensor *y = tg_nn_batch_norm_forward(bn, T, x, TG_NN_TRAIN);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    struct tg_nn_optim_config cfg = tg_nn_optim_defaults(TG_OPTIM_SGD);
    struct tg_nn_optim *opt = tg_nn_optim_new(p, &cfg);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, y)), NULL), TG_OK);
    ck_assert_int_eq(tg_nn_optim_step(opt, 1.0), TG_OK);
    for (int c = 0; c < 3; c++) {
        ck_assert_double_eq_tol(tg_tensor_get(rm, c), 0.1 * (c + 2), 1e-15);
        ck_assert_double_eq_tol(tg_tensor_get(rv, c), 0.9 + 0.1 * 20.0 / 3, 1e-15);
        /* d sum(y^2) / dw = 2 sum xhat^2 = 2 * 4 * 5 / (5 + eps): the step moved w */
        ck_assert_double_eq_tol(tg_tensor_get(w, c), 1 - 0.01 * 8 * 5 / (5 + 1e-5), 1e-12);
    }
    ck_assert_double_eq(tg_tensor_get(tg_params_get(p, "bn1.num_batches_tracked"), 0), 1);

    /* evaluation: the running statistics, and no update */
    y = tg_nn_batch_norm_forward(bn, T, x, TG_NN_EVAL);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    for (int i = 0; i < 12; i++) {
        int c = i % 3;
        double want = (tg_tensor_get(x, i) - tg_tensor_get(rm, c)) /
                          sqrt(tg_tensor_get(rv, c) + 1e-5) * tg_tensor_get(w, c) +
                      tg_tensor_get(tg_params_get(p, "bn1.bias"), c);
        ck_assert_double_eq_tol(tg_tensor_get(y, i), want, 1e-12);
    }
    ck_assert_double_eq(tg_tensor_get(tg_params_get(p, "bn1.num_batches_tracked"), 0), 1);

    /* a checkpoint carries the statistics into a new layer, which can evaluate */
    char path[] = "/tmp/tg_nn_norm_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(tg_checkpoint_save(p, path), TG_OK);
    struct tg_params *p2 = tg_params_new();
    struct tg_nn_batch_norm *bn2 = tg_nn_batch_norm_new(p2, "bn1", 3, true, 0.1, 1e-5, TG_F64);
    ck_assert_int_eq(tg_checkpoint_load(p2, path), TG_OK);
    unlink(path);
    struct tg_tensor *y2 = tg_nn_batch_norm_forward(bn2, T, x, TG_NN_EVAL);
    ck_assert_msg(y2 != NULL, "%s", tg_last_error());
    for (int i = 0; i < 12; i++) ck_assert_double_eq(tg_tensor_get(y2, i), tg_tensor_get(y, i));

    tg_tape_free(T);
    tg_nn_optim_free(opt);
    tg_nn_batch_norm_free(bn);
    tg_nn_batch_norm_free(bn2);
    tg_params_free(p);
    tg_params_free(p2);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_dropout_layer_modes)
{
    struct tg_nn_dropout *d = tg_nn_dropout_new(0.5, 7), *e = tg_nn_dropout_new(0.5, 7);
    ck_assert_ptr_nonnull(d);
    struct tg_tensor *x = tg_tensor_ones(TG_F32, 1, (int64_t[]){200});
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *ev = tg_nn_dropout_forward(d, T, x, TG_NN_EVAL);
    struct tg_tensor *a = tg_nn_dropout_forward(d, T, x, TG_NN_TRAIN);
    struct tg_tensor *b = tg_nn_dropout_forward(e, T, x, TG_NN_TRAIN);
    ck_assert(ev && a && b);
    int dropped = 0;
    for (int i = 0; i < 200; i++) {
        ck_assert_double_eq(tg_tensor_get(ev, i), 1);
        ck_assert(tg_tensor_get(a, i) == 0 || tg_tensor_get(a, i) == 2);
        ck_assert_double_eq(tg_tensor_get(a, i), tg_tensor_get(b, i)); /* same seed */
        dropped += tg_tensor_get(a, i) == 0;
    }
    ck_assert_int_gt(dropped, 50);
    ck_assert_int_lt(dropped, 150);
    ck_assert_ptr_null(tg_nn_dropout_forward(d, T, x, (enum tg_nn_mode)5));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_nn_dropout_new(1.0, 1));
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_nn_dropout_free(d);
    tg_nn_dropout_free(e);
}
END_TEST

START_TEST(test_layer_norm_and_embedding_layers)
{
    struct tg_params *p = tg_params_new();
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct tg_nn_embedding *emb = tg_nn_embedding_new(p, "emb", 5, 4, TG_F32, &rng);
    struct tg_nn_layer_norm *ln =
        tg_nn_layer_norm_new(p, "ln", 1, (int64_t[]){4}, true, 1e-5, TG_F32);
    ck_assert(emb && ln);
    const char *names[] = {"emb.weight", "ln.weight", "ln.bias"};
    expect_names(p, names, 3);
    /* a clash fails and adds nothing */
    ck_assert_ptr_null(tg_nn_batch_norm_new(p, "ln", 4, true, 0.1, 1e-5, TG_F32));
    ck_assert_ptr_null(tg_nn_layer_norm_new(p, "ln", 1, (int64_t[]){4}, true, 1e-5, TG_F32));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    expect_names(p, names, 3);
    struct tg_tensor *idx = tg_tensor_from_f64(TG_F32, 1, (int64_t[]){3}, (double[]){4, 0, 4});
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *h = tg_nn_embedding_forward(emb, T, idx);
    struct tg_tensor *y = tg_nn_layer_norm_forward(ln, T, h);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_shape(y)[0], 3);
    for (int r = 0; r < 3; r++) {
        double m = 0;
        for (int k = 0; k < 4; k++) m += tg_tensor_get(y, r * 4 + k) / 4;
        ck_assert_double_eq_tol(m, 0, 1e-6);
    }
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, h)), NULL), TG_OK);
    struct tg_tensor *w = tg_params_get(p, "emb.weight");
    for (int k = 0; k < 4; k++) ck_assert_double_eq(tg_tensor_grad_get(w, 4 + k), 0); /* row 1 */
    tg_tape_free(T);
    tg_tensor_free(idx);
    tg_nn_embedding_free(emb);
    tg_nn_layer_norm_free(ln);
    tg_params_free(p);
}
END_TEST

/* A model of one's own with the mode in its struct: linear (2 -> 4), batch
 * norm, relu, dropout, linear (4 -> 2), trained by tg_nn_train and evaluated by
 * tg_nn_evaluate after one assignment of the mode. */
struct bn_model {
    enum tg_nn_mode mode;
    struct tg_params *p;
    struct tg_tensor *w1, *w2;
    struct tg_nn_batch_norm *bn;
    struct tg_nn_dropout *drop;
};
static struct tg_tensor *bn_model_forward(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    struct bn_model *m = self;
    struct tg_tensor *h = tg_matmul_t(T, x, m->w1, false, true);
    h = tg_relu(T, tg_nn_batch_norm_forward(m->bn, T, h, m->mode));
    h = tg_nn_dropout_forward(m->drop, T, h, m->mode);
    return tg_matmul_t(T, h, m->w2, false, true);
}

START_TEST(test_mode_with_the_trainer)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    struct bn_model m = {.mode = TG_NN_TRAIN, .p = tg_params_new()};
    m.w1 = tg_tensor_normal(TG_F64, 2, (int64_t[]){4, 2}, &rng, 0, 1);
    m.w2 = tg_tensor_normal(TG_F64, 2, (int64_t[]){2, 4}, &rng, 0, 1);
    tg_tensor_set_requires_grad(m.w1, true);
    tg_tensor_set_requires_grad(m.w2, true);
    ck_assert_int_eq(tg_params_add_owned(m.p, "fc1.weight", m.w1), TG_OK);
    m.bn = tg_nn_batch_norm_new(m.p, "bn1", 4, true, 0.1, 1e-5, TG_F64);
    ck_assert_int_eq(tg_params_add_owned(m.p, "fc2.weight", m.w2), TG_OK);
    m.drop = tg_nn_dropout_new(0.2, 5);
    ck_assert(m.bn && m.drop);
    /* two classes: the sign of x0 + x1 */
    struct tg_tensor *X = tg_tensor_normal(TG_F64, 2, (int64_t[]){64, 2}, &rng, 0, 1);
    struct tg_tensor *y = tg_tensor_zeros(TG_F64, 1, (int64_t[]){64});
    for (int i = 0; i < 64; i++)
        tg_tensor_set(y, i, tg_tensor_get(X, 2 * i) + tg_tensor_get(X, 2 * i + 1) > 0);
    struct tg_dataset *ds = tg_dataset_new(X, y);
    ck_assert_ptr_nonnull(ds);
    struct tg_nn_train_config cfg = tg_nn_train_defaults();
    cfg.loss = TG_LOSS_XENT;
    cfg.mode = TG_TRAIN_MINIBATCH;
    cfg.batch_size = 16;
    cfg.max_epochs = 5;
    struct tg_nn_module mod = {m.p, bn_model_forward, &m};
    ck_assert_msg(tg_nn_train(&mod, ds, &cfg, NULL) == TG_OK, "%s", tg_last_error());
    struct tg_tensor *count = tg_params_get(m.p, "bn1.num_batches_tracked");
    ck_assert_double_eq(tg_tensor_get(count, 0), 5 * 4); /* one per training batch */
    m.mode = TG_NN_EVAL;
    double l1, l2, acc;
    ck_assert_int_eq(tg_nn_evaluate(&mod, ds, TG_LOSS_XENT, &l1, &acc), TG_OK);
    ck_assert_int_eq(tg_nn_evaluate(&mod, ds, TG_LOSS_XENT, &l2, NULL), TG_OK);
    ck_assert_double_eq(l1, l2); /* no dropout, no statistics moved */
    ck_assert_double_eq(tg_tensor_get(count, 0), 20);
    ck_assert_double_gt(acc, 0.8);
    tg_dataset_free(ds);
    tg_nn_batch_norm_free(m.bn);
    tg_nn_dropout_free(m.drop);
    tg_params_free(m.p);
}
END_TEST

/* The layers and their ops with the n-th allocation failing: TG_ERR_NOMEM
 * (never a crash; LeakSanitizer checks that nothing leaks), and batch norm's
 * buffers are updated only by a forward that succeeded. */
static enum tg_status layers_step(double *count)
{
    enum tg_status st = TG_ERR_NOMEM;
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    struct tg_params *p = tg_params_new();
    struct tg_tape *T = tg_tape_new();
    struct tg_nn_batch_norm *bn = tg_nn_batch_norm_new(p, "bn", 4, true, 0.1, 1e-5, TG_F32);
    struct tg_nn_layer_norm *ln =
        tg_nn_layer_norm_new(p, "ln", 1, (int64_t[]){4}, true, 1e-5, TG_F32);
    struct tg_nn_embedding *emb = tg_nn_embedding_new(p, "emb", 6, 4, TG_F32, &rng);
    struct tg_tensor *idx =
        tg_tensor_from_f64(TG_F32, 2, (int64_t[]){3, 2}, (double[]){0, 5, 2, 2, 1, 3});
    if (p && T && bn && ln && emb && idx) {
        struct tg_tensor *h = tg_nn_embedding_forward(emb, T, idx);     /* (3, 2, 4) */
        h = tg_clamp(T, tg_nn_layer_norm_forward(ln, T, h), -1.5, 1.5); /* (3, 2, 4) */
        int perm[3] = {0, 2, 1};
        h = tg_nn_batch_norm_forward(bn, T, tg_permute(T, h, 3, perm), TG_NN_TRAIN);
        *count = tg_tensor_get(tg_params_get(p, "bn.num_batches_tracked"), 0);
        st = h ? tg_backward(tg_sum(T, h), NULL) : tg_last_status();
    }
    tg_tensor_free(idx);
    tg_nn_batch_norm_free(bn);
    tg_nn_layer_norm_free(ln);
    tg_nn_embedding_free(emb);
    tg_tape_free(T);
    tg_params_free(p);
    return st;
}

START_TEST(test_layers_out_of_memory)
{
    bool done = false;
    for (long n = 1; n < 400 && !done; n++) {
        double count = -1;
        failalloc_arm(n, _i == 1);
        enum tg_status st = layers_step(&count);
        bool failed = failalloc_failures > 0;
        failalloc_disarm();
        tg_set_allocator(NULL);
        if (!failed) {
            ck_assert_msg(st == TG_OK, "%s", tg_last_error());
            ck_assert_double_eq(count, 1);
            done = true;
        } else {
            ck_assert_msg(st == TG_ERR_NOMEM, "allocation %ld: %s (%s)", n, tg_status_str(st),
                          tg_last_error());
            ck_assert(count == -1 || count == 0 || count == 1);
        }
    }
    ck_assert(done);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn_norm");
    TCase *tc = tcase_create("layers");
    tcase_add_test(tc, test_batch_norm_layer);
    tcase_add_test(tc, test_dropout_layer_modes);
    tcase_add_test(tc, test_layer_norm_and_embedding_layers);
    tcase_add_test(tc, test_mode_with_the_trainer);
    tcase_add_loop_test(tc, test_layers_out_of_memory, 0, 2); /* one failure, then sticky */
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
