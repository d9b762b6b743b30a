/*
 * tests/check_nn.c - layers, initializers, the MLP, optimizers and schedules.
 *
 * Optimizer reference values were printed by PyTorch 1.13 (torch.optim.SGD, Adam,
 * AdamW) with the script quoted above optim_ref[]; schedule and layer values are
 * worked out by hand in the comments next to them.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static void assert_close(double got, double want, double rel, const char *what, int i)
{
    double tol = rel * fmax(1.0, fabs(want));
    ck_assert_msg(fabs(got - want) <= tol, "%s[%d]: got %.17g, want %.17g", what, i, got, want);
}

/* ---- layers ---- */

/* W = [[1, 2, 3], [-1, 0, 0.5]], b = [0.5, -1], x = [1, -1, 2]:
 * W x = [1 - 2 + 6, -1 + 0 + 1] = [5, 0]; z = [5.5, -1]. Second row x' = [0, 1, 0]
 * gives W x' = [2, 0], z' = [2.5, -1]. */
START_TEST(test_linear_vector_and_batch)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *W =
        tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, -1, 0, 0.5});
    struct tg_tensor *b = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, (double[]){0.5, -1});
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, (double[]){1, -1, 2});
    struct tg_tensor *X =
        tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, (double[]){1, -1, 2, 0, 1, 0});
    struct tg_tensor *z = tg_linear(T, x, W, b, TG_ACT_NONE);
    ck_assert_int_eq(tg_tensor_rank(z), 1);
    ck_assert_double_eq(tg_tensor_get(z, 0), 5.5);
    ck_assert_double_eq(tg_tensor_get(z, 1), -1);
    struct tg_tensor *Z = tg_linear(T, X, W, b, TG_ACT_NONE);
    ck_assert_int_eq(tg_tensor_dim(Z, 0), 2);
    ck_assert_int_eq(tg_tensor_dim(Z, 1), 2);
    double want[] = {5.5, -1, 2.5, -1};
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_get(Z, i), want[i]);
    /* one fused node reads W (out, in) as it is, with no copy */
    ck_assert_int_eq(tg_tensor_op(Z), TG_OP_LINEAR);
    struct tg_tensor *nob = tg_linear(T, x, W, NULL, TG_ACT_NONE);
    ck_assert_double_eq(tg_tensor_get(nob, 0), 5);
    /* a wrong width names the shapes */
    struct tg_tensor *bad = tg_tensor_zeros(TG_F64, 1, (int64_t[]){4});
    ck_assert_ptr_null(tg_linear(T, bad, W, b, TG_ACT_NONE));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "(2,3)"));
    ck_assert_ptr_null(tg_linear(NULL, x, W, b, TG_ACT_NONE));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tensor_free(bad);
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tensor_free(x);
    tg_tensor_free(X);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_activations)
{
    struct tg_tape *T = tg_tape_new();
    double xs[] = {-2, 0, 1.5};
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, xs);
    /* by hand: relu, tanh, 1/(1+e^-x), leaky (slope 0.01), log(1+e^x) */
    double want[6][3] = {{-2, 0, 1.5},
                         {0, 0, 1.5},
                         {tanh(-2.0), 0, tanh(1.5)},
                         {1 / (1 + exp(2.0)), 0.5, 1 / (1 + exp(-1.5))},
                         {-0.02, 0, 1.5},
                         {log1p(exp(-2.0)), log(2.0), log1p(exp(1.5))}};
    for (int a = TG_ACT_NONE; a <= TG_ACT_SOFTPLUS; a++) {
        struct tg_tensor *y = tg_nn_activate(T, x, (enum tg_act)a);
        ck_assert_ptr_nonnull(y);
        for (int i = 0; i < 3; i++) assert_close(tg_tensor_get(y, i), want[a][i], 1e-15, "act", a);
        enum tg_act back;
        ck_assert_int_eq(tg_nn_act_parse(tg_nn_act_name((enum tg_act)a), &back), TG_OK);
        ck_assert_int_eq(back, a);
    }
    ck_assert_ptr_eq(tg_nn_activate(T, x, TG_ACT_NONE), x);
    ck_assert_ptr_null(tg_nn_activate(T, x, (enum tg_act)17));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    enum tg_act act;
    ck_assert_int_eq(tg_nn_act_parse("gelu", &act), TG_ERR_VALUE);
    ck_assert_str_eq(tg_nn_act_name((enum tg_act) - 1), "?");
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* ---- initializers ---- */

START_TEST(test_init_scales)
{
    /* fan_in 3, fan_out 5: 1/sqrt 3, sqrt(6/8), sqrt(2/8) = 0.5, sqrt 2, sqrt(2/3) */
    assert_close(tg_nn_init_scale(TG_INIT_UNIFORM, 3, 5), 0.57735026918962576, 1e-15, "u", 0);
    assert_close(tg_nn_init_scale(TG_INIT_XAVIER_UNIFORM, 3, 5), 0.86602540378443865, 1e-15, "xu",
                 0);
    assert_close(tg_nn_init_scale(TG_INIT_XAVIER_NORMAL, 3, 5), 0.5, 1e-15, "xn", 0);
    assert_close(tg_nn_init_scale(TG_INIT_HE_UNIFORM, 3, 5), 1.4142135623730951, 1e-15, "hu", 0);
    assert_close(tg_nn_init_scale(TG_INIT_HE_NORMAL, 3, 5), 0.81649658092772603, 1e-15, "hn", 0);
    ck_assert(isnan(tg_nn_init_scale(TG_INIT_HE_NORMAL, 0, 5)));
    ck_assert(isnan(tg_nn_init_scale((enum tg_nn_init)9, 3, 5)));
}
END_TEST

/* Sample moments of a 300 x 400 draw: uniform kinds stay inside (-a, a) with
 * variance a^2/3, normal kinds have standard deviation s (within 2%). */
START_TEST(test_init_distributions)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 42);
    struct tg_tensor *W = tg_tensor_zeros(TG_F32, 2, (int64_t[]){300, 400});
    for (int k = TG_INIT_UNIFORM; k <= TG_INIT_HE_NORMAL; k++) {
        ck_assert_int_eq(tg_nn_init(W, (enum tg_nn_init)k, 400, 300, &rng), TG_OK);
        double s = tg_nn_init_scale((enum tg_nn_init)k, 400, 300), sum = 0, sq = 0, mx = 0;
        bool normal = k == TG_INIT_XAVIER_NORMAL || k == TG_INIT_HE_NORMAL;
        for (int64_t i = 0; i < 120000; i++) {
            double v = tg_tensor_get(W, i);
            sum += v;
            sq += v * v;
            mx = fmax(mx, fabs(v));
        }
        double mean = sum / 120000, sd = sqrt(sq / 120000 - mean * mean);
        double want_sd = normal ? s : s / sqrt(3.0);
        ck_assert_msg(fabs(sd - want_sd) < 0.02 * want_sd, "kind %d sd %g want %g", k, sd, want_sd);
        ck_assert_msg(fabs(mean) < 0.02 * want_sd, "kind %d mean %g", k, mean);
        if (!normal) ck_assert(mx <= s && mx > 0.99 * s);
    }
    /* the same seed gives the same weights */
    struct tg_tensor *A = tg_tensor_zeros(TG_F64, 1, (int64_t[]){5});
    struct tg_tensor *B = tg_tensor_zeros(TG_F64, 1, (int64_t[]){5});
    tg_rng_seed(&rng, 7);
    tg_nn_init(A, TG_INIT_HE_NORMAL, 5, 1, &rng);
    tg_rng_seed(&rng, 7);
    tg_nn_init(B, TG_INIT_HE_NORMAL, 5, 1, &rng);
    for (int i = 0; i < 5; i++) ck_assert_double_eq(tg_tensor_get(A, i), tg_tensor_get(B, i));
    ck_assert_int_eq(tg_nn_init(A, TG_INIT_HE_NORMAL, 0, 1, &rng), TG_ERR_VALUE);
    ck_assert_int_eq(tg_nn_init(A, TG_INIT_HE_NORMAL, 5, 1, NULL), TG_ERR_NULL);
    tg_tensor_free(A);
    tg_tensor_free(B);
    tg_tensor_free(W);
}
END_TEST

/* ---- the MLP ---- */

START_TEST(test_mlp_structure)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    int64_t sizes[] = {4, 6, 5, 2};
    struct tg_nn_mlp *m =
        tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F64, TG_INIT_HE_UNIFORM, &rng);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tg_nn_mlp_layers(m), 3);
    struct tg_params *p = tg_nn_mlp_params(m);
    ck_assert_uint_eq(tg_params_count(p), 6);
    const char *names[] = {"layers.0.weight", "layers.0.bias",   "layers.1.weight",
                           "layers.1.bias",   "layers.2.weight", "layers.2.bias"};
    for (int i = 0; i < 6; i++) ck_assert_str_eq(tg_params_name(p, (size_t)i), names[i]);
    ck_assert_int_eq(tg_params_numel(p), 4 * 6 + 6 + 6 * 5 + 5 + 5 * 2 + 2);
    for (int k = 0; k < 3; k++) {
        struct tg_tensor *W = tg_nn_mlp_weight(m, k), *b = tg_nn_mlp_bias(m, k);
        ck_assert_ptr_eq(W, tg_params_tensor(p, (size_t)(2 * k)));
        ck_assert_int_eq(tg_tensor_dim(W, 0), sizes[k + 1]); /* (out, in) */
        ck_assert_int_eq(tg_tensor_dim(W, 1), sizes[k]);
        ck_assert(tg_tensor_requires_grad(W) && tg_tensor_requires_grad(b));
        for (int64_t i = 0; i < tg_tensor_numel(b); i++)
            ck_assert_double_eq(tg_tensor_get(b, i), 0);
        double a = sqrt(6.0 / (double)sizes[k]);
        for (int64_t i = 0; i < tg_tensor_numel(W); i++) ck_assert(fabs(tg_tensor_get(W, i)) < a);
    }
    ck_assert_int_eq(tg_nn_mlp_act(m, 1), TG_ACT_RELU);
    ck_assert_int_eq(tg_nn_mlp_act(m, 2), TG_ACT_NONE);
    ck_assert_ptr_null(tg_nn_mlp_weight(m, 3));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    struct tg_nn_module model = tg_nn_mlp_module(m);
    ck_assert_ptr_eq(model.params, p);
    ck_assert_ptr_eq(model.self, m);
    tg_nn_mlp_free(m);
    tg_nn_mlp_free(NULL);
    ck_assert_ptr_null(tg_nn_mlp_new(sizes, 1, TG_ACT_RELU, TG_ACT_NONE, TG_F64, 0, &rng));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    sizes[2] = 0;
    ck_assert_ptr_null(tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F64, 0, &rng));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "sizes[2]"));
    ck_assert_ptr_null(tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F64, 0, NULL));
}
END_TEST

/* The forward pass against the document's formula evaluated in plain C, for one
 * sample (vector) and for the same samples as rows of a batch. */
START_TEST(test_mlp_forward_formula)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 11);
    int64_t sizes[] = {3, 4, 2};
    struct tg_nn_mlp *m =
        tg_nn_mlp_new(sizes, 3, TG_ACT_TANH, TG_ACT_SIGMOID, TG_F64, TG_INIT_XAVIER_NORMAL, &rng);
    tg_tensor_set(tg_nn_mlp_bias(m, 0), 1, 0.25); /* make the biases matter */
    tg_tensor_set(tg_nn_mlp_bias(m, 1), 0, -0.5);
    double xs[2][3] = {{0.5, -1, 2}, {-0.3, 0.8, 0.1}};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *X = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 3}, &xs[0][0]);
    struct tg_tensor *Yb = tg_nn_mlp_forward(m, T, X);
    ck_assert_int_eq(tg_tensor_dim(Yb, 1), 2);
    for (int r = 0; r < 2; r++) {
        struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){3}, xs[r]);
        struct tg_tensor *y = tg_nn_mlp_forward(m, T, x);
        double h[4], out[2];
        for (int j = 0; j < 4; j++) { /* y1 = tanh(W0 x + b0) */
            double z = tg_tensor_get(tg_nn_mlp_bias(m, 0), j);
            for (int i = 0; i < 3; i++)
                z += tg_tensor_get(tg_nn_mlp_weight(m, 0), j * 3 + i) * xs[r][i];
            h[j] = tanh(z);
        }
        for (int j = 0; j < 2; j++) { /* Y = sigmoid(W1 y1 + b1) */
            double z = tg_tensor_get(tg_nn_mlp_bias(m, 1), j);
            for (int i = 0; i < 4; i++)
                z += tg_tensor_get(tg_nn_mlp_weight(m, 1), j * 4 + i) * h[i];
            out[j] = 1 / (1 + exp(-z));
        }
        for (int j = 0; j < 2; j++) {
            assert_close(tg_tensor_get(y, j), out[j], 1e-14, "vector", j);
            assert_close(tg_tensor_get(Yb, r * 2 + j), out[j], 1e-14, "batch", j);
        }
        tg_tensor_free(x);
    }
    tg_tensor_free(X);
    tg_tape_free(T);
    tg_nn_mlp_free(m);
}
END_TEST

/* ---- optimizers against PyTorch ----
 *
 * Printed by /usr/bin/python3 (torch 1.13.1, float64) with:
 *
 *   import torch
 *   torch.set_default_dtype(torch.float64)
 *   P0 = [0.5, -1.25, 2.0, 0.75, -0.3, 1.1, 0.0]          # p0 (2,2) then p1 (3)
 *   G = [[0.2, -0.4, 1.5, -0.05, 0.9, -2.0, 0.3],
 *        [-0.1, 0.6, 0.7, 0.25, -0.8, 1.0, -0.6],
 *        [0.4, 0.0, -1.2, 0.5, 0.3, -0.5, 0.2]]
 *   SCALE = 0.5
 *   cfgs = [
 *    ("sgd",        lambda p: torch.optim.SGD(p, lr=0.1)),
 *    ("sgd_wd",     lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)),
 *    ("mom",        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
 *    ("mom_wd",     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
 *    ("nesterov",   lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
 *    ("nesterov_wd",lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
 *                                              weight_decay=0.01)),
 *    ("adam",       lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
 *    ("adam_wd",    lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6,
 *                                              weight_decay=0.1)),
 *    ("adamw",      lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
 *                                               weight_decay=0.1)),
 *   ]
 *   for name, mk in cfgs:
 *       p0 = torch.tensor(P0[:4]).reshape(2, 2).requires_grad_()
 *       p1 = torch.tensor(P0[4:]).requires_grad_()
 *       opt = mk([p0, p1])
 *       rows = []
 *       for k in range(3):
 *           g = torch.tensor(G[k]) * SCALE
 *           p0.grad = g[:4].reshape(2, 2).clone(); p1.grad = g[4:].clone()
 *           opt.step()
 *           if k in (0, 2):
 *               rows.append([repr(v) for v in
 *                            torch.cat([p0.detach().flatten(), p1.detach()]).tolist()])
 *       print("/" "* %s *" "/ {{%s},\n  {%s}}," % (name, ", ".join(rows[0]), ", ".join(rows[1])))
 *
 * Our side passes the UNSCALED G as the gradient and grad_scale = SCALE.
 */
static const double P0[7] = {0.5, -1.25, 2.0, 0.75, -0.3, 1.1, 0.0};
static const double G[3][7] = {{0.2, -0.4, 1.5, -0.05, 0.9, -2.0, 0.3},
                               {-0.1, 0.6, 0.7, 0.25, -0.8, 1.0, -0.6},
                               {0.4, 0.0, -1.2, 0.5, 0.3, -0.5, 0.2}};

struct optim_case {
    const char *name;
    struct tg_nn_optim_config cfg;
    double after[2][7]; /* after step 1 and after step 3 */
};

#define SGD_(wd)                                                                                   \
    {                                                                                              \
        TG_OPTIM_SGD, 0.1, 0, false, 0, 0, 0, wd, false                                            \
    }
#define MOM_(nest, wd)                                                                             \
    {                                                                                              \
        TG_OPTIM_MOMENTUM, 0.1, 0.9, nest, 0, 0, 0, wd, false                                      \
    }
#define ADAM_(k, b1, b2, e, wd)                                                                    \
    {                                                                                              \
        k, 0.01, 0, false, b1, b2, e, wd, false                                                    \
    }

static const struct optim_case optim_ref[] = {
    {"sgd",
     SGD_(0),
     {{0.49, -1.23, 1.925, 0.7525, -0.345, 1.2000000000000002, -0.015},
      {0.475, -1.26, 1.9500000000000002, 0.715, -0.32, 1.175, 0.005}}},
    {"sgd_wd",
     SGD_(0.01),
     {{0.4895, -1.22875, 1.923, 0.75175, -0.3447, 1.1989, -0.015},
      {0.4735164895, -1.25626372875, 1.944190923, 0.7127597517500001, -0.3190509447,
       1.1715533989000002, 0.004999984999999998}}},
    {"mom",
     MOM_(false, 0),
     {{0.49, -1.23, 1.925, 0.7525, -0.345, 1.2000000000000002, -0.015},
      {0.4624, -1.2528, 1.79025, 0.708025, -0.36095, 1.3010000000000002, 0.006349999999999998}}},
    {"mom_wd",
     MOM_(false, 0.01),
     {{0.4895, -1.22875, 1.923, 0.75175, -0.3447, 1.1989, -0.015},
      {0.4596303895, -1.24583947875, 1.779359523, 0.70382410175, -0.3591374847, 1.2945043789000001,
       0.006376984999999993}}},
    {"nesterov",
     MOM_(true, 0),
     {{0.481, -1.212, 1.8575, 0.75475, -0.3855, 1.29, -0.028499999999999998},
      {0.44116, -1.2625199999999999, 1.7612249999999998, 0.6772225000000001, -0.374855, 1.3559,
       0.010714999999999997}}},
    {"nesterov_wd",
     MOM_(true, 0.01),
     {{0.48005, -1.209625, 1.8537, 0.753325, -0.38493, 1.28791, -0.028499999999999998},
      {0.43722731198049997, -1.2525736492462498, 1.746052987857, 0.67121557300325, -0.3721257689973,
       1.3462127771551, 0.010761067114999993}}},
    {"adam",
     ADAM_(TG_OPTIM_ADAM, 0.9, 0.999, 1e-8, 0),
     {{0.4900000009999999, -1.2400000005, 1.9900000001333333, 0.7599999960000016,
       -0.30999999977777776, 1.1099999999, -0.009999999333333377},
      {0.4807555154351381, -1.2443917606900867, 1.9787639180807968, 0.7462246361815958,
       -0.311653623589704, 1.1160676616935155, -0.005453263037953834}}},
    {"adam_wd",
     ADAM_(TG_OPTIM_ADAM, 0.8, 0.99, 1e-6, 0.1),
     {{0.4900000666662222, -1.2400000307691361, 1.9900000105263047, 0.7400001999960001,
       -0.3099999761905329, 1.1099999887640577, -0.009999933333777774},
      {0.47536582795512733, -1.234722749807416, 1.976684515895793, 0.7213636865341976,
       -0.3092598689371705, 1.1121734251638142, -0.004858824862616428}}},
    {"adamw",
     ADAM_(TG_OPTIM_ADAMW, 0.9, 0.999, 1e-8, 0.1),
     {{0.4895000009999999, -1.2387500005, 1.9880000001333333, 0.7592499960000015,
       -0.30969999977777773, 1.1088999999, -0.009999999333333377},
      {0.4792796683031988, -1.240663022421023, 1.972799125631209, 0.7439628789807493,
       -0.31073447147568223, 1.1127483072233524, -0.00543693407440252}}},
};
#define N_OPTIM_CASES ((int)(sizeof optim_ref / sizeof optim_ref[0]))

/* p0 (2,2) and p1 (3) as a map, with gradients. */
static struct tg_params *make_pair(enum tg_dtype dt, struct tg_tensor **p0, struct tg_tensor **p1)
{
    struct tg_params *p = tg_params_new();
    *p0 = tg_tensor_from_f64(dt, 2, (int64_t[]){2, 2}, P0);
    *p1 = tg_tensor_from_f64(dt, 1, (int64_t[]){3}, P0 + 4);
    tg_tensor_set_requires_grad(*p0, true);
    tg_tensor_set_requires_grad(*p1, true);
    tg_params_add_owned(p, "p0", *p0);
    tg_params_add_owned(p, "p1", *p1);
    return p;
}

static void set_grads(struct tg_tensor *p0, struct tg_tensor *p1, const double *g)
{
    bool f64 = tg_tensor_dtype(p0) == TG_F64;
    for (int i = 0; i < 7; i++) {
        struct tg_tensor *t = i < 4 ? p0 : p1;
        void *gb = tg_tensor_grad_mut(t);
        int j = i < 4 ? i : i - 4;
        if (f64)
            ((double *)gb)[j] = g[i];
        else
            ((float *)gb)[j] = (float)g[i];
    }
}

static void check_values(struct tg_tensor *p0, struct tg_tensor *p1, const double *want, double rel,
                         const char *name)
{
    for (int i = 0; i < 7; i++) {
        double got = i < 4 ? tg_tensor_get(p0, i) : tg_tensor_get(p1, i - 4);
        assert_close(got, want[i], rel, name, i);
    }
}

START_TEST(test_optim_vs_pytorch)
{
    const struct optim_case *c = &optim_ref[_i];
    for (int zero = 0; zero < 2; zero++) { /* zero_grad changes no update */
        struct tg_tensor *p0, *p1;
        struct tg_params *p = make_pair(TG_F64, &p0, &p1);
        struct tg_nn_optim_config cfg = c->cfg;
        cfg.zero_grad = zero;
        struct tg_nn_optim *opt = tg_nn_optim_new(p, &cfg);
        ck_assert_ptr_nonnull(opt);
        for (int k = 0; k < 3; k++) {
            set_grads(p0, p1, G[k]);
            ck_assert_int_eq(tg_nn_optim_step(opt, 0.5), TG_OK);
            if (k == 0) check_values(p0, p1, c->after[0], 1e-14, c->name);
            for (int64_t i = 0; zero && i < tg_tensor_numel(p0); i++)
                ck_assert_double_eq(tg_tensor_grad_get(p0, i), 0);
            for (int64_t i = 0; zero && i < tg_tensor_numel(p1); i++)
                ck_assert_double_eq(tg_tensor_grad_get(p1, i), 0);
        }
        check_values(p0, p1, c->after[1], 1e-13, c->name);
        ck_assert_int_eq(tg_nn_optim_steps(opt), 3);
        tg_nn_optim_free(opt);
        tg_params_free(p);
    }
}
END_TEST

/* f32 parameters: the same steps, to f32 precision (state is kept in f64). */
START_TEST(test_optim_f32)
{
    const struct optim_case *c = &optim_ref[_i];
    struct tg_tensor *p0, *p1;
    struct tg_params *p = make_pair(TG_F32, &p0, &p1);
    struct tg_nn_optim *opt = tg_nn_optim_new(p, &c->cfg);
    for (int k = 0; k < 3; k++) {
        set_grads(p0, p1, G[k]);
        ck_assert_int_eq(tg_nn_optim_step(opt, 0.5), TG_OK);
    }
    check_values(p0, p1, c->after[1], 2e-6, c->name);
    tg_nn_optim_free(opt);
    tg_params_free(p);
}
END_TEST

/* The same steps on one long tensor: P0 and G tiled 9 times (63 elements), so the
 * update loops run their vector bodies and their remainders whatever the vector width;
 * the rules are elementwise, so element i must end at PyTorch's after[1][i % 7]. Even
 * cases clear the gradient in the step, both dtypes. */
START_TEST(test_optim_tiled)
{
    enum { N = 63 };
    const struct optim_case *c = &optim_ref[_i];
    for (int f64 = 0; f64 < 2; f64++) {
        double p0[N];
        for (int i = 0; i < N; i++) p0[i] = P0[i % 7];
        struct tg_params *p = tg_params_new();
        struct tg_tensor *t = tg_tensor_from_f64(f64 ? TG_F64 : TG_F32, 1, (int64_t[]){N}, p0);
        tg_tensor_set_requires_grad(t, true);
        tg_params_add_owned(p, "t", t);
        struct tg_nn_optim_config cfg = c->cfg;
        cfg.zero_grad = _i % 2 == 0;
        struct tg_nn_optim *opt = tg_nn_optim_new(p, &cfg);
        ck_assert_ptr_nonnull(opt);
        for (int k = 0; k < 3; k++) {
            for (int i = 0; i < N; i++)
                if (f64)
                    ((double *)tg_tensor_grad_mut(t))[i] = G[k][i % 7];
                else
                    ((float *)tg_tensor_grad_mut(t))[i] = (float)G[k][i % 7];
            ck_assert_int_eq(tg_nn_optim_step(opt, 0.5), TG_OK);
        }
        for (int i = 0; i < N; i++) {
            assert_close(tg_tensor_get(t, i), c->after[1][i % 7], f64 ? 1e-13 : 2e-6, c->name, i);
            double g = f64 ? G[2][i % 7] : (double)(float)G[2][i % 7]; /* the last gradient */
            ck_assert_double_eq(tg_tensor_grad_get(t, i), cfg.zero_grad ? 0 : g);
        }
        tg_nn_optim_free(opt);
        tg_params_free(p);
    }
}
END_TEST

START_TEST(test_optim_rules)
{
    struct tg_tensor *p0, *p1;
    struct tg_params *p = make_pair(TG_F64, &p0, &p1);
    struct tg_nn_optim_config c = tg_nn_optim_defaults(TG_OPTIM_ADAMW);
    ck_assert_double_eq(c.lr, 1e-3);
    ck_assert_double_eq(c.weight_decay, 1e-2);
    ck_assert_double_eq(c.beta2, 0.999);
    c.beta1 = 1.0;
    ck_assert_ptr_null(tg_nn_optim_new(p, &c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "betas"));
    c = tg_nn_optim_defaults(TG_OPTIM_SGD);
    c.lr = -1;
    ck_assert_ptr_null(tg_nn_optim_new(p, &c));
    c.lr = 0.1;
    ck_assert_ptr_null(tg_nn_optim_new(NULL, &c));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    struct tg_nn_optim *opt = tg_nn_optim_new(p, &c);
    /* p1 without requires-grad is skipped; p0 moves by lr * g */
    tg_tensor_set_requires_grad(p1, false);
    for (int i = 0; i < 4; i++) ((double *)tg_tensor_grad_mut(p0))[i] = G[0][i];
    ck_assert_int_eq(tg_nn_optim_step(opt, 1.0), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_get(p0, 0), 0.5 - 0.1 * 0.2, 1e-15);
    ck_assert_double_eq(tg_tensor_get(p1, 0), -0.3);
    ck_assert_int_eq(tg_nn_optim_step(opt, NAN), TG_ERR_VALUE);
    ck_assert_int_eq(tg_nn_optim_set_lr(opt, -0.5), TG_ERR_VALUE);
    ck_assert_int_eq(tg_nn_optim_set_lr(opt, 0.25), TG_OK);
    ck_assert_double_eq(tg_nn_optim_lr(opt), 0.25);
    /* the map changed under the optimizer: refused, nothing updated */
    tg_params_add_owned(p, "p2", tg_tensor_zeros(TG_F64, 1, (int64_t[]){1}));
    double before = tg_tensor_get(p0, 0);
    ck_assert_int_eq(tg_nn_optim_step(opt, 1.0), TG_ERR_STATE);
    ck_assert_double_eq(tg_tensor_get(p0, 0), before);
    tg_nn_optim_free(opt);
    tg_nn_optim_free(NULL);
    tg_params_free(p);
}
END_TEST

/* ---- schedules (hand values) ---- */

START_TEST(test_schedules)
{
    struct tg_nn_lr_schedule s = {0};
    ck_assert_double_eq(tg_nn_lr_at(&s, 0.3, 17), 0.3);
    s = (struct tg_nn_lr_schedule){.kind = TG_LR_STEP, .step_size = 3, .gamma = 0.5};
    /* epochs 0-2: 0.1; 3-5: 0.05; 6-8: 0.025 */
    ck_assert_double_eq(tg_nn_lr_at(&s, 0.1, 0), 0.1);
    ck_assert_double_eq(tg_nn_lr_at(&s, 0.1, 2), 0.1);
    ck_assert_double_eq(tg_nn_lr_at(&s, 0.1, 3), 0.05);
    ck_assert_double_eq(tg_nn_lr_at(&s, 0.1, 8), 0.025);
    s = (struct tg_nn_lr_schedule){.kind = TG_LR_COSINE, .t_max = 4, .eta_min = 0.1};
    /* 0.1 + 0.9 (1 + cos(pi e / 4)) / 2: e=0: 1; e=1: 0.1 + 0.45 (1 + 1/sqrt 2)
     * = 0.86819805153394639; e=2: 0.55; e=4: 0.1; e=6 (past t_max): 0.55 again */
    assert_close(tg_nn_lr_at(&s, 1.0, 0), 1.0, 1e-15, "cos", 0);
    assert_close(tg_nn_lr_at(&s, 1.0, 1), 0.86819805153394639, 1e-15, "cos", 1);
    assert_close(tg_nn_lr_at(&s, 1.0, 2), 0.55, 1e-15, "cos", 2);
    assert_close(tg_nn_lr_at(&s, 1.0, 4), 0.1, 1e-15, "cos", 4);
    assert_close(tg_nn_lr_at(&s, 1.0, 6), 0.55, 1e-15, "cos", 6);
    ck_assert(isnan(tg_nn_lr_at(&s, 1.0, -1)));
    s.t_max = 0;
    ck_assert(isnan(tg_nn_lr_at(&s, 1.0, 1)));
    s = (struct tg_nn_lr_schedule){.kind = TG_LR_STEP};
    ck_assert(isnan(tg_nn_lr_at(&s, 1.0, 1)));
    ck_assert(isnan(tg_nn_lr_at(NULL, 1.0, 1)));
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("layers");
    tcase_add_test(tc, test_linear_vector_and_batch);
    tcase_add_test(tc, test_activations);
    tcase_add_test(tc, test_init_scales);
    tcase_add_test(tc, test_init_distributions);
    tcase_add_test(tc, test_mlp_structure);
    tcase_add_test(tc, test_mlp_forward_formula);
    suite_add_tcase(s, tc);
    tc = tcase_create("optim");
    tcase_add_loop_test(tc, test_optim_vs_pytorch, 0, N_OPTIM_CASES);
    tcase_add_loop_test(tc, test_optim_f32, 0, N_OPTIM_CASES);
    tcase_add_loop_test(tc, test_optim_tiled, 0, N_OPTIM_CASES);
    tcase_add_test(tc, test_optim_rules);
    tcase_add_test(tc, test_schedules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(nn_suite());
}
