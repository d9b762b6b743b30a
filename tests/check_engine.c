/*
 * tests/check_engine.c - tensors, the tape, the backward sweep, gradcheck's
 * behaviour, errors and the allocator hook.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/check.h>
#include <tapegrad/tapegrad.h>

/* ---- a counting allocator ---- */
static long n_alloc;
static void *count_malloc(size_t n, void *c)
{
    n_alloc++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *c)
{
    n_alloc++;
    return realloc(p, n);
}
static void count_free(void *p, void *c)
{
    free(p);
}

static struct tg_tensor *leaf(double v)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

START_TEST(test_constructors)
{
    int64_t s[2] = {2, 3};
    struct tg_tensor *z = tg_tensor_zeros(TG_F32, 2, s);
    ck_assert_int_eq(tg_tensor_numel(z), 6);
    ck_assert_int_eq(tg_tensor_rank(z), 2);
    ck_assert_int_eq(tg_tensor_dim(z, -1), 3);
    ck_assert_int_eq(tg_tensor_dtype(z), TG_F32);
    ck_assert(tg_tensor_is_leaf(z));
    ck_assert_ptr_null(tg_tensor_grad(z));
    struct tg_tensor *o = tg_tensor_ones(TG_F64, 2, s), *f = tg_tensor_full(TG_F64, 2, s, 2.5);
    ck_assert_double_eq(tg_tensor_get(o, 5), 1);
    ck_assert_double_eq(tg_tensor_get(f, 0), 2.5);
    struct tg_tensor *r = tg_tensor_arange(TG_F64, 0, 1, 0.25);
    ck_assert_int_eq(tg_tensor_numel(r), 4);
    ck_assert_double_eq(tg_tensor_get(r, 3), 0.75);
    struct tg_tensor *c = tg_tensor_to(r, TG_F32);
    ck_assert_int_eq(tg_tensor_dtype(c), TG_F32);
    ck_assert_double_eq(tg_tensor_get(c, 2), 0.5);
    float fv[3] = {1, 2, 3};
    struct tg_tensor *fr = tg_tensor_from(TG_F32, 1, (int64_t[]){3}, fv);
    ck_assert_double_eq(tg_tensor_get(fr, 2), 3);
    struct tg_tensor *cp = tg_tensor_copy(fr);
    ck_assert_double_eq(((float *)tg_tensor_data(cp))[1], 2);
    char buf[32];
    ck_assert_str_eq(tg_tensor_shape_str(z, buf, sizeof buf), "(2,3)");
    struct tg_tensor *sc = tg_tensor_scalar(TG_F64, 4);
    ck_assert_str_eq(tg_tensor_shape_str(sc, buf, sizeof buf), "()");
    ck_assert_double_eq(tg_tensor_item(sc), 4);
    ck_assert(isnan(tg_tensor_item(z)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    tg_tensor_free(z);
    tg_tensor_free(o);
    tg_tensor_free(f);
    tg_tensor_free(r);
    tg_tensor_free(c);
    tg_tensor_free(fr);
    tg_tensor_free(cp);
    tg_tensor_free(sc);
    tg_tensor_free(NULL);
}
END_TEST

START_TEST(test_constructor_errors)
{
    ck_assert_ptr_null(tg_tensor_zeros(TG_F32, 9, (int64_t[9]){1}));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_ptr_null(tg_tensor_zeros(TG_F32, 1, (int64_t[]){-2}));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_ptr_null(tg_tensor_zeros(TG_F32, 2, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    ck_assert_ptr_null(tg_tensor_zeros((enum tg_dtype)7, 0, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    int64_t huge[3] = {1LL << 30, 1LL << 30, 1LL << 10};
    ck_assert_ptr_null(tg_tensor_zeros(TG_F64, 3, huge));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert(strstr(tg_last_error(), "too large") != NULL);
    ck_assert_ptr_null(tg_tensor_arange(TG_F32, 0, 1, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_tensor_uniform(TG_F32, 0, NULL, NULL, 0, 1));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    /* zero-size tensors are fine */
    struct tg_tensor *e = tg_tensor_zeros(TG_F32, 2, (int64_t[]){0, 5});
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(tg_tensor_numel(e), 0);
    tg_tensor_free(e);
}
END_TEST

START_TEST(test_rng)
{
    struct tg_rng a, b;
    tg_rng_seed(&a, 42);
    tg_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(tg_rng_next(&a), tg_rng_next(&b));
    double mean = 0, var = 0;
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        double x = tg_rng_normal(&a);
        mean += x;
        var += x * x;
    }
    mean /= N;
    var = var / N - mean * mean;
    ck_assert(fabs(mean) < 0.05 && fabs(var - 1) < 0.05);
    for (int i = 0; i < 1000; i++) {
        double u = tg_rng_uniform(&a);
        ck_assert(u >= 0 && u < 1);
        ck_assert_uint_lt(tg_rng_below(&a, 7), 7);
    }
}
END_TEST

START_TEST(test_leaf_accumulates)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(3);
    for (int k = 0; k < 3; k++) {
        struct tg_tensor *y = tg_mul(T, x, x);
        ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
        ck_assert_double_eq(tg_tensor_grad_get(x, 0), 6.0 * (k + 1));
        tg_tape_reset(T);
    }
    tg_tensor_zero_grad(x);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* Backward twice over one recording: node gradients are recomputed from zero, the
 * leaves receive the gradient once more. */
START_TEST(test_second_backward)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2);
    struct tg_tensor *u = tg_exp(T, x);
    struct tg_tensor *y = tg_mul(T, u, u); /* e^{2x}, dy/du = 2u */
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    double g1 = tg_tensor_grad_get(x, 0), gu = tg_tensor_grad_get(u, 0);
    ck_assert_double_eq_tol(g1, 2 * exp(4), 1e-12);
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_grad_get(x, 0), 2 * g1, 1e-12);
    ck_assert_double_eq(tg_tensor_grad_get(u, 0), gu);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_backward_misuse)
{
    struct tg_tape *T = tg_tape_new(), *T2 = tg_tape_new();
    struct tg_tensor *x = leaf(1), *k = tg_tensor_scalar(TG_F64, 2);
    ck_assert_int_eq(tg_backward(NULL, NULL), TG_ERR_NULL);
    ck_assert_int_eq(tg_backward(x, NULL), TG_ERR_TAPE);            /* a leaf was not recorded */
    ck_assert_int_eq(tg_backward(tg_exp(T, k), NULL), TG_ERR_TAPE); /* needs no grad */
    /* non-scalar root without a seed; seeds of the wrong shape or dtype */
    struct tg_tensor *v = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    tg_tensor_set_requires_grad(v, true);
    struct tg_tensor *y = tg_mul(T, v, x);
    ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_SHAPE);
    struct tg_tensor *bad = tg_tensor_ones(TG_F64, 1, (int64_t[]){4});
    ck_assert_int_eq(tg_backward(y, bad), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "backward: seed shape (4) differs from root shape (3)");
    struct tg_tensor *bad32 = tg_tensor_ones(TG_F32, 1, (int64_t[]){3});
    ck_assert_int_eq(tg_backward(y, bad32), TG_ERR_DTYPE);
    /* a vector-Jacobian product with a good seed */
    struct tg_tensor *seed = tg_tensor_arange(TG_F64, 1, 4, 1);
    ck_assert_int_eq(tg_backward(y, seed), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 6);
    /* an input from another tape */
    ck_assert_ptr_null(tg_add(T2, y, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_TAPE);
    /* after reset: stale, also once the new recording has reused the memory */
    tg_tape_reset(T);
    ck_assert_int_eq(tg_backward(y, seed), TG_ERR_STALE);
    struct tg_tensor *y2 = tg_mul(T, tg_mul(T, v, x), x);
    ck_assert_ptr_nonnull(y2);
    ck_assert_int_eq(tg_backward(y, seed), TG_ERR_STALE);
    ck_assert_ptr_null(tg_add(T, y, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    tg_tensor_free(x);
    tg_tensor_free(k);
    tg_tensor_free(v);
    tg_tensor_free(bad);
    tg_tensor_free(bad32);
    tg_tensor_free(seed);
    tg_tape_free(T);
    tg_tape_free(T2);
}
END_TEST

START_TEST(test_node_free_refused)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(1);
    struct tg_tensor *y = tg_exp(T, x);
    tg_tensor_free(y); /* owned by the tape: refused, no crash */
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);
    ck_assert_int_eq(tg_tensor_set(y, 0, 1), TG_ERR_STATE);
    ck_assert_int_eq(tg_tensor_set_requires_grad(y, true), TG_ERR_STATE);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_no_grad_scope)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2);
    ck_assert(tg_tape_grad_enabled(T));
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    ck_assert_int_eq(tg_tape_no_grad_push(T), TG_OK);
    ck_assert(!tg_tape_grad_enabled(T));
    struct tg_tensor *y = tg_mul(T, x, x);
    ck_assert_double_eq(tg_tensor_item(y), 4);
    ck_assert(!tg_tensor_requires_grad(y));
    ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_TAPE);
    tg_tape_no_grad_pop(T);
    ck_assert(!tg_tape_grad_enabled(T));
    tg_tape_no_grad_pop(T);
    ck_assert(tg_tape_grad_enabled(T));
    ck_assert_int_eq(tg_tape_no_grad_pop(T), TG_ERR_STATE);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_constants_on_tape)
{
    struct tg_tape *T = tg_tape_new();
    double d[3] = {1, 2, 3};
    struct tg_tensor *c = tg_tape_constant(T, TG_F64, 1, (int64_t[]){3}, d);
    struct tg_tensor *w = tg_tensor_full(TG_F64, 1, (int64_t[]){3}, 2);
    tg_tensor_set_requires_grad(w, true);
    struct tg_tensor *y = tg_sum(T, tg_mul(T, c, w));
    ck_assert_double_eq(tg_tensor_item(y), 12);
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(w, 2), 3);
    ck_assert_ptr_null(tg_tensor_grad(c));
    tg_tensor_free(c); /* refused: a tape constant */
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);
    tg_tensor_free(w);
    tg_tape_free(T);
}
END_TEST

/* One training-like step, repeated after reset, allocates nothing new. */
static struct tg_tensor *step(struct tg_tape *T, struct tg_tensor *w, struct tg_tensor *x)
{
    struct tg_tensor *h = tg_tanh(T, tg_mul(T, x, w));
    return tg_mean(T, tg_pow_scalar(T, tg_sub_scalar(T, h, 0.5), 2));
}

START_TEST(test_reset_reuses_memory)
{
    struct tg_allocator a = {count_malloc, count_realloc, count_free, NULL};
    ck_assert_int_eq(tg_set_allocator(&a), TG_OK);
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    struct tg_tensor *w = tg_tensor_uniform(TG_F32, 2, (int64_t[]){64, 300}, &rng, -1, 1);
    struct tg_tensor *x = tg_tensor_uniform(TG_F32, 1, (int64_t[]){300}, &rng, -1, 1);
    tg_tensor_set_requires_grad(w, true);
    struct tg_tape *T = tg_tape_new();
    long before = 0;
    struct tg_tape_stats st;
    for (int it = 0; it < 5; it++) {
        if (it == 2) before = n_alloc;
        tg_tape_reset(T);
        ck_assert_int_eq(tg_backward(step(T, w, x), NULL), TG_OK);
    }
    ck_assert_int_eq(n_alloc, before);
    tg_tape_stats(T, &st);
    ck_assert_uint_eq(st.n_nodes, 5);
    ck_assert(st.bytes_high_water >= st.bytes_used && st.bytes_reserved >= st.bytes_used);
    tg_tape_free(T);
    tg_tensor_free(w);
    tg_tensor_free(x);
    ck_assert_int_eq(tg_set_allocator(NULL), TG_OK);
    struct tg_allocator half = {count_malloc, NULL, NULL, NULL};
    ck_assert_int_eq(tg_set_allocator(&half), TG_ERR_NULL);
}
END_TEST

/* 1,000,000 chained scalar ops: the sweep is iterative. */
START_TEST(test_million_chain)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0.5);
    struct tg_tensor *y = x;
    enum { N = 1000000 };
    for (int i = 0; i < N; i++) y = tg_affine(T, y, 1.0, 1e-6);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 1.0);
    ck_assert_double_eq_tol(tg_tensor_item(y), 1.5, 1e-9);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* ---- gradcheck itself ---- */

/* Behaves differently with and without gradient recording: a wrong gradient. */
static struct tg_tensor *lying_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    double k = tg_tape_grad_enabled(T) ? 1.0 : 1.01;
    return tg_sum(T, tg_mul_scalar(T, tg_mul(T, x[0], x[0]), k));
}

START_TEST(test_gradcheck_detects_wrong_gradient)
{
    struct tg_tensor *x = tg_tensor_arange(TG_F64, 1, 4, 1);
    tg_tensor_set_requires_grad(x, true);
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(lying_fn, &x, 1, NULL, NULL, &r), TG_ERR_GRADCHECK);
    ck_assert(!r.passed);
    ck_assert_int_eq(r.n_failed, 3);
    ck_assert_int_eq(r.worst_input, 0);
    ck_assert_int_eq(r.worst_index, 2); /* largest absolute error at x = 3 */
    ck_assert_double_eq_tol(r.analytic, 6, 1e-12);
    ck_assert_double_eq_tol(r.numeric, 6.06, 1e-6);
    ck_assert(strstr(r.message, "worst input 0 [2]") != NULL);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 0); /* zeroed on return */
    tg_tensor_free(x);
}
END_TEST

static struct tg_tensor *relu_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sum(T, tg_relu(T, x[0]));
}

START_TEST(test_gradcheck_kink)
{
    double v[3] = {-1, 0, 2};
    struct tg_tensor *x = tg_tensor_from(TG_F64, 1, (int64_t[]){3}, v);
    tg_tensor_set_requires_grad(x, true);
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(relu_fn, &x, 1, NULL, NULL, &r), TG_OK);
    ck_assert_int_eq(r.n_kinks, 1);
    ck_assert_int_eq(r.kink_index, 1);
    ck_assert_int_eq(r.n_checked, 3);
    tg_tensor_free(x);
}
END_TEST

static struct tg_tensor *vec_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sin(T, tg_mul(T, x[0], x[1])); /* a non-scalar output: v^T J */
}

START_TEST(test_gradcheck_vector_output)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    struct tg_tensor *in[2] = {tg_tensor_uniform(TG_F64, 2, (int64_t[]){3, 2}, &rng, -1, 1),
                               tg_tensor_uniform(TG_F64, 1, (int64_t[]){2}, &rng, -1, 1)};
    tg_tensor_set_requires_grad(in[0], true);
    ck_assert_gradcheck(vec_fn, in, 2, NULL, NULL); /* in[1] is a constant input */
    struct tg_gradcheck_report r;
    tg_gradcheck(vec_fn, in, 2, NULL, NULL, &r);
    ck_assert_int_eq(r.n_checked, 6);
    tg_tensor_free(in[0]);
    tg_tensor_free(in[1]);
}
END_TEST

static struct tg_tensor *null_fn(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_add(T, x[0], NULL);
}

START_TEST(test_gradcheck_errors)
{
    struct tg_tensor *x = leaf(1);
    struct tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(NULL, &x, 1, NULL, NULL, &r), TG_ERR_NULL);
    ck_assert_int_eq(tg_gradcheck(relu_fn, NULL, 1, NULL, NULL, &r), TG_ERR_NULL);
    ck_assert_int_eq(tg_gradcheck(null_fn, &x, 1, NULL, NULL, &r), TG_ERR_NULL);
    ck_assert(strstr(r.message, "add: input 2 is NULL") != NULL);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_status_strings)
{
    for (int s = TG_OK; s <= TG_ERR_GRADCHECK; s++)
        ck_assert(strncmp(tg_status_str((enum tg_status)s), "TG_", 3) == 0);
    ck_assert_str_eq(tg_status_str((enum tg_status)999), "unknown status");
}
END_TEST

START_TEST(test_anomaly_mode)
{
    struct tg_tape *T = tg_tape_new();
    double v[8] = {1, 2, 3, 4, 5, 6, 0, 8};
    struct tg_tensor *x = tg_tensor_from(TG_F64, 2, (int64_t[]){4, 2}, v);
    tg_tensor_set_requires_grad(x, true);
    /* off: the -inf flows through silently */
    ck_assert_ptr_nonnull(tg_log(T, x));
    ck_assert_int_eq(tg_tape_set_anomaly(T, true), TG_OK);
    ck_assert(tg_tape_anomaly(T));
    ck_assert_ptr_null(tg_log(T, x));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NUMERIC);
    ck_assert_str_eq(tg_last_error(), "log: input contains 0 at [3,0] -> -inf");
    ck_assert_ptr_null(tg_div(T, x, tg_mul_scalar(T, x, 0)));
    ck_assert_str_eq(tg_last_error(), "div: inputs 1 and 0 at [0,0] -> inf");
    /* backward: sqrt at 0 is finite forward, infinite gradient */
    struct tg_tensor *y = tg_sum(T, tg_sqrt(T, x));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_backward(y, NULL), TG_ERR_NUMERIC);
    ck_assert_str_eq(tg_last_error(),
                     "backward of sqrt: gradient of input 1 is inf at [3,0] (input value 0)");
    ck_assert_int_eq(tg_tape_set_anomaly(NULL, true), TG_ERR_NULL);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* The scalar record path (rank-0 inputs): a node's gradient is visible only after
 * a sweep reached it; in anomaly mode a failed op leaves the tape as it was; the
 * tape's byte count follows the nodes across node chunks and resets. */
START_TEST(test_scalar_path)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0), *w = leaf(3);
    struct tg_tensor *u = tg_mul(T, x, w), *v = tg_add(T, u, w);
    ck_assert_ptr_null(tg_tensor_grad(u)); /* recorded, never swept */
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    ck_assert_uint_eq(st.n_nodes, 2);
    ck_assert_int_eq(tg_tape_set_anomaly(T, true), TG_OK);
    ck_assert_ptr_null(tg_log(T, u)); /* log 0 */
    ck_assert_int_eq(tg_last_status(), TG_ERR_NUMERIC);
    struct tg_tape_stats st2;
    tg_tape_stats(T, &st2);
    ck_assert_uint_eq(st2.n_nodes, 2);
    ck_assert_int_eq(tg_tape_set_anomaly(T, false), TG_OK);
    struct tg_tensor *unused = tg_exp(T, v); /* recorded after v, not reached from it */
    ck_assert_int_eq(tg_backward(v, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 3); /* dv/dx = w */
    ck_assert_double_eq(tg_tensor_grad_get(w, 0), 1); /* dv/dw = x + 1 */
    ck_assert_double_eq(tg_tensor_grad_get(u, 0), 1);
    ck_assert_ptr_null(tg_tensor_grad(unused));
    /* enough nodes for several node chunks; bytes_used grows with every node */
    size_t before = st2.bytes_used;
    struct tg_tensor *y = v;
    for (int i = 0; i < 5000; i++) y = tg_add(T, y, w);
    tg_tape_stats(T, &st);
    ck_assert_uint_eq(st.n_nodes, 5003);
    ck_assert(st.bytes_used >= before + 5001 * 100);
    ck_assert_int_eq(tg_backward(y, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 6);
    /* after a reset the count starts again from the data arena's (the previous
     * recording's nodes stay in their ring so that their handles read as stale,
     * but they are not this recording's), the new recording's nodes add to it */
    size_t used = st.bytes_used;
    tg_tape_reset(T);
    tg_tape_stats(T, &st);
    ck_assert(st.bytes_used <= used && st.bytes_high_water >= used);
    size_t kept = st.bytes_used;
    ck_assert_ptr_nonnull(tg_mul(T, x, w));
    tg_tape_stats(T, &st);
    ck_assert(st.bytes_used > kept);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(T);
}
END_TEST

/* Nodes of the scalar record path are shorter than the others (no shape array).
 * A recording that mixes them with full nodes over many node chunks keeps every
 * value, parameter and gradient, and a node of the previous recording still
 * reads as stale. */
START_TEST(test_mixed_node_sizes)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *w = leaf(0.5), *y = leaf(1);
    struct tg_tape_stats st, st2;
    /* 1000 scalar adds, and 1000 affine ops (with parameters), take less than
     * 150 bytes of tape each: a full node, with its shape array of TG_MAX_DIM
     * entries, would not fit in that */
    struct tg_tensor *z = tg_add(T, y, w);
    tg_tape_stats(T, &st);
    for (int i = 0; i < 1000; i++) z = tg_add(T, z, w);
    tg_tape_stats(T, &st2);
    ck_assert_uint_eq(st2.n_nodes, st.n_nodes + 1000);
    ck_assert(st2.bytes_used - st.bytes_used < 1000 * 150);
    ck_assert(st2.bytes_used - st.bytes_used > 1000 * 8 * (size_t)TG_MAX_DIM / 2);
    st = st2;
    for (int i = 0; i < 1000; i++) z = tg_mul_scalar(T, z, 1);
    tg_tape_stats(T, &st2);
    ck_assert(st2.bytes_used - st.bytes_used < 1000 * 150);
    /* about 4 MB of nodes, three kinds in an irregular mix: tg_sum of a scalar
     * records a full node, tg_add_scalar a scalar one with parameters (1, c),
     * tg_add a scalar one without */
    enum { N_AFF = 64 };
    struct tg_tensor *aff[N_AFF];
    double aff_c[N_AFF];
    int n_add = 1000, n_aff = 0;
    double c_sum = 0;
    for (int i = 0; i < 25000; i++) {
        if (i % 7 == 3 || i % 11 == 0) {
            z = tg_sum(T, z);
        } else if (i % 5 == 1) {
            double c = 0.25 * (i % 9);
            z = tg_add_scalar(T, z, c);
            c_sum += c;
            if (n_aff < N_AFF && i % 3 == 0) {
                aff_c[n_aff] = c;
                aff[n_aff++] = z;
            }
        } else {
            z = tg_add(T, z, w);
            n_add++;
        }
        ck_assert_ptr_nonnull(z);
    }
    ck_assert_int_eq(n_aff, N_AFF);
    ck_assert_double_eq_tol(tg_tensor_item(z), 1 + 0.5 * (n_add + 1) + c_sum, 1e-6);
    /* the nodes recorded after each affine node left its parameters alone */
    for (int k = 0; k < N_AFF; k++) {
        double prm[2];
        ck_assert_int_eq(tg_tensor_op_params(aff[k], prm, 2), 2);
        ck_assert_double_eq(prm[0], 1);
        ck_assert_double_eq(prm[1], aff_c[k]);
    }
    ck_assert_int_eq(tg_backward(z, NULL), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(w, 0), n_add + 1);
    ck_assert_double_eq(tg_tensor_grad_get(y, 0), 1);
    /* the next recording: the old handle is stale, new nodes work */
    tg_tape_reset(T);
    ck_assert_ptr_null(tg_add(T, z, w));
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    struct tg_tensor *u = tg_sum(T, tg_mul(T, y, w));
    ck_assert_ptr_nonnull(u);
    ck_assert_double_eq(tg_tensor_item(u), 0.5);
    tg_tensor_free(w);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_constructors);
    tcase_add_test(tc, test_constructor_errors);
    tcase_add_test(tc, test_rng);
    tcase_add_test(tc, test_status_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("tape");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_leaf_accumulates);
    tcase_add_test(tc, test_second_backward);
    tcase_add_test(tc, test_backward_misuse);
    tcase_add_test(tc, test_node_free_refused);
    tcase_add_test(tc, test_no_grad_scope);
    tcase_add_test(tc, test_constants_on_tape);
    tcase_add_test(tc, test_reset_reuses_memory);
    tcase_add_test(tc, test_million_chain);
    tcase_add_test(tc, test_anomaly_mode);
    tcase_add_test(tc, test_scalar_path);
    tcase_add_test(tc, test_mixed_node_sizes);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_test(tc, test_gradcheck_detects_wrong_gradient);
    tcase_add_test(tc, test_gradcheck_kink);
    tcase_add_test(tc, test_gradcheck_vector_output);
    tcase_add_test(tc, test_gradcheck_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(engine_suite());
}
