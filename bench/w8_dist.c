/*
 * bench/w8_dist.c - W8 (../shared/BENCHMARKS.md), a data-parallel training step:
 * W1's MLP 784-512-512-10 (ReLU, softmax cross-entropy, f32, plain SGD lr 0.01)
 * with a global batch of 256 split over the ranks of mpirun (tapegrad/dist.h).
 *
 *     mpirun -np 2 w8_dist [--reps N] [--warmup N] [--no-overlap] [--dir DIR]
 *
 * One step on each rank: tape reset, its 256/N rows of the global batch onto
 * the tape, forward, loss (mean over its rows), tg_dist_reducer_begin, backward
 * (the reducer's hooks all-reduce the gradient buckets while the sweep runs),
 * tg_dist_reducer_finish, SGD update. --no-overlap begins the reducer after the
 * backward sweep instead, so the whole all-reduce is exposed (for comparison).
 * With -np 1 it is one process with the whole batch (run it with
 * OPENBLAS_NUM_THREADS=2 for W8's "1 process x 2 threads").
 * Rank 0 prints the median step time (every rank's step ends with the same
 * all-reduce, so the ranks' times agree), the median time spent in
 * tg_dist_reducer_finish (exposed_ms: the all-reduce not hidden behind the
 * sweep), the bytes all-reduced per step, and every sample:
 *   TG workload=w8 ranks=2 median_ms=... exposed_ms=... exposed_fraction=... ...
 * --dir DIR: rank 0 writes DIR/init.bin (the initial parameters, f32, in the
 * order layers.0.weight (512,784), layers.0.bias, ... layers.2.bias), DIR/x.bin
 * (the pool of batches, f32 (POOL*256, 784)), DIR/y.bin (int64 labels) before
 * the first step and DIR/final_tg<N>.bin after the last, so that
 * bench/peer_ddp.py can start from the same state and bench/run can compare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/dist.h>
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

enum { GLOBAL = 256, POOL = 20, N_IN = 784, N_OUT = 10 };

/* Writes the n bytes at p to DIR/name; 0 on success. */
static int dump(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(p, 1, n, f) != n;
    if (f && fclose(f)) bad = 1;
    if (bad) fprintf(stderr, "w8_dist: cannot write %s\n", path);
    return bad;
}

/* Every parameter's values, in map order, to DIR/name. */
static int dump_params(const char *dir, const char *name, const struct tg_params *p)
{
    size_t n = (size_t)tg_params_numel(p), k = 0;
    float *all = malloc(n * sizeof *all);
    if (!all) return 1;
    for (size_t i = 0; i < tg_params_count(p); i++) {
        const struct tg_tensor *t = tg_params_tensor(p, i);
        memcpy(all + k, tg_tensor_data(t), (size_t)tg_tensor_numel(t) * sizeof *all);
        k += (size_t)tg_tensor_numel(t);
    }
    int bad = dump(dir, name, all, n * sizeof *all);
    free(all);
    return bad;
}

struct bench {
    struct tg_dist *d;
    struct tg_nn_mlp *mlp;
    struct tg_dist_reducer *red;
    struct tg_nn_optim *opt;
    struct tg_tape *T;
    const float *X;
    const int64_t *Y;
    int64_t rows, first; /* this rank's rows of each global batch */
    bool overlap;
};

/* One step on global batch b; the time in tg_dist_reducer_finish goes to *exposed. */
static enum tg_status step(struct bench *s, int b, double *exposed)
{
    tg_tape_reset(s->T);
    size_t row0 = (size_t)b * GLOBAL + (size_t)s->first;
    struct tg_tensor *x =
        tg_tape_constant(s->T, TG_F32, 2, (int64_t[]){s->rows, N_IN}, s->X + row0 * N_IN);
    struct tg_tensor *logits = tg_nn_mlp_forward(s->mlp, s->T, x);
    struct tg_tensor *l = tg_cross_entropy_idx(s->T, logits, s->Y + row0, s->rows, TG_REDUCE_MEAN);
    if (!l) return tg_last_status();
    double w = (double)s->rows; /* local mean times local rows: the global mean */
    enum tg_status st = s->overlap ? tg_dist_reducer_begin(s->red, w, w) : TG_OK;
    if (st || (st = tg_backward(l, NULL))) return st;
    if (!s->overlap && (st = tg_dist_reducer_begin(s->red, w, w))) return st;
    double t0 = bench_now_ms();
    if ((st = tg_dist_reducer_finish(s->red))) return st;
    *exposed = bench_now_ms() - t0;
    return tg_nn_optim_step(s->opt, 1.0);
}

static int setup(struct bench *s, const char *dir)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    float *X = malloc(sizeof *X * (size_t)GLOBAL * N_IN * POOL);
    int64_t *Y = malloc(sizeof *Y * (size_t)GLOBAL * POOL);
    if (!X || !Y) return 1;
    for (size_t i = 0; i < (size_t)GLOBAL * N_IN * POOL; i++) X[i] = (float)tg_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)GLOBAL * POOL; i++) Y[i] = (int64_t)tg_rng_below(&rng, N_OUT);
    s->X = X, s->Y = Y;
    int r = tg_dist_rank(s->d), n = tg_dist_size(s->d);
    s->rows = GLOBAL / n + (r < GLOBAL % n),
    s->first = r * (GLOBAL / n) + (r < GLOBAL % n ? r : GLOBAL % n);
    int64_t sizes[4] = {N_IN, 512, 512, N_OUT};
    s->mlp = tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng);
    struct tg_params *p = tg_nn_mlp_params(s->mlp);
    struct tg_nn_optim_config oc = tg_nn_optim_defaults(TG_OPTIM_SGD);
    oc.lr = 0.01;
    oc.zero_grad = true; /* the step clears each gradient for the next backward */
    if (!s->mlp || tg_dist_broadcast_params(s->d, p) || !(s->opt = tg_nn_optim_new(p, &oc)) ||
        !(s->red = tg_dist_reducer_new(s->d, p, 0)) || !(s->T = tg_tape_new()))
        return 1;
    if (dir && r == 0 &&
        (dump_params(dir, "init.bin", p) ||
         dump(dir, "x.bin", X, sizeof *X * (size_t)GLOBAL * N_IN * POOL) ||
         dump(dir, "y.bin", Y, sizeof *Y * (size_t)GLOBAL * POOL)))
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 100);
    int warmup = bench_int_opt(argc, argv, "--warmup", 10);
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    struct bench s = {.overlap = !bench_flag(argc, argv, "--no-overlap")};
    if (!(s.d = tg_dist_init(&argc, &argv)))
        return fprintf(stderr, "w8_dist: %s\n", tg_last_error()), 1;
    double *t = malloc(sizeof *t * (size_t)reps), *ex = malloc(sizeof *ex * (size_t)reps);
    if (!t || !ex || setup(&s, dir)) {
        fprintf(stderr, "w8_dist: setup failed: %s\n", tg_last_error());
        tg_dist_abort(s.d, 1);
        return 1;
    }
    for (int i = -warmup; i < reps; i++) {
        double e = 0, t0 = bench_now_ms();
        if (step(&s, (i + warmup) % POOL, &e)) {
            fprintf(stderr, "w8_dist: rank %d: %s\n", tg_dist_rank(s.d), tg_last_error());
            tg_dist_abort(s.d, 1);
        }
        if (i >= 0) t[i] = bench_now_ms() - t0, ex[i] = e;
    }
    struct tg_dist_reducer_stats rs;
    tg_dist_reducer_stats(s.red, &rs);
    if (tg_dist_rank(s.d) == 0) {
        double med = bench_median(t, reps), exm = bench_median(ex, reps);
        printf("TG workload=w8 ranks=%d overlap=%d reps=%d median_ms=%.4f exposed_ms=%.4f "
               "exposed_fraction=%.4f buckets=%d sent_in_backward=%d allreduce_mib=%.3f",
               tg_dist_size(s.d), s.overlap, reps, med, exm, exm / med, rs.n_buckets,
               rs.sent_in_backward, (double)rs.bytes / (1 << 20));
        bench_print_list("exposed_samples_ms", ex, reps);
        bench_print_samples(t, reps);
        char name[64];
        snprintf(name, sizeof name, "final_tg%d.bin", tg_dist_size(s.d));
        if (dir && dump_params(dir, name, tg_nn_mlp_params(s.mlp))) tg_dist_abort(s.d, 1);
    }
    tg_dist_reducer_free(s.red);
    tg_nn_optim_free(s.opt);
    tg_nn_mlp_free(s.mlp);
    tg_tape_free(s.T);
    free((void *)s.X);
    free((void *)s.Y);
    free(t);
    free(ex);
    tg_dist_finalize(s.d);
    return 0;
}
