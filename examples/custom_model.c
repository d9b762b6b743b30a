/*
 * examples/custom_model.c - a classifier built from primitive tensor ops only, no
 * nn layer: the model, the loss and the training loop are all written here.
 *
 * Data: the classic three-arm spiral (100 points per class, noise 0.2 on the
 * angle), generated with a seeded struct tg_rng. Model, on the whole batch X (N,2):
 *     h      = relu(X W1 + b1)        W1 (2,H), b1 (H)     tg_matmul
 *     logits = h W2^T + b2            W2 (3,H), b2 (3)     tg_matmul_t
 *     loss   = mean_n cross_entropy(logits_n, y_n)         tg_cross_entropy
 * Training: full-batch gradient descent written by hand: zero the gradients,
 * backward from the loss, then p -= lr * dp on each parameter's own buffer
 * (tg_tensor_data / tg_tensor_grad).
 *
 * Usage: custom_model [steps]     (default 1000)
 * Prints the loss and accuracy every 100 steps and the final training accuracy;
 * exits 1 when that is below 95% (or on any library error). With seed 7 it passes
 * 95% within 200 steps and ends at 99.3% (so did seeds 1-10 and 42). 99.3% is the
 * ceiling: the three arms all start at the origin, so three points with
 * different labels sit at (0,0) and at most one of them can be right.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>

enum { N_CLASS = 3, PER_CLASS = 100, N_POINTS = N_CLASS * PER_CLASS, N_HIDDEN = 64 };
#define LEARNING_RATE 1.0
#define MIN_ACCURACY  0.95

struct model {
    struct tg_tensor *W1, *b1, *W2, *b2; /* (2,H), (H), (3,H), (3) */
};

/* Arm k of the spiral: radius 0..1, angle sweeping 4 radians plus noise. */
static void make_spiral(struct tg_rng *rng, double X[N_POINTS][2], double y[N_POINTS])
{
    for (int k = 0; k < N_CLASS; k++) {
        for (int i = 0; i < PER_CLASS; i++) {
            int n = k * PER_CLASS + i;
            double r = (double)i / (PER_CLASS - 1);
            double t = 4.0 * k + 4.0 * i / (PER_CLASS - 1) + 0.2 * tg_rng_normal(rng);
            X[n][0] = r * sin(t);
            X[n][1] = r * cos(t);
            y[n] = k;
        }
    }
}

/* A parameter: normal(0, std) weights or zeros, with gradient tracking. */
static struct tg_tensor *param(struct tg_rng *rng, int rank, const int64_t *shape, double std)
{
    struct tg_tensor *p = std > 0 ? tg_tensor_normal(TG_F64, rank, shape, rng, 0, std)
                                  : tg_tensor_zeros(TG_F64, rank, shape);
    if (p && tg_tensor_set_requires_grad(p, true) != TG_OK) {
        tg_tensor_free(p);
        p = NULL;
    }
    return p;
}

/* He initialisation (std sqrt(2 / fan_in)) suits the relu layer. */
static bool model_init(struct model *m, struct tg_rng *rng)
{
    m->W1 = param(rng, 2, (int64_t[]){2, N_HIDDEN}, sqrt(2.0 / 2));
    m->b1 = param(rng, 1, (int64_t[]){N_HIDDEN}, 0);
    m->W2 = param(rng, 2, (int64_t[]){N_CLASS, N_HIDDEN}, sqrt(2.0 / N_HIDDEN));
    m->b2 = param(rng, 1, (int64_t[]){N_CLASS}, 0);
    return m->W1 && m->b1 && m->W2 && m->b2;
}

/* The logits (N,3) of the batch X (N,2), recorded on T; NULL on failure. */
static struct tg_tensor *forward(struct tg_tape *T, const struct model *m, struct tg_tensor *X)
{
    struct tg_tensor *h = tg_relu(T, tg_add(T, tg_matmul(T, X, m->W1), m->b1)); /* (N,H) */
    return tg_add(T, tg_matmul_t(T, h, m->W2, false, true), m->b2);             /* (N,3) */
}

/* p -= lr * dp, element by element on the parameter's own buffers. */
static void sgd_step(struct tg_tensor *p, double lr)
{
    double *w = tg_tensor_data(p);
    const double *g = tg_tensor_grad(p);
    for (int64_t i = 0; i < tg_tensor_numel(p); i++) w[i] -= lr * g[i];
}

/* The fraction of rows of logits (N,3) whose largest entry is at the label. */
static double accuracy(const struct tg_tensor *logits, const double y[N_POINTS])
{
    const double *z = tg_tensor_data(logits); /* (N,3) */
    int correct = 0;
    for (int n = 0; n < N_POINTS; n++) {
        int best = 0;
        for (int c = 1; c < N_CLASS; c++)
            if (z[n * N_CLASS + c] > z[n * N_CLASS + best]) best = c;
        correct += best == (int)y[n];
    }
    return (double)correct / N_POINTS;
}

/* Trains for `steps` steps; returns the final training accuracy, or -1 on error. */
static double train(struct model *m, struct tg_tensor *X, struct tg_tensor *labels,
                    const double y[N_POINTS], long steps)
{
    struct tg_tensor *params[4] = {m->W1, m->b1, m->W2, m->b2};
    struct tg_tape *T = tg_tape_new();
    double acc = -1;
    for (long k = 0; T && k <= steps; k++) {
        tg_tape_reset(T);
        struct tg_tensor *logits = forward(T, m, X);
        struct tg_tensor *loss = tg_cross_entropy(T, logits, labels, TG_REDUCE_MEAN);
        if (!loss) break;
        acc = accuracy(logits, y);
        if (k % 100 == 0 || k == steps)
            printf("step %5ld  loss %.6f  accuracy %5.1f%%\n", k, tg_tensor_item(loss), 100 * acc);
        if (k == steps) break; /* the last pass only measures */
        for (int i = 0; i < 4; i++) tg_tensor_zero_grad(params[i]);
        if (tg_backward(loss, NULL) != TG_OK) {
            acc = -1;
            break;
        }
        for (int i = 0; i < 4; i++) sgd_step(params[i], LEARNING_RATE);
    }
    if (!T || acc < 0) acc = -1;
    tg_tape_free(T);
    return acc;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long steps = argc > 1 ? strtol(argv[1], &end, 10) : 1000;
    if (argc > 2 || (end && (end == argv[1] || *end)) || steps < 0 || steps > 10000000) {
        fprintf(stderr, "usage: custom_model [steps >= 0]\n");
        return 2;
    }
    static double X[N_POINTS][2], y[N_POINTS];
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    make_spiral(&rng, X, y);
    struct model m;
    struct tg_tensor *Xt = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){N_POINTS, 2}, &X[0][0]);
    struct tg_tensor *yt = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){N_POINTS}, y);
    double acc = model_init(&m, &rng) && Xt && yt ? train(&m, Xt, yt, y, steps) : -1;
    if (acc < 0)
        fprintf(stderr, "custom_model: %s\n", tg_last_error());
    else
        printf("final training accuracy %.1f%% (%ld steps)\n", 100 * acc, steps);
    struct tg_tensor *all[6] = {m.W1, m.b1, m.W2, m.b2, Xt, yt};
    for (int i = 0; i < 6; i++) tg_tensor_free(all[i]);
    return acc >= MIN_ACCURACY ? 0 : 1;
}
