/*
 * tests/check_opdesc.c - what the op descriptors say about their ops is true.
 *
 * The engine draws, traces and classifies nodes from the descriptor alone
 * (engine/engine-impl.h), so the descriptor must be right: every op flagged
 * elementwise has, on every gradient-check case of tests/gradcases_*.c, a
 * Jacobian in which output element i depends on element i of each (broadcast)
 * input alone; ops with parameters report them through tg_tensor_op_params.
 * That the engine library calls no ops symbol is checked by tests/engine_deps.py.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <string.h>
#include "gradcases.h"
#include "opdesc_table.h"

/* ---- elementwise ---- */

struct families {
    const struct gc_case *cases;
    const int *n;
};
static const struct families families[] = {
    {gc_cases_elementwise, &gc_n_elementwise},
    {gc_cases_nn, &gc_n_nn},
    {gc_cases_linalg, &gc_n_linalg},
    {gc_cases_shape, &gc_n_shape},
    {gc_cases_conv, &gc_n_conv},
    {gc_cases_norm, &gc_n_norm},
};

/* The flat index of x that output element i reads when x is broadcast to y's
 * shape (shapes aligned at the last axis, size-1 axes of x repeated). */
static int64_t broadcast_source(const struct tg_tensor *y, const struct tg_tensor *x, int64_t i)
{
    int ry = tg_tensor_rank(y), rx = tg_tensor_rank(x);
    int64_t col = 0, stride = 1;
    for (int d = ry - 1; d >= 0; d--) {
        int64_t size = tg_tensor_shape(y)[d], idx = i % size;
        i /= size;
        int dx = d - (ry - rx);
        if (dx < 0) continue;
        int64_t sx = tg_tensor_shape(x)[dx];
        col += (sx == 1 ? 0 : idx) * stride;
        stride *= sx;
    }
    return col;
}

/* Checks J (rows = y's elements, cols = x's) of one case and input: every row
 * has no nonzero outside the column its output element reads. */
static void check_jacobian_elementwise(const char *name, const char *label, struct gc_one_input *c,
                                       const struct tg_tensor *y)
{
    struct tg_tensor *J = NULL;
    struct tg_tensor *x = c->in[c->k];
    ck_assert_msg(tg_jacobian(gc_with_input_k, c, x, &J, NULL) == TG_OK, "%s (%s): %s", name, label,
                  tg_last_error());
    int64_t rows = tg_tensor_numel(y), cols = tg_tensor_numel(x);
    const double *j = tg_tensor_data(J);
    for (int64_t r = 0; r < rows; r++) {
        int64_t src = broadcast_source(y, x, r);
        for (int64_t q = 0; q < cols; q++)
            ck_assert_msg(q == src || j[r * cols + q] == 0,
                          "%s is flagged elementwise, but in case %s output %lld depends on "
                          "element %lld of input %d (it reads only element %lld)",
                          name, label, (long long)r, (long long)q, c->k + 1, (long long)src);
    }
    tg_tensor_free(J);
}

START_TEST(test_elementwise_flag_is_true)
{
    int flagged = 0, checked = 0;
    for (int op = 0; op < TG_OP_COUNT; op++) {
        ck_assert_int_eq(opdesc_op(op), op); /* the table is indexed by the descriptor's op */
        if (!opdesc_elementwise(op)) continue;
        flagged++;
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
            for (int ci = 0; ci < *families[f].n; ci++) {
                const struct gc_case *gc = &families[f].cases[ci];
                if ((int)gc->op != op) continue;
                for (int rep = 0; rep < 4; rep++) {
                    struct tg_rng rng;
                    tg_rng_seed(&rng, 7919u * (unsigned)op + 31u * (unsigned)ci + (unsigned)rep);
                    struct tg_tensor *in[GC_MAX_IN] = {0};
                    int n = gc->make(&rng, in);
                    ck_assert_msg(n > 0, "%s: %s", gc->label, tg_last_error());
                    struct tg_tape *T = tg_tape_new();
                    struct tg_tensor *y = gc->fn(T, in, n, NULL);
                    ck_assert_msg(y != NULL, "%s: %s", gc->label, tg_last_error());
                    for (int k = 0; k < n; k++) {
                        if (!tg_tensor_requires_grad(in[k])) continue;
                        struct gc_one_input c = {gc, in, n, k};
                        check_jacobian_elementwise(tg_op_name(op), gc->label, &c, y);
                        checked++;
                    }
                    tg_tape_free(T);
                    for (int k = 0; k < n; k++) tg_tensor_free(in[k]);
                }
            }
    }
    /* add, mul, tanh, ... are flagged (ops/binary.c, ops/unary.c): a loop over
     * nothing would prove nothing */
    ck_assert_msg(flagged > 0 && checked > 0, "no op is flagged elementwise (%d flagged)", flagged);
}
END_TEST

/* An op that is not elementwise is not flagged: the graph would draw its
 * Jacobian as diagonal. */
START_TEST(test_dense_ops_not_flagged)
{
    static const enum tg_op dense[] = {TG_OP_SUM,       TG_OP_MEAN,     TG_OP_MATMUL,
                                       TG_OP_SOFTMAX,   TG_OP_SUM_AXES, TG_OP_LOGSUMEXP_AXES,
                                       TG_OP_TRANSPOSE, TG_OP_SLICE,    TG_OP_CONCAT};
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        ck_assert_msg(!opdesc_elementwise(dense[i]), "%s is flagged elementwise",
                      tg_op_name(dense[i]));
}
END_TEST

/* ---- parameters ---- */

static struct tg_tensor *leaf(int rank, const int64_t *shape)
{
    struct tg_tensor *t = tg_tensor_zeros(TG_F64, rank, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, (double)i);
    return t;
}

/* t's parameters are exactly want[0..n). */
static void expect_params(const struct tg_tensor *t, int n, const double *want)
{
    ck_assert_msg(t != NULL, "%s", tg_last_error());
    double got[TG_MAX_OP_PARAMS];
    int k = tg_tensor_op_params(t, got, TG_MAX_OP_PARAMS);
    ck_assert_msg(k == n, "%s reports %d parameters, want %d", tg_op_name(tg_tensor_op(t)), k, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: parameter %d is %g, want %g",
                      tg_op_name(tg_tensor_op(t)), i, got[i], want[i]);
}

START_TEST(test_params_softmax_matmul_reductions)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(2, (int64_t[]){2, 3}), *a = leaf(2, (int64_t[]){3, 2}),
                     *b = leaf(2, (int64_t[]){3, 4}), *c = leaf(3, (int64_t[]){2, 3, 4});
    expect_params(tg_softmax(T, x, -1), 1, (double[]){1});
    expect_params(tg_log_softmax(T, x, 0), 1, (double[]){0});
    expect_params(tg_matmul_t(T, a, b, true, false), 2, (double[]){1, 0});
    expect_params(tg_matmul_t(T, b, b, false, true), 2, (double[]){0, 1});
    expect_params(tg_matmul(T, x, b), 2, (double[]){0, 0});
    /* reductions: keepdim, (var: the correction,) the axes in increasing order */
    expect_params(tg_sum_axes(T, c, (int[]){-1, 0}, 2, true), 3, (double[]){1, 0, 2});
    expect_params(tg_mean_axes(T, c, NULL, 0, false), 4, (double[]){0, 0, 1, 2});
    expect_params(tg_var_axes(T, c, (int[]){1}, 1, 0.5, false), 3, (double[]){0, 0.5, 1});
    expect_params(tg_argmax_axes(T, c, (int[]){2}, 1, true), 2, (double[]){1, 2});
    expect_params(tg_sum(T, c), 0, NULL);
    /* a shorter room gets the first values; the count is still the op's */
    double room[2] = {-7, -7};
    ck_assert_int_eq(tg_tensor_op_params(tg_sum_axes(T, c, (int[]){0, 2}, 2, false), room, 1), 3);
    ck_assert(room[0] == 0 && room[1] == -7);
    ck_assert_int_eq(tg_tensor_op_params(tg_softmax(T, x, 1), NULL, 0), 1);
    ck_assert_int_eq(tg_tensor_op_params(x, room, 2), 0); /* a leaf */
    ck_assert_int_eq(tg_tensor_op_params(NULL, room, 2), 0);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
}
END_TEST

START_TEST(test_params_shape_and_index)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *c = leaf(3, (int64_t[]){2, 3, 4}), *s = leaf(3, (int64_t[]){2, 1, 3}),
                     *v = leaf(1, (int64_t[]){10});
    expect_params(tg_transpose(T, c, -1, 0), 2, (double[]){2, 0});
    expect_params(tg_permute(T, c, 3, (int[]){2, 0, -2}), 3, (double[]){2, 0, 1});
    expect_params(tg_squeeze(T, s, -2), 1, (double[]){1});
    expect_params(tg_squeeze_all(T, s), 0, NULL);
    expect_params(tg_unsqueeze(T, c, -1), 1, (double[]){3});
    expect_params(tg_reshape(T, c, 2, (int64_t[]){6, -1}), 0, NULL);
    expect_params(tg_broadcast_to(T, s, 3, (int64_t[]){2, 5, 3}), 0, NULL);
    /* slice: start and step per axis, as resolved (x[8:1:-3]; x[-3:]) */
    expect_params(tg_slice(T, v, 1, (struct tg_slice_spec[]){{8, 1, -3}}), 2, (double[]){8, -3});
    expect_params(tg_slice_axis(T, v, 0, -3, TG_SLICE_NONE, TG_SLICE_NONE), 2, (double[]){7, 1});
    expect_params(tg_index_select(T, c, -1, (int64_t[]){3, 0}, 2), 1, (double[]){2});
    expect_params(tg_gather(T, c, 1, 3, (int64_t[]){2, 1, 4}, (int64_t[]){0, 1, 2, 0, 1, 2, 0, 1}),
                  1, (double[]){1});
    expect_params(tg_concat(T, 2, (struct tg_tensor *[]){c, c}, -2), 1, (double[]){1});
    expect_params(tg_stack(T, 2, (struct tg_tensor *[]){c, c}, -1), 1, (double[]){3});
    tg_tape_free(T);
    tg_tensor_free(c);
    tg_tensor_free(s);
    tg_tensor_free(v);
}
END_TEST

/* Every descriptor reports at most TG_MAX_OP_PARAMS values, on the largest
 * slice there is (2 per axis at the maximum rank). */
START_TEST(test_params_fit)
{
    int64_t shape[TG_MAX_DIM];
    struct tg_slice_spec spec[TG_MAX_DIM];
    for (int d = 0; d < TG_MAX_DIM; d++) {
        shape[d] = 2;
        spec[d] = (struct tg_slice_spec){1, TG_SLICE_NONE, -1};
    }
    struct tg_tensor *x = leaf(TG_MAX_DIM, shape);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_slice(T, x, TG_MAX_DIM, spec);
    ck_assert_int_eq(tg_tensor_op_params(y, NULL, 0), 2 * TG_MAX_DIM);
    ck_assert_int_le(2 * TG_MAX_DIM, TG_MAX_OP_PARAMS);
    struct tg_tensor *r = tg_var_axes(T, x, NULL, 0, 1.0, true);
    ck_assert_int_le(tg_tensor_op_params(r, NULL, 0), TG_MAX_OP_PARAMS);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* Shape rules decide shapes and leave the parameters as the caller gave them
 * (they once wrote normalised axes back into the node). */
START_TEST(test_shape_rules_keep_params)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *c = leaf(3, (int64_t[]){2, 3, 4}), *v = leaf(1, (int64_t[]){10});
    struct tg_tensor *by_axis[] = {
        tg_softmax(T, c, -1),
        tg_log_softmax(T, c, -2),
        tg_transpose(T, c, -1, 0),
        tg_index_select(T, c, -1, (int64_t[]){0}, 1),
        tg_gather(T, c, -2, 3, (int64_t[]){2, 1, 4}, (int64_t[]){0, 1, 2, 0, 1, 2, 0, 1}),
        tg_concat(T, 2, (struct tg_tensor *[]){c, c}, -1),
        tg_stack(T, 2, (struct tg_tensor *[]){c, c}, -1),
        tg_unsqueeze(T, c, -1),
    };
    for (size_t k = 0; k < sizeof by_axis / sizeof by_axis[0]; k++) {
        ck_assert_msg(by_axis[k] != NULL, "%s", tg_last_error());
        ck_assert_msg(opdesc_param_i(by_axis[k], 0) < 0, "%s rewrote its axis to %lld",
                      tg_op_name(tg_tensor_op(by_axis[k])), opdesc_param_i(by_axis[k], 0));
    }
    struct tg_tensor *p = tg_permute(T, c, 3, (int[]){-1, 0, 1});
    ck_assert_int_eq(opdesc_aux_i64(p, 0), -1);
    struct tg_tensor *s = tg_slice(T, v, 1, (struct tg_slice_spec[]){{-3, TG_SLICE_NONE, 1}});
    ck_assert_int_eq(opdesc_aux_i64(s, 0), -3); /* start[0] as given */
    tg_tape_free(T);
    tg_tensor_free(c);
    tg_tensor_free(v);
}
END_TEST

/* The node of op `op` in the graph of y (y itself or an input, depth first). */
static const struct tg_tensor *find_op(const struct tg_tensor *y, int op)
{
    const struct tg_tensor *stack[256];
    int n = 0;
    stack[n++] = y;
    while (n > 0) {
        const struct tg_tensor *t = stack[--n];
        if ((int)tg_tensor_op(t) == op) return t;
        for (int i = 0; i < tg_tensor_n_inputs(t) && n < 256; i++)
            stack[n++] = tg_tensor_input(t, i);
    }
    return NULL;
}

/* Shape rules decide shapes and nothing else (docs/design.md, "Ops"): on every
 * gradient-check case, the rule of the declared op, run again on a copy of its
 * node, takes no tape memory and leaves dtype, parameters and aux alone. */
START_TEST(test_shape_rules_only_decide_shapes)
{
    int checked = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (int ci = 0; ci < *families[f].n; ci++) {
            const struct gc_case *gc = &families[f].cases[ci];
            struct tg_rng rng;
            tg_rng_seed(&rng, 104729u + (unsigned)ci);
            struct tg_tensor *in[GC_MAX_IN] = {0};
            int n = gc->make(&rng, in);
            ck_assert_msg(n > 0, "%s: %s", gc->label, tg_last_error());
            struct tg_tape *T = tg_tape_new();
            struct tg_tensor *y = gc->fn(T, in, n, NULL);
            ck_assert_msg(y != NULL, "%s: %s", gc->label, tg_last_error());
            const struct tg_tensor *node = find_op(y, (int)gc->op);
            ck_assert_msg(node != NULL, "%s: no %s node", gc->label, tg_op_name(gc->op));
            const char *why = opdesc_shape_rule_side_effect(node);
            ck_assert_msg(why == NULL, "%s (%s): the shape rule %s", tg_op_name(gc->op), gc->label,
                          why);
            checked++;
            tg_tape_free(T);
            for (int k = 0; k < n; k++) tg_tensor_free(in[k]);
        }
    ck_assert_int_gt(checked, TG_OP_COUNT / 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("opdesc");
    TCase *tc = tcase_create("descriptors");
    tcase_add_test(tc, test_elementwise_flag_is_true);
    tcase_add_test(tc, test_dense_ops_not_flagged);
    tcase_add_test(tc, test_params_softmax_matmul_reductions);
    tcase_add_test(tc, test_params_shape_and_index);
    tcase_add_test(tc, test_params_fit);
    tcase_add_test(tc, test_shape_rules_keep_params);
    tcase_add_test(tc, test_shape_rules_only_decide_shapes);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
