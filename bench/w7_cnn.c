/*
 * bench/w7_cnn.c - W7, a LeNet-style CNN training step (../shared/BENCHMARKS.md):
 * NCHW f32, batch 128, 28x28x1 inputs; conv 1->32 3x3 pad 1, ReLU, max-pool 2;
 * conv 32->64 3x3 pad 1, ReLU, max-pool 2; linear 3136->128 ReLU; linear 128->10;
 * softmax cross-entropy (mean); plain SGD lr 0.01. Inputs uniform [0, 1), labels
 * uniform 0..9, a fixed pool of batches cycled.
 *
 * One step = tape reset, the batch copied onto the tape, forward, loss, backward
 * and SGD update (tg_nn_optim_backward_step). With --floor (and BLAS) it does
 * no training: each step replays the step's GEMMs in im2col form (the eleven
 * products of the convolutions and the linear layers, at their shapes, on
 * buffers of their sizes) back to back through OpenBLAS on OPENBLAS_NUM_THREADS
 * threads and prints "FLOOR workload=w7 ... median_ms=" (bench/run runs it as a
 * contestant of its own, as W1's gemm_floor, so that the replays leave the
 * timed steps alone). Memory figures as W1's (bench/w1_mlp.c):
 *   model_mib   parameters + gradients + one step's tape (activations, gradients,
 *               the im2col buffers and every op's data)
 *   rss_model_mib = peak RSS - RSS before the model, which must stay
 *               <= 1.5 * model_mib + 20 (mem_ok=1)
 *   mallocs_steady  allocations during the last 50 timed steps (must be 0)
 * OpenBLAS threads come from OPENBLAS_NUM_THREADS (bench/run sets it); --threads T
 * (default 1) is tg_threads_set(T): the convolutions and poolings split the batch
 * into T parts on T threads and large products are split among them, with
 * OpenBLAS on one thread (tapegrad/threads.h).
 * The network is examples/cnn_model.h, the one examples/fashion_cnn.c trains.
 * --pause-ms M sleeps M ms after every step, outside the timed region (how a step
 * fares after the machine idled).
 * Usage: w7_cnn [--reps N] [--warmup N] [--threads T] [--pause-ms M] [--serve] [--floor]
 */
#include <math.h>
#include <time.h>
#include <tapegrad/tapegrad.h>
#include "../examples/cnn_model.h"
#include "bench-util.h"
#if TG_BENCH_FLOOR
#include <cblas.h>
#endif

enum { BATCH = 128, POOL = 8, SIDE = CNN_SIDE, N_OUT = CNN_OUT, C1 = CNN_C1, C2 = CNN_C2 };
enum { HID = CNN_HID, FLAT = CNN_FLAT };

#if TG_BENCH_FLOOR
/* The step's GEMMs in im2col form: {ta, tb, M, N, K}. conv1's input needs no
 * gradient, so it has no input-gradient product. */
static const int floor_mm[][5] = {
    {0, 0, C1, BATCH * 784, 9},      /* conv1: W1 (32,9) cols (9, B 28 28) */
    {0, 0, C2, BATCH * 196, C1 * 9}, /* conv2: W2 (64,288) cols (288, B 14 14) */
    {0, 1, BATCH, HID, FLAT},        /* fc1: x W3^T */
    {0, 1, BATCH, N_OUT, HID},       /* fc2 */
    {0, 0, BATCH, HID, N_OUT},       /* fc2 dx = g W4 */
    {1, 0, N_OUT, HID, BATCH},       /* fc2 dW = g^T h */
    {0, 0, BATCH, FLAT, HID},        /* fc1 dx */
    {1, 0, HID, FLAT, BATCH},        /* fc1 dW */
    {0, 1, C2, C1 * 9, BATCH * 196}, /* conv2 dW = dy cols^T */
    {1, 0, C1 * 9, BATCH * 196, C2}, /* conv2 dcols = W2^T dy */
    {0, 1, C1, 9, BATCH * 784},      /* conv1 dW */
};
enum { N_FLOOR = sizeof floor_mm / sizeof floor_mm[0] };

struct floor_bufs {
    float *a[N_FLOOR], *b[N_FLOOR], *c[N_FLOOR];
};
static bool floor_new(struct floor_bufs *f)
{
    for (int k = 0; k < N_FLOOR; k++) {
        const int *m = floor_mm[k];
        f->a[k] = calloc((size_t)m[2] * (size_t)m[4], sizeof(float));
        f->b[k] = calloc((size_t)m[4] * (size_t)m[3], sizeof(float));
        f->c[k] = calloc((size_t)m[2] * (size_t)m[3], sizeof(float));
        if (!f->a[k] || !f->b[k] || !f->c[k]) return false;
        /* touched now, so that the pages count in the base RSS, not the model's */
        for (size_t i = 0; i < (size_t)m[2] * (size_t)m[4]; i++) f->a[k][i] = 0.5f;
        for (size_t i = 0; i < (size_t)m[4] * (size_t)m[3]; i++) f->b[k][i] = 0.25f;
        for (size_t i = 0; i < (size_t)m[2] * (size_t)m[3]; i++) f->c[k][i] = 0;
    }
    return true;
}
static void floor_free(struct floor_bufs *f);
static void floor_step(struct floor_bufs *f)
{
    for (int k = 0; k < N_FLOOR; k++) {
        const int *m = floor_mm[k];
        int lda = m[0] ? m[2] : m[4], ldb = m[1] ? m[4] : m[3];
        cblas_sgemm(CblasRowMajor, m[0] ? CblasTrans : CblasNoTrans,
                    m[1] ? CblasTrans : CblasNoTrans, m[2], m[3], m[4], 1.0f, f->a[k], lda, f->b[k],
                    ldb, 0.0f, f->c[k], m[3]);
    }
}
/* --floor: only the products, one replay per step, OpenBLAS on the threads
 * OPENBLAS_NUM_THREADS gives it (tg_threads_set is not called); 0 on success. */
static int floor_only(int reps, int warmup, bool serve)
{
    struct floor_bufs fb = {0};
    double *t = malloc(sizeof *t * (size_t)(reps > 0 ? reps : 1));
    if (!t || !floor_new(&fb)) return 1;
    for (int i = 0; i < warmup; i++) floor_step(&fb);
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = 0; bench_steps_next(&steps, i, t); i++) {
        double t0 = bench_now_ms();
        floor_step(&fb);
        t[i] = bench_now_ms() - t0;
    }
    if ((reps = steps.done) == 0) return 1;
    printf("FLOOR workload=w7 reps=%d median_ms=%.4f", reps, bench_median(t, reps));
    bench_print_samples(t, reps);
    floor_free(&fb);
    free(t);
    return 0;
}
static void floor_free(struct floor_bufs *f)
{
    for (int k = 0; k < N_FLOOR; k++) free(f->a[k]), free(f->b[k]), free(f->c[k]);
}
#endif

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 60);
    int warmup = bench_int_opt(argc, argv, "--warmup", 5);
    bool serve = bench_flag(argc, argv, "--serve");
    if (bench_flag(argc, argv, "--floor")) {
#if TG_BENCH_FLOOR
        return floor_only(reps, warmup, serve);
#else
        fprintf(stderr, "w7_cnn: --floor needs a build with OpenBLAS\n");
        return 2;
#endif
    }
    int threads = bench_int_opt(argc, argv, "--threads", 1);
    int pause_ms = bench_int_opt(argc, argv, "--pause-ms", 0);
    if (tg_threads_set(threads)) {
        fprintf(stderr, "w7_cnn: %s\n", tg_last_error());
        return 2;
    }
    bench_count_mallocs();
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    size_t px = (size_t)BATCH * SIDE * SIDE;
    float *X = malloc(sizeof *X * px * POOL);              /* (POOL B, 1, 28, 28) */
    int64_t *Y = malloc(sizeof *Y * (size_t)BATCH * POOL); /* (POOL B) */
    double *t = malloc(sizeof *t * (size_t)reps);
    long *mallocs_at = malloc(sizeof *mallocs_at * (size_t)reps); /* before timed step i */
    if (!X || !Y || !t || !mallocs_at) return 1;
    for (size_t i = 0; i < px * POOL; i++) X[i] = (float)tg_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)BATCH * POOL; i++) Y[i] = (int64_t)tg_rng_below(&rng, N_OUT);
    double rss_base = bench_status_mib("VmRSS");
    struct cnn n;
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_SGD);
    oc.lr = 0.01;
    oc.zero_grad = true;
    struct tg_nn_optim *opt = cnn_new(&n, &rng) ? tg_nn_optim_new(n.params, &oc) : NULL;
    struct tg_tape *T = tg_tape_new();
    if (!opt || !T) {
        fprintf(stderr, "w7_cnn: setup failed: %s\n", tg_last_error());
        return 1;
    }
    double loss = 0;
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = -warmup; bench_steps_next(&steps, i, t); i++) {
        if (i >= 0) mallocs_at[i] = bench_n_malloc;
        int b = (i + warmup) % POOL;
        double t0 = bench_now_ms();
        tg_tape_reset(T);
        struct tg_tensor *x =
            tg_tape_constant(T, TG_F32, 4, (int64_t[]){BATCH, 1, SIDE, SIDE}, X + (size_t)b * px);
        struct tg_tensor *l = tg_cross_entropy_idx(T, cnn_forward(&n, T, x), Y + (size_t)b * BATCH,
                                                   BATCH, TG_REDUCE_MEAN);
        if (!l || tg_nn_optim_backward_step(opt, l, 1.0)) {
            fprintf(stderr, "w7_cnn: %s\n", tg_last_error());
            return 1;
        }
        if (i >= 0) t[i] = bench_now_ms() - t0;
        loss = tg_tensor_item(l);
        if (pause_ms > 0) /* outside the timed region */
            nanosleep(&(struct timespec){pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L},
                      NULL);
    }
    if ((reps = steps.done) == 0) return 1;
    long mallocs_steady = bench_n_malloc - mallocs_at[reps > 50 ? reps - 50 : 0];
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    double params_mib = (double)tg_params_numel(n.params) * 4 / (1 << 20);
    double model_mib = 2 * params_mib + (double)st.bytes_high_water / (1 << 20);
    double peak = bench_status_mib("VmHWM"), rss_model = peak - rss_base;
    printf(
        "TG workload=w7 reps=%d median_ms=%.4f loss=%.4f model_mib=%.2f rss_base_mib=%.1f "
        "rss_peak_mib=%.1f rss_model_mib=%.1f tape_reserved_mib=%.1f mem_ok=%d mallocs_steady=%ld",
        reps, bench_median(t, reps), loss, model_mib, rss_base, peak, rss_model,
        (double)st.bytes_reserved / (1 << 20), rss_model <= 1.5 * model_mib + 20, mallocs_steady);
    bench_print_samples(t, reps);
    tg_nn_optim_free(opt);
    cnn_free(&n);
    tg_tape_free(T);
    tg_threads_set(1); /* the workers end before the leak check */
    free(X), free(Y), free(t), free(mallocs_at);
    return 0;
}
