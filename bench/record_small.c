/*
 * bench/record_small.c - the recording cost of small non-elementwise ops, where
 * the shape rule and the bookkeeping, not the arithmetic, are the work: a chain
 * of 200 (matmul_t of two (4,4) f32 matrices, then mul_scalar), summed, then one
 * backward sweep. Prints the best time per link over --reps recordings (ns).
 * Usage: record_small [--reps N]
 */
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

enum { LINKS = 200 };

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 300);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = tg_tensor_ones(TG_F32, 2, (int64_t[]){4, 4});
    struct tg_tensor *b = tg_tensor_ones(TG_F32, 2, (int64_t[]){4, 4});
    if (!T || !a || !b || tg_tensor_set_requires_grad(a, true)) {
        fprintf(stderr, "record_small: setup failed: %s\n", tg_last_error());
        return 1;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        tg_tape_reset(T);
        struct tg_tensor *y = a;
        for (int i = 0; i < LINKS; i++)
            y = tg_mul_scalar(T, tg_matmul_t(T, y, b, false, true), 0.25);
        if (tg_backward(tg_sum(T, y), NULL)) {
            fprintf(stderr, "record_small: %s\n", tg_last_error());
            return 1;
        }
        double ns = (bench_now_ms() - t0) * 1e6 / LINKS;
        if (ns < best) best = ns;
    }
    printf("TG workload=record_small reps=%d best_ns_per_link=%.1f\n", reps, best);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
    return 0;
}
