/*
 * bench/w3_moons.c - W3, the scalar graph: the two-moons demo of micrograd,
 * rebuilt from tapegrad's rank-0 tensors (every weight, every product, every sum
 * is its own node).
 *
 * Model: MLP 2-16-16-1 of scalar neurons, act = b + sum_i w_i x_i, ReLU hidden,
 * linear output. Data: 100 two-moons points (noise 0.1) from examples/moons_data.h
 * with seed 42, the points and weights of examples/moons_scalar (it reaches 100%
 * training accuracy, loss 0.0119), labels y = -1 / +1. Loss = mean_j relu(1 - y_j score_j) + 1e-4
 * sum p^2 (SVM max-margin loss plus L2). SGD with lr = 1.0 - 0.9 k / 100, k = 0..steps-1. Weights
 * uniform [-1, 1), biases 0. f64, like Python floats.
 *
 * One sample = one step: tape reset, forward over all points, zero grad, backward,
 * update. Prints the median step time, the nodes of one step (tg_tape_stats), the
 * time per node, and the accuracy and loss of the last step; a run of 100 steps or
 * more fails (exit 1, check=FAILED) unless the accuracy is 100% and the loss < 0.1.
 * Usage: w3_moons [--steps N]
 */
#include <math.h>
#include <tapegrad/tapegrad.h>
#include "../examples/moons_data.h"
#include "bench-util.h"

enum { N_PTS = 100, H = 16, N_PARAMS = H * 2 + H + H * H + H + H + 1 };

struct model {
    struct tg_tensor *p[N_PARAMS]; /* every parameter, a scalar leaf */
    struct tg_tensor **w1, **b1;   /* (H,2) (H) */
    struct tg_tensor **w2, **b2;   /* (H,H) (H) */
    struct tg_tensor **w3, **b3;   /* (H) (1) */
};

static int model_init(struct model *m, struct tg_rng *rng)
{
    int k = 0;
    m->w1 = m->p + k, k += H * 2;
    m->b1 = m->p + k, k += H;
    m->w2 = m->p + k, k += H * H;
    m->b2 = m->p + k, k += H;
    m->w3 = m->p + k, k += H;
    m->b3 = m->p + k;
    for (int i = 0; i < N_PARAMS; i++) {
        int is_bias = (m->p + i >= m->b1 && m->p + i < m->b1 + H) ||
                      (m->p + i >= m->b2 && m->p + i < m->b2 + H) || m->p + i == m->b3;
        m->p[i] = tg_tensor_scalar(TG_F64, is_bias ? 0.0 : 2.0 * tg_rng_uniform(rng) - 1.0);
        if (!m->p[i] || tg_tensor_set_requires_grad(m->p[i], true)) return -1;
    }
    return 0;
}

/* The score of point x: the forward of the whole MLP, one node per scalar op. */
static struct tg_tensor *score(struct tg_tape *T, const struct model *m, const double x[2])
{
    struct tg_tensor *h1[H], *h2[H];
    for (int j = 0; j < H; j++) {
        struct tg_tensor *a = m->b1[j];
        for (int i = 0; i < 2; i++) a = tg_add(T, a, tg_mul_scalar(T, m->w1[j * 2 + i], x[i]));
        h1[j] = tg_relu(T, a);
    }
    for (int j = 0; j < H; j++) {
        struct tg_tensor *a = m->b2[j];
        for (int i = 0; i < H; i++) a = tg_add(T, a, tg_mul(T, m->w2[j * H + i], h1[i]));
        h2[j] = tg_relu(T, a);
    }
    struct tg_tensor *a = m->b3[0];
    for (int i = 0; i < H; i++) a = tg_add(T, a, tg_mul(T, m->w3[i], h2[i]));
    return a;
}

/* The loss over all points; counts the correct signs in *correct. */
static struct tg_tensor *loss(struct tg_tape *T, const struct model *m, double x[N_PTS][2],
                              const double y[N_PTS], int *correct)
{
    struct tg_tensor *total = NULL, *reg = NULL;
    *correct = 0;
    for (int j = 0; j < N_PTS; j++) {
        struct tg_tensor *s = score(T, m, x[j]);
        if (!s) return NULL;
        *correct += (tg_tensor_item(s) > 0) == (y[j] > 0);
        struct tg_tensor *margin = tg_relu(T, tg_add_scalar(T, tg_mul_scalar(T, s, -y[j]), 1.0));
        total = total ? tg_add(T, total, margin) : margin;
    }
    for (int i = 0; i < N_PARAMS; i++) {
        struct tg_tensor *sq = tg_mul(T, m->p[i], m->p[i]);
        reg = reg ? tg_add(T, reg, sq) : sq;
    }
    return tg_add(T, tg_mul_scalar(T, total, 1.0 / N_PTS), tg_mul_scalar(T, reg, 1e-4));
}

/* One SGD step; returns the loss value (NaN on error). */
static double step(struct tg_tape *T, struct model *m, double x[N_PTS][2], const double y[N_PTS],
                   double lr, int *correct)
{
    tg_tape_reset(T);
    struct tg_tensor *L = loss(T, m, x, y, correct);
    for (int i = 0; i < N_PARAMS; i++) tg_tensor_zero_grad(m->p[i]);
    if (!L || tg_backward(L, NULL)) return NAN;
    for (int i = 0; i < N_PARAMS; i++) {
        double *v = tg_tensor_data(m->p[i]), *g = tg_tensor_grad_mut(m->p[i]);
        *v -= lr * *g;
    }
    return tg_tensor_item(L);
}

int main(int argc, char **argv)
{
    int steps = bench_int_opt(argc, argv, "--steps", 100);
    static double x[N_PTS][2], y[N_PTS];
    struct tg_rng rng;
    struct model m;
    tg_rng_seed(&rng, 42); /* examples/moons_scalar's seed and points */
    moons_make(&rng, N_PTS, x, y);
    struct tg_tape *T = tg_tape_new();
    double *t = malloc((size_t)steps * sizeof *t);
    if (!T || !t || model_init(&m, &rng)) {
        fprintf(stderr, "w3_moons: setup failed: %s\n", tg_last_error());
        return 1;
    }
    double L = NAN;
    int correct = 0;
    struct tg_tape_stats st;
    for (int k = 0; k < steps; k++) {
        double t0 = bench_now_ms();
        L = step(T, &m, x, y, 1.0 - 0.9 * k / 100.0, &correct);
        t[k] = bench_now_ms() - t0;
        if (isnan(L)) {
            fprintf(stderr, "w3_moons: step %d: %s\n", k, tg_last_error());
            return 1;
        }
    }
    tg_tape_stats(T, &st);
    double med = bench_median(t, steps);
    /* The sanity check of a full run: training separates the moons (micrograd's demo
     * reaches 100%), and the loss fell below its start, which is about 1. */
    int ok = steps < 100 || (correct == N_PTS && L < 0.1);
    printf("TG workload=w3 reps=%d median_ms=%.4f n_nodes=%zu ns_per_node=%.2f accuracy=%.2f "
           "loss=%.6f check=%s",
           steps, med, st.n_nodes, med * 1e6 / (double)st.n_nodes, (double)correct / N_PTS, L,
           ok ? "ok" : "FAILED");
    bench_print_samples(t, steps);
    for (int i = 0; i < N_PARAMS; i++) tg_tensor_free(m.p[i]);
    tg_tape_free(T);
    free(t);
    return ok ? 0 : 1;
}
