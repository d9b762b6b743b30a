/*
 * examples/dist_fashion.c - examples/fashion_mnist.c's model trained
 * data-parallel on the ranks of mpirun (tapegrad/dist.h):
 *
 *     mpirun -np 2 ./dist_fashion [DIR] [--epochs N] [--limit N] [--min-accuracy P]
 *
 * Every rank loads Fashion-MNIST and builds the MLP 784-256-128-10 (relu,
 * He-uniform, f32) from the same seed; tg_dist_train broadcasts rank 0's
 * weights, gives each rank its half of every batch of 128 (reshuffled every
 * epoch alike on all ranks), averages the gradients with an all-reduce that
 * overlaps the backward sweep, and applies Adam (lr 1e-3, cosine decay) on
 * every rank. The epoch loss is over all ranks; rank 0 prints. The last line is
 * `test accuracy: NN.NN%`; the exit status is 1 below --min-accuracy (default
 * 0), when a dataset file is missing or on an error, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/dist.h>
#include <tapegrad/tapegrad.h>
#include "fashion_data.h"

struct ctx {
    int rank;
    const struct tg_nn_module *model;
    const struct tg_dataset *test;
};

static int on_epoch(const struct tg_nn_epoch_info *e, void *p)
{
    const struct ctx *c = p;
    double acc = 0.0;
    if (tg_nn_evaluate(c->model, c->test, TG_LOSS_XENT, NULL, &acc)) return 1;
    if (c->rank == 0)
        printf("epoch %3d  lr %.6f  loss %.4f  train acc %6.2f%%  test acc %6.2f%%  %5.1f s\n",
               e->epoch + 1, e->lr, e->loss, 100 * e->accuracy, 100 * acc, e->seconds);
    fflush(stdout);
    return 0;
}

/* The first n rows of ds (freed) as a new dataset; ds itself when n is 0. */
static struct tg_dataset *first_rows(struct tg_dataset *ds, long n)
{
    if (!ds || n <= 0 || n >= tg_dataset_len(ds)) return ds;
    int64_t d = tg_dataset_features(ds);
    struct tg_dataset *out = tg_dataset_new(
        tg_tensor_from(TG_F32, 2, (int64_t[]){n, d}, tg_tensor_data(tg_dataset_x(ds))),
        tg_tensor_from(TG_F32, 1, (int64_t[]){n}, tg_tensor_data(tg_dataset_y(ds))));
    tg_dataset_free(ds);
    return out;
}

static int usage(void)
{
    fprintf(stderr, "usage: mpirun -np N dist_fashion [DIR] [--epochs N] [--limit N] "
                    "[--min-accuracy P]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    long epochs = 5, limit = 0;
    double min_acc = 0.0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--epochs"))
            epochs = strtol(v, &end, 10), i++;
        else if (!strcmp(argv[i], "--limit"))
            limit = strtol(v, &end, 10), i++;
        else if (!strcmp(argv[i], "--min-accuracy"))
            min_acc = strtod(v, &end), i++;
        else if (i == 1 && argv[i][0] != '-')
            continue;
        else
            return usage();
        if (!end || end == v || *end || epochs < 1 || limit < 0) return usage();
    }
    if (argc > 1 && argv[1][0] != '-') dir = argv[1];
    struct tg_dist *d = tg_dist_init(&argc, &argv);
    if (!d) return fprintf(stderr, "dist_fashion: %s\n", tg_last_error()), 1;
    int rank = tg_dist_rank(d);
    struct tg_dataset *train = first_rows(fashion_load(dir, "train"), limit);
    struct tg_dataset *test = fashion_load(dir, "t10k");
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    struct tg_nn_mlp *mlp = train && test
                                ? tg_nn_mlp_new((int64_t[]){784, 256, 128, 10}, 4, TG_ACT_RELU,
                                                TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng)
                                : NULL;
    int rc = 1;
    if (mlp) {
        struct tg_nn_module model = tg_nn_mlp_module(mlp);
        struct ctx c = {rank, &model, test};
        struct tg_nn_train_config cfg = tg_nn_train_defaults();
        cfg.loss = TG_LOSS_XENT, cfg.mode = TG_TRAIN_MINIBATCH, cfg.batch_size = 128;
        cfg.shuffle = true, cfg.seed = 1, cfg.max_epochs = (int)epochs;
        cfg.optim = tg_nn_optim_defaults(TG_OPTIM_ADAM);
        cfg.schedule = (struct tg_nn_lr_schedule){.kind = TG_LR_COSINE, .t_max = (int)epochs};
        cfg.on_epoch = on_epoch, cfg.ctx = &c;
        if (rank == 0)
            printf("fashion-mnist on %d ranks: %lld training images, global batch 128\n",
                   tg_dist_size(d), (long long)tg_dataset_len(train));
        double acc = 0.0;
        if (tg_dist_train(d, &model, train, &cfg, NULL, NULL) == TG_OK &&
            tg_nn_evaluate(&model, test, TG_LOSS_XENT, NULL, &acc) == TG_OK) {
            if (rank == 0) printf("test accuracy: %.2f%%\n", 100 * acc);
            rc = 100 * acc >= min_acc ? 0 : 1;
        }
    }
    if (rc && (!mlp || tg_last_status()))
        fprintf(stderr, "dist_fashion: rank %d: %s\n", rank, tg_last_error());
    tg_nn_mlp_free(mlp);
    tg_dataset_free(train);
    tg_dataset_free(test);
    if (rc) tg_dist_abort(d, rc); /* the other ranks may be waiting: end them too */
    tg_dist_finalize(d);
    return rc;
}
