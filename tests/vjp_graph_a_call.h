/* tests/vjp_graph_a_call.h - calls a node's differentiable VJP (the descriptor's
 * vjp_graph), for tests/check_vjp_graph_a.c (tests/vjp_graph_a_call.c). */
#ifndef TG_TEST_VJP_GRAPH_A_CALL_H
#define TG_TEST_VJP_GRAPH_A_CALL_H

#include <stdbool.h>
#include <tapegrad/status.h>

struct tg_tape;
struct tg_tensor;
/* Whether table entry op has a vjp_graph. */
bool vjpg_has(int op);
/* out->desc->vjp_graph(T, out, dy, need, dx). */
enum tg_status vjpg_call(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                         const bool *need, struct tg_tensor **dx);
/* tg__sum_to(T, g, rank, shape) (ops/vjp-util.c). */
struct tg_tensor *vjpg_sum_to(struct tg_tape *T, struct tg_tensor *g, int rank,
                              const long long *shape);

#endif
