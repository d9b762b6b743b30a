/*
 * examples/sine.c - regression: an MLP learns sin(x) on [-pi, pi].
 *
 * Data: N_TRAIN points x spread evenly over [-pi, pi] with targets sin(x).
 * Model: tg_nn_mlp 1-32-32-1, tanh hidden layers, a linear output,
 * Xavier-uniform weights. Training: tg_nn_train in mini-batch mode, MSE, batches
 * of 32 reshuffled every epoch, Adam with lr 0.01 decaying along a cosine to 0.
 * Every 100 epochs the mean training loss is printed; at the end the network
 * is evaluated on a grid of N_GRID points (most of them not training points)
 * and the largest |net(x) - sin(x)| is reported with a few sample values.
 *
 * Usage: sine [epochs]     (default 1000)
 * Exit status 0 when the max abs error on the grid is below MAX_ERROR (0.01), 1
 * otherwise (too few epochs, a library error), 2 on a usage error. With the
 * fixed seed 5 it ends at 0.0037 (at x = -pi, the edge of the data); seeds 1-8
 * and 42 ended between 0.0005 and 0.0072.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>

#define MAX_ERROR 0.01
#define LR        0.01
enum { N_TRAIN = 256, N_GRID = 1001, BATCH = 32, PRINT_EVERY = 100 };

static int print_loss(const struct tg_nn_epoch_info *e, void *ctx)
{
    int last = *(const int *)ctx;
    if (e->epoch % PRINT_EVERY == 0 || e->epoch == last - 1)
        printf("epoch %5d  lr %.5f  mse %.3e\n", e->epoch + 1, e->lr, e->loss);
    return 0;
}

/* x_i evenly spaced over [-pi, pi] (n points, ends included) and y_i = sin(x_i). */
static struct tg_dataset *sine_data(int n)
{
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    struct tg_dataset *ds = NULL;
    if (x && y) {
        for (int i = 0; i < n; i++) {
            x[i] = -M_PI + 2 * M_PI * i / (n - 1);
            y[i] = sin(x[i]);
        }
        ds = tg_dataset_new(tg_tensor_from_f64(TG_F64, 2, (int64_t[]){n, 1}, x),
                            tg_tensor_from_f64(TG_F64, 1, (int64_t[]){n}, y));
    }
    free(x);
    free(y);
    return ds;
}

/* The largest |net(x) - sin(x)| over the grid, printing a few points; -1 on error. */
static double max_error(struct tg_nn_mlp *mlp, const struct tg_dataset *grid)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *Y = tg_nn_mlp_forward(mlp, T, tg_dataset_x(grid)); /* (N_GRID, 1) */
    double worst = Y ? 0 : -1, at = 0;
    const double *x = tg_tensor_data(tg_dataset_x(grid)), *d = tg_tensor_data(tg_dataset_y(grid));
    for (int i = 0; Y && i < N_GRID; i++) {
        double err = fabs(tg_tensor_get(Y, i) - d[i]);
        if (i % 200 == 0)
            printf("  x %+.4f  sin %+.5f  net %+.5f  |err| %.5f\n", x[i], d[i], tg_tensor_get(Y, i),
                   err);
        if (err > worst) worst = err, at = x[i];
    }
    if (Y)
        printf("max |net(x) - sin(x)| over %d grid points: %.5f at x = %+.4f\n", N_GRID, worst, at);
    tg_tape_free(T);
    return worst;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long epochs = argc > 1 ? strtol(argv[1], &end, 10) : 1000;
    if (argc > 2 || (end && (end == argv[1] || *end)) || epochs < 1 || epochs > 1000000) {
        fprintf(stderr, "usage: sine [epochs >= 1]\n");
        return 2;
    }
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    int64_t sizes[] = {1, 32, 32, 1};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_TANH, TG_ACT_NONE, TG_F64, TG_INIT_XAVIER_UNIFORM, &rng);
    struct tg_dataset *train = sine_data(N_TRAIN), *grid = sine_data(N_GRID);
    struct tg_nn_module model = tg_nn_mlp_module(mlp);
    int last = (int)epochs;
    struct tg_nn_train_config cfg = tg_nn_train_defaults();
    cfg.mode = TG_TRAIN_MINIBATCH;
    cfg.batch_size = BATCH;
    cfg.shuffle = true;
    cfg.seed = 5;
    cfg.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    cfg.optim.lr = LR;
    cfg.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_COSINE, .t_max = last};
    cfg.max_epochs = last;
    cfg.on_epoch = print_loss;
    cfg.ctx = &last;
    struct tg_nn_train_result res;
    double err = -1;
    if (mlp && train && grid && tg_nn_train(&model, train, &cfg, &res) == TG_OK) {
        printf("trained %d epochs in %.2f s\n", res.epochs, res.seconds);
        err = max_error(mlp, grid);
    }
    if (err < 0) fprintf(stderr, "sine: %s\n", tg_last_error());
    tg_dataset_free(train);
    tg_dataset_free(grid);
    tg_nn_mlp_free(mlp);
    return err >= 0 && err < MAX_ERROR ? 0 : 1;
}
