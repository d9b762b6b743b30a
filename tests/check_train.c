/*
 * tests/check_train.c - the trainer: the source document's training algorithm.
 *
 * The gradients the trainer accumulates are checked two independent ways: the
 * per-sample loop against one batched pass, and the tape against the document's
 * explicit vector formulas (grad_z = grad_y * f'(z), grad_W = grad_z y_{k-1}^T,
 * grad_y_{k-1} = W^T grad_z, grad_b = grad_z) written out here in plain C loops,
 * with no tape. The update is checked against W -= eta/T grad_W; convergence,
 * the callback, evaluation values (worked out by hand) and the absence of
 * allocations in steady state are checked on small problems.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static void assert_close(double got, double want, double rel, const char *what, int i)
{
    double tol = rel * fmax(1e-3, fabs(want));
    ck_assert_msg(fabs(got - want) <= tol, "%s[%d]: got %.17g, want %.17g", what, i, got, want);
}

static struct tg_dataset *dataset(int64_t n, int64_t d, const double *X, const double *y)
{
    struct tg_dataset *ds = tg_dataset_new(tg_tensor_from_f64(TG_F64, 2, (int64_t[]){n, d}, X),
                                           tg_tensor_from_f64(TG_F64, 1, (int64_t[]){n}, y));
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* n samples of d features uniform in (-1, 1), seeded. */
static void random_x(double *X, int64_t n, int64_t d, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n * d; i++) X[i] = 2 * tg_rng_uniform(&rng) - 1;
}

/* Copies every gradient of p into g (flat, in map order); returns the count. */
static int64_t grads_of(const struct tg_params *p, double *g)
{
    int64_t k = 0;
    for (size_t i = 0; i < tg_params_count(p); i++) {
        const struct tg_tensor *t = tg_params_tensor(p, i);
        for (int64_t j = 0; j < tg_tensor_numel(t); j++) g[k++] = tg_tensor_grad_get(t, j);
    }
    return k;
}

/* ---- per-sample and mini-batch accumulate the same gradients ---- */

START_TEST(test_per_sample_equals_minibatch)
{
    enum tg_nn_loss loss = (enum tg_nn_loss)_i;
    double X[7 * 3], y[7] = {0.3, -1.2, 0.8, 0.1, 2.0, -0.4, 0.9};
    random_x(X, 7, 3, 5);
    if (loss == TG_LOSS_XENT) memcpy(y, (double[]){0, 2, 1, 1, 0, 2, 2}, sizeof y);
    if (loss == TG_LOSS_BCE) memcpy(y, (double[]){0, 1, 1, 0.25, 0, 1, 0.75}, sizeof y);
    if (loss == TG_LOSS_HINGE) memcpy(y, (double[]){-1, 1, 1, -1, -1, 1, 1}, sizeof y);
    struct tg_dataset *ds = dataset(7, 3, X, y);
    struct tg_rng rng;
    tg_rng_seed(&rng, 9);
    int64_t sizes[] = {3, 6, loss == TG_LOSS_XENT ? 3 : 1};
    struct tg_nn_mlp *m =
        tg_nn_mlp_new(sizes, 3, TG_ACT_TANH, TG_ACT_NONE, TG_F64, TG_INIT_XAVIER_UNIFORM, &rng);
    tg_tensor_set(tg_nn_mlp_bias(m, 0), 2, 0.3);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct tg_tape *T = tg_tape_new();
    double ga[64], gb[64];
    /* all samples, then a middle range */
    int64_t ranges[2][2] = {{0, 7}, {2, 4}};
    for (int r = 0; r < 2; r++) {
        double la = 0, lb = 0;
        int64_t ca = 0, cb = 0;
        tg_params_zero_grad(model.params);
        ck_assert_int_eq(tg_nn_train_accumulate(&model, T, ds, ranges[r][0], ranges[r][1], loss,
                                                TG_TRAIN_PER_SAMPLE, &la, &ca),
                         TG_OK);
        int64_t n = grads_of(model.params, ga);
        tg_params_zero_grad(model.params);
        ck_assert_int_eq(tg_nn_train_accumulate(&model, T, ds, ranges[r][0], ranges[r][1], loss,
                                                TG_TRAIN_MINIBATCH, &lb, &cb),
                         TG_OK);
        ck_assert_int_eq(grads_of(model.params, gb), n);
        for (int64_t i = 0; i < n; i++)
            assert_close(ga[i], gb[i], 1e-10, tg_nn_loss_name(loss), (int)i);
        assert_close(la, lb, 1e-12, "loss", r);
        ck_assert_int_eq(ca, cb);
        ck_assert(la > 0);
    }
    ck_assert_int_eq(
        tg_nn_train_accumulate(&model, T, ds, 5, 3, loss, TG_TRAIN_MINIBATCH, NULL, NULL),
        TG_ERR_RANGE);
    tg_tape_free(T);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* ---- the tape against the document's explicit backward formulas ---- */

/* f(z) and f'(z) for each activation, by hand. */
static double act_f(enum tg_act a, double z)
{
    switch (a) {
    case TG_ACT_RELU:
        return z > 0 ? z : 0;
    case TG_ACT_TANH:
        return tanh(z);
    case TG_ACT_SIGMOID:
        return 1 / (1 + exp(-z));
    case TG_ACT_LEAKY_RELU:
        return z > 0 ? z : 0.01 * z;
    case TG_ACT_SOFTPLUS:
        return log1p(exp(z));
    default:
        return z;
    }
}
static double act_df(enum tg_act a, double z)
{
    switch (a) {
    case TG_ACT_RELU:
        return z > 0;
    case TG_ACT_TANH:
        return 1 - tanh(z) * tanh(z);
    case TG_ACT_SIGMOID:
        return exp(-z) / ((1 + exp(-z)) * (1 + exp(-z)));
    case TG_ACT_LEAKY_RELU:
        return z > 0 ? 1 : 0.01;
    case TG_ACT_SOFTPLUS:
        return 1 / (1 + exp(-z));
    default:
        return 1;
    }
}

#define L  3 /* layers */
#define MX 5 /* widest layer */
static const int64_t DOC_SIZES[L + 1] = {3, 5, 4, 2};

/*
 * Adds the gradient of Div = sum_j (Y_j - d_j)^2 for one sample x into gW, gb,
 * following the document: forward z_k = W_k y_{k-1} + b_k, y_k = f_k(z_k); then
 * grad_Y = 2 (Y - d) and for k = N..1: grad_z = grad_y * f'(z) (the diagonal
 * Jacobian), grad_W += grad_z y_{k-1}^T, grad_b += grad_z, grad_y_{k-1} = W^T grad_z.
 */
static void doc_backprop(struct tg_nn_mlp *m, const double *x, const double *d,
                         double gW[L][MX * MX], double gb[L][MX])
{
    double y[L + 1][MX], z[L][MX], gy[MX], gz[MX];
    memcpy(y[0], x, sizeof(double) * (size_t)DOC_SIZES[0]);
    for (int k = 0; k < L; k++) {
        int64_t in = DOC_SIZES[k], out = DOC_SIZES[k + 1];
        for (int64_t j = 0; j < out; j++) {
            z[k][j] = tg_tensor_get(tg_nn_mlp_bias(m, k), j);
            for (int64_t i = 0; i < in; i++)
                z[k][j] += tg_tensor_get(tg_nn_mlp_weight(m, k), j * in + i) * y[k][i];
            y[k + 1][j] = act_f(tg_nn_mlp_act(m, k), z[k][j]);
        }
    }
    for (int64_t j = 0; j < DOC_SIZES[L]; j++) gy[j] = 2 * (y[L][j] - d[j]);
    for (int k = L - 1; k >= 0; k--) {
        int64_t in = DOC_SIZES[k], out = DOC_SIZES[k + 1];
        for (int64_t j = 0; j < out; j++) gz[j] = gy[j] * act_df(tg_nn_mlp_act(m, k), z[k][j]);
        for (int64_t j = 0; j < out; j++) {
            gb[k][j] += gz[j];
            for (int64_t i = 0; i < in; i++) gW[k][j * in + i] += gz[j] * y[k][i];
        }
        for (int64_t i = 0; i < in; i++) {
            gy[i] = 0;
            for (int64_t j = 0; j < out; j++)
                gy[i] += tg_tensor_get(tg_nn_mlp_weight(m, k), j * in + i) * gz[j];
        }
    }
}

static void compare_layers(struct tg_nn_mlp *m, double gW[L][MX * MX], double gb[L][MX],
                           const char *what)
{
    for (int k = 0; k < L; k++) {
        struct tg_tensor *W = tg_nn_mlp_weight(m, k), *b = tg_nn_mlp_bias(m, k);
        for (int64_t i = 0; i < tg_tensor_numel(W); i++)
            assert_close(tg_tensor_grad_get(W, i), gW[k][i], 1e-10, what, (int)(k * 100 + i));
        for (int64_t i = 0; i < tg_tensor_numel(b); i++)
            assert_close(tg_tensor_grad_get(b, i), gb[k][i], 1e-10, what, (int)(k * 100 + i));
    }
}

START_TEST(test_tape_vs_document_formulas)
{
    enum tg_act hidden = (enum tg_act)_i;
    struct tg_rng rng;
    tg_rng_seed(&rng, 100 + (uint64_t)_i);
    struct tg_nn_mlp *m =
        tg_nn_mlp_new(DOC_SIZES, L + 1, hidden, TG_ACT_SIGMOID, TG_F64, TG_INIT_HE_NORMAL, &rng);
    for (int k = 0; k < L; k++) /* nonzero biases */
        for (int64_t j = 0; j < DOC_SIZES[k + 1]; j++)
            tg_tensor_set(tg_nn_mlp_bias(m, k), j, 0.1 * (double)(j + 1) - 0.2 * k);
    enum { B = 4 };
    double X[B * 3], D[B * 2] = {0.1, 0.9, 0.7, 0.2, 0.5, 0.5, 1.0, 0.0};
    random_x(X, B, 3, 77);
    double gW[L][MX * MX] = {{0}}, gb[L][MX] = {{0}};
    struct tg_tape *T = tg_tape_new();

    /* one sample, the document's column vector */
    doc_backprop(m, X, D, gW, gb);
    struct tg_tensor *x = tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, X);
    struct tg_tensor *d = tg_tape_constant(T, TG_F64, 1, (int64_t[]){2}, D);
    struct tg_tensor *div = tg_mse(T, tg_nn_mlp_forward(m, T, x), d, TG_REDUCE_SUM);
    ck_assert_int_eq(tg_backward(div, NULL), TG_OK);
    compare_layers(m, gW, gb, "one sample");

    /* a batch: the tape's one pass against the formulas summed over t = 1..T */
    memset(gW, 0, sizeof gW);
    memset(gb, 0, sizeof gb);
    for (int t = 0; t < B; t++) doc_backprop(m, X + 3 * t, D + 2 * t, gW, gb);
    tg_tape_reset(T);
    tg_params_zero_grad(tg_nn_mlp_params(m));
    struct tg_tensor *Xb = tg_tape_constant(T, TG_F64, 2, (int64_t[]){B, 3}, X);
    struct tg_tensor *Db = tg_tape_constant(T, TG_F64, 2, (int64_t[]){B, 2}, D);
    div = tg_mse(T, tg_nn_mlp_forward(m, T, Xb), Db, TG_REDUCE_SUM);
    ck_assert_int_eq(tg_backward(div, NULL), TG_OK);
    compare_layers(m, gW, gb, "batch");
    tg_tape_free(T);
    tg_nn_mlp_free(m);
}
END_TEST

/* ---- the update: W -= eta/T grad_W Loss ---- */

START_TEST(test_update_is_document_formula)
{
    double X[6 * 2], y[6] = {0.5, -0.5, 1, 0, 0.25, 2};
    random_x(X, 6, 2, 3);
    struct tg_dataset *ds = dataset(6, 2, X, y);
    struct tg_rng rng;
    tg_rng_seed(&rng, 4);
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){2, 3, 1}, 3, TG_ACT_SIGMOID, TG_ACT_NONE,
                                        TG_F64, TG_INIT_XAVIER_NORMAL, &rng);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    double w0[64], g[64];
    int64_t n = 0;
    for (size_t i = 0; i < tg_params_count(model.params); i++) /* the initial weights */
        for (int64_t j = 0; j < tg_tensor_numel(tg_params_tensor(model.params, i)); j++)
            w0[n++] = tg_tensor_get(tg_params_tensor(model.params, i), j);
    struct tg_tape *T = tg_tape_new();
    tg_nn_train_accumulate(&model, T, ds, 0, 6, TG_LOSS_MSE, TG_TRAIN_PER_SAMPLE, NULL, NULL);
    grads_of(model.params, g);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.optim.lr = 0.7; /* eta */
    c.max_epochs = 1;
    struct tg_nn_train_result res;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
    ck_assert_int_eq(res.epochs, 1);
    ck_assert_int_eq(res.stop, TG_STOP_MAX_EPOCHS);
    n = 0;
    for (size_t i = 0; i < tg_params_count(model.params); i++)
        for (int64_t j = 0; j < tg_tensor_numel(tg_params_tensor(model.params, i)); j++, n++)
            assert_close(tg_tensor_get(tg_params_tensor(model.params, i), j),
                         w0[n] - 0.7 / 6 * g[n], 1e-13, "W - eta/T grad", (int)n);
    tg_tape_free(T);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* ---- learning XOR, convergence, the callback ---- */

static const double XOR_X[] = {0, 0, 0, 1, 1, 0, 1, 1}, XOR_Y[] = {0, 1, 1, 0};

struct watch {
    int calls, stop_at;
    double last_loss;
    bool sane;
};

static int on_epoch(const struct tg_nn_epoch_info *e, void *ctx)
{
    struct watch *w = ctx;
    bool ok = e->epoch == w->calls && isfinite(e->loss) && e->loss >= 0 && e->seconds >= 0 &&
              e->total_seconds >= e->seconds && e->n_params == 4 && e->lr == 2.0 &&
              isnan(e->accuracy) && !strcmp(e->names[0], "layers.0.weight") &&
              !strcmp(e->names[3], "layers.1.bias");
    for (size_t i = 0; i < e->n_params; i++) ok = ok && isfinite(e->grad_norms[i]);
    ok = ok && e->grad_norms[0] > 0;
    w->sane = w->sane && ok;
    w->calls++;
    w->last_loss = e->loss;
    return w->stop_at >= 0 && e->epoch == w->stop_at;
}

static struct tg_nn_mlp *xor_net(uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    return tg_nn_mlp_new((int64_t[]){2, 4, 1}, 3, TG_ACT_TANH, TG_ACT_SIGMOID, TG_F64,
                         TG_INIT_XAVIER_UNIFORM, &rng);
}

START_TEST(test_learns_xor)
{
    struct tg_dataset *ds = dataset(4, 2, XOR_X, XOR_Y);
    struct tg_nn_mlp *m = xor_net(1);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct watch w = {0, -1, NAN, true};
    struct tg_nn_train_config c = tg_nn_train_defaults(); /* MSE, per sample, full batch, SGD */
    c.optim.lr = 2.0;
    c.max_epochs = 20000;
    c.tol = 1e-4;
    c.patience = 10;
    c.on_epoch = on_epoch;
    c.ctx = &w;
    struct tg_nn_train_result res;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
    ck_assert_msg(res.stop == TG_STOP_CONVERGED, "stopped by %s after %d epochs, loss %g",
                  tg_nn_train_stop_name(res.stop), res.epochs, res.loss);
    ck_assert_msg(res.loss < 0.01, "loss %g", res.loss);
    ck_assert(res.epochs < c.max_epochs);
    ck_assert_int_eq(w.calls, res.epochs);
    ck_assert_double_eq(w.last_loss, res.loss);
    ck_assert(w.sane);
    /* the trained net separates XOR, and tg_nn_evaluate agrees with the trainer */
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *X = tg_tape_constant(T, TG_F64, 2, (int64_t[]){4, 2}, XOR_X);
    struct tg_tensor *Y = tg_nn_mlp_forward(m, T, X);
    for (int i = 0; i < 4; i++) ck_assert_double_eq(round(tg_tensor_get(Y, i)), XOR_Y[i]);
    double loss, acc;
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_MSE, &loss, &acc), TG_OK);
    ck_assert(loss < 0.01 && isnan(acc));
    tg_tape_free(T);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_callback_and_target_stop)
{
    struct tg_dataset *ds = dataset(4, 2, XOR_X, XOR_Y);
    struct tg_nn_mlp *m = xor_net(1);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct watch w = {0, 4, NAN, true};
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.optim.lr = 2.0;
    c.on_epoch = on_epoch;
    c.ctx = &w;
    struct tg_nn_train_result res;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
    ck_assert_int_eq(res.stop, TG_STOP_CALLBACK);
    ck_assert_int_eq(res.epochs, 5);
    ck_assert_int_eq(w.calls, 5);
    ck_assert(w.sane);
    c.on_epoch = NULL;
    c.target_loss = 0.05;
    c.max_epochs = 20000;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
    ck_assert_int_eq(res.stop, TG_STOP_TARGET);
    ck_assert(res.loss <= 0.05 && res.loss > 0.02); /* stopped at the first epoch below */
    ck_assert_str_eq(tg_nn_train_stop_name(res.stop), "target");
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* ---- no allocation in steady state ---- */

static long n_alloc;
static void *count_malloc(size_t n, void *ctx)
{
    (void)ctx;
    n_alloc++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    n_alloc++;
    return realloc(p, n);
}
static void count_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static long allocs_at[8];
static int record_allocs(const struct tg_nn_epoch_info *e, void *ctx)
{
    (void)ctx;
    if (e->epoch < 8) allocs_at[e->epoch] = n_alloc;
    return 0;
}

/* Epochs 3 to 5 (after the end of epoch 2 until the end of epoch 5) allocate
 * nothing, per-sample and mini-batch (with a short last batch and shuffling). */
START_TEST(test_steady_state_no_malloc)
{
    struct tg_allocator a = {count_malloc, count_realloc, count_free, NULL};
    ck_assert_int_eq(tg_set_allocator(&a), TG_OK);
    bool xent = _i == 1; /* 0: MSE per sample; 1: XENT in mini-batches */
    double X[10 * 3], y[10] = {0, 1, 2, 1, 0, 2, 2, 1, 0, 1};
    random_x(X, 10, 3, 8);
    if (!xent) memcpy(y, (double[]){0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, 1}, sizeof y);
    struct tg_dataset *ds = dataset(10, 3, X, y);
    struct tg_rng rng;
    tg_rng_seed(&rng, 2);
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){3, 8, xent ? 3 : 1}, 3, TG_ACT_RELU,
                                        TG_ACT_NONE, TG_F64, TG_INIT_HE_UNIFORM, &rng);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = xent ? TG_LOSS_XENT : TG_LOSS_MSE;
    c.mode = xent ? TG_TRAIN_MINIBATCH : TG_TRAIN_PER_SAMPLE;
    c.batch_size = 3;
    c.shuffle = true;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    c.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_COSINE, .t_max = 6};
    c.max_epochs = 6;
    c.on_epoch = record_allocs;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, NULL), TG_OK);
    ck_assert(allocs_at[0] > 0); /* the counter sees the trainer's allocations */
    ck_assert_msg(allocs_at[5] == allocs_at[2], "%ld allocations in epochs 3-5",
                  allocs_at[5] - allocs_at[2]);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
    tg_set_allocator(NULL);
}
END_TEST

/* ---- a user's own model through the generic interface ---- */

struct linreg {
    struct tg_tensor *w, *c; /* (d), (1) */
};

static struct tg_tensor *linreg_forward(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    struct linreg *r = self; /* (B, d) x (d) -> (B), or (d) x (d) -> (); + c broadcasts */
    return tg_add(T, tg_matmul(T, x, r->w), r->c);
}

START_TEST(test_user_model)
{
    enum { N = 32 };
    double X[N * 2], y[N];
    random_x(X, N, 2, 21);
    for (int i = 0; i < N; i++) y[i] = 2 * X[2 * i] - 3 * X[2 * i + 1] + 0.5;
    struct tg_dataset *ds = dataset(N, 2, X, y);
    struct linreg r = {tg_tensor_zeros(TG_F64, 1, (int64_t[]){2}),
                       tg_tensor_zeros(TG_F64, 1, (int64_t[]){1})};
    tg_tensor_set_requires_grad(r.w, true);
    tg_tensor_set_requires_grad(r.c, true);
    struct tg_params *p = tg_params_new();
    tg_params_add(p, "w", r.w);
    tg_params_add(p, "c", r.c);
    struct tg_nn_module model = {p, linreg_forward, &r};
    for (int mode = 0; mode < 2; mode++) {
        tg_tensor_set(r.w, 0, 0);
        tg_tensor_set(r.w, 1, 0);
        tg_tensor_set(r.c, 0, 0);
        struct tg_nn_train_config c = tg_nn_train_defaults();
        c.mode = (enum tg_nn_train_mode)mode;
        c.batch_size = 8;
        c.shuffle = true;
        c.seed = 5;
        c.optim = tg_nn_optim_defaults(TG_OPTIM_MOMENTUM);
        c.optim.lr = 0.1;
        c.max_epochs = 300;
        c.target_loss = 1e-12;
        struct tg_nn_train_result res;
        ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
        ck_assert_int_eq(res.stop, TG_STOP_TARGET);
        assert_close(tg_tensor_get(r.w, 0), 2, 1e-5, "w", 0);
        assert_close(tg_tensor_get(r.w, 1), -3, 1e-5, "w", 1);
        assert_close(tg_tensor_get(r.c, 0), 0.5, 1e-5, "c", 0);
    }
    tg_params_free(p);
    tg_tensor_free(r.w);
    tg_tensor_free(r.c);
    tg_dataset_free(ds);
}
END_TEST

/* A net that learns three separated classes with mini-batches, Adam and a step
 * schedule reaches full training accuracy. */
START_TEST(test_learns_classes_minibatch)
{
    enum { N = 60 };
    double X[N * 2], y[N];
    struct tg_rng rng;
    tg_rng_seed(&rng, 31);
    for (int i = 0; i < N; i++) { /* blobs around (2,0), (-1,1.7), (-1,-1.7) */
        int k = i % 3;
        double cx[] = {2, -1, -1}, cy[] = {0, 1.7, -1.7};
        X[2 * i] = cx[k] + 0.4 * tg_rng_normal(&rng);
        X[2 * i + 1] = cy[k] + 0.4 * tg_rng_normal(&rng);
        y[i] = k;
    }
    struct tg_dataset *ds = dataset(N, 2, X, y);
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){2, 16, 3}, 3, TG_ACT_RELU, TG_ACT_NONE, TG_F64,
                                        TG_INIT_HE_NORMAL, &rng);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT;
    c.mode = TG_TRAIN_MINIBATCH;
    c.batch_size = 16;
    c.shuffle = true;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    c.optim.lr = 0.05;
    c.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_STEP, .step_size = 50, .gamma = 0.5};
    c.max_epochs = 150;
    struct tg_nn_train_result res;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
    double loss, acc;
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_XENT, &loss, &acc), TG_OK);
    ck_assert_double_eq(acc, 1.0);
    ck_assert_msg(loss < 0.1, "loss %g", loss);
    ck_assert(res.accuracy > 0.9);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* ---- evaluation values by hand: a net whose weights are all zero outputs 0 ---- */

START_TEST(test_evaluate_by_hand)
{
    double X[5 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    /* XENT: logits 0 -> loss log 3 per sample; argmax 0 (first of ties): 2 of 5 right */
    struct tg_dataset *ds = dataset(5, 2, X, (double[]){0, 1, 2, 0, 2});
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){2, 3}, 2, TG_ACT_NONE, TG_ACT_NONE, TG_F64,
                                        TG_INIT_UNIFORM, &rng);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    for (int i = 0; i < 6; i++) tg_tensor_set(tg_nn_mlp_weight(m, 0), i, 0);
    double loss, acc;
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_XENT, &loss, &acc), TG_OK);
    assert_close(loss, log(3.0), 1e-15, "xent", 0);
    ck_assert_double_eq(acc, 0.4);
    /* MSE on that 3-output net: a shape error naming the output */
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_MSE, &loss, &acc), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "(5,3)"));
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
    m = tg_nn_mlp_new((int64_t[]){2, 1}, 2, TG_ACT_NONE, TG_ACT_NONE, TG_F64, 0, &rng);
    model = tg_nn_mlp_module(m);
    tg_tensor_set(tg_nn_mlp_weight(m, 0), 0, 0);
    tg_tensor_set(tg_nn_mlp_weight(m, 0), 1, 0);
    /* BCE: logit 0 -> log 2; predicted negative: right where d <= 0.5, 3 of 5 */
    ds = dataset(5, 2, X, (double[]){0, 1, 1, 0, 0});
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_BCE, &loss, &acc), TG_OK);
    assert_close(loss, log(2.0), 1e-15, "bce", 0);
    ck_assert_double_eq(acc, 0.6);
    /* MSE: mean of d^2 = 2/5 */
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_MSE, &loss, &acc), TG_OK);
    assert_close(loss, 0.4, 1e-15, "mse", 0);
    ck_assert(isnan(acc));
    tg_dataset_free(ds);
    /* HINGE: score 0 -> max(0, 1 - 0) = 1; 3 of 5 labels are -1 */
    ds = dataset(5, 2, X, (double[]){-1, 1, 1, -1, -1});
    ck_assert_int_eq(tg_nn_evaluate(&model, ds, TG_LOSS_HINGE, &loss, &acc), TG_OK);
    assert_close(loss, 1.0, 1e-15, "hinge", 0);
    ck_assert_double_eq(acc, 0.6);
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* Two runs with the same seed on the same dataset object are the same run: each
 * tg_nn_train starts shuffling from the storage order, not from where the last run
 * left it (that gave a different loss the second time). */
START_TEST(test_same_seed_same_run)
{
    double X[10 * 2], y[10];
    random_x(X, 10, 2, 9);
    for (int i = 0; i < 10; i++) y[i] = X[2 * i] - 0.5 * X[2 * i + 1];
    struct tg_dataset *ds = dataset(10, 2, X, y);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.batch_size = 3;
    c.shuffle = true;
    c.seed = 42;
    c.max_epochs = 3;
    double loss[2], w[2];
    for (int run = 0; run < 2; run++) {
        struct tg_rng rng;
        tg_rng_seed(&rng, 1);
        struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){2, 4, 1}, 3, TG_ACT_TANH, TG_ACT_NONE,
                                            TG_F64, TG_INIT_XAVIER_UNIFORM, &rng);
        struct tg_nn_module model = tg_nn_mlp_module(m);
        struct tg_nn_train_result res;
        ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_OK);
        loss[run] = res.loss;
        w[run] = tg_tensor_get(tg_nn_mlp_weight(m, 0), 3);
        tg_nn_mlp_free(m);
    }
    ck_assert_msg(loss[0] == loss[1] && w[0] == w[1], "loss %.17g then %.17g", loss[0], loss[1]);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_train_errors)
{
    double X[4 * 2] = {0, 0, 0, 1, 1, NAN, 1, 1};
    struct tg_dataset *ds = dataset(4, 2, X, XOR_Y);
    struct tg_nn_mlp *m = xor_net(1);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    struct tg_nn_train_result res;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_ERR_NUMERIC); /* NaN input */
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "mse"));
    c.max_epochs = 0;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_ERR_VALUE);
    c = tg_nn_train_defaults();
    c.schedule.kind = TG_LR_STEP; /* step_size 0 */
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_ERR_VALUE);
    c = tg_nn_train_defaults();
    c.optim.momentum = 2;
    c.optim.kind = TG_OPTIM_MOMENTUM;
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_ERR_VALUE);
    ck_assert_int_eq(tg_nn_train(NULL, ds, &c, &res), TG_ERR_NULL);
    ck_assert_int_eq(tg_nn_train(&model, ds, NULL, &res), TG_ERR_NULL);
    c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT; /* per sample: one logit (1) is fine for XENT shape-wise, but */
    ck_assert_int_eq(tg_nn_train(&model, ds, &c, &res), TG_ERR_RANGE); /* label 1 of 1 class */
    ck_assert_str_eq(tg_nn_loss_name(TG_LOSS_HINGE), "hinge");
    tg_nn_mlp_free(m);
    tg_dataset_free(ds);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("gradients");
    tcase_add_loop_test(tc, test_per_sample_equals_minibatch, TG_LOSS_MSE, TG_LOSS_HINGE + 1);
    tcase_add_loop_test(tc, test_tape_vs_document_formulas, TG_ACT_NONE, TG_ACT_SOFTPLUS + 1);
    tcase_add_test(tc, test_update_is_document_formula);
    suite_add_tcase(s, tc);
    tc = tcase_create("training");
    tcase_add_test(tc, test_learns_xor);
    tcase_add_test(tc, test_callback_and_target_stop);
    tcase_add_loop_test(tc, test_steady_state_no_malloc, 0, 2);
    tcase_add_test(tc, test_user_model);
    tcase_add_test(tc, test_learns_classes_minibatch);
    tcase_add_test(tc, test_evaluate_by_hand);
    tcase_add_test(tc, test_train_errors);
    tcase_add_test(tc, test_same_seed_same_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(train_suite());
}
