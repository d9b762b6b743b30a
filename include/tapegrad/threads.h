/*
 * tapegrad/threads.h - worker threads for the ops whose work splits by sample:
 * conv2d (and conv1d, conv2d_input_grad, conv2d_weight_grad), max_pool2d and
 * avg_pool2d, forward and backward.
 *
 * With n threads (tg_threads_set), such an op splits its batch into n parts,
 * one per thread: the calling thread takes the first and n - 1 worker threads
 * of the library take the others. Each part has its own buffers, taken from the
 * tape when the op is recorded (so a node recorded with n threads runs with at
 * most n parts), and the parts' weight and bias gradients are added in part
 * order: results do not depend on timing, only on n (with n = 1 they are those
 * of a library without threads; between different n they agree to rounding).
 * While the parts run, OpenBLAS runs each of their matrix products on one
 * thread (openblas_set_num_threads(1), restored after), since the parts
 * already keep the cores busy; other ops' products keep OpenBLAS's setting.
 *
 * A child made by fork() starts with 1 thread (the workers are not copied);
 * OpenBLAS stays on one thread there until the child calls tg_threads_set(1).
 *
 * One parallel section runs at a time: a tape on another thread that reaches a
 * split op while the workers are busy runs its parts one after the other on
 * its own thread, with the same results. Other ops (matmul's products go to
 * OpenBLAS's threads) and the engine's sweep are unchanged.
 */
#ifndef TAPEGRAD_THREADS_H
#define TAPEGRAD_THREADS_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most threads tg_threads_set accepts. */
#define TG_THREADS_MAX 64

/*
 * Uses n threads (1..TG_THREADS_MAX; the default is 1: no worker threads) for
 * the ops above, from the next op recorded on. Starts or stops worker threads,
 * so call it between steps, from one thread. TG_ERR_VALUE (n out of range),
 * TG_ERR_STATE (called while a parallel section or another tg_threads_set runs:
 * the setting is unchanged), TG_ERR_NOMEM (a worker
 * thread could not be started: the setting is then 1). tg_threads_set(1) stops
 * every worker (call it before a leak checker looks).
 */
enum tg_status tg_threads_set(int n);
/* The current setting. */
int tg_threads_get(void);

#ifdef __cplusplus
}
#endif

#endif
