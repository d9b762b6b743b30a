/*
 * cli/train.c - `tapegrad train`: trains an MLP on a CSV file or IDX data with
 * the library's trainer (tg_nn_train), and reports as it goes.
 *
 * The trainer calls back once per epoch (tg_nn_epoch_info: loss, accuracy, time,
 * gradient norms); that callback prints the epoch line, the learning curve row
 * and the diagnostics. The live progress line needs news of every batch, which
 * the trainer does not give: the model handed to it wraps the MLP's forward
 * (a struct tg_nn_module is just params + forward), counts the batches, and reads
 * their targets from the dataset to keep a running loss and accuracy. That
 * relies on tg_nn_train visiting each epoch's batches in order, one forward each
 * (TG_TRAIN_MINIBATCH), which is what tg_nn_train documents.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "mlpio.h"
#ifdef TG_CLI_DIST
#include "cli-dist.h"
#endif
#include "report.h"

static const char prog[] = "tapegrad train";

static const char usage[] =
    "usage: tapegrad train DATA [options]\n"
    "\n"
    "Trains a multi-layer perceptron on DATA with mini-batches (reshuffled every\n"
    "epoch) and prints one line per epoch on stdout: mean loss and accuracy over\n"
    "the epoch's batches, seconds and samples/s. When stderr is a terminal, a live\n"
    "line there also shows the batch, running loss and accuracy, speed and time left.\n"
    "At the end it evaluates the trained model on the training data (and on the\n"
    "test set of an MNIST-style folder).\n"
    "\n"
    "DATA is one of:\n"
    "  FILE.csv        a header row, then numbers; the target is the last column\n"
    "                  unless --target says otherwise; inputs are standardized\n"
    "                  (per-feature mean and std of the file)\n"
    "  IMAGES,LABELS   an IDX pair (MNIST format, optionally .gz); inputs are\n"
    "                  divided by their largest absolute value (255 for bytes)\n"
    "  FOLDER          holding train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
    "                  t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end\n"
    "                  in .gz): trains on train-*, reports accuracy on t10k-*\n"
    "\n"
    "  --target COL        CSV target column: a header name or a 0-based index\n"
    "                      (negative counts from the end); default the last column\n"
    "  --hidden SIZES      hidden layer widths, comma-separated, or 'none' (default 64)\n"
    "  --activation NAME   relu, tanh or sigmoid for the hidden layers (default relu)\n"
    "  --loss NAME         xent: softmax cross-entropy, targets are class indices\n"
    "                      0..C-1; mse: squared error on one output (default xent)\n"
    "  --classes C         number of classes for xent (default: largest label + 1)\n"
    "  --optimizer NAME    sgd, momentum (0.9) or adam (default adam)\n"
    "  --lr X              learning rate (default 0.001 for adam, 0.01 otherwise)\n"
    "  --batch N           samples per update (default 32)\n"
    "  --epochs N          passes over the data (default 10)\n"
    "  --seed N            seed of the initial weights and the shuffling (default 0)\n"
    "  --save FILE         write the model as safetensors, with the metadata that\n"
    "                      `tapegrad eval` needs (sizes, activation, loss, normalization);\n"
    "                      checked before training, and temporary files that killed\n"
    "                      saves to FILE left behind are removed first\n"
    "  --curve FILE.csv    write epoch,loss,accuracy,seconds per epoch (seconds since\n"
    "                      the start); with gnuplot on PATH also a plot FILE.png\n"
    "  --diagnostics       per epoch and layer: the gradient norm of the epoch's last\n"
    "                      update, ||W_end - W_start|| / ||W_start|| over the epoch,\n"
    "                      and for ReLU the fraction of dead hidden units (zero on\n"
    "                      all of the first 1000 training samples)\n";
/* the rest of the text (one string would pass C's 4095-character limit) */
static const char usage_more[] =
    "  --dist              data-parallel over the ranks of `mpirun -np N tapegrad train`\n"
    "                      (a build with MPI only): each rank a part of every batch;\n"
    "                      only rank 0 prints and writes files (docs/distributed.md)\n"
    "  --report FILE.html  write a training report (one self-contained page): loss\n"
    "                      and accuracy per epoch (train, and test for a folder),\n"
    "                      the --diagnostics numbers per epoch as curves, weight\n"
    "                      histograms of the first and last epoch, the confusion\n"
    "                      matrix (test set, else training set)\n"
    "  --resume FILE       keep the whole training state (weights, optimizer state,\n"
    "                      schedule, shuffling and data position) in FILE: start from\n"
    "                      it when it exists, so that a killed run goes on where it\n"
    "                      stopped and ends as if never interrupted\n"
    "  --checkpoint-every N  with --resume: write FILE every N updates (default 100)\n"
    "  -h, --help          this text\n"
    "\n"
    "Hidden layers are initialized He-uniform (relu) or Xavier-uniform; weights\n"
    "and data are f32.\n"
    "Exit status: 0 ok, 1 runtime failure (a missing or malformed file, a column\n"
    "that the file lacks, labels that are not class indices, a NaN or Inf in the\n"
    "data, a loss or a weight that became NaN or Inf: then nothing is saved),\n"
    "2 usage error (an unknown option or a bad option value).\n";

struct opts {
    const char *data, *target, *save, *curve, *report;
    char cmdline[1024]; /* for --report's heading */
    int64_t hidden[MLP_MAX_LAYERS];
    int n_hidden;
    enum tg_act act;
    enum tg_nn_loss loss;
    enum tg_nn_optim_kind optim;
    double lr; /* 0: the optimizer's default */
    long batch, epochs, classes, seed;
    bool diagnostics;
    bool dist;          /* --dist */
    const char *resume; /* --resume FILE */
    long ckpt_every;    /* --checkpoint-every N (0: not given) */
};

/* ======================= options ======================= */

static int parse_name(const char *v, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return *out = i, 0;
    return -1;
}

/* The option a with value v into o; -1 for a bad value. */
static int parse_value(struct opts *o, const char *a, const char *v)
{
    static const char *const losses[] = {"mse", "xent"}, *const optims[] = {"sgd", "momentum",
                                                                            "adam"};
    int i;
    if (!strcmp(a, "--target")) return o->target = v, 0;
    if (!strcmp(a, "--save")) return o->save = v, 0;
    if (!strcmp(a, "--resume")) return o->resume = v, 0;
    if (!strcmp(a, "--checkpoint-every")) return mlp_parse_long(v, 1, 1L << 40, &o->ckpt_every);
    if (!strcmp(a, "--curve")) return o->curve = v, 0;
    if (!strcmp(a, "--report")) return o->report = v, 0;
    if (!strcmp(a, "--hidden"))
        return mlp_parse_sizes(v, o->hidden, MLP_MAX_LAYERS - 1, &o->n_hidden);
    if (!strcmp(a, "--activation")) {
        if (strcmp(v, "relu") && strcmp(v, "tanh") && strcmp(v, "sigmoid")) return -1;
        return tg_nn_act_parse(v, &o->act) ? -1 : 0;
    }
    if (!strcmp(a, "--loss")) {
        if (parse_name(v, losses, 2, &i)) return -1;
        return o->loss = i ? TG_LOSS_XENT : TG_LOSS_MSE, 0;
    }
    if (!strcmp(a, "--optimizer")) {
        if (parse_name(v, optims, 3, &i)) return -1;
        return o->optim = (enum tg_nn_optim_kind)i, 0;
    }
    if (!strcmp(a, "--lr")) return mlp_parse_positive(v, &o->lr);
    if (!strcmp(a, "--batch")) return mlp_parse_long(v, 1, 1L << 30, &o->batch);
    if (!strcmp(a, "--epochs")) return mlp_parse_long(v, 1, 1000000, &o->epochs);
    if (!strcmp(a, "--classes")) return mlp_parse_long(v, 2, 1000000, &o->classes);
    if (!strcmp(a, "--seed")) return mlp_parse_long(v, 0, 1L << 62, &o->seed);
    return -2;
}

/* What the options cannot say one at a time. */
static int check_args(const struct opts *o)
{
    if (!o->data) {
        fprintf(stderr, "%s: no DATA given (see --help)\n", prog);
        return CLI_USAGE;
    }
    if (o->classes && o->loss != TG_LOSS_XENT) {
        fprintf(stderr, "%s: --classes needs --loss xent\n", prog);
        return CLI_USAGE;
    }
    if (o->ckpt_every && !o->resume) {
        fprintf(stderr, "%s: --checkpoint-every needs --resume FILE\n", prog);
        return CLI_USAGE;
    }
    if (o->dist && o->resume) {
        fprintf(stderr,
                "%s: --resume and --dist cannot be combined (a data-parallel run resumes "
                "through tg_dist_train; docs/distributed.md)\n",
                prog);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* CLI_OK, CLI_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.hidden = {64},
                       .n_hidden = 1,
                       .act = TG_ACT_RELU,
                       .loss = TG_LOSS_XENT,
                       .optim = TG_OPTIM_ADAM,
                       .batch = 32,
                       .epochs = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            fputs(usage_more, stdout);
            return -1;
        }
        if (!strcmp(a, "--diagnostics")) {
            o->diagnostics = true;
        } else if (!strcmp(a, "--dist")) {
            o->dist = true;
        } else if (!strncmp(a, "--", 2)) {
            int r = i + 1 < argc ? parse_value(o, a, argv[i + 1]) : -2;
            if (r == -2 && i + 1 == argc && parse_value(o, a, "") != -2) {
                fprintf(stderr, "%s: %s needs a value (see --help)\n", prog, a);
                return CLI_USAGE;
            }
            if (r == -2) {
                fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, a);
                return CLI_USAGE;
            }
            if (r) {
                fprintf(stderr, "%s: bad value '%s' for %s (see --help)\n", prog, argv[i + 1], a);
                return CLI_USAGE;
            }
            i++;
        } else if (!o->data) {
            o->data = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (one DATA only)\n", prog, a);
            return CLI_USAGE;
        }
    }
    return check_args(o);
}

/* ======================= reporting during training ======================= */

struct run {
    const struct opts *o;
    struct mlp_model *m;
    struct tg_dataset *ds; /* the training set (normalized) */
    int64_t n, d;
    bool live;            /* stderr is a terminal: draw the progress line */
    double t0, last_draw; /* wall clock */
    int epoch;            /* 0-based, the one running */
    int64_t pos, right;   /* samples of this epoch seen, right among them */
    double loss_sum;      /* their summed loss */
    FILE *curve;
    bool failed;                          /* the diagnostics failed: training stopped */
    struct tg_tensor *w0[MLP_MAX_LAYERS]; /* --diagnostics: weights at the epoch start */
    struct tg_tape *T;                    /* --diagnostics: the dead-unit pass */
    struct report *rep;                   /* --report (cli/report.c) */
    const struct tg_dataset *test;        /* the test set, or NULL */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loss and correct count of the batch `out` (rows, C) against targets y (rows):
 * the same divergences as tg_nn_train's (softmax cross-entropy, squared error). */
static void score_batch(struct run *r, const struct tg_tensor *out, const struct tg_tensor *y,
                        int64_t rows)
{
    const float *o = tg_tensor_data(out), *t = tg_tensor_data(y); /* (rows, C), (rows) */
    int64_t C = tg_tensor_numel(out) / rows;
    for (int64_t i = 0; i < rows; i++, o += C) {
        if (r->o->loss == TG_LOSS_MSE) {
            r->loss_sum += ((double)o[0] - t[i]) * ((double)o[0] - t[i]);
            continue;
        }
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++) best = o[c] > o[best] ? c : best;
        double lse = 0.0;
        for (int64_t c = 0; c < C; c++) lse += exp((double)o[c] - o[best]);
        r->loss_sum += o[best] + log(lse) - o[(int64_t)t[i]];
        r->right += best == (int64_t)t[i];
    }
}

static void draw(struct run *r)
{
    double el = now() - r->t0, done = (double)r->epoch * (double)r->n + (double)r->pos;
    double rate = el > 0 ? done / el : 0.0;
    double left = rate > 0 ? ((double)r->o->epochs * (double)r->n - done) / rate : 0.0;
    int64_t nb = (r->n + r->o->batch - 1) / r->o->batch;
    fprintf(stderr, "\r\033[Kepoch %d/%ld  batch %lld/%lld  loss %.4f", r->epoch + 1, r->o->epochs,
            (long long)((r->pos + r->o->batch - 1) / r->o->batch), (long long)nb,
            r->loss_sum / (double)r->pos);
    if (r->o->loss == TG_LOSS_XENT)
        fprintf(stderr, "  acc %.2f%%", 100.0 * (double)r->right / (double)r->pos);
    fprintf(stderr, "  %.0f samples/s  ETA %d:%02d", rate, (int)left / 60, (int)left % 60);
    fflush(stderr);
    r->last_draw = now();
}

/* The model given to tg_nn_train: the MLP's forward, and on a terminal the running
 * score of each batch (its targets copied from the dataset onto the tape). */
static struct tg_tensor *forward(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    struct run *r = self;
    struct tg_tensor *out = tg_nn_mlp_forward(r->m->mlp, T, x); /* (rows, C) */
    int64_t rows = tg_tensor_dim(x, 0);
    if (!out || !r->live || r->pos + rows > r->n) return out;
    struct tg_tensor *X = tg_tape_constant(T, TG_F32, 2, (int64_t[]){rows, r->d}, NULL);
    struct tg_tensor *y = X ? tg_tape_constant(T, TG_F32, 1, &rows, NULL) : NULL;
    if (y && !tg_dataset_batch_into(r->ds, r->pos, X, y)) {
        r->pos += rows;
        score_batch(r, out, y, rows);
        if (now() - r->last_draw > 0.1) draw(r);
    }
    return out;
}

/* ||a - b|| and ||b|| of two f32 tensors of one shape. */
static void diff_norms(const struct tg_tensor *a, const struct tg_tensor *b, double *diff,
                       double *norm)
{
    const float *x = tg_tensor_data(a), *y = tg_tensor_data(b);
    double s = 0.0, t = 0.0;
    for (int64_t i = 0, n = tg_tensor_numel(a); i < n; i++) {
        s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        t += (double)y[i] * y[i];
    }
    *diff = sqrt(s);
    *norm = sqrt(t);
}

/* dead[k]: hidden units of layer k that are 0 on every one of the first (up to)
 * 1000 training samples, by the MLP's own forward up to layer k, without
 * gradients; -1 when not ReLU. */
static int dead_units(struct run *r, int64_t *dead)
{
    int L = tg_nn_mlp_layers(r->m->mlp);
    int64_t m = r->n < 1000 ? r->n : 1000;
    for (int k = 0; k < L - 1; k++) {
        dead[k] = -1;
        if (r->m->act != TG_ACT_RELU) continue;
        tg_tape_reset(r->T);
        struct tg_tensor *x = tg_tape_constant(r->T, TG_F32, 2, (int64_t[]){m, r->d},
                                               tg_tensor_data(tg_dataset_x(r->ds))); /* (m, d) */
        struct tg_tensor *h = tg_nn_mlp_forward_to(r->m->mlp, r->T, x, k + 1); /* (m, units) */
        if (!h) return CLI_FAIL;
        int64_t units = tg_tensor_dim(h, 1);
        const float *v = tg_tensor_data(h);
        dead[k] = 0;
        for (int64_t u = 0; u < units; u++) {
            int64_t i = 0;
            while (i < m && v[i * units + u] == 0.0f) i++;
            dead[k] += i == m;
        }
    }
    return CLI_OK;
}

/* The gradient norm of layer k (weight and bias together) from the trainer's list. */
static double layer_grad_norm(const struct tg_nn_epoch_info *info, int k)
{
    char w[48], b[48];
    snprintf(w, sizeof w, "layers.%d.weight", k);
    snprintf(b, sizeof b, "layers.%d.bias", k);
    double s = 0.0;
    for (size_t i = 0; i < info->n_params; i++)
        if (!strcmp(info->names[i], w) || !strcmp(info->names[i], b))
            s += info->grad_norms[i] * info->grad_norms[i];
    return sqrt(s);
}

static int diagnostics(struct run *r, const struct tg_nn_epoch_info *info)
{
    int64_t dead[MLP_MAX_LAYERS];
    if (dead_units(r, dead)) return CLI_FAIL;
    for (int k = 0, L = tg_nn_mlp_layers(r->m->mlp); k < L; k++) {
        struct tg_tensor *W = tg_nn_mlp_weight(r->m->mlp, k);
        double diff, norm;
        diff_norms(W, r->w0[k], &diff, &norm);
        memcpy(tg_tensor_data(r->w0[k]), tg_tensor_data(W),
               (size_t)tg_tensor_numel(W) * sizeof(float));
        int64_t units = r->m->sizes[k + 1];
        if (r->rep)
            report_layer(r->rep, info->epoch, k, layer_grad_norm(info, k),
                         norm > 0 ? diff / norm : NAN,
                         k < L - 1 && dead[k] >= 0 ? (double)dead[k] / (double)units : NAN);
        if (!r->o->diagnostics) continue;
        printf("  layer %d (%lld->%lld)  grad norm %.3e  update/weight %.3e", k,
               (long long)r->m->sizes[k], (long long)r->m->sizes[k + 1], layer_grad_norm(info, k),
               norm > 0 ? diff / norm : NAN);
        if (k == L - 1)
            printf("  (output layer)\n");
        else if (dead[k] < 0)
            printf("  dead ReLU n/a (%s)\n", tg_nn_act_name(r->m->act));
        else
            printf("  dead ReLU %.1f%% (%lld/%lld)\n", 100.0 * (double)dead[k] / (double)units,
                   (long long)dead[k], (long long)units);
    }
    return CLI_OK;
}

/* --report: the epoch's scores (the test set evaluated after the epoch) and weights. */
static int report_train_epoch(struct run *r, const struct tg_nn_epoch_info *info)
{
    double tl = NAN, ta = NAN;
    struct tg_nn_module model = tg_nn_mlp_module(r->m->mlp);
    if (r->test && tg_nn_evaluate(&model, r->test, r->o->loss, &tl, &ta)) return CLI_FAIL;
    report_epoch(r->rep, info->epoch, info->loss, info->accuracy, tl, ta);
    return report_weights(r->rep, r->m->mlp);
}

static int on_epoch(const struct tg_nn_epoch_info *info, void *ctx)
{
    struct run *r = ctx;
    if (r->live) fputs("\r\033[K", stderr);
    if (!isfinite(info->loss)) { /* stop here: a NaN must not reach the saved model */
        fprintf(stderr, "%s: the loss became %g in epoch %d (too large a --lr?)\n", prog,
                info->loss, info->epoch + 1);
        return r->failed = true;
    }
    printf("epoch %d/%ld  loss %.6f", info->epoch + 1, r->o->epochs, info->loss);
    if (r->o->loss == TG_LOSS_XENT) printf("  accuracy %.2f%%", 100.0 * info->accuracy);
    printf("  %.3fs  %.0f samples/s\n", info->seconds,
           info->seconds > 0 ? (double)r->n / info->seconds : 0.0);
    if (r->curve)
        fprintf(r->curve, "%d,%.9g,%.9g,%.6f\n", info->epoch + 1, info->loss, info->accuracy,
                info->total_seconds);
    r->failed = (r->o->diagnostics || r->rep) && diagnostics(r, info);
    if (!r->failed && r->rep) r->failed = report_train_epoch(r, info);
    if (r->failed) fprintf(stderr, "%s: diagnostics failed: %s\n", prog, tg_last_error());
    fflush(stdout);
    r->epoch = info->epoch + 1;
    r->pos = r->right = 0;
    r->loss_sum = 0.0;
    r->last_draw = 0.0; /* draw the next epoch's first batch at once */
    return r->failed;
}

/* ======================= the curve's plot ======================= */

/* Whether an executable `name` is in a directory of $PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : ""; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, len ? p : ".", name);
        if (access(buf, X_OK) == 0) return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/* s inside a gnuplot single-quoted string ('' stands for '). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) fputs(*s == '\'' ? "''" : (char[]){*s, 0}, f);
    fputc('\'', f);
}

/* FILE.png beside FILE.csv (or CURVE.png beside CURVE) through gnuplot. */
static int plot(const char *csv, bool accuracy)
{
    if (!on_path("gnuplot")) {
        fprintf(stderr, "%s: note: gnuplot is not on PATH; no PNG plot made\n", prog);
        return CLI_OK;
    }
    size_t len = strlen(csv);
    if (len > 4 && !strcmp(csv + len - 4, ".csv")) len -= 4;
    char png[4096];
    snprintf(png, sizeof png, "%.*s.png", (int)len, csv);
    fflush(stdout);
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        fprintf(stderr, "%s: cannot run gnuplot\n", prog);
        return CLI_FAIL;
    }
    fputs("set terminal png size 800,500\nset datafile separator ','\nset output ", g);
    put_quoted(g, png);
    fputs("\nset xlabel 'epoch'\nset ylabel 'loss'\nset ytics nomirror\nset key outside below "
          "center horizontal\n",
          g);
    if (accuracy) fputs("set y2label 'accuracy'\nset y2tics\nset y2range [0:1]\n", g);
    fputs("plot ", g);
    put_quoted(g, csv);
    fputs(" every ::1 using 1:2 with linespoints title 'loss'", g);
    if (accuracy) fputs(", '' every ::1 using 1:3 axes x1y2 with linespoints title 'accuracy'", g);
    fputs("\n", g);
    int st = pclose(g);
    if (st) {
        fprintf(stderr, "%s: gnuplot failed (status %d); %s may be missing\n", prog, st, png);
        return CLI_FAIL;
    }
    printf("plot written to %s\n", png);
    return CLI_OK;
}

/* ======================= the command ======================= */

/* Loads the data, checks the labels, creates the model and normalizes the data
 * as it says (fitted on the training set). */
static int prepare(const struct opts *o, struct mlp_data *data, struct mlp_model *m)
{
    int rc = mlp_data_load(prog, o->data, o->target, true, true, data);
    if (rc) return rc;
    int64_t C = o->classes;
    if (o->loss == TG_LOSS_XENT && ((rc = mlp_check_classes(prog, data->train, &C)) ||
                                    (data->test && (rc = mlp_check_classes(prog, data->test, &C)))))
        return rc;
    m->sizes[0] = tg_dataset_features(data->train);
    for (int k = 0; k < o->n_hidden; k++) m->sizes[k + 1] = o->hidden[k];
    m->sizes[o->n_hidden + 1] = o->loss == TG_LOSS_XENT ? C : 1;
    m->n_sizes = o->n_hidden + 2;
    m->act = o->act;
    m->loss = o->loss;
    snprintf(m->target, sizeof m->target, "%s", o->target ? o->target : "");
    struct tg_rng rng;
    tg_rng_seed(&rng, (uint64_t)o->seed);
    if ((rc = mlp_model_new(
             prog, m, m->act == TG_ACT_RELU ? TG_INIT_HE_UNIFORM : TG_INIT_XAVIER_UNIFORM, &rng)))
        return rc;
    enum tg_nn_norm norm = data->kind == MLP_DATA_CSV ? TG_NORM_STANDARDIZE : TG_NORM_SCALE;
    if (tg_nn_model_fit_norm(m->nm, norm, data->train)) {
        fprintf(stderr, "%s: %s: %s\n", prog, o->data, mlp_lib_error());
        return CLI_FAIL;
    }
    if ((rc = mlp_normalize(prog, m, o->data, data->train))) return rc;
    return data->test ? mlp_normalize(prog, m, o->data, data->test) : CLI_OK;
}

static void print_header(const struct opts *o, const struct mlp_data *data,
                         const struct mlp_model *m, const struct tg_nn_optim_config *oc)
{
    static const char *const optims[] = {"sgd", "momentum", "adam"};
    char arch[MLP_MAX_LAYERS * 8 + 8];
    printf("data: %lld examples, %lld features", (long long)tg_dataset_len(data->train),
           (long long)m->sizes[0]);
    if (o->loss == TG_LOSS_XENT) printf(", %lld classes", (long long)m->sizes[m->n_sizes - 1]);
    printf(" (%s)\n", data->kind == MLP_DATA_CSV ? "CSV, standardized" : "IDX, scaled to [0,1]");
    printf("model: %s %s, loss %s, %s lr %g, batch %ld, %ld epochs, seed %ld\n",
           mlp_arch_str(m, arch, sizeof arch), tg_nn_act_name(m->act), tg_nn_loss_name(m->loss),
           optims[o->optim], oc->lr, o->batch, o->epochs, o->seed);
}

/* Opens --curve and takes the --diagnostics copies of the weights. */
static int open_reports(struct run *r)
{
    if (r->o->curve) {
        r->curve = fopen(r->o->curve, "w");
        if (!r->curve) {
            fprintf(stderr, "%s: cannot write %s: %s\n", prog, r->o->curve, strerror(errno));
            return CLI_FAIL;
        }
        fputs("epoch,loss,accuracy,seconds\n", r->curve);
    }
    if (r->o->report) {
        char about[256], arch[MLP_MAX_LAYERS * 8 + 8];
        snprintf(about, sizeof about, "model %s %s, loss %s, %lld training samples%s",
                 mlp_arch_str(r->m, arch, sizeof arch), tg_nn_act_name(r->m->act),
                 tg_nn_loss_name(r->m->loss), (long long)r->n, r->test ? " and a test set" : "");
        r->rep =
            report_new(r->o->report, (int)r->o->epochs, r->m->sizes, r->m->n_sizes,
                       r->m->act == TG_ACT_RELU, r->o->loss == TG_LOSS_XENT, r->o->cmdline, about);
        if (!r->rep) return CLI_FAIL;
    }
    if (!r->o->diagnostics && !r->o->report) return CLI_OK;
    r->T = tg_tape_new();
    if (!r->T || tg_tape_no_grad_push(r->T)) return CLI_FAIL;
    for (int k = 0; k < tg_nn_mlp_layers(r->m->mlp); k++)
        if (!(r->w0[k] = tg_tensor_copy(tg_nn_mlp_weight(r->m->mlp, k)))) return CLI_FAIL;
    return CLI_OK;
}

static void close_reports(struct run *r)
{
    if (r->curve) fclose(r->curve);
    tg_tape_free(r->T);
    report_free(r->rep);
    for (int k = 0; k < MLP_MAX_LAYERS; k++) tg_tensor_free(r->w0[k]);
}

/* The final scores on the training data and, for a folder, the test set. */
static int final_scores(const struct mlp_model *m, const struct mlp_data *data)
{
    struct tg_nn_module model = tg_nn_mlp_module(m->mlp);
    double loss, acc;
    for (int s = 0; s < 2; s++) {
        const struct tg_dataset *ds = s ? data->test : data->train;
        if (!ds) continue;
        if (tg_nn_evaluate(&model, ds, m->loss, &loss, &acc)) {
            fprintf(stderr, "%s: evaluation failed: %s\n", prog, tg_last_error());
            return CLI_FAIL;
        }
        mlp_print_score(s ? "test: " : "train:", m->loss, loss, acc, tg_dataset_len(ds));
    }
    return CLI_OK;
}

static int train(const struct opts *o, struct mlp_data *data, struct mlp_model *m)
{
    struct tg_nn_train_config cfg = tg_nn_train_defaults();
    cfg.loss = o->loss;
    cfg.mode = TG_TRAIN_MINIBATCH;
    cfg.batch_size = o->batch;
    cfg.shuffle = true;
    cfg.seed = (uint64_t)o->seed;
    cfg.optim = tg_nn_optim_defaults(o->optim);
    if (o->lr > 0) cfg.optim.lr = o->lr;
    cfg.max_epochs = (int)o->epochs;
    print_header(o, data, m, &cfg.optim);
    struct run r = {.o = o,
                    .m = m,
                    .ds = data->train,
                    .live = isatty(STDERR_FILENO) && !o->dist,
                    .test = data->test};
    r.n = tg_dataset_len(r.ds);
    r.d = tg_dataset_features(r.ds);
    int rc = open_reports(&r);
    if (rc) {
        close_reports(&r);
        return rc;
    }
    cfg.on_epoch = on_epoch;
    cfg.ctx = &r;
    struct tg_nn_module model = {tg_nn_mlp_params(m->mlp), forward, &r};
    r.t0 = now();
    struct tg_nn_resume_config res = {o->resume, o->ckpt_every ? o->ckpt_every : 100, true, NULL,
                                      NULL};
    enum tg_status st;
#ifdef TG_CLI_DIST
    if (o->dist)
        st = cli_dist_train(&model, r.ds, &cfg);
    else
#endif
        st = o->resume ? tg_nn_train_resumable(&model, r.ds, &cfg, &res, NULL)
                       : tg_nn_train(&model, r.ds, &cfg, NULL);
    if (r.live) fputs("\r\033[K", stderr);
    if (r.rep && !st && !r.failed &&
        report_finish(r.rep, m->mlp, data->test ? data->test : data->train,
                      data->test ? "test" : "training"))
        r.failed = true;
    close_reports(&r);
    if (r.failed) return CLI_FAIL;
    if (st) {
        fprintf(stderr, "%s: training failed: %s\n", prog, tg_last_error());
        return CLI_FAIL;
    }
    return mlp_check_params(prog, m) ? CLI_FAIL : final_scores(m, data);
}

/* Before training, not after it: removes the temporary files that killed saves
 * to `path` left (tg_checkpoint_remove_temps), then makes sure that `path` is
 * not a folder and that a file can be created beside it, by creating one with
 * the save's own temporary name pattern and removing it. */
static int check_save_path(const char *path)
{
    size_t removed = 0;
    if (!tg_checkpoint_remove_temps(path, &removed) && removed)
        fprintf(stderr, "%s: note: removed %zu temporary file%s of an interrupted save to %s\n",
                prog, removed, removed == 1 ? "" : "s", path);
    struct stat sb;
    char tmp[4096];
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(EISDIR));
        return CLI_FAIL;
    }
    int fd = -1;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= sizeof tmp)
        errno = ENAMETOOLONG;
    else
        fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        return CLI_FAIL;
    }
    close(fd);
    unlink(tmp);
    return CLI_OK;
}

int tg_cli_train(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
#ifdef TG_CLI_DIST
    bool rank0 = true;
    if (o.dist && cli_dist_begin(&rank0)) return CLI_FAIL;
    if (!rank0) o.save = o.curve = o.report = NULL; /* rank 0 alone writes files */
#else
    if (o.dist) {
        fprintf(stderr,
                "%s: --dist: this build has no MPI (install libopenmpi-dev and "
                "configure with -Ddist=enabled; docs/distributed.md)\n",
                prog);
        return CLI_USAGE;
    }
#endif
    for (int i = 0, n = 0; i < argc && n < (int)sizeof o.cmdline - 1; i++)
        n += snprintf(o.cmdline + n, sizeof o.cmdline - (size_t)n, "%s%s", i ? " " : "tapegrad ",
                      argv[i]);
    if (o.save && check_save_path(o.save)) return CLI_FAIL;
    struct mlp_data data;
    struct mlp_model m;
    memset(&m, 0, sizeof m);
    rc = prepare(&o, &data, &m);
    if (!rc) rc = train(&o, &data, &m);
    if (!rc && o.save && !(rc = mlp_model_save(prog, &m, o.save)))
        printf("model saved to %s\n", o.save);
    if (!rc && o.curve) rc = plot(o.curve, o.loss == TG_LOSS_XENT);
    mlp_model_free(&m);
    mlp_data_free(&data);
#ifdef TG_CLI_DIST
    if (o.dist) cli_dist_end();
#endif
    return rc;
}
