/*
 * tapegrad/params.h - named parameters: an ordered name -> tensor map.
 *
 * Every model (the nn layers, or a user's own) exposes its trainable tensors as a
 * struct tg_params: names such as "layers.0.weight" mapped to leaf tensors, kept
 * in insertion order. Optimizers, zero-grad and checkpoints work on this map only,
 * so they know nothing about the model's structure.
 *
 * Ownership: a tensor is added either borrowed (tg_params_add: the model keeps
 * owning its weights and must outlive the map's use) or owned (tg_params_add_owned:
 * the map frees it in tg_params_free; checkpoints read without a model use this).
 * Names are copied. The map may also carry string metadata (key -> value), saved
 * in a checkpoint's "__metadata__".
 */
#ifndef TAPEGRAD_PARAMS_H
#define TAPEGRAD_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tg_params;

/* A new, empty map; NULL with TG_ERR_NOMEM. Free it with tg_params_free. */
struct tg_params *tg_params_new(void);
/* Frees the map, its names and metadata, and the tensors it owns (not the
 * borrowed ones). NULL is a no-op. */
void tg_params_free(struct tg_params *p);

/*
 * Appends `t` under `name` (copied), borrowed: the caller keeps owning t.
 * Errors (nothing added): TG_ERR_NULL (p, name or t NULL; a NULL t keeps the
 * message of the failure that produced it), TG_ERR_VALUE (empty name, the reserved
 * name "__metadata__", a name already present, or t already present under another
 * name), TG_ERR_STATE (t is a tape node, not a leaf), TG_ERR_NOMEM.
 */
enum tg_status tg_params_add(struct tg_params *p, const char *name, struct tg_tensor *t);
/* Like tg_params_add, but the map takes ownership of t, also when it fails: on any
 * error t is freed. So `tg_params_add_owned(p, "w", tg_tensor_zeros(...))` never leaks. */
enum tg_status tg_params_add_owned(struct tg_params *p, const char *name, struct tg_tensor *t);

/* The tensor named `name` (borrowed), or NULL with TG_ERR_VALUE when there is none
 * (TG_ERR_NULL for a NULL argument). */
struct tg_tensor *tg_params_get(const struct tg_params *p, const char *name);
/* Number of entries (0 for NULL). */
size_t tg_params_count(const struct tg_params *p);
/* The i-th entry in insertion order, 0 <= i < count: its name (owned by the map,
 * valid until it is freed) and its tensor. NULL with TG_ERR_RANGE otherwise. */
const char *tg_params_name(const struct tg_params *p, size_t i);
struct tg_tensor *tg_params_tensor(const struct tg_params *p, size_t i);
/* The total number of elements of all entries (0 for NULL). */
int64_t tg_params_numel(const struct tg_params *p);
/* Zeroes the gradient of every entry that has one (entries without requires-grad
 * are skipped). TG_ERR_NULL for NULL. */
enum tg_status tg_params_zero_grad(struct tg_params *p);

/* ---- string metadata (saved as the checkpoint's "__metadata__") ---- */

/* Sets key to value (both copied; an existing key is overwritten, keeping its
 * place). TG_ERR_NULL, TG_ERR_VALUE (empty key), TG_ERR_NOMEM (nothing changed). */
enum tg_status tg_params_meta_set(struct tg_params *p, const char *key, const char *value);
/* The value of key (owned by the map), or NULL when absent (no error recorded). */
const char *tg_params_meta_get(const struct tg_params *p, const char *key);
/* Number of metadata entries and the i-th key / value, in insertion order
 * (NULL with TG_ERR_RANGE out of range). */
size_t tg_params_meta_count(const struct tg_params *p);
const char *tg_params_meta_key(const struct tg_params *p, size_t i);
const char *tg_params_meta_value(const struct tg_params *p, size_t i);

#ifdef __cplusplus
}
#endif
#endif
