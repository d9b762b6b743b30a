/*
 * tests/vjp_graph_b_desc.c - reaches the descriptors' vjp_graph for
 * tests/check_vjp_graph_b.c (a separate file: ops/ops-impl.h and the public
 * headers that gradcases.h includes cannot meet in one translation unit).
 */
#include "../ops/ops-impl.h"
#include "vjp_graph_b_desc.h"

bool vjpb_has(int op)
{
    return tg_op_table[op]->vjp_graph != NULL;
}

enum tg_status vjpb_call(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                         const bool *need, struct tg_tensor **dx)
{
    if (!out->desc || !out->desc->vjp_graph)
        return tg__fail(TG_ERR_STATE, "vjpb_call: %s has no vjp_graph",
                        out->desc ? out->desc->name : "a leaf");
    return out->desc->vjp_graph(T, out, dy, need, dx);
}
