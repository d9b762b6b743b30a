/*
 * nn/params.c - named parameters: an ordered name -> tensor map.
 *
 * Two uthash tables index the same entries: by name (lookups, duplicate names) and
 * by tensor address (a tensor may appear once, so an owned tensor is never freed
 * twice and a checkpoint never stores one buffer under two names). Insertion order
 * lives in a plain array of entry pointers, so iteration by index is O(1); entries
 * are allocated one by one because uthash needs their addresses to stay put.
 * Metadata is a short array of copied key/value strings, searched linearly.
 */
#include <string.h>
#include "nn-impl.h"
#include "tapegrad/params.h"

struct entry {
    char *name;
    struct tg_tensor *t;
    bool owned;
    UT_hash_handle hh;  /* keyed by name */
    UT_hash_handle hht; /* keyed by the tensor pointer */
};

struct meta {
    char *key, *value;
};

struct tg_params {
    struct entry *by_name, *by_tensor; /* uthash heads */
    struct entry **order;              /* (n) in insertion order */
    size_t n, cap;
    struct meta *meta; /* (n_meta) */
    size_t n_meta, cap_meta;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tg_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

struct tg_params *tg_params_new(void)
{
    struct tg_params *p = tg_malloc(sizeof *p);
    if (p) memset(p, 0, sizeof *p);
    return p;
}

void tg_params_free(struct tg_params *p)
{
    if (!p) return;
    HASH_CLEAR(hh, p->by_name);
    HASH_CLEAR(hht, p->by_tensor);
    for (size_t i = 0; i < p->n; i++) {
        if (p->order[i]->owned) tg_tensor_free(p->order[i]->t);
        tg_free(p->order[i]->name);
        tg_free(p->order[i]);
    }
    for (size_t i = 0; i < p->n_meta; i++) {
        tg_free(p->meta[i].key);
        tg_free(p->meta[i].value);
    }
    tg_free(p->meta);
    tg_free(p->order);
    tg_free(p);
}

/* Grows *arr (of elements of `size` bytes) to hold at least n + 1 elements. */
static enum tg_status grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return TG_OK;
    size_t c = *cap ? *cap * 2 : 8;
    void *q = tg_realloc(*arr, c * size);
    if (!q) return TG_ERR_NOMEM;
    *arr = q;
    *cap = c;
    return TG_OK;
}

static enum tg_status check_add(const char *fn, struct tg_params *p, const char *name,
                                struct tg_tensor *t)
{
    if (!t) {
        if (tg_last_status() == TG_OK) tg_set_error(TG_ERR_NULL, "%s: tensor is NULL", fn);
        return tg_last_status();
    }
    if (!p || !name) return tg_set_error(TG_ERR_NULL, "%s: %s is NULL", fn, p ? "name" : "p");
    if (!name[0]) return tg_set_error(TG_ERR_VALUE, "%s: empty name", fn);
    if (!strcmp(name, "__metadata__"))
        return tg_set_error(TG_ERR_VALUE, "%s: \"__metadata__\" is reserved", fn);
    if (!tg_tensor_is_leaf(t))
        return tg_set_error(TG_ERR_STATE, "%s: \"%s\" is a tape node, not a leaf", fn, name);
    struct entry *e;
    HASH_FIND(hh, p->by_name, name, strlen(name), e);
    if (e) return tg_set_error(TG_ERR_VALUE, "%s: name \"%s\" is already present", fn, name);
    HASH_FIND(hht, p->by_tensor, &t, sizeof t, e);
    if (e)
        return tg_set_error(TG_ERR_VALUE, "%s: \"%s\": the tensor is already present as \"%s\"", fn,
                            name, e->name);
    return TG_OK;
}

static enum tg_status add(const char *fn, struct tg_params *p, const char *name,
                          struct tg_tensor *t, bool owned)
{
    enum tg_status st = check_add(fn, p, name, t);
    if (st) return st;
    if (grow((void **)&p->order, &p->cap, p->n, sizeof *p->order)) return tg_last_status();
    struct entry *e = tg_malloc(sizeof *e);
    if (!e) return TG_ERR_NOMEM;
    memset(e, 0, sizeof *e);
    e->t = t;
    e->owned = owned;
    if (!(e->name = dup_str(name))) goto nomem;
    HASH_ADD_KEYPTR(hh, p->by_name, e->name, strlen(e->name), e);
    if (!e->hh.tbl) goto nomem;
    HASH_ADD(hht, p->by_tensor, t, sizeof e->t, e);
    if (!e->hht.tbl) {
        HASH_DELETE(hh, p->by_name, e);
        goto nomem;
    }
    p->order[p->n++] = e;
    return TG_OK;
nomem:
    tg_free(e->name);
    tg_free(e);
    return tg_set_error(TG_ERR_NOMEM, "%s: out of memory adding \"%s\"", fn, name);
}

enum tg_status tg_params_add(struct tg_params *p, const char *name, struct tg_tensor *t)
{
    return add("tg_params_add", p, name, t, false);
}

enum tg_status tg_params_add_owned(struct tg_params *p, const char *name, struct tg_tensor *t)
{
    enum tg_status st = add("tg_params_add_owned", p, name, t, true);
    if (st) tg_tensor_free(t);
    return st;
}

struct tg_tensor *tg_params_get(const struct tg_params *p, const char *name)
{
    if (!p || !name) {
        tg_set_error(TG_ERR_NULL, "tg_params_get: %s is NULL", p ? "name" : "p");
        return NULL;
    }
    struct entry *e;
    HASH_FIND(hh, p->by_name, name, strlen(name), e);
    if (!e) tg_set_error(TG_ERR_VALUE, "tg_params_get: no parameter named \"%s\"", name);
    return e ? e->t : NULL;
}

size_t tg_params_count(const struct tg_params *p)
{
    return p ? p->n : 0;
}

static const struct entry *at(const char *fn, const struct tg_params *p, size_t i)
{
    if (!p) {
        tg_set_error(TG_ERR_NULL, "%s: p is NULL", fn);
        return NULL;
    }
    if (i >= p->n) {
        tg_set_error(TG_ERR_RANGE, "%s: index %zu out of range (count %zu)", fn, i, p->n);
        return NULL;
    }
    return p->order[i];
}

const char *tg_params_name(const struct tg_params *p, size_t i)
{
    const struct entry *e = at("tg_params_name", p, i);
    return e ? e->name : NULL;
}

struct tg_tensor *tg_params_tensor(const struct tg_params *p, size_t i)
{
    const struct entry *e = at("tg_params_tensor", p, i);
    return e ? e->t : NULL;
}

int64_t tg_params_numel(const struct tg_params *p)
{
    int64_t n = 0;
    for (size_t i = 0; p && i < p->n; i++) n += tg_tensor_numel(p->order[i]->t);
    return n;
}

enum tg_status tg_params_zero_grad(struct tg_params *p)
{
    if (!p) return tg_set_error(TG_ERR_NULL, "tg_params_zero_grad: p is NULL");
    for (size_t i = 0; i < p->n; i++)
        if (tg_tensor_requires_grad(p->order[i]->t)) {
            enum tg_status st = tg_tensor_zero_grad(p->order[i]->t);
            if (st) return st;
        }
    return TG_OK;
}

/* ---- metadata ---- */

static struct meta *meta_find(const struct tg_params *p, const char *key)
{
    for (size_t i = 0; i < p->n_meta; i++)
        if (!strcmp(p->meta[i].key, key)) return &p->meta[i];
    return NULL;
}

enum tg_status tg_params_meta_set(struct tg_params *p, const char *key, const char *value)
{
    if (!p || !key || !value)
        return tg_set_error(TG_ERR_NULL, "tg_params_meta_set: %s is NULL",
                            !p     ? "p"
                            : !key ? "key"
                                   : "value");
    if (!key[0]) return tg_set_error(TG_ERR_VALUE, "tg_params_meta_set: empty key");
    char *v = dup_str(value);
    if (!v) return TG_ERR_NOMEM;
    struct meta *m = meta_find(p, key);
    if (m) {
        tg_free(m->value);
        m->value = v;
        return TG_OK;
    }
    char *k = dup_str(key);
    if (!k || grow((void **)&p->meta, &p->cap_meta, p->n_meta, sizeof *p->meta)) {
        tg_free(k);
        tg_free(v);
        return TG_ERR_NOMEM;
    }
    p->meta[p->n_meta++] = (struct meta){k, v};
    return TG_OK;
}

const char *tg_params_meta_get(const struct tg_params *p, const char *key)
{
    const struct meta *m = p && key ? meta_find(p, key) : NULL;
    return m ? m->value : NULL;
}

size_t tg_params_meta_count(const struct tg_params *p)
{
    return p ? p->n_meta : 0;
}

static const struct meta *meta_at(const char *fn, const struct tg_params *p, size_t i)
{
    if (!p || i >= p->n_meta) {
        tg_set_error(p ? TG_ERR_RANGE : TG_ERR_NULL, "%s: index %zu out of range (count %zu)", fn,
                     i, p ? p->n_meta : 0);
        return NULL;
    }
    return &p->meta[i];
}

const char *tg_params_meta_key(const struct tg_params *p, size_t i)
{
    const struct meta *m = meta_at("tg_params_meta_key", p, i);
    return m ? m->key : NULL;
}

const char *tg_params_meta_value(const struct tg_params *p, size_t i)
{
    const struct meta *m = meta_at("tg_params_meta_value", p, i);
    return m ? m->value : NULL;
}
