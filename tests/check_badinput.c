/*
 * tests/check_badinput.c - bad input to every public function, one table row each:
 * NULL arguments, mismatched shapes, mixed dtypes, ranks above TG_MAX_DIM,
 * zero-size dimensions, sizes whose element count or byte size would overflow,
 * indices and axes out of range, NaN and Inf where they matter, and objects in
 * the wrong state (stale nodes, tape nodes where a leaf is needed).
 *
 * Each row runs one call on a fresh fixture and expects a specific status and a
 * message that names the function (or op) - "the message names what failed" is
 * part of every contract. Rows run in forked Check tests, so a crash fails only
 * its own row and names it. Calls that return no status (accessors) are checked
 * for their documented neutral result (0, NULL, NaN) instead.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

/* What every row may use: a tape, leaves of several shapes and dtypes. */
struct fx {
    struct tg_tape *T, *T2;
    struct tg_tensor *a23, *b23, *c5, *d23, *s, *n0; /* d23: f64; n0: shape (0,3) */
    struct tg_tensor *node;                          /* a23 + b23 on T */
    struct tg_tensor *stale;                         /* recorded on T before a reset */
    struct tg_tensor *lab2;                          /* (2) f32 class labels 0 */
    struct tg_params *p;                             /* empty */
    struct tg_dataset *ds;                           /* 4 examples, 2 features */
    struct tg_rng rng;
};

static void fx_init(struct fx *f)
{
    f->T = tg_tape_new();
    f->T2 = tg_tape_new();
    f->a23 = tg_tensor_full(TG_F32, 2, (int64_t[]){2, 3}, 0.5);
    f->b23 = tg_tensor_full(TG_F32, 2, (int64_t[]){2, 3}, 2.0);
    f->c5 = tg_tensor_full(TG_F32, 1, (int64_t[]){5}, 1.0);
    f->d23 = tg_tensor_full(TG_F64, 2, (int64_t[]){2, 3}, 1.0);
    f->s = tg_tensor_scalar(TG_F32, 3.0);
    f->n0 = tg_tensor_zeros(TG_F32, 2, (int64_t[]){0, 3});
    tg_tensor_set_requires_grad(f->a23, true);
    f->stale = tg_mul(f->T, f->a23, f->b23);
    tg_tape_reset(f->T);
    f->node = tg_add(f->T, f->a23, f->b23);
    tg_rng_seed(&f->rng, 1);
    f->lab2 = tg_tensor_zeros(TG_F32, 1, (int64_t[]){2});
    f->p = tg_params_new();
    f->ds = tg_dataset_new(tg_tensor_ones(TG_F32, 2, (int64_t[]){4, 2}),
                           tg_tensor_zeros(TG_F32, 1, (int64_t[]){4}));
    ck_assert_ptr_nonnull(f->node);
    ck_assert_ptr_nonnull(f->ds);
    tg_clear_error();
}

static void fx_free(struct fx *f)
{
    tg_tape_free(f->T);
    tg_tape_free(f->T2);
    tg_tensor_free(f->a23);
    tg_tensor_free(f->b23);
    tg_tensor_free(f->c5);
    tg_tensor_free(f->d23);
    tg_tensor_free(f->s);
    tg_tensor_free(f->n0);
    tg_tensor_free(f->lab2);
    tg_params_free(f->p);
    tg_dataset_free(f->ds);
}

/* The status of a call that returns an object: TG_OK or the recorded failure. */
#define OBJ(call) ((call) ? TG_OK : tg_last_status())
/* Runs an accessor that reports through its value: OK when it gives `want`. */
#define VAL(call, want) ((call) == (want) ? TG_OK : TG_ERR_GRADCHECK)

#define ROW(id, expr)                                                                              \
    static enum tg_status id(struct fx *f)                                                         \
    {                                                                                              \
        (void)f;                                                                                   \
        return (expr);                                                                             \
    }

static const int64_t big[2] = {INT64_MAX / 2, 4};        /* numel overflows int64 */
static const int64_t bytes_ovf[2] = {INT64_MAX / 16, 3}; /* numel fits, bytes do not */
static const int64_t neg[2] = {2, -3};
static const int64_t rank9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

static struct tg_tensor *sq_fn(struct tg_tape *T, struct tg_tensor *const *in, int n, void *c)
{
    return tg_mul(T, in[0], in[0]);
}

/* ---- tensor.h ---- */
ROW(zeros_rank9, OBJ(tg_tensor_zeros(TG_F32, 9, rank9)))
ROW(zeros_rank_neg, OBJ(tg_tensor_zeros(TG_F32, -1, rank9)))
ROW(zeros_shape_null, OBJ(tg_tensor_zeros(TG_F32, 2, NULL)))
ROW(zeros_neg_dim, OBJ(tg_tensor_zeros(TG_F32, 2, neg)))
ROW(zeros_numel_ovf, OBJ(tg_tensor_zeros(TG_F64, 2, big)))
ROW(zeros_bytes_ovf, OBJ(tg_tensor_zeros(TG_F64, 2, bytes_ovf)))
ROW(zeros_dtype, OBJ(tg_tensor_zeros((enum tg_dtype)7, 1, neg)))
ROW(ones_rank9, OBJ(tg_tensor_ones(TG_F64, 9, rank9)))
ROW(full_ovf, OBJ(tg_tensor_full(TG_F32, 2, big, 1.0)))
ROW(from_null_data, OBJ(tg_tensor_from(TG_F32, 1, (int64_t[]){3}, NULL)))
ROW(from_f64_null, OBJ(tg_tensor_from_f64(TG_F32, 1, (int64_t[]){3}, NULL)))
ROW(scalar_dtype, OBJ(tg_tensor_scalar((enum tg_dtype) - 1, 1.0)))
ROW(arange_step0, OBJ(tg_tensor_arange(TG_F32, 0, 1, 0)))
ROW(arange_nan, OBJ(tg_tensor_arange(TG_F32, 0, NAN, 1)))
ROW(arange_inf, OBJ(tg_tensor_arange(TG_F64, 0, INFINITY, 1)))
ROW(arange_huge, OBJ(tg_tensor_arange(TG_F64, 0, 1e300, 1e-300)))
ROW(uniform_rng_null, OBJ(tg_tensor_uniform(TG_F32, 1, (int64_t[]){3}, NULL, 0, 1)))
ROW(uniform_nan, OBJ(tg_tensor_uniform(TG_F32, 1, (int64_t[]){3}, &f->rng, NAN, 1)))
ROW(normal_neg_std, OBJ(tg_tensor_normal(TG_F32, 1, (int64_t[]){3}, &f->rng, 0, -1)))
ROW(normal_inf, OBJ(tg_tensor_normal(TG_F64, 1, (int64_t[]){3}, &f->rng, INFINITY, 1)))
ROW(copy_null, OBJ(tg_tensor_copy(NULL)))
ROW(copy_stale, OBJ(tg_tensor_copy(f->stale)))
ROW(to_null, OBJ(tg_tensor_to(NULL, TG_F64)))
ROW(to_dtype, OBJ(tg_tensor_to(f->a23, (enum tg_dtype)5)))
ROW(set_rg_null, tg_tensor_set_requires_grad(NULL, true))
ROW(set_rg_node, tg_tensor_set_requires_grad(f->node, false))
ROW(zero_grad_null, tg_tensor_zero_grad(NULL))
ROW(set_null, tg_tensor_set(NULL, 0, 1.0))
ROW(set_range, tg_tensor_set(f->a23, 6, 1.0))
ROW(set_neg_index, tg_tensor_set(f->a23, -1, 1.0))
ROW(set_node, tg_tensor_set(f->node, 0, 1.0))
ROW(get_range, VAL(isnan(tg_tensor_get(f->a23, 6)), 1))
ROW(grad_get_range, VAL(isnan(tg_tensor_grad_get(f->a23, 99)), 1))
ROW(item_many, VAL(isnan(tg_tensor_item(f->a23)), 1))
ROW(item_null, VAL(isnan(tg_tensor_item(NULL)), 1))
ROW(dim_range, VAL(tg_tensor_dim(f->a23, 5), 0))
ROW(rank_null, VAL(tg_tensor_rank(NULL), 0))
ROW(shape_str_null, VAL(tg_tensor_shape_str(f->a23, NULL, 10), NULL))
/* ---- tape.h ---- */
ROW(pop_unpushed, tg_tape_no_grad_pop(f->T))
ROW(push_null, tg_tape_no_grad_push(NULL))
ROW(pop_null, tg_tape_no_grad_pop(NULL))
ROW(anomaly_null, tg_tape_set_anomaly(NULL, true))
ROW(constant_null_tape, OBJ(tg_tape_constant(NULL, TG_F32, 0, NULL, (float[]){1})))
ROW(constant_rank9, OBJ(tg_tape_constant(f->T, TG_F32, 9, rank9, NULL)))
ROW(constant_ovf, OBJ(tg_tape_constant(f->T, TG_F32, 2, big, NULL)))
ROW(constant_bytes_ovf, OBJ(tg_tape_constant(f->T, TG_F64, 2, bytes_ovf, NULL)))
ROW(constant_neg, OBJ(tg_tape_constant(f->T, TG_F32, 2, neg, NULL)))
ROW(backward_null, tg_backward(NULL, NULL))
ROW(backward_leaf, tg_backward(f->a23, NULL))
ROW(backward_nonscalar, tg_backward(f->node, NULL))
ROW(backward_seed_shape, tg_backward(f->node, f->c5))
ROW(backward_stale, tg_backward(f->stale, NULL))
ROW(apply_null_root, tg_backward_apply(NULL, NULL, NULL, 0))
ROW(apply_leaf_root, tg_backward_apply(f->a23, NULL, NULL, 0))
ROW(apply_stale, tg_backward_apply(f->stale, f->a23, NULL, 0))
ROW(apply_seed_shape, tg_backward_apply(f->node, f->c5, NULL, 0))
ROW(apply_list_null, tg_backward_apply(f->node, f->a23, NULL, 1))
ROW(apply_leaf_null, tg_backward_apply(f->node, f->a23, &(struct tg_apply){NULL, -1, 1}, 1))
ROW(apply_not_leaf, tg_backward_apply(f->node, f->a23, &(struct tg_apply){f->node, -1, 1}, 1))
ROW(apply_no_grad, tg_backward_apply(f->node, f->a23, &(struct tg_apply){f->b23, -1, 1}, 1))
ROW(apply_nan, tg_backward_apply(f->node, f->a23, &(struct tg_apply){f->a23, NAN, 1}, 1))
ROW(apply_inf, tg_backward_apply(f->node, f->a23, &(struct tg_apply){f->a23, -1, INFINITY}, 1))
ROW(apply_twice,
    tg_backward_apply(f->node, f->a23, (struct tg_apply[]){{f->a23, -1, 1}, {f->a23, -1, 1}}, 2))
ROW(apply_huge_n, tg_backward_apply(f->node, f->a23, &(struct tg_apply){f->a23, -1, 1}, SIZE_MAX))
ROW(optim_backward_null, tg_nn_optim_backward_step(NULL, f->node, 1))
/* ---- ops.h ---- */
ROW(add_null_tape, OBJ(tg_add(NULL, f->a23, f->b23)))
ROW(add_null_input, OBJ(tg_add(f->T, f->a23, NULL)))
ROW(add_shapes, OBJ(tg_add(f->T, f->a23, f->c5)))
ROW(add_dtypes, OBJ(tg_add(f->T, f->a23, f->d23)))
ROW(add_stale, OBJ(tg_add(f->T, f->stale, f->a23)))
ROW(add_other_tape, OBJ(tg_add(f->T2, f->node, f->a23)))
ROW(sub_shapes, OBJ(tg_sub(f->T, f->c5, f->a23)))
ROW(mul_dtypes, OBJ(tg_mul(f->T, f->d23, f->a23)))
ROW(div_shapes, OBJ(tg_div(f->T, f->a23, f->c5)))
ROW(pow_dtypes, OBJ(tg_pow(f->T, f->a23, f->d23)))
ROW(maximum_shapes, OBJ(tg_maximum(f->T, f->a23, f->c5)))
ROW(minimum_null, OBJ(tg_minimum(f->T, NULL, f->a23)))
ROW(affine_nan, OBJ(tg_affine(f->T, f->a23, NAN, 1)))
ROW(add_scalar_inf, OBJ(tg_add_scalar(f->T, f->a23, INFINITY)))
ROW(sub_scalar_nan, OBJ(tg_sub_scalar(f->T, f->a23, NAN)))
ROW(rsub_scalar_nan, OBJ(tg_rsub_scalar(f->T, NAN, f->a23)))
ROW(mul_scalar_nan, OBJ(tg_mul_scalar(f->T, f->a23, NAN)))
ROW(div_scalar_zero, OBJ(tg_div_scalar(f->T, f->a23, 0)))
ROW(pow_scalar_nan, OBJ(tg_pow_scalar(f->T, f->a23, NAN)))
ROW(rdiv_scalar_nan, OBJ(tg_rdiv_scalar(f->T, NAN, f->a23)))
ROW(leaky_nan, OBJ(tg_leaky_relu(f->T, f->a23, NAN)))
ROW(exp_null, OBJ(tg_exp(f->T, NULL)))
ROW(log_null_tape, OBJ(tg_log(NULL, f->a23)))
ROW(sum_stale, OBJ(tg_sum(f->T, f->stale)))
ROW(mean_empty, OBJ(tg_mean(f->T, f->n0)))
ROW(op_input_range, VAL(tg_tensor_input(f->node, 2), NULL))
ROW(op_name_range, VAL(strcmp(tg_op_name((enum tg_op)100000), "?"), 0))
/* ---- ops_linalg.h ---- */
ROW(matmul_inner, OBJ(tg_matmul(f->T, f->a23, f->b23)))
ROW(matmul_dtypes, OBJ(tg_matmul_t(f->T, f->a23, f->d23, false, true)))
ROW(matmul_scalar, OBJ(tg_matmul(f->T, f->s, f->a23)))
ROW(matmul_null, OBJ(tg_matmul(f->T, NULL, f->a23)))
ROW(matmul_backend, tg_matmul_set_backend((enum tg_matmul_backend)42))
ROW(sum_axes_range, OBJ(tg_sum_axes(f->T, f->a23, (int[]){2}, 1, false)))
ROW(sum_axes_dup, OBJ(tg_sum_axes(f->T, f->a23, (int[]){1, -1}, 2, false)))
ROW(sum_axes_null_axes, OBJ(tg_sum_axes(f->T, f->a23, NULL, 1, false)))
ROW(mean_axes_empty, OBJ(tg_mean_axes(f->T, f->n0, (int[]){0}, 1, false)))
ROW(max_axes_empty, OBJ(tg_max_axes(f->T, f->n0, (int[]){0}, 1, false)))
ROW(min_axes_range, OBJ(tg_min_axes(f->T, f->a23, (int[]){-3}, 1, true)))
ROW(lse_axes_range, OBJ(tg_logsumexp_axes(f->T, f->a23, (int[]){7}, 1, false)))
ROW(var_axes_nan, OBJ(tg_var_axes(f->T, f->a23, (int[]){1}, 1, NAN, false)))
ROW(argmax_empty, OBJ(tg_argmax_axes(f->T, f->n0, (int[]){0}, 1, false)))
ROW(argmin_range, OBJ(tg_argmin_axes(f->T, f->a23, (int[]){3}, 1, false)))
/* ---- ops_nn.h ---- */
ROW(softmax_axis, OBJ(tg_softmax(f->T, f->a23, 2)))
ROW(log_softmax_null, OBJ(tg_log_softmax(f->T, NULL, 0)))
ROW(mse_shapes, OBJ(tg_mse(f->T, f->a23, f->c5, TG_REDUCE_MEAN)))
ROW(mse_dtypes, OBJ(tg_mse(f->T, f->a23, f->d23, TG_REDUCE_SUM)))
ROW(mse_reduction, OBJ(tg_mse(f->T, f->a23, f->b23, (enum tg_reduction)9)))
ROW(ce_labels_range, OBJ(tg_cross_entropy_idx(f->T, f->a23, (int64_t[]){0, 3}, 2, TG_REDUCE_MEAN)))
ROW(ce_labels_n, OBJ(tg_cross_entropy_idx(f->T, f->a23, (int64_t[]){0}, 1, TG_REDUCE_MEAN)))
ROW(ce_labels_null, OBJ(tg_cross_entropy_idx(f->T, f->a23, NULL, 2, TG_REDUCE_MEAN)))
ROW(ce_labels_shape, OBJ(tg_cross_entropy(f->T, f->a23, f->c5, TG_REDUCE_MEAN)))
ROW(ce_probs_shape, OBJ(tg_cross_entropy_probs(f->T, f->a23, f->c5, TG_REDUCE_MEAN)))
ROW(bce_dtypes, OBJ(tg_bce_logits(f->T, f->a23, f->d23, TG_REDUCE_MEAN)))
ROW(hinge_values, OBJ(tg_hinge(f->T, f->a23, f->b23, TG_REDUCE_MEAN)))
ROW(margin_nan, OBJ(tg_multi_margin(f->T, f->a23, f->lab2, NAN, TG_REDUCE_MEAN)))
ROW(l2_null, OBJ(tg_l2_penalty(f->T, NULL)))
ROW(dropout_p, OBJ(tg_dropout(f->T, f->a23, 1.5, true, &f->rng)))
ROW(dropout_nan, OBJ(tg_dropout(f->T, f->a23, NAN, true, &f->rng)))
ROW(dropout_rng_null, OBJ(tg_dropout(f->T, f->a23, 0.5, true, NULL)))
/* ---- ops_shape.h ---- */
ROW(reshape_numel, OBJ(tg_reshape(f->T, f->a23, 1, (int64_t[]){5})))
ROW(reshape_rank9, OBJ(tg_reshape(f->T, f->a23, 9, rank9)))
ROW(reshape_ovf, OBJ(tg_reshape(f->T, f->a23, 2, big)))
ROW(reshape_null_shape, OBJ(tg_reshape(f->T, f->a23, 2, NULL)))
ROW(squeeze_not1, OBJ(tg_squeeze(f->T, f->a23, 0)))
ROW(squeeze_range, OBJ(tg_squeeze(f->T, f->a23, 4)))
ROW(squeeze_all_null, OBJ(tg_squeeze_all(f->T, NULL)))
ROW(unsqueeze_range, OBJ(tg_unsqueeze(f->T, f->a23, 4)))
ROW(unsqueeze_rank9,
    OBJ(tg_unsqueeze(f->T, tg_reshape(f->T, f->a23, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 2, 3}), 0)))
ROW(transpose_range, OBJ(tg_transpose(f->T, f->a23, 0, 2)))
ROW(permute_dup, OBJ(tg_permute(f->T, f->a23, 2, (int[]){0, 0})))
ROW(permute_n, OBJ(tg_permute(f->T, f->a23, 3, (int[]){0, 1, 2})))
ROW(permute_null, OBJ(tg_permute(f->T, f->a23, 2, NULL)))
ROW(broadcast_bad, OBJ(tg_broadcast_to(f->T, f->a23, 2, (int64_t[]){4, 3})))
ROW(broadcast_rank9, OBJ(tg_broadcast_to(f->T, f->a23, 9, rank9)))
ROW(broadcast_ovf, OBJ(tg_broadcast_to(f->T, f->s, 2, big)))
ROW(slice_step0, OBJ(tg_slice_axis(f->T, f->a23, 1, 0, 3, 0)))
ROW(slice_axis_range, OBJ(tg_slice_axis(f->T, f->a23, 2, 0, 1, 1)))
ROW(slice_n, OBJ(tg_slice(f->T, f->a23, 3, (struct tg_slice_spec[3]){{0}})))
ROW(slice_spec_null, OBJ(tg_slice(f->T, f->a23, 2, NULL)))
ROW(index_select_range, OBJ(tg_index_select(f->T, f->a23, 1, (int64_t[]){0, 3}, 2)))
ROW(index_select_neg, OBJ(tg_index_select(f->T, f->a23, 0, (int64_t[]){-3}, 1)))
ROW(index_select_null, OBJ(tg_index_select(f->T, f->a23, 0, NULL, 1)))
ROW(index_select_axis, OBJ(tg_index_select(f->T, f->a23, 5, (int64_t[]){0}, 1)))
ROW(index_select_t_rank, OBJ(tg_index_select_tensor(f->T, f->a23, 0, f->a23)))
ROW(gather_range, OBJ(tg_gather(f->T, f->a23, 1, 2, (int64_t[]){2, 1}, (int64_t[]){0, 7})))
ROW(gather_null, OBJ(tg_gather(f->T, f->a23, 1, 2, (int64_t[]){2, 1}, NULL)))
ROW(gather_t_shape, OBJ(tg_gather_tensor(f->T, f->a23, 1, f->c5)))
ROW(slice_scatter_shape,
    OBJ(tg_slice_scatter(f->T, f->c5, 1, (int64_t[]){4}, 1, &(struct tg_slice_spec){0, 2, 1})))
ROW(slice_scatter_null, OBJ(tg_slice_scatter(f->T, NULL, 1, (int64_t[]){5}, 0, NULL)))
ROW(slice_scatter_rank9, OBJ(tg_slice_scatter(f->T, f->c5, 9, rank9, 0, NULL)))
ROW(slice_scatter_ovf, OBJ(tg_slice_scatter(f->T, f->c5, 2, big, 0, NULL)))
ROW(slice_scatter_stale, OBJ(tg_slice_scatter(f->T, f->stale, 2, (int64_t[]){2, 3}, 0, NULL)))
ROW(index_add_range, OBJ(tg_index_add(f->T, f->a23, 1, 2, (int64_t[]){0, 1, 2}, 3)))
ROW(index_add_n, OBJ(tg_index_add(f->T, f->a23, 0, 4, (int64_t[]){0}, 1)))
ROW(index_add_null, OBJ(tg_index_add(f->T, f->a23, 0, 4, NULL, 2)))
ROW(index_add_size, OBJ(tg_index_add(f->T, f->n0, 0, -1, NULL, 0)))
ROW(scatter_add_rank, OBJ(tg_scatter_add(f->T, f->a23, 0, 1, (int64_t[]){6}, (int64_t[6]){0})))
ROW(scatter_add_range,
    OBJ(tg_scatter_add(f->T, f->c5, 0, 1, (int64_t[]){2}, (int64_t[]){0, 1, 2, 0, 0})))
ROW(scatter_add_null, OBJ(tg_scatter_add(f->T, f->c5, 0, 1, (int64_t[]){2}, NULL)))
ROW(scatter_add_ovf, OBJ(tg_scatter_add(f->T, f->c5, 0, 2, big, (int64_t[5]){0})))
ROW(scatter_add_stale, OBJ(tg_scatter_add(f->T, f->stale, 0, 2, (int64_t[]){2, 3}, NULL)))
ROW(concat_shapes, OBJ(tg_concat(f->T, 2, (struct tg_tensor *[]){f->a23, f->c5}, 0)))
ROW(concat_dtypes, OBJ(tg_concat(f->T, 2, (struct tg_tensor *[]){f->a23, f->d23}, 0)))
ROW(concat_zero, OBJ(tg_concat(f->T, 0, (struct tg_tensor *[]){f->a23}, 0)))
ROW(concat_null_list, OBJ(tg_concat(f->T, 2, NULL, 0)))
ROW(concat_axis, OBJ(tg_concat(f->T, 2, (struct tg_tensor *[]){f->a23, f->b23}, 3)))
ROW(stack_shapes, OBJ(tg_stack(f->T, 2, (struct tg_tensor *[]){f->a23, f->c5}, 0)))
ROW(stack_null_item, OBJ(tg_stack(f->T, 2, (struct tg_tensor *[]){f->a23, NULL}, 0)))
/* ---- gradcheck.h, jacobian.h ---- */
ROW(gradcheck_fn_null, tg_gradcheck(NULL, (struct tg_tensor *[]){f->a23}, 1, NULL, NULL, NULL))
ROW(gradcheck_inputs_null, tg_gradcheck(sq_fn, NULL, 1, NULL, NULL, NULL))
ROW(gradcheck_n, tg_gradcheck(sq_fn, (struct tg_tensor *[]){f->a23}, -1, NULL, NULL, NULL))
ROW(jacobian_null_fn, tg_jacobian(NULL, NULL, f->a23, &(struct tg_tensor *){NULL}, NULL))
ROW(jacobian_null_input, tg_jacobian(sq_fn, NULL, NULL, &(struct tg_tensor *){NULL}, NULL))
ROW(vjp_shape, tg_vjp(sq_fn, NULL, f->a23, f->c5, &(struct tg_tensor *){NULL}))
ROW(vjp_null_out, tg_vjp(sq_fn, NULL, f->a23, f->a23, NULL))
ROW(classify_null, tg_jacobian_classify(NULL, 2, 2, &(struct tg_jacobian_info){0}))
ROW(classify_neg, tg_jacobian_classify((double[]){0}, -1, 1, &(struct tg_jacobian_info){0}))
ROW(classify_ovf, tg_jacobian_classify((double[]){0}, INT64_MAX, 4, &(struct tg_jacobian_info){0}))
ROW(jac_name_range, VAL(strcmp(tg_jacobian_structure_name((enum tg_jacobian_structure)77), "?"), 0))
/* ---- grad.h ---- */
#define G1                                                                                         \
    (struct tg_tensor *[])                                                                         \
    {                                                                                              \
        NULL                                                                                       \
    }
ROW(grad_outputs_null, tg_grad(1, NULL, NULL, 1, &f->a23, NULL, G1))
ROW(grad_n_out, tg_grad(0, &f->node, NULL, 1, &f->a23, NULL, G1))
ROW(grad_inputs_null, tg_grad(1, &f->node, &f->b23, 1, NULL, NULL, G1))
ROW(grad_grads_null, tg_grad(1, &f->node, &f->b23, 1, &f->a23, NULL, NULL))
ROW(grad_output_entry_null, tg_grad(1, (struct tg_tensor *[]){NULL}, NULL, 1, &f->a23, NULL, G1))
ROW(grad_input_entry_null, tg_grad(1, &f->node, &f->b23, 1, (struct tg_tensor *[]){NULL}, NULL, G1))
ROW(grad_stale_output, tg_grad(1, &f->stale, NULL, 1, &f->a23, NULL, G1))
ROW(grad_stale_input, tg_grad(1, &f->node, &f->b23, 1, &f->stale, NULL, G1))
ROW(grad_stale_seed, tg_grad(1, &f->node, &f->stale, 1, &f->a23, NULL, G1))
ROW(grad_output_leaf, tg_grad(1, &f->a23, NULL, 1, &f->a23, NULL, G1))
ROW(grad_no_seed, tg_grad(1, &f->node, NULL, 1, &f->a23, NULL, G1))
ROW(grad_seed_shape, tg_grad(1, &f->node, &f->c5, 1, &f->a23, NULL, G1))
ROW(grad_seed_dtype, tg_grad(1, &f->node, &f->d23, 1, &f->a23, NULL, G1))
ROW(grad_seed_tape, tg_grad(1, &f->node, (struct tg_tensor *[]){tg_add(f->T2, f->b23, f->b23)}, 1,
                            &f->a23, NULL, G1))
ROW(grad_input_tape, tg_grad(1, &f->node, &f->b23, 1,
                             (struct tg_tensor *[]){tg_add(f->T2, f->a23, f->b23)}, NULL, G1))
ROW(grad_outputs_tapes, tg_grad(2, (struct tg_tensor *[]){f->node, tg_add(f->T2, f->a23, f->a23)},
                                (struct tg_tensor *[]){f->b23, f->b23}, 1, &f->a23, NULL, G1))
ROW(grad_input_no_rg, tg_grad(1, &f->node, &f->b23, 1, &f->b23, NULL, G1))
ROW(grad_unused,
    (tg_tensor_set_requires_grad(f->c5, true), tg_grad(1, &f->node, &f->b23, 1, &f->c5, NULL, G1)))
ROW(ggc_fn_null, tg_gradgradcheck(NULL, &f->a23, 1, NULL, NULL, NULL))
ROW(ggc_inputs_null, tg_gradgradcheck(sq_fn, NULL, 1, NULL, NULL, NULL))
ROW(ggc_n, tg_gradgradcheck(sq_fn, &f->a23, 0, NULL, NULL, NULL))
ROW(ggc_input_null, tg_gradgradcheck(sq_fn, (struct tg_tensor *[]){NULL}, 1, NULL, NULL, NULL))
ROW(ggc_node, tg_gradgradcheck(sq_fn, &f->node, 1, NULL, NULL, NULL))
ROW(hvp_hv_null, tg_hvp(f->node, 1, &f->a23, &f->b23, NULL, NULL))
ROW(hvp_inputs_null, tg_hvp(f->node, 1, NULL, &f->b23, NULL, G1))
ROW(hvp_output_null, tg_hvp(NULL, 1, &f->a23, &f->b23, NULL, G1))
ROW(hvp_v_null, tg_hvp(f->node, 1, &f->a23, NULL, NULL, G1))
ROW(hvp_v_shape, tg_hvp(f->node, 1, &f->a23, &f->c5, NULL, G1))
ROW(hvp_v_dtype, tg_hvp(f->node, 1, &f->a23, &f->d23, NULL, G1))
ROW(hvp_stale, tg_hvp(f->stale, 1, &f->a23, &f->b23, NULL, G1))
ROW(hvp_not_scalar, tg_hvp(f->node, 1, &f->a23, &f->b23, NULL, G1))
ROW(hvp_unused, (tg_tensor_set_requires_grad(f->c5, true),
                 tg_hvp(tg_sum(f->T, f->node), 1, &f->c5, &f->c5, NULL, G1)))
ROW(hessian_null_out, tg_hessian(sq_fn, NULL, f->a23, NULL, NULL))
ROW(hessian_null_fn, tg_hessian(NULL, NULL, f->a23, G1, NULL))
ROW(hessian_null_input, tg_hessian(sq_fn, NULL, NULL, G1, NULL))
ROW(hessian_stale, tg_hessian(sq_fn, NULL, f->stale, G1, NULL))
static enum tg_status hessian_too_large(struct fx *f)
{
    struct tg_tensor *x = tg_tensor_zeros(TG_F32, 2, (int64_t[]){1000, 1000});
    enum tg_status st = tg_hessian(sq_fn, NULL, x, G1, NULL);
    tg_tensor_free(x);
    (void)f;
    return st;
}
ROW(hessian_not_scalar, tg_hessian(sq_fn, NULL, f->a23, G1, NULL))
ROW(jvp_jv_null, tg_jvp(1, &f->node, 1, &f->a23, &f->b23, NULL, NULL))
ROW(jvp_outputs_null, tg_jvp(1, NULL, 1, &f->a23, &f->b23, NULL, G1))
ROW(jvp_n_out, tg_jvp(0, &f->node, 1, &f->a23, &f->b23, NULL, G1))
ROW(jvp_inputs_null, tg_jvp(1, &f->node, 1, NULL, &f->b23, NULL, G1))
ROW(jvp_n_in, tg_jvp(1, &f->node, 0, &f->a23, &f->b23, NULL, G1))
ROW(jvp_v_null, tg_jvp(1, &f->node, 1, &f->a23, NULL, NULL, G1))
ROW(jvp_output_entry_null, tg_jvp(1, (struct tg_tensor *[]){NULL}, 1, &f->a23, &f->b23, NULL, G1))
ROW(jvp_input_entry_null, tg_jvp(1, &f->node, 1, (struct tg_tensor *[]){NULL}, &f->b23, NULL, G1))
ROW(jvp_v_entry_null, tg_jvp(1, &f->node, 1, &f->a23, (struct tg_tensor *[]){NULL}, NULL, G1))
ROW(jvp_v_shape, tg_jvp(1, &f->node, 1, &f->a23, &f->c5, NULL, G1))
ROW(jvp_v_dtype, tg_jvp(1, &f->node, 1, &f->a23, &f->d23, NULL, G1))
ROW(jvp_v_tape, tg_jvp(1, &f->node, 1, &f->a23,
                       (struct tg_tensor *[]){tg_add(f->T2, f->b23, f->b23)}, NULL, G1))
ROW(jvp_stale_output, tg_jvp(1, &f->stale, 1, &f->a23, &f->b23, NULL, G1))
ROW(jvp_stale_input, tg_jvp(1, &f->node, 1, &f->stale, &f->b23, NULL, G1))
ROW(jvp_stale_v, tg_jvp(1, &f->node, 1, &f->a23, &f->stale, NULL, G1))
ROW(jvp_output_leaf, tg_jvp(1, &f->a23, 1, &f->a23, &f->b23, NULL, G1))
ROW(jvp_input_no_rg, tg_jvp(1, &f->node, 1, &f->b23, &f->b23, NULL, G1))
ROW(jvp_unused,
    (tg_tensor_set_requires_grad(f->c5, true), tg_jvp(1, &f->node, 1, &f->c5, &f->c5, NULL, G1)))
/* ---- graph.h, trace.h ---- */
ROW(dot_null_root, tg_graph_dot(NULL, stdout, NULL))
ROW(dot_null_out, tg_graph_dot(f->node, NULL, NULL))
ROW(dot_stale, tg_graph_dot(f->stale, stdout, NULL))
ROW(trace_null, tg_backward_trace(NULL, NULL, &(struct tg_trace *){NULL}))
ROW(trace_out_null, tg_backward_trace(tg_sum(f->T, f->node), NULL, NULL))
ROW(trace_print_null, tg_trace_print(NULL, stdout, NULL))
ROW(name_of_null, VAL(tg_graph_name_of(NULL, f->a23), NULL))
/* ---- params.h, checkpoint.h ---- */
ROW(params_add_null, tg_params_add(NULL, "w", f->a23))
ROW(params_add_name_null, tg_params_add(f->p, NULL, f->a23))
ROW(params_add_node, tg_params_add(f->p, "w", f->node))
ROW(params_add_empty, tg_params_add(f->p, "", f->a23))
ROW(params_add_reserved, tg_params_add(f->p, "__metadata__", f->a23))
ROW(params_get_null, OBJ(tg_params_get(NULL, "w")))
ROW(params_name_range, OBJ(tg_params_name(f->p, 0)))
ROW(params_tensor_range, OBJ(tg_params_tensor(f->p, 3)))
ROW(params_zero_grad_null, tg_params_zero_grad(NULL))
ROW(meta_set_null, tg_params_meta_set(NULL, "k", "v"))
ROW(meta_set_empty, tg_params_meta_set(f->p, "", "v"))
ROW(meta_key_range, OBJ(tg_params_meta_key(f->p, 0)))
ROW(save_null, tg_checkpoint_save(NULL, "/tmp/x"))
ROW(save_path_null, tg_checkpoint_save(f->p, NULL))
ROW(save_no_dir, tg_checkpoint_save(f->p, "/nonexistent-dir/x.safetensors"))
ROW(load_null, tg_checkpoint_load(NULL, "/tmp/x"))
ROW(load_missing, tg_checkpoint_load(f->p, "/nonexistent-dir/x.safetensors"))
ROW(read_null, OBJ(tg_checkpoint_read(NULL)))
ROW(read_buffer_null, OBJ(tg_checkpoint_read_buffer(NULL, 8)))
ROW(read_buffer_short, OBJ(tg_checkpoint_read_buffer("abc", 3)))
ROW(remove_temps_null, tg_checkpoint_remove_temps(NULL, NULL))
ROW(remove_temps_nodir, tg_checkpoint_remove_temps("/nonexistent-dir/x", NULL))
/* ---- dataset.h ---- */
ROW(ds_new_null, OBJ(tg_dataset_new(NULL, tg_tensor_zeros(TG_F32, 1, (int64_t[]){2}))))
ROW(ds_new_shape, OBJ(tg_dataset_new(tg_tensor_zeros(TG_F32, 2, (int64_t[]){2, 3}),
                                     tg_tensor_zeros(TG_F32, 1, (int64_t[]){3}))))
ROW(ds_new_dtype, OBJ(tg_dataset_new(tg_tensor_zeros(TG_F32, 2, (int64_t[]){2, 3}),
                                     tg_tensor_zeros(TG_F64, 1, (int64_t[]){2}))))
ROW(ds_new_empty, OBJ(tg_dataset_new(tg_tensor_zeros(TG_F32, 2, (int64_t[]){0, 3}),
                                     tg_tensor_zeros(TG_F32, 1, (int64_t[]){0}))))
ROW(idx_null, OBJ(tg_dataset_read_idx(NULL, TG_F32)))
ROW(idx_dtype, OBJ(tg_dataset_read_idx("/nonexistent", (enum tg_dtype)3)))
ROW(idx_missing, OBJ(tg_dataset_read_idx("/nonexistent-dir/x.idx", TG_F32)))
ROW(load_idx_null, OBJ(tg_dataset_load_idx(NULL, "/x", TG_F32, 1.0)))
ROW(csv_null, OBJ(tg_dataset_load_csv(NULL, NULL)))
ROW(csv_delim, OBJ(tg_dataset_load_csv("/x", &(struct tg_dataset_csv_options){.delimiter = '\n'})))
ROW(csv_missing, OBJ(tg_dataset_load_csv("/nonexistent-dir/x.csv", NULL)))
ROW(shuffle_null, tg_dataset_shuffle(NULL, &f->rng))
ROW(batch_count_zero, (tg_dataset_batch_count(f->ds, 0), tg_last_status()))
ROW(batch_into_range,
    tg_dataset_batch_into(f->ds, 3, tg_tape_constant(f->T, TG_F32, 2, (int64_t[]){2, 2}, NULL),
                          f->lab2))
ROW(batch_range,
    tg_dataset_batch(f->ds, f->T, 5, 2, &(struct tg_tensor *){NULL}, &(struct tg_tensor *){NULL}))
ROW(standardize_shape, tg_dataset_standardize(f->ds, f->c5, f->c5))
ROW(split_fraction,
    tg_dataset_split(f->ds, 1.5, &(struct tg_dataset *){NULL}, &(struct tg_dataset *){NULL}))
ROW(split_nan,
    tg_dataset_split(f->ds, NAN, &(struct tg_dataset *){NULL}, &(struct tg_dataset *){NULL}))
ROW(batch_into_null, tg_dataset_batch_into(NULL, 0, f->a23, f->c5))
ROW(batch_null,
    tg_dataset_batch(NULL, f->T, 0, 1, &(struct tg_tensor *){NULL}, &(struct tg_tensor *){NULL}))
ROW(stats_null,
    tg_dataset_feature_stats(NULL, &(struct tg_tensor *){NULL}, &(struct tg_tensor *){NULL}))
ROW(standardize_null, tg_dataset_standardize(NULL, f->c5, f->c5))
ROW(split_null,
    tg_dataset_split(NULL, 0.5, &(struct tg_dataset *){NULL}, &(struct tg_dataset *){NULL}))
/* ---- status.h ---- */
ROW(status_str_range, VAL(tg_status_str((enum tg_status)999) != NULL, 1))
static void *my_malloc(size_t n, void *ctx)
{
    return malloc(n);
}
ROW(set_allocator_partial, tg_set_allocator(&(struct tg_allocator){my_malloc, NULL, NULL, NULL}))
/* ---- tg_detach (ops_grad.h) ---- */
ROW(detach_null_input, OBJ(tg_detach(f->T, NULL)))
ROW(detach_null_tape, OBJ(tg_detach(NULL, f->a23)))
ROW(detach_stale, OBJ(tg_detach(f->T, f->stale)))
ROW(detach_other_tape, OBJ(tg_detach(f->T2, f->node)))

/* ---- ops_conv.h: each call on leaves of its own, freed before the row returns ---- */
enum conv_bad {
    CB_KERNEL_BIG,
    CB_STRIDE0,
    CB_STRIDE_NEG,
    CB_GROUPS,
    CB_CHANNELS,
    CB_RANK,
    CB_DTYPE,
    CB_BIAS,
    CB_CONV1D_RANK,
    CB_INPUT_GRAD_SIZE,
    CB_WEIGHT_GRAD_BATCH,
    CB_POOL_BIG,
    CB_POOL_STRIDE0,
    CB_POOL_PAD,
    CB_POOL_NULL
};
static enum tg_status conv_bad(struct fx *f, enum conv_bad which)
{
    struct tg_tensor *x = tg_tensor_ones(TG_F32, 4, (int64_t[]){1, 3, 2, 2});
    struct tg_tensor *w = tg_tensor_ones(TG_F32, 4, (int64_t[]){2, 3, 5, 5});
    struct tg_tensor *w3 = tg_tensor_ones(TG_F32, 4, (int64_t[]){2, 2, 1, 1});
    struct tg_tensor *w64 = tg_tensor_ones(TG_F64, 4, (int64_t[]){2, 3, 1, 1});
    struct tg_tensor *dy2 = tg_tensor_ones(TG_F32, 4, (int64_t[]){2, 2, 2, 2});
    struct tg_tensor *w1 = tg_tensor_ones(TG_F32, 4, (int64_t[]){2, 3, 1, 1});
    struct tg_conv_params p = tg_conv_params_default();
    struct tg_pool_params pp = {{3, 3}, {1, 1}, {0, 0}};
    struct tg_tensor *y = NULL;
    tg_clear_error();
    switch (which) {
    case CB_KERNEL_BIG:
        y = tg_conv2d(f->T, x, w, NULL, &p);
        break;
    case CB_STRIDE0:
        p.stride[1] = 0, y = tg_conv2d(f->T, x, w1, NULL, &p);
        break;
    case CB_STRIDE_NEG:
        p.stride[0] = -2, y = tg_conv2d(f->T, x, w1, NULL, &p);
        break;
    case CB_GROUPS:
        p.groups = 2, y = tg_conv2d(f->T, x, w1, NULL, &p);
        break;
    case CB_CHANNELS:
        y = tg_conv2d(f->T, x, w3, NULL, &p);
        break;
    case CB_RANK:
        y = tg_conv2d(f->T, f->a23, w1, NULL, &p);
        break;
    case CB_DTYPE:
        y = tg_conv2d(f->T, x, w64, NULL, &p);
        break;
    case CB_BIAS:
        y = tg_conv2d(f->T, x, w1, f->c5, &p);
        break;
    case CB_CONV1D_RANK:
        y = tg_conv1d(f->T, x, w1, NULL, 1, 0, 1, 1);
        break;
    case CB_INPUT_GRAD_SIZE:
        y = tg_conv2d_input_grad(f->T, x, w3, 5, 5, &p);
        break;
    case CB_WEIGHT_GRAD_BATCH:
        y = tg_conv2d_weight_grad(f->T, x, dy2, 1, 1, &p);
        break;
    case CB_POOL_BIG:
        y = tg_max_pool2d(f->T, x, &pp);
        break;
    case CB_POOL_STRIDE0:
        pp.stride[0] = 0, y = tg_max_pool2d(f->T, x, &pp);
        break;
    case CB_POOL_PAD:
        pp.padding[1] = 2, y = tg_avg_pool2d(f->T, x, &pp);
        break;
    case CB_POOL_NULL:
        y = tg_avg_pool2d(f->T, x, NULL);
        break;
    }
    enum tg_status st = OBJ(y);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(w3);
    tg_tensor_free(w64);
    tg_tensor_free(dy2);
    tg_tensor_free(w1);
    return st;
}
#define CONV_ROW(id, which)                                                                        \
    static enum tg_status id(struct fx *f)                                                         \
    {                                                                                              \
        return conv_bad(f, which);                                                                 \
    }
CONV_ROW(conv2d_kernel_big, CB_KERNEL_BIG)
CONV_ROW(conv2d_stride0, CB_STRIDE0)
CONV_ROW(conv2d_stride_neg, CB_STRIDE_NEG)
CONV_ROW(conv2d_groups, CB_GROUPS)
CONV_ROW(conv2d_channels, CB_CHANNELS)
CONV_ROW(conv2d_rank, CB_RANK)
CONV_ROW(conv2d_dtype, CB_DTYPE)
CONV_ROW(conv2d_bias, CB_BIAS)
CONV_ROW(conv1d_rank, CB_CONV1D_RANK)
CONV_ROW(conv2d_input_grad_size, CB_INPUT_GRAD_SIZE)
CONV_ROW(conv2d_weight_grad_batch, CB_WEIGHT_GRAD_BATCH)
CONV_ROW(max_pool2d_kernel_big, CB_POOL_BIG)
CONV_ROW(max_pool2d_stride0, CB_POOL_STRIDE0)
CONV_ROW(avg_pool2d_pad, CB_POOL_PAD)
CONV_ROW(avg_pool2d_null, CB_POOL_NULL)
ROW(conv2d_null, OBJ(tg_conv2d(f->T, NULL, f->a23, NULL, NULL)))
ROW(conv2d_stale, OBJ(tg_conv2d(f->T, f->stale, f->a23, NULL, NULL)))

/* ---- ops_norm.h: batch_norm, layer_norm, embedding, where, clamp ---- */
/* batch_norm of a new f32 x (shape, values all v but a NaN first when nan)
 * with running buffers of C entries (requiring grad when rg) and a count. */
static enum tg_status bn_call(struct fx *f, int64_t n, int64_t c, bool nan, bool training, bool rg,
                              double count)
{
    struct tg_tensor *x = tg_tensor_full(TG_F32, 2, (int64_t[]){n, c}, 0.5);
    struct tg_tensor *m = tg_tensor_zeros(TG_F32, 1, (int64_t[]){c});
    struct tg_tensor *v = tg_tensor_ones(TG_F32, 1, (int64_t[]){c});
    struct tg_tensor *k = tg_tensor_scalar(TG_F64, count);
    if (nan) tg_tensor_set(x, 0, NAN);
    if (rg) tg_tensor_set_requires_grad(m, true);
    struct tg_batch_norm_stats st = {m, v, k};
    enum tg_status r = OBJ(tg_batch_norm(f->T, x, NULL, NULL, &st, training, 0.1, 1e-5));
    bool untouched = tg_tensor_get(m, 0) == 0 && tg_tensor_get(k, 0) == count;
    tg_tensor_free(x);
    tg_tensor_free(m);
    tg_tensor_free(v);
    tg_tensor_free(k);
    return untouched ? r : TG_ERR_GRADCHECK; /* a failed call must not update the buffers */
}
static enum tg_status bn_weight_f64(struct fx *f)
{
    struct tg_tensor *w = tg_tensor_ones(TG_F64, 1, (int64_t[]){3});
    enum tg_status r = OBJ(tg_batch_norm(f->T, f->a23, w, NULL, NULL, true, 0.1, 1e-5));
    tg_tensor_free(w);
    return r;
}
static enum tg_status bn_stats_node(struct fx *f)
{
    struct tg_batch_norm_stats st = {f->node, f->node, NULL};
    return OBJ(tg_batch_norm(f->T, f->a23, NULL, NULL, &st, true, 0.1, 1e-5));
}
static enum tg_status bn_stats_shape(struct fx *f)
{
    struct tg_batch_norm_stats st = {f->c5, f->c5, NULL};
    return OBJ(tg_batch_norm(f->T, f->a23, NULL, NULL, &st, false, 0.1, 1e-5));
}
static enum tg_status emb_call(struct fx *f, double index)
{
    struct tg_tensor *i = tg_tensor_from_f64(TG_F64, 1, (int64_t[]){2}, (double[]){0, index});
    enum tg_status r = OBJ(tg_embedding(f->T, f->a23, i));
    tg_tensor_free(i);
    return r;
}
static enum tg_status where_cond(struct fx *f, double v)
{
    struct tg_tensor *c = tg_tensor_full(TG_F64, 1, (int64_t[]){3}, v);
    enum tg_status r = OBJ(tg_where(f->T, c, f->a23, f->b23));
    tg_tensor_free(c);
    return r;
}
ROW(bn_rank1, OBJ(tg_batch_norm(f->T, f->c5, NULL, NULL, NULL, true, 0.1, 1e-5)))
ROW(bn_weight_shape, OBJ(tg_batch_norm(f->T, f->a23, f->c5, NULL, NULL, true, 0.1, 1e-5)))
ROW(bn_weight_dtype, bn_weight_f64(f))
ROW(bn_batch1, bn_call(f, 1, 3, false, true, false, 0))
ROW(bn_nan_stats, bn_call(f, 4, 3, true, true, false, 0))
ROW(bn_eval_untrained, bn_call(f, 4, 3, false, false, false, 0))
ROW(bn_running_grad, bn_call(f, 4, 3, false, true, true, 0))
ROW(bn_eval_no_stats, OBJ(tg_batch_norm(f->T, f->a23, NULL, NULL, NULL, false, 0.1, 1e-5)))
ROW(bn_momentum, OBJ(tg_batch_norm(f->T, f->a23, NULL, NULL, NULL, true, 1.5, 1e-5)))
ROW(bn_eps, OBJ(tg_batch_norm(f->T, f->a23, NULL, NULL, NULL, true, 0.1, 0)))
ROW(bn_running_node, bn_stats_node(f))
ROW(bn_running_shape, bn_stats_shape(f))
ROW(bn_null, OBJ(tg_batch_norm(f->T, NULL, NULL, NULL, NULL, true, 0.1, 1e-5)))
ROW(bn_stale, OBJ(tg_batch_norm(f->T, f->stale, NULL, NULL, NULL, true, 0.1, 1e-5)))
ROW(ln_k_big, OBJ(tg_layer_norm(f->T, f->a23, 3, NULL, NULL, 1e-5)))
ROW(ln_k_zero, OBJ(tg_layer_norm(f->T, f->a23, 0, NULL, NULL, 1e-5)))
ROW(ln_weight_shape, OBJ(tg_layer_norm(f->T, f->a23, 1, f->c5, NULL, 1e-5)))
ROW(ln_bias_dtype, OBJ(tg_layer_norm(f->T, f->a23, 2, NULL, f->d23, 1e-5)))
ROW(ln_eps_nan, OBJ(tg_layer_norm(f->T, f->a23, 1, NULL, NULL, NAN)))
ROW(ln_empty, OBJ(tg_layer_norm(f->T, f->n0, 2, NULL, NULL, 1e-5)))
ROW(ln_null, OBJ(tg_layer_norm(f->T, NULL, 1, NULL, NULL, 1e-5)))
ROW(emb_rank, OBJ(tg_embedding(f->T, f->c5, f->lab2)))
ROW(emb_range, emb_call(f, 2))
ROW(emb_negative, emb_call(f, -1))
ROW(emb_fraction, emb_call(f, 0.5))
ROW(emb_index_null, OBJ(tg_embedding(f->T, f->a23, NULL)))
ROW(emb_index_stale, OBJ(tg_embedding(f->T, f->a23, f->stale)))
ROW(where_values, where_cond(f, 2))
ROW(where_nan, where_cond(f, NAN))
ROW(where_shapes, OBJ(tg_where(f->T, f->lab2, f->a23, f->c5)))
ROW(where_dtypes, OBJ(tg_where(f->T, f->lab2, f->a23, f->d23)))
ROW(where_null, OBJ(tg_where(f->T, NULL, f->a23, f->b23)))
ROW(clamp_order, OBJ(tg_clamp(f->T, f->a23, 1, -1)))
ROW(clamp_nan, OBJ(tg_clamp(f->T, f->a23, NAN, 1)))
ROW(clamp_stale, OBJ(tg_clamp(f->T, f->stale, 0, 1)))

/* ---- nn.h: the normalization, embedding and dropout layers ---- */
static enum tg_status bnl_eval_untrained(struct fx *f)
{
    struct tg_nn_batch_norm *bn = tg_nn_batch_norm_new(f->p, "bn", 3, true, 0.1, 1e-5, TG_F32);
    enum tg_status r =
        bn ? OBJ(tg_nn_batch_norm_forward(bn, f->T, f->a23, TG_NN_EVAL)) : TG_ERR_GRADCHECK;
    tg_nn_batch_norm_free(bn);
    return r;
}
static enum tg_status bnl_clash(struct fx *f)
{
    struct tg_nn_layer_norm *ln =
        tg_nn_layer_norm_new(f->p, "n", 1, (int64_t[]){3}, true, 1e-5, TG_F32);
    struct tg_nn_batch_norm *bn = tg_nn_batch_norm_new(f->p, "n", 3, true, 0.1, 1e-5, TG_F32);
    enum tg_status r = !ln ? TG_ERR_GRADCHECK : bn ? TG_OK : tg_last_status();
    if (tg_params_count(f->p) != 2) r = TG_ERR_GRADCHECK; /* the failed call added nothing */
    tg_nn_layer_norm_free(ln);
    tg_nn_batch_norm_free(bn);
    return r;
}
static enum tg_status bnl_mode(struct fx *f)
{
    struct tg_nn_batch_norm *bn = tg_nn_batch_norm_new(f->p, "bn", 3, false, 0.1, 1e-5, TG_F32);
    enum tg_status r =
        bn ? OBJ(tg_nn_batch_norm_forward(bn, f->T, f->a23, (enum tg_nn_mode)3)) : TG_ERR_GRADCHECK;
    tg_nn_batch_norm_free(bn);
    return r;
}
ROW(bn_layer_null_params, OBJ(tg_nn_batch_norm_new(NULL, "bn", 3, true, 0.1, 1e-5, TG_F32)))
ROW(bn_layer_channels, OBJ(tg_nn_batch_norm_new(f->p, "bn", 0, true, 0.1, 1e-5, TG_F32)))
ROW(bn_layer_momentum, OBJ(tg_nn_batch_norm_new(f->p, "bn", 3, true, NAN, 1e-5, TG_F32)))
ROW(bn_layer_dtype, OBJ(tg_nn_batch_norm_new(f->p, "bn", 3, true, 0.1, 1e-5, (enum tg_dtype)9)))
ROW(bn_layer_eval_untrained, bnl_eval_untrained(f))
ROW(bn_layer_clash, bnl_clash(f))
ROW(bn_layer_mode, bnl_mode(f))
ROW(bn_layer_forward_null, OBJ(tg_nn_batch_norm_forward(NULL, f->T, f->a23, TG_NN_TRAIN)))
ROW(ln_layer_axes, OBJ(tg_nn_layer_norm_new(f->p, "ln", 0, (int64_t[]){3}, true, 1e-5, TG_F32)))
ROW(ln_layer_shape_null, OBJ(tg_nn_layer_norm_new(f->p, "ln", 1, NULL, true, 1e-5, TG_F32)))
ROW(ln_layer_eps, OBJ(tg_nn_layer_norm_new(f->p, "ln", 1, (int64_t[]){3}, true, -1, TG_F32)))
ROW(emb_layer_rng, OBJ(tg_nn_embedding_new(f->p, "emb", 4, 2, TG_F32, NULL)))
ROW(emb_layer_size, OBJ(tg_nn_embedding_new(f->p, "emb", 4, 0, TG_F32, &f->rng)))
ROW(emb_layer_name, OBJ(tg_nn_embedding_new(f->p, NULL, 4, 2, TG_F32, &f->rng)))
ROW(dropout_layer_p, OBJ(tg_nn_dropout_new(-0.1, 1)))
ROW(dropout_layer_null, OBJ(tg_nn_dropout_forward(NULL, f->T, f->a23, TG_NN_TRAIN)))

/* ---- hook.h, custom_op.h ---- */
static void nan_fwd(const struct tg_custom_op_args *a)
{
    memcpy(tg_tensor_data(a->out), tg_tensor_data(a->in[0]),
           (size_t)tg_tensor_numel(a->out) * sizeof(float));
}
/* dx += NaN: the backward anomaly mode must catch and name */
static void nan_bwd(const struct tg_custom_op_args *a, const void *dy, void *const *dx)
{
    for (int64_t i = 0; i < tg_tensor_numel(a->out); i++) ((float *)dx[0])[i] += NAN;
    (void)dy;
}
static const struct tg_custom_op_def nan_def = {
    .name = "bad_nan_op", .arity = 1, .forward = nan_fwd, .backward = nan_bwd};
/* The op of nan_def, registered by this process's first row that needs it. */
static const struct tg_custom_op *nan_op(void)
{
    const struct tg_custom_op *op = tg_custom_op_find(nan_def.name);
    if (!op) tg_custom_op_register(&nan_def, &op);
    tg_clear_error();
    return op;
}
static enum tg_status custom_nan_backward(struct fx *f)
{
    tg_tape_set_anomaly(f->T, true);
    return tg_backward(tg_sum(f->T, tg_custom_op_call(f->T, nan_op(), &f->a23, NULL)), NULL);
}
static enum tg_status hook_to_c5(struct tg_tensor *t, struct tg_tensor *g, struct tg_tensor **r,
                                 void *fx)
{
    *r = ((struct fx *)fx)->c5;
    (void)t, (void)g;
    return TG_OK;
}
ROW(hook_wrong_shape,
    (tg_hook_add_replace(f->node, hook_to_c5, f), tg_backward(tg_sum(f->T, f->node), NULL)))
/* tg_hook_add reports through its id: 0 on failure */
#define HOOK_ID(call) ((call) == 0 ? tg_last_status() : TG_OK)
ROW(hook_add_null_fn, HOOK_ID(tg_hook_add(f->a23, NULL, NULL)))
ROW(hook_add_stale, HOOK_ID(tg_hook_add_replace(f->stale, hook_to_c5, f)))
ROW(hook_remove_none, tg_hook_remove(f->a23, 12345))
ROW(custom_register_twice,
    (nan_op(), tg_custom_op_register(&nan_def, &(const struct tg_custom_op *){0})))
ROW(custom_register_no_backward,
    tg_custom_op_register(&(struct tg_custom_op_def){.name = "nb", .arity = 1, .forward = nan_fwd},
                          &(const struct tg_custom_op *){0}))
ROW(custom_register_arity, tg_custom_op_register(&(struct tg_custom_op_def){.name = "ar",
                                                                            .arity = 9,
                                                                            .forward = nan_fwd,
                                                                            .backward = nan_bwd},
                                                 &(const struct tg_custom_op *){0}))
ROW(custom_call_stale, OBJ(tg_custom_op_call(f->T, nan_op(), &f->stale, NULL)))
ROW(custom_call_null_input,
    OBJ(tg_custom_op_call(f->T, nan_op(), &(struct tg_tensor *){NULL}, NULL)))

/* ---- recompute.h ---- */
/* A segment that records on the fixture's T2 instead of the tape it is given. */
static struct tg_tensor *seg_other_tape(struct tg_tape *T, struct tg_tensor *const *in, int n,
                                        void *fx)
{
    (void)T, (void)n;
    return tg_exp(((struct fx *)fx)->T2, in[0]);
}
ROW(recompute_other_tape, OBJ(tg_recompute(f->T, seg_other_tape, &f->a23, 1, f)))
ROW(recompute_n_in, OBJ(tg_recompute(f->T, seg_other_tape, &f->a23, 0, f)))
ROW(recompute_stale, OBJ(tg_recompute(f->T, seg_other_tape, &f->stale, 1, f)))

/* ---- nn.h (resumable training) ---- */
static struct tg_tensor *no_forward(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    return x;
}
ROW(resume_save_null, tg_nn_resume_save(NULL, f->p, NULL, NULL, &(struct tg_nn_train_state){0}))
ROW(resume_save_nodir,
    tg_nn_resume_save("/nonexistent-dir/x.st", f->p, NULL, NULL, &(struct tg_nn_train_state){0}))
ROW(resume_load_null, tg_nn_resume_load("/x", NULL, NULL, NULL, &(struct tg_nn_train_state){0}))
ROW(resume_load_missing,
    tg_nn_resume_load("/nonexistent-dir/x.st", f->p, NULL, NULL, &(struct tg_nn_train_state){0}))
ROW(resumable_null,
    tg_nn_train_resumable(NULL, f->ds, &(struct tg_nn_train_config){0},
                          &(struct tg_nn_resume_config){.path = "/x", .every = 1}, NULL))
ROW(resumable_every0,
    tg_nn_train_resumable(&(struct tg_nn_module){f->p, no_forward, NULL}, f->ds,
                          &(struct tg_nn_train_config){.max_epochs = 1},
                          &(struct tg_nn_resume_config){.path = "/tmp/x", .every = 0}, NULL))

struct row {
    enum tg_status (*run)(struct fx *);
    const char *id;
    enum tg_status want;
    const char *names; /* the message must contain this; NULL: the row checks a value */
};
#define R(id, want, names)                                                                         \
    {                                                                                              \
        id, #id, want, names                                                                       \
    }

static const struct row rows[] = {
    R(zeros_rank9, TG_ERR_RANGE, "tg_tensor_zeros"),
    R(zeros_rank_neg, TG_ERR_RANGE, "tg_tensor_zeros"),
    R(zeros_shape_null, TG_ERR_NULL, "tg_tensor_zeros"),
    R(zeros_neg_dim, TG_ERR_RANGE, "tg_tensor_zeros"),
    R(zeros_numel_ovf, TG_ERR_RANGE, "tg_tensor_zeros"),
    R(zeros_bytes_ovf, TG_ERR_RANGE, "tg_tensor_zeros"),
    R(zeros_dtype, TG_ERR_DTYPE, "tg_tensor_zeros"),
    R(ones_rank9, TG_ERR_RANGE, "tg_tensor_ones"),
    R(full_ovf, TG_ERR_RANGE, "tg_tensor_full"),
    R(from_null_data, TG_ERR_NULL, "tg_tensor_from"),
    R(from_f64_null, TG_ERR_NULL, "tg_tensor_from_f64"),
    R(scalar_dtype, TG_ERR_DTYPE, "tg_tensor_scalar"),
    R(arange_step0, TG_ERR_VALUE, "tg_tensor_arange"),
    R(arange_nan, TG_ERR_VALUE, "tg_tensor_arange"),
    R(arange_inf, TG_ERR_VALUE, "tg_tensor_arange"),
    R(arange_huge, TG_ERR_RANGE, "tg_tensor_arange"),
    R(uniform_rng_null, TG_ERR_NULL, "tg_tensor_uniform"),
    R(uniform_nan, TG_ERR_VALUE, "tg_tensor_uniform"),
    R(normal_neg_std, TG_ERR_VALUE, "tg_tensor_normal"),
    R(normal_inf, TG_ERR_VALUE, "tg_tensor_normal"),
    R(copy_null, TG_ERR_NULL, "tg_tensor_copy"),
    R(copy_stale, TG_ERR_STALE, "tg_tensor_copy"),
    R(to_null, TG_ERR_NULL, "tg_tensor_to"),
    R(to_dtype, TG_ERR_DTYPE, "tg_tensor_to"),
    R(set_rg_null, TG_ERR_NULL, "tg_tensor_set_requires_grad"),
    R(set_rg_node, TG_ERR_STATE, "tg_tensor_set_requires_grad"),
    R(zero_grad_null, TG_ERR_NULL, "tg_tensor_zero_grad"),
    R(set_null, TG_ERR_NULL, "tg_tensor_set"),
    R(set_range, TG_ERR_RANGE, "tg_tensor_set"),
    R(set_neg_index, TG_ERR_RANGE, "tg_tensor_set"),
    R(set_node, TG_ERR_STATE, "tg_tensor_set"),
    R(get_range, TG_OK, NULL),
    R(grad_get_range, TG_OK, NULL),
    R(item_many, TG_OK, NULL),
    R(item_null, TG_OK, NULL),
    R(dim_range, TG_OK, NULL),
    R(rank_null, TG_OK, NULL),
    R(shape_str_null, TG_OK, NULL),
    R(pop_unpushed, TG_ERR_STATE, "tg_tape_no_grad_pop"),
    R(push_null, TG_ERR_NULL, "tg_tape_no_grad_push"),
    R(pop_null, TG_ERR_NULL, "tg_tape_no_grad_pop"),
    R(anomaly_null, TG_ERR_NULL, "tg_tape_set_anomaly"),
    R(constant_null_tape, TG_ERR_NULL, "tg_tape_constant"),
    R(constant_rank9, TG_ERR_RANGE, "tg_tape_constant"),
    R(constant_ovf, TG_ERR_RANGE, "tg_tape_constant"),
    R(constant_bytes_ovf, TG_ERR_RANGE, "tg_tape_constant"),
    R(constant_neg, TG_ERR_RANGE, "tg_tape_constant"),
    R(backward_null, TG_ERR_NULL, "backward"),
    R(backward_leaf, TG_ERR_TAPE, "backward"),
    R(backward_nonscalar, TG_ERR_SHAPE, "backward"),
    R(backward_seed_shape, TG_ERR_SHAPE, "backward"),
    R(backward_stale, TG_ERR_STALE, "backward"),
    R(apply_null_root, TG_ERR_NULL, "tg_backward_apply"),
    R(apply_leaf_root, TG_ERR_TAPE, "tg_backward_apply"),
    R(apply_stale, TG_ERR_STALE, "tg_backward_apply"),
    R(apply_seed_shape, TG_ERR_SHAPE, "tg_backward_apply"),
    R(apply_list_null, TG_ERR_NULL, "tg_backward_apply"),
    R(apply_leaf_null, TG_ERR_NULL, "tg_backward_apply"),
    R(apply_not_leaf, TG_ERR_TAPE, "tg_backward_apply"),
    R(apply_no_grad, TG_ERR_STATE, "tg_backward_apply"),
    R(apply_nan, TG_ERR_VALUE, "tg_backward_apply"),
    R(apply_inf, TG_ERR_VALUE, "tg_backward_apply"),
    R(apply_twice, TG_ERR_VALUE, "tg_backward_apply"),
    R(apply_huge_n, TG_ERR_RANGE, "tg_backward_apply"),
    R(optim_backward_null, TG_ERR_NULL, "tg_nn_optim_backward_step"),
    R(add_null_tape, TG_ERR_NULL, "add"),
    R(add_null_input, TG_ERR_NULL, "add"),
    R(add_shapes, TG_ERR_SHAPE, "add"),
    R(add_dtypes, TG_ERR_DTYPE, "add"),
    R(add_stale, TG_ERR_STALE, "add"),
    R(add_other_tape, TG_ERR_TAPE, "add"),
    R(sub_shapes, TG_ERR_SHAPE, "sub"),
    R(mul_dtypes, TG_ERR_DTYPE, "mul"),
    R(div_shapes, TG_ERR_SHAPE, "div"),
    R(pow_dtypes, TG_ERR_DTYPE, "pow"),
    R(maximum_shapes, TG_ERR_SHAPE, "maximum"),
    R(minimum_null, TG_ERR_NULL, "minimum"),
    R(affine_nan, TG_ERR_VALUE, "affine"),
    R(add_scalar_inf, TG_ERR_VALUE, "add_scalar"),
    R(sub_scalar_nan, TG_ERR_VALUE, "sub_scalar"),
    R(rsub_scalar_nan, TG_ERR_VALUE, "rsub_scalar"),
    R(mul_scalar_nan, TG_ERR_VALUE, "mul_scalar"),
    R(div_scalar_zero, TG_ERR_VALUE, "div_scalar"),
    R(pow_scalar_nan, TG_ERR_VALUE, "pow_scalar"),
    R(rdiv_scalar_nan, TG_ERR_VALUE, "rdiv_scalar"),
    R(leaky_nan, TG_ERR_VALUE, "leaky_relu"),
    R(exp_null, TG_ERR_NULL, "exp"),
    R(log_null_tape, TG_ERR_NULL, "log"),
    R(sum_stale, TG_ERR_STALE, "sum"),
    R(mean_empty, TG_ERR_SHAPE, "mean"),
    R(op_input_range, TG_OK, NULL),
    R(op_name_range, TG_OK, NULL),
    R(matmul_inner, TG_ERR_SHAPE, "matmul"),
    R(matmul_dtypes, TG_ERR_DTYPE, "matmul"),
    R(matmul_scalar, TG_ERR_SHAPE, "matmul"),
    R(matmul_null, TG_ERR_NULL, "matmul"),
    R(matmul_backend, TG_ERR_VALUE, "tg_matmul_set_backend"),
    R(sum_axes_range, TG_ERR_RANGE, "sum"),
    R(sum_axes_dup, TG_ERR_RANGE, "sum"),
    R(sum_axes_null_axes, TG_ERR_NULL, "sum"),
    R(mean_axes_empty, TG_ERR_SHAPE, "mean"),
    R(max_axes_empty, TG_ERR_SHAPE, "max"),
    R(min_axes_range, TG_ERR_RANGE, "min"),
    R(lse_axes_range, TG_ERR_RANGE, "logsumexp"),
    R(var_axes_nan, TG_ERR_VALUE, "var"),
    R(argmax_empty, TG_ERR_SHAPE, "argmax"),
    R(argmin_range, TG_ERR_RANGE, "argmin"),
    R(softmax_axis, TG_ERR_RANGE, "softmax"),
    R(log_softmax_null, TG_ERR_NULL, "log_softmax"),
    R(mse_shapes, TG_ERR_SHAPE, "mse"),
    R(mse_dtypes, TG_ERR_DTYPE, "mse"),
    R(mse_reduction, TG_ERR_VALUE, "mse"),
    R(ce_labels_range, TG_ERR_RANGE, "cross_entropy"),
    R(ce_labels_n, TG_ERR_SHAPE, "cross_entropy"),
    R(ce_labels_null, TG_ERR_NULL, "cross_entropy"),
    R(ce_labels_shape, TG_ERR_SHAPE, "cross_entropy"),
    R(ce_probs_shape, TG_ERR_SHAPE, "cross_entropy_probs"),
    R(bce_dtypes, TG_ERR_DTYPE, "bce_logits"),
    R(hinge_values, TG_ERR_VALUE, "hinge"),
    R(margin_nan, TG_ERR_VALUE, "multi_margin"),
    R(l2_null, TG_ERR_NULL, "l2_penalty"),
    R(dropout_p, TG_ERR_VALUE, "dropout"),
    R(dropout_nan, TG_ERR_VALUE, "dropout"),
    R(dropout_rng_null, TG_ERR_NULL, "dropout"),
    R(reshape_numel, TG_ERR_SHAPE, "reshape"),
    R(reshape_rank9, TG_ERR_RANGE, "reshape"),
    R(reshape_ovf, TG_ERR_SHAPE, "reshape"),
    R(reshape_null_shape, TG_ERR_NULL, "reshape"),
    R(squeeze_not1, TG_ERR_SHAPE, "squeeze"),
    R(squeeze_range, TG_ERR_RANGE, "squeeze"),
    R(squeeze_all_null, TG_ERR_NULL, "squeeze"),
    R(unsqueeze_range, TG_ERR_RANGE, "unsqueeze"),
    R(unsqueeze_rank9, TG_ERR_RANGE, "unsqueeze"),
    R(transpose_range, TG_ERR_RANGE, "transpose"),
    R(permute_dup, TG_ERR_VALUE, "permute"),
    R(permute_n, TG_ERR_SHAPE, "permute"),
    R(permute_null, TG_ERR_NULL, "permute"),
    R(broadcast_bad, TG_ERR_SHAPE, "broadcast_to"),
    R(broadcast_rank9, TG_ERR_RANGE, "broadcast_to"),
    R(broadcast_ovf, TG_ERR_RANGE, "broadcast_to"),
    R(slice_step0, TG_ERR_VALUE, "slice"),
    R(slice_axis_range, TG_ERR_RANGE, "slice"),
    R(slice_n, TG_ERR_RANGE, "slice"),
    R(slice_spec_null, TG_ERR_NULL, "slice"),
    R(index_select_range, TG_ERR_RANGE, "index_select"),
    R(index_select_neg, TG_ERR_RANGE, "index_select"),
    R(index_select_null, TG_ERR_NULL, "index_select"),
    R(index_select_axis, TG_ERR_RANGE, "index_select"),
    R(index_select_t_rank, TG_ERR_SHAPE, "index_select"),
    R(gather_range, TG_ERR_RANGE, "gather"),
    R(gather_null, TG_ERR_NULL, "gather"),
    R(gather_t_shape, TG_ERR_SHAPE, "gather"),
    R(slice_scatter_shape, TG_ERR_SHAPE, "slice_scatter"),
    R(slice_scatter_null, TG_ERR_NULL, "slice_scatter"),
    R(slice_scatter_rank9, TG_ERR_RANGE, "slice_scatter"),
    R(slice_scatter_ovf, TG_ERR_RANGE, "slice_scatter"),
    R(slice_scatter_stale, TG_ERR_STALE, "slice_scatter"),
    R(index_add_range, TG_ERR_RANGE, "index_add"),
    R(index_add_n, TG_ERR_SHAPE, "index_add"),
    R(index_add_null, TG_ERR_NULL, "index_add"),
    R(index_add_size, TG_ERR_VALUE, "index_add"),
    R(scatter_add_rank, TG_ERR_SHAPE, "scatter_add"),
    R(scatter_add_range, TG_ERR_RANGE, "scatter_add"),
    R(scatter_add_null, TG_ERR_NULL, "scatter_add"),
    R(scatter_add_ovf, TG_ERR_RANGE, "scatter_add"),
    R(scatter_add_stale, TG_ERR_STALE, "scatter_add"),
    R(concat_shapes, TG_ERR_SHAPE, "concat"),
    R(concat_dtypes, TG_ERR_DTYPE, "concat"),
    R(concat_zero, TG_ERR_VALUE, "concat"),
    R(concat_null_list, TG_ERR_NULL, "concat"),
    R(concat_axis, TG_ERR_RANGE, "concat"),
    R(stack_shapes, TG_ERR_SHAPE, "stack"),
    R(stack_null_item, TG_ERR_NULL, "stack"),
    R(gradcheck_fn_null, TG_ERR_NULL, "tg_gradcheck"),
    R(gradcheck_inputs_null, TG_ERR_NULL, "tg_gradcheck"),
    R(gradcheck_n, TG_ERR_NULL, "tg_gradcheck"),
    R(jacobian_null_fn, TG_ERR_NULL, "tg_jacobian"),
    R(jacobian_null_input, TG_ERR_NULL, "tg_jacobian"),
    R(vjp_shape, TG_ERR_SHAPE, "tg_vjp"),
    R(vjp_null_out, TG_ERR_NULL, "tg_vjp"),
    R(classify_null, TG_ERR_NULL, "tg_jacobian_classify"),
    R(classify_neg, TG_ERR_RANGE, "tg_jacobian_classify"),
    R(classify_ovf, TG_ERR_RANGE, "tg_jacobian_classify"),
    R(jac_name_range, TG_OK, NULL),
    R(grad_outputs_null, TG_ERR_NULL, "tg_grad"),
    R(grad_n_out, TG_ERR_NULL, "tg_grad"),
    R(grad_inputs_null, TG_ERR_NULL, "tg_grad"),
    R(grad_grads_null, TG_ERR_NULL, "tg_grad"),
    R(grad_output_entry_null, TG_ERR_NULL, "tg_grad"),
    R(grad_input_entry_null, TG_ERR_NULL, "tg_grad"),
    R(grad_stale_output, TG_ERR_STALE, "tg_grad"),
    R(grad_stale_input, TG_ERR_STALE, "tg_grad"),
    R(grad_stale_seed, TG_ERR_STALE, "tg_grad"),
    R(grad_output_leaf, TG_ERR_TAPE, "tg_grad"),
    R(grad_no_seed, TG_ERR_SHAPE, "tg_grad"),
    R(grad_seed_shape, TG_ERR_SHAPE, "tg_grad"),
    R(grad_seed_dtype, TG_ERR_DTYPE, "tg_grad"),
    R(grad_seed_tape, TG_ERR_TAPE, "tg_grad"),
    R(grad_input_tape, TG_ERR_TAPE, "tg_grad"),
    R(grad_outputs_tapes, TG_ERR_TAPE, "tg_grad"),
    R(grad_input_no_rg, TG_ERR_STATE, "tg_grad"),
    R(grad_unused, TG_ERR_TAPE, "input 0 is not on the graph"),
    R(ggc_fn_null, TG_ERR_NULL, "tg_gradgradcheck"),
    R(ggc_inputs_null, TG_ERR_NULL, "tg_gradgradcheck"),
    R(ggc_n, TG_ERR_NULL, "tg_gradgradcheck"),
    R(ggc_input_null, TG_ERR_NULL, "tg_gradgradcheck"),
    R(ggc_node, TG_ERR_STATE, "tg_gradgradcheck"),
    R(hvp_hv_null, TG_ERR_NULL, "tg_hvp"),
    R(hvp_inputs_null, TG_ERR_NULL, "tg_hvp"),
    R(hvp_output_null, TG_ERR_NULL, "tg_hvp"),
    R(hvp_v_null, TG_ERR_NULL, "tg_hvp"),
    R(hvp_v_shape, TG_ERR_SHAPE, "tg_hvp"),
    R(hvp_v_dtype, TG_ERR_DTYPE, "tg_hvp"),
    R(hvp_stale, TG_ERR_STALE, "tg_hvp"),
    R(hvp_not_scalar, TG_ERR_SHAPE, "tg_hvp"),
    R(hvp_unused, TG_ERR_TAPE, "tg_hvp: input 0 is not on the graph"),
    R(hessian_null_out, TG_ERR_NULL, "tg_hessian"),
    R(hessian_null_fn, TG_ERR_NULL, "tg_hessian"),
    R(hessian_null_input, TG_ERR_NULL, "tg_hessian"),
    R(hessian_stale, TG_ERR_STALE, "tg_hessian"),
    R(hessian_too_large, TG_ERR_RANGE, "1000000 elements"),
    R(hessian_not_scalar, TG_ERR_SHAPE, "tg_hessian"),
    R(jvp_jv_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_outputs_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_n_out, TG_ERR_NULL, "tg_jvp"),
    R(jvp_inputs_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_n_in, TG_ERR_NULL, "tg_jvp"),
    R(jvp_v_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_output_entry_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_input_entry_null, TG_ERR_NULL, "tg_jvp"),
    R(jvp_v_entry_null, TG_ERR_NULL, "tg_jvp: v 0 is NULL"),
    R(jvp_v_shape, TG_ERR_SHAPE, "tg_jvp: v 0 has shape (5) but input 0 has shape (2,3)"),
    R(jvp_v_dtype, TG_ERR_DTYPE, "tg_jvp: v 0 is f64 but input 0 is f32"),
    R(jvp_v_tape, TG_ERR_TAPE, "tg_jvp: v 0 is on a different tape"),
    R(jvp_stale_output, TG_ERR_STALE, "tg_jvp"),
    R(jvp_stale_input, TG_ERR_STALE, "tg_jvp"),
    R(jvp_stale_v, TG_ERR_STALE, "tg_jvp"),
    R(jvp_output_leaf, TG_ERR_TAPE, "tg_jvp: output 0 is a leaf"),
    R(jvp_input_no_rg, TG_ERR_STATE, "tg_jvp: input 0 requires no gradient"),
    R(jvp_unused, TG_ERR_TAPE, "tg_jvp: input 0 is not on the graph"),
    R(dot_null_root, TG_ERR_NULL, "tg_graph_dot"),
    R(dot_null_out, TG_ERR_NULL, "tg_graph_dot"),
    R(dot_stale, TG_ERR_STALE, "tg_graph_dot"),
    R(trace_null, TG_ERR_NULL, "backward"),
    R(trace_out_null, TG_ERR_NULL, "tg_backward_trace"),
    R(trace_print_null, TG_ERR_NULL, "tg_trace_print"),
    R(name_of_null, TG_OK, NULL),
    R(params_add_null, TG_ERR_NULL, "tg_params_add"),
    R(params_add_name_null, TG_ERR_NULL, "tg_params_add"),
    R(params_add_node, TG_ERR_STATE, "tg_params_add"),
    R(params_add_empty, TG_ERR_VALUE, "tg_params_add"),
    R(params_add_reserved, TG_ERR_VALUE, "tg_params_add"),
    R(params_get_null, TG_ERR_NULL, "tg_params_get"),
    R(params_name_range, TG_ERR_RANGE, "tg_params_name"),
    R(params_tensor_range, TG_ERR_RANGE, "tg_params_tensor"),
    R(params_zero_grad_null, TG_ERR_NULL, "tg_params_zero_grad"),
    R(meta_set_null, TG_ERR_NULL, "tg_params_meta_set"),
    R(meta_set_empty, TG_ERR_VALUE, "tg_params_meta_set"),
    R(meta_key_range, TG_ERR_RANGE, "tg_params_meta_key"),
    R(save_null, TG_ERR_NULL, "tg_checkpoint_save"),
    R(save_path_null, TG_ERR_NULL, "tg_checkpoint_save"),
    R(save_no_dir, TG_ERR_IO, "tg_checkpoint_save"),
    R(load_null, TG_ERR_NULL, "tg_checkpoint_load"),
    R(load_missing, TG_ERR_IO, "tg_checkpoint_load"),
    R(read_null, TG_ERR_NULL, "tg_checkpoint_read"),
    R(read_buffer_null, TG_ERR_NULL, "tg_checkpoint_read_buffer"),
    R(read_buffer_short, TG_ERR_FORMAT, "tg_checkpoint_read_buffer"),
    R(remove_temps_null, TG_ERR_NULL, "tg_checkpoint_remove_temps"),
    R(remove_temps_nodir, TG_ERR_IO, "tg_checkpoint_remove_temps"),
    R(ds_new_null, TG_ERR_NULL, "tg_dataset_new"),
    R(ds_new_shape, TG_ERR_SHAPE, "tg_dataset_new"),
    R(ds_new_dtype, TG_ERR_DTYPE, "tg_dataset_new"),
    R(ds_new_empty, TG_ERR_SHAPE, "tg_dataset_new"),
    R(idx_null, TG_ERR_NULL, "tg_dataset_read_idx"),
    R(idx_dtype, TG_ERR_DTYPE, "tg_dataset_read_idx"),
    R(idx_missing, TG_ERR_IO, "tg_dataset_read_idx"),
    R(load_idx_null, TG_ERR_NULL, "tg_dataset_load_idx"),
    R(csv_null, TG_ERR_NULL, "tg_dataset_load_csv"),
    R(csv_delim, TG_ERR_VALUE, "tg_dataset_load_csv"),
    R(csv_missing, TG_ERR_IO, "tg_dataset_load_csv"),
    R(shuffle_null, TG_ERR_NULL, "tg_dataset_shuffle"),
    R(batch_count_zero, TG_ERR_VALUE, "tg_dataset_batch_count"),
    R(batch_into_range, TG_ERR_RANGE, "tg_dataset_batch_into"),
    R(batch_range, TG_ERR_RANGE, "tg_dataset_batch"),
    R(standardize_shape, TG_ERR_SHAPE, "tg_dataset_standardize"),
    R(split_fraction, TG_ERR_VALUE, "tg_dataset_split"),
    R(split_nan, TG_ERR_VALUE, "tg_dataset_split"),
    R(batch_into_null, TG_ERR_NULL, "tg_dataset_batch_into"),
    R(batch_null, TG_ERR_NULL, "tg_dataset_batch"),
    R(stats_null, TG_ERR_NULL, "tg_dataset_feature_stats"),
    R(standardize_null, TG_ERR_NULL, "tg_dataset_standardize"),
    R(split_null, TG_ERR_NULL, "tg_dataset_split"),
    R(status_str_range, TG_OK, NULL),
    R(set_allocator_partial, TG_ERR_NULL, "tg_set_allocator"),
    R(conv2d_kernel_big, TG_ERR_SHAPE, "conv2d: x (1,3,2,2) and W (2,3,5,5) give no output"),
    R(conv2d_stride0, TG_ERR_VALUE, "conv2d: stride (1,0)"),
    R(conv2d_stride_neg, TG_ERR_VALUE, "conv2d: stride (-2,1)"),
    R(conv2d_groups, TG_ERR_VALUE, "conv2d: x (1,3,2,2) and W (2,3,1,1) have 3 and 2 channels"),
    R(conv2d_channels, TG_ERR_SHAPE, "conv2d: x (1,3,2,2) and W (2,2,1,1) do not fit"),
    R(conv2d_rank, TG_ERR_SHAPE, "conv2d: x (2,3) and W (2,3,1,1) must both have rank 4"),
    R(conv2d_dtype, TG_ERR_DTYPE, "conv2d"),
    R(conv2d_bias, TG_ERR_SHAPE, "conv2d: bias (5)"),
    R(conv1d_rank, TG_ERR_SHAPE, "conv1d: x (1,3,2,2)"),
    R(conv2d_input_grad_size, TG_ERR_SHAPE, "conv2d_input_grad: dy (1,3,2,2) and W (2,2,1,1)"),
    R(conv2d_weight_grad_batch, TG_ERR_SHAPE, "conv2d_weight_grad: x (1,3,2,2) and dy (2,2,2,2)"),
    R(max_pool2d_kernel_big, TG_ERR_SHAPE, "max_pool2d: kernel (3,3) is larger than x (1,3,2,2)"),
    R(max_pool2d_stride0, TG_ERR_VALUE, "max_pool2d: kernel (3,3) and stride (0,1)"),
    R(avg_pool2d_pad, TG_ERR_VALUE, "avg_pool2d"),
    R(avg_pool2d_null, TG_ERR_NULL, "avg_pool2d: params is NULL"),
    R(conv2d_null, TG_ERR_NULL, "conv2d"),
    R(conv2d_stale, TG_ERR_STALE, "conv2d"),

    R(bn_rank1, TG_ERR_SHAPE, "batch_norm"),
    R(bn_weight_shape, TG_ERR_SHAPE, "batch_norm"),
    R(bn_weight_dtype, TG_ERR_DTYPE, "batch_norm"),
    R(bn_batch1, TG_ERR_VALUE, "batch_norm: expected more than 1 value per channel"),
    R(bn_nan_stats, TG_ERR_VALUE, "batch_norm: the batch statistics of channel 0"),
    R(bn_eval_untrained, TG_ERR_STATE, "batch_norm: evaluation before any training"),
    R(bn_running_grad, TG_ERR_VALUE, "batch_norm"),
    R(bn_eval_no_stats, TG_ERR_STATE, "batch_norm"),
    R(bn_momentum, TG_ERR_VALUE, "batch_norm"),
    R(bn_eps, TG_ERR_VALUE, "batch_norm"),
    R(bn_running_node, TG_ERR_VALUE, "batch_norm"),
    R(bn_running_shape, TG_ERR_SHAPE, "batch_norm"),
    R(bn_null, TG_ERR_NULL, "batch_norm"),
    R(bn_stale, TG_ERR_STALE, "batch_norm"),
    R(ln_k_big, TG_ERR_RANGE, "layer_norm"),
    R(ln_k_zero, TG_ERR_RANGE, "layer_norm"),
    R(ln_weight_shape, TG_ERR_SHAPE, "layer_norm"),
    R(ln_bias_dtype, TG_ERR_DTYPE, "layer_norm"),
    R(ln_eps_nan, TG_ERR_VALUE, "layer_norm"),
    R(ln_empty, TG_ERR_SHAPE, "layer_norm"),
    R(ln_null, TG_ERR_NULL, "layer_norm"),
    R(emb_rank, TG_ERR_SHAPE, "embedding"),
    R(emb_range, TG_ERR_RANGE, "embedding"),
    R(emb_negative, TG_ERR_RANGE, "embedding"),
    R(emb_fraction, TG_ERR_RANGE, "embedding"),
    R(emb_index_null, TG_ERR_NULL, "embedding"),
    R(emb_index_stale, TG_ERR_STALE, "embedding"),
    R(where_values, TG_ERR_VALUE, "where"),
    R(where_nan, TG_ERR_VALUE, "where"),
    R(where_shapes, TG_ERR_SHAPE, "where"),
    R(where_dtypes, TG_ERR_DTYPE, "where"),
    R(where_null, TG_ERR_NULL, "where"),
    R(clamp_order, TG_ERR_VALUE, "clamp"),
    R(clamp_nan, TG_ERR_VALUE, "clamp"),
    R(clamp_stale, TG_ERR_STALE, "clamp"),

    R(detach_null_input, TG_ERR_NULL, "detach: input 1 is NULL"),
    R(detach_null_tape, TG_ERR_NULL, "detach: tape is NULL"),
    R(detach_stale, TG_ERR_STALE, "detach: an input was recorded before the tape was reset"),
    R(detach_other_tape, TG_ERR_TAPE, "detach: an input was recorded on a different tape"),

    R(bn_layer_null_params, TG_ERR_NULL, "tg_nn_batch_norm_new"),
    R(bn_layer_channels, TG_ERR_VALUE, "tg_nn_batch_norm_new"),
    R(bn_layer_momentum, TG_ERR_VALUE, "tg_nn_batch_norm_new"),
    R(bn_layer_dtype, TG_ERR_DTYPE, "tg_nn_batch_norm_new"),
    R(bn_layer_eval_untrained, TG_ERR_STATE, "batch_norm: evaluation before any training"),
    R(bn_layer_clash, TG_ERR_VALUE, "tg_nn_batch_norm_new: the map already has \"n.weight\""),
    R(bn_layer_mode, TG_ERR_VALUE, "tg_nn_batch_norm_forward"),
    R(bn_layer_forward_null, TG_ERR_NULL, "tg_nn_batch_norm_forward"),
    R(ln_layer_axes, TG_ERR_VALUE, "tg_nn_layer_norm_new"),
    R(ln_layer_shape_null, TG_ERR_NULL, "tg_nn_layer_norm_new"),
    R(ln_layer_eps, TG_ERR_VALUE, "tg_nn_layer_norm_new"),
    R(emb_layer_rng, TG_ERR_NULL, "tg_nn_embedding_new"),
    R(emb_layer_size, TG_ERR_VALUE, "tg_nn_embedding_new"),
    R(emb_layer_name, TG_ERR_NULL, "tg_nn_embedding_new"),
    R(dropout_layer_p, TG_ERR_VALUE, "tg_nn_dropout_new"),
    R(dropout_layer_null, TG_ERR_NULL, "tg_nn_dropout_forward"),

    R(custom_nan_backward, TG_ERR_NUMERIC, "backward of bad_nan_op"),
    R(hook_wrong_shape, TG_ERR_SHAPE, "gradient hook: the replacement gradient has shape (5)"),
    R(hook_add_null_fn, TG_ERR_NULL, "tg_hook_add"),
    R(hook_add_stale, TG_ERR_STALE, "tg_hook_add_replace"),
    R(hook_remove_none, TG_ERR_RANGE, "tg_hook_remove"),
    R(custom_register_twice, TG_ERR_STATE, "already registered"),
    R(custom_register_no_backward, TG_ERR_NULL, "tg_custom_op_register"),
    R(custom_register_arity, TG_ERR_RANGE, "tg_custom_op_register"),
    R(custom_call_stale, TG_ERR_STALE, "bad_nan_op"),
    R(custom_call_null_input, TG_ERR_NULL, "bad_nan_op: input 1 is NULL"),
    R(recompute_other_tape, TG_ERR_TAPE, "tg_recompute: fn returned a tensor of a different tape"),
    R(recompute_n_in, TG_ERR_RANGE, "tg_recompute"),
    R(recompute_stale, TG_ERR_STALE, "tg_recompute"),

    R(resume_save_null, TG_ERR_NULL, "tg_nn_resume_save"),
    R(resume_save_nodir, TG_ERR_IO, "tg_nn_resume_save"),
    R(resume_load_null, TG_ERR_NULL, "tg_nn_resume_load"),
    R(resume_load_missing, TG_ERR_IO, "tg_nn_resume_load"),
    R(resumable_null, TG_ERR_NULL, "tg_nn_train_resumable"),
    R(resumable_every0, TG_ERR_VALUE, "tg_nn_train_resumable"),
};
enum { N_ROWS = sizeof rows / sizeof rows[0] };

START_TEST(test_bad_input)
{
    const struct row *r = &rows[_i];
    struct fx f;
    fx_init(&f);
    enum tg_status st = r->run(&f);
    ck_assert_msg(st == r->want, "%s: status %s, want %s (message \"%s\")", r->id,
                  tg_status_str(st), tg_status_str(r->want), tg_last_error());
    if (r->names)
        ck_assert_msg(strstr(tg_last_error(), r->names), "%s: message \"%s\" does not name %s",
                      r->id, tg_last_error(), r->names);
    fx_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("rows");
    tcase_add_loop_test(tc, test_bad_input, 0, N_ROWS);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
