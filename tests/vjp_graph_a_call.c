/*
 * tests/vjp_graph_a_call.c - the descriptor's vjp_graph, reached through the op
 * table (a separate file: ops/ops-impl.h stays out of the test's own unit).
 */
#include "../ops/ops-impl.h"
#include "vjp_graph_a_call.h"

bool vjpg_has(int op)
{
    return tg_op_table[op]->vjp_graph != NULL;
}

enum tg_status vjpg_call(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                         const bool *need, struct tg_tensor **dx)
{
    return out->desc->vjp_graph(T, out, dy, need, dx);
}

struct tg_tensor *vjpg_sum_to(struct tg_tape *T, struct tg_tensor *g, int rank,
                              const long long *shape)
{
    int64_t s[TG_MAX_DIM];
    for (int d = 0; d < rank && d < TG_MAX_DIM; d++) s[d] = (int64_t)shape[d];
    return tg__sum_to(T, g, rank, s);
}
