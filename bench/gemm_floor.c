/*
 * bench/gemm_floor.c - the GEMM floor of W1 alone: the eight sgemm calls of one
 * training step (bench/gemm-floor.h) replayed back to back, so that a framework's
 * step time can be compared with the time the same BLAS needs for the matrix
 * products alone (docs/performance.md). Threads: OpenBLAS reads
 * OPENBLAS_NUM_THREADS; bench/run sets it.
 * Usage: gemm_floor [--reps N] [--warmup N] [--serve] (serve mode: bench-util.h)
 */
#include "bench-util.h"
#include "gemm-floor.h"

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 200);
    int warmup = bench_int_opt(argc, argv, "--warmup", 20);
    bool serve = bench_flag(argc, argv, "--serve");
    struct floor_bufs b;
    double *t = malloc((size_t)reps * sizeof *t);
    if (!floor_new(&b) || !t) {
        floor_free(&b);
        free(t);
        return 1;
    }
    for (int i = 0; i < warmup; i++) floor_step(&b);
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = 0; bench_steps_next(&steps, i, t); i++) {
        double t0 = bench_now_ms();
        floor_step(&b);
        t[i] = bench_now_ms() - t0;
    }
    reps = steps.done;
    if (reps == 0) return 1;
    printf("FLOOR workload=w1 reps=%d median_ms=%.4f", reps, bench_median(t, reps));
    bench_print_samples(t, reps);
    floor_free(&b);
    free(t);
    return 0;
}
