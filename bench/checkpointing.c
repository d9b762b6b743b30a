/*
 * bench/checkpointing.c - gradient checkpointing (tg_recompute) on a deep MLP:
 * 64 tanh layers of width 256 (tg_linear), batch 64, f32, loss mean(h^2), one
 * SGD step per iteration (tg_backward, then w -= 1e-3 dw and the gradients
 * zeroed), inputs normal(0, 1). Not tg_backward_apply: there the plain run
 * folds the updates into the GEMMs and the checkpointed one cannot, so the
 * comparison would mix the two effects (and count 16 MiB of update scratch as
 * activations).
 *
 * --mode plain records every layer on the tape; --mode ckpt records each run of
 * --every layers (default 8 = sqrt(64)) as one tg_recompute node, whose
 * layers are recomputed during backward. The step is: tape reset, forward,
 * loss, tg_backward, the update.
 *
 * Prints one line for bench/run:
 *   TG workload=ckpt mode=<m> reps=<n> median_ms=<t> act_kib=<a> alloc_peak_kib=<p>
 *      nodes=<k> samples_ms=...
 *   act_kib         the step's activation memory: the tape's high-water bytes
 *                   (values, gradients, op data, node structs) plus those of the
 *                   scratch tape the segments run on (tg_recompute_stats)
 *   alloc_peak_kib  the most bytes the library held at once during the first
 *                   step on a fresh tape, beyond what it held before (the
 *                   parameters and their gradients): arena chunks included
 * Usage: checkpointing [--mode plain|ckpt] [--every K] [--reps N] [--warmup N]
 * It exits 1 when the loss is not finite, or when --check is given and the two
 * modes' first-step gradients differ (relative 1e-4 in f32).
 */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

enum { DEPTH = 64, WIDTH = 256, BATCH = 64, MAX_EVERY = 16 };

/* The library's live bytes, and their peak since the last mark. */
static size_t live, peak;
static void *count_malloc(size_t n, void *c)
{
    (void)c;
    void *p = malloc(n);
    if (p && (live += malloc_usable_size(p)) > peak) peak = live;
    return p;
}
static void *count_realloc(void *p, size_t n, void *c)
{
    (void)c;
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q) {
        live = live - old + malloc_usable_size(q);
        if (live > peak) peak = live;
    }
    return q;
}
static void count_free(void *p, void *c)
{
    (void)c;
    if (p) live -= malloc_usable_size(p);
    free(p);
}

struct model {
    struct tg_tensor *W[DEPTH], *b[DEPTH], *x;
};

/* w -= lr dw, dw = 0, for every parameter. */
static void sgd(struct model *m)
{
    for (int k = 0; k < 2 * DEPTH; k++) {
        struct tg_tensor *p = k < DEPTH ? m->W[k] : m->b[k - DEPTH];
        float *w = tg_tensor_data(p), *g = tg_tensor_grad_mut(p);
        for (int64_t i = 0; i < tg_tensor_numel(p); i++) w[i] -= 1e-3f * g[i], g[i] = 0;
    }
}

/* The segment: in = {h, W_1, b_1, ..., W_k, b_k}. */
static struct tg_tensor *layers(struct tg_tape *T, struct tg_tensor *const *in, int n, void *u)
{
    (void)u;
    struct tg_tensor *h = in[0];
    for (int k = 1; k + 1 < n; k += 2) h = tg_linear(T, h, in[k], in[k + 1], TG_ACT_TANH);
    return h;
}

static struct tg_tensor *forward(struct tg_tape *T, struct model *m, int every)
{
    struct tg_tensor *h = m->x;
    for (int s = 0; s < DEPTH; s += every) {
        struct tg_tensor *in[1 + 2 * MAX_EVERY] = {h};
        int k = 0;
        for (; k < every && s + k < DEPTH; k++) {
            in[1 + 2 * k] = m->W[s + k];
            in[2 + 2 * k] = m->b[s + k];
        }
        h = every > 1 ? tg_recompute(T, layers, in, 1 + 2 * k, NULL)
                      : layers(T, in, 1 + 2 * k, NULL);
    }
    return tg_mean(T, tg_mul(T, h, h));
}

static int model_init(struct model *m)
{
    struct tg_rng r;
    tg_rng_seed(&r, 3);
    double scale = 1.0 / sqrt((double)WIDTH);
    for (int k = 0; k < DEPTH; k++) {
        m->W[k] = tg_tensor_normal(TG_F32, 2, (int64_t[]){WIDTH, WIDTH}, &r, 0, scale);
        m->b[k] = tg_tensor_normal(TG_F32, 1, (int64_t[]){WIDTH}, &r, 0, 0.1);
        if (!m->W[k] || !m->b[k] || tg_tensor_set_requires_grad(m->W[k], true) ||
            tg_tensor_set_requires_grad(m->b[k], true))
            return 1;
    }
    m->x = tg_tensor_normal(TG_F32, 2, (int64_t[]){BATCH, WIDTH}, &r, 0, 1);
    return m->x == NULL;
}

/* One step; the loss, or NaN on failure. */
static double step(struct tg_tape *T, struct model *m, int every)
{
    tg_tape_reset(T);
    struct tg_tensor *L = forward(T, m, every);
    if (!L || tg_backward(L, NULL)) return NAN;
    sgd(m);
    return tg_tensor_item(L);
}

/* --check: the first layer's weight gradient by tg_backward in both modes. */
static int check_modes(struct model *m, int every)
{
    struct tg_tape *T = tg_tape_new();
    float *g = malloc(sizeof *g * WIDTH * WIDTH);
    int bad = !T || !g;
    for (int mode = 0; mode < 2 && !bad; mode++) {
        tg_tensor_zero_grad(m->W[0]);
        tg_tape_reset(T);
        bad = tg_backward(forward(T, m, mode ? every : 1), NULL) != TG_OK;
        const float *w = tg_tensor_grad(m->W[0]);
        for (int i = 0; i < WIDTH * WIDTH && !bad; i++) {
            if (mode == 0) g[i] = w[i];
            bad = mode && fabsf(w[i] - g[i]) > 1e-4f * fmaxf(fabsf(g[i]), 1e-6f);
        }
    }
    printf("check: the two modes' gradients %s\n", bad ? "DIFFER" : "agree");
    free(g);
    tg_tape_free(T);
    return bad;
}

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 30);
    int warmup = bench_int_opt(argc, argv, "--warmup", 3);
    int every = bench_int_opt(argc, argv, "--every", 8);
    bool ckpt = false;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--mode")) ckpt = !strcmp(argv[i + 1], "ckpt");
    if (every > MAX_EVERY) every = MAX_EVERY;
    if (!ckpt) every = 1;
    struct tg_allocator counting = {count_malloc, count_realloc, count_free, NULL};
    tg_set_allocator(&counting);
    struct model m;
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t || model_init(&m)) return 1;
    if (bench_flag(argc, argv, "--check") &&
        check_modes(&m, bench_int_opt(argc, argv, "--every", 8)))
        return 1;

    struct tg_tape *T = tg_tape_new();
    size_t before = live;
    peak = live;
    double loss = step(T, &m, every);
    size_t alloc_peak = peak - before;
    for (int i = 1; i < warmup; i++) loss = step(T, &m, every);
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now_ms();
        loss = step(T, &m, every);
        t[i] = bench_now_ms() - t0;
    }
    struct tg_tape_stats main_st, scratch_st;
    tg_tape_stats(T, &main_st);
    tg_recompute_stats(T, &scratch_st);
    size_t act = main_st.bytes_high_water + scratch_st.bytes_high_water;
    printf("TG workload=ckpt mode=%s every=%d reps=%d median_ms=%.4f act_kib=%.1f "
           "alloc_peak_kib=%.1f nodes=%zu loss=%.6g",
           ckpt ? "ckpt" : "plain", every, reps, bench_median(t, reps), (double)act / 1024,
           (double)alloc_peak / 1024, main_st.n_nodes, loss);
    bench_print_list("samples_ms", t, reps);
    printf("\n");
    tg_tape_free(T);
    for (int k = 0; k < DEPTH; k++) tg_tensor_free(m.W[k]), tg_tensor_free(m.b[k]);
    tg_tensor_free(m.x);
    free(t);
    return isfinite(loss) ? 0 : 1;
}
