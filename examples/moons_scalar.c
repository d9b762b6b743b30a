/*
 * examples/moons_scalar.c - a micrograd-style MLP built from scalar nodes only.
 *
 * Two moons (100 points, noise 0.1), an MLP 2-16-16-1 whose every weight is a
 * rank-0 leaf and whose every multiply and add is one node on the tape (about
 * 65,000 nodes a step), the max-margin loss mean(relu(1 - y * score)) plus an L2
 * penalty 1e-4 * sum(p^2), and SGD with a rate falling from 1.0 to 0.1.
 * With the fixed seed 42 it reaches 100% training accuracy (8 of 9 seeds tried
 * did; seed 1337 stopped at 99%).
 *
 * Usage: moons_scalar [steps]     (default 100)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>
#include "moons_data.h"

enum { N_POINTS = 100, N_IN = 2, N_H = 16 };

struct mlp {
    /* layer sizes 2 -> 16 -> 16 -> 1; w[l][j][i] from input i to neuron j */
    struct tg_tensor *w1[N_H][N_IN], *b1[N_H];
    struct tg_tensor *w2[N_H][N_H], *b2[N_H];
    struct tg_tensor *w3[N_H], *b3;
    struct tg_tensor *all[N_H * N_IN + N_H + N_H * N_H + N_H + N_H + 1];
    int n;
};

static struct tg_tensor *param(struct mlp *m, struct tg_rng *rng, bool bias)
{
    struct tg_tensor *p = tg_tensor_scalar(TG_F64, bias ? 0.0 : 2 * tg_rng_uniform(rng) - 1);
    if (p) tg_tensor_set_requires_grad(p, true);
    m->all[m->n++] = p;
    return p;
}

static void mlp_init(struct mlp *m, struct tg_rng *rng)
{
    m->n = 0;
    for (int j = 0; j < N_H; j++) {
        for (int i = 0; i < N_IN; i++) m->w1[j][i] = param(m, rng, false);
        m->b1[j] = param(m, rng, true);
    }
    for (int j = 0; j < N_H; j++) {
        for (int i = 0; i < N_H; i++) m->w2[j][i] = param(m, rng, false);
        m->b2[j] = param(m, rng, true);
    }
    for (int i = 0; i < N_H; i++) m->w3[i] = param(m, rng, false);
    m->b3 = param(m, rng, true);
}

/* One neuron: b + sum_i w_i x_i, one mul and one add node per input. */
static struct tg_tensor *neuron(struct tg_tape *T, struct tg_tensor **w, struct tg_tensor *b,
                                struct tg_tensor **x, int n)
{
    struct tg_tensor *z = b;
    for (int i = 0; i < n; i++) z = tg_add(T, z, tg_mul(T, w[i], x[i]));
    return z;
}

static struct tg_tensor *score(struct tg_tape *T, struct mlp *m, struct tg_tensor **x)
{
    struct tg_tensor *h1[N_H], *h2[N_H];
    for (int j = 0; j < N_H; j++) h1[j] = tg_relu(T, neuron(T, m->w1[j], m->b1[j], x, N_IN));
    for (int j = 0; j < N_H; j++) h2[j] = tg_relu(T, neuron(T, m->w2[j], m->b2[j], h1, N_H));
    return neuron(T, m->w3, m->b3, h2, N_H);
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 100;
    struct tg_rng rng;
    tg_rng_seed(&rng, 42);
    static double X[N_POINTS][2], y[N_POINTS];
    moons_make(&rng, N_POINTS, X, y);
    struct mlp m;
    mlp_init(&m, &rng);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *xs[N_POINTS][N_IN], *ys[N_POINTS];
    double acc = 0, loss_v = 0;
    for (int k = 0; k < steps; k++) {
        tg_tape_reset(T);
        struct tg_tensor *hinge = NULL, *l2 = NULL;
        int correct = 0;
        for (int p = 0; p < N_POINTS; p++) {
            for (int i = 0; i < N_IN; i++)
                xs[p][i] = tg_tape_constant(T, TG_F64, 0, NULL, &X[p][i]);
            ys[p] = tg_tape_constant(T, TG_F64, 0, NULL, &y[p]);
            struct tg_tensor *s = score(T, &m, xs[p]);
            correct += (tg_tensor_item(s) > 0) == (y[p] > 0);
            struct tg_tensor *h = tg_relu(T, tg_rsub_scalar(T, 1, tg_mul(T, ys[p], s)));
            hinge = hinge ? tg_add(T, hinge, h) : h;
        }
        for (int i = 0; i < m.n; i++) {
            struct tg_tensor *sq = tg_mul(T, m.all[i], m.all[i]);
            l2 = l2 ? tg_add(T, l2, sq) : sq;
        }
        struct tg_tensor *loss =
            tg_add(T, tg_mul_scalar(T, hinge, 1.0 / N_POINTS), tg_mul_scalar(T, l2, 1e-4));
        for (int i = 0; i < m.n; i++) tg_tensor_zero_grad(m.all[i]);
        if (!loss || tg_backward(loss, NULL)) {
            fprintf(stderr, "moons_scalar: %s\n", tg_last_error());
            return 1;
        }
        double lr = 1.0 - 0.9 * k / 100.0;
        for (int i = 0; i < m.n; i++)
            tg_tensor_set(m.all[i], 0,
                          tg_tensor_item(m.all[i]) - lr * tg_tensor_grad_get(m.all[i], 0));
        acc = (double)correct / N_POINTS;
        loss_v = tg_tensor_item(loss);
        if (k % 10 == 0 || k == steps - 1) {
            struct tg_tape_stats st;
            tg_tape_stats(T, &st);
            printf("step %3d  loss %.6f  accuracy %5.1f%%  nodes %zu\n", k, loss_v, 100 * acc,
                   st.n_nodes);
        }
    }
    printf("final: loss %.6f, training accuracy %.1f%%\n", loss_v, 100 * acc);
    for (int i = 0; i < m.n; i++) tg_tensor_free(m.all[i]);
    tg_tape_free(T);
    return steps >= 100 && acc < 1.0 ? 1 : 0;
}
