/*
 * engine/recompute.c - gradient checkpointing (tapegrad/recompute.h): a node
 * whose value a segment function computed on a scratch tape, and whose
 * backward records the segment again there and sweeps it.
 *
 * The segment sees stand-ins for its inputs: leaves, in the scratch tape's
 * arena, that share the inputs' values and, in backward, point their gradient
 * at the inputs' gradient buffers, so that the scratch sweep adds straight into
 * them (every backward adds; nothing is copied). A backward callback cannot
 * fail, so a failed recomputation is left in the tape's sweep_status, which
 * the sweep loop of engine/hook.c (the one a tape with such nodes takes) turns
 * into the sweep's status.
 */
#include <stdio.h>
#include "hook-impl.h"
#include "tape-impl.h"
#include "tapegrad/grad.h"
#include "tapegrad/recompute.h"

static const char fn_name[] = "tg_recompute";

/* What the node keeps (in its tape's arena): the segment, and the output's
 * shape and dtype as the first run gave them. */
struct segment {
    tg_recompute_fn fn;
    void *user;
    const void *value; /* the first run's output, read once by forward */
    int64_t shape[TG_MAX_DIM];
    int rank;
    int dtype;
};

/* T's scratch tape, emptied and in T's anomaly mode; NULL with the error set. */
static struct tg_tape *scratch_of(struct tg_tape *T)
{
    if (!T->recompute && !(T->recompute = tg_tape_new())) return NULL;
    tg_tape_reset(T->recompute);
    tg_tape_set_anomaly(T->recompute, T->anomaly);
    return T->recompute;
}

/* Leaves on S's arena standing for in[0..n); with grads, those of inputs that
 * require grad take the input's gradient buffer as their own. */
static struct tg_tensor **stand_ins(struct tg_tape *S, struct tg_tensor *const *in, int n,
                                    bool grads)
{
    struct tg__leaf *p = tg__tape_alloc(S, (size_t)n * sizeof *p);
    struct tg_tensor **v = tg__tape_alloc(S, (size_t)n * sizeof *v);
    if (!p || !v) return NULL;
    memset(p, 0, (size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) {
        struct tg_tensor *t = &p[i].t, *x = in[i];
        t->data = x->data;
        t->numel = x->numel;
        t->dtype = x->dtype;
        t->rank = x->rank;
        memcpy(t->shape, x->shape, sizeof t->shape);
        t->kind = TG_KIND_LEAF;
        t->in = t->in2;
        p[i].borrowed = true; /* S's arena owns it: no recording pins it */
        if (grads && x->requires_grad) {
            t->requires_grad = 1;
            t->grad = x->grad;
        }
        v[i] = t;
    }
    return v;
}

/* Why y, fn's result on S, cannot be the segment's output (TG_OK if it can);
 * gen: tg__fail_gen before fn ran. */
static enum tg_status check_output(const struct tg_tape *S, const struct tg_tensor *y, uint64_t gen)
{
    if (!y)
        return tg__gen_load(&tg__fail_gen) != gen
                   ? tg_last_status()
                   : tg__fail(TG_ERR_NULL, "%s: fn returned NULL without an error", fn_name);
    if (y->kind == TG_KIND_LEAF)
        return tg__fail(TG_ERR_TAPE,
                        "%s: fn returned a leaf; it must return a tensor it recorded on the "
                        "tape it was given",
                        fn_name);
    if (y->tape != S)
        return tg__fail(TG_ERR_TAPE,
                        "%s: fn returned a tensor of a different tape; it must record on the "
                        "(scratch) tape it was given, not on the caller's",
                        fn_name);
    return tg__check_live(fn_name, "fn's result", y);
}

static enum tg_status segment_shape(struct tg_tensor *out)
{
    const struct segment *g = out->aux;
    out->rank = (uint8_t)g->rank;
    memcpy(out->shape, g->shape, (size_t)g->rank * sizeof *g->shape);
    return TG_OK;
}

/* y = the value the first run of fn computed */
static void segment_forward(struct tg_tensor *out)
{
    const struct segment *g = out->aux;
    memcpy(out->data, g->value, (size_t)out->numel * tg__esize(out->dtype));
}

/* dx_i += J_fn(x)^T dy, by recording fn again and sweeping it from dy. */
static enum tg_status recompute_backward(struct tg_tensor *out)
{
    const struct segment *g = out->aux;
    struct tg_tape *S = scratch_of(out->tape);
    struct tg_tensor **v = S ? stand_ins(S, out->in, (int)out->n_in, true) : NULL;
    if (!v) return tg_last_status();
    uint64_t gen = tg__gen_load(&tg__fail_gen);
    struct tg_tensor *y = g->fn(S, v, (int)out->n_in, g->user);
    enum tg_status st = check_output(S, y, gen);
    if (st) return st;
    bool same = y->rank == out->rank && y->dtype == out->dtype;
    for (int d = 0; same && d < y->rank; d++) same = y->shape[d] == out->shape[d];
    if (!same) {
        char a[160], b[160];
        tg_tensor_format_shape(a, sizeof a, y->rank, y->shape);
        tg_tensor_format_shape(b, sizeof b, out->rank, out->shape);
        return tg__fail(TG_ERR_STATE,
                        "%s: fn recomputed in backward gave %s %s, but %s %s the first time",
                        fn_name, tg_dtype_name((enum tg_dtype)y->dtype), a,
                        tg_dtype_name((enum tg_dtype)out->dtype), b);
    }
    /* no input that needs a gradient reaches y: it adds nothing */
    if (y->kind != TG_KIND_NODE || !y->requires_grad) return TG_OK;
    struct tg__leaf seed;
    memset(&seed, 0, sizeof seed);
    seed.t = *y;
    seed.t.kind = TG_KIND_LEAF;
    seed.borrowed = true; /* on the stack: no recording pins it */
    seed.t.data = out->grad;
    seed.t.requires_grad = 0;
    seed.t.in = seed.t.in2;
    if ((st = tg_backward(y, &seed.t))) return st;
    tg_tape_reset(S);
    return TG_OK;
}

static void segment_backward(struct tg_tensor *out)
{
    enum tg_status st = recompute_backward(out);
    if (st && !out->tape->sweep_status) out->tape->sweep_status = st;
}

/* Higher order: fn recorded on T itself, from the node's own inputs, and
 * tg_grad of it seeded with dy. In tg_grad without create_graph T is in a
 * no-grad scope, which is lifted while fn records (so that its result can be
 * differentiated) and kept for the VJP's own ops. */
static enum tg_status segment_vjp_graph(struct tg_tape *T, struct tg_tensor *out,
                                        struct tg_tensor *dy, const bool *need,
                                        struct tg_tensor **dx)
{
    const struct segment *g = out->aux;
    struct tg_tensor *x[TG_RECOMPUTE_MAX_INPUTS], *d[TG_RECOMPUTE_MAX_INPUTS];
    int k = 0;
    for (uint32_t i = 0; i < out->n_in; i++)
        if (need[i]) x[k++] = out->in[i];
    if (k == 0) return TG_OK;
    int no_grad = T->no_grad;
    T->no_grad = 0;
    uint64_t gen = tg__gen_load(&tg__fail_gen);
    struct tg_tensor *y = g->fn(T, out->in, (int)out->n_in, g->user);
    T->no_grad = no_grad;
    enum tg_status st = !y                                        ? check_output(T, y, gen)
                        : y->tape != T || y->kind == TG_KIND_LEAF ? check_output(NULL, y, gen)
                                                                  : TG_OK;
    if (st) return st;
    struct tg_grad_options o = {.create_graph = no_grad == 0, .allow_unused = true};
    if ((st = tg_grad(1, &y, &dy, k, x, &o, d))) return st;
    k = 0;
    for (uint32_t i = 0; i < out->n_in; i++)
        if (need[i]) dx[i] = d[k++];
    return TG_OK;
}

static const struct tg_op_desc recompute_desc = {
    .op = -1, /* not an op of the table: tg_tensor_op gives TG_OP_NONE's value */
    .name = "recompute",
    .arity = -1,
    .formula = "y = fn(x_1, ..., x_n), recorded on a scratch tape and forgotten",
    .vjp = "dx_i += J_fn^T dy, by recording fn again and sweeping it",
    .shape = segment_shape,
    .forward = segment_forward,
    .backward = segment_backward,
    .vjp_graph = segment_vjp_graph,
    .mixed_dtypes = true,
};

/* The checks of the arguments, before fn runs. */
static enum tg_status check_args(struct tg_tape *T, tg_recompute_fn fn, struct tg_tensor *const *in,
                                 int n_in)
{
    if (!T) return tg__fail(TG_ERR_NULL, "%s: tape is NULL", fn_name);
    if (!fn || !in) return tg__fail(TG_ERR_NULL, "%s: %s is NULL", fn_name, fn ? "in" : "fn");
    if (n_in < 1 || n_in > TG_RECOMPUTE_MAX_INPUTS)
        return tg__fail(TG_ERR_RANGE, "%s: n_in %d is outside 1..%d", fn_name, n_in,
                        TG_RECOMPUTE_MAX_INPUTS);
    for (int i = 0; i < n_in; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "input %d", i + 1);
        if (!in[i]) return tg__null_input(fn_name, arg);
        enum tg_status st = tg__check_input(T, fn_name, in[i]);
        if (st) return st;
    }
    return owner_check(T, fn_name);
}

struct tg_tensor *tg_recompute(struct tg_tape *T, tg_recompute_fn fn, struct tg_tensor *const *in,
                               int n_in, void *user)
{
    if (check_args(T, fn, in, n_in)) return NULL;
    struct segment *g = tg__tape_alloc(T, sizeof *g);
    struct tg_tape *S = g ? scratch_of(T) : NULL;
    struct tg_tensor **v = S ? stand_ins(S, in, n_in, false) : NULL;
    if (!v) return NULL;
    uint64_t gen = tg__gen_load(&tg__fail_gen);
    tg_tape_no_grad_push(S); /* the first run only computes the value */
    struct tg_tensor *y = fn(S, v, n_in, user);
    tg_tape_no_grad_pop(S);
    if (check_output(S, y, gen)) return NULL;
    if (y->dtype != in[0]->dtype) {
        tg__fail(TG_ERR_DTYPE, "%s: fn's output is %s but input 1 is %s", fn_name,
                 tg_dtype_name((enum tg_dtype)y->dtype),
                 tg_dtype_name((enum tg_dtype)in[0]->dtype));
        return NULL;
    }
    *g = (struct segment){
        .fn = fn, .user = user, .value = y->data, .rank = y->rank, .dtype = y->dtype};
    memcpy(g->shape, y->shape, sizeof g->shape);
    struct tg_tensor *n = tg__op_record(T, &recompute_desc, n_in, in, NULL, g);
    if (!n) return NULL;
    tg_tape_reset(S); /* the segment's intermediates: forgotten */
    if (n->requires_grad) T->n_recompute++;
    return n;
}

void tg_recompute_stats(const struct tg_tape *T, struct tg_tape_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (T && T->recompute) tg_tape_stats(T->recompute, out);
}
