/*
 * bench/w1_mlp.c - W1, a tensor MLP training step: 784-512-512-10, ReLU hidden,
 * softmax cross-entropy (mean over the batch), f32, batch 128, plain SGD lr 0.01.
 * Inputs uniform [0, 1), labels uniform 0..9, a fixed pool of 60 batches cycled.
 *
 * One step = tape reset, the batch copied onto the tape, forward (three fused
 * linear ops), loss, backward and SGD update (tg_nn_optim_backward_step: the update
 * inside the weight-gradient GEMMs; --unfused: tg_backward, then tg_nn_optim_step).
 * With --floor (and BLAS), it also replays the step's eight GEMMs (gemm-floor.h)
 * right after every timed step and times them: floor_median_ms and
 * floor_samples_ms (the buffers are allocated before rss_base, so they are not
 * counted in the model's memory). Off by default: the replay's 5.5 MB of buffers
 * push the model's out of the caches and slow the step by about 1%.
 * Prints the median step time, every sample, and the memory figures of issue 6:
 *   model_mib   parameters + gradients + one step's tape (values, gradients, op data)
 *   rss_base_mib the process before the model exists (libraries, the data pool)
 *   rss_peak_mib the peak resident size (VmHWM) after all steps
 *   rss_model_mib = peak - base, which must stay <= 1.5 * model_mib + 20 (mem_ok=1)
 *   mallocs_steady  allocations during the last 50 steps (must be 0)
 * OpenBLAS threads come from OPENBLAS_NUM_THREADS (bench/run sets it).
 * Usage: w1_mlp [--reps N] [--warmup N] [--threads T] [--unfused] [--serve] [--floor]
 * --serve: steps in batches asked for on stdin (bench-util.h), at most --reps.
 */
#include <stdlib.h>
#include <tapegrad/tapegrad.h>
#include "bench-util.h"
#if TG_BENCH_FLOOR
#include "gemm-floor.h"
#endif

enum { BATCH = 128, POOL = 60, N_IN = 784, N_OUT = 10 };

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 200);
    int warmup = bench_int_opt(argc, argv, "--warmup", 20);
    bool unfused = bench_flag(argc, argv, "--unfused"), serve = bench_flag(argc, argv, "--serve");
    bool with_floor = bench_flag(argc, argv, "--floor");
#if !TG_BENCH_FLOOR
    (void)with_floor;
#endif
    bench_count_mallocs();
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    float *X = malloc(sizeof *X * (size_t)BATCH * N_IN * POOL); /* (POOL*BATCH, 784) */
    int64_t *Y = malloc(sizeof *Y * (size_t)BATCH * POOL);      /* (POOL*BATCH) */
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!X || !Y || !t) return 1;
#if TG_BENCH_FLOOR
    struct floor_bufs fb = {0};
    double *ft = malloc(sizeof *ft * (size_t)reps);
    if (!ft || (with_floor && !floor_new(&fb))) return 1;
#endif
    for (size_t i = 0; i < (size_t)BATCH * N_IN * POOL; i++) X[i] = (float)tg_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)BATCH * POOL; i++) Y[i] = (int64_t)tg_rng_below(&rng, N_OUT);
    double rss_base = bench_status_mib("VmRSS");

    int64_t sizes[4] = {N_IN, 512, 512, N_OUT};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng);
    struct tg_params *params = tg_nn_mlp_params(mlp);
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_SGD);
    oc.lr = 0.01;
    oc.zero_grad = true; /* the step clears each gradient: no zero-grad pass */
    struct tg_nn_optim *opt = tg_nn_optim_new(params, &oc);
    struct tg_tape *T = tg_tape_new();
    if (!mlp || !opt || !T) {
        fprintf(stderr, "w1_mlp: setup failed: %s\n", tg_last_error());
        return 1;
    }
    /* i < 0: warm-up; timed steps are numbered 0.. as they run (in serve mode, in
     * batches asked for on stdin, up to --reps in all) */
    long *mallocs_at = malloc(sizeof *mallocs_at * (size_t)reps); /* bench_n_malloc before step i */
    if (!mallocs_at) return 1;
    double loss = 0;
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = -warmup; bench_steps_next(&steps, i, t); i++) {
        if (i >= 0) mallocs_at[i] = bench_n_malloc;
        int b = (i + warmup) % POOL;
        double t0 = bench_now_ms();
        tg_tape_reset(T);
        struct tg_tensor *x =
            tg_tape_constant(T, TG_F32, 2, (int64_t[]){BATCH, N_IN}, X + (size_t)b * BATCH * N_IN);
        struct tg_tensor *logits = tg_nn_mlp_forward(mlp, T, x);
        struct tg_tensor *l =
            tg_cross_entropy_idx(T, logits, Y + (size_t)b * BATCH, BATCH, TG_REDUCE_MEAN);
        if (!l || bench_backward_step(opt, l, unfused)) {
            fprintf(stderr, "w1_mlp: %s\n", tg_last_error());
            return 1;
        }
        if (i >= 0) t[i] = bench_now_ms() - t0;
        loss = tg_tensor_item(l);
#if TG_BENCH_FLOOR
        if (with_floor) {
            t0 = bench_now_ms();
            floor_step(&fb);
            if (i >= 0) ft[i] = bench_now_ms() - t0;
        }
#endif
    }
    reps = steps.done;
    if (reps == 0) return 1;
    long mallocs_steady = bench_n_malloc - mallocs_at[reps > 50 ? reps - 50 : 0];
    free(mallocs_at);
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    double params_mib = (double)tg_params_numel(params) * 4 / (1 << 20);
    double model_mib = 2 * params_mib + (double)st.bytes_high_water / (1 << 20);
    double peak = bench_status_mib("VmHWM"), rss_model = peak - rss_base;
    printf(
        "TG workload=w1 mode=%s reps=%d median_ms=%.4f loss=%.4f model_mib=%.2f rss_base_mib=%.1f "
        "rss_peak_mib=%.1f rss_model_mib=%.1f mem_ok=%d mallocs_steady=%ld",
        unfused ? "unfused" : "fused", reps, bench_median(t, reps), loss, model_mib, rss_base, peak,
        rss_model, rss_model <= 1.5 * model_mib + 20, mallocs_steady);
#if TG_BENCH_FLOOR
    if (with_floor) {
        printf(" floor_median_ms=%.4f", bench_median(ft, reps));
        bench_print_list("floor_samples_ms", ft, reps);
        floor_free(&fb);
    }
    free(ft);
#endif
    bench_print_samples(t, reps);
    tg_nn_optim_free(opt);
    tg_nn_mlp_free(mlp);
    tg_tape_free(T);
    free(X);
    free(Y);
    free(t);
    return 0;
}
