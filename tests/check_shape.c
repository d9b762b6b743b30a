/*
 * tests/check_shape.c - the shape and indexing ops (ops/shape.c, ops/index.c)
 * with fixed values derived by hand: forward values, gradients under a chosen
 * seed (a slice with a negative step, repeated indices that accumulate, sums
 * over broadcast axes), f32 kernels, error codes and messages, empty tensors.
 * Every op is also gradchecked on random shapes by tests/check_ops.c.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <tapegrad/tapegrad.h>

#define NONE TG_SLICE_NONE

/* An f64 leaf with requires-grad, holding vals. */
static struct tg_tensor *leaf(int rank, const int64_t *shape, const double *vals)
{
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, rank, shape, vals);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, true);
    return t;
}
/* 0, 1, ..., n-1 in the given shape, requires-grad set. */
static struct tg_tensor *iota(int rank, const int64_t *shape)
{
    double v[64];
    for (int i = 0; i < 64; i++) v[i] = i;
    return leaf(rank, shape, v);
}
static void expect_shape(const struct tg_tensor *y, int rank, const int64_t *shape)
{
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_rank(y), rank);
    for (int d = 0; d < rank; d++) ck_assert_int_eq(tg_tensor_dim(y, d), shape[d]);
}
static void expect_values(const struct tg_tensor *y, int64_t n, const double *v)
{
    ck_assert_int_eq(tg_tensor_numel(y), n);
    for (int64_t i = 0; i < n; i++) ck_assert_double_eq(tg_tensor_get(y, i), v[i]);
}
static void expect_grad(const struct tg_tensor *x, int64_t n, const double *v)
{
    ck_assert_int_eq(tg_tensor_numel(x), n);
    for (int64_t i = 0; i < n; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), v[i]);
}
/* Backward from y with the seed gradient `seed` (y's shape). */
static void backward_seed(struct tg_tensor *y, const double *seed)
{
    struct tg_tensor *s = tg_tensor_from_f64(TG_F64, tg_tensor_rank(y), tg_tensor_shape(y), seed);
    ck_assert_int_eq(tg_backward(y, s), TG_OK);
    tg_tensor_free(s);
}
static void expect_error(const struct tg_tensor *y, enum tg_status st, const char *msg)
{
    ck_assert_ptr_null(y);
    ck_assert_int_eq(tg_last_status(), st);
    if (msg) ck_assert_str_eq(tg_last_error(), msg);
}

START_TEST(test_reshape)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(2, (int64_t[]){2, 3});
    struct tg_tensor *y = tg_reshape(T, x, 2, (int64_t[]){3, -1});
    expect_shape(y, 2, (int64_t[]){3, 2});
    expect_values(y, 6, (double[]){0, 1, 2, 3, 4, 5});
    backward_seed(y, (double[]){10, 20, 30, 40, 50, 60});
    expect_grad(x, 6, (double[]){10, 20, 30, 40, 50, 60});
    expect_error(tg_reshape(T, x, 0, NULL), TG_ERR_SHAPE, "reshape: cannot reshape (2,3) into ()");
    expect_error(tg_reshape(T, x, 2, (int64_t[]){4, 2}), TG_ERR_SHAPE,
                 "reshape: cannot reshape (2,3) into (4,2)");
    expect_error(tg_reshape(T, x, 2, (int64_t[]){-1, -1}), TG_ERR_SHAPE,
                 "reshape: cannot reshape (2,3) into (-1,-1)");
    expect_error(tg_reshape(T, x, 2, (int64_t[]){4, -1}), TG_ERR_SHAPE, NULL);
    expect_error(tg_reshape(T, x, 2, (int64_t[]){-2, -3}), TG_ERR_SHAPE, NULL);
    expect_error(tg_reshape(T, x, 9, (int64_t[9]){0}), TG_ERR_RANGE, NULL);
    expect_error(tg_reshape(T, x, 2, NULL), TG_ERR_NULL, NULL);
    /* (6) -> (1,6,1,1), and a scalar -> (1) */
    expect_shape(tg_reshape(T, tg_reshape(T, x, 1, (int64_t[]){6}), 4, (int64_t[]){1, -1, 1, 1}), 4,
                 (int64_t[]){1, 6, 1, 1});
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 2.5);
    struct tg_tensor *s1 = tg_reshape(T, s, 1, (int64_t[]){-1});
    expect_shape(s1, 1, (int64_t[]){1});
    ck_assert_double_eq(tg_tensor_item(s1), 2.5);
    tg_tensor_free(s);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_squeeze_unsqueeze)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(3, (int64_t[]){1, 3, 1});
    expect_shape(tg_squeeze(T, x, 0), 2, (int64_t[]){3, 1});
    expect_shape(tg_squeeze(T, x, -1), 2, (int64_t[]){1, 3});
    struct tg_tensor *y = tg_squeeze_all(T, x);
    expect_shape(y, 1, (int64_t[]){3});
    expect_values(y, 3, (double[]){0, 1, 2});
    backward_seed(y, (double[]){7, 8, 9});
    expect_grad(x, 3, (double[]){7, 8, 9});
    expect_error(tg_squeeze(T, x, 1), TG_ERR_SHAPE, "squeeze: axis 1 of (1,3,1) has size 3, not 1");
    expect_error(tg_squeeze(T, x, 3), TG_ERR_RANGE, "squeeze: axis 3 is out of range for (1,3,1)");
    expect_shape(tg_squeeze_all(T, tg_reshape(T, x, 2, (int64_t[]){1, 1 * 3})), 1, (int64_t[]){3});
    struct tg_tensor *one = iota(2, (int64_t[]){1, 1});
    expect_shape(tg_squeeze_all(T, one), 0, NULL);

    struct tg_tensor *v = iota(1, (int64_t[]){3});
    expect_shape(tg_unsqueeze(T, v, 0), 2, (int64_t[]){1, 3});
    expect_shape(tg_unsqueeze(T, v, 1), 2, (int64_t[]){3, 1});
    expect_shape(tg_unsqueeze(T, v, -1), 2, (int64_t[]){3, 1});
    expect_shape(tg_unsqueeze(T, v, -2), 2, (int64_t[]){1, 3});
    expect_error(tg_unsqueeze(T, v, 2), TG_ERR_RANGE, "unsqueeze: axis 2 is out of range for (3)");
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 4);
    expect_shape(tg_unsqueeze(T, s, 0), 1, (int64_t[]){1});
    struct tg_tensor *big = tg_tensor_zeros(TG_F64, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1});
    expect_error(tg_unsqueeze(T, big, 0), TG_ERR_RANGE, NULL);
    tg_tensor_free(big);
    tg_tensor_free(s);
    tg_tensor_free(v);
    tg_tensor_free(one);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* y = x^T for x = [[0,1,2],[3,4,5]]; dx[j][i] = dy[i][j]. */
START_TEST(test_transpose)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(2, (int64_t[]){2, 3});
    struct tg_tensor *y = tg_transpose(T, x, 0, -1);
    expect_shape(y, 2, (int64_t[]){3, 2});
    expect_values(y, 6, (double[]){0, 3, 1, 4, 2, 5});
    backward_seed(y, (double[]){0, 1, 2, 3, 4, 5});
    expect_grad(x, 6, (double[]){0, 2, 4, 1, 3, 5});
    expect_values(tg_transpose(T, x, 1, 1), 6, (double[]){0, 1, 2, 3, 4, 5});
    expect_error(tg_transpose(T, x, 0, 2), TG_ERR_RANGE,
                 "transpose: axis 2 is out of range for (2,3)");
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* x = arange(24) as (2,3,4), so x[i][j][k] = 12i + 4j + k; perm (2,0,1) gives
 * y (4,2,3) with y[k][i][j] = x[i][j][k]. */
START_TEST(test_permute)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(3, (int64_t[]){2, 3, 4});
    struct tg_tensor *y = tg_permute(T, x, 3, (int[]){2, 0, 1});
    expect_shape(y, 3, (int64_t[]){4, 2, 3});
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                ck_assert_double_eq(tg_tensor_get(y, k * 6 + i * 3 + j), 12 * i + 4 * j + k);
    /* seed dy = y's values: backward puts every value back where it came from */
    double seed[24];
    for (int f = 0; f < 24; f++) seed[f] = tg_tensor_get(y, f);
    backward_seed(y, seed);
    for (int f = 0; f < 24; f++) ck_assert_double_eq(tg_tensor_grad_get(x, f), f);
    ck_assert_double_eq(tg_tensor_get(tg_permute(T, x, 3, (int[]){-1, 0, 1}), 8), 9);
    expect_error(tg_permute(T, x, 3, (int[]){0, 0, 1}), TG_ERR_VALUE,
                 "permute: axis 0 appears twice in the permutation of (2,3,4)");
    expect_error(tg_permute(T, x, 2, (int[]){0, 1}), TG_ERR_SHAPE,
                 "permute: 2 axes given for (2,3,4) of rank 3");
    expect_error(tg_permute(T, x, 3, (int[]){0, 1, 3}), TG_ERR_RANGE,
                 "permute: axis 3 is out of range for (2,3,4)");
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* x (3,1) = [1,2,3] broadcast to (2,3,2): y[a][i][c] = x[i], and
 * dx[i] = sum_{a,c} dy[a][i][c]; with dy = arange(12): 0+1+6+7, 2+3+8+9, 4+5+10+11. */
START_TEST(test_broadcast_to)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, (int64_t[]){3, 1}, (double[]){1, 2, 3});
    struct tg_tensor *y = tg_broadcast_to(T, x, 3, (int64_t[]){2, 3, 2});
    expect_shape(y, 3, (int64_t[]){2, 3, 2});
    expect_values(y, 12, (double[]){1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
    backward_seed(y, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    expect_grad(x, 3, (double[]){14, 22, 30});
    struct tg_tensor *z = iota(2, (int64_t[]){2, 3});
    expect_error(tg_broadcast_to(T, z, 2, (int64_t[]){4, 3}), TG_ERR_SHAPE,
                 "broadcast_to: cannot broadcast (2,3) to (4,3)");
    expect_error(tg_broadcast_to(T, z, 1, (int64_t[]){3}), TG_ERR_SHAPE,
                 "broadcast_to: cannot broadcast (2,3) to (3)");
    /* a size-1 axis may become 0 */
    expect_shape(tg_broadcast_to(T, x, 2, (int64_t[]){3, 0}), 2, (int64_t[]){3, 0});
    tg_tensor_free(z);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

static struct tg_tensor *slice1(struct tg_tape *T, struct tg_tensor *x, int64_t a, int64_t b,
                                int64_t c)
{
    return tg_slice(T, x, 1, (struct tg_slice_spec[]){{a, b, c}});
}

/* Python slicing of x = arange(10). */
START_TEST(test_slice_1d)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(1, (int64_t[]){10});
    struct tg_tensor *y = slice1(T, x, 8, 1, -3); /* x[8:1:-3] */
    expect_values(y, 3, (double[]){8, 5, 2});
    backward_seed(y, (double[]){1, 2, 3});
    expect_grad(x, 10, (double[]){0, 0, 3, 0, 0, 2, 0, 0, 1, 0});
    expect_values(slice1(T, x, NONE, NONE, -1), 10, (double[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    expect_values(slice1(T, x, -3, NONE, NONE), 3, (double[]){7, 8, 9});
    expect_values(slice1(T, x, -100, 100, 4), 3, (double[]){0, 4, 8});
    expect_values(slice1(T, x, NONE, NONE, -4), 3, (double[]){9, 5, 1});
    expect_values(slice1(T, x, NONE, -11, -1), 10, (double[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    struct tg_tensor *e = slice1(T, x, 5, 2, 1); /* x[5:2] is empty */
    expect_shape(e, 1, (int64_t[]){0});
    expect_shape(slice1(T, x, -11, NONE, -1), 1, (int64_t[]){0});
    expect_error(slice1(T, x, 0, 5, 0), TG_ERR_VALUE, "slice: step 0 on axis 0");
    expect_error(tg_slice(T, x, 2, (struct tg_slice_spec[]){{0, 1, 1}, {0, 1, 1}}), TG_ERR_RANGE,
                 "slice: 2 axes sliced but (10) has rank 1");
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* x = arange(12) as (3,4): x[::-2, 1:3] = rows 2, 0 and columns 1, 2. */
START_TEST(test_slice_2d)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(2, (int64_t[]){3, 4});
    struct tg_tensor *y = tg_slice(T, x, 2, (struct tg_slice_spec[]){{NONE, NONE, -2}, {1, 3, 1}});
    expect_shape(y, 2, (int64_t[]){2, 2});
    expect_values(y, 4, (double[]){9, 10, 1, 2});
    backward_seed(y, (double[]){1, 2, 3, 4});
    expect_grad(x, 12, (double[]){0, 3, 4, 0, 0, 0, 0, 0, 0, 1, 2, 0});
    struct tg_tensor *c = tg_slice_axis(T, x, 1, -1, NONE, 1); /* x[:, -1:] */
    expect_shape(c, 2, (int64_t[]){3, 1});
    expect_values(c, 3, (double[]){3, 7, 11});
    expect_values(tg_slice_axis(T, x, 0, 1, 2, 1), 4, (double[]){4, 5, 6, 7});
    expect_error(tg_slice_axis(T, x, 2, 0, 1, 1), TG_ERR_RANGE,
                 "slice: axis 2 is out of range for (3,4)");
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* An embedding lookup: rows 2, 0, 2, 2 of x = [[1,2],[3,4],[5,6]]. Row 2 is
 * used three times, so its gradient is the sum of three rows of dy. */
START_TEST(test_index_select)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6});
    int64_t idx[4] = {2, 0, 2, 2};
    struct tg_tensor *y = tg_index_select(T, x, 0, idx, 4);
    idx[0] = 1; /* the op keeps its own copy */
    expect_shape(y, 2, (int64_t[]){4, 2});
    expect_values(y, 8, (double[]){5, 6, 1, 2, 5, 6, 5, 6});
    backward_seed(y, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    expect_grad(x, 6, (double[]){3, 4, 0, 0, 1 + 5 + 7, 2 + 6 + 8});
    /* along axis 1: columns 1, 1, 0 */
    struct tg_tensor *z = tg_index_select(T, x, -1, (int64_t[]){1, 1, 0}, 3);
    expect_shape(z, 2, (int64_t[]){3, 3});
    expect_values(z, 9, (double[]){2, 2, 1, 4, 4, 3, 6, 6, 5});
    tg_tensor_zero_grad(x);
    backward_seed(z, (double[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    expect_grad(x, 6, (double[]){1, 2, 1, 2, 1, 2});
    /* the tensor form */
    struct tg_tensor *it = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){4}, (double[]){2, 0, 2, 2});
    expect_values(tg_index_select_tensor(T, x, 0, it), 8, (double[]){5, 6, 1, 2, 5, 6, 5, 6});
    /* no indices: an empty result */
    expect_shape(tg_index_select(T, x, 0, NULL, 0), 2, (int64_t[]){0, 2});
    expect_error(tg_index_select(T, x, 0, (int64_t[]){0, 3}, 2), TG_ERR_RANGE,
                 "index_select: index 3 at position 1 is out of range for axis 0 of (3,2)");
    expect_error(tg_index_select(T, x, 0, (int64_t[]){-1}, 1), TG_ERR_RANGE,
                 "index_select: index -1 at position 0 is out of range for axis 0 of (3,2)");
    expect_error(tg_index_select(T, x, 2, (int64_t[]){0}, 1), TG_ERR_RANGE,
                 "index_select: axis 2 is out of range for (3,2)");
    tg_tensor_set(it, 1, 1.5);
    expect_error(tg_index_select_tensor(T, x, 0, it), TG_ERR_RANGE,
                 "index_select: index 1.5 at position 1 is not a whole number");
    tg_tensor_set(it, 1, NAN);
    expect_error(tg_index_select_tensor(T, x, 0, it), TG_ERR_RANGE, NULL);
    struct tg_tensor *i2 = tg_tensor_zeros(TG_F64, 2, (int64_t[]){2, 2});
    expect_error(tg_index_select_tensor(T, x, 0, i2), TG_ERR_SHAPE,
                 "index_select: the index must have rank 1, not shape (2,2)");
    tg_clear_error();
    expect_error(tg_index_select_tensor(T, x, 0, NULL), TG_ERR_NULL, NULL);
    tg_tensor_free(i2);
    tg_tensor_free(it);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* torch.gather(t, 1, [[0,0],[1,0]]) on t = [[1,2],[3,4]] is [[1,1],[4,3]];
 * with dy = 1 the gradient counts how often each element was picked. */
START_TEST(test_gather)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
    struct tg_tensor *y = tg_gather(T, x, 1, 2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 0});
    expect_shape(y, 2, (int64_t[]){2, 2});
    expect_values(y, 4, (double[]){1, 1, 4, 3});
    backward_seed(y, (double[]){1, 1, 1, 1});
    expect_grad(x, 4, (double[]){2, 0, 1, 1});
    /* along axis 0 with a smaller index: y[0][j] = x[idx[0][j]][j] */
    expect_values(tg_gather(T, x, 0, 2, (int64_t[]){1, 2}, (int64_t[]){1, 0}), 2, (double[]){3, 2});
    /* picking one class per row, as a loss does: the tensor form */
    struct tg_tensor *cls = tg_tensor_from_f64(TG_F32, 2, (int64_t[]){2, 1}, (double[]){1, 0});
    struct tg_tensor *p = tg_gather_tensor(T, x, -1, cls);
    expect_shape(p, 2, (int64_t[]){2, 1});
    expect_values(p, 2, (double[]){2, 3});
    expect_error(tg_gather(T, x, 1, 2, (int64_t[]){1, 1}, (int64_t[]){2}), TG_ERR_RANGE,
                 "gather: index 2 at position 0 is out of range for axis 1 of (2,2)");
    expect_error(tg_gather(T, x, 1, 2, (int64_t[]){3, 1}, (int64_t[]){0, 0, 0}), TG_ERR_SHAPE,
                 "gather: index shape (3,1) exceeds input (2,2) on axis 0");
    expect_error(tg_gather(T, x, 0, 1, (int64_t[]){2}, (int64_t[]){0, 0}), TG_ERR_SHAPE,
                 "gather: index shape (2) and input (2,2) differ in rank");
    tg_tensor_set(cls, 0, 0.25);
    expect_error(tg_gather_tensor(T, x, 1, cls), TG_ERR_RANGE,
                 "gather: index 0.25 at position 0 is not a whole number");
    tg_tensor_free(cls);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* concat([[1],[2]], [[3,4],[5,6]], axis 1) = [[1,3,4],[2,5,6]]; each input's
 * gradient is its own block of dy. */
START_TEST(test_concat)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = leaf(2, (int64_t[]){2, 1}, (double[]){1, 2});
    struct tg_tensor *b = leaf(2, (int64_t[]){2, 2}, (double[]){3, 4, 5, 6});
    struct tg_tensor *e = tg_tensor_zeros(TG_F64, 2, (int64_t[]){2, 0});
    struct tg_tensor *y = tg_concat(T, 3, (struct tg_tensor *[]){a, e, b}, 1);
    expect_shape(y, 2, (int64_t[]){2, 3});
    expect_values(y, 6, (double[]){1, 3, 4, 2, 5, 6});
    ck_assert_int_eq(tg_tensor_n_inputs(y), 3);
    ck_assert_int_eq(tg_op_arity(TG_OP_CONCAT), -1);
    backward_seed(y, (double[]){10, 20, 30, 40, 50, 60});
    expect_grad(a, 2, (double[]){10, 40});
    expect_grad(b, 4, (double[]){20, 30, 50, 60});
    struct tg_tensor *bt = tg_transpose(T, b, 0, 1);
    expect_values(tg_concat(T, 2, (struct tg_tensor *[]){bt, b}, 0), 8,
                  (double[]){3, 5, 4, 6, 3, 4, 5, 6});
    expect_values(tg_concat(T, 1, &a, -1), 2, (double[]){1, 2});
    expect_error(tg_concat(T, 2, (struct tg_tensor *[]){a, tg_transpose(T, a, 0, 1)}, 1),
                 TG_ERR_SHAPE, "concat: shapes (2,1) and (1,2) (input 2) differ outside axis 1");
    expect_error(tg_concat(T, 0, NULL, 0), TG_ERR_VALUE, "concat: no tensors to join (n = 0)");
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 1);
    expect_error(tg_concat(T, 1, &s, 0), TG_ERR_RANGE, "concat: axis 0 is out of range for ()");
    struct tg_tensor *f = tg_tensor_zeros(TG_F32, 2, (int64_t[]){2, 1});
    expect_error(tg_concat(T, 2, (struct tg_tensor *[]){a, f}, 1), TG_ERR_DTYPE, NULL);
    tg_clear_error();
    expect_error(tg_concat(T, 2, (struct tg_tensor *[]){a, NULL}, 1), TG_ERR_NULL,
                 "concat: input 2 is NULL");
    tg_tensor_free(f);
    tg_tensor_free(s);
    tg_tensor_free(e);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* stack([1,2], [3,4]) on axis 0 is [[1,2],[3,4]], on axis 1 [[1,3],[2,4]]. */
START_TEST(test_stack)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *a = leaf(1, (int64_t[]){2}, (double[]){1, 2});
    struct tg_tensor *b = leaf(1, (int64_t[]){2}, (double[]){3, 4});
    struct tg_tensor *ab[2] = {a, b};
    struct tg_tensor *y0 = tg_stack(T, 2, ab, 0);
    expect_shape(y0, 2, (int64_t[]){2, 2});
    expect_values(y0, 4, (double[]){1, 2, 3, 4});
    struct tg_tensor *y1 = tg_stack(T, 2, ab, -1);
    expect_shape(y1, 2, (int64_t[]){2, 2});
    expect_values(y1, 4, (double[]){1, 3, 2, 4});
    backward_seed(y1, (double[]){1, 2, 3, 4});
    expect_grad(a, 2, (double[]){1, 3});
    expect_grad(b, 2, (double[]){2, 4});
    /* scalars stack into a vector */
    struct tg_tensor *s = tg_tensor_scalar(TG_F64, 5), *ss[3] = {s, s, s};
    expect_values(tg_stack(T, 3, ss, 0), 3, (double[]){5, 5, 5});
    struct tg_tensor *c = leaf(1, (int64_t[]){3}, (double[]){1, 2, 3});
    expect_error(tg_stack(T, 2, (struct tg_tensor *[]){a, c}, 0), TG_ERR_SHAPE,
                 "stack: shapes (2) and (3) (input 2) differ");
    expect_error(tg_stack(T, 2, ab, 2), TG_ERR_RANGE, "stack: axis 2 is out of range for (2)");
    expect_error(tg_stack(T, -1, ab, 0), TG_ERR_VALUE, NULL);
    tg_tensor_free(c);
    tg_tensor_free(s);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(T);
}
END_TEST

/* The f32 kernels: the same values and gradients as f64. */
START_TEST(test_f32)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_arange(TG_F32, 0, 6, 1);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *m = tg_reshape(T, x, 2, (int64_t[]){2, 3});
    struct tg_tensor *t = tg_transpose(T, m, 0, 1);                       /* [0,3,1,4,2,5] */
    struct tg_tensor *r = tg_slice_axis(T, t, 0, NONE, NONE, -2);         /* rows 2, 0: [2,5,0,3] */
    struct tg_tensor *i = tg_index_select(T, r, 1, (int64_t[]){1, 1}, 2); /* [5,5,3,3] */
    struct tg_tensor *g = tg_gather(T, m, 1, 2, (int64_t[]){2, 1}, (int64_t[]){2, 0}); /* [2,3] */
    struct tg_tensor *b = tg_broadcast_to(T, g, 2, (int64_t[]){2, 2}); /* [2,2,3,3] */
    /* concat on axis 0 and stack on axis 0 lay out the same elements: (4,2) and (2,2,2) */
    struct tg_tensor *st = tg_stack(T, 2, (struct tg_tensor *[]){i, b}, 0);
    struct tg_tensor *y = tg_sum(T, tg_mul(T, tg_concat(T, 2, (struct tg_tensor *[]){i, b}, 0),
                                           tg_reshape(T, st, 2, (int64_t[]){4, 2})));
    ck_assert_int_eq(tg_tensor_dtype(y), TG_F32);
    expect_values(i, 4, (double[]){5, 5, 3, 3});
    expect_values(b, 4, (double[]){2, 2, 3, 3});
    /* y = sum(i^2) + sum(b^2) = 25+25+9+9 + 4+4+9+9 */
    ck_assert_double_eq(tg_tensor_item(y), 94);
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    /* dy/di = 2i, and i's entries 5 (x[5]) and 3 (x[3]) each appear twice:
     * dx5 = 2*5*2 = 20, dx3 = 2*3*2 = 12; b = g broadcast: g[0] = x[2] twice,
     * g[1] = x[3] twice: dx2 = 2*2*2 = 8, dx3 += 2*3*2 = 12 */
    expect_grad(x, 6, (double[]){0, 0, 8, 24, 0, 20});
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Empty tensors pass through every op, and backward through them is a no-op. */
START_TEST(test_zero_size)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_zeros(TG_F64, 2, (int64_t[]){0, 3});
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *w = iota(1, (int64_t[]){3});
    expect_shape(tg_reshape(T, x, 2, (int64_t[]){3, -1}), 2, (int64_t[]){3, 0});
    expect_error(tg_reshape(T, x, 2, (int64_t[]){0, -1}), TG_ERR_SHAPE,
                 "reshape: cannot reshape (0,3) into (0,-1)");
    expect_shape(tg_transpose(T, x, 0, 1), 2, (int64_t[]){3, 0});
    expect_shape(tg_permute(T, x, 2, (int[]){1, 0}), 2, (int64_t[]){3, 0});
    expect_shape(tg_slice_axis(T, x, 1, NONE, NONE, -1), 2, (int64_t[]){0, 3});
    expect_shape(tg_index_select(T, x, 1, (int64_t[]){2, 2}, 2), 2, (int64_t[]){0, 2});
    expect_shape(tg_stack(T, 2, (struct tg_tensor *[]){x, x}, 1), 3, (int64_t[]){0, 2, 3});
    expect_shape(tg_unsqueeze(T, x, 0), 3, (int64_t[]){1, 0, 3});
    expect_error(tg_index_select(T, x, 0, (int64_t[]){0}, 1), TG_ERR_RANGE, NULL);
    /* y = sum(w * concat(x, w[None]) rows) : only w's row carries gradient */
    struct tg_tensor *c = tg_concat(T, 2, (struct tg_tensor *[]){x, tg_unsqueeze(T, w, 0)}, 0);
    expect_shape(c, 2, (int64_t[]){1, 3});
    struct tg_tensor *y = tg_sum(T, tg_mul(T, c, tg_slice_axis(T, c, 0, 5, 2, 1)));
    ck_assert_double_eq(tg_tensor_item(y), 0); /* c[5:2] is empty, broadcast to (0,3) */
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    expect_grad(w, 3, (double[]){0, 0, 0});
    tg_tensor_free(w);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* NULL inputs propagate with the first message; a NULL tape and a stale node
 * are reported by every op. */
START_TEST(test_null_and_stale)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(1, (int64_t[]){3});
    tg_clear_error();
    expect_error(tg_reshape(T, NULL, 1, (int64_t[]){3}), TG_ERR_NULL, "reshape: input 1 is NULL");
    expect_error(tg_reshape(NULL, x, 1, (int64_t[]){3}), TG_ERR_NULL, "reshape: tape is NULL");
    expect_error(tg_slice(NULL, x, 0, NULL), TG_ERR_NULL, "slice: tape is NULL");
    expect_error(tg_gather_tensor(NULL, x, 0, x), TG_ERR_NULL, "gather: tape is NULL");
    expect_error(tg_transpose(T, tg_squeeze(T, x, 0), 0, 0), TG_ERR_SHAPE,
                 "squeeze: axis 0 of (3) has size 3, not 1");
    expect_error(tg_index_select(T, tg_permute(T, x, 2, (int[]){0, 1}), 0, NULL, 0), TG_ERR_SHAPE,
                 "permute: 2 axes given for (3) of rank 1");
    struct tg_tensor *old = tg_unsqueeze(T, x, 0);
    tg_tape_reset(T);
    expect_error(tg_squeeze_all(T, old), TG_ERR_STALE, NULL);
    expect_error(tg_slice_axis(T, old, 5, 0, 1, 1), TG_ERR_STALE,
                 "slice: an input was recorded before the tape was reset");
    expect_error(tg_index_select_tensor(T, x, 0, old), TG_ERR_STALE, NULL);
    expect_error(tg_stack(T, 2, (struct tg_tensor *[]){x, old}, 0), TG_ERR_STALE, NULL);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* A step as large as INT64_MAX (or as negative as -INT64_MAX) takes one
 * element of an axis; the view's stride along such an axis must not be
 * computed as stride * step, which overflows (UBSan reported it). */
START_TEST(test_slice_huge_step)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = iota(2, (int64_t[]){3, 4});
    struct tg_tensor *y =
        tg_slice(T, x, 2, (struct tg_slice_spec[]){{0, NONE, INT64_MAX}, {1, NONE, INT64_MAX}});
    expect_shape(y, 2, (int64_t[]){1, 1});
    expect_values(y, 1, (double[]){1});
    backward_seed(y, (double[]){1});
    expect_grad(x, 12, (double[]){0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    struct tg_tensor *z = tg_slice(T, x, 1, (struct tg_slice_spec[]){{-1, NONE, -INT64_MAX}});
    expect_shape(z, 2, (int64_t[]){1, 4});
    expect_values(z, 4, (double[]){8, 9, 10, 11});
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* The shape and indexing ops move a NaN like any other value. */
START_TEST(test_nan_moves)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, (int64_t[]){2, 2}, (double[]){1, NAN, 3, 4});
    ck_assert(isnan(tg_tensor_get(tg_transpose(T, x, 0, 1), 2)));
    ck_assert(isnan(tg_tensor_get(tg_slice_axis(T, x, 1, 1, 2, 1), 0)));
    ck_assert(isnan(tg_tensor_get(tg_index_select(T, x, 1, (int64_t[]){1, 1}, 2), 1)));
    ck_assert(isnan(tg_tensor_get(tg_gather(T, x, 1, 2, (int64_t[]){2, 1}, (int64_t[]){1, 0}), 0)));
    struct tg_tensor *c = tg_concat(T, 2, (struct tg_tensor *[]){x, x}, 0);
    ck_assert(isnan(tg_tensor_get(c, 1)) && isnan(tg_tensor_get(c, 5)));
    ck_assert(isnan(tg_tensor_get(tg_broadcast_to(T, x, 3, (int64_t[]){2, 2, 2}), 5)));
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* The adjoints of slice, index_select and gather, values derived by hand. */
START_TEST(test_slice_scatter)
{
    struct tg_tape *T = tg_tape_new();
    /* x[::-2] of 5 elements reads 4, 2, 0 */
    struct tg_tensor *src = leaf(1, (int64_t[]){3}, (double[]){1, 2, 3});
    struct tg_slice_spec back2 = {NONE, NONE, -2};
    struct tg_tensor *y = tg_slice_scatter(T, src, 1, (int64_t[]){5}, 1, &back2);
    expect_shape(y, 1, (int64_t[]){5});
    expect_values(y, 5, (double[]){3, 0, 2, 0, 1});
    backward_seed(y, (double[]){10, 20, 30, 40, 50});
    expect_grad(src, 3, (double[]){50, 30, 10});
    /* (2,3)[1:2, 0:3:2]: row 1, columns 0 and 2 */
    struct tg_tensor *s2 = leaf(2, (int64_t[]){1, 2}, (double[]){7, 8});
    struct tg_tensor *z = tg_slice_scatter(T, s2, 2, (int64_t[]){2, 3}, 2,
                                           (struct tg_slice_spec[]){{1, 2, 1}, {0, 3, 2}});
    expect_values(z, 6, (double[]){0, 0, 0, 7, 0, 8});
    double v[4];
    ck_assert_int_eq(tg_tensor_op_params(z, v, 4), 4);
    ck_assert(v[0] == 1 && v[1] == 1 && v[2] == 0 && v[3] == 2);
    struct tg_tensor *two = leaf(1, (int64_t[]){2}, (double[]){1, 2});
    expect_error(tg_slice_scatter(T, two, 1, (int64_t[]){5}, 1, &back2), TG_ERR_SHAPE,
                 "slice_scatter: src has shape (2), the slice has (3)");
    expect_error(tg_slice_scatter(T, two, 1, (int64_t[]){5}, 1, &(struct tg_slice_spec){0, 2, 0}),
                 TG_ERR_VALUE, "slice_scatter: step 0 on axis 0");
    expect_error(tg_slice_scatter(T, two, 1, (int64_t[]){2}, 2, NULL), TG_ERR_NULL,
                 "slice_scatter: spec is NULL");
    expect_error(tg_slice_scatter(T, two, 1, (int64_t[]){2}, 2,
                                  (struct tg_slice_spec[]){{0, 2, 1}, {0, 2, 1}}),
                 TG_ERR_RANGE, "slice_scatter: 2 axes sliced but (2) has rank 1");
    tg_tensor_free(src);
    tg_tensor_free(s2);
    tg_tensor_free(two);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_index_add)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *src = iota(2, (int64_t[]){4, 2}); /* rows (0,1) (2,3) (4,5) (6,7) */
    int64_t idx[4] = {2, 0, 2, 2};
    struct tg_tensor *y = tg_index_add(T, src, 0, 3, idx, 4);
    idx[0] = 1; /* the op keeps its own copy */
    expect_shape(y, 2, (int64_t[]){3, 2});
    expect_values(y, 6, (double[]){2, 3, 0, 0, 0 + 4 + 6, 1 + 5 + 7});
    backward_seed(y, (double[]){1, 2, 3, 4, 5, 6});
    expect_grad(src, 8, (double[]){5, 6, 1, 2, 5, 6, 5, 6});
    /* along axis 1 into 3 columns */
    struct tg_tensor *z = tg_index_add(T, src, -1, 3, (int64_t[]){2, 2}, 2);
    expect_values(z, 12, (double[]){0, 0, 1, 0, 0, 5, 0, 0, 9, 0, 0, 13});
    expect_error(tg_index_add(T, src, 1, 3, (int64_t[]){0, 4}, 2), TG_ERR_RANGE,
                 "index_add: index 4 at position 1 is out of range for axis 1 of (4,3)");
    expect_error(tg_index_add(T, src, 0, 3, (int64_t[]){0, 1, 2}, 3), TG_ERR_SHAPE,
                 "index_add: 3 indices for axis 0 of src (4,2)");
    expect_error(tg_index_add(T, src, 0, -1, NULL, 0), TG_ERR_VALUE, NULL);
    expect_error(tg_index_add(T, src, 0, 3, NULL, 4), TG_ERR_NULL, "index_add: idx is NULL");
    tg_tensor_free(src);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_scatter_add)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *src = leaf(2, (int64_t[]){2, 5}, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    const int64_t index[10] = {0, 1, 2, 0, 0, 1, 2, 0, 0, 1};
    struct tg_tensor *y = tg_scatter_add(T, src, 0, 2, (int64_t[]){3, 5}, index);
    expect_shape(y, 2, (int64_t[]){3, 5});
    /* column 3 receives 4 and 9 in row 0 */
    expect_values(y, 15, (double[]){1, 0, 8, 13, 5, 6, 2, 0, 0, 10, 0, 7, 3, 0, 0});
    backward_seed(y, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    expect_grad(src, 10, (double[]){1, 7, 13, 4, 5, 6, 12, 3, 4, 10});
    expect_error(tg_scatter_add(T, src, 0, 2, (int64_t[]){2, 3}, index), TG_ERR_SHAPE,
                 "scatter_add: src (2,5) exceeds shape (2,3) on axis 1");
    expect_error(tg_scatter_add(T, src, 0, 2, (int64_t[]){2, 5}, index), TG_ERR_RANGE,
                 "scatter_add: index 2 at position 2 is out of range for axis 0 of (2,5)");
    expect_error(tg_scatter_add(T, src, 0, 1, (int64_t[]){10}, index), TG_ERR_SHAPE,
                 "scatter_add: src (2,5) and shape (10) differ in rank");
    expect_error(tg_scatter_add(T, src, 0, 2, (int64_t[]){3, 5}, NULL), TG_ERR_NULL,
                 "scatter_add: index is NULL");
    tg_tensor_free(src);
    tg_tape_free(T);
}
END_TEST

static Suite *shape_suite(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("fixed");
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_squeeze_unsqueeze);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_permute);
    tcase_add_test(tc, test_broadcast_to);
    tcase_add_test(tc, test_slice_1d);
    tcase_add_test(tc, test_slice_2d);
    tcase_add_test(tc, test_slice_huge_step);
    tcase_add_test(tc, test_nan_moves);
    tcase_add_test(tc, test_index_select);
    tcase_add_test(tc, test_gather);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_stack);
    tcase_add_test(tc, test_f32);
    tcase_add_test(tc, test_zero_size);
    tcase_add_test(tc, test_null_and_stale);
    tcase_add_test(tc, test_slice_scatter);
    tcase_add_test(tc, test_index_add);
    tcase_add_test(tc, test_scatter_add);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(shape_suite());
}
