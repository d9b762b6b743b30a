/*
 * ops/pool.c - 2-d max and average pooling over NCHW images.
 *
 * Max pooling records, for every output element, where its window's maximum
 * lies (an index into the input plane, kept in the tape with the node), so that
 * backward is one scatter-add and its differentiable VJP a scatter_add op on the
 * flattened planes with those positions (piecewise constant in x). Average
 * pooling counts the padding (PyTorch's count_include_pad=True), which makes it
 * a depthwise convolution with the constant kernel 1/(kh kw): its
 * differentiable VJP is that convolution's adjoint, conv2d_input_grad.
 * Padding is at most half the kernel (PyTorch's rule), so every window holds at
 * least one element of x.
 */
#include <limits.h>
#include <stdio.h>
#include "ops-impl.h"

struct pool_geom {
    int64_t N, C, H, W, OH, OW; /* x (N,C,H,W), y (N,C,OH,OW) */
    struct tg_pool_params p;
    int32_t *arg; /* max: (N C OH OW) positions i W + j of the maxima in their plane */
};

/* The geometry of x with g->p set, checked; errors name fn and x's shape. */
static enum tg_status pool_check(const char *fn, const struct tg_tensor *x, struct pool_geom *g)
{
    char sx[160];
    tg_tensor_format_shape(sx, sizeof sx, x->rank, x->shape);
    const struct tg_pool_params *p = &g->p;
    for (int d = 0; d < 2; d++)
        if (p->kernel[d] < 1 || p->kernel[d] > INT_MAX || p->stride[d] < 1 ||
            p->stride[d] > INT_MAX || p->padding[d] < 0 || 2 * p->padding[d] > p->kernel[d])
            return tg__fail(TG_ERR_VALUE,
                            "%s: kernel (%lld,%lld) and stride (%lld,%lld) must lie in 1..%d and "
                            "padding (%lld,%lld) in 0..kernel/2 (x %s)",
                            fn, (long long)p->kernel[0], (long long)p->kernel[1],
                            (long long)p->stride[0], (long long)p->stride[1], INT_MAX,
                            (long long)p->padding[0], (long long)p->padding[1], sx);
    if (x->rank != 4) return tg__fail(TG_ERR_SHAPE, "%s: x %s must have rank 4 (NCHW)", fn, sx);
    g->N = x->shape[0], g->C = x->shape[1], g->H = x->shape[2], g->W = x->shape[3];
    int64_t oh = g->H + 2 * p->padding[0] - p->kernel[0],
            ow = g->W + 2 * p->padding[1] - p->kernel[1];
    if (oh < 0 || ow < 0)
        return tg__fail(TG_ERR_SHAPE,
                        "%s: kernel (%lld,%lld) is larger than x %s padded by (%lld,%lld)", fn,
                        (long long)p->kernel[0], (long long)p->kernel[1], sx,
                        (long long)p->padding[0], (long long)p->padding[1]);
    g->OH = oh / p->stride[0] + 1, g->OW = ow / p->stride[1] + 1;
    if (g->H * g->W > INT32_MAX)
        return tg__fail(TG_ERR_RANGE, "%s: x %s has planes of more than %d elements", fn, sx,
                        INT32_MAX);
    return TG_OK;
}

static enum tg_status pool_shape(struct tg_tensor *out)
{
    struct pool_geom *g = out->aux;
    if (!g) return tg__fail(TG_ERR_STATE, "%s: no geometry", out->desc->name);
    if (pool_check(out->desc->name, out->in[0], g)) return tg_last_status();
    int64_t s[4] = {g->N, g->C, g->OH, g->OW};
    memcpy(out->shape, s, sizeof s);
    out->rank = 4;
    return TG_OK;
}

/* kernel, stride, padding (h, w each) */
static int pool_params(const struct tg_tensor *o, double *v)
{
    const struct tg_pool_params *p = &((const struct pool_geom *)o->aux)->p;
    for (int d = 0; d < 2; d++) {
        v[d] = (double)p->kernel[d];
        v[2 + d] = (double)p->stride[d];
        v[4 + d] = (double)p->padding[d];
    }
    return 6;
}

/* The window of output row i (or column j) clipped to the input: [*lo, *hi). */
static void window(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t *lo,
                   int64_t *hi)
{
    int64_t a = i * stride - pad, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > size ? size : b;
}

/* ---- max_pool2d ---- */

#define MAX_POOL_KERNELS(T)                                                                        \
    static void max_fwd_##T(const struct pool_geom *g, const T *x, T *y, int64_t p0, int64_t p1)   \
    {                                                                                              \
        int64_t L = g->OH * g->OW, HW = g->H * g->W;                                               \
        for (int64_t pl = p0; pl < p1; pl++)                                                       \
            for (int64_t i = 0; i < g->OH; i++) {                                                  \
                int64_t h0, h1;                                                                    \
                window(i, g->p.stride[0], g->p.padding[0], g->p.kernel[0], g->H, &h0, &h1);        \
                for (int64_t j = 0; j < g->OW; j++) {                                              \
                    int64_t w0, w1;                                                                \
                    window(j, g->p.stride[1], g->p.padding[1], g->p.kernel[1], g->W, &w0, &w1);    \
                    int64_t best = h0 * g->W + w0;                                                 \
                    const T *xp = x + pl * HW;                                                     \
                    T m = xp[best];                                                                \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++) {                                        \
                            T v = xp[h * g->W + w];                                                \
                            if (v > m || (v != v && m == m)) m = v, best = h * g->W + w;           \
                        }                                                                          \
                    y[pl * L + i * g->OW + j] = m;                                                 \
                    g->arg[pl * L + i * g->OW + j] = (int32_t)best;                                \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    static void max_bwd_##T(const struct pool_geom *g, const T *dy, T *dx, int64_t p0, int64_t p1) \
    {                                                                                              \
        int64_t L = g->OH * g->OW, HW = g->H * g->W;                                               \
        for (int64_t pl = p0; pl < p1; pl++)                                                       \
            for (int64_t l = 0; l < L; l++) dx[pl * HW + g->arg[pl * L + l]] += dy[pl * L + l];    \
    }

MAX_POOL_KERNELS(float)
MAX_POOL_KERNELS(double)

/* The common 2x2 window with stride 2 and no padding, unrolled: the same
 * choices (the first maximum, NaN first) without the window loops. */
#define MAX2_TAKE(v, pos)                                                                          \
    do {                                                                                           \
        if ((v) > m || ((v) != (v) && m == m)) m = (v), best = (pos);                              \
    } while (0)
#define MAX_POOL2_KERNEL(T)                                                                        \
    static void max2_fwd_##T(const struct pool_geom *g, const T *x, T *y, int64_t p0, int64_t p1)  \
    {                                                                                              \
        int64_t W = g->W, HW = g->H * W, L = g->OH * g->OW;                                        \
        int32_t *arg = g->arg + p0 * L;                                                            \
        y += p0 * L;                                                                               \
        for (int64_t pl = p0; pl < p1; pl++)                                                       \
            for (int64_t i = 0; i < g->OH; i++) {                                                  \
                const T *r0 = x + pl * HW + 2 * i * W, *r1 = r0 + W;                               \
                int32_t base = (int32_t)(2 * i * W);                                               \
                for (int64_t j = 0; j < g->OW; j++) {                                              \
                    T m = r0[2 * j];                                                               \
                    int32_t best = base + (int32_t)(2 * j);                                        \
                    MAX2_TAKE(r0[2 * j + 1], best + 1);                                            \
                    MAX2_TAKE(r1[2 * j], base + (int32_t)(W + 2 * j));                             \
                    MAX2_TAKE(r1[2 * j + 1], base + (int32_t)(W + 2 * j + 1));                     \
                    *y++ = m;                                                                      \
                    *arg++ = best;                                                                 \
                }                                                                                  \
            }                                                                                      \
    }
MAX_POOL2_KERNEL(float)
MAX_POOL2_KERNEL(double)

static bool is_pool2(const struct pool_geom *g)
{
    const struct tg_pool_params *p = &g->p;
    return p->kernel[0] == 2 && p->kernel[1] == 2 && p->stride[0] == 2 && p->stride[1] == 2 &&
           p->padding[0] == 0 && p->padding[1] == 0;
}

/* y = the window sums / (kh kw) (fwd); dx[window] += dy / (kh kw) (bwd) */
#define AVG_POOL_KERNELS(T)                                                                        \
    static void avg_run_##T(const struct pool_geom *g, T *x, T *y, bool fwd, int64_t p0,           \
                            int64_t p1)                                                            \
    {                                                                                              \
        int64_t L = g->OH * g->OW, HW = g->H * g->W;                                               \
        T inv = (T)1 / (T)(g->p.kernel[0] * g->p.kernel[1]);                                       \
        for (int64_t pl = p0; pl < p1; pl++)                                                       \
            for (int64_t i = 0; i < g->OH; i++) {                                                  \
                int64_t h0, h1;                                                                    \
                window(i, g->p.stride[0], g->p.padding[0], g->p.kernel[0], g->H, &h0, &h1);        \
                for (int64_t j = 0; j < g->OW; j++) {                                              \
                    int64_t w0, w1;                                                                \
                    window(j, g->p.stride[1], g->p.padding[1], g->p.kernel[1], g->W, &w0, &w1);    \
                    T *xp = x + pl * HW, *yp = y + pl * L + i * g->OW + j, s = 0, d = *yp * inv;   \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++) {                                        \
                            if (fwd)                                                               \
                                s += xp[h * g->W + w];                                             \
                            else                                                                   \
                                xp[h * g->W + w] += d;                                             \
                        }                                                                          \
                    if (fwd) *yp = s * inv;                                                        \
                }                                                                                  \
            }                                                                                      \
    }
AVG_POOL_KERNELS(float)
AVG_POOL_KERNELS(double)

/* One pooling pass over the planes (n, c), in parts: planes are independent
 * (a plane's gradient only gathers from its own outputs), so the parts need
 * nothing of their own and the results do not depend on their number. */
enum pool_pass { MAX_FWD, MAX2_FWD, MAX_BWD, AVG_FWD, AVG_BWD };
struct pool_job {
    const struct pool_geom *g;
    enum pool_pass pass;
    bool f64;
    void *a, *b; /* as the kernels' two arrays */
    int parts;
};

/* Part w of a pass in element type T: planes [w planes / parts, (w+1) planes / parts). */
#define POOL_PART(T)                                                                               \
    static void pool_part_##T(const struct pool_job *j, int64_t p0, int64_t p1)                    \
    {                                                                                              \
        switch (j->pass) {                                                                         \
        case MAX_FWD:                                                                              \
            max_fwd_##T(j->g, j->a, j->b, p0, p1);                                                 \
            break;                                                                                 \
        case MAX2_FWD:                                                                             \
            max2_fwd_##T(j->g, j->a, j->b, p0, p1);                                                \
            break;                                                                                 \
        case MAX_BWD:                                                                              \
            max_bwd_##T(j->g, j->a, j->b, p0, p1);                                                 \
            break;                                                                                 \
        case AVG_FWD:                                                                              \
        case AVG_BWD:                                                                              \
            avg_run_##T(j->g, j->a, j->b, j->pass == AVG_FWD, p0, p1);                             \
            break;                                                                                 \
        }                                                                                          \
    }
POOL_PART(float)
POOL_PART(double)

static void pool_part(void *ctx, int w)
{
    const struct pool_job *j = ctx;
    int64_t planes = j->g->N * j->g->C, p0 = planes * w / j->parts,
            p1 = planes * (w + 1) / j->parts;
    if (j->f64)
        pool_part_double(j, p0, p1);
    else
        pool_part_float(j, p0, p1);
}

/* Runs a pass: in as many parts as threads when the input is large enough
 * (64 Ki elements) for the split to pay, else in one. */
static void pool_run(const struct tg_tensor *o, enum pool_pass pass, const void *a, void *b)
{
    const struct pool_geom *g = o->aux;
    int64_t planes = g->N * g->C;
    int parts = o->in[0]->numel >= (1 << 16) ? tg__parallel_width() : 1;
    struct pool_job j = {g,         pass, o->dtype == TG_F64,
                         (void *)a, b,    parts < planes ? parts : (int)(planes > 0 ? planes : 1)};
    tg__parallel(j.parts, pool_part, &j);
}

/* y = the max over each window; the positions into aux */
static void max_pool_fwd(struct tg_tensor *o)
{
    pool_run(o, is_pool2(o->aux) ? MAX2_FWD : MAX_FWD, o->in[0]->data, o->data);
}

/* dx[argmax] += dy */
static void max_pool_bwd(struct tg_tensor *o)
{
    if (o->in[0]->requires_grad) pool_run(o, MAX_BWD, o->grad, o->in[0]->grad);
}

/* dx = scatter_add of dy, as (N C, OH OW) into (N C, H W), at the positions */
static enum tg_status max_pool_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                   const bool *need, struct tg_tensor **dx)
{
    const struct pool_geom *g = o->aux;
    if (!need[0]) return TG_OK;
    int64_t planes = g->N * g->C, L = g->OH * g->OW, n = planes * L;
    int64_t *idx = tg__tape_alloc(T, (size_t)(n + 1) * sizeof *idx);
    if (!idx) return tg__vjp_failure();
    for (int64_t k = 0; k < n; k++) idx[k] = g->arg[k];
    struct tg_tensor *d = tg_reshape(T, dy, 2, (int64_t[]){planes, L});
    d = tg_scatter_add(T, d, 1, 2, (int64_t[]){planes, g->H * g->W}, idx);
    dx[0] = tg_reshape(T, d, 4, o->in[0]->shape);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_max_pool2d = {
    .op = TG_OP_MAX_POOL2D,
    .name = "max_pool2d",
    .arity = 1,
    .formula = "y[n,c,i,j] = max_{p<kh, q<kw} x[n, c, i sh - ph + p, j sw - pw + q] (padding "
               "never chosen)",
    .vjp = "dx[n,c,argmax] += dy[n,c,i,j] (the first maximum of the window)",
    .shape = pool_shape,
    .forward = max_pool_fwd,
    .backward = max_pool_bwd,
    .params = pool_params,
    .vjp_graph = max_pool_vjp};

/* ---- avg_pool2d ---- */

static void avg_pool_fwd(struct tg_tensor *o)
{
    pool_run(o, AVG_FWD, o->in[0]->data, o->data);
}

static void avg_pool_bwd(struct tg_tensor *o)
{
    if (o->in[0]->requires_grad) pool_run(o, AVG_BWD, o->in[0]->grad, o->grad);
}

/* dx = conv2d_input_grad of dy, as (N C, 1, OH, OW), with the constant kernel
 * (1, 1, kh, kw) of 1/(kh kw) */
static enum tg_status avg_pool_vjp(struct tg_tape *T, struct tg_tensor *o, struct tg_tensor *dy,
                                   const bool *need, struct tg_tensor **dx)
{
    const struct pool_geom *g = o->aux;
    if (!need[0]) return TG_OK;
    int64_t kh = g->p.kernel[0], kw = g->p.kernel[1];
    struct tg_tensor *k = tg__vjp_const(T, o->dtype, 4, (int64_t[]){1, 1, kh, kw});
    if (!k) return tg__vjp_failure();
    for (int64_t i = 0; i < kh * kw; i++) tg__store(k->data, k->dtype, i, 1.0 / (double)(kh * kw));
    struct tg_conv_params cp = {{g->p.stride[0], g->p.stride[1]},
                                {g->p.padding[0], g->p.padding[1]},
                                {1, 1},
                                1,
                                TG_ACT_NONE};
    struct tg_tensor *d = tg_reshape(T, dy, 4, (int64_t[]){g->N * g->C, 1, g->OH, g->OW});
    d = tg_conv2d_input_grad(T, d, k, g->H, g->W, &cp);
    dx[0] = tg_reshape(T, d, 4, o->in[0]->shape);
    return dx[0] ? TG_OK : tg__vjp_failure();
}

const struct tg_op_desc tg_op_desc_avg_pool2d = {
    .op = TG_OP_AVG_POOL2D,
    .name = "avg_pool2d",
    .arity = 1,
    .formula = "y[n,c,i,j] = (1/(kh kw)) sum_{p<kh, q<kw} x[n, c, i sh - ph + p, j sw - pw + q] "
               "(padding counted as 0)",
    .vjp = "dx[n, c, i sh - ph + p, j sw - pw + q] += dy[n,c,i,j] / (kh kw)",
    .shape = pool_shape,
    .forward = avg_pool_fwd,
    .backward = avg_pool_bwd,
    .params = pool_params,
    .vjp_graph = avg_pool_vjp};

/* ---- constructors ---- */

static struct tg_tensor *pool_record(struct tg_tape *T, const struct tg_op_desc *d,
                                     struct tg_tensor *x, const struct tg_pool_params *params)
{
    if (!T || !x) return tg__op_record(T, d, 1, &x, NULL, NULL); /* it names what is missing */
    if (tg__check_input(T, d->name, x)) return NULL;
    if (!params) {
        tg__fail(TG_ERR_NULL, "%s: params is NULL", d->name);
        return NULL;
    }
    struct pool_geom g = {.p = *params};
    if (pool_check(d->name, x, &g)) return NULL;
    struct pool_geom *a = tg__tape_alloc(T, sizeof *a);
    if (!a) return NULL;
    *a = g;
    if (d == &tg_op_desc_max_pool2d &&
        !(a->arg = tg__tape_alloc(T, (size_t)(g.N * g.C * g.OH * g.OW + 1) * sizeof *a->arg)))
        return NULL;
    return tg__op_record(T, d, 1, &x, NULL, a);
}

struct tg_tensor *tg_max_pool2d(struct tg_tape *T, struct tg_tensor *x,
                                const struct tg_pool_params *params)
{
    return pool_record(T, &tg_op_desc_max_pool2d, x, params);
}

struct tg_tensor *tg_avg_pool2d(struct tg_tape *T, struct tg_tensor *x,
                                const struct tg_pool_params *params)
{
    return pool_record(T, &tg_op_desc_avg_pool2d, x, params);
}
