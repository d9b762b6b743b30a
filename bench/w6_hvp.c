/*
 * bench/w6_hvp.c - W6, one Hessian-vector product with respect to all parameters
 * (BENCHMARKS.md): a gradient recorded with its own graph, then the gradient of
 * <g, v> for a fixed random v (tg_hvp), on two models, f32, 1 thread:
 *   --model small: W5's MLP 32-64-64-1, tanh hidden, MSE (mean), batch 16, inputs
 *                  and targets uniform [-1, 1), a pool of 64 batches cycled;
 *   --model f:     F's MLP 784-256-128-10, tanh hidden, cross-entropy (mean), batch
 *                  128, inputs uniform [0, 1), labels uniform in 0..9, a pool of 8
 *                  batches cycled.
 * --mode hvp (default) times one step = tape reset, batch onto the tape, forward,
 * loss, tg_hvp with respect to every parameter; --mode grad times the same model's
 * own gradient step: tape reset, batch, forward, loss, tg_backward (the gradients
 * are zeroed after the timed region, so the figure is the fast first-order path
 * alone). hvp_over_grad = the two medians' ratio (bench/run takes it from the same
 * run). Two more modes split the HVP for docs/performance.md: --mode forward (reset,
 * batch, forward, loss) and --mode grad_graph (the same, then the first half of
 * tg_hvp: tg_grad with create_graph).
 *
 * Before timing, the program checks tg_hvp on an f64 copy of the model (same seed)
 * against central differences of tg_backward's gradient along v, (g(p + h v) -
 * g(p - h v)) / 2h, h = 1e-5,
 * in a child process (not counted in the peak RSS): the relative L2 error over all parameters must
 * be below 1e-6 (check=ok; it is about 1e-8 here), else it exits 1.
 *
 * Prints: TG workload=w6 model=<m> mode=<mode> clock=<wall|cpu> reps=<n> median_ms=<m> loss=<l>
 *   check=ok check_rel_err=<e> n_params=<elements> params_mib=<MiB>
 *   tape_high_water_mib=<the tape arena's highest use, in MiB> tape_nodes=<nodes
 *   recorded by one step> peak_rss_mib=<peak resident set, MiB: VmHWM, else
 *   getrusage's ru_maxrss> samples_ms=...
 * Usage: w6_hvp [--model small|f] [--mode hvp|grad|forward|grad_graph] [--reps N]
 *        [--warmup N] [--serve]
 *        [--clock wall|cpu]
 * --serve: steps in batches asked for on stdin (bench-util.h), at most --reps.
 * --clock cpu: time each step by the process's CPU time instead of the wall clock
 * (on a machine shared with other jobs a 4 ms step is often preempted; 1 thread).
 */
#include <math.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

enum { MAX_LAYERS = 3, MAX_PARAMS = 2 * MAX_LAYERS };

struct spec {
    const char *name;
    int64_t sizes[MAX_LAYERS + 1];
    int64_t batch;
    int pool;
    bool classes; /* cross-entropy on labels 0..9, else MSE on one output */
};

static const struct spec SMALL = {"small", {32, 64, 64, 1}, 16, 64, false};
static const struct spec FMLP = {"f", {784, 256, 128, 10}, 128, 8, true};

/* A model of `spec` in dtype dt, its inputs, and the direction v. */
struct model {
    const struct spec *s;
    enum tg_dtype dt;
    struct tg_nn_mlp *mlp;
    int n;                            /* parameters */
    struct tg_tensor *p[MAX_PARAMS];  /* borrowed from the MLP */
    struct tg_tensor *v[MAX_PARAMS];  /* owned */
    struct tg_tensor *hv[MAX_PARAMS]; /* of the last step, on the tape */
    double *X, *Y;                    /* pool * batch * in, pool * batch (f64 copies) */
    void *Xd, *Yd;                    /* the same in dt */
    int64_t n_elems;
};

static const char *str_opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

/* The process's peak resident set in MiB: VmHWM of /proc/self/status (this
 * program's own memory since its exec), else getrusage's ru_maxrss, which on Linux
 * also keeps the peak of the process image before the exec (bench/run's Python
 * forks it: 12 MiB instead of 6 for the small model). */
static double peak_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return (double)kb / 1024.0;
}

/* --clock cpu: the process's CPU time in ms (one thread: time spent running, not
 * time preempted by other jobs on a loaded machine). */
static double cpu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void *to_dtype(const double *src, int64_t n, enum tg_dtype dt)
{
    size_t es = dt == TG_F64 ? sizeof(double) : sizeof(float);
    void *out = malloc((size_t)n * es);
    if (!out) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F64)
            ((double *)out)[i] = src[i];
        else
            ((float *)out)[i] = (float)src[i];
    }
    return out;
}

/* Builds the model (weights and v from fixed seeds, the same for every dtype). */
static bool model_init(struct model *m, const struct spec *s, enum tg_dtype dt)
{
    memset(m, 0, sizeof *m);
    m->s = s;
    m->dt = dt;
    struct tg_rng rng;
    tg_rng_seed(&rng, 6);
    m->mlp = tg_nn_mlp_new(s->sizes, MAX_LAYERS + 1, TG_ACT_TANH, TG_ACT_NONE, dt,
                           TG_INIT_XAVIER_UNIFORM, &rng);
    if (!m->mlp) return false;
    struct tg_params *ps = tg_nn_mlp_params(m->mlp);
    m->n = (int)tg_params_count(ps);
    if (m->n > MAX_PARAMS) return false;
    struct tg_rng vr;
    tg_rng_seed(&vr, 66);
    for (int i = 0; i < m->n; i++) {
        m->p[i] = tg_params_tensor(ps, (size_t)i);
        int rank = tg_tensor_rank(m->p[i]);
        m->v[i] = tg_tensor_normal(dt, rank, tg_tensor_shape(m->p[i]), &vr, 0, 1);
        if (!m->v[i]) return false;
        m->n_elems += tg_tensor_numel(m->p[i]);
    }
    int64_t in = s->sizes[0], nx = s->pool * s->batch * in, ny = s->pool * s->batch;
    m->X = malloc(sizeof *m->X * (size_t)nx);
    m->Y = malloc(sizeof *m->Y * (size_t)ny);
    if (!m->X || !m->Y) return false;
    struct tg_rng dr;
    tg_rng_seed(&dr, 60);
    for (int64_t i = 0; i < nx; i++)
        m->X[i] = s->classes ? tg_rng_uniform(&dr) : 2 * tg_rng_uniform(&dr) - 1;
    for (int64_t i = 0; i < ny; i++)
        m->Y[i] = s->classes ? floor(10 * tg_rng_uniform(&dr)) : 2 * tg_rng_uniform(&dr) - 1;
    m->Xd = to_dtype(m->X, nx, dt);
    m->Yd = to_dtype(m->Y, ny, dt);
    return m->Xd && m->Yd;
}

static void model_free(struct model *m)
{
    for (int i = 0; i < m->n; i++) tg_tensor_free(m->v[i]);
    tg_nn_mlp_free(m->mlp);
    free(m->X);
    free(m->Y);
    free(m->Xd);
    free(m->Yd);
}

/* Records batch b's loss on T (after a reset). */
static struct tg_tensor *record_loss(struct model *m, struct tg_tape *T, int b)
{
    const struct spec *s = m->s;
    size_t es = m->dt == TG_F64 ? sizeof(double) : sizeof(float);
    int64_t in = s->sizes[0];
    tg_tape_reset(T);
    struct tg_tensor *x = tg_tape_constant(T, m->dt, 2, (int64_t[]){s->batch, in},
                                           (char *)m->Xd + (size_t)(b * s->batch * in) * es);
    const void *yd = (char *)m->Yd + (size_t)(b * s->batch) * es;
    struct tg_tensor *out = tg_nn_mlp_forward(m->mlp, T, x);
    if (s->classes)
        return tg_cross_entropy(T, out, tg_tape_constant(T, m->dt, 1, (int64_t[]){s->batch}, yd),
                                TG_REDUCE_MEAN);
    return tg_mse(T, out, tg_tape_constant(T, m->dt, 2, (int64_t[]){s->batch, 1}, yd),
                  TG_REDUCE_MEAN);
}

enum mode { HVP, GRAD, FORWARD, GRAD_GRAPH };
static const char *const MODES[] = {"hvp", "grad", "forward", "grad_graph"};

/* One timed step of `mode`; returns the loss tensor or NULL. */
static struct tg_tensor *step(struct model *m, struct tg_tape *T, int b, enum mode mode)
{
    struct tg_tensor *l = record_loss(m, T, b);
    if (!l) return NULL;
    switch (mode) {
    case HVP:
        return tg_hvp(l, m->n, m->p, m->v, NULL, m->hv) ? NULL : l;
    case GRAD:
        return tg_backward(l, NULL) ? NULL : l;
    case GRAD_GRAPH:
        return tg_grad(1, &l, NULL, m->n, m->p, &(struct tg_grad_options){.create_graph = true},
                       m->hv)
                   ? NULL
                   : l;
    case FORWARD:
        break;
    }
    return l;
}

static double grad_at(struct model *m, int i, int64_t k)
{
    return ((const double *)tg_tensor_grad(m->p[i]))[k];
}

/* Checks tg_hvp on the f64 model against central differences of tg_backward's
 * gradient along v; returns the relative L2 error, or a negative value on failure. */
static double check_hvp(const struct spec *s)
{
    struct model m = {0};
    struct tg_tape *T = tg_tape_new();
    double err = -1, h = 1e-5;
    double *gp = NULL, *hv = NULL;
    if (!T || !model_init(&m, s, TG_F64)) goto done;
    gp = calloc((size_t)m.n_elems, sizeof *gp);
    hv = calloc((size_t)m.n_elems, sizeof *hv);
    if (!gp || !hv || !step(&m, T, 0, HVP)) goto done;
    for (int i = 0, o = 0; i < m.n; o += (int)tg_tensor_numel(m.p[i]), i++)
        for (int64_t k = 0; k < tg_tensor_numel(m.p[i]); k++)
            hv[o + k] = ((const double *)tg_tensor_data(m.hv[i]))[k];
    /* g(p + h v) - g(p - h v), by tg_backward */
    for (int side = 1; side >= -1; side -= 2) {
        for (int i = 0; i < m.n; i++) {
            double *p = tg_tensor_data(m.p[i]);
            const double *v = tg_tensor_data(m.v[i]);
            for (int64_t k = 0; k < tg_tensor_numel(m.p[i]); k++) p[k] += side * h * v[k];
            tg_tensor_zero_grad(m.p[i]);
        }
        if (!step(&m, T, 0, GRAD)) goto done;
        for (int i = 0, o = 0; i < m.n; o += (int)tg_tensor_numel(m.p[i]), i++) {
            double *p = tg_tensor_data(m.p[i]);
            const double *v = tg_tensor_data(m.v[i]);
            for (int64_t k = 0; k < tg_tensor_numel(m.p[i]); k++) {
                gp[o + k] += side * grad_at(&m, i, k);
                p[k] -= side * h * v[k];
            }
        }
    }
    double num = 0, den = 0;
    for (int64_t k = 0; k < m.n_elems; k++) {
        double d = gp[k] / (2 * h) - hv[k];
        num += d * d;
        den += hv[k] * hv[k];
    }
    err = den > 0 ? sqrt(num / den) : -1;
done:
    if (err < 0) fprintf(stderr, "w6_hvp: check failed: %s\n", tg_last_error());
    free(gp);
    free(hv);
    model_free(&m);
    tg_tape_free(T);
    return err;
}

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 500);
    int warmup = bench_int_opt(argc, argv, "--warmup", 20);
    bool serve = bench_flag(argc, argv, "--serve");
    const char *mname = str_opt(argc, argv, "--model", "small");
    const char *mode = str_opt(argc, argv, "--mode", "hvp");
    bool cpu = !strcmp(str_opt(argc, argv, "--clock", "wall"), "cpu");
    double (*now)(void) = cpu ? cpu_now_ms : bench_now_ms;
    const struct spec *s = !strcmp(mname, "small") ? &SMALL : !strcmp(mname, "f") ? &FMLP : NULL;
    int mi = 0;
    while (mi < 4 && strcmp(mode, MODES[mi])) mi++;
    if (!s || mi == 4) {
        fprintf(stderr, "usage: w6_hvp [--model small|f] [--mode hvp|grad|forward|grad_graph] "
                        "[--reps N] [--warmup N] [--serve] [--clock wall|cpu]\n");
        return 2;
    }
    enum mode md = (enum mode)mi;
    /* The check runs in a child process, so that its f64 model does not count in
     * this process's peak RSS. */
    double err = -1;
    int fd[2];
    if (pipe(fd)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        err = check_hvp(s);
        _exit(write(fd[1], &err, sizeof err) == (ssize_t)sizeof err ? 0 : 1);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], &err, sizeof err) != (ssize_t)sizeof err) err = -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    if (err < 0 || !(err < 1e-6)) {
        fprintf(stderr,
                "w6_hvp: tg_hvp differs from central differences of the gradient: "
                "relative L2 error %.3g\n",
                err);
        return 1;
    }
    struct model m;
    struct tg_tape *T = tg_tape_new();
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!T || !t || !model_init(&m, s, TG_F32)) {
        fprintf(stderr, "w6_hvp: setup failed: %s\n", tg_last_error());
        return 1;
    }
    double loss = 0;
    size_t nodes = 0;
    struct bench_steps steps = bench_steps_start(reps, serve);
    for (int i = -warmup; bench_steps_next(&steps, i, t); i++) {
        int b = (i + warmup) % s->pool;
        double t0 = now();
        struct tg_tensor *l = step(&m, T, b, md);
        if (i >= 0) t[i] = now() - t0;
        if (!l) {
            fprintf(stderr, "w6_hvp: %s\n", tg_last_error());
            return 1;
        }
        loss = tg_tensor_item(l);
        if (md == GRAD)
            for (int k = 0; k < m.n; k++) tg_tensor_zero_grad(m.p[k]);
    }
    reps = steps.done;
    if (reps == 0) return 1;
    struct tg_tape_stats st;
    tg_tape_stats(T, &st);
    nodes = st.n_nodes;
    size_t es = sizeof(float);
    printf("TG workload=w6 model=%s mode=%s clock=%s reps=%d median_ms=%.5f loss=%.5f check=ok "
           "check_rel_err=%.2e n_params=%lld params_mib=%.3f tape_high_water_mib=%.3f "
           "tape_nodes=%zu peak_rss_mib=%.1f",
           s->name, mode, cpu ? "cpu" : "wall", reps, bench_median(t, reps), loss, err,
           (long long)m.n_elems, (double)m.n_elems * (double)es / 1048576.0,
           (double)st.bytes_high_water / 1048576.0, nodes, peak_rss_mib());
    bench_print_samples(t, reps);
    model_free(&m);
    tg_tape_free(T);
    free(t);
    return 0;
}
