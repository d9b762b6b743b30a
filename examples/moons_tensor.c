/*
 * examples/moons_tensor.c - moons_scalar.c again, with tensors: the same data,
 * the same initial weights, the same loss and optimizer, a few dozen nodes a
 * step instead of 65,000.
 *
 * Two moons (100 points, noise 0.1, seed 42, examples/moons_data.h); an MLP
 * 2-16-16-1 built with tg_nn_mlp (relu hidden layers, a raw score out) whose
 * weights are then redrawn from U(-1, 1) in moons_scalar's order, so both
 * programs start from the same network; the full batch X (100, 2) goes through
 * it at once. Loss: the max-margin loss mean(relu(1 - y * score)) (tg_hinge)
 * plus the L2 penalty 1e-4 * sum(p^2) over every parameter (tg_l2_penalty is
 * 0.5 sum(p^2), hence the factor 2e-4). SGD (tg_nn_optim) with the rate
 * 1.0 - 0.9 k / 100 at step k, 100 steps.
 *
 * This program writes its own loop instead of calling tg_nn_train: the trainer
 * has no L2 term in its reported loss and no linear schedule (its SGD
 * weight_decay 2e-4 would give the same updates, but not the same printed loss,
 * and the rate must change every step).
 *
 * Usage: moons_tensor [steps]     (default 100)
 * Prints the loss, the accuracy and the tape's node count every 10 steps. Exit
 * status 1 when the full 100 steps end below 100% training accuracy or on a
 * library error, 2 on a usage error (steps outside 1..100: past step 111 the
 * rate would turn negative). It prints the same losses as moons_scalar; unrounded they
 * differ by at most 6e-15 relative (only the order of the sums differs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>
#include "moons_data.h"

enum { N_POINTS = 100, N_H = 16 };
#define L2_WEIGHT 1e-4

/* Redraws every weight from U(-1, 1), row by row and layer by layer (moons_scalar's
 * order: its neuron j of a layer draws its weights from input 0 upwards). */
static void init_weights(struct tg_nn_mlp *mlp, struct tg_rng *rng)
{
    for (int k = 0; k < tg_nn_mlp_layers(mlp); k++) {
        struct tg_tensor *W = tg_nn_mlp_weight(mlp, k); /* (out, in) */
        double *w = tg_tensor_data(W);
        for (int64_t i = 0; i < tg_tensor_numel(W); i++) w[i] = 2 * tg_rng_uniform(rng) - 1;
    }
}

/* hinge + 1e-4 sum(p^2) for scores (N, 1) and labels y (N, 1), recorded on T. */
static struct tg_tensor *objective(struct tg_tape *T, struct tg_params *params,
                                   struct tg_tensor *score, struct tg_tensor *y)
{
    struct tg_tensor *l2 = NULL;
    for (size_t i = 0; i < tg_params_count(params); i++) {
        struct tg_tensor *half_sq = tg_l2_penalty(T, tg_params_tensor(params, i));
        l2 = l2 ? tg_add(T, l2, half_sq) : half_sq;
    }
    return tg_add(T, tg_hinge(T, score, y, TG_REDUCE_MEAN), tg_mul_scalar(T, l2, 2 * L2_WEIGHT));
}

/* The fraction of scores (N, 1) whose sign matches y. */
static double accuracy(const struct tg_tensor *score, const double y[N_POINTS])
{
    int correct = 0;
    for (int p = 0; p < N_POINTS; p++) correct += (tg_tensor_get(score, p) > 0) == (y[p] > 0);
    return (double)correct / N_POINTS;
}

/* Trains for `steps` steps; returns the last accuracy, or -1 on error. */
static double train(struct tg_nn_mlp *mlp, double X[N_POINTS][2], const double y[N_POINTS],
                    long steps)
{
    struct tg_params *params = tg_nn_mlp_params(mlp);
    struct tg_nn_optim *opt =
        tg_nn_optim_new(params, &(struct tg_nn_optim_config){.kind = TG_OPTIM_SGD});
    struct tg_tape *T = tg_tape_new();
    double acc = opt && T ? 0 : -1, loss_v = 0;
    for (long k = 0; acc >= 0 && k < steps; k++) {
        tg_tape_reset(T);
        struct tg_tensor *Xt = tg_tape_constant(T, TG_F64, 2, (int64_t[]){N_POINTS, 2}, X);
        struct tg_tensor *yt = tg_tape_constant(T, TG_F64, 2, (int64_t[]){N_POINTS, 1}, y);
        struct tg_tensor *score = tg_nn_mlp_forward(mlp, T, Xt); /* (N, 1) */
        struct tg_tensor *loss = objective(T, params, score, yt);
        if (!loss || tg_params_zero_grad(params) || tg_backward(loss, NULL) ||
            tg_nn_optim_set_lr(opt, 1.0 - 0.9 * k / 100.0) || tg_nn_optim_step(opt, 1.0)) {
            acc = -1;
            break;
        }
        acc = accuracy(score, y);
        loss_v = tg_tensor_item(loss);
        if (k % 10 == 0 || k == steps - 1) {
            struct tg_tape_stats st;
            tg_tape_stats(T, &st);
            printf("step %3ld  loss %.6f  accuracy %5.1f%%  nodes %zu\n", k, loss_v, 100 * acc,
                   st.n_nodes);
        }
    }
    if (acc >= 0) printf("final: loss %.6f, training accuracy %.1f%%\n", loss_v, 100 * acc);
    tg_tape_free(T);
    tg_nn_optim_free(opt);
    return acc;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long steps = argc > 1 ? strtol(argv[1], &end, 10) : 100;
    if (argc > 2 || (end && (end == argv[1] || *end)) || steps < 1 || steps > 100) {
        fprintf(stderr, "usage: moons_tensor [steps 1..100]\n");
        return 2;
    }
    struct tg_rng rng, init_rng;
    tg_rng_seed(&rng, 42);
    static double X[N_POINTS][2], y[N_POINTS];
    moons_make(&rng, N_POINTS, X, y);
    tg_rng_seed(&init_rng, 0); /* tg_nn_mlp_new's draws are overwritten below */
    int64_t sizes[] = {2, N_H, N_H, 1};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F64, TG_INIT_UNIFORM, &init_rng);
    if (mlp) init_weights(mlp, &rng);
    double acc = mlp ? train(mlp, X, y, steps) : -1;
    if (acc < 0) fprintf(stderr, "moons_tensor: %s\n", tg_last_error());
    tg_nn_mlp_free(mlp);
    return acc < 0 || (steps == 100 && acc < 1.0) ? 1 : 0;
}
