/*
 * tests/jvp_cost.c - what a tg_jvp costs against one tg_grad, on W5's small MLP
 * (32-64-64-1, tanh, MSE, f32, batch 16), or with --big on F's MLP shape
 * (784-256-128-10, tanh, MSE against random targets, f32, batch 128);
 * docs/jacobian.md has the figures.
 *
 * Each timed step resets the tape, records the forward pass and then runs one of:
 *   forward   nothing more (the recording alone)
 *   backward  tg_backward(loss) (the fast kernels)
 *   grad      tg_grad(loss, all parameters)
 *   jvp_loss  tg_jvp(loss, all parameters, v): the directional derivative
 *   jvp_out   tg_jvp(network output (batch, outputs), all parameters, v)
 * The five run in turn, `--reps` steps each, for `--rounds` rounds (alternating,
 * so that load changes on a shared machine hit them alike); it prints the median
 * step time of each over all rounds and the median of the per-round ratios to
 * grad. As a test (suite unit) it runs a few steps and checks that jvp_loss
 * equals <grad, v>.
 * Usage: jvp_cost [--reps N] [--rounds N] [--big]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tapegrad/tapegrad.h>

enum { MAX_BATCH = 128, MAX_IN = 784, MAX_OUT = 10, MODES = 5 };
static const char *mode_name[MODES] = {"forward", "backward", "grad", "jvp_loss", "jvp_out"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int opt(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : def;
    return def;
}

struct model {
    struct tg_nn_mlp *mlp;
    struct tg_tensor *p[8], *v[8], *grads[8];
    int np;
    int64_t batch, n_in, n_out;
    float X[MAX_BATCH * MAX_IN], Y[MAX_BATCH * MAX_OUT];
};

/* One step of mode m; with dot, *dot gets the scalar it computed (the check:
 * <grad, v> for grad, outside the timed steps). */
static int step(struct model *M, struct tg_tape *T, int m, double *dot)
{
    tg_tape_reset(T);
    struct tg_tensor *x = tg_tape_constant(T, TG_F32, 2, (int64_t[]){M->batch, M->n_in}, M->X);
    struct tg_tensor *y = tg_tape_constant(T, TG_F32, 2, (int64_t[]){M->batch, M->n_out}, M->Y);
    struct tg_tensor *out = tg_nn_mlp_forward(M->mlp, T, x), *jv = NULL;
    struct tg_tensor *l = tg_mse(T, out, y, TG_REDUCE_MEAN);
    if (!l) return 1;
    enum tg_status st = TG_OK;
    if (dot) *dot = 0;
    switch (m) {
    case 1:
        st = tg_backward(l, NULL);
        break;
    case 2:
        st = tg_grad(1, &l, NULL, M->np, M->p, NULL, M->grads);
        for (int i = 0; !st && dot && i < M->np; i++)
            for (int64_t k = 0; k < tg_tensor_numel(M->p[i]); k++)
                *dot += tg_tensor_get(M->grads[i], k) * tg_tensor_get(M->v[i], k);
        break;
    case 3:
        st = tg_jvp(1, &l, M->np, M->p, M->v, NULL, &jv);
        if (!st && dot) *dot = tg_tensor_item(jv);
        break;
    case 4:
        st = tg_jvp(1, &out, M->np, M->p, M->v, NULL, &jv);
        break;
    }
    if (st) fprintf(stderr, "jvp_cost: %s: %s\n", mode_name[m], tg_last_error());
    return st != TG_OK;
}

int main(int argc, char **argv)
{
    int reps = opt(argc, argv, "--reps", 3), rounds = opt(argc, argv, "--rounds", 1);
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    static struct model M;
    bool big = false;
    for (int i = 1; i < argc; i++) big |= !strcmp(argv[i], "--big");
    int64_t sizes[4] = {32, 64, 64, 1};
    if (big) memcpy(sizes, (int64_t[]){784, 256, 128, 10}, sizeof sizes);
    M.batch = big ? 128 : 16;
    M.n_in = sizes[0];
    M.n_out = sizes[3];
    for (int64_t i = 0; i < M.batch * M.n_in; i++) M.X[i] = (float)(2 * tg_rng_uniform(&rng) - 1);
    for (int64_t i = 0; i < M.batch * M.n_out; i++) M.Y[i] = (float)(2 * tg_rng_uniform(&rng) - 1);
    M.mlp = tg_nn_mlp_new(sizes, 4, TG_ACT_TANH, TG_ACT_NONE, TG_F32, TG_INIT_XAVIER_UNIFORM, &rng);
    struct tg_params *ps = M.mlp ? tg_nn_mlp_params(M.mlp) : NULL;
    struct tg_tape *T = tg_tape_new();
    if (!ps || !T || tg_params_count(ps) > 8) return 1;
    M.np = (int)tg_params_count(ps);
    for (int i = 0; i < M.np; i++) {
        M.p[i] = tg_params_tensor(ps, i);
        M.v[i] =
            tg_tensor_uniform(TG_F32, tg_tensor_rank(M.p[i]), tg_tensor_shape(M.p[i]), &rng, -1, 1);
        if (!M.v[i]) return 1;
    }
    /* the check: the directional derivative equals <grad, v> */
    double g, j;
    if (step(&M, T, 2, &g) || step(&M, T, 3, &j)) return 1;
    if (!(fabs(g - j) <= 1e-4 * (1 + fabs(g)))) {
        fprintf(stderr, "jvp_cost: jvp of the loss %.9g != <grad, v> %.9g\n", j, g);
        return 1;
    }
    double *t[MODES], *ratio[MODES];
    for (int m = 0; m < MODES; m++) {
        t[m] = malloc(sizeof *t[m] * (size_t)reps * (size_t)rounds);
        ratio[m] = malloc(sizeof *ratio[m] * (size_t)rounds);
        if (!t[m] || !ratio[m]) return 1;
    }
    for (int r = 0; r < rounds; r++) {
        double med[MODES];
        for (int m = 0; m < MODES; m++) {
            for (int i = 0; i < reps / 10 + 1; i++) /* warm up */
                if (step(&M, T, m, NULL)) return 1;
            double *s = t[m] + (size_t)r * (size_t)reps;
            for (int i = 0; i < reps; i++) {
                double t0 = now_ms();
                if (step(&M, T, m, NULL)) return 1;
                s[i] = now_ms() - t0;
            }
            double *c = malloc(sizeof *c * (size_t)reps);
            if (!c) return 1;
            memcpy(c, s, sizeof *c * (size_t)reps);
            med[m] = median(c, reps);
            free(c);
        }
        for (int m = 0; m < MODES; m++) ratio[m][r] = med[m] / med[2];
    }
    printf("jvp_cost: MLP %lld-%lld-%lld-%lld tanh, MSE, f32, batch %lld; %d rounds x %d steps "
           "per mode\n",
           (long long)sizes[0], (long long)sizes[1], (long long)sizes[2], (long long)sizes[3],
           (long long)M.batch, rounds, reps);
    printf("%-10s %12s %16s\n", "mode", "median ms", "ratio to grad");
    for (int m = 0; m < MODES; m++)
        printf("%-10s %12.4f %16.2f\n", mode_name[m], median(t[m], reps * rounds),
               median(ratio[m], rounds));
    for (int m = 0; m < MODES; m++) {
        free(t[m]);
        free(ratio[m]);
    }
    for (int i = 0; i < M.np; i++) tg_tensor_free(M.v[i]);
    tg_tape_free(T);
    tg_nn_mlp_free(M.mlp);
    return 0;
}
