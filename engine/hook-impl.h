/*
 * engine/hook-impl.h - gradient hooks inside the engine (never installed): what
 * the sweep, the tape and the leaves call of engine/hook.c (tapegrad/hook.h).
 */
#ifndef TG_HOOK_IMPL_H
#define TG_HOOK_IMPL_H

#include "sweep-hook.h"

/* One tensor's hooks (engine/hook.c). */
struct tg__hooks;

/* Whether a sweep on T must take the hooked path: T's recording has a hooked
 * node, or some leaf anywhere has a hook. */
bool tg__hooks_on(const struct tg_tape *T);
/* The sweep of tg__sweep when tg__hooks_on(T): the same walk, calling the
 * nodes' hooks before their backward and each hooked leaf's hooks after its
 * last consumer's backward, and the observer (if not NULL) as tg__sweep does. */
enum tg_status tg__hook_sweep(struct tg_tape *T, struct tg_tensor *root,
                              const struct tg_tensor *seed, tg__sweep_hook obs, void *ctx);
/* Frees the hooks of leaf l (tg_tensor_free). */
void tg__hooks_leaf_free(struct tg__leaf *l);
/* Frees the hooks of T's nodes (tg_tape_reset, tg_tape_free). */
void tg__hooks_tape_clear(struct tg_tape *T);

/* engine/sweep.c, for the hooked sweep: starts sweep number ++T->sweep at root
 * (its gradient the seed, or 1) and returns the number; readies the inputs of a
 * reached node n for sweep s. */
uint64_t tg__sweep_start(struct tg_tape *T, struct tg_tensor *root, const struct tg_tensor *seed);
void tg__sweep_ready(struct tg_tape *T, struct tg_tensor *n, uint64_t s);

#endif
