/*
 * bench/w4_chain.c - W4, the scalar chain: x <- tanh(x * 1.0001 + 0.0001), 10,000
 * times from one scalar leaf, then backward. 30,000 primitive ops (mul, add, tanh),
 * each its own node: the cost of recording and sweeping one tiny node.
 *
 * One repetition = tape reset + forward (30,000 nodes) + backward. Prints the
 * median time per repetition and per node (nodes counted by tg_tape_stats).
 * f32 rank-0 tensors, like the PyTorch peer's default dtype.
 * Usage: w4_chain [--reps N] [--warmup N] [--iters N]
 */
#include <math.h>
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

/* Records the chain on T from leaf x; returns the last node, or NULL on error. */
static struct tg_tensor *chain(struct tg_tape *T, struct tg_tensor *x, int iters)
{
    struct tg_tensor *y = x;
    for (int i = 0; i < iters; i++)
        y = tg_tanh(T, tg_add_scalar(T, tg_mul_scalar(T, y, 1.0001), 0.0001));
    return y;
}

/* The same recurrence and its derivative in plain double arithmetic. */
static void reference(double x, int iters, double *y, double *dydx)
{
    double d = 1.0;
    for (int i = 0; i < iters; i++) {
        x = tanh(x * 1.0001 + 0.0001);
        d *= (1.0 - x * x) * 1.0001;
    }
    *y = x;
    *dydx = d;
}

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 100);
    int warmup = bench_int_opt(argc, argv, "--warmup", 5);
    int iters = bench_int_opt(argc, argv, "--iters", 10000);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_scalar(TG_F32, 0.5);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!T || !x || !t || tg_tensor_set_requires_grad(x, true)) {
        fprintf(stderr, "w4_chain: setup failed: %s\n", tg_last_error());
        return 1;
    }
    struct tg_tape_stats st = {0};
    struct tg_tensor *y = NULL;
    for (int i = -warmup; i < reps; i++) {
        double t0 = bench_now_ms();
        tg_tape_reset(T);
        y = chain(T, x, iters);
        if (!y || tg_backward(y, NULL)) {
            fprintf(stderr, "w4_chain: %s\n", tg_last_error());
            return 1;
        }
        if (i >= 0) t[i] = bench_now_ms() - t0;
        if (i == -warmup) tg_tape_stats(T, &st);
        if (i < reps - 1) tg_tensor_zero_grad(x);
    }
    double ry, rd, med = bench_median(t, reps);
    reference(0.5, iters, &ry, &rd);
    /* The sanity check: f32 arithmetic, so compare loosely with the f64 reference. */
    double gy = tg_tensor_item(y), gd = tg_tensor_grad_get(x, 0);
    int ok = fabs(gy - ry) < 1e-3 && fabs(gd - rd) <= 1e-2 * fabs(rd);
    printf("TG workload=w4 reps=%d median_ms=%.4f n_nodes=%zu ns_per_node=%.2f y=%.6e dydx=%.6e "
           "ref_y=%.6e ref_dydx=%.6e check=%s",
           reps, med, st.n_nodes, med * 1e6 / (double)st.n_nodes, gy, gd, ry, rd,
           ok ? "ok" : "FAILED");
    bench_print_samples(t, reps);
    tg_tensor_free(x);
    tg_tape_free(T);
    free(t);
    return ok ? 0 : 1;
}
