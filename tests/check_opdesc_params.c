/*
 * tests/check_opdesc_params.c - what the op descriptors say about themselves: which ops
 * are elementwise, and the plain-number parameters their params callback reports
 * (the trace, the graph and tg_tensor_op_params read them). It includes the
 * private ops/ops-impl.h to reach the descriptors, and so only the op headers of
 * the public API (the internal union tg_params clashes with tapegrad/params.h).
 */
#include <check.h>
#include "run-suite.h"
#include "../ops/ops-impl.h"

/* The descriptors of ops/binary.c, unary.c, linear.c, loss.c and dropout.c:
 * which are elementwise, and the parameters their params callback reports. */
static int params_of(const struct tg_tensor *t, double *v)
{
    ck_assert_ptr_nonnull(t);
    return t->desc->params ? t->desc->params(t, v) : 0;
}

START_TEST(test_descriptor_params)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_full(TG_F64, 2, (int64_t[]){2, 3}, 0.5);
    struct tg_tensor *w = tg_tensor_full(TG_F64, 2, (int64_t[]){4, 3}, 0.5);
    struct tg_tensor *lab = tg_tensor_zeros(TG_F64, 1, (int64_t[]){2});
    double v[TG_MAX_OP_PARAMS];
    struct tg_tensor *t = tg_affine(T, x, 2, 3);
    ck_assert_int_eq(params_of(t, v), 2);
    ck_assert(v[0] == 2 && v[1] == 3 && t->desc->elementwise);
    ck_assert_int_eq(params_of(tg_sub_scalar(T, x, 4), v), 2);
    ck_assert(v[0] == 1 && v[1] == -4);
    ck_assert_int_eq(params_of(tg_pow_scalar(T, x, 2.5), v), 1);
    ck_assert(v[0] == 2.5);
    ck_assert_int_eq(params_of(t = tg_leaky_relu(T, x, 0.1), v), 1);
    ck_assert(v[0] == 0.1 && t->desc->elementwise);
    ck_assert_int_eq(params_of(t = tg_relu(T, x), v), 0);
    ck_assert(t->desc->elementwise);
    ck_assert_int_eq(params_of(t = tg_maximum(T, x, x), v), 0);
    ck_assert(t->desc->elementwise);
    ck_assert_int_eq(params_of(t = tg_linear(T, x, w, NULL, TG_ACT_TANH), v), 1);
    ck_assert(v[0] == TG_ACT_TANH && !t->desc->elementwise);
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    ck_assert_int_eq(params_of(t = tg_dropout(T, x, 0.3, true, &rng), v), 1);
    ck_assert(v[0] == 0.3 && t->desc->elementwise);
    ck_assert_int_eq(params_of(t = tg_mse(T, x, x, TG_REDUCE_SUM), v), 1);
    ck_assert(v[0] == TG_REDUCE_SUM && !t->desc->elementwise);
    ck_assert_int_eq(params_of(tg_multi_margin(T, x, lab, 0.7, TG_REDUCE_NONE), v), 2);
    ck_assert(v[0] == TG_REDUCE_NONE && v[1] == 0.7);
    ck_assert_int_eq(params_of(tg_cross_entropy(T, x, lab, TG_REDUCE_MEAN), v), 1);
    ck_assert(v[0] == TG_REDUCE_MEAN);
    ck_assert_int_eq(params_of(tg_l2_penalty(T, x), v), 0);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(lab);
    tg_tape_free(T);
}
END_TEST

static Suite *opdesc_suite(void)
{
    Suite *s = suite_create("opdesc");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, test_descriptor_params);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(opdesc_suite());
}
