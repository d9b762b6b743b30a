/*
 * cli/hessian.c - the second partial derivatives behind `tapegrad explain
 * --hessian`: analytic by tg_grad twice, numeric by central differences of the
 * analytic first derivatives.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"

static int hfail(struct expr_error *err, const char *what)
{
    snprintf(err->msg, sizeof err->msg, "%s: %s", what, tg_last_error());
    err->col = 0;
    return -1;
}

/*
 * The gradient of the expression built on T with the leaves vars into g (n_vars),
 * 1 when the expression is not defined there (a domain error, checked without
 * create_graph), -1 on another failure,
 * by tg_grad (no leaf's grad is touched). With create_graph the gradients are
 * left as tensors in gt (n_vars) for a second tg_grad. A root that is a leaf (the
 * expression is one variable) or requires no grad has a constant gradient.
 */
static int gradient(const struct expr *e, struct tg_tape *T, struct tg_tensor **vars,
                    struct tg_tensor **nodes, bool create_graph, double *g, struct tg_tensor **gt,
                    struct expr_error *err)
{
    int nv = e->n_vars;
    struct tg_tensor *root = expr_build(e, T, vars, nodes, !create_graph, err);
    if (!root) return 1; /* a domain error at a shifted point (the caller checked x) */
    for (int i = 0; i < nv; i++) {
        g[i] = root == vars[i];
        if (gt) gt[i] = NULL;
    }
    if (tg_tensor_is_leaf(root) || !tg_tensor_requires_grad(root)) return 0;
    struct tg_grad_options o = {.create_graph = create_graph, .allow_unused = true};
    struct tg_tensor **out = gt ? gt : calloc((size_t)nv, sizeof *out);
    if (!out) return hfail(err, "out of memory");
    int rc = 0;
    if (tg_grad(1, &root, NULL, nv, vars, &o, out)) rc = hfail(err, "the first derivatives");
    for (int i = 0; !rc && i < nv; i++) g[i] = tg_tensor_item(out[i]);
    if (!gt) free(out);
    return rc;
}

int expr_hessian(const struct expr *e, const double *values, double *H, double *H_numeric,
                 struct expr_error *err)
{
    memset(err, 0, sizeof *err);
    int nv = e->n_vars;
    size_t n = (size_t)nv + 1;
    if (nv > EXPR_HESSIAN_MAX_VARS) {
        snprintf(err->msg, sizeof err->msg,
                 "--hessian takes at most %d variables, the expression has %d",
                 EXPR_HESSIAN_MAX_VARS, nv);
        return -1;
    }
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor **vars = calloc(n, sizeof *vars), **gt = calloc(n, sizeof *gt);
    struct tg_tensor **row = calloc(n, sizeof *row);
    struct tg_tensor **nodes = calloc((size_t)e->n + 1, sizeof *nodes);
    double *g = calloc(n, sizeof *g), *gp = calloc(n, sizeof *gp), *gm = calloc(n, sizeof *gm);
    int rc = -1;
    if (!T || !vars || !gt || !row || !nodes || !g || !gp || !gm) {
        hfail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < nv; i++) {
        if (!(vars[i] = tg_tensor_scalar(TG_F64, values[i]))) {
            hfail(err, "out of memory");
            goto done;
        }
        tg_tensor_set_requires_grad(vars[i], true);
    }

    /* analytic: g = grad f recorded as a graph, then row i = grad g_i */
    if (gradient(e, T, vars, nodes, true, g, gt, err)) {
        if (!err->msg[0]) hfail(err, "building the expression");
        goto done;
    }
    struct tg_grad_options o = {.create_graph = false, .allow_unused = true};
    for (int i = 0; i < nv; i++) {
        for (int j = 0; j < nv; j++) H[(size_t)i * nv + j] = 0;
        if (!gt[i] || tg_tensor_is_leaf(gt[i]) || !tg_tensor_requires_grad(gt[i])) continue;
        if (tg_grad(1, &gt[i], NULL, nv, vars, &o, row)) {
            hfail(err, "the second derivatives");
            goto done;
        }
        for (int j = 0; j < nv; j++) H[(size_t)i * nv + j] = tg_tensor_item(row[j]);
    }

    /* numeric: column j = (g(x + h e_j) - g(x - h e_j)) / 2h, g by tg_grad */
    for (int j = 0; j < nv; j++) {
        double v = values[j], h = 1e-6 * (fabs(v) > 1 ? fabs(v) : 1);
        tg_tape_reset(T);
        tg_tensor_set(vars[j], 0, v + h);
        int bad = gradient(e, T, vars, nodes, false, gp, NULL, err);
        tg_tape_reset(T);
        tg_tensor_set(vars[j], 0, v - h);
        if (!bad) bad = gradient(e, T, vars, nodes, false, gm, NULL, err);
        tg_tape_reset(T);
        tg_tensor_set(vars[j], 0, v);
        if (bad < 0) goto done;
        for (int i = 0; i < nv; i++)
            H_numeric[(size_t)i * nv + j] = bad ? NAN : (gp[i] - gm[i]) / (2 * h);
    }
    rc = 0;
done:
    tg_tape_free(T);
    for (int i = 0; vars && i < nv; i++) tg_tensor_free(vars[i]);
    free(vars);
    free(gt);
    free(row);
    free(nodes);
    free(g);
    free(gp);
    free(gm);
    return rc;
}
