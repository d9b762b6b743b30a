/*
 * tests/check_dist.c - data-parallel training over MPI (dist/), run by mpirun
 * with 2 and 3 ranks (tests/meson.build, suite `dist`; CK_FORK=no: MPI does not
 * survive fork). Every rank runs every test in the same order.
 *
 * The central check: N ranks with parts of a global batch B give, after every
 * step, the parameters of one process with batch B, computed on each rank by a
 * reference model that never communicates (relative 1e-10 in f64; f32 within a
 * stated tolerance), with uneven parts and a last batch smaller than N. Also:
 * the API before initialisation, the broadcast, mismatched parameter lists and
 * datasets reported on every rank, the weighted average written out by hand,
 * a failed step on one rank, the shard's slices, rank-0 checkpoints, and a wait
 * that times out instead of hanging.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tapegrad/dist.h>
#include <tapegrad/tapegrad.h>

static struct tg_dist *D;
static int R, N;

/* The largest |a - b| over every element of the two maps, relative to max |b|. */
static double rel_diff(const struct tg_params *a, const struct tg_params *b)
{
    double dmax = 0.0, bmax = 0.0;
    for (size_t i = 0; i < tg_params_count(b); i++) {
        const struct tg_tensor *ta = tg_params_tensor(a, i), *tb = tg_params_tensor(b, i);
        for (int64_t k = 0; k < tg_tensor_numel(tb); k++) {
            dmax = fmax(dmax, fabs(tg_tensor_get(ta, k) - tg_tensor_get(tb, k)));
            bmax = fmax(bmax, fabs(tg_tensor_get(tb, k)));
        }
    }
    return dmax / bmax;
}

static struct tg_nn_mlp *mlp(enum tg_dtype dt, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    struct tg_nn_mlp *m = tg_nn_mlp_new((int64_t[]){5, 7, 3}, 3, TG_ACT_TANH, TG_ACT_NONE, dt,
                                        TG_INIT_XAVIER_UNIFORM, &rng);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* n samples of 5 features and a class 0..2 that depends on them. */
static struct tg_dataset *data(enum tg_dtype dt, int64_t n, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    struct tg_tensor *X = tg_tensor_normal(dt, 2, (int64_t[]){n, 5}, &rng, 0.0, 1.0);
    struct tg_tensor *y = tg_tensor_zeros(dt, 1, (int64_t[]){n});
    for (int64_t i = 0; i < n; i++) {
        double s = tg_tensor_get(X, 5 * i) + tg_tensor_get(X, 5 * i + 1);
        tg_tensor_set(y, i, s < -0.5 ? 0 : s < 0.5 ? 1 : 2);
    }
    struct tg_dataset *ds = tg_dataset_new(X, y);
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* ---- the API before initialisation, then MPI started through tg_dist_init ---- */

START_TEST(test_before_init)
{
    int inited = 1;
    MPI_Initialized(&inited);
    ck_assert_int_eq(inited, 0);
    ck_assert_ptr_null(tg_dist_adopt(MPI_COMM_WORLD));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "not initialised"));
    ck_assert_int_eq(tg_dist_rank(NULL), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_int_eq(tg_dist_size(NULL), -1);
    ck_assert_int_eq(tg_dist_check_params(NULL, NULL), TG_ERR_NULL);
    ck_assert_ptr_null(tg_dist_reducer_new(NULL, NULL, 0));
    ck_assert_ptr_null(tg_dist_shard_new(NULL, NULL, 1, 0));
    ck_assert_int_eq(tg_dist_checkpoint_save(NULL, NULL, "x"), TG_ERR_NULL);
    ck_assert_int_eq(tg_dist_train(NULL, NULL, NULL, NULL, NULL, NULL), TG_ERR_NULL);

    D = tg_dist_init(NULL, NULL);
    ck_assert_ptr_nonnull(D);
    R = tg_dist_rank(D), N = tg_dist_size(D);
    int wr = -1, ws = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    MPI_Comm_size(MPI_COMM_WORLD, &ws);
    ck_assert_int_eq(R, wr);
    ck_assert_int_eq(N, ws);
    ck_assert_int_ge(N, 2);
    ck_assert_ptr_null(tg_dist_adopt(MPI_COMM_NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_dist_abort(NULL, 3); /* returns: nothing to abort */
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_int_eq(tg_dist_set_timeout(D, 0.0), TG_ERR_VALUE);
    ck_assert_int_eq(tg_dist_set_timeout(D, 60.0), TG_OK);
}
END_TEST

/* ---- broadcast, and parameter lists that differ ---- */

START_TEST(test_broadcast)
{
    struct tg_nn_mlp *a = mlp(TG_F64, 100 + (uint64_t)R), *ref = mlp(TG_F64, 100);
    if (R > 0) ck_assert_double_gt(rel_diff(tg_nn_mlp_params(a), tg_nn_mlp_params(ref)), 0.01);
    ck_assert_int_eq(tg_dist_broadcast_params(D, tg_nn_mlp_params(a)), TG_OK);
    ck_assert_double_eq(rel_diff(tg_nn_mlp_params(a), tg_nn_mlp_params(ref)), 0.0);
    tg_nn_mlp_free(a);
    tg_nn_mlp_free(ref);
}
END_TEST

/* Variant _i on rank 1 only: 0 a name, 1 a shape, 2 a dtype, 3 one entry more. */
START_TEST(test_mismatch_on_every_rank)
{
    struct tg_params *p = tg_params_new();
    const char *name = R == 1 && _i == 0 ? "b" : "a";
    int64_t cols = R == 1 && _i == 1 ? 4 : 3;
    enum tg_dtype dt = R == 1 && _i == 2 ? TG_F32 : TG_F64;
    ck_assert_int_eq(tg_params_add_owned(p, name, tg_tensor_zeros(dt, 2, (int64_t[]){2, cols})),
                     TG_OK);
    if (R == 1 && _i == 3)
        tg_params_add_owned(p, "extra", tg_tensor_zeros(TG_F64, 1, (int64_t[]){1}));
    tg_tensor_set_requires_grad(tg_params_get(p, name), true);
    ck_assert_int_eq(tg_dist_broadcast_params(D, p), TG_ERR_MISMATCH);
    ck_assert_msg(strstr(tg_last_error(), "rank 1") != NULL, "%s", tg_last_error());
    const char *want[] = {"'b f64", "(2,4)", "f32", "more entries"};
    ck_assert_msg(strstr(tg_last_error(), want[_i]) != NULL, "%s", tg_last_error());
    ck_assert_ptr_null(tg_dist_reducer_new(D, p, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_MISMATCH);
    ck_assert_int_eq(tg_dist_allreduce_grads(D, p, 1, 1), TG_ERR_MISMATCH);
    tg_params_free(p);
    /* the communicator is still usable */
    struct tg_params *q = tg_params_new();
    tg_params_add_owned(q, "a", tg_tensor_full(TG_F64, 1, (int64_t[]){2}, R));
    ck_assert_int_eq(tg_dist_broadcast_params(D, q), TG_OK);
    ck_assert_double_eq(tg_tensor_get(tg_params_get(q, "a"), 1), 0.0);
    tg_params_free(q);
}
END_TEST

/* ---- the weighted average, written out ---- */

START_TEST(test_weighted_average)
{
    struct tg_params *p = tg_params_new();
    tg_params_add_owned(p, "w", tg_tensor_zeros(TG_F64, 1, (int64_t[]){3}));
    tg_params_add_owned(p, "v", tg_tensor_zeros(TG_F32, 1, (int64_t[]){2}));
    tg_params_add_owned(p, "frozen", tg_tensor_full(TG_F64, 1, (int64_t[]){2}, 7.0));
    for (int i = 0; i < 2; i++) tg_tensor_set_requires_grad(tg_params_tensor(p, (size_t)i), true);
    double *gw = tg_tensor_grad_mut(tg_params_get(p, "w"));
    float *gv = tg_tensor_grad_mut(tg_params_get(p, "v"));
    for (int k = 0; k < 3; k++) gw[k] = (R + 1) * (k + 1);
    for (int k = 0; k < 2; k++) gv[k] = (float)(10 * R - k);
    /* weight r + 2, count 1 + r: G = sum (r+2) g_r / sum (1+r) */
    ck_assert_int_eq(tg_dist_allreduce_grads(D, p, R + 2, 1 + R), TG_OK);
    double cnt = 0, sw[3] = {0}, sv[2] = {0};
    for (int r = 0; r < N; r++) {
        cnt += 1 + r;
        for (int k = 0; k < 3; k++) sw[k] += (r + 2) * (double)(r + 1) * (k + 1);
        for (int k = 0; k < 2; k++) sv[k] += (r + 2) * (double)(10 * r - k);
    }
    gw = tg_tensor_grad_mut(tg_params_get(p, "w"));
    gv = tg_tensor_grad_mut(tg_params_get(p, "v"));
    for (int k = 0; k < 3; k++) ck_assert_double_eq_tol(gw[k], sw[k] / cnt, 1e-12 * sw[k]);
    for (int k = 0; k < 2; k++)
        ck_assert_double_eq_tol(gv[k], sv[k] / cnt, 1e-5 * fabs(sv[k]) + 1e-6);
    ck_assert_double_eq(tg_tensor_get(tg_params_get(p, "frozen"), 0), 7.0);
    /* counts summing to 0: an error on every rank */
    ck_assert_int_eq(tg_dist_allreduce_grads(D, p, 1, 0), TG_ERR_VALUE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "sum to 0"));
    /* a failed step on rank 1: every other rank learns of it */
    struct tg_dist_reducer *red = tg_dist_reducer_new(D, p, 8);
    ck_assert_ptr_nonnull(red);
    ck_assert_int_eq(tg_dist_reducer_finish(red), TG_ERR_STATE);
    ck_assert_int_eq(tg_dist_reducer_begin(red, NAN, 1), TG_ERR_VALUE);
    ck_assert_int_eq(tg_dist_reducer_begin(red, 1, 1), TG_OK);
    ck_assert_int_eq(tg_dist_reducer_begin(red, 1, 1), TG_ERR_STATE);
    if (R == 1) {
        ck_assert_int_eq(tg_dist_reducer_abandon(red), TG_OK);
    } else {
        ck_assert_int_eq(tg_dist_reducer_finish(red), TG_ERR_STATE);
        ck_assert_ptr_nonnull(strstr(tg_last_error(), "another rank failed"));
    }
    tg_params_zero_grad(p); /* usable again: the average of rank + 1 is (N + 1) / 2 */
    ((double *)tg_tensor_grad_mut(tg_params_get(p, "w")))[0] = R + 1;
    ck_assert_int_eq(tg_dist_reducer_begin(red, 1, 1), TG_OK);
    ck_assert_int_eq(tg_dist_reducer_finish(red), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(tg_params_get(p, "w"), 0), (N + 1) / 2.0);
    struct tg_dist_reducer_stats s;
    ck_assert_int_eq(tg_dist_reducer_stats(red, &s), TG_OK);
    ck_assert_int_eq(s.n_buckets, 2); /* 8 bytes: one entry each, f32 and f64 apart */
    ck_assert_int_eq(s.bytes, 3 * 8 + 2 * 4);
    tg_dist_reducer_free(red);
    tg_params_free(p);
}
END_TEST

/* ---- the shard: disjoint slices that cover each batch; bad datasets ---- */

START_TEST(test_shard_slices)
{
    struct tg_dataset *ds = data(TG_F64, 17, 3);
    struct tg_dist_shard *s = tg_dist_shard_new(D, ds, 8, 9);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tg_dist_shard_batches(s), 3);
    for (int64_t b = 0; b < 3; b++) {
        int64_t st = 0, cnt = 0, tot = 0, mine[2], all[2 * 8];
        ck_assert_int_eq(tg_dist_shard_range(s, b, &st, &cnt, &tot), TG_OK);
        ck_assert_int_eq(tot, b < 2 ? 8 : 1);
        mine[0] = st, mine[1] = cnt;
        MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, MPI_COMM_WORLD);
        int64_t next = 8 * b;
        for (int r = 0; r < N; r++) { /* contiguous, in rank order, sizes within one */
            ck_assert_int_eq(all[2 * r], next);
            ck_assert_int_le(llabs(all[2 * r + 1] - tot / N), 1);
            next += all[2 * r + 1];
        }
        ck_assert_int_eq(next, 8 * b + tot);
    }
    ck_assert_int_eq(tg_dist_shard_range(s, 3, &(int64_t){0}, &(int64_t){0}, NULL), TG_ERR_RANGE);
    ck_assert_int_eq(tg_dist_shard_epoch(s, 2), TG_OK);
    ck_assert_int_eq(tg_dist_shard_epoch(s, 1), TG_ERR_STATE);
    tg_dist_shard_free(s);
    tg_dataset_free(ds);
    /* different data on rank 1, more ranks than examples, a batch smaller than N */
    ds = data(TG_F64, 17, R == 1 ? 4 : 3);
    ck_assert_ptr_null(tg_dist_shard_new(D, ds, 8, 9));
    ck_assert_int_eq(tg_last_status(), TG_ERR_MISMATCH);
    tg_dataset_free(ds);
    ds = data(TG_F64, 17, 3);
    ck_assert_ptr_null(tg_dist_shard_new(D, ds, N - 1, 9));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_dataset_free(ds);
    ds = data(TG_F64, N - 1, 3);
    ck_assert_ptr_null(tg_dist_shard_new(D, ds, 8, 9));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "cannot be split"));
    tg_dataset_free(ds);
}
END_TEST

/* ---- the same answer as one process with the whole batch ---- */

/* Steps of SGD (momentum when `momentum`) on 17 samples in global batches of 8
 * (the last batch has one sample: some ranks get none), 3 epochs, comparing
 * after every step; the largest relative difference seen goes to *worst. */
static void same_answer(enum tg_dtype dt, bool momentum, double tol, double *worst)
{
    struct tg_nn_mlp *a = mlp(dt, 7 + (uint64_t)R), *ref = mlp(dt, 7);
    struct tg_params *pa = tg_nn_mlp_params(a), *pr = tg_nn_mlp_params(ref);
    struct tg_nn_module ma = tg_nn_mlp_module(a), mr = tg_nn_mlp_module(ref);
    struct tg_dataset *ds = data(dt, 17, 3);
    ck_assert_int_eq(tg_dist_broadcast_params(D, pa), TG_OK);
    struct tg_dist_shard *s = tg_dist_shard_new(D, ds, 8, 5);
    struct tg_dist_reducer *red = tg_dist_reducer_new(D, pa, 64); /* several buckets */
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(red);
    struct tg_nn_optim_config oc =
        tg_nn_optim_defaults(momentum ? TG_OPTIM_MOMENTUM : TG_OPTIM_SGD);
    oc.lr = 0.5;
    struct tg_nn_optim *oa = tg_nn_optim_new(pa, &oc), *orf = tg_nn_optim_new(pr, &oc);
    struct tg_tape *T = tg_tape_new();
    *worst = 0.0;
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(tg_dist_shard_epoch(s, e), TG_OK);
        for (int64_t b = 0; b < tg_dist_shard_batches(s); b++) {
            int64_t st = 0, cnt = 0, tot = 0;
            tg_dist_shard_range(s, b, &st, &cnt, &tot);
            tg_params_zero_grad(pa);
            ck_assert_int_eq(tg_dist_reducer_begin(red, 1.0, (double)cnt), TG_OK);
            if (cnt > 0)
                ck_assert_int_eq(tg_nn_train_accumulate(&ma, T, ds, st, cnt, TG_LOSS_XENT,
                                                        TG_TRAIN_MINIBATCH, NULL, NULL),
                                 TG_OK);
            ck_assert_int_eq(tg_dist_reducer_finish(red), TG_OK);
            struct tg_dist_reducer_stats rs;
            tg_dist_reducer_stats(red, &rs); /* the hooks sent every bucket during the sweep */
            ck_assert_int_ge(rs.n_buckets, 3);
            ck_assert_int_eq(rs.sent_in_backward, cnt > 0 ? rs.n_buckets : 0);
            ck_assert_int_eq(tg_nn_optim_step(oa, 1.0), TG_OK);
            /* the reference: the whole global batch in this process */
            tg_params_zero_grad(pr);
            ck_assert_int_eq(tg_nn_train_accumulate(&mr, T, ds, 8 * b, tot, TG_LOSS_XENT,
                                                    TG_TRAIN_MINIBATCH, NULL, NULL),
                             TG_OK);
            ck_assert_int_eq(tg_nn_optim_step(orf, 1.0 / (double)tot), TG_OK);
            double dd = rel_diff(pa, pr);
            *worst = fmax(*worst, dd);
            ck_assert_msg(dd <= tol, "rank %d epoch %d batch %lld: relative difference %.3g > %.3g",
                          R, e, (long long)b, dd, tol);
        }
    }
    struct tg_nn_mlp *init = mlp(dt, 7); /* training moved the weights */
    ck_assert_double_gt(rel_diff(pa, tg_nn_mlp_params(init)), 0.01);
    tg_nn_mlp_free(init);
    tg_tape_free(T);
    tg_nn_optim_free(oa);
    tg_nn_optim_free(orf);
    tg_dist_reducer_free(red);
    tg_dist_shard_free(s);
    tg_dataset_free(ds);
    tg_nn_mlp_free(a);
    tg_nn_mlp_free(ref);
}

/* _i: bit 0 momentum, bit 1 f32. f64 within 1e-10; f32 within 1e-5 of the largest
 * weight (the ranks' partial sums round differently from one sum; 1e-5 is about
 * 100 f32 ulps after 9 steps). */
START_TEST(test_same_answer)
{
    bool f32 = _i & 2;
    double worst = 0.0;
    same_answer(f32 ? TG_F32 : TG_F64, _i & 1, f32 ? 1e-5 : 1e-10, &worst);
    if (R == 0)
        printf("same answer, %s, %s: largest relative difference %.3g\n", f32 ? "f32" : "f64",
               _i & 1 ? "momentum" : "sgd", worst);
}
END_TEST

/* tg_dist_train against tg_nn_train in one process: the same final parameters. */
START_TEST(test_train_equals_single_process)
{
    struct tg_nn_mlp *a = mlp(TG_F64, 11 + (uint64_t)R), *ref = mlp(TG_F64, 11);
    struct tg_nn_module ma = tg_nn_mlp_module(a), mr = tg_nn_mlp_module(ref);
    struct tg_dataset *ds = data(TG_F64, 23, 6), *ds_ref = data(TG_F64, 23, 6);
    struct tg_nn_train_config c = tg_nn_train_defaults();
    c.loss = TG_LOSS_XENT, c.mode = _i ? TG_TRAIN_PER_SAMPLE : TG_TRAIN_MINIBATCH;
    c.batch_size = 7, c.shuffle = true, c.seed = 42, c.max_epochs = 4;
    c.optim = tg_nn_optim_defaults(TG_OPTIM_MOMENTUM), c.optim.lr = 0.2;
    struct tg_nn_train_result rd, rs;
    ck_assert_int_eq(tg_dist_train(D, &ma, ds, &c, NULL, &rd), TG_OK);
    ck_assert_int_eq(tg_nn_train(&mr, ds_ref, &c, &rs), TG_OK);
    ck_assert_int_eq(rd.epochs, 4);
    ck_assert_double_le(rel_diff(tg_nn_mlp_params(a), tg_nn_mlp_params(ref)), 1e-10);
    ck_assert_double_eq_tol(rd.loss, rs.loss, 1e-10 * rs.loss);
    ck_assert_double_eq_tol(rd.accuracy, rs.accuracy, 1e-12);
    tg_dataset_free(ds);
    tg_dataset_free(ds_ref);
    tg_nn_mlp_free(a);
    tg_nn_mlp_free(ref);
}
END_TEST

/* ---- checkpoints from rank 0 only; a wait that times out ---- */

START_TEST(test_checkpoint_rank0)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/tg-dist-ckpt-%d.safetensors", (int)getppid());
    struct tg_params *p = tg_params_new();
    tg_params_add_owned(p, "w", tg_tensor_full(TG_F64, 1, (int64_t[]){2}, 3.0));
    /* the other ranks' paths lead nowhere: they must not write */
    ck_assert_int_eq(tg_dist_checkpoint_save(D, p, R == 0 ? path : "/nonexistent/dir/x"), TG_OK);
    if (R == 0) {
        struct tg_params *q = tg_checkpoint_read(path);
        ck_assert_ptr_nonnull(q);
        ck_assert_double_eq(tg_tensor_get(tg_params_get(q, "w"), 1), 3.0);
        tg_params_free(q);
        unlink(path);
    }
    tg_params_free(p);
}
END_TEST

START_TEST(test_timeout_not_hang)
{
    struct tg_dist *d2 = tg_dist_adopt(MPI_COMM_WORLD);
    ck_assert_ptr_nonnull(d2);
    struct tg_params *p = tg_params_new();
    tg_params_add_owned(p, "w", tg_tensor_zeros(TG_F64, 1, (int64_t[]){2}));
    if (R == 0) { /* rank 0 waits for the others, who come 1 s late */
        tg_dist_set_timeout(d2, 0.2);
        double t0 = MPI_Wtime();
        ck_assert_int_eq(tg_dist_check_params(d2, p), TG_ERR_IO);
        ck_assert_double_lt(MPI_Wtime() - t0, 0.9);
        ck_assert_ptr_nonnull(strstr(tg_last_error(), "no answer"));
        tg_dist_set_timeout(d2, 60);
    } else {
        sleep(1);
        ck_assert_int_eq(tg_dist_check_params(d2, p), TG_OK); /* meets rank 0's first */
    }
    ck_assert_int_eq(tg_dist_check_params(d2, p), TG_OK);
    tg_params_free(p);
    tg_dist_finalize(d2);
}
END_TEST

static Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_before_init);
    tcase_add_test(tc, test_broadcast);
    tcase_add_loop_test(tc, test_mismatch_on_every_rank, 0, 4);
    tcase_add_test(tc, test_weighted_average);
    tcase_add_test(tc, test_shard_slices);
    tcase_add_loop_test(tc, test_same_answer, 0, 4);
    tcase_add_loop_test(tc, test_train_equals_single_process, 0, 2);
    tcase_add_test(tc, test_checkpoint_rank0);
    tcase_add_test(tc, test_timeout_not_hang);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc = tg_test_run_suite(dist_suite());
    tg_dist_finalize(D);
    return rc;
}
