/*
 * engine/record.c - recording an op: the checks of the inputs, the node, its
 * buffers and its forward, and the straight-line path for scalar graphs.
 */
#include <stdio.h>
#include "tape-impl.h"

/* Points n->data at storage for its numel elements (inline for one element). */
enum tg_status tg__node_buffers(struct tg_tape *T, struct tg_tensor *n, const char *fn)
{
    if (n->rank == 0)
        n->numel = 1;
    else if (tg__check_shape(fn, n->rank, n->shape, tg__esize(n->dtype), &n->numel))
        return tg_last_status();
    if (n->numel == 1) {
        n->data = &n->sval;
        return TG_OK;
    }
    n->data = tg__tape_alloc(T, (size_t)n->numel * tg__esize(n->dtype));
    return n->data ? TG_OK : tg_last_status();
}

/* Why inputs in[0..n_in) cannot be recorded on T (the slow path of the checks). */
static enum tg_status input_error(struct tg_tape *T, const struct tg_op_desc *desc, int n_in,
                                  struct tg_tensor *const *in)
{
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            char arg[32];
            snprintf(arg, sizeof arg, "input %d", i + 1);
            return tg__null_input(desc->name, arg);
        }
    if (!T) return tg__fail(TG_ERR_NULL, "%s: tape is NULL", desc->name);
    for (int i = 0; i < n_in; i++) {
        enum tg_status st = tg__check_input(T, desc->name, in[i]);
        if (st) return st;
        if (!desc->mixed_dtypes && in[i]->dtype != in[0]->dtype)
            return tg__fail(TG_ERR_DTYPE, "%s: inputs have different dtypes (%s and %s)",
                            desc->name, tg_dtype_name((enum tg_dtype)in[0]->dtype),
                            tg_dtype_name((enum tg_dtype)in[i]->dtype));
    }
    return tg__fail(TG_ERR_STATE, "%s: inputs rejected", desc->name);
}

/* Whether x may be an input on T (T not NULL): a leaf, or a tensor of T's
 * current recording. Leaves have no tape, so the tape test comes first and
 * settles a tape tensor in one more compare (most inputs of a scalar graph are
 * nodes). */
static inline bool input_ok(const struct tg_tape *T, const struct tg_tensor *x)
{
    return x && (x->tape == T ? x->epoch == T->epoch : x->kind == TG_KIND_LEAF);
}

/* What a recorded op n does when its tape's fail_seen is behind tg__fail_gen:
 * the success consumes the last failure as the cause of later NULLs; anomaly
 * mode checks n's value (a NaN or Inf takes n off the tape again and fails);
 * the tape notes where its recording stands against requires-grad changes. */
__attribute__((noinline, cold)) static struct tg_tensor *op_recorded_slow(struct tg_tensor *n)
{
    struct tg_tape *T = n->tape;
    tg__cause_consumed();
    if (T->anomaly && tg__anomaly_forward(n)) {
        T->last = n->prev;
        T->n_nodes--;
        return NULL; /* the failure moved tg__fail_gen: the next op comes here too */
    }
    uint64_t rg = tg__gen_load(&tg__rg_gen);
    if (!T->rec_started) {
        T->rec_started = true;
        T->ck_lost = false;
        T->rec_rg = rg;
        T->ck = NULL;
    } else if (rg != (T->ck ? T->ck->rg : T->rec_rg)) {
        struct rg_checkpoint *c = tg__tape_alloc(T, sizeof *c);
        if (c) {
            *c = (struct rg_checkpoint){rg, n, T->ck};
            T->ck = c;
        } else {
            T->ck_lost = true; /* the op itself succeeded */
        }
    }
    tg__cause_consumed();
    T->fail_seen = T->anomaly ? 0 : tg__gen_load(&tg__fail_gen);
    return n;
}

/* Appends n to its tape, then computes its value with fwd. Linking first leaves
 * only n live across the call (n->tape is the tape), which spares the scalar
 * record path a saved register. */
static inline struct tg_tensor *link_and_run(struct tg_tensor *n, void (*fwd)(struct tg_tensor *))
{
    struct tg_tape *T = n->tape;
    n->prev = T->last;
    T->last = n;
    T->n_nodes++;
    fwd(n);
    /* n->tape rather than T from here: T need not be kept across the call */
    if (n->tape->fail_seen != tg__gen_load(&tg__fail_gen)) return op_recorded_slow(n);
    return n;
}

struct tg_tensor *tg__op_record(struct tg_tape *T, const struct tg_op_desc *desc, int n_in,
                                struct tg_tensor *const *in, const union tg_params *params,
                                void *aux)
{
    /* One pass over the inputs checks everything the general case needs; any
     * failure is explained by input_error. */
    bool needs_grad = false, ok = T != NULL;
    for (int i = 0; ok && i < n_in; i++) {
        const struct tg_tensor *x = in[i];
        ok = input_ok(T, x) && (desc->mixed_dtypes || x->dtype == in[0]->dtype);
        if (!ok) break;
        needs_grad |= x->requires_grad;
    }
    if (!ok) {
        input_error(T, desc, n_in, in);
        return NULL;
    }
    if (owner_check(T, desc->name)) return NULL;
    for (int i = 0; i < n_in; i++)
        if (in[i]->kind == TG_KIND_LEAF && leaf_pin(T, in[i], desc->name)) return NULL;
    struct tg_tensor *n = node_alloc(T);
    if (!n) return NULL;
    n->kind = TG_KIND_NODE;
    n->desc = desc;
    n->dtype = desc->f64_output ? TG_F64 : n_in ? in[0]->dtype : TG_F32;
    if (n_in > 2) {
        n->in = tg__tape_alloc(T, (size_t)n_in * sizeof *n->in);
        if (!n->in) return NULL;
    }
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->n_in = (uint32_t)n_in;
    if (params) n->p = *params;
    n->aux = aux;
    if (desc->shape(n)) return NULL;
    if (desc->shares_input_value) {
        n->numel = in[0]->numel; /* the shape rule gave input 0's shape */
        n->data = in[0]->data;
    } else if (tg__node_buffers(T, n, desc->name)) {
        return NULL;
    }
    if (desc->scratch) {
        size_t bytes = desc->scratch(n);
        if (bytes && !(n->aux = tg__tape_alloc(T, bytes))) return NULL;
    }
    if (n->numel <= 1) n->grad = &n->sgrad; /* none: a valid pointer to nothing */
    n->requires_grad = needs_grad && T->no_grad == 0 && !desc->stops_gradient;
    if (n->requires_grad && n->numel > 1) T->grad_pending += grad_bytes(n);
    n->backward = desc->backward;
    return link_and_run(n, desc->forward);
}

/* ---- the scalar-graph fast path ----
 * A micrograd-style graph records one node per multiply or add, so recording
 * is most of its cost. For an elementwise op whose inputs are live rank-0
 * tensors of one dtype, the node is built here with no loops, no shape rule
 * and every field written once, and its value computed by the op's one-element
 * kernel for that dtype (desc->forward1), which also picks the one the sweep
 * will call (desc->backward1); anything else (including every error) goes to
 * tg__op_record, which checks and reports it. */

/* Whether x is a rank-0 tensor that may be an input on T: a tensor of T's
 * recording, or a leaf that the recording holds already (a leaf's first use in
 * a recording goes through tg__op_record, which takes the hold: the fast path
 * pays one more compare for leaves and none for nodes). */
static inline bool scalar_input_ok(const struct tg_tape *T, const struct tg_tensor *x)
{
    return x && x->rank == 0 &&
           (x->tape == T
                ? x->epoch == T->epoch
                : x->kind == TG_KIND_LEAF && atomic_load_explicit(&tg__leaf_of_c(x)->pin_rec,
                                                                  memory_order_relaxed) == T->rec);
}

/* A one-element node of desc with inputs a and b (NULL for a unary op),
 * recorded on T. The inputs are checked (and leaves among them held). */
static inline struct tg_tensor *record_scalar(struct tg_tape *T, const struct tg_op_desc *desc,
                                              struct tg_tensor *a, struct tg_tensor *b,
                                              union tg_params p)
{
    struct tg_tensor *n = node_mem(T, RING_SCALAR);
    if (!n) return NULL;
    n->data = &n->sval;
    n->grad = &n->sgrad;
    n->tape = T;
    n->desc = desc;
    n->in = n->in2;
    n->in2[0] = a;
    n->in2[1] = b;
    n->aux = NULL;
    n->p = p;
    n->epoch = T->epoch;
    n->sweep = 0;
    n->numel = 1;
    n->n_in = b ? 2 : 1;
    n->dtype = a->dtype;
    n->rank = 0;
    n->kind = TG_KIND_NODE;
    n->requires_grad = (a->requires_grad | (b && b->requires_grad)) & (T->no_grad == 0);
    n->backward = desc->backward1[a->dtype];
    return link_and_run(n, desc->forward1[a->dtype]);
}

struct tg_tensor *tg__op_record_unary(struct tg_tape *T, const struct tg_op_desc *desc,
                                      struct tg_tensor *x, const union tg_params *params)
{
    if (TG_CHECKED && T && owner_check(T, desc->name)) return NULL;
    if (T && scalar_input_ok(T, x))
        return record_scalar(T, desc, x, NULL, params ? *params : (union tg_params){.i = {0, 0}});
    return tg__op_record(T, desc, 1, &x, params, NULL);
}

struct tg_tensor *tg__op_record_binary(struct tg_tape *T, const struct tg_op_desc *desc,
                                       struct tg_tensor *a, struct tg_tensor *b)
{
    if (TG_CHECKED && T && owner_check(T, desc->name)) return NULL;
    if (T && scalar_input_ok(T, a) && scalar_input_ok(T, b) && a->dtype == b->dtype)
        return record_scalar(T, desc, a, b, (union tg_params){.i = {0, 0}});
    struct tg_tensor *in[2] = {a, b};
    return tg__op_record(T, desc, 2, in, NULL, NULL);
}
