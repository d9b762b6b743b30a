/*
 * gradcases/gradcases_conv.c - gradient-check cases of the convolution and
 * pooling ops (ops/conv.c, ops/pool.c).
 *
 * Every case draws its own geometry: batch 1..2, groups 1..3, kernel 1..3,
 * stride 1..3, padding 0..2, dilation 1..2, and an input just large enough for
 * the (dilated) kernel plus 0..4 more, so odd sizes and strides that leave
 * input rows unused both come up. The options travel as the last input, a
 * tensor of whole numbers without gradient: {stride h, w, padding h, w,
 * dilation h, w, groups, two sizes (the adjoints' input or kernel size), the
 * fused activation}.
 */
#include "gradcases.h"

static int64_t irange(struct tg_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)tg_rng_below(r, (uint64_t)(hi - lo + 1));
}

/* The geometry of one case. */
struct geo {
    int64_t N, G, Cg, Og, kh, kw, H, W, OH, OW;
    struct tg_conv_params p;
};

static int64_t conv_out(int64_t in, int64_t k, int64_t pad, int64_t dil, int64_t stride)
{
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* A random convolution; with pool set, dilation 1, groups 1 and padding at most
 * half the kernel. */
static void draw(struct tg_rng *r, bool pool, struct geo *g)
{
    g->N = irange(r, 1, 2);
    g->G = pool ? 1 : irange(r, 1, 3);
    g->Cg = irange(r, 1, 2);
    g->Og = irange(r, 1, 2);
    g->kh = irange(r, 1, 3);
    g->kw = irange(r, 1, 3);
    for (int d = 0; d < 2; d++) {
        int64_t k = d ? g->kw : g->kh;
        g->p.stride[d] = irange(r, 1, 3);
        g->p.dilation[d] = pool ? 1 : irange(r, 1, 2);
        g->p.padding[d] = irange(r, 0, pool ? k / 2 : 2);
        int64_t need = g->p.dilation[d] * (k - 1) + 1 - 2 * g->p.padding[d];
        int64_t size = (need > 1 ? need : 1) + irange(r, 0, 4);
        int64_t o = conv_out(size, k, g->p.padding[d], g->p.dilation[d], g->p.stride[d]);
        *(d ? &g->W : &g->H) = size;
        *(d ? &g->OW : &g->OH) = o;
    }
    g->p.groups = g->G;
    g->p.act = TG_ACT_NONE;
}

/* The options tensor: the conv params, two more sizes and the activation. */
static struct tg_tensor *opts(const struct geo *g, int64_t s0, int64_t s1)
{
    const struct tg_conv_params *p = &g->p;
    double v[10] = {(double)p->stride[0],
                    (double)p->stride[1],
                    (double)p->padding[0],
                    (double)p->padding[1],
                    (double)p->dilation[0],
                    (double)p->dilation[1],
                    (double)p->groups,
                    (double)s0,
                    (double)s1,
                    (double)p->act};
    return tg_tensor_from_f64(TG_F64, 1, (int64_t[]){10}, v);
}
static struct tg_conv_params opts_read(const struct tg_tensor *t, int64_t *s0, int64_t *s1)
{
    int64_t v[10];
    for (int k = 0; k < 10; k++) v[k] = (int64_t)tg_tensor_get(t, k);
    *s0 = v[7], *s1 = v[8];
    return (struct tg_conv_params){
        {v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}, v[6], (enum tg_act)v[9]};
}

static struct tg_tensor *rand4(struct tg_rng *r, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return gc_rand(r, 4, (int64_t[]){a, b, c, d}, -1.5, 1.5, true);
}

/* ---- conv2d: in = {x, W, b, opts} or {x, W, opts} ---- */
static int mk_conv(struct tg_rng *r, struct tg_tensor **in, bool bias)
{
    struct geo g;
    draw(r, false, &g);
    g.p.act = (enum tg_act)irange(r, 0, 3); /* none, relu, tanh, sigmoid fused */
    int n = 0;
    in[n++] = rand4(r, g.N, g.G * g.Cg, g.H, g.W);
    in[n++] = rand4(r, g.G * g.Og, g.Cg, g.kh, g.kw);
    if (bias) in[n++] = gc_rand(r, 1, (int64_t[]){g.G * g.Og}, -1, 1, true);
    in[n++] = opts(&g, 0, 0);
    for (int k = 0; k < n; k++)
        if (!in[k]) return 0;
    return n;
}
static int mk_conv_bias(struct tg_rng *r, struct tg_tensor **in)
{
    return mk_conv(r, in, true);
}
static int mk_conv_nobias(struct tg_rng *r, struct tg_tensor **in)
{
    return mk_conv(r, in, false);
}
static struct tg_tensor *f_conv(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t s0, s1;
    struct tg_conv_params p = opts_read(x[n - 1], &s0, &s1);
    return tg_conv2d(T, x[0], x[1], n == 4 ? x[2] : NULL, &p);
}

/* ---- conv1d: in = {x (N,C,L), W (O,Cg,K), b, opts} (height 1) ---- */
static int mk_conv1d(struct tg_rng *r, struct tg_tensor **in)
{
    struct geo g;
    draw(r, false, &g);
    in[0] = gc_rand(r, 3, (int64_t[]){g.N, g.G * g.Cg, g.W}, -1.5, 1.5, true);
    in[1] = gc_rand(r, 3, (int64_t[]){g.G * g.Og, g.Cg, g.kw}, -1.5, 1.5, true);
    in[2] = gc_rand(r, 1, (int64_t[]){g.G * g.Og}, -1, 1, true);
    in[3] = opts(&g, 0, 0);
    return in[0] && in[1] && in[2] && in[3] ? 4 : 0;
}
static struct tg_tensor *f_conv1d(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t s0, s1;
    struct tg_conv_params p = opts_read(x[3], &s0, &s1);
    return tg_conv1d(T, x[0], x[1], x[2], p.stride[1], p.padding[1], p.dilation[1], p.groups);
}

/* ---- conv2d_input_grad: in = {dy, W, opts with (H, W)} ---- */
static int mk_input_grad(struct tg_rng *r, struct tg_tensor **in)
{
    struct geo g;
    draw(r, false, &g);
    in[0] = rand4(r, g.N, g.G * g.Og, g.OH, g.OW);
    in[1] = rand4(r, g.G * g.Og, g.Cg, g.kh, g.kw);
    in[2] = opts(&g, g.H, g.W);
    return in[0] && in[1] && in[2] ? 3 : 0;
}
static struct tg_tensor *f_input_grad(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    int64_t h, w;
    struct tg_conv_params p = opts_read(x[2], &h, &w);
    return tg_conv2d_input_grad(T, x[0], x[1], h, w, &p);
}

/* ---- conv2d_weight_grad: in = {x, dy, opts with (kh, kw)} ---- */
static int mk_weight_grad(struct tg_rng *r, struct tg_tensor **in)
{
    struct geo g;
    draw(r, false, &g);
    in[0] = rand4(r, g.N, g.G * g.Cg, g.H, g.W);
    in[1] = rand4(r, g.N, g.G * g.Og, g.OH, g.OW);
    in[2] = opts(&g, g.kh, g.kw);
    return in[0] && in[1] && in[2] ? 3 : 0;
}
static struct tg_tensor *f_weight_grad(struct tg_tape *T, struct tg_tensor *const *x, int n,
                                       void *c)
{
    int64_t kh, kw;
    struct tg_conv_params p = opts_read(x[2], &kh, &kw);
    return tg_conv2d_weight_grad(T, x[0], x[1], kh, kw, &p);
}

/* ---- pooling: in = {x, opts with the kernel as the two sizes} ---- */
static int mk_pool(struct tg_rng *r, struct tg_tensor **in)
{
    struct geo g;
    draw(r, true, &g);
    in[0] = rand4(r, g.N, g.Cg + 1, g.H, g.W);
    in[1] = opts(&g, g.kh, g.kw);
    return in[0] && in[1] ? 2 : 0;
}
/* the common 2x2 window, stride 2, no padding (max_pool2d's own kernel), odd sizes */
static int mk_pool2(struct tg_rng *r, struct tg_tensor **in)
{
    struct geo g = {.kh = 2, .kw = 2, .p = {{2, 2}, {0, 0}, {1, 1}, 1, TG_ACT_NONE}};
    in[0] = rand4(r, irange(r, 1, 2), irange(r, 1, 3), irange(r, 2, 7), irange(r, 2, 7));
    in[1] = opts(&g, 2, 2);
    return in[0] && in[1] ? 2 : 0;
}
static struct tg_pool_params pool_read(const struct tg_tensor *t)
{
    int64_t kh, kw;
    struct tg_conv_params p = opts_read(t, &kh, &kw);
    return (struct tg_pool_params){
        {kh, kw}, {p.stride[0], p.stride[1]}, {p.padding[0], p.padding[1]}};
}
static struct tg_tensor *f_max_pool(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    struct tg_pool_params p = pool_read(x[1]);
    return tg_max_pool2d(T, x[0], &p);
}
static struct tg_tensor *f_avg_pool(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    struct tg_pool_params p = pool_read(x[1]);
    return tg_avg_pool2d(T, x[0], &p);
}

const struct gc_case gc_cases_conv[] = {
    {TG_OP_CONV2D, "conv2d", mk_conv_bias, f_conv},
    {TG_OP_CONV2D, "conv2d without bias", mk_conv_nobias, f_conv},
    {TG_OP_CONV2D, "conv1d", mk_conv1d, f_conv1d},
    {TG_OP_CONV2D_INPUT_GRAD, "conv2d_input_grad", mk_input_grad, f_input_grad},
    {TG_OP_CONV2D_WEIGHT_GRAD, "conv2d_weight_grad", mk_weight_grad, f_weight_grad},
    {TG_OP_MAX_POOL2D, "max_pool2d", mk_pool, f_max_pool},
    {TG_OP_MAX_POOL2D, "max_pool2d 2x2", mk_pool2, f_max_pool},
    {TG_OP_AVG_POOL2D, "avg_pool2d", mk_pool, f_avg_pool},
};
const int gc_n_conv = sizeof gc_cases_conv / sizeof gc_cases_conv[0];
