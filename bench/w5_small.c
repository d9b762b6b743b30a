/*
 * bench/w5_small.c - W5, a small-model step where framework overhead dominates:
 * MLP 32-64-64-1, tanh hidden, MSE, f32, batch 16, plain SGD lr 0.01.
 * Inputs and targets uniform [-1, 1), a fixed pool of 64 batches cycled.
 * One step = tape reset, batch onto the tape, forward, loss, backward,
 * SGD update. Prints the median step time and every sample.
 * Usage: w5_small [--reps N] [--warmup N] [--threads T] [--unfused] [--serve]
 * --serve: steps in batches asked for on stdin (bench-util.h), at most --reps.
 * --unfused: tg_backward + tg_nn_optim_step instead of tg_nn_optim_backward_step.
 */
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

enum { BATCH = 16, POOL = 64, N_IN = 32 };

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 2000);
    int warmup = bench_int_opt(argc, argv, "--warmup", 100);
    bool unfused = bench_flag(argc, argv, "--unfused"), serve = bench_flag(argc, argv, "--serve");
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    static float X[POOL][BATCH * N_IN], Y[POOL][BATCH]; /* (BATCH, 32), (BATCH, 1) */
    for (int b = 0; b < POOL; b++) {
        for (int i = 0; i < BATCH * N_IN; i++) X[b][i] = (float)(2 * tg_rng_uniform(&rng) - 1);
        for (int i = 0; i < BATCH; i++) Y[b][i] = (float)(2 * tg_rng_uniform(&rng) - 1);
    }
    int64_t sizes[4] = {N_IN, 64, 64, 1};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_TANH, TG_ACT_NONE, TG_F32, TG_INIT_XAVIER_UNIFORM, &rng);
    struct tg_params *params = tg_nn_mlp_params(mlp);
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_SGD);
    oc.lr = 0.01;
    oc.zero_grad = true; /* the step clears each gradient: no zero-grad pass */
    struct tg_nn_optim *opt = tg_nn_optim_new(params, &oc);
    struct tg_tape *T = tg_tape_new();
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!mlp || !opt || !T || !t) {
        fprintf(stderr, "w5_small: setup failed: %s\n", tg_last_error());
        return 1;
    }
    double loss = 0;
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = -warmup; bench_steps_next(&steps, i, t); i++) {
        int b = (i + warmup) % POOL;
        double t0 = bench_now_ms();
        tg_tape_reset(T);
        struct tg_tensor *x = tg_tape_constant(T, TG_F32, 2, (int64_t[]){BATCH, N_IN}, X[b]);
        struct tg_tensor *y = tg_tape_constant(T, TG_F32, 2, (int64_t[]){BATCH, 1}, Y[b]);
        struct tg_tensor *l = tg_mse(T, tg_nn_mlp_forward(mlp, T, x), y, TG_REDUCE_MEAN);
        if (!l || bench_backward_step(opt, l, unfused)) {
            fprintf(stderr, "w5_small: %s\n", tg_last_error());
            return 1;
        }
        if (i >= 0) t[i] = bench_now_ms() - t0;
        loss = tg_tensor_item(l);
    }
    reps = steps.done;
    if (reps == 0) return 1;
    printf("TG workload=w5 mode=%s reps=%d median_ms=%.5f loss=%.5f", unfused ? "unfused" : "fused",
           reps, bench_median(t, reps), loss);
    bench_print_samples(t, reps);
    tg_nn_optim_free(opt);
    tg_nn_mlp_free(mlp);
    tg_tape_free(T);
    free(t);
    return 0;
}
