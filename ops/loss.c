/*
 * ops/loss.c - divergences (losses): mse, cross-entropy (class labels or
 * probability targets), binary cross-entropy from logits, hinge, multi-class
 * margin, and the L2 penalty.
 *
 * Every loss produces "terms" (one per element, or one per sample for the losses
 * over a class axis) and then a reduction: none keeps the terms, sum adds them,
 * mean divides the sum by their count. Backward mirrors it: term i receives
 * dy_i (none), dy (sum) or dy / N (mean), then the term's local derivatives.
 *
 * The cross-entropies are fused with log-softmax for stability: log-sum-exp of
 * each row is computed once, max-subtracted, and kept in `aux` (one double per
 * row) for backward, where d(term)/dx = softmax(x) - onehot(y). They exist as
 * fused ops for that reason only.
 *
 * Params: p.f[0] = the reduction, p.f[1] = the margin (multi_margin).
 * Values are loaded and accumulated in double for both dtypes.
 */
#include "ops-impl.h"

/* ---- reductions, shared by every loss ---- */

static enum tg_reduction red_of(const struct tg_tensor *o)
{
    return (enum tg_reduction)(int)o->p.f[0];
}

/* The parameters of a loss node (the descriptor's params): the reduction
 * (enum tg_reduction as a number), and multi_margin's margin. */
static int reduction_param(const struct tg_tensor *o, double *vals)
{
    vals[0] = o->p.f[0];
    return 1;
}
static int margin_params(const struct tg_tensor *o, double *vals)
{
    vals[0] = o->p.f[0];
    vals[1] = o->p.f[1];
    return 2;
}

/* Sets out's shape for n_terms terms shaped like (rank, shape) under the reduction. */
static enum tg_status reduced_shape(struct tg_tensor *out, int rank, const int64_t *shape,
                                    int64_t n_terms)
{
    if (red_of(out) != TG_REDUCE_NONE) {
        if (red_of(out) == TG_REDUCE_MEAN && n_terms == 0)
            return tg__fail(TG_ERR_SHAPE, "%s: mean over no elements", out->desc->name);
        out->rank = 0;
        return TG_OK;
    }
    out->rank = (uint8_t)rank;
    memcpy(out->shape, shape, (size_t)rank * sizeof *shape);
    return TG_OK;
}

/* Forward: term i goes to out[i] (none) or into *acc; finish() writes the sum/mean. */
static void emit(struct tg_tensor *out, int64_t i, double term, double *acc)
{
    if (red_of(out) == TG_REDUCE_NONE)
        tg__store(out->data, out->dtype, i, term);
    else
        *acc += term;
}
static void finish(struct tg_tensor *out, double acc, int64_t n_terms)
{
    if (red_of(out) == TG_REDUCE_SUM) tg__store(out->data, out->dtype, 0, acc);
    if (red_of(out) == TG_REDUCE_MEAN) tg__store(out->data, out->dtype, 0, acc / (double)n_terms);
}

/* Backward: the upstream gradient of term i. scale = 1/N for mean, else 1. */
static double scale_of(const struct tg_tensor *out, int64_t n_terms)
{
    return red_of(out) == TG_REDUCE_MEAN ? 1.0 / (double)n_terms : 1.0;
}
static double dterm(const struct tg_tensor *out, int64_t i, double scale)
{
    if (red_of(out) == TG_REDUCE_NONE) return tg__load(out->grad, out->dtype, i);
    return tg__load(out->grad, out->dtype, 0) * scale;
}

static void add_at(struct tg_tensor *t, int64_t i, double v)
{
    tg__store(t->grad, t->dtype, i, tg__load(t->grad, t->dtype, i) + v);
}

static enum tg_status shapes_differ(const char *fn, const struct tg_tensor *a,
                                    const struct tg_tensor *b, const char *what)
{
    char sa[160], sb[160];
    tg_tensor_format_shape(sa, sizeof sa, a->rank, a->shape);
    tg_tensor_format_shape(sb, sizeof sb, b->rank, b->shape);
    return tg__fail(TG_ERR_SHAPE, "%s: shapes %s and %s %s", fn, sa, sb, what);
}

static bool same_shape(const struct tg_tensor *a, const struct tg_tensor *b)
{
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* Records a loss op after checking the reduction (NULL inputs propagate first). */
static struct tg_tensor *record_loss(struct tg_tape *T, const struct tg_op_desc *d, int n_in,
                                     struct tg_tensor *a, struct tg_tensor *b, enum tg_reduction r,
                                     double param)
{
    struct tg_tensor *in[2] = {a, b};
    bool inputs_ok = a && (n_in < 2 || b);
    if (inputs_ok && r != TG_REDUCE_MEAN && r != TG_REDUCE_SUM && r != TG_REDUCE_NONE) {
        tg__fail(TG_ERR_VALUE, "%s: unknown reduction %d", d->name, (int)r);
        return NULL;
    }
    if (inputs_ok && !isfinite(param)) {
        tg__fail(TG_ERR_VALUE, "%s: parameter %g is not finite", d->name, param);
        return NULL;
    }
    union tg_params p = {.f = {(double)r, param}};
    return tg__op_record(T, d, n_in, in, &p, NULL);
}

/* ---- the differentiable VJPs (the descriptors' vjp_graph) ----
 * The formulas of the backward kernels, recorded as ops on T: each term's
 * upstream gradient (dterm), then its local derivatives. The factors that are
 * piecewise constant (hinge's active set, multi_margin's violated classes, the
 * one-hot rows of the labels) are tape constants computed from the values, NaN
 * where the kernel's factor is NaN. Labels get no gradient (NULL). */

#define VJP_ARGS                                                                                   \
    struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy, const bool *need,                \
        struct tg_tensor **dx

/* The terms' upstream gradient: dy (none, sum) or dy / N (mean); for the
 * per-row losses under none, dy with a trailing axis of 1 (it broadcasts over
 * the classes). */
static struct tg_tensor *dterm_of(struct tg_tape *T, const struct tg_tensor *o,
                                  struct tg_tensor *dy, int64_t n_terms, bool per_row)
{
    if (red_of(o) == TG_REDUCE_MEAN) return tg_mul_scalar(T, dy, 1.0 / (double)n_terms);
    if (red_of(o) == TG_REDUCE_NONE && per_row) return tg_unsqueeze(T, dy, dy->rank);
    return dy;
}

/* dx[i] = t when asked; NULL t is a failed step. */
static enum tg_status put(const bool *need, uint32_t i, struct tg_tensor *t, struct tg_tensor **dx)
{
    if (!need[i]) return TG_OK;
    if (!t) return tg__vjp_failure();
    dx[i] = t;
    return TG_OK;
}

/* A constant of x's shape and out's dtype, to fill in. */
static struct tg_tensor *const_like(struct tg_tape *T, const struct tg_tensor *o,
                                    const struct tg_tensor *x)
{
    return tg__vjp_const(T, o->dtype, x->rank, x->shape);
}

/* ---- elementwise losses: term_i = f(a_i, b_i) ---- */

/* The term and its derivatives in a and b for one element. */
struct ew_term {
    double value, da, db;
};

static struct ew_term mse_term(double p, double t)
{
    double d = p - t;
    return (struct ew_term){d * d, 2 * d, -2 * d};
}
/* max(x, 0) - x t + log(1 + e^-|x|); d/dx = sigmoid(x) - t; d/dt = -x */
static struct ew_term bce_term(double x, double t)
{
    double e = exp(-fabs(x)), sig = x >= 0 ? 1 / (1 + e) : e / (1 + e);
    return (struct ew_term){(x > 0 ? x : 0) - x * t + log1p(e), sig - t, -x};
}
/* max(0, 1 - y s); d/ds = -y where the margin is violated (0 at the kink); a
 * NaN score gives a NaN term and derivative (m <= 0 is false for a NaN m) */
static struct ew_term hinge_term(double s, double y)
{
    double m = 1 - y * s;
    return (struct ew_term){m <= 0 ? 0 : m, m > 0 ? -y : (m <= 0 ? 0 : m), 0};
}
static struct ew_term l2_term(double w, double unused)
{
    return (struct ew_term){0.5 * w * w, w, 0};
}

static struct ew_term (*ew_fn(const struct tg_tensor *o))(double, double)
{
    switch (o->desc->op) {
    case TG_OP_MSE:
        return mse_term;
    case TG_OP_BCE_LOGITS:
        return bce_term;
    case TG_OP_HINGE:
        return hinge_term;
    default:
        return l2_term;
    }
}

static enum tg_status ew_shape(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0], *b = out->n_in > 1 ? out->in[1] : NULL;
    if (b && !same_shape(a, b)) return shapes_differ(out->desc->name, a, b, "differ");
    if (out->desc->op == TG_OP_HINGE)
        for (int64_t i = 0; i < b->numel; i++) {
            double y = tg__load(b->data, b->dtype, i);
            if (y != 1 && y != -1)
                return tg__fail(TG_ERR_VALUE, "hinge: label %g at index %lld is not -1 or +1", y,
                                (long long)i);
        }
    return reduced_shape(out, a->rank, a->shape, a->numel);
}

static void ew_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *a = out->in[0], *b = out->n_in > 1 ? out->in[1] : NULL;
    struct ew_term (*f)(double, double) = ew_fn(out);
    double acc = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double bv = b ? tg__load(b->data, b->dtype, i) : 0;
        emit(out, i, f(tg__load(a->data, a->dtype, i), bv).value, &acc);
    }
    finish(out, acc, a->numel);
}

static void ew_bwd(struct tg_tensor *out)
{
    struct tg_tensor *a = out->in[0], *b = out->n_in > 1 ? out->in[1] : NULL;
    struct ew_term (*f)(double, double) = ew_fn(out);
    bool ga = a->requires_grad, gb = b && b->requires_grad && out->desc->op != TG_OP_HINGE;
    if (!ga && !gb) return;
    double scale = scale_of(out, a->numel);
    for (int64_t i = 0; i < a->numel; i++) {
        double g = dterm(out, i, scale);
        struct ew_term t =
            f(tg__load(a->data, a->dtype, i), b ? tg__load(b->data, b->dtype, i) : 0);
        if (ga) add_at(a, i, g * t.da);
        if (gb) add_at(b, i, g * t.db);
    }
}

/* dp = dterm 2 (p - t); dt = -dp */
static enum tg_status mse_vjp(VJP_ARGS)
{
    struct tg_tensor *p = o->in[0], *t = o->in[1];
    if (!need[0] && !need[1]) return TG_OK;
    struct tg_tensor *g = dterm_of(T, o, dy, p->numel, false);
    struct tg_tensor *dp = g ? tg_mul(T, g, tg_mul_scalar(T, tg_sub(T, p, t), 2)) : NULL;
    enum tg_status st = put(need, 0, dp, dx);
    return st ? st : put(need, 1, dp ? tg_neg(T, dp) : NULL, dx);
}

/* dx = dterm (sigmoid(x) - t); dt = -(dterm x) */
static enum tg_status bce_vjp(VJP_ARGS)
{
    struct tg_tensor *x = o->in[0], *t = o->in[1];
    if (!need[0] && !need[1]) return TG_OK;
    struct tg_tensor *g = dterm_of(T, o, dy, x->numel, false);
    enum tg_status st =
        need[0] ? put(need, 0, g ? tg_mul(T, g, tg_sub(T, tg_sigmoid(T, x), t)) : NULL, dx) : 0;
    if (!st && need[1]) st = put(need, 1, g ? tg_neg(T, tg_mul(T, g, x)) : NULL, dx);
    return st;
}

/* ds = dterm F, F = -y on the active set (1 - y s > 0), 0 off it, NaN where
 * 1 - y s is NaN: the kernel's factor, as a constant */
static enum tg_status hinge_vjp(VJP_ARGS)
{
    struct tg_tensor *s = o->in[0], *y = o->in[1];
    if (need[1]) dx[1] = NULL;
    if (!need[0]) return TG_OK;
    struct tg_tensor *g = dterm_of(T, o, dy, s->numel, false), *f = const_like(T, o, s);
    for (int64_t i = 0; f && i < s->numel; i++)
        tg__store(f->data, f->dtype, i,
                  hinge_term(tg__load(s->data, s->dtype, i), tg__load(y->data, y->dtype, i)).da);
    return put(need, 0, g && f ? tg_mul(T, g, f) : NULL, dx);
}

/* dw = dy w */
static enum tg_status l2_vjp(VJP_ARGS)
{
    return need[0] ? put(need, 0, tg_mul(T, dy, o->in[0]), dx) : TG_OK;
}

const struct tg_op_desc tg_op_desc_mse = {
    .op = TG_OP_MSE,
    .name = "mse",
    .arity = 2,
    .formula = "term_i = (p_i - t_i)^2; then mean/sum/none",
    .vjp = "dp_i += 2 (p_i - t_i) dterm_i; dt_i -= 2 (p_i - t_i) dterm_i",
    .shape = ew_shape,
    .forward = ew_fwd,
    .backward = ew_bwd,
    .mixed_dtypes = false,
    .params = reduction_param,
    .vjp_graph = mse_vjp,
    .operands = "p t -> term"};
const struct tg_op_desc tg_op_desc_bce_logits = {
    .op = TG_OP_BCE_LOGITS,
    .name = "bce_logits",
    .arity = 2,
    .formula = "term_i = max(x_i, 0) - x_i t_i + log(1 + e^-|x_i|); then mean/sum/none",
    .vjp = "dx_i += (sigmoid(x_i) - t_i) dterm_i; dt_i -= x_i dterm_i",
    .shape = ew_shape,
    .forward = ew_fwd,
    .backward = ew_bwd,
    .mixed_dtypes = false,
    .params = reduction_param,
    .vjp_graph = bce_vjp,
    .operands = "x t -> term"};
const struct tg_op_desc tg_op_desc_hinge = {
    .op = TG_OP_HINGE,
    .name = "hinge",
    .arity = 2,
    .formula = "term_i = max(0, 1 - y_i s_i), y_i in {-1, +1}",
    .vjp = "ds_i -= y_i [1 - y_i s_i > 0] dterm_i; y gets none",
    .shape = ew_shape,
    .forward = ew_fwd,
    .backward = ew_bwd,
    .mixed_dtypes = true,
    .params = reduction_param,
    .vjp_graph = hinge_vjp,
    .operands = "s y -> term"};
const struct tg_op_desc tg_op_desc_l2_penalty = {.op = TG_OP_L2_PENALTY,
                                                 .name = "l2_penalty",
                                                 .arity = 1,
                                                 .formula = "y = 0.5 sum_i w_i^2",
                                                 .vjp = "dw_i += w_i dy",
                                                 .shape = ew_shape,
                                                 .forward = ew_fwd,
                                                 .backward = ew_bwd,
                                                 .mixed_dtypes = false,
                                                 .vjp_graph = l2_vjp,
                                                 .operands = "w -> y"};

struct tg_tensor *tg_mse(struct tg_tape *T, struct tg_tensor *pred, struct tg_tensor *target,
                         enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_mse, 2, pred, target, r, 0);
}
struct tg_tensor *tg_bce_logits(struct tg_tape *T, struct tg_tensor *logits,
                                struct tg_tensor *targets, enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_bce_logits, 2, logits, targets, r, 0);
}
struct tg_tensor *tg_hinge(struct tg_tape *T, struct tg_tensor *scores, struct tg_tensor *y,
                           enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_hinge, 2, scores, y, r, 0);
}
struct tg_tensor *tg_l2_penalty(struct tg_tape *T, struct tg_tensor *w)
{
    return record_loss(T, &tg_op_desc_l2_penalty, 1, w, NULL, TG_REDUCE_SUM, 0);
}

/* ---- losses over a class axis (the last one): one term per row ---- */

/* Rows and classes of x (..., C). */
static void rows_of(const struct tg_tensor *x, int64_t *rows, int64_t *C)
{
    *C = x->shape[x->rank - 1];
    *rows = 1;
    for (int d = 0; d + 1 < x->rank; d++) *rows *= x->shape[d];
}

/* log sum_c e^(x_c) of one row (C contiguous), max-subtracted; NaN when the
 * row holds a NaN (which fmax would skip). */
static double row_lse(const struct tg_tensor *x, int64_t off, int64_t C)
{
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; c++) {
        double v = tg__load(x->data, x->dtype, off + c);
        m = v > m || v != v ? v : m;
    }
    if (m != m) return m;
    if (m == -INFINITY) return m;
    for (int64_t c = 0; c < C; c++) s += exp(tg__load(x->data, x->dtype, off + c) - m);
    return m + log(s);
}

/* labels: shape of x without its last axis, whole numbers in 0..C-1. */
static enum tg_status check_labels(const char *fn, const struct tg_tensor *x,
                                   const struct tg_tensor *lab)
{
    bool ok = lab->rank + 1 == x->rank;
    for (int d = 0; ok && d < lab->rank; d++) ok = lab->shape[d] == x->shape[d];
    if (!ok)
        return shapes_differ(fn, x, lab,
                             "do not match (labels need the logits' shape "
                             "without the class axis)");
    int64_t rows, C;
    rows_of(x, &rows, &C);
    for (int64_t n = 0; n < rows; n++) {
        double v = tg__load(lab->data, lab->dtype, n);
        if (!(v == floor(v)))
            return tg__fail(TG_ERR_VALUE, "%s: label %g at index %lld is not a whole number", fn, v,
                            (long long)n);
        if (v < 0 || v >= (double)C)
            return tg__fail(TG_ERR_RANGE, "%s: label %g at index %lld is outside 0..%lld", fn, v,
                            (long long)n, (long long)C - 1);
    }
    return TG_OK;
}

/* The shape rule of the class-axis losses; the cross-entropies also get their
 * per-row log-sum-exp buffer here, once the row count is known. */
static enum tg_status rows_shape(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0], *b = out->in[1];
    const char *fn = out->desc->name;
    if (x->rank < 1) return tg__fail(TG_ERR_SHAPE, "%s: logits must have a class axis", fn);
    enum tg_status st = TG_OK;
    if (out->desc->op == TG_OP_CROSS_ENTROPY_PROBS) {
        if (!same_shape(x, b)) return shapes_differ(fn, x, b, "differ");
    } else if ((st = check_labels(fn, x, b))) {
        return st;
    }
    int64_t rows, C;
    rows_of(x, &rows, &C);
    return reduced_shape(out, x->rank - 1, x->shape, rows);
}

/* The cross-entropies keep each row's log-sum-exp for backward: (rows) doubles. */
static size_t lse_scratch(const struct tg_tensor *out)
{
    int64_t rows, C;
    rows_of(out->in[0], &rows, &C);
    return (size_t)(rows ? rows : 1) * sizeof(double);
}

static int64_t label_at(const struct tg_tensor *lab, int64_t n)
{
    return (int64_t)tg__load(lab->data, lab->dtype, n);
}

/* labels: term_n = lse_n - x_n,y_n; probs: term_n = -sum_c t_nc (x_nc - lse_n) */
static void ce_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0], *b = out->in[1];
    double *lse = out->aux, acc = 0; /* (rows) */
    int64_t rows, C;
    rows_of(x, &rows, &C);
    for (int64_t n = 0; n < rows; n++) {
        lse[n] = row_lse(x, n * C, C);
        double term = 0;
        if (out->desc->op == TG_OP_CROSS_ENTROPY) {
            term = lse[n] - tg__load(x->data, x->dtype, n * C + label_at(b, n));
        } else {
            for (int64_t c = 0; c < C; c++) {
                double t = tg__load(b->data, b->dtype, n * C + c);
                if (t != 0) term -= t * (tg__load(x->data, x->dtype, n * C + c) - lse[n]);
            }
        }
        emit(out, n, term, &acc);
    }
    finish(out, acc, rows);
}

/* dx_nc += dterm_n (softmax_nc sum_c' t_nc' - t_nc)  (t = onehot(y) for labels);
 * dt_nc -= dterm_n (x_nc - lse_n) */
static void ce_bwd(struct tg_tensor *out)
{
    struct tg_tensor *x = out->in[0], *b = out->in[1];
    const double *lse = out->aux; /* (rows) */
    bool probs = out->desc->op == TG_OP_CROSS_ENTROPY_PROBS;
    bool gx = x->requires_grad, gt = probs && b->requires_grad;
    int64_t rows, C;
    rows_of(x, &rows, &C);
    double scale = scale_of(out, rows);
    for (int64_t n = 0; (gx || gt) && n < rows; n++) {
        double g = dterm(out, n, scale), tsum = 1;
        if (probs) {
            tsum = 0;
            for (int64_t c = 0; c < C; c++) tsum += tg__load(b->data, b->dtype, n * C + c);
        }
        for (int64_t c = 0; c < C; c++) {
            double xc = tg__load(x->data, x->dtype, n * C + c);
            double t = probs ? tg__load(b->data, b->dtype, n * C + c) : (c == label_at(b, n));
            if (gx) add_at(x, n * C + c, g * (exp(xc - lse[n]) * tsum - t));
            if (gt) add_at(b, n * C + c, -g * (xc - lse[n]));
        }
    }
}

/* term_n = (1/C) sum_{c != y} max(0, margin - x_y + x_c); a NaN score makes
 * its v NaN, which !(v <= 0) keeps in the sum */
static void margin_fwd(struct tg_tensor *out)
{
    const struct tg_tensor *x = out->in[0], *lab = out->in[1];
    int64_t rows, C;
    rows_of(x, &rows, &C);
    double acc = 0, margin = out->p.f[1];
    for (int64_t n = 0; n < rows; n++) {
        int64_t y = label_at(lab, n);
        double xy = tg__load(x->data, x->dtype, n * C + y), term = 0;
        for (int64_t c = 0; c < C; c++) {
            double v = margin - xy + tg__load(x->data, x->dtype, n * C + c);
            if (c != y && !(v <= 0)) term += v;
        }
        emit(out, n, term / (double)C, &acc);
    }
    finish(out, acc, rows);
}

/* each violated class c: dx_c += dterm / C, dx_y -= dterm / C; where v is NaN
 * (a NaN score), both get a NaN: there is no derivative */
static void margin_bwd(struct tg_tensor *out)
{
    struct tg_tensor *x = out->in[0], *lab = out->in[1];
    if (!x->requires_grad) return;
    int64_t rows, C;
    rows_of(x, &rows, &C);
    double scale = scale_of(out, rows), margin = out->p.f[1];
    for (int64_t n = 0; n < rows; n++) {
        int64_t y = label_at(lab, n);
        double g = dterm(out, n, scale) / (double)C;
        double xy = tg__load(x->data, x->dtype, n * C + y);
        for (int64_t c = 0; c < C; c++) {
            double v = margin - xy + tg__load(x->data, x->dtype, n * C + c);
            if (c != y && !(v <= 0)) {
                double d = v > 0 ? g : v;
                add_at(x, n * C + c, d);
                add_at(x, n * C + y, -d);
            }
        }
    }
}

/* labels: dx = dterm (softmax(x) - onehot(y)); probs: dx = dterm (softmax(x)
 * sum_c t_c - t), dt = -(dterm log_softmax(x)) */
static enum tg_status ce_vjp(VJP_ARGS)
{
    struct tg_tensor *x = o->in[0], *b = o->in[1];
    bool probs = o->desc->op == TG_OP_CROSS_ENTROPY_PROBS;
    int64_t rows, C;
    rows_of(x, &rows, &C);
    if (need[1] && !probs) dx[1] = NULL;
    if (!need[0] && !(probs && need[1])) return TG_OK;
    struct tg_tensor *g = dterm_of(T, o, dy, rows, true);
    enum tg_status st = TG_OK;
    if (need[0]) {
        struct tg_tensor *sm = g ? tg_softmax(T, x, -1) : NULL, *t = b;
        if (sm && probs) {
            sm = tg_mul(T, sm, tg_sum_axes(T, b, (int[]){-1}, 1, true));
        } else if (sm) {
            t = const_like(T, o, x);
            for (int64_t n = 0; t && n < rows; n++)
                tg__store(t->data, t->dtype, n * C + label_at(b, n), 1);
        }
        st = put(need, 0, sm && t ? tg_mul(T, g, tg_sub(T, sm, t)) : NULL, dx);
    }
    if (!st && probs && need[1])
        st = put(need, 1, g ? tg_neg(T, tg_mul(T, g, tg_log_softmax(T, x, -1))) : NULL, dx);
    return st;
}

/* dx = dterm A with A a constant: 1/C at each violated class c, -(their count)/C
 * at the label, NaN where the margin is NaN (the kernel's factors) */
static enum tg_status margin_vjp(VJP_ARGS)
{
    struct tg_tensor *x = o->in[0], *lab = o->in[1];
    if (need[1]) dx[1] = NULL;
    if (!need[0]) return TG_OK;
    int64_t rows, C;
    rows_of(x, &rows, &C);
    double margin = o->p.f[1];
    struct tg_tensor *g = dterm_of(T, o, dy, rows, true), *A = const_like(T, o, x);
    for (int64_t n = 0; A && n < rows; n++) {
        int64_t y = label_at(lab, n);
        double xy = tg__load(x->data, x->dtype, n * C + y), ay = 0;
        for (int64_t c = 0; c < C; c++) {
            double v = margin - xy + tg__load(x->data, x->dtype, n * C + c);
            if (c != y && !(v <= 0)) {
                double d = v > 0 ? 1 / (double)C : v;
                tg__store(A->data, A->dtype, n * C + c, d);
                ay -= d;
            }
        }
        tg__store(A->data, A->dtype, n * C + y, ay);
    }
    return put(need, 0, g && A ? tg_mul(T, g, A) : NULL, dx);
}

const struct tg_op_desc tg_op_desc_cross_entropy = {
    .op = TG_OP_CROSS_ENTROPY,
    .name = "cross_entropy",
    .arity = 2,
    .formula = "term_n = log sum_c e^(x_nc) - x_n,y_n (fused log-softmax, max-subtracted)",
    .vjp = "dx_nc += (softmax(x_n)_c - [c = y_n]) dterm_n; labels get none",
    .shape = rows_shape,
    .scratch = lse_scratch,
    .forward = ce_fwd,
    .backward = ce_bwd,
    .mixed_dtypes = true,
    .params = reduction_param,
    .vjp_graph = ce_vjp,
    .operands = "x y -> term"};
const struct tg_op_desc tg_op_desc_cross_entropy_probs = {
    .op = TG_OP_CROSS_ENTROPY_PROBS,
    .name = "cross_entropy_probs",
    .arity = 2,
    .formula = "term_n = -sum_c t_nc log_softmax(x_n)_c",
    .vjp = "dx_nc += (softmax(x_n)_c sum_c' t_nc' - t_nc) dterm_n; dt_nc -= log_softmax(x_n)_c "
           "dterm_n",
    .shape = rows_shape,
    .scratch = lse_scratch,
    .forward = ce_fwd,
    .backward = ce_bwd,
    .mixed_dtypes = false,
    .params = reduction_param,
    .vjp_graph = ce_vjp,
    .operands = "x t -> term"};
const struct tg_op_desc tg_op_desc_multi_margin = {
    .op = TG_OP_MULTI_MARGIN,
    .name = "multi_margin",
    .arity = 2,
    .formula = "term_n = (1/C) sum_{c != y_n} max(0, margin - x_n,y_n + x_nc)",
    .vjp = "each violated c: dx_nc += dterm_n / C, dx_n,y_n -= dterm_n / C; labels get none",
    .shape = rows_shape,
    .forward = margin_fwd,
    .backward = margin_bwd,
    .mixed_dtypes = true,
    .params = margin_params,
    .vjp_graph = margin_vjp,
    .operands = "x y -> term"};

struct tg_tensor *tg_cross_entropy(struct tg_tape *T, struct tg_tensor *logits,
                                   struct tg_tensor *labels, enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_cross_entropy, 2, logits, labels, r, 0);
}
struct tg_tensor *tg_cross_entropy_probs(struct tg_tape *T, struct tg_tensor *logits,
                                         struct tg_tensor *targets, enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_cross_entropy_probs, 2, logits, targets, r, 0);
}
struct tg_tensor *tg_multi_margin(struct tg_tape *T, struct tg_tensor *scores,
                                  struct tg_tensor *labels, double margin, enum tg_reduction r)
{
    return record_loss(T, &tg_op_desc_multi_margin, 2, scores, labels, r, margin);
}

struct tg_tensor *tg_cross_entropy_idx(struct tg_tape *T, struct tg_tensor *logits,
                                       const int64_t *labels, int64_t n, enum tg_reduction r)
{
    if (!logits || !T) return tg_cross_entropy(T, logits, NULL, r);
    if (!labels) {
        tg__fail(TG_ERR_NULL, "cross_entropy: labels is NULL");
        return NULL;
    }
    if (logits->rank < 1) {
        tg__fail(TG_ERR_SHAPE, "cross_entropy: logits must have a class axis");
        return NULL;
    }
    int64_t rows, C;
    rows_of(logits, &rows, &C);
    if (n != rows) {
        char s[160];
        tg_tensor_format_shape(s, sizeof s, logits->rank, logits->shape);
        tg__fail(TG_ERR_SHAPE, "cross_entropy: %lld labels for logits %s (%lld samples)",
                 (long long)n, s, (long long)rows);
        return NULL;
    }
    struct tg_tensor *lab = tg_tape_constant(T, TG_F64, logits->rank - 1, logits->shape, NULL);
    if (!lab) return NULL;
    for (int64_t i = 0; i < n; i++) ((double *)lab->data)[i] = (double)labels[i];
    return tg_cross_entropy(T, logits, lab, r);
}
