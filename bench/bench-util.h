/*
 * bench/bench-util.h - timing helpers shared by the benchmark programs.
 *
 * Each benchmark program times `reps` repetitions of its workload and prints one
 * machine-readable line that bench/run parses:
 *     <TAG> workload=<w> reps=<n> median_ms=<m> ... samples_ms=<a>,<b>,...
 * The samples are printed so that bench/run can pool them over several rounds
 * and take one median of everything. Header-only: static functions, no state.
 */
#ifndef TG_BENCH_UTIL_H
#define TG_BENCH_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic wall clock in milliseconds. */
static inline double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n > 0 samples; sorts a copy, `v` is left as it was. */
static inline double bench_median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* The value of option `--name N` in argv, or `def` when absent or not a number > 0. */
static inline int bench_int_opt(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) {
            int v = atoi(argv[i + 1]);
            return v > 0 ? v : def;
        }
    return def;
}

/* Prints " <name>=a,b,..." (no end of line). */
static inline void bench_print_list(const char *name, const double *v, int n)
{
    printf(" %s=", name);
    for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", v[i]);
}

/* Serve mode (`--serve`, used by bench/run to interleave contestants finely):
 * after its warm-up a program prints READY, then runs each "STEP k" read from
 * stdin as k timed steps and answers one line " SAMPLES=t1,...,tk"; "QUIT" or
 * the end of input ends it, and the
 * program prints its usual result line over all timed steps. */
static inline void bench_serve_ready(void)
{
    printf("READY\n");
    fflush(stdout);
}

/* The next command: k > 0 steps, or 0 to stop. */
static inline int bench_serve_next(void)
{
    char line[64];
    int k;
    if (!fgets(line, sizeof line, stdin)) return 0;
    return sscanf(line, "STEP %d", &k) == 1 && k > 0 ? k : 0;
}

/* The step loop of w1_mlp and w5_small: warm-up steps i < 0, then timed steps
 * 0, 1, ...: `reps` of them, or in serve mode the batches asked for on stdin, each
 * answered with its samples from t, at most `reps` in all. */
struct bench_steps {
    int reps, done, batch;
    bool serve;
};

static inline struct bench_steps bench_steps_start(int reps, bool serve)
{
    return (struct bench_steps){reps, 0, serve ? 0 : reps, serve};
}

/* Whether step i is to run; done counts the timed steps run once it says no. */
static inline bool bench_steps_next(struct bench_steps *s, int i, const double *t)
{
    if (i == 0 && s->serve) bench_serve_ready();
    if (i < 0 || i < s->done + s->batch) return true;
    if (!s->serve) { /* the reps are done */
        s->done = s->reps;
        return false;
    }
    if (s->batch) { /* answer the batch that ended */
        bench_print_list("SAMPLES", t + s->done, s->batch);
        printf("\n");
        fflush(stdout);
    }
    s->done += s->batch;
    int k = bench_serve_next();
    s->batch = k < s->reps - s->done ? k : s->reps - s->done;
    return s->batch > 0;
}

/* Whether flag `name` (e.g. "--unfused") is in argv. */
static inline bool bench_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

#ifdef TAPEGRAD_TAPEGRAD_H /* the tapegrad programs (gemm_floor is plain CBLAS) */
/* One training step's backward and update: tg_nn_optim_backward_step, or with
 * `unfused` the two calls tg_backward and tg_nn_optim_step. */
static inline enum tg_status bench_backward_step(struct tg_nn_optim *opt, struct tg_tensor *loss,
                                                 bool unfused)
{
    if (!unfused) return tg_nn_optim_backward_step(opt, loss, 1.0);
    enum tg_status st = tg_backward(loss, NULL);
    return st ? st : tg_nn_optim_step(opt, 1.0);
}
#endif

/* Prints " samples_ms=a,b,..." and the end of the line. */
static inline void bench_print_samples(const double *v, int n)
{
    bench_print_list("samples_ms", v, n);
    printf("\n");
}

/* ---- memory figures (W1, W7) ---- */

/* A field of /proc/self/status in MiB ("VmRSS", "VmHWM"); -1 when unreadable. */
static inline double bench_status_mib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') v = atof(line + n + 1) / 1024.0;
    if (f) fclose(f);
    return v;
}

#ifdef TAPEGRAD_TAPEGRAD_H
/* An allocator for tg_set_allocator that counts tapegrad's allocations in
 * bench_n_malloc (one program, one thread of tapegrad calls). */
static long bench_n_malloc;
static inline void *bench_count_malloc(size_t n, void *c)
{
    (void)c;
    bench_n_malloc++;
    return malloc(n);
}
static inline void *bench_count_realloc(void *p, size_t n, void *c)
{
    (void)c;
    bench_n_malloc++;
    return realloc(p, n);
}
static inline void bench_count_free(void *p, void *c)
{
    (void)c;
    free(p);
}
/* Installs the counting allocator. */
static inline void bench_count_mallocs(void)
{
    static struct tg_allocator counting = {bench_count_malloc, bench_count_realloc,
                                           bench_count_free, NULL};
    tg_set_allocator(&counting);
}
#endif

#endif
