/*
 * ops/custom.c - ops registered at run time (tapegrad/custom_op.h).
 *
 * A registered op gets an engine descriptor (struct tg_op_desc) of its own,
 * whose callbacks are the trampolines below: each finds the registration from
 * the node's descriptor, gathers the node's inputs, parameters and context into
 * a struct tg_custom_op_args and calls the user's function. So the engine, the
 * trace, the graph and the gradient checks read a registered op exactly as they
 * read a built-in one. The registry is a uthash table by name (for
 * tg_custom_op_find and duplicate names) plus an array by index (for the op
 * values tg_tensor_op returns), both written under a spin lock; the array's
 * entries are published before its count, so readers need no lock.
 */
#include <stdatomic.h>
#include <stdio.h>
#include "custom-impl.h"
#include "ops-impl.h"
#include "tapegrad/custom_op.h"

#define HASH_NONFATAL_OOM    1
#define uthash_malloc(sz)    tg__malloc(sz)
#define uthash_free(ptr, sz) tg__free(ptr)
#include <uthash.h>

enum { CUSTOM_MAGIC = 0x74676375 };

struct tg_custom_op {
    uint32_t magic;
    struct tg_op_desc desc; /* what the op's nodes point at */
    struct tg_custom_op_def def;
    char name[TG_CUSTOM_OP_MAX_NAME + 1];
    UT_hash_handle hh;
};

static struct tg_custom_op *by_name; /* uthash head */
static struct tg_custom_op *by_index[TG_CUSTOM_OP_MAX_COUNT];
static _Atomic int n_ops;
static atomic_flag lock = ATOMIC_FLAG_INIT;

static void registry_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
    }
}
static void registry_unlock(void)
{
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

const struct tg_op_desc *tg__custom_desc(int op)
{
    int k = op - TG_OP_COUNT;
    if (k < 0 || k >= atomic_load_explicit(&n_ops, memory_order_acquire)) return NULL;
    return &by_index[k]->desc;
}

/* ---- the trampolines: engine descriptor callbacks that call the user's ---- */

static const struct tg_custom_op *reg_of(const struct tg_tensor *out)
{
    return (const struct tg_custom_op *)((const char *)out->desc -
                                         offsetof(struct tg_custom_op, desc));
}

static struct tg_custom_op_args args_of(struct tg_tensor *out, bool with_out)
{
    const struct tg_custom_op *r = reg_of(out);
    return (struct tg_custom_op_args){.n_in = (int)out->n_in,
                                      .in = out->in,
                                      .out = with_out ? out : NULL,
                                      .params = out->p.f,
                                      .n_params = r->def.n_params,
                                      .ctx = out->aux,
                                      .user = r->def.user};
}

/* Every input has the shape of input 1, which the output takes. */
static enum tg_status same_shapes(const char *name, struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0];
    for (uint32_t i = 1; i < out->n_in; i++) {
        const struct tg_tensor *y = out->in[i];
        bool same = y->rank == x->rank;
        for (int d = 0; same && d < x->rank; d++) same = y->shape[d] == x->shape[d];
        if (!same) {
            char a[160], b[160];
            tg_tensor_format_shape(a, sizeof a, x->rank, x->shape);
            tg_tensor_format_shape(b, sizeof b, y->rank, y->shape);
            return tg__fail(TG_ERR_SHAPE, "%s: input %u has shape %s but input 1 has %s", name,
                            i + 1, b, a);
        }
    }
    out->rank = x->rank;
    memcpy(out->shape, x->shape, (size_t)x->rank * sizeof *x->shape);
    return TG_OK;
}

static enum tg_status custom_shape(struct tg_tensor *out)
{
    const struct tg_custom_op *r = reg_of(out);
    if (!r->def.shape) return same_shapes(r->name, out);
    struct tg_custom_op_args a = args_of(out, false);
    int rank = -1;
    int64_t shape[TG_MAX_DIM] = {0};
    uint64_t gen = tg__gen_load(&tg__fail_gen);
    enum tg_status st = r->def.shape(&a, &rank, shape);
    if (st) {
        if (tg__gen_load(&tg__fail_gen) == gen)
            tg__fail(st, "%s: the shape rule failed (%s)", r->name, tg_status_str(st));
        return st;
    }
    if (rank < 0 || rank > TG_MAX_DIM)
        return tg__fail(TG_ERR_RANGE, "%s: the shape rule gave rank %d (0..%d)", r->name, rank,
                        TG_MAX_DIM);
    for (int d = 0; d < rank; d++)
        if (shape[d] < 0)
            return tg__fail(TG_ERR_SHAPE, "%s: the shape rule gave extent %lld on axis %d", r->name,
                            (long long)shape[d], d);
    out->rank = (uint8_t)rank;
    memcpy(out->shape, shape, (size_t)rank * sizeof *shape);
    return TG_OK;
}

static size_t custom_context(const struct tg_tensor *out)
{
    struct tg_custom_op_args a = args_of((struct tg_tensor *)out, false);
    return reg_of(out)->def.context_bytes(&a);
}

static void custom_forward(struct tg_tensor *out)
{
    struct tg_custom_op_args a = args_of(out, true);
    reg_of(out)->def.forward(&a);
}

/* dx_i += the user's VJP, for the inputs that need a gradient */
static void custom_backward(struct tg_tensor *out)
{
    struct tg_custom_op_args a = args_of(out, true);
    void *dx[TG_CUSTOM_OP_MAX_INPUTS];
    for (uint32_t i = 0; i < out->n_in; i++)
        dx[i] = out->in[i]->requires_grad ? out->in[i]->grad : NULL;
    reg_of(out)->def.backward(&a, out->grad, dx);
}

static enum tg_status custom_vjp_graph(struct tg_tape *T, struct tg_tensor *out,
                                       struct tg_tensor *dy, const bool *need,
                                       struct tg_tensor **dx)
{
    struct tg_custom_op_args a = args_of(out, true);
    return reg_of(out)->def.vjp_graph(T, &a, dy, need, dx);
}

static int custom_params(const struct tg_tensor *out, double *vals)
{
    int n = reg_of(out)->def.n_params;
    for (int k = 0; k < n; k++) vals[k] = out->p.f[k];
    return n;
}

/* ---- registering ---- */

static enum tg_status check_def(const struct tg_custom_op_def *def, const void *op)
{
    static const char fn[] = "tg_custom_op_register";
    if (!def || !op) return tg__fail(TG_ERR_NULL, "%s: %s is NULL", fn, def ? "op" : "def");
    if (!def->name) return tg__fail(TG_ERR_NULL, "%s: def->name is NULL", fn);
    const char *nm = def->name;
    size_t len = strlen(nm);
    if (len == 0 || len > TG_CUSTOM_OP_MAX_NAME)
        return tg__fail(TG_ERR_VALUE, "%s: name \"%.80s\" must have 1 to %d bytes", fn, nm,
                        TG_CUSTOM_OP_MAX_NAME);
    for (size_t k = 0; k < len; k++) {
        char c = nm[k];
        bool ok =
            c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!ok)
            return tg__fail(TG_ERR_VALUE,
                            "%s: name \"%s\" has a character other than letters, digits and _", fn,
                            nm);
    }
    for (int k = 0; k < TG_OP_COUNT; k++)
        if (!strcmp(tg_op_table[k]->name, nm))
            return tg__fail(TG_ERR_VALUE, "%s: \"%s\" is the name of a built-in op", fn, nm);
    if (!def->forward || !def->backward)
        return tg__fail(TG_ERR_NULL,
                        "%s: op \"%s\": def->%s is NULL (forward and backward are "
                        "required)",
                        fn, nm, def->forward ? "backward" : "forward");
    if (def->arity < 1 || def->arity > TG_CUSTOM_OP_MAX_INPUTS)
        return tg__fail(TG_ERR_RANGE, "%s: op \"%s\": arity %d is outside 1..%d", fn, nm,
                        def->arity, TG_CUSTOM_OP_MAX_INPUTS);
    if (def->n_params < 0 || def->n_params > TG_CUSTOM_OP_MAX_PARAMS)
        return tg__fail(TG_ERR_RANGE, "%s: op \"%s\": n_params %d is outside 0..%d", fn, nm,
                        def->n_params, TG_CUSTOM_OP_MAX_PARAMS);
    return TG_OK;
}

/* A copy of text (NULL: "custom op"), or NULL with TG_ERR_NOMEM. */
static const char *copy_text(const char *text)
{
    if (!text) return "custom op";
    size_t n = strlen(text) + 1;
    char *c = tg__malloc(n);
    if (c) memcpy(c, text, n);
    return c;
}

static void free_text(const char *text)
{
    if (text && strcmp(text, "custom op")) tg__free((void *)text);
}

/* The registration's descriptor, filled for op value `index`. */
static void fill_desc(struct tg_custom_op *r, int index)
{
    const struct tg_custom_op_def *d = &r->def;
    r->desc = (struct tg_op_desc){
        .op = index,
        .name = r->name,
        .arity = d->arity,
        .formula = d->formula,
        .vjp = d->vjp,
        .shape = custom_shape,
        .forward = custom_forward,
        .backward = custom_backward,
        .scratch = d->context_bytes ? custom_context : NULL,
        .elementwise = d->elementwise,
        .params = d->n_params ? custom_params : NULL,
        .vjp_graph = d->vjp_graph ? custom_vjp_graph : NULL,
    };
}

/* Links r into the registry under the lock; the status of a name taken or a
 * full registry. */
static enum tg_status publish(struct tg_custom_op *r)
{
    static const char fn[] = "tg_custom_op_register";
    enum tg_status st = TG_OK;
    registry_lock();
    struct tg_custom_op *old = NULL;
    int n = atomic_load_explicit(&n_ops, memory_order_relaxed);
    HASH_FIND_STR(by_name, r->name, old);
    if (old) {
        st = tg__fail(TG_ERR_STATE, "%s: an op named \"%s\" is already registered", fn, r->name);
    } else if (n == TG_CUSTOM_OP_MAX_COUNT) {
        st = tg__fail(TG_ERR_RANGE, "%s: %d ops are registered already (the most)", fn, n);
    } else {
        fill_desc(r, TG_OP_COUNT + n);
        HASH_ADD_STR(by_name, name, r);
        if (!r->hh.tbl) {
            st = tg__fail(TG_ERR_NOMEM, "%s: out of memory", fn);
        } else {
            by_index[n] = r;
            atomic_store_explicit(&n_ops, n + 1, memory_order_release);
        }
    }
    registry_unlock();
    return st;
}

enum tg_status tg_custom_op_register(const struct tg_custom_op_def *def,
                                     const struct tg_custom_op **op)
{
    enum tg_status st = check_def(def, op);
    if (st) return st;
    struct tg_custom_op *r = tg__calloc(1, sizeof *r);
    if (!r) return tg_last_status();
    r->magic = CUSTOM_MAGIC;
    r->def = *def;
    memcpy(r->name, def->name, strlen(def->name) + 1);
    r->def.name = r->name;
    r->def.formula = copy_text(def->formula);
    r->def.vjp = copy_text(def->vjp);
    if (!r->def.formula || !r->def.vjp)
        st = tg__fail(TG_ERR_NOMEM, "tg_custom_op_register: out of memory");
    if (!st) st = publish(r);
    if (st) {
        free_text(r->def.formula);
        free_text(r->def.vjp);
        tg__free(r);
        return st;
    }
    *op = r;
    return TG_OK;
}

const struct tg_custom_op *tg_custom_op_find(const char *name)
{
    if (!name) {
        tg__fail(TG_ERR_NULL, "tg_custom_op_find: name is NULL");
        return NULL;
    }
    struct tg_custom_op *r = NULL;
    registry_lock();
    HASH_FIND_STR(by_name, name, r);
    registry_unlock();
    if (!r) tg__fail(TG_ERR_VALUE, "tg_custom_op_find: no op is registered as \"%.80s\"", name);
    return r;
}

const char *tg_custom_op_name(const struct tg_custom_op *op)
{
    return op && op->magic == CUSTOM_MAGIC ? op->name : "?";
}

/* ---- recording ---- */

struct tg_tensor *tg_custom_op_call(struct tg_tape *T, const struct tg_custom_op *op,
                                    struct tg_tensor *const *in, const double *params)
{
    static const char fn[] = "tg_custom_op_call";
    if (!op) {
        tg__fail(TG_ERR_NULL, "%s: op is NULL", fn);
        return NULL;
    }
    if (op->magic != CUSTOM_MAGIC) {
        tg__fail(TG_ERR_VALUE, "%s: op is not the handle of a registered op", fn);
        return NULL;
    }
    if (!in) {
        tg__null_input(op->name, "inputs");
        return NULL;
    }
    union tg_params p = {.f = {0, 0}};
    if (op->def.n_params && !params) {
        tg__fail(TG_ERR_NULL, "%s: op %s takes %d parameter(s) but params is NULL", fn, op->name,
                 op->def.n_params);
        return NULL;
    }
    for (int k = 0; k < op->def.n_params; k++) p.f[k] = params[k];
    return tg__op_record(T, &op->desc, op->def.arity, in, &p, NULL);
}
