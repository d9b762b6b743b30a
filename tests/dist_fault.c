/*
 * tests/dist_fault.c - the program behind tests/dist_fault.sh: data-parallel
 * training (tg_dist_train, SGD, a checkpoint after every step) that a rank can
 * kill itself in, and the two checks of the run's files.
 *
 *   dist_fault train CKPT OUT [KILL_STEP [KILL_RANK]]   (under mpirun)
 *       trains 3 epochs, resuming from CKPT when it exists; rank KILL_RANK
 *       (default 1) dies by SIGKILL right after global step KILL_STEP; at the
 *       end rank 0 writes the parameters to OUT
 *   dist_fault intact CKPT        the checkpoint loads whole; prints its step
 *   dist_fault same A B           A and B hold the same parameters (relative
 *                                 1e-12): exit 0, else 1
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/dist.h>
#include <tapegrad/tapegrad.h>

struct kill_at {
    int64_t step;
    int rank, me;
};

static int maybe_die(int64_t step, void *ctx)
{
    const struct kill_at *k = ctx;
    if (k->me == k->rank && step == k->step) raise(SIGKILL);
    return 0;
}

/* 30 samples: y = 1 when x0 x1 > 0 (a problem an MLP needs its hidden layer for). */
static struct tg_dataset *make_data(void)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 17);
    struct tg_tensor *X = tg_tensor_uniform(TG_F64, 2, (int64_t[]){30, 2}, &rng, -1.0, 1.0);
    struct tg_tensor *y = tg_tensor_zeros(TG_F64, 1, (int64_t[]){30});
    for (int64_t i = 0; i < 30; i++)
        tg_tensor_set(y, i, tg_tensor_get(X, 2 * i) * tg_tensor_get(X, 2 * i + 1) > 0);
    return tg_dataset_new(X, y);
}

static int train(int argc, char **argv)
{
    struct tg_dist *d = tg_dist_init(&argc, &argv);
    if (!d) return fprintf(stderr, "dist_fault: %s\n", tg_last_error()), 1;
    tg_dist_set_timeout(d, 20.0);
    struct kill_at k = {argc > 4 ? atoll(argv[4]) : -1, argc > 5 ? atoi(argv[5]) : 1,
                        tg_dist_rank(d)};
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){2, 8, 2}, 3, TG_ACT_TANH, TG_ACT_NONE, TG_F64,
                                        TG_INIT_XAVIER_UNIFORM, &rng);
    struct tg_dataset *ds = make_data();
    struct tg_nn_module mod = tg_nn_mlp_module(m);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT, c.mode = TG_TRAIN_MINIBATCH, c.batch_size = 8, c.shuffle = true;
    c.seed = 5, c.max_epochs = 3, c.optim.lr = 0.5;
    struct tg_dist_train_options o = {.checkpoint = argv[2],
                                      .checkpoint_every = 1,
                                      .resume = true,
                                      .on_step = maybe_die,
                                      .ctx = &k};
    enum tg_status st = tg_dist_train(d, &mod, ds, &c, &o, NULL);
    if (!st) st = tg_dist_checkpoint_save(d, tg_nn_mlp_params(m), argv[3]);
    if (st) fprintf(stderr, "dist_fault: rank %d: %s\n", tg_dist_rank(d), tg_last_error());
    tg_dataset_free(ds);
    tg_nn_mlp_free(m);
    tg_dist_finalize(d);
    return st ? 1 : 0;
}

static int same(const char *a, const char *b)
{
    struct tg_params *pa = tg_checkpoint_read(a), *pb = tg_checkpoint_read(b);
    int bad = !pa || !pb || tg_params_count(pa) != tg_params_count(pb);
    for (size_t i = 0; !bad && i < tg_params_count(pa); i++) {
        const struct tg_tensor *ta = tg_params_tensor(pa, i);
        const struct tg_tensor *tb = tg_params_get(pb, tg_params_name(pa, i));
        bad = !tb || tg_tensor_numel(ta) != tg_tensor_numel(tb);
        for (int64_t j = 0; !bad && j < tg_tensor_numel(ta); j++) {
            double x = tg_tensor_get(ta, j), y = tg_tensor_get(tb, j);
            if (fabs(x - y) > 1e-12 * fmax(1.0, fabs(y))) {
                fprintf(stderr, "%s[%lld]: %.17g vs %.17g\n", tg_params_name(pa, i), (long long)j,
                        x, y);
                bad = 1;
            }
        }
    }
    tg_params_free(pa);
    tg_params_free(pb);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "train") == 0) return train(argc, argv);
    if (argc == 4 && strcmp(argv[1], "same") == 0) return same(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "intact") == 0) {
        struct tg_params *p = tg_checkpoint_read(argv[2]);
        const struct tg_tensor *s = tg_params_get(p, "dist.state");
        if (!s) return fprintf(stderr, "dist_fault: %s\n", tg_last_error()), 1;
        printf("%.0f\n", tg_tensor_get(s, 2));
        tg_params_free(p);
        return 0;
    }
    fprintf(stderr,
            "usage: dist_fault train CKPT OUT [KILL_STEP [RANK]] | intact CKPT | same A B\n");
    return 2;
}
