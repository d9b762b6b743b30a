/*
 * engine/engine-impl.h - the engine's internals, shared with ops/ (never installed).
 *
 * The node layout, the op descriptor that ops/ fills in, the arena, the error
 * setters and the allocator wrappers. nn/ and user code must not include this.
 */
#ifndef TG_ENGINE_IMPL_H
#define TG_ENGINE_IMPL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "tapegrad/tape.h"

/* Where a tensor lives. */
enum tg_kind {
    TG_KIND_LEAF = 0,  /* owned by the caller (malloc'd struct and buffers) */
    TG_KIND_NODE = 1,  /* the result of an op, in a tape's arena */
    TG_KIND_CONST = 2, /* a constant in a tape's arena */
    TG_KIND_FREED = 3, /* checked builds: a freed leaf in quarantine (engine/quarantine.c) */
};

struct tg_op_desc;

/* Small inline parameters of an op: no allocation per node. */
union tg_params {
    double f[2];
    int64_t i[2];
};

struct tg_tensor {
    void *data;                    /* (numel) elements of dtype */
    void *grad;                    /* (numel) elements of dtype, or NULL */
    struct tg_tape *tape;          /* NULL for leaves */
    const struct tg_op_desc *desc; /* NULL for leaves and constants */
    struct tg_tensor *prev;        /* the node recorded before this one */
    struct tg_tensor **in;         /* n_in inputs (points at in2 when n_in <= 2) */
    struct tg_tensor *in2[2];
    void *aux; /* node: op-specific data in the arena (unused by leaves) */
    /* what the sweep calls: desc->backward, or desc->backward1 for a node of the
     * scalar record path */
    void (*backward)(struct tg_tensor *out);
    union tg_params p;
    union {
        double d;
        float f;
    } sval, sgrad;  /* inline storage for one-element nodes */
    uint64_t epoch; /* the tape recording this node belongs to */
    uint64_t sweep; /* node: the last backward sweep that readied grad (0: none);
                       unused by leaves, whose own fields are in struct tg__leaf */
    int64_t numel;
    uint32_t n_in;
    uint8_t dtype;
    uint8_t rank;
    uint8_t kind;
    uint8_t requires_grad;
    int64_t shape[TG_MAX_DIM]; /* last: node_alloc clears everything before it */
};

/*
 * An op descriptor: everything the engine (the sweep, the trace, the graph,
 * gradcheck) knows about an op; the engine reads ops through descriptors only
 * and never includes or calls ops/. `shape` validates the inputs and parameters
 * already in `out` and sets out->rank and out->shape (returning an error with
 * the message set), and changes nothing else;
 * `forward` fills out->data from the inputs; `backward` adds the vector-Jacobian
 * product of out->grad into the grad of every input whose requires_grad is set.
 * Both may use the values of the inputs and of out: they stay valid until reset.
 */
struct tg_op_desc {
    int op; /* the op's index in the op table: its enum tg_op (tapegrad/ops.h) value */
    const char *name;
    int arity; /* -1: variable */
    const char *formula;
    const char *vjp;
    enum tg_status (*shape)(struct tg_tensor *out);
    void (*forward)(struct tg_tensor *out);
    void (*backward)(struct tg_tensor *out);
    /* Elementwise ops (those that record through tg__op_record_unary/_binary):
     * forward and backward of a one-element output, per dtype (indexed by
     * TG_F32, TG_F64), without the dtype and size dispatch of `forward` and
     * `backward`. The scalar record path calls forward1 and keeps backward1 in
     * the node, for the sweep. NULL for other ops. */
    void (*forward1[2])(struct tg_tensor *out);
    void (*backward1[2])(struct tg_tensor *out);
    /* Optional: whether backward can apply an update of input `slot` itself
     * (tg_backward_apply asks before its sweep, when that input is a listed leaf
     * whose only consumer is this node). Backward must then, whenever it runs,
     * set value = beta value + alpha g for that input through tg__fold_at, after
     * everything that reads the input's old value, and mark the update done. */
    bool (*can_fold)(const struct tg_tensor *out, uint32_t slot);
    /* set when inputs may have different dtypes (e.g. integer indices as f64) */
    bool mixed_dtypes;
    /* the output is f64 whatever the inputs' dtype (indices: argmax, argmin);
     * otherwise it has the first input's dtype */
    bool f64_output;
    /* Optional: the bytes of op data the node needs beside its value, for
     * forward to fill and backward to read (e.g. per-row log-sum-exps). The
     * recorder allocates them in the tape after the shape rule and points
     * out->aux at them, so that neither the shape rule nor forward allocates. */
    size_t (*scratch)(const struct tg_tensor *out);
    /* Output element i depends on element i of each (broadcast) input alone: the
     * graph draws and classifies the node as elementwise. */
    bool elementwise;
    /* The node's plain-number parameters (a scalar, an axis, flags, an
     * activation) written into vals, at most TG_MAX_OP_PARAMS; returns how many.
     * NULL: the op has none. The trace, the graph and tg_tensor_op_params read
     * parameters only through this. */
    int (*params)(const struct tg_tensor *out, double *vals);
    /* Higher order: the vector-Jacobian product recorded as ops of the table on
     * T, so that it can be differentiated again. dy is the gradient of node out
     * (out's shape and dtype; a node of T, a constant of T or a leaf). For each
     * input i with need[i] set, stores in dx[i] a tensor of input i's shape and
     * dtype on T, or NULL when that gradient is identically zero; leaves dx[i]
     * alone where need[i] is false. Returns TG_OK, or the status of the op that
     * failed (its message set). Reads out, its inputs and its parameters, never
     * writes them. Values it needs that are piecewise constant in the inputs
     * (masks, signs, argmax positions) may be recorded as constants of T. */
    enum tg_status (*vjp_graph)(struct tg_tape *T, struct tg_tensor *out, struct tg_tensor *dy,
                                const bool *need, struct tg_tensor **dx);
    /* The output's value is input 0's buffer, not a copy: the recorder points
     * out->data at in[0]->data (after the shape rule, which must give input 0's
     * shape) and allocates none, so that later changes to input 0's values show
     * through the output (tg_detach). forward then has nothing to compute. */
    bool shares_input_value;
    /* No gradient passes through the op: its output never requires one, so the
     * sweep never reaches the node (tg_detach; its VJP is zero). */
    bool stops_gradient;
    /* Optional: the VJP of this node in one line, for ops whose rule depends on
     * the node's parameters (matmul's transpose flags), written like `vjp` into
     * buf (size bytes, NUL-terminated). NULL: the node's rule is `vjp`. */
    void (*rule)(const struct tg_tensor *out, char *buf, size_t size);
    /* The names `vjp`, `rule` and `formula` use for the inputs, in slot order,
     * then "->" and the output's, then optionally ";" and the names of the values
     * `params` writes, in its order: "A B -> Y", "x -> y ; p" (a parameter is
     * printed as its value). The gradient of a name n is
     * written dn. The trace and tg_graph_rule replace these names (as whole
     * words, before a subscript "_i") with the names of the recorded tensors.
     * NULL: "x -> y" for one input, "a b -> y" for two, "-> y" otherwise. */
    const char *operands;
};
/* d->operands, or its default when unset (engine/rule.c). */
const char *tg__rule_operands(const struct tg_op_desc *d);

/* What only leaves have. A leaf is allocated as this struct (engine/tensor.c),
 * so a tensor of kind TG_KIND_LEAF converts to it (tg__leaf_of). */
struct tg__leaf {
    struct tg_tensor t;
    uint64_t grad_version;   /* tg_tensor_grad_version */
    uint64_t rg_gen;         /* tg__rg_gen's value when requires-grad last changed */
    struct tg__apply *apply; /* tg_backward_apply's state, during that call only */
    struct tg__hooks *hooks; /* its gradient hooks (engine/hook.c), or NULL */
    /* Lifetime (engine/tensor.c, engine/tape.c): one reference for the caller
     * until tg_tensor_free, one for each recording that takes the leaf as an
     * input until its tape's reset or free; the last one releases the leaf.
     * pin_rec: the recording (struct tg_tape's rec) that took a reference last,
     * so that a recording takes one per leaf however often it uses it. */
    _Atomic uint64_t pin_rec;
    _Atomic uint32_t refs;
    bool freed; /* tg_tensor_free was called (a recording still holds it) */
    /* memory the library lends for a while (tg_recompute's stand-ins on a
     * scratch arena, a hook's view on the stack): never pinned or released */
    bool borrowed;
};
static inline struct tg__leaf *tg__leaf_of(struct tg_tensor *t)
{
    return (struct tg__leaf *)t;
}
static inline const struct tg__leaf *tg__leaf_of_c(const struct tg_tensor *t)
{
    return (const struct tg__leaf *)t;
}

/* A leaf that tg_backward_apply updates (engine/apply.c), hung on the leaf's
 * apply field for the duration of the call. */
struct tg__apply {
    double alpha, beta; /* value = beta value + alpha g */
    struct tg_tensor *leaf;
    struct tg_tensor *node; /* the last-recorded node that takes the leaf as input */
    void *own_grad;         /* the leaf's gradient buffer, put back after the sweep */
    uint64_t own_version;   /* ... and its version (that buffer does not change) */
    void *scratch;          /* where g gathers when not folded */
    union {
        double d;
        float f;
    } one;         /* scratch of a one-element leaf */
    uint32_t slot; /* which input of node the leaf is */
    uint32_t uses; /* inputs of recorded nodes that are this leaf */
    bool fold;     /* node's backward applies the update itself ... */
    bool done;     /* ... and has */
};

/* The update that node o's backward must fold in for input `slot`, or NULL when
 * it adds the input's gradient as usual. */
static inline struct tg__apply *tg__fold_at(const struct tg_tensor *o, uint32_t slot)
{
    const struct tg_tensor *x = o->in[slot];
    struct tg__apply *a = x->kind == TG_KIND_LEAF ? tg__leaf_of_c(x)->apply : NULL;
    return a && a->fold && a->node == o ? a : NULL;
}

/* ---- errors (engine/status.c) ---- */
/* A failure is recorded with tg_set_error (status.h), the same call nn/ and
 * users make; engine and ops call it tg__fail. */
#define tg__fail tg_set_error
/* For a NULL input (or root) `arg` of fn: when the last failure on this thread
 * is still the pending cause (no call has succeeded since), keeps its message
 * and status, else records TG_ERR_NULL "fn: arg is NULL". Returns the status. */
enum tg_status tg__null_input(const char *fn, const char *arg);
/* A call succeeded: the last failure can no longer be the cause of a NULL
 * (calls that record an op instead see tg__fail_gen move, engine/record.c). */
void tg__cause_consumed(void);
/* A message that starts with "from: " now starts with "to: " (derived ops name
 * the function the user called rather than the descriptor they record). */
void tg__rename_failure(const char *from, const char *to);
/* Process-wide counters (relaxed atomics, engine/status.c): tg__fail_gen moves
 * with every failure and every change of a leaf's requires-grad, tg__rg_gen
 * with the latter only. Recording an op compares tg__fail_gen with what its
 * tape saw last, so that a success after a failure is noticed at the cost of
 * one load (engine/record.c, link_and_run). */
extern _Atomic uint64_t tg__fail_gen;
extern _Atomic uint64_t tg__rg_gen;
static inline uint64_t tg__gen_load(_Atomic uint64_t *g)
{
    return atomic_load_explicit(g, memory_order_relaxed);
}

/* ---- allocation (engine/status.c): every allocation goes through these ---- */
void *tg__malloc(size_t n);
void *tg__calloc(size_t n, size_t size); /* checks n * size for overflow */
void *tg__realloc(void *p, size_t n);
void tg__free(void *p);

/* ---- shapes (engine/tensor.c) ---- */
/* Validates rank/shape and computes numel, checking overflow of numel * elem size. */
enum tg_status tg__check_shape(const char *fn, int rank, const int64_t *shape, size_t elem,
                               int64_t *numel);
static inline size_t tg__esize(int dtype)
{
    return dtype == TG_F64 ? 8 : 4;
}
static inline double tg__load(const void *p, int dtype, int64_t i)
{
    return dtype == TG_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}
static inline void tg__store(void *p, int dtype, int64_t i, double v)
{
    if (dtype == TG_F64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* ---- the tape (engine/tape.c, record.c; layout in engine/tape-impl.h) ---- */
/* Bump-allocates n bytes (64-byte aligned) for the current recording. */
void *tg__tape_alloc(struct tg_tape *T, size_t n);
/* A node with its data buffer allocated and inputs linked, ready for forward.
 * Validates the inputs (NULL, tape, epoch, dtype unless desc->mixed_dtypes), runs
 * desc->shape, allocates data, runs desc->forward and links the node on the tape.
 * `params` may be NULL; `aux` is stored as is (allocate it with tg__tape_alloc). */
struct tg_tensor *tg__op_record(struct tg_tape *T, const struct tg_op_desc *desc, int n_in,
                                struct tg_tensor *const *in, const union tg_params *params,
                                void *aux);
/* tg__op_record for an elementwise op of one input, with `params` (may be NULL),
 * or of two: the same checks and results, with a straight-line path for rank-0
 * inputs (scalar graphs). desc must have forward1 and backward1, and a shape
 * rule that gives a rank-0 output for rank-0 inputs. */
struct tg_tensor *tg__op_record_unary(struct tg_tape *T, const struct tg_op_desc *desc,
                                      struct tg_tensor *x, const union tg_params *params);
struct tg_tensor *tg__op_record_binary(struct tg_tape *T, const struct tg_op_desc *desc,
                                       struct tg_tensor *a, struct tg_tensor *b);
/* ---- anomaly mode (engine/anomaly.c) ---- */
/* The first NaN/Inf element (or -1), and "[3,1]" for a flat index. */
int64_t tg__first_nonfinite(const void *buf, int dtype, int64_t numel);
void tg__format_index(char *buf, size_t size, int rank, const int64_t *shape, int64_t i);
/* TG_ERR_NUMERIC with a message when op node n's value holds a NaN or Inf. */
enum tg_status tg__anomaly_forward(const struct tg_tensor *n);
/* TG_ERR_NUMERIC when n's backward made an input's gradient NaN or Inf. */
enum tg_status tg__anomaly_backward(const struct tg_tensor *n);
/* Whether node t's gradient belongs to its tape's latest backward sweep. */
bool tg__node_grad_current(const struct tg_tensor *t);
/* Whether t (not NULL) is a tape tensor recorded before its tape's last reset.
 * False for leaves. Safe for a handle of any age while its tape lives (it reads
 * only t's kind, epoch and tape fields, which a stale handle's slot keeps
 * valid); a stale handle whose slot the tape has reused reads as live. */
bool tg__is_stale(const struct tg_tensor *t);
/* TG_ERR_STALE with "fn: arg was recorded before its tape was reset" when t
 * (not NULL) is stale, else TG_OK. The check every public call that takes a
 * tensor makes before reading anything else of it. */
enum tg_status tg__check_live(const char *fn, const char *arg, const struct tg_tensor *t);
/* Why t is stale, for messages: a leaf freed while a recording holds it, in
 * checked builds a freed leaf or a tensor of a freed tape, else `reset` (the
 * caller's wording of "recorded before its tape was reset"). */
const char *tg__stale_why(const struct tg_tensor *t, const char *reset);
/* Drops a reference to leaf t; the last one releases it (engine/lifetime.c). */
void tg__leaf_unref(struct tg_tensor *t);
/* Whether t is a freed leaf or a tensor of a freed tape: checked builds only
 * (they quarantine both); false in other builds. */
bool tg__is_dead(const struct tg_tensor *t);
/* Checked builds: poisons leaf t (values NaN, reads as stale) and quarantines
 * it (defined in those builds only). */
void tg__quarantine_leaf(struct tg_tensor *t);
/* Checks that t may be an input of an op on T (for ops that validate early). */
enum tg_status tg__check_input(struct tg_tape *T, const char *fn, const struct tg_tensor *t);

/* ---- gradient checks (engine/gradcheck.c, engine/gradgradcheck.c) ---- */
struct tg_gradcheck_options;
struct tg_gradcheck_report;
/* Judges element j of input i: the analytic derivative an against the central
 * difference (fp - fm) / 2h (f0 at the point itself, h = o->eps) within o's
 * tolerances, a kink counted instead of a failure when an lies between the
 * one-sided slopes; counts it in rep and keeps the worst (ratio in *worst). */
void tg__gradcheck_judge(const struct tg_gradcheck_options *o, struct tg_gradcheck_report *rep,
                         double *worst, int i, int64_t j, double an, double f0, double fp,
                         double fm);
/* After a check without failures: when it compared (almost) nothing -- more
 * kinks than o->max_kink_share of the checked elements, or all kinks -- clears
 * rep->passed, sets rep->skipped to o->skip_kinks and writes the message (fn
 * names the check); returns whether it did. */
bool tg__gradcheck_vacuous(const struct tg_gradcheck_options *o, struct tg_gradcheck_report *rep,
                           const char *fn);

#endif
