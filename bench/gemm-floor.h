/*
 * bench/gemm-floor.h - the GEMM floor of W1: the eight sgemm calls of one training
 * step of the MLP 784-512-512-10 (batch 128, f32), replayed back to back through
 * cblas_sgemm. Used by bench/gemm_floor.c (the floor alone) and bench/w1_mlp.c
 * (the floor timed right after each step, so that both see the same machine).
 *
 * Layout: row-major, activations (batch, features), weights (in, out), so
 * forward is X W with no transpose and backward transposes one operand:
 *   forward   Z1 = X  W1   (128,784)(784,512)     Z2 = H1 W2   (128,512)(512,512)
 *             Z3 = H2 W3   (128,512)(512,10)
 *   backward  dW3 = H2^T dZ3  (512,128)(128,10)   dH2 = dZ3 W3^T (128,10)(10,512)
 *             dW2 = H1^T dZ2  (512,128)(128,512)  dH1 = dZ2 W2^T (128,512)(512,512)
 *             dW1 = X^T  dZ1  (784,128)(128,512)  (the first layer needs no dX)
 * About 411 MFLOP in all.
 */
#ifndef TG_BENCH_GEMM_FLOOR_H
#define TG_BENCH_GEMM_FLOOR_H

#include <cblas.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* B: batch; D0..D3: the layer widths */
enum { FL_B = 128, FL_D0 = 784, FL_D1 = 512, FL_D2 = 512, FL_D3 = 10 };

/* Fills n floats with values in [-0.5, 0.5) from a xorshift64 state. */
static void floor_fill(float *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        p[i] = (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
    }
}

/* C (m,n) = op(A) op(B) with op(A) (m,k), op(B) (k,n); lda/ldb from the stored shapes. */
static void floor_mm(int ta, int tb, int m, int n, int k, const float *A, const float *Bm, float *C)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, 1.0f, A, lda, Bm, ldb, 0.0f, C, n);
}

struct floor_bufs {
    float *x, *w1, *w2, *w3; /* (B,D0) (D0,D1) (D1,D2) (D2,D3) */
    float *h1, *h2, *z3;     /* (B,D1) (B,D2) (B,D3) */
    float *dz3, *dh2, *dh1;  /* (B,D3) (B,D2) (B,D1) */
    float *dw1, *dw2, *dw3;  /* like w1, w2, w3 */
};

/* One step's eight products, in the order a training step issues them. */
static void floor_step(struct floor_bufs *b)
{
    floor_mm(0, 0, FL_B, FL_D1, FL_D0, b->x, b->w1, b->h1);
    floor_mm(0, 0, FL_B, FL_D2, FL_D1, b->h1, b->w2, b->h2);
    floor_mm(0, 0, FL_B, FL_D3, FL_D2, b->h2, b->w3, b->z3);
    floor_mm(1, 0, FL_D2, FL_D3, FL_B, b->h2, b->dz3, b->dw3);
    floor_mm(0, 1, FL_B, FL_D2, FL_D3, b->dz3, b->w3, b->dh2);
    floor_mm(1, 0, FL_D1, FL_D2, FL_B, b->h1, b->dh2, b->dw2);
    floor_mm(0, 1, FL_B, FL_D1, FL_D2, b->dh2, b->w2, b->dh1);
    floor_mm(1, 0, FL_D0, FL_D1, FL_B, b->x, b->dh1, b->dw1);
}

/* The thirteen buffers, filled with values in [-0.5, 0.5); false when out of memory. */
static bool floor_new(struct floor_bufs *b)
{
    size_t sizes[13] = {FL_B * FL_D0,  FL_D0 * FL_D1, FL_D1 * FL_D2, FL_D2 * FL_D3, FL_B * FL_D1,
                        FL_B * FL_D2,  FL_B * FL_D3,  FL_B * FL_D3,  FL_B * FL_D2,  FL_B * FL_D1,
                        FL_D0 * FL_D1, FL_D1 * FL_D2, FL_D2 * FL_D3};
    float **p[13] = {&b->x,   &b->w1,  &b->w2,  &b->w3,  &b->h1,  &b->h2, &b->z3,
                     &b->dz3, &b->dh2, &b->dh1, &b->dw1, &b->dw2, &b->dw3};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    bool ok = true;
    for (int i = 0; i < 13; i++) {
        *p[i] = malloc(sizes[i] * sizeof(float));
        if (*p[i])
            floor_fill(*p[i], sizes[i], &seed);
        else
            ok = false;
    }
    return ok;
}

static void floor_free(struct floor_bufs *b)
{
    float *p[13] = {b->x,   b->w1,  b->w2,  b->w3,  b->h1,  b->h2, b->z3,
                    b->dz3, b->dh2, b->dh1, b->dw1, b->dw2, b->dw3};
    for (int i = 0; i < 13; i++) free(p[i]);
}

#endif
