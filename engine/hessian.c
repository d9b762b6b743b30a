/*
 * engine/hessian.c - curvature from tg_grad: Hessian-vector products (tg_hvp)
 * and dense Hessians of small inputs (tg_hessian).
 *
 * Pearlmutter's trick: H v = d(g . v)/dx with g = dL/dx recorded with
 * create_graph, i.e. tg_grad of g seeded with v. Its cost is that of the
 * backward pass recorded as ops plus one reverse walk over it: a small constant
 * times one gradient, and no n x n matrix. tg_hessian does it once per one-hot
 * v (one row per input element) and classifies the result as tg_jacobian does.
 */
#include <stdio.h>
#include <string.h>
#include "engine-impl.h"
#include "tapegrad/grad.h"
#include "tapegrad/jacobian.h"

static enum tg_status check_v(int n_in, struct tg_tensor *const *inputs, struct tg_tensor *const *v)
{
    if (!v) return tg__fail(TG_ERR_NULL, "tg_hvp: v is NULL");
    for (int i = 0; i < n_in; i++) {
        if (!v[i]) return tg__fail(TG_ERR_NULL, "tg_hvp: v %d is NULL", i);
        if (tg__check_live("tg_hvp", "a v", v[i])) return TG_ERR_STALE;
        const struct tg_tensor *x = inputs[i];
        bool same = v[i]->rank == x->rank;
        for (int d = 0; same && d < x->rank; d++) same = v[i]->shape[d] == x->shape[d];
        if (!same) {
            char a[160], b[160];
            tg_tensor_format_shape(a, sizeof a, v[i]->rank, v[i]->shape);
            tg_tensor_format_shape(b, sizeof b, x->rank, x->shape);
            return tg__fail(TG_ERR_SHAPE, "tg_hvp: v %d has shape %s but input %d has shape %s", i,
                            a, i, b);
        }
        if (v[i]->dtype != x->dtype)
            return tg__fail(TG_ERR_DTYPE, "tg_hvp: v %d is %s but input %d is %s", i,
                            tg_dtype_name((enum tg_dtype)v[i]->dtype), i,
                            tg_dtype_name((enum tg_dtype)x->dtype));
    }
    return TG_OK;
}

enum tg_status tg_hvp(struct tg_tensor *output, int n_in, struct tg_tensor *const *inputs,
                      struct tg_tensor *const *v, const struct tg_grad_options *options,
                      struct tg_tensor **hv)
{
    for (int i = 0; hv && i < n_in; i++) hv[i] = NULL;
    if (!hv) return tg__fail(TG_ERR_NULL, "tg_hvp: hv is NULL");
    if (!inputs || n_in < 1) return tg__fail(TG_ERR_NULL, "tg_hvp: no inputs");
    for (int i = 0; i < n_in; i++)
        if (!inputs[i]) return tg__fail(TG_ERR_NULL, "tg_hvp: input %d is NULL", i);
    if (!output) return tg__null_input("tg_hvp", "output");
    if (tg__check_live("tg_hvp", "output", output)) return TG_ERR_STALE;
    for (int i = 0; i < n_in; i++)
        if (tg__check_live("tg_hvp", "an input", inputs[i])) return TG_ERR_STALE;
    enum tg_status st = check_v(n_in, inputs, v);
    if (st) return st;
    struct tg_grad_options o = options ? *options : (struct tg_grad_options){0};
    struct tg_grad_options first = {.create_graph = true, .allow_unused = o.allow_unused};
    /* g may not depend on an input (L linear in it): H v is then 0 there */
    struct tg_grad_options second = {.create_graph = o.create_graph, .allow_unused = true};
    struct tg_tensor **g = tg__calloc((size_t)n_in, sizeof *g);
    if (!g) return TG_ERR_NOMEM;
    /* the first gradient must be a graph even inside the caller's no-grad
     * scopes: they are lifted for it alone, then put back */
    struct tg_tape *T = output->tape;
    int lifted = 0;
    while (T && !tg_tape_grad_enabled(T) && !tg_tape_no_grad_pop(T)) lifted++;
    st = tg_grad(1, &output, NULL, n_in, inputs, &first, g);
    while (lifted-- > 0) tg_tape_no_grad_push(T);
    if (!st) st = tg_grad(n_in, g, v, n_in, inputs, &second, hv);
    tg__free(g);
    if (st) tg__rename_failure("tg_grad", "tg_hvp");
    return st;
}

/* The rows of the Hessian of fn at a copy of input, into H (n x n doubles). */
static enum tg_status hessian_rows(tg_gradcheck_fn fn, void *ctx, struct tg_tensor *x,
                                   struct tg_tape *T, double *H)
{
    tg_clear_error();
    struct tg_tensor *y = fn(T, &x, 1, ctx), *g, *e = NULL, *row;
    if (!y) {
        if (tg_last_status() != TG_OK) return tg_last_status();
        return tg__fail(TG_ERR_NULL, "tg_hessian: the function returned NULL and set no error");
    }
    if (y->numel != 1) {
        char a[160];
        tg_tensor_format_shape(a, sizeof a, y->rank, y->shape);
        return tg__fail(TG_ERR_SHAPE,
                        "tg_hessian: the function's output has shape %s, not one "
                        "element",
                        a);
    }
    if (y->kind == TG_KIND_LEAF) return TG_OK; /* x itself, or a constant: H = 0 */
    struct tg_grad_options first = {.create_graph = true, .allow_unused = true};
    struct tg_grad_options second = {.allow_unused = true};
    enum tg_status st = tg_grad(1, &y, NULL, 1, &x, &first, &g);
    if (!st && !(e = tg_tensor_zeros((enum tg_dtype)x->dtype, x->rank, x->shape)))
        st = tg_last_status();
    for (int64_t k = 0; !st && k < x->numel; k++) {
        tg__store(e->data, e->dtype, k, 1.0);
        st = tg_grad(1, &g, &e, 1, &x, &second, &row);
        tg__store(e->data, e->dtype, k, 0.0);
        for (int64_t j = 0; !st && j < x->numel; j++)
            H[k * x->numel + j] = tg__load(row->data, row->dtype, j);
    }
    tg_tensor_free(e);
    if (st) tg__rename_failure("tg_grad", "tg_hessian");
    return st;
}

enum tg_status tg_hessian(tg_gradcheck_fn fn, void *ctx, const struct tg_tensor *input,
                          struct tg_tensor **out_hessian, struct tg_jacobian_info *info)
{
    if (!out_hessian) return tg__fail(TG_ERR_NULL, "tg_hessian: out_hessian is NULL");
    *out_hessian = NULL;
    if (!fn) return tg__fail(TG_ERR_NULL, "tg_hessian: fn is NULL");
    if (!input) return tg__fail(TG_ERR_NULL, "tg_hessian: input is NULL");
    if (tg__check_live("tg_hessian", "input", input)) return TG_ERR_STALE;
    int64_t n = input->numel;
    if (n > TG_HESSIAN_MAX_NUMEL)
        return tg__fail(TG_ERR_RANGE,
                        "tg_hessian: an input of %lld elements would need a %lld x %lld Hessian "
                        "(%.3g bytes); the limit is %d elements (use tg_hvp for products with "
                        "the Hessian)",
                        (long long)n, (long long)n, (long long)n, 8.0 * (double)n * (double)n,
                        TG_HESSIAN_MAX_NUMEL);
    if (2 * input->rank > TG_MAX_DIM)
        return tg__fail(TG_ERR_RANGE, "tg_hessian: input rank %d doubled exceeds %d", input->rank,
                        TG_MAX_DIM);
    int64_t shape[TG_MAX_DIM];
    memcpy(shape, input->shape, (size_t)input->rank * sizeof *shape);
    memcpy(shape + input->rank, input->shape, (size_t)input->rank * sizeof *shape);
    struct tg_tensor *H = tg_tensor_zeros(TG_F64, 2 * input->rank, shape);
    struct tg_tensor *x = tg_tensor_copy(input);
    struct tg_tape *T = tg_tape_new();
    enum tg_status st = H && x && T ? tg_tensor_set_requires_grad(x, true) : tg_last_status();
    if (!st) st = hessian_rows(fn, ctx, x, T, H->data);
    tg_tape_free(T);
    tg_tensor_free(x);
    if (!st && info) {
        st = tg_jacobian_classify(H->data, n, n, info);
        info->n_sweeps = n;
    }
    if (st) {
        tg_tensor_free(H);
        return st;
    }
    *out_hessian = H;
    tg__cause_consumed();
    return TG_OK;
}
