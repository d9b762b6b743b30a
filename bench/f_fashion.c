/*
 * bench/f_fashion.c - F, Fashion-MNIST end to end, timed: MLP 784-256-128-10 ReLU,
 * cross-entropy, Adam lr 1e-3 with a cosine decay to 0 over all steps (set every
 * step, like the PyTorch peer), batch 128, inputs scaled to [0, 1], reshuffled every
 * epoch. Test accuracy after every epoch.
 *
 * Prints: TG workload=f wall_s=<training time incl. the per-epoch evaluation,
 * excluding the dataset load> test_acc=<final> time_to_target_s=<first time the
 * test accuracy reached the target, or NA> accs=<per epoch> samples_ms=<per epoch>.
 * Usage: f_fashion [--epochs N] [--threads T] [--data DIR] [--target PERCENT] [--serve]
 * --serve: one epoch per "STEP 1" read from stdin (bench-util.h), answered with
 * " SAMPLES=<epoch ms> ACC=<test accuracy>"; wall_s is then the sum of the epochs'
 * times (bench/run alternates the epochs of tapegrad and PyTorch).
 */
#include <math.h>
#include <tapegrad/tapegrad.h>
#include "../examples/fashion_data.h"
#include "bench-util.h"

static const char *str_opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

/* Test accuracy: forward in a no-grad scope, batches of 1000. */
static double accuracy(struct tg_nn_mlp *mlp, struct tg_tape *T, const struct tg_dataset *ds)
{
    int64_t n = tg_dataset_len(ds), right = 0, nb = tg_dataset_batch_count(ds, 1000);
    for (int64_t b = 0; b < nb; b++) {
        tg_tape_reset(T);
        tg_tape_no_grad_push(T);
        struct tg_tensor *X, *y;
        if (tg_dataset_batch(ds, T, b, 1000, &X, &y)) return NAN;
        struct tg_tensor *am =
            tg_argmax_axes(T, tg_nn_mlp_forward(mlp, T, X), (int[]){-1}, 1, false);
        tg_tape_no_grad_pop(T);
        if (!am) return NAN;
        for (int64_t i = 0; i < tg_tensor_numel(y); i++)
            right += tg_tensor_get(am, i) == tg_tensor_get(y, i);
    }
    return (double)right / (double)n;
}

int main(int argc, char **argv)
{
    int epochs = bench_int_opt(argc, argv, "--epochs", 20);
    const char *dir = str_opt(argc, argv, "--data", "/usr/share/datasets/fashion-mnist");
    double target = atof(str_opt(argc, argv, "--target", "88.5")) / 100;
    struct tg_dataset *train = fashion_load(dir, "train"), *test = fashion_load(dir, "t10k");
    if (!train || !test) {
        fprintf(stderr, "f_fashion: %s\n", tg_last_error());
        return 1;
    }
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    int64_t sizes[4] = {784, 256, 128, 10};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng);
    struct tg_params *params = tg_nn_mlp_params(mlp);
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    oc.lr = 1e-3;
    oc.zero_grad = true; /* the step clears each gradient: no zero-grad pass */
    struct tg_nn_optim *opt = tg_nn_optim_new(params, &oc);
    struct tg_tape *T = tg_tape_new();
    if (!mlp || !opt || !T) {
        fprintf(stderr, "f_fashion: %s\n", tg_last_error());
        return 1;
    }
    const int64_t B = 128, nb = tg_dataset_batch_count(train, B);
    const double total = (double)(nb * epochs);
    bool serve = bench_flag(argc, argv, "--serve");
    double *epoch_ms = malloc(sizeof *epoch_ms * (size_t)epochs),
           *accs = malloc(sizeof *accs * (size_t)epochs);
    if (!epoch_ms || !accs) return 1;
    double t_start = bench_now_ms(), elapsed = 0, to_target = -1;
    int e = 0;
    if (serve) bench_serve_ready();
    for (; e < epochs; e++) {
        if (serve && bench_serve_next() == 0) break;
        double t0 = bench_now_ms();
        tg_dataset_shuffle(train, &rng);
        for (int64_t b = 0; b < nb; b++) {
            double k = (double)(e * nb + b); /* cosine over all steps, like the peer */
            tg_nn_optim_set_lr(opt, 0.5 * 1e-3 * (1 + cos(M_PI * k / total)));
            tg_tape_reset(T);
            struct tg_tensor *X, *y;
            enum tg_status st = tg_dataset_batch(train, T, b, B, &X, &y);
            struct tg_tensor *loss =
                st ? NULL : tg_cross_entropy(T, tg_nn_mlp_forward(mlp, T, X), y, TG_REDUCE_MEAN);
            if (!loss || tg_nn_optim_backward_step(opt, loss, 1.0)) {
                fprintf(stderr, "\nf_fashion: %s\n", tg_last_error());
                return 1;
            }
        }
        accs[e] = accuracy(mlp, T, test);
        epoch_ms[e] = bench_now_ms() - t0;
        elapsed += epoch_ms[e];
        if (to_target < 0 && accs[e] >= target) to_target = elapsed / 1e3;
        if (serve) {
            printf(" SAMPLES=%.4f ACC=%.4f\n", epoch_ms[e], accs[e]);
            fflush(stdout);
        }
    }
    if (e == 0) return 1;
    /* wall time: the whole run, or in serve mode the epochs' own time */
    double wall = serve ? elapsed / 1e3 : (bench_now_ms() - t_start) / 1e3;
    printf("TG workload=f epochs=%d accs=", e);
    for (int i = 0; i < e; i++) printf("%s%.4f", i ? "," : "", accs[i]);
    printf(" wall_s=%.2f test_acc=%.4f target=%.4f time_to_target_s=", wall, accs[e - 1], target);
    if (to_target >= 0)
        printf("%.2f", to_target);
    else
        printf("NA");
    bench_print_samples(epoch_ms, e);
    free(epoch_ms);
    free(accs);
    tg_nn_optim_free(opt);
    tg_nn_mlp_free(mlp);
    tg_tape_free(T);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return 0;
}
