/*
 * engine/localjac.c - the Jacobian of one recorded node with respect to one of
 * its inputs, classified exactly as tg_jacobian classifies a whole function.
 *
 * The DOT edges, the trace and tg_graph_jacobian all print this one
 * classification (tg_jacobian_classify), so a picture never says "dense" where
 * tg_jacobian says "block-diagonal". It is computed, not guessed from the op:
 * row k of J is the node's own backward rule run with upstream gradient e_k on
 * temporary gradient buffers (every value and gradient is restored), so it is
 * right for every op of the table, present or future, at the recorded values.
 */
#include <stdio.h>
#include <string.h>
#include "graph-impl.h"
#include "tapegrad/jacobian.h"

/* Row k of J: the input's gradient after backward with dy = e_k. */
static void run_rows(struct tg_tensor *n, struct tg_tensor *x, void *up, void *gx, double *J)
{
    int64_t rows = n->numel, cols = x->numel;
    size_t ex = tg__esize(x->dtype);
    for (int64_t k = 0; k < rows; k++) {
        memset(up, 0, (size_t)rows * tg__esize(n->dtype));
        tg__store(up, n->dtype, k, 1.0);
        memset(gx, 0, (size_t)cols * ex);
        n->desc->backward(n);
        for (int64_t j = 0; j < cols; j++) J[k * cols + j] = tg__load(gx, x->dtype, j);
    }
}

enum tg_status tg__local_jacobian(struct tg_tensor *n, uint32_t slot, struct tg_jacobian_info *info)
{
    struct tg_tensor *x = n->in[slot];
    int64_t rows = n->numel, cols = x->numel;
    memset(info, 0, sizeof *info);
    info->rows = rows;
    info->cols = cols;
    if (cols && rows > TG_GRAPH_JACOBIAN_MAX / cols) return TG_ERR_RANGE; /* not recorded */
    double *J = tg__calloc((size_t)(rows * cols) + 1, sizeof *J);
    void *up = tg__calloc((size_t)rows + 1, tg__esize(n->dtype));
    void *gx = tg__calloc((size_t)cols + 1, tg__esize(x->dtype));
    uint8_t *rg = tg__calloc((size_t)n->n_in + 1, 1);
    void **grads = tg__calloc((size_t)n->n_in + 1, sizeof *grads);
    enum tg_status st = TG_OK;
    if (!J || !up || !gx || !rg || !grads) {
        st = tg_last_status();
    } else {
        /* only x gets a gradient, into gx; the node's own gradient is e_k */
        for (uint32_t i = 0; i < n->n_in; i++) {
            rg[i] = n->in[i]->requires_grad;
            grads[i] = n->in[i]->grad;
        }
        for (uint32_t i = 0; i < n->n_in; i++) n->in[i]->requires_grad = 0;
        x->requires_grad = 1;
        x->grad = gx;
        void *node_grad = n->grad;
        n->grad = up;
        run_rows(n, x, up, gx, J);
        n->grad = node_grad;
        for (uint32_t i = n->n_in; i-- > 0;) {
            n->in[i]->requires_grad = rg[i];
            n->in[i]->grad = grads[i];
        }
        st = tg_jacobian_classify(J, rows, cols, info);
        info->n_sweeps = rows;
    }
    tg__free(J);
    tg__free(up);
    tg__free(gx);
    tg__free(rg);
    tg__free(grads);
    return st;
}

int tg__jacobian_format(const struct tg_jacobian_info *info, char *buf, size_t size)
{
    const char *name = tg_jacobian_structure_name(info->structure);
    long long r = (long long)info->rows, c = (long long)info->cols, nnz = (long long)info->nnz;
    switch (info->structure) {
    case TG_JAC_BLOCK_DIAGONAL:
        return snprintf(buf, size, "%s %lldx%lld, %lld blocks of %lldx%lld, nnz %lld", name, r, c,
                        (long long)info->n_blocks, (long long)info->block_rows,
                        (long long)info->block_cols, nnz);
    case TG_JAC_DENSE:
        if (info->nnz < info->rows * info->cols)
            return snprintf(buf, size, "%s %lldx%lld, nnz %lld", name, r, c, nnz);
        return snprintf(buf, size, "%s %lldx%lld", name, r, c);
    default:
        return snprintf(buf, size, "%s %lldx%lld", name, r, c);
    }
}

enum tg_status tg_graph_jacobian(struct tg_tensor *node, int slot, struct tg_jacobian_info *info)
{
    if (!node) return tg__null_input("tg_graph_jacobian", "node");
    if (!info) return tg__fail(TG_ERR_NULL, "tg_graph_jacobian: info is NULL");
    if (tg__check_live("tg_graph_jacobian", "node", node)) return tg_last_status();
    if (!node->desc)
        return tg__fail(TG_ERR_STATE, "tg_graph_jacobian: node is a leaf or a constant");
    if (slot < 0 || (uint32_t)slot >= node->n_in)
        return tg__fail(TG_ERR_RANGE, "tg_graph_jacobian: slot %d of a node with %u inputs", slot,
                        (unsigned)node->n_in);
    enum tg_status st = tg__local_jacobian(node, (uint32_t)slot, info);
    if (st == TG_ERR_RANGE)
        return tg__fail(st,
                        "tg_graph_jacobian: the Jacobian of %s by input %d is %lld x %lld, "
                        "more than %d entries",
                        node->desc->name, slot, (long long)info->rows, (long long)info->cols,
                        TG_GRAPH_JACOBIAN_MAX);
    return st;
}

int tg_jacobian_format(const struct tg_jacobian_info *info, char *buf, size_t size)
{
    if (!info || (!buf && size)) {
        tg__fail(TG_ERR_NULL, "tg_jacobian_format: info or buf is NULL");
        return -1;
    }
    if ((unsigned)info->structure > TG_JAC_DENSE) {
        tg__fail(TG_ERR_VALUE, "tg_jacobian_format: structure %d is not a tg_jacobian_structure",
                 (int)info->structure);
        return -1;
    }
    return tg__jacobian_format(info, buf, size);
}
