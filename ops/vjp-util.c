/*
 * ops/vjp-util.c - helpers of the differentiable VJPs (the descriptors'
 * vjp_graph): a broadcast gradient summed down to an input's shape, tape
 * constants for the piecewise-constant factors (masks, signs), and the status
 * of a failed step.
 */
#include "ops-impl.h"

enum tg_status tg__vjp_failure(void)
{
    enum tg_status st = tg_last_status();
    return st != TG_OK ? st : TG_ERR_NOMEM;
}

struct tg_tensor *tg__vjp_const(struct tg_tape *T, int dtype, int rank, const int64_t *shape)
{
    return tg_tape_constant(T, (enum tg_dtype)dtype, rank, shape, NULL);
}

struct tg_tensor *tg__sum_to(struct tg_tape *T, struct tg_tensor *g, int rank, const int64_t *shape)
{
    if (!g) return NULL;
    int off = g->rank - rank;
    if (off < 0) {
        tg__fail(TG_ERR_SHAPE, "sum_to: the gradient has rank %d, below the input's %d",
                 (int)g->rank, rank);
        return NULL;
    }
    int axes[TG_MAX_DIM], n = 0;
    bool drop = off > 0; /* leading axes: summed, then removed by the reshape */
    for (int d = 0; d < g->rank; d++) {
        int k = d - off;
        if (k < 0) {
            axes[n++] = d;
        } else if (shape[k] != g->shape[d]) {
            if (shape[k] != 1) {
                char sg[160], sx[160];
                tg_tensor_format_shape(sg, sizeof sg, g->rank, g->shape);
                tg_tensor_format_shape(sx, sizeof sx, rank, shape);
                tg__fail(TG_ERR_SHAPE, "sum_to: %s does not broadcast from %s", sg, sx);
                return NULL;
            }
            axes[n++] = d;
        }
    }
    if (n == 0) return g;
    struct tg_tensor *s = tg_sum_axes(T, g, axes, n, true);
    if (!s || !drop) return s;
    return tg_reshape(T, s, rank, shape);
}
