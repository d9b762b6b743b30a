/*
 * ops/conv.c - 2-d convolution (NCHW, stride, padding, dilation, groups) and its
 * two adjoints, each an op: conv2d, conv2d_input_grad, conv2d_weight_grad; and
 * conv1d, recorded as conv2d with height 1.
 *
 * Every product is a GEMM (im2col) over a chunk of samples: with cols (C kh kw,
 * nc OH OW) the chunk's input patches (ops/conv-kernels.inc) and yt (O, nc OH OW)
 * its output with the first two axes swapped, group g computes
 *     forward        yt_g (Og, ld)    = W_g (Og, Cg kk) cols_g (Cg kk, ld)
 *     weight grad    dW_g (Og, Cg kk) += yt_g (Og, ld) cols_g^T (ld, Cg kk)
 *     input grad     cols_g (Cg kk, ld) = W_g^T (Cg kk, Og) yt_g (Og, ld), then col2im
 * (ld = nc OH OW, kk = kh kw, Og = O / groups, Cg = C / groups). A chunk holds as
 * many samples as keep cols and yt near 1 MiB each, so im2col, the GEMM and the
 * transposition or col2im after it pass their data through the cache, and the
 * GEMMs are still wide (hundreds to thousands of columns), where one small GEMM
 * per image would not keep the BLAS at its best. With n threads
 * (tapegrad/threads.h) the chunks are cut into up to n parts of consecutive
 * chunks, one per thread, each with its own pair of buffers and, in backward,
 * its own weight and bias gradient, added in part order at the end. The buffers
 * are taken from the tape when the op is recorded (by the constructor, sized from the checked
 * shapes: a shape rule must not allocate), so forward and backward never
 * allocate and a repeated step reuses the same arena memory. Backward runs one
 * pass over the chunks: the output gradient (times act'(y) when an activation
 * is fused) transposed into yt, its row sums into db, im2col of x again and the
 * dW product, then the dx product and col2im.
 *
 * The adjoints are what conv2d's vjp_graph records, so that a convolution's
 * gradient can be differentiated again: conv2d_input_grad(dy, W) is the
 * transposed convolution, conv2d_weight_grad(x, dy) the correlation of x and dy.
 */
#include <limits.h>
#include <stdio.h>
#include "ops-impl.h"

/* What every node of this file keeps in aux: the geometry and the buffers. */
struct conv_geom {
    int64_t N, C, H, W, O, kh, kw, OH, OW; /* x (N,C,H,W), W (O,C/G,kh,kw), y (N,O,OH,OW) */
    struct tg_conv_params p;
    int64_t nc; /* samples per chunk */
    int parts;  /* the batch's parts (tapegrad/threads.h): one per thread */
    void *cols; /* per part: (C kh kw, nc OH OW) of the node's dtype */
    void *yt;   /* per part: (O, nc OH OW) */
    void *gw;   /* parts 1.. : a weight gradient (O, C/G, kh, kw) and a bias gradient (O) */
    int64_t n_cols, n_yt, n_gw; /* elements of each of a part's buffers */
};

#define T float
#include "conv-kernels.inc"
#undef T
#define T double
#include "conv-kernels.inc"
#undef T

struct tg_conv_params tg_conv_params_default(void)
{
    return (struct tg_conv_params){{1, 1}, {0, 0}, {1, 1}, 1, TG_ACT_NONE};
}

enum conv_kind { KIND_CONV, KIND_INPUT_GRAD, KIND_WEIGHT_GRAD };

/* ---- checks ---- */

static enum tg_status check_params(const char *fn, const struct tg_conv_params *p)
{
    for (int d = 0; d < 2; d++)
        if (p->stride[d] < 1 || p->stride[d] > INT_MAX || p->dilation[d] < 1 ||
            p->dilation[d] > INT_MAX || p->padding[d] < 0 || p->padding[d] > INT_MAX)
            return tg__fail(TG_ERR_VALUE,
                            "%s: stride (%lld,%lld) and dilation (%lld,%lld) must lie in 1..%d "
                            "and padding (%lld,%lld) in 0..%d",
                            fn, (long long)p->stride[0], (long long)p->stride[1],
                            (long long)p->dilation[0], (long long)p->dilation[1], INT_MAX,
                            (long long)p->padding[0], (long long)p->padding[1], INT_MAX);
    if (p->act != TG_ACT_NONE &&
        (strcmp(fn, "conv2d") != 0 ||
         (p->act != TG_ACT_RELU && p->act != TG_ACT_TANH && p->act != TG_ACT_SIGMOID)))
        return tg__fail(TG_ERR_VALUE,
                        "%s: activation %d cannot be fused (conv2d takes none, relu, tanh or "
                        "sigmoid; its adjoints none)",
                        fn, (int)p->act);
    if (p->groups < 1 || p->groups > INT_MAX)
        return tg__fail(TG_ERR_VALUE, "%s: groups %lld must lie in 1..%d", fn, (long long)p->groups,
                        INT_MAX);
    return TG_OK;
}

/* The output size along one axis, or -1 when the (dilated) kernel is larger
 * than the padded input (or a size overflows). */
static int64_t out_size(int64_t in, int64_t k, int64_t pad, int64_t dil, int64_t stride)
{
    int64_t ek, num;
    if (__builtin_mul_overflow(dil, k - 1, &ek) || __builtin_add_overflow(in, 2 * pad, &num) ||
        num < ek + 1)
        return -1;
    return (num - ek - 1) / stride + 1;
}

/* "fn: x (2,3,5,5) and W (4,3,3,3) <why>" */
static enum tg_status fail2(enum tg_status st, const char *fn, const char *na,
                            const struct tg_tensor *a, const char *nb, const struct tg_tensor *b,
                            const char *why)
{
    char sa[160], sb[160];
    tg_tensor_format_shape(sa, sizeof sa, a->rank, a->shape);
    tg_tensor_format_shape(sb, sizeof sb, b->rank, b->shape);
    return tg__fail(st, "%s: %s %s and %s %s %s", fn, na, sa, nb, sb, why);
}

/* N, C, H, W, O, kh, kw from the inputs of an op of `kind` (the sizes that are
 * not the inputs' own: H and W of input_grad, kh and kw of weight_grad, already
 * in g). a, b: conv (x, W), input_grad (dy, W), weight_grad (x, dy). */
static enum tg_status sizes_of(const char *fn, enum conv_kind kind, const struct tg_tensor *a,
                               const struct tg_tensor *b, struct conv_geom *g)
{
    const char *na = kind == KIND_INPUT_GRAD ? "dy" : "x",
               *nb = kind == KIND_WEIGHT_GRAD ? "dy" : "W";
    if (a->rank != 4 || b->rank != 4)
        return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, "must both have rank 4 (NCHW)");
    int64_t G = g->p.groups;
    g->N = a->shape[0];
    if (kind == KIND_CONV) {
        g->C = a->shape[1], g->H = a->shape[2], g->W = a->shape[3];
        g->O = b->shape[0], g->kh = b->shape[2], g->kw = b->shape[3];
    } else if (kind == KIND_INPUT_GRAD) {
        g->O = b->shape[0], g->kh = b->shape[2], g->kw = b->shape[3];
        if (__builtin_mul_overflow(b->shape[1], G, &g->C))
            return fail2(TG_ERR_RANGE, fn, na, a, nb, b, "give too many channels");
    } else {
        g->C = a->shape[1], g->H = a->shape[2], g->W = a->shape[3], g->O = b->shape[1];
        if (b->shape[0] != g->N)
            return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, "differ in batch size");
    }
    if (g->C % G != 0 || g->O % G != 0) {
        char why[96];
        snprintf(why, sizeof why, "have %lld and %lld channels: groups %lld must divide both",
                 (long long)g->C, (long long)g->O, (long long)G);
        return fail2(TG_ERR_VALUE, fn, na, a, nb, b, why);
    }
    if (kind == KIND_CONV && b->shape[1] * G != g->C) {
        char why[96];
        snprintf(why, sizeof why, "do not fit: W needs %lld input channels, x has %lld",
                 (long long)(b->shape[1] * G), (long long)g->C);
        return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, why);
    }
    if (kind == KIND_INPUT_GRAD && a->shape[1] != g->O)
        return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, "do not fit (dy's channels are W's outputs)");
    return TG_OK;
}

/* The whole geometry of an op of `kind` with inputs a and b (g->p and the sizes
 * not given by the inputs already set), with every size the GEMMs and buffers
 * use checked: errors name fn and the shapes. */
static enum tg_status conv_check(const char *fn, enum conv_kind kind, const struct tg_tensor *a,
                                 const struct tg_tensor *b, const struct tg_tensor *bias,
                                 struct conv_geom *g)
{
    if (check_params(fn, &g->p) || sizes_of(fn, kind, a, b, g)) return tg_last_status();
    const char *na = kind == KIND_INPUT_GRAD ? "dy" : "x",
               *nb = kind == KIND_WEIGHT_GRAD ? "dy" : "W";
    g->OH = out_size(g->H, g->kh, g->p.padding[0], g->p.dilation[0], g->p.stride[0]);
    g->OW = out_size(g->W, g->kw, g->p.padding[1], g->p.dilation[1], g->p.stride[1]);
    if (g->OH < 1 || g->OW < 1 || g->kh < 1 || g->kw < 1) {
        char why[200];
        snprintf(why, sizeof why,
                 "give no output: kernel (%lld,%lld) with dilation (%lld,%lld) is larger than "
                 "the input (%lld,%lld) padded by (%lld,%lld)",
                 (long long)g->kh, (long long)g->kw, (long long)g->p.dilation[0],
                 (long long)g->p.dilation[1], (long long)g->H, (long long)g->W,
                 (long long)g->p.padding[0], (long long)g->p.padding[1]);
        return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, why);
    }
    const struct tg_tensor *dyt = kind == KIND_INPUT_GRAD ? a : kind == KIND_WEIGHT_GRAD ? b : NULL;
    if (dyt && (dyt->shape[2] != g->OH || dyt->shape[3] != g->OW)) {
        char why[120];
        snprintf(why, sizeof why, "do not fit: the convolution's output is (%lld,%lld) spatially",
                 (long long)g->OH, (long long)g->OW);
        return fail2(TG_ERR_SHAPE, fn, na, a, nb, b, why);
    }
    if (bias && (bias->rank != 1 || bias->shape[0] != g->O)) {
        char sb[160];
        tg_tensor_format_shape(sb, sizeof sb, bias->rank, bias->shape);
        return tg__fail(TG_ERR_SHAPE, "%s: bias %s must have shape (%lld) for W's %lld outputs", fn,
                        sb, (long long)g->O, (long long)g->O);
    }
    int64_t l, nl, kk, rows, cells, ycells;
    if (__builtin_mul_overflow(g->OH, g->OW, &l) || __builtin_mul_overflow(l, g->N, &nl) ||
        __builtin_mul_overflow(g->kh, g->kw, &kk) || __builtin_mul_overflow(g->C, kk, &rows) ||
        __builtin_mul_overflow(rows, nl, &cells) || __builtin_mul_overflow(g->O, nl, &ycells) ||
        nl > INT_MAX || rows > INT_MAX || g->O > INT_MAX || cells > INT64_MAX / 16 ||
        ycells > INT64_MAX / 16)
        return fail2(TG_ERR_RANGE, fn, na, a, nb, b, "need matrices larger than the BLAS takes");
    return TG_OK;
}

/* The node's geometry as the constructor stored it, checked again on the node's
 * inputs; the output shape into out. */
static enum tg_status conv_shape_of(struct tg_tensor *out, enum conv_kind kind)
{
    struct conv_geom *g = out->aux;
    const char *fn = out->desc->name;
    if (!g) return tg__fail(TG_ERR_STATE, "%s: no geometry", fn);
    if (conv_check(fn, kind, out->in[0], out->in[1], out->n_in > 2 ? out->in[2] : NULL, g))
        return tg_last_status();
    int64_t s[3][4] = {{g->N, g->O, g->OH, g->OW},
                       {g->N, g->C, g->H, g->W},
                       {g->O, g->C / g->p.groups, g->kh, g->kw}};
    memcpy(out->shape, s[kind], sizeof s[kind]);
    out->rank = 4;
    return TG_OK;
}
static enum tg_status conv2d_shape(struct tg_tensor *out)
{
    return conv_shape_of(out, KIND_CONV);
}
static enum tg_status input_grad_shape(struct tg_tensor *out)
{
    return conv_shape_of(out, KIND_INPUT_GRAD);
}
static enum tg_status weight_grad_shape(struct tg_tensor *out)
{
    return conv_shape_of(out, KIND_WEIGHT_GRAD);
}

/* ---- the three products (dt: the dtype; every buffer of that dtype) ---- */

#define DISPATCH(dt, name, ...)                                                                    \
    do {                                                                                           \
        if ((dt) == TG_F64)                                                                        \
            name##_double(__VA_ARGS__);                                                            \
        else                                                                                       \
            name##_float(__VA_ARGS__);                                                             \
    } while (0)

/* Samples per chunk: the chunk's cols and yt take at most about 1 MiB each, so
 * that every data movement reads what the GEMM before it wrote from the cache,
 * and the GEMMs still have nc OH OW >= a few hundred columns. */
static int64_t chunk_samples(const struct conv_geom *g, size_t es)
{
    int64_t rows = g->C * g->kh * g->kw > g->O ? g->C * g->kh * g->kw : g->O;
    int64_t per = rows * g->OH * g->OW * (int64_t)es, n = per > 0 ? (1 << 20) / per : g->N;
    return n < 1 ? 1 : n > g->N ? g->N : n;
}

/* Part w's chunks: the chunks [w nch / parts, (w + 1) nch / parts) of the
 * nch = ceil(N / nc) chunks; n0 the first sample of a chunk, nn its samples,
 * ld = nn OH OW columns. */
#define FOR_CHUNKS(g, w, n0, nn, ld)                                                               \
    for (int64_t nch_ = ((g)->N + (g)->nc - 1) / (g)->nc, c_ = nch_ * (w) / (g)->parts,            \
                 ce_ = nch_ * ((w) + 1) / (g)->parts, n0, nn, ld;                                  \
         c_ < ce_; c_++)                                                                           \
        if ((n0 = c_ * (g)->nc), (nn = (g)->N - n0 < (g)->nc ? (g)->N - n0 : (g)->nc),             \
            (ld = nn * (g)->OH * (g)->OW), 1)

/* The GEMM sizes of one group: Og outputs, K = Cg kh kw rows of cols. */
#define GROUP_SIZES(g)                                                                             \
    int64_t G = (g)->p.groups, Og = (g)->O / G, K = (g)->C / G * (g)->kh * (g)->kw

/* One pass of run_conv or run_backward, split into the node's parts. */
struct conv_job {
    struct conv_geom *g;
    int dt;
    const void *x, *W, *b, *dy, *y;
    void *out, *db, *dW, *dx;
    bool acc;
};

/* Part w's buffers. */
static void *part_buf(const struct conv_job *j, void *base, int64_t n, int w)
{
    return (char *)base + (size_t)(n * w) * tg__esize(j->dt);
}

/* y (N,O,OH,OW) = (or += when acc) act(conv(x, W) + b) (b may be NULL), part w */
static void conv_part(void *ctx, int w)
{
    const struct conv_job *j = ctx;
    struct conv_geom *g = j->g;
    int dt = j->dt;
    size_t es = tg__esize(dt);
    void *cols = part_buf(j, g->cols, g->n_cols, w), *yt = part_buf(j, g->yt, g->n_yt, w);
    GROUP_SIZES(g);
    FOR_CHUNKS(g, w, n0, nn, ld)
    {
        DISPATCH(dt, im2col, g, j->x, n0, nn, cols, ld);
        for (int64_t k = 0; k < G; k++) /* yt_g (Og, ld) = W_g (Og, K) cols_g (K, ld) */
            tg__gemm(dt, false, false, Og, ld, K, 1.0,
                     (const char *)j->W + (size_t)(k * Og * K) * es, K,
                     (const char *)cols + (size_t)(k * K * ld) * es, ld, 0.0,
                     (char *)yt + (size_t)(k * Og * ld) * es, ld);
        DISPATCH(dt, yt_to_y, g, yt, ld, n0, nn, j->b, j->out, j->acc);
    }
}

static void run_conv(struct conv_geom *g, int dt, const void *x, const void *W, const void *b,
                     void *y, bool acc)
{
    struct conv_job j = {.g = g, .dt = dt, .x = x, .W = W, .b = b, .out = y, .acc = acc};
    tg__parallel(g->parts, conv_part, &j);
}

/* run_backward's part w; parts after the first add their weight and bias
 * gradients into their own buffers (zeroed here), which run_backward adds up. */
static void backward_part(void *ctx, int w)
{
    const struct conv_job *j = ctx;
    struct conv_geom *g = j->g;
    int dt = j->dt;
    size_t es = tg__esize(dt);
    void *cols = part_buf(j, g->cols, g->n_cols, w), *yt = part_buf(j, g->yt, g->n_yt, w);
    void *dW = j->dW, *db = j->db;
    if (w > 0 && (dW || db)) {
        void *own = part_buf(j, g->gw, g->n_gw, w - 1);
        memset(own, 0, (size_t)g->n_gw * es);
        dW = dW ? own : NULL;
        db = db ? (char *)own + (size_t)(g->n_gw - g->O) * es : NULL;
    }
    GROUP_SIZES(g);
    FOR_CHUNKS(g, w, n0, nn, ld)
    {
        DISPATCH(dt, dy_to_yt, g, j->dy, j->y ? j->y : j->dy, n0, nn, yt, ld);
        if (db) DISPATCH(dt, bias_grad_yt, g, yt, ld, ld, db);
        if (dW) {
            DISPATCH(dt, im2col, g, j->x, n0, nn, cols, ld);
            for (int64_t k = 0; k < G; k++) /* dW_g (Og, K) += yt_g (Og, ld) cols_g^T (ld, K) */
                tg__gemm(dt, false, true, Og, K, ld, 1.0,
                         (const char *)yt + (size_t)(k * Og * ld) * es, ld,
                         (const char *)cols + (size_t)(k * K * ld) * es, ld, 1.0,
                         (char *)dW + (size_t)(k * Og * K) * es, K);
        }
        if (j->dx) {
            for (int64_t k = 0; k < G; k++) /* cols_g (K, ld) = W_g^T (K, Og) yt_g (Og, ld) */
                tg__gemm(dt, true, false, K, ld, Og, 1.0,
                         (const char *)j->W + (size_t)(k * Og * K) * es, K,
                         (const char *)yt + (size_t)(k * Og * ld) * es, ld, 0.0,
                         (char *)cols + (size_t)(k * K * ld) * es, ld);
            DISPATCH(dt, col2im, g, cols, ld, n0, nn, j->dx);
        }
    }
}

/* dst[i] += src[i], i < n */
static void add_into(int dt, void *dst, const void *src, int64_t n)
{
    if (dt == TG_F64)
        for (int64_t i = 0; i < n; i++) ((double *)dst)[i] += ((const double *)src)[i];
    else
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] += ((const float *)src)[i];
}

/* With G = dy * act'(y) (y NULL: no activation): db += sum_{n,i,j} G (db may be
 * NULL); dW += G (*) x (dW NULL: skipped; x is then not read); dx += conv^T(G, W)
 * (dx NULL: skipped). One pass over the chunks, in parts; the parts' weight and
 * bias gradients are added in part order. */
static void run_backward(struct conv_geom *g, int dt, const void *dy, const void *y, const void *x,
                         const void *W, void *db, void *dW, void *dx)
{
    struct conv_job j = {
        .g = g, .dt = dt, .dy = dy, .y = y, .x = x, .W = W, .db = db, .dW = dW, .dx = dx};
    tg__parallel(g->parts, backward_part, &j);
    size_t es = tg__esize(dt);
    for (int w = 1; w < g->parts && (dW || db); w++) {
        const char *own = part_buf(&j, g->gw, g->n_gw, w - 1);
        if (dW) add_into(dt, dW, own, g->n_gw - g->O);
        if (db) add_into(dt, db, own + (size_t)(g->n_gw - g->O) * es, g->O);
    }
}

/* ---- conv2d: in (x, W[, b]) ---- */

/* y = act(conv(x, W) + b) */
static void conv2d_fwd(struct tg_tensor *o)
{
    run_conv(o->aux, o->dtype, o->in[0]->data, o->in[1]->data, o->n_in > 2 ? o->in[2]->data : NULL,
             o->data, false);
}

/* with G = dy * act'(y): db += sum_{n,i,j} G; dW += G (*) x; dx += conv^T(G, W) */
static void conv2d_bwd(struct tg_tensor *o)
{
    struct conv_geom *g = o->aux;
    struct tg_tensor *x = o->in[0], *W = o->in[1], *b = o->n_in > 2 ? o->in[2] : NULL;
    run_backward(g, o->dtype, o->grad, g->p.act == TG_ACT_NONE ? NULL : o->data, x->data, W->data,
                 b && b->requires_grad ? b->grad : NULL, W->requires_grad ? W->grad : NULL,
                 x->requires_grad ? x->grad : NULL);
}

/* The parameters of every conv op: stride, padding, dilation (h, w each),
 * groups; then the adjoints' given sizes. */
static int conv_params_of(const struct tg_tensor *o, double *v)
{
    const struct conv_geom *g = o->aux;
    const struct tg_conv_params *p = &g->p;
    double all[8] = {(double)p->stride[0],  (double)p->stride[1],   (double)p->padding[0],
                     (double)p->padding[1], (double)p->dilation[0], (double)p->dilation[1],
                     (double)p->groups,     (double)p->act};
    memcpy(v, all, sizeof all);
    return 8;
}
static int input_grad_params(const struct tg_tensor *o, double *v)
{
    const struct conv_geom *g = o->aux;
    int n = conv_params_of(o, v);
    v[n++] = (double)g->H;
    v[n++] = (double)g->W;
    return n;
}
static int weight_grad_params(const struct tg_tensor *o, double *v)
{
    const struct conv_geom *g = o->aux;
    int n = conv_params_of(o, v);
    v[n++] = (double)g->kh;
    v[n++] = (double)g->kw;
    return n;
}

/* g = dy * act'(y) (relu's mask [y > 0] a constant, NaN at a NaN); dx =
 * conv2d_input_grad(g, W); dW = conv2d_weight_grad(x, g); db = sum of g over
 * axes 0, 2, 3. The adjoints take the options without the activation. */
static enum tg_status conv2d_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                 const bool *need, struct tg_tensor **dx)
{
    const struct conv_geom *g = o->aux;
    struct tg_conv_params p = g->p;
    struct tg_tensor *G = dy;
    p.act = TG_ACT_NONE;
    if (!need[0] && !need[1] && !(o->n_in > 2 && need[2])) return TG_OK; /* nothing recorded */
    if (g->p.act == TG_ACT_RELU) {
        struct tg_tensor *m = tg__vjp_const(T, o->dtype, o->rank, o->shape);
        for (int64_t i = 0; m && i < o->numel; i++) {
            double v = tg__load(o->data, o->dtype, i);
            tg__store(m->data, m->dtype, i, v > 0 ? 1 : (v <= 0 ? 0 : v));
        }
        G = m ? tg_mul(T, dy, m) : NULL;
    } else if (g->p.act == TG_ACT_TANH) {
        G = tg_mul(T, dy, tg_rsub_scalar(T, 1, tg_mul(T, o, o)));
    } else if (g->p.act == TG_ACT_SIGMOID) {
        G = tg_mul(T, dy, tg_mul(T, o, tg_rsub_scalar(T, 1, o)));
    }
    if (!G) return tg__vjp_failure();
    if (need[0] && !(dx[0] = tg_conv2d_input_grad(T, G, o->in[1], g->H, g->W, &p)))
        return tg__vjp_failure();
    if (need[1] && !(dx[1] = tg_conv2d_weight_grad(T, o->in[0], G, g->kh, g->kw, &p)))
        return tg__vjp_failure();
    if (o->n_in > 2 && need[2] && !(dx[2] = tg_sum_axes(T, G, (int[]){0, 2, 3}, 3, false)))
        return tg__vjp_failure();
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_conv2d = {
    .op = TG_OP_CONV2D,
    .name = "conv2d",
    .arity = -1,
    .formula = "y[n,o,i,j] = act(b[o] + sum_{c,p,q} W[o,c,p,q] x[n, g Cg + c, i sh - ph + p dh, "
               "j sw - pw + q dw])",
    .vjp = "g = dy * act'(y); dx += conv2d_input_grad(g, W); dW += conv2d_weight_grad(x, g); "
           "db += sum_{n,i,j} g",
    .shape = conv2d_shape,
    .forward = conv2d_fwd,
    .backward = conv2d_bwd,
    .params = conv_params_of,
    .vjp_graph = conv2d_vjp};

/* ---- conv2d_input_grad: in (dy, W), out x-shaped ---- */

/* dx = conv^T(dy, W) */
static void input_grad_fwd(struct tg_tensor *o)
{
    memset(o->data, 0, (size_t)o->numel * tg__esize(o->dtype));
    run_backward(o->aux, o->dtype, o->in[0]->data, NULL, NULL, o->in[1]->data, NULL, NULL, o->data);
}

/* with G = out's gradient: d(dy) += conv(G, W); dW += G (*) dy (the weight
 * gradient of a convolution of G, its output gradient dy) */
static void input_grad_bwd(struct tg_tensor *o)
{
    struct conv_geom *g = o->aux;
    struct tg_tensor *dy = o->in[0], *W = o->in[1];
    if (dy->requires_grad) run_conv(g, o->dtype, o->grad, W->data, NULL, dy->grad, true);
    if (W->requires_grad)
        run_backward(g, o->dtype, dy->data, NULL, o->grad, NULL, NULL, W->grad, NULL);
}

/* d(dy) = conv2d(G, W); dW = conv2d_weight_grad(G, dy) */
static enum tg_status input_grad_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *G,
                                     const bool *need, struct tg_tensor **dx)
{
    const struct conv_geom *g = o->aux;
    if (need[0] && !(dx[0] = tg_conv2d(T, G, o->in[1], NULL, &g->p))) return tg__vjp_failure();
    if (need[1] && !(dx[1] = tg_conv2d_weight_grad(T, G, o->in[0], g->kh, g->kw, &g->p)))
        return tg__vjp_failure();
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_conv2d_input_grad = {
    .op = TG_OP_CONV2D_INPUT_GRAD,
    .name = "conv2d_input_grad",
    .arity = 2,
    .formula = "y[n, g Cg + c, i sh - ph + p dh, j sw - pw + q dw] += sum_o W[o,c,p,q] "
               "u[n,o,i,j] (transposed convolution of u, a gradient of conv2d's output)",
    .vjp = "du += conv2d(dy, W); dW += conv2d_weight_grad(dy, u)",
    .operands = "u W -> y",
    .shape = input_grad_shape,
    .forward = input_grad_fwd,
    .backward = input_grad_bwd,
    .params = input_grad_params,
    .vjp_graph = input_grad_vjp};

/* ---- conv2d_weight_grad: in (x, dy), out W-shaped ---- */

/* dW = x (*) dy */
static void weight_grad_fwd(struct tg_tensor *o)
{
    memset(o->data, 0, (size_t)o->numel * tg__esize(o->dtype));
    run_backward(o->aux, o->dtype, o->in[1]->data, NULL, o->in[0]->data, NULL, NULL, o->data, NULL);
}

/* with G = out's gradient: d(dy) += conv(x, G); dx += conv^T(dy, G) */
static void weight_grad_bwd(struct tg_tensor *o)
{
    struct conv_geom *g = o->aux;
    struct tg_tensor *x = o->in[0], *dy = o->in[1];
    if (dy->requires_grad) run_conv(g, o->dtype, x->data, o->grad, NULL, dy->grad, true);
    if (x->requires_grad)
        run_backward(g, o->dtype, dy->data, NULL, NULL, o->grad, NULL, NULL, x->grad);
}

/* dx = conv2d_input_grad(dy, G); d(dy) = conv2d(x, G) */
static enum tg_status weight_grad_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *G,
                                      const bool *need, struct tg_tensor **dx)
{
    const struct conv_geom *g = o->aux;
    if (need[0] && !(dx[0] = tg_conv2d_input_grad(T, o->in[1], G, g->H, g->W, &g->p)))
        return tg__vjp_failure();
    if (need[1] && !(dx[1] = tg_conv2d(T, o->in[0], G, NULL, &g->p))) return tg__vjp_failure();
    return TG_OK;
}

const struct tg_op_desc tg_op_desc_conv2d_weight_grad = {
    .op = TG_OP_CONV2D_WEIGHT_GRAD,
    .name = "conv2d_weight_grad",
    .arity = 2,
    .formula = "y[o,c,p,q] = sum_{n,i,j} u[n,o,i,j] x[n, g Cg + c, i sh - ph + p dh, "
               "j sw - pw + q dw] (u: a gradient of conv2d's output)",
    .vjp = "dx += conv2d_input_grad(u, dy); du += conv2d(x, dy)",
    .operands = "x u -> y",
    .shape = weight_grad_shape,
    .forward = weight_grad_fwd,
    .backward = weight_grad_bwd,
    .params = weight_grad_params,
    .vjp_graph = weight_grad_vjp};

/* ---- constructors ---- */

/* Records an op of desc/kind on inputs in[0..n) with the geometry g (params and
 * given sizes set). Inputs that cannot be recorded go straight to the recorder,
 * which reports them; otherwise the geometry is checked here, so that the
 * buffers can be sized, and the node gets them in its aux. */
static struct tg_tensor *conv_record(struct tg_tape *T, const struct tg_op_desc *desc,
                                     enum conv_kind kind, int n, struct tg_tensor *const *in,
                                     struct conv_geom g)
{
    bool ok = T != NULL;
    for (int i = 0; ok && i < n; i++) ok = in[i] != NULL;
    if (!ok) return tg__op_record(T, desc, n, in, NULL, NULL); /* it names what is missing */
    for (int i = 0; i < n; i++) {
        if (tg__check_input(T, desc->name, in[i])) return NULL;
        if (in[i]->dtype != in[0]->dtype) {
            tg__fail(TG_ERR_DTYPE, "%s: inputs have different dtypes (%s and %s)", desc->name,
                     tg_dtype_name((enum tg_dtype)in[0]->dtype),
                     tg_dtype_name((enum tg_dtype)in[i]->dtype));
            return NULL;
        }
    }
    if (conv_check(desc->name, kind, in[0], in[1], n > 2 ? in[2] : NULL, &g)) return NULL;
    size_t es = tg__esize(in[0]->dtype);
    g.nc = chunk_samples(&g, es);
    int64_t ncl = g.nc * g.OH * g.OW, nch = (g.N + g.nc - 1) / g.nc;
    g.parts = tg_threads_get();
    if (g.parts > nch) g.parts = nch > 0 ? (int)nch : 1;
    /* one element more: a buffer of an empty batch is still a pointer */
    g.n_cols = g.C * g.kh * g.kw * ncl + 1;
    g.n_yt = g.O * ncl + 1;
    g.n_gw = g.O * (g.C / g.p.groups) * g.kh * g.kw + g.O;
    struct conv_geom *a = tg__tape_alloc(T, sizeof *a);
    if (!a) return NULL;
    *a = g;
    a->cols = tg__tape_alloc(T, (size_t)(g.n_cols * g.parts) * es);
    a->yt = a->cols ? tg__tape_alloc(T, (size_t)(g.n_yt * g.parts) * es) : NULL;
    if (!a->yt) return NULL;
    if (g.parts > 1 && !(a->gw = tg__tape_alloc(T, (size_t)(g.n_gw * (g.parts - 1)) * es)))
        return NULL;
    return tg__op_record(T, desc, n, in, NULL, a);
}

static struct conv_geom geom_with(const struct tg_conv_params *params)
{
    struct conv_geom g = {0};
    g.p = params ? *params : tg_conv_params_default();
    return g;
}

struct tg_tensor *tg_conv2d(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, const struct tg_conv_params *params)
{
    struct tg_tensor *in[3] = {x, W, b};
    return conv_record(T, &tg_op_desc_conv2d, KIND_CONV, b ? 3 : 2, in, geom_with(params));
}

struct tg_tensor *tg_conv2d_input_grad(struct tg_tape *T, struct tg_tensor *dy, struct tg_tensor *W,
                                       int64_t in_h, int64_t in_w,
                                       const struct tg_conv_params *params)
{
    struct tg_tensor *in[2] = {dy, W};
    struct conv_geom g = geom_with(params);
    if (in_h < 1 || in_w < 1) {
        tg__fail(TG_ERR_VALUE, "conv2d_input_grad: input size (%lld,%lld) must be positive",
                 (long long)in_h, (long long)in_w);
        return NULL;
    }
    g.H = in_h, g.W = in_w;
    return conv_record(T, &tg_op_desc_conv2d_input_grad, KIND_INPUT_GRAD, 2, in, g);
}

struct tg_tensor *tg_conv2d_weight_grad(struct tg_tape *T, struct tg_tensor *x,
                                        struct tg_tensor *dy, int64_t kh, int64_t kw,
                                        const struct tg_conv_params *params)
{
    struct tg_tensor *in[2] = {x, dy};
    struct conv_geom g = geom_with(params);
    if (kh < 1 || kw < 1) {
        tg__fail(TG_ERR_VALUE, "conv2d_weight_grad: kernel size (%lld,%lld) must be positive",
                 (long long)kh, (long long)kw);
        return NULL;
    }
    g.kh = kh, g.kw = kw;
    return conv_record(T, &tg_op_desc_conv2d_weight_grad, KIND_WEIGHT_GRAD, 2, in, g);
}

/* conv1d: (N,C,L) -> (N,C,1,L), W (O,Cg,K) -> (O,Cg,1,K), conv2d, back to rank 3 */
struct tg_tensor *tg_conv1d(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, int64_t stride, int64_t padding, int64_t dilation,
                            int64_t groups)
{
    if (!x || !W) {
        tg__null_input("conv1d", x ? "W" : "x");
        return NULL;
    }
    if (!T) {
        tg__fail(TG_ERR_NULL, "conv1d: tape is NULL");
        return NULL;
    }
    if (tg__check_input(T, "conv1d", x) || tg__check_input(T, "conv1d", W)) return NULL;
    if (x->rank != 3 || W->rank != 3) {
        fail2(TG_ERR_SHAPE, "conv1d", "x", x, "W", W, "must both have rank 3 (N, C, L)");
        return NULL;
    }
    struct tg_conv_params p = {{1, stride}, {0, padding}, {1, dilation}, groups, TG_ACT_NONE};
    int64_t xs[4] = {x->shape[0], x->shape[1], 1, x->shape[2]};
    int64_t ws[4] = {W->shape[0], W->shape[1], 1, W->shape[2]};
    struct tg_tensor *y = tg_conv2d(T, tg_reshape(T, x, 4, xs), tg_reshape(T, W, 4, ws), b, &p);
    if (!y) {
        tg__rename_failure("conv2d", "conv1d");
        return NULL;
    }
    return tg_reshape(T, y, 3, (int64_t[]){y->shape[0], y->shape[1], y->shape[3]});
}
