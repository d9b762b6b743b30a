/*
 * engine/sweep-hook.h - the backward sweep with an observer (never installed).
 *
 * tg__backward_ex is tg_backward with a callback run around each node's backward
 * rule; tg_backward is tg__backward_ex with no callback. The chain-rule trace
 * (engine/trace.c) uses it to watch gradients accumulate without a second copy
 * of the sweep.
 */
#ifndef TG_SWEEP_HOOK_H
#define TG_SWEEP_HOOK_H

#include "engine-impl.h"

/* Called with after == false just before n->desc->backward(n) and with
 * after == true just after it, for every node of the sweep, in sweep order.
 * It may read any gradient; it must not change the graph. */
typedef void (*tg__sweep_hook)(struct tg_tensor *n, bool after, void *ctx);

/* tg_backward(root, seed), calling hook (if not NULL) around every node. */
enum tg_status tg__backward_ex(struct tg_tensor *root, const struct tg_tensor *seed,
                               tg__sweep_hook hook, void *ctx);

#endif
