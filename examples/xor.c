/*
 * examples/xor.c - the source document's training algorithm, literally, on XOR.
 *
 * The four points (0,0) (0,1) (1,0) (1,1) with targets 0 1 1 0; an MLP 2-4-1
 * (tanh hidden layer, sigmoid output, Xavier-uniform weights, zero biases);
 * the divergence Div(Y, d) = (Y - d)^2 (MSE). tg_nn_train in TG_TRAIN_PER_SAMPLE
 * mode runs the document's loop as written:
 *
 *     do: Loss = 0; zero the gradients
 *         for t = 1..T: forward Y(X_t); Loss += Div(Y_t, d_t); backward (accumulate)
 *         W_k -= eta/T grad_W Loss;  b_k -= eta/T grad_b Loss     (plain SGD)
 *     until Loss has converged
 *
 * with T = 4 (the whole set, one update per epoch) and eta = 2. "Converged" is
 * the trainer's target_loss: the mean divergence below 0.001. The loss is
 * printed every 100 epochs, then the four outputs and their rounding.
 *
 * Usage: xor [max_epochs]     (default 5000)
 * Exit status 0 when all four rounded predictions equal the targets, 1 otherwise
 * (too few epochs, or a library error), 2 on a usage error. With the fixed
 * seed 3 it reaches the target after 400 epochs (seeds 1-10 and 42: 390 to 501).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>

#define ETA         2.0
#define TARGET_LOSS 1e-3
enum { N = 4, PRINT_EVERY = 100 };

static const double X[N][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}}; /* (4, 2) */
static const double D[N] = {0, 1, 1, 0};                        /* (4) */

static int print_loss(const struct tg_nn_epoch_info *e, void *ctx)
{
    (void)ctx;
    if (e->epoch % PRINT_EVERY == 0 || e->loss <= TARGET_LOSS)
        printf("epoch %5d  Loss/T %.6f\n", e->epoch + 1, e->loss);
    return 0;
}

/* Prints the outputs of the four inputs; returns how many round to their target. */
static int report(struct tg_nn_mlp *mlp, struct tg_tensor *Xt)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *Y = tg_nn_mlp_forward(mlp, T, Xt); /* (4, 1) */
    int right = 0;
    for (int t = 0; Y && t < N; t++) {
        double y = tg_tensor_get(Y, t);
        int rounded = y >= 0.5;
        right += rounded == (int)D[t];
        printf("  %g xor %g = %g   output %.4f -> %d  %s\n", X[t][0], X[t][1], D[t], y, rounded,
               rounded == (int)D[t] ? "right" : "WRONG");
    }
    if (!Y) right = -1;
    tg_tape_free(T);
    return right;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long max_epochs = argc > 1 ? strtol(argv[1], &end, 10) : 5000;
    if (argc > 2 || (end && (end == argv[1] || *end)) || max_epochs < 1 || max_epochs > 10000000) {
        fprintf(stderr, "usage: xor [max_epochs >= 1]\n");
        return 2;
    }
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    int64_t sizes[] = {2, 4, 1};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 3, TG_ACT_TANH, TG_ACT_SIGMOID, TG_F64, TG_INIT_XAVIER_UNIFORM, &rng);
    struct tg_tensor *Xt = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){N, 2}, &X[0][0]);
    struct tg_dataset *ds =
        tg_dataset_new(tg_tensor_copy(Xt), tg_tensor_from_f64(TG_F64, 1, (int64_t[]){N}, D));
    struct tg_nn_module model = tg_nn_mlp_module(mlp);
    struct tg_nn_train_config cfg = tg_nn_train_defaults(); /* MSE, per sample, T = all, SGD */
    cfg.optim.lr = ETA;
    cfg.max_epochs = (int)max_epochs;
    cfg.target_loss = TARGET_LOSS;
    cfg.on_epoch = print_loss;
    struct tg_nn_train_result res;
    int right = -1;
    if (mlp && Xt && ds && tg_nn_train(&model, ds, &cfg, &res) == TG_OK) {
        printf("stopped after %d epochs (%s), Loss/T %.6f\n", res.epochs,
               tg_nn_train_stop_name(res.stop), res.loss);
        right = report(mlp, Xt);
    }
    if (right < 0)
        fprintf(stderr, "xor: %s\n", tg_last_error());
    else
        printf("%d of 4 right\n", right);
    tg_dataset_free(ds);
    tg_tensor_free(Xt);
    tg_nn_mlp_free(mlp);
    return right == N ? 0 : 1;
}
