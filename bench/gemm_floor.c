/*
 * bench/gemm_floor.c - the GEMM floor of W1: the eight sgemm calls of one training
 * step of the MLP 784-512-512-10 (batch 128, f32), replayed back to back through
 * cblas_sgemm, so that a framework's step time can be compared with the time the
 * same BLAS needs for the matrix products alone (docs/performance.md).
 *
 * Layout: row-major, activations (batch, features), weights (in, out), so
 * forward is X W with no transpose and backward transposes one operand:
 *   forward   Z1 = X  W1   (128,784)(784,512)     Z2 = H1 W2   (128,512)(512,512)
 *             Z3 = H2 W3   (128,512)(512,10)
 *   backward  dW3 = H2^T dZ3  (512,128)(128,10)   dH2 = dZ3 W3^T (128,10)(10,512)
 *             dW2 = H1^T dZ2  (512,128)(128,512)  dH1 = dZ2 W2^T (128,512)(512,512)
 *             dW1 = X^T  dZ1  (784,128)(128,512)  (the first layer needs no dX)
 * About 411 MFLOP in all. Threads: OpenBLAS reads OPENBLAS_NUM_THREADS; bench/run
 * sets it. Usage: gemm_floor [--reps N] [--warmup N]
 */
#include <cblas.h>
#include <stdint.h>
#include "bench-util.h"

enum { B = 128, D0 = 784, D1 = 512, D2 = 512, D3 = 10 };

/* Fills n floats with values in [-0.5, 0.5) from a xorshift64 state. */
static void fill(float *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        p[i] = (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
    }
}

/* C (m,n) = op(A) op(B) with op(A) (m,k), op(B) (k,n); lda/ldb from the stored shapes. */
static void mm(int ta, int tb, int m, int n, int k, const float *A, const float *Bm, float *C)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, 1.0f, A, lda, Bm, ldb, 0.0f, C, n);
}

struct bufs {
    float *x, *w1, *w2, *w3; /* (B,D0) (D0,D1) (D1,D2) (D2,D3) */
    float *h1, *h2, *z3;     /* (B,D1) (B,D2) (B,D3) */
    float *dz3, *dh2, *dh1;  /* (B,D3) (B,D2) (B,D1) */
    float *dw1, *dw2, *dw3;  /* like w1, w2, w3 */
};

/* One step's eight products, in the order a training step issues them. */
static void step(struct bufs *b)
{
    mm(0, 0, B, D1, D0, b->x, b->w1, b->h1);
    mm(0, 0, B, D2, D1, b->h1, b->w2, b->h2);
    mm(0, 0, B, D3, D2, b->h2, b->w3, b->z3);
    mm(1, 0, D2, D3, B, b->h2, b->dz3, b->dw3);
    mm(0, 1, B, D2, D3, b->dz3, b->w3, b->dh2);
    mm(1, 0, D1, D2, B, b->h1, b->dh2, b->dw2);
    mm(0, 1, B, D1, D2, b->dh2, b->w2, b->dh1);
    mm(1, 0, D0, D1, B, b->x, b->dh1, b->dw1);
}

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 200);
    int warmup = bench_int_opt(argc, argv, "--warmup", 20);
    size_t sizes[13] = {B * D0, D0 * D1, D1 * D2, D2 * D3, B * D1,  B * D2, B * D3,
                        B * D3, B * D2,  B * D1,  D0 * D1, D1 * D2, D2 * D3};
    float *p[13];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 13; i++) {
        p[i] = malloc(sizes[i] * sizeof(float));
        if (!p[i]) return 1;
        fill(p[i], sizes[i], &seed);
    }
    struct bufs b = {p[0], p[1], p[2], p[3],  p[4],  p[5], p[6],
                     p[7], p[8], p[9], p[10], p[11], p[12]};
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) return 1;
    for (int i = 0; i < warmup; i++) step(&b);
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now_ms();
        step(&b);
        t[i] = bench_now_ms() - t0;
    }
    printf("FLOOR workload=w1 reps=%d median_ms=%.4f", reps, bench_median(t, reps));
    bench_print_samples(t, reps);
    for (int i = 0; i < 13; i++) free(p[i]);
    free(t);
    return 0;
}
