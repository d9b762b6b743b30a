/* tests/vjp_graph_b_desc.h - calls a node's differentiable VJP (desc->vjp_graph)
 * for tests/check_vjp_graph_b.c (tests/vjp_graph_b_desc.c). */
#ifndef TG_TEST_VJP_GRAPH_B_DESC_H
#define TG_TEST_VJP_GRAPH_B_DESC_H

#include <stdbool.h>
#include <tapegrad/status.h>

struct tg_tape;
struct tg_tensor;

/* Whether table entry op has a vjp_graph. */
bool vjpb_has(int op);
/* out->desc->vjp_graph(T, out, dy, need, dx); TG_ERR_STATE when it has none. */
enum tg_status vjpb_call(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                         const bool *need, struct tg_tensor **dx);

#endif
