/*
 * bench/gemm_threads.c - does our own threading of W1's GEMMs beat OpenBLAS's?
 * The eight sgemm calls of one W1 step (bench/gemm-floor.h) on two cores, three
 * ways, alternated in rounds (0.3 s apart, so that idle OpenBLAS threads sleep):
 *   blas   OpenBLAS with 2 threads, the calls back to back (the GEMM floor);
 *   split  OpenBLAS with 1 thread; every call cut in two halves (rows of the
 *          output, or its columns for the weight gradients) that this program's
 *          two threads (the main one and a worker) compute at the same time;
 *   task   like split, but a layer's two independent backward products
 *          (dW2 = H1^T dZ2 and dH1 = dZ2 W2^T) run whole, one per thread.
 * Prints the medians over rounds and the median of the per-round ratios against
 * blas (docs/performance.md, "Tried and dropped").
 * Usage: gemm_threads [--rounds N] [--steps N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "bench-util.h"
#include "gemm-floor.h"

/* One product C = op(A) op(B) (row-major, leading dimensions given). */
struct job {
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *A, *B;
    float *C;
};

static void job_run(const struct job *j)
{
    if (j->m <= 0 || j->n <= 0) return;
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                j->m, j->n, j->k, 1.0f, j->A, j->lda, j->B, j->ldb, 0.0f, j->C, j->ldc);
}

/* The whole product, with the shapes of floor_mm. */
static struct job job_whole(int ta, int tb, int m, int n, int k, const float *A, const float *B,
                            float *C)
{
    return (struct job){ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, A, B, C};
}

/* Half `part` (0 or 1) of a product: its output rows (by_rows) or columns,
 * cut at a multiple of 16. */
static struct job job_half(struct job j, int part, bool by_rows)
{
    if (by_rows) {
        int h = (j.m / 2 + 15) & ~15, r0 = part ? h : 0;
        j.m = part ? j.m - h : h;
        j.A += j.ta ? (size_t)r0 : (size_t)r0 * (size_t)j.lda;
        j.C += (size_t)r0 * (size_t)j.ldc;
    } else {
        int h = (j.n / 2 + 15) & ~15, c0 = part ? h : 0;
        j.n = part ? j.n - h : h;
        j.B += j.tb ? (size_t)c0 * (size_t)j.ldb : (size_t)c0;
        j.C += c0;
    }
    return j;
}

/* The worker: spins briefly for the next job, then sleeps on a condition
 * variable (so that it takes no core while OpenBLAS's own threads run). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int posted, done, sleeping; /* posted < 0: quit */
    struct job job;
} W = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, {0}};

static void *worker(void *arg)
{
    (void)arg;
    int seen = 0;
    for (;;) {
        int p;
        long spins = 0;
        while ((p = atomic_load(&W.posted)) == seen && ++spins < 200000) __builtin_ia32_pause();
        if (p == seen) {
            pthread_mutex_lock(&W.mu);
            atomic_store(&W.sleeping, 1);
            while ((p = atomic_load(&W.posted)) == seen) pthread_cond_wait(&W.cv, &W.mu);
            atomic_store(&W.sleeping, 0);
            pthread_mutex_unlock(&W.mu);
        }
        if (p < 0) return NULL;
        seen = p;
        job_run(&W.job);
        atomic_fetch_add(&W.done, 1);
    }
}

/* Posts `next` (a post number, or -1 to quit) and wakes the worker if it sleeps. */
static void worker_post(int next)
{
    atomic_store(&W.posted, next);
    if (atomic_load(&W.sleeping)) {
        pthread_mutex_lock(&W.mu);
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
    }
}

/* Runs a here and b on the worker; returns when both are done. */
static void both(struct job a, struct job b)
{
    static int post;
    int done = atomic_load(&W.done);
    W.job = b;
    worker_post(++post);
    job_run(&a);
    while (atomic_load(&W.done) == done) __builtin_ia32_pause();
}

static void halves(struct job j, bool by_rows)
{
    both(job_half(j, 0, by_rows), job_half(j, 1, by_rows));
}

/* One step's eight products, as floor_step issues them; `task` runs the second
 * layer's dW and dX side by side instead of cutting each in two. */
static void step_threaded(struct floor_bufs *b, bool task)
{
    halves(job_whole(0, 0, FL_B, FL_D1, FL_D0, b->x, b->w1, b->h1), true);
    halves(job_whole(0, 0, FL_B, FL_D2, FL_D1, b->h1, b->w2, b->h2), true);
    halves(job_whole(0, 0, FL_B, FL_D3, FL_D2, b->h2, b->w3, b->z3), true);
    halves(job_whole(1, 0, FL_D2, FL_D3, FL_B, b->h2, b->dz3, b->dw3), true);
    halves(job_whole(0, 1, FL_B, FL_D2, FL_D3, b->dz3, b->w3, b->dh2), false);
    struct job dw2 = job_whole(1, 0, FL_D1, FL_D2, FL_B, b->h1, b->dh2, b->dw2);
    struct job dh1 = job_whole(0, 1, FL_B, FL_D1, FL_D2, b->dh2, b->w2, b->dh1);
    if (task) {
        both(dw2, dh1);
    } else {
        halves(dw2, false);
        halves(dh1, true);
    }
    halves(job_whole(1, 0, FL_D0, FL_D1, FL_B, b->x, b->dh1, b->dw1), false);
}

/* The mean step time of `steps` steps of variant v (0 blas, 1 split, 2 task). */
static double time_variant(struct floor_bufs *b, int v, int steps)
{
    openblas_set_num_threads(v == 0 ? 2 : 1);
    for (int i = 0; i < 3; i++) v == 0 ? floor_step(b) : step_threaded(b, v == 2);
    double t0 = bench_now_ms();
    for (int i = 0; i < steps; i++) v == 0 ? floor_step(b) : step_threaded(b, v == 2);
    return (bench_now_ms() - t0) / steps;
}

int main(int argc, char **argv)
{
    int rounds = bench_int_opt(argc, argv, "--rounds", 30);
    int steps = bench_int_opt(argc, argv, "--steps", 20);
    struct floor_bufs b;
    double *t = calloc((size_t)rounds * 5, sizeof *t);
    pthread_t th;
    if (!floor_new(&b) || !t || rounds < 1 || steps < 1 ||
        pthread_create(&th, NULL, worker, NULL)) {
        fprintf(stderr, "gemm_threads: setup failed\n");
        return 1;
    }
    double *ms[3] = {t, t + rounds, t + 2 * rounds}, *split_r = t + 3 * rounds,
           *task_r = t + 4 * rounds;
    for (int r = 0; r < rounds; r++) {
        for (int v = 0; v < 3; v++) {
            nanosleep(&(struct timespec){0, 300000000}, NULL);
            ms[v][r] = time_variant(&b, v, steps);
        }
        split_r[r] = ms[1][r] / ms[0][r];
        task_r[r] = ms[2][r] / ms[0][r];
    }
    printf("GEMMTHREADS rounds=%d steps=%d blas_ms=%.3f split_ms=%.3f task_ms=%.3f "
           "paired_split_vs_blas=%.3f paired_task_vs_blas=%.3f\n",
           rounds, steps, bench_median(ms[0], rounds), bench_median(ms[1], rounds),
           bench_median(ms[2], rounds), bench_median(split_r, rounds),
           bench_median(task_r, rounds));
    worker_post(-1);
    pthread_join(th, NULL);
    floor_free(&b);
    free(t);
    return 0;
}
