/*
 * ops/linear.c - y = act(x W^T + b) as one op: a fused layer, for speed.
 *
 * Forward: the GEMM writes x W^T, then one pass adds the bias and applies the
 * activation in place. Backward forms g = dy * act'(y) (from the output: relu,
 * tanh and sigmoid need no saved input) in a buffer taken from the tape at record
 * time, adding the column sums of g into db in the same pass, then two GEMMs with
 * beta = 1: dx += g W and dW += g^T x. The elementwise passes run on one core
 * while the GEMMs use every BLAS thread, so each pass saved counts twice at two
 * threads.
 * Under tg_backward_apply, W's and b's updates may be folded in: the GEMM writes
 * W = beta W + alpha g^T x straight into W (no dW, no separate update pass).
 */
#include "ops-impl.h"

struct linear_geom {
    int64_t batch, in, out; /* x (batch, in), W (out, in), y (batch, out) */
};

static void geom_of(const struct tg_tensor *o, struct linear_geom *g)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1];
    g->batch = x->rank == 2 ? x->shape[0] : 1;
    g->in = W->shape[1];
    g->out = W->shape[0];
}

/* Checks the shapes, sets y's, and takes the backward buffer g (batch, out) from
 * the tape when a gradient will be needed and the activation is not the identity. */
static enum tg_status linear_shape(struct tg_tensor *o)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    char sx[96], sw[96], sb[96] = "none";
    tg__format_shape(sx, sizeof sx, x->rank, x->shape);
    tg__format_shape(sw, sizeof sw, W->rank, W->shape);
    if (b) tg__format_shape(sb, sizeof sb, b->rank, b->shape);
    bool ok = (x->rank == 1 || x->rank == 2) && W->rank == 2 &&
              x->shape[x->rank - 1] == W->shape[1] &&
              (!b || (b->rank == 1 && b->shape[0] == W->shape[0]));
    if (!ok)
        return tg__fail(TG_ERR_SHAPE,
                        "linear: x %s, W %s and b %s do not fit (want x (B,in) or (in), "
                        "W (out,in), b (out))",
                        sx, sw, sb);
    if (x->shape[x->rank - 1] > INT32_MAX || W->shape[0] > INT32_MAX ||
        (x->rank == 2 && x->shape[0] > INT32_MAX))
        return tg__fail(TG_ERR_RANGE, "linear: a dimension of %s or %s exceeds INT_MAX", sx, sw);
    o->rank = x->rank;
    if (x->rank == 2) o->shape[0] = x->shape[0];
    o->shape[x->rank - 1] = W->shape[0];
    bool grad = tg_tape_grad_enabled(o->tape);
    bool any = false;
    for (uint32_t i = 0; i < o->n_in; i++) any |= o->in[i]->requires_grad;
    if (grad && any && o->p.i[0] != TG_LINEAR_NONE) {
        struct linear_geom g;
        geom_of(o, &g);
        o->aux = tg__tape_alloc(o->tape, (size_t)(g.batch * g.out) * tg__esize(o->dtype));
        if (!o->aux) return tg_last_status();
    }
    return TG_OK;
}

/* Forward: y = act(y + b) in place, one pass over the GEMM's output (b may be
 * NULL). Backward: g = dy * act'(y) and, in the same pass over the rows, the bias
 * gradient db = beta db + alpha (column sums of g) (db may be NULL); with no
 * activation, g is dy itself and only the column sums are taken. Rows are
 * contiguous, so each inner loop is a vectorizable run over the outputs. */
#define LINEAR_ACT(T)                                                                              \
    static inline T act_##T(T v, int act)                                                          \
    {                                                                                              \
        return act == TG_LINEAR_RELU      ? (v > 0 ? v : 0)                                        \
               : act == TG_LINEAR_TANH    ? TG_TANH(v)                                             \
               : act == TG_LINEAR_SIGMOID ? TG_SIGMOID(v)                                          \
                                          : v;                                                     \
    }                                                                                              \
    /* inlined with a constant act, so each case is its own vectorized loop */                     \
    static inline __attribute__((always_inline)) void fwd_rows_##T(                                \
        T *restrict y, const T *restrict b, int64_t rows, int64_t cols, int act)                   \
    {                                                                                              \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            T *restrict yr = y + r * cols;                                                         \
            if (b)                                                                                 \
                for (int64_t c = 0; c < cols; c++) yr[c] = act_##T(yr[c] + b[c], act);             \
            else if (act != TG_LINEAR_NONE)                                                        \
                for (int64_t c = 0; c < cols; c++) yr[c] = act_##T(yr[c], act);                    \
        }                                                                                          \
    }                                                                                              \
    static void act_fwd_##T(T *restrict y, const T *restrict b, int64_t rows, int64_t cols,        \
                            int act)                                                               \
    {                                                                                              \
        switch (act) {                                                                             \
        case TG_LINEAR_RELU:                                                                       \
            fwd_rows_##T(y, b, rows, cols, TG_LINEAR_RELU);                                        \
            break;                                                                                 \
        case TG_LINEAR_TANH:                                                                       \
            fwd_rows_##T(y, b, rows, cols, TG_LINEAR_TANH);                                        \
            break;                                                                                 \
        case TG_LINEAR_SIGMOID:                                                                    \
            fwd_rows_##T(y, b, rows, cols, TG_LINEAR_SIGMOID);                                     \
            break;                                                                                 \
        default:                                                                                   \
            fwd_rows_##T(y, b, rows, cols, TG_LINEAR_NONE);                                        \
            break;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    static inline T dact_##T(T d, T y, int act)                                                    \
    {                                                                                              \
        return act == TG_LINEAR_RELU      ? (y > 0 ? d : 0)                                        \
               : act == TG_LINEAR_TANH    ? d * (1 - y * y)                                        \
               : act == TG_LINEAR_SIGMOID ? d * y * (1 - y)                                        \
                                          : d;                                                     \
    }                                                                                              \
    static inline __attribute__((always_inline)) void bwd_rows_##T(                                \
        T *restrict g, const T *restrict dy, const T *restrict y, T *restrict db, int64_t rows,    \
        int64_t cols, int act, T alpha)                                                            \
    {                                                                                              \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            const T *restrict dyr = dy + r * cols, *restrict yr = y + r * cols;                    \
            T *restrict gr = g + r * cols;                                                         \
            if (db)                                                                                \
                for (int64_t c = 0; c < cols; c++) {                                               \
                    T v = dact_##T(dyr[c], yr[c], act);                                            \
                    gr[c] = v;                                                                     \
                    db[c] += alpha * v;                                                            \
                }                                                                                  \
            else                                                                                   \
                for (int64_t c = 0; c < cols; c++) gr[c] = dact_##T(dyr[c], yr[c], act);           \
        }                                                                                          \
    }                                                                                              \
    static void act_bwd_##T(T *restrict g, const T *restrict dy, const T *restrict y,              \
                            T *restrict db, int64_t rows, int64_t cols, int act, T alpha, T beta)  \
    {                                                                                              \
        if (db && beta != 1)                                                                       \
            for (int64_t c = 0; c < cols; c++) db[c] *= beta;                                      \
        switch (act) {                                                                             \
        case TG_LINEAR_RELU:                                                                       \
            bwd_rows_##T(g, dy, y, db, rows, cols, TG_LINEAR_RELU, alpha);                         \
            break;                                                                                 \
        case TG_LINEAR_TANH:                                                                       \
            bwd_rows_##T(g, dy, y, db, rows, cols, TG_LINEAR_TANH, alpha);                         \
            break;                                                                                 \
        default:                                                                                   \
            bwd_rows_##T(g, dy, y, db, rows, cols, TG_LINEAR_SIGMOID, alpha);                      \
            break;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    /* db = beta db + alpha (column sums of g), for no activation (g is dy) */                     \
    static void colsum_##T(T *restrict db, const T *restrict g, int64_t rows, int64_t cols,        \
                           T alpha, T beta)                                                        \
    {                                                                                              \
        if (beta != 1)                                                                             \
            for (int64_t c = 0; c < cols; c++) db[c] *= beta;                                      \
        for (int64_t r = 0; r < rows; r++)                                                         \
            for (int64_t c = 0; c < cols; c++) db[c] += alpha * g[r * cols + c];                   \
    }

LINEAR_ACT(float)
LINEAR_ACT(double)

static void linear_fwd(struct tg_tensor *o)
{
    const struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    struct linear_geom g;
    geom_of(o, &g);
    tg__gemm(o->dtype, false, true, g.batch, g.out, g.in, 1.0, x->data, g.in, W->data, g.in, 0.0,
             o->data, g.out);
    int act = (int)o->p.i[0];
    const void *bias = b ? b->data : NULL;
    if (o->dtype == TG_F64)
        act_fwd_double(o->data, bias, g.batch, g.out, act);
    else
        act_fwd_float(o->data, bias, g.batch, g.out, act);
}

static void linear_bwd(struct tg_tensor *o)
{
    struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    struct linear_geom g;
    geom_of(o, &g);
    int act = (int)o->p.i[0], dt = o->dtype;
    /* b's gradient (or b itself, with its update folded in) from the same pass */
    struct tg__apply *fb = b && b->requires_grad ? tg__fold_at(o, 2) : NULL;
    void *db = b && b->requires_grad ? (fb ? b->data : b->grad) : NULL;
    double alpha = fb ? fb->alpha : 1.0, beta = fb ? fb->beta : 1.0;
    const void *G = o->grad; /* (batch, out): dy, or dy * act'(y) in aux */
    if (act != TG_LINEAR_NONE) {
        if (dt == TG_F64)
            act_bwd_double(o->aux, o->grad, o->data, db, g.batch, g.out, act, alpha, beta);
        else
            act_bwd_float(o->aux, o->grad, o->data, db, g.batch, g.out, act, (float)alpha,
                          (float)beta);
        G = o->aux;
    } else if (db) {
        if (dt == TG_F64)
            colsum_double(db, G, g.batch, g.out, alpha, beta);
        else
            colsum_float(db, G, g.batch, g.out, (float)alpha, (float)beta);
    }
    if (fb) fb->done = true;
    if (x->requires_grad) /* dx (batch, in) += G (batch, out) W (out, in), W's old value */
        tg__gemm(dt, false, false, g.batch, g.in, g.out, 1.0, G, g.out, W->data, g.in, 1.0, x->grad,
                 g.in);
    if (W->requires_grad) { /* dW (out, in) += G^T (out, batch) x (batch, in), or W updated */
        struct tg__apply *f = tg__fold_at(o, 1);
        tg__gemm(dt, true, false, g.out, g.in, g.batch, f ? f->alpha : 1.0, G, g.out, x->data, g.in,
                 f ? f->beta : 1.0, f ? W->data : W->grad, g.in);
        if (f) f->done = true;
    }
}

/* W and b can take their update inside backward (W's GEMM with alpha and beta,
 * b's column sums); x cannot (its gradient GEMM reads W before W's update). */
static bool linear_can_fold(const struct tg_tensor *o, uint32_t slot)
{
    return slot == 1 || slot == 2;
}

const struct tg_op_desc tg_op_desc_linear = {
    .op = TG_OP_LINEAR,
    .name = "linear",
    .arity = -1,
    .formula = "y = act(x W^T + b), fused (act: none, relu, tanh, sigmoid)",
    .vjp = "g = dy * act'(y); dx += g W; dW += g^T x; db += sum_batch g",
    .shape = linear_shape,
    .forward = linear_fwd,
    .backward = linear_bwd,
    .can_fold = linear_can_fold,
    .mixed_dtypes = false};

struct tg_tensor *tg_linear(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, enum tg_linear_act act)
{
    if ((int)act < TG_LINEAR_NONE || (int)act > TG_LINEAR_SIGMOID) {
        if (x && W)
            tg__fail(TG_ERR_VALUE, "linear: unknown activation %d", (int)act);
        else
            tg__null_input("linear", x ? "W" : "x");
        return NULL;
    }
    struct tg_tensor *in[3] = {x, W, b};
    union tg_params p = {.i = {act, 0}};
    return tg__op_record(T, &tg_op_desc_linear, b ? 3 : 2, in, &p, NULL);
}
