/*
 * cli/eval.c - `tapegrad eval`: rebuilds an MLP from a model file written by
 * `tapegrad train --save` (the metadata alone says its sizes, activation, loss
 * and input normalization), and reports its loss, accuracy and confusion matrix
 * on a data set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "mlpio.h"

static const char prog[] = "tapegrad eval";

static const char usage[] =
    "usage: tapegrad eval MODEL DATA [--target COL]\n"
    "\n"
    "Reads MODEL (a safetensors file written by `tapegrad train --save`), rebuilds\n"
    "the network from its metadata, applies the normalization saved with it to\n"
    "DATA, and prints the mean loss and, for a classifier (loss xent), the accuracy\n"
    "and the confusion matrix (rows: true class, columns: predicted class).\n"
    "\n"
    "DATA is a CSV file, an IDX pair IMAGES,LABELS, or an MNIST-style folder (then\n"
    "its t10k-* test files are used), as for `tapegrad train`.\n"
    "\n"
    "  --target COL  CSV target column, a header name or a 0-based index (negative\n"
    "                from the end); default the one the model was trained with\n"
    "  -h, --help    this text\n"
    "\n"
    "The model is read with the library's tg_nn_model_load (tapegrad/model.h), so a\n"
    "program of your own gets the same predictions.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime failure (a missing or malformed file, metadata\n"
    "missing or inconsistent with the tensors, a NaN or Inf weight or datum, data\n"
    "that do not fit the model), 2 usage error.\n";

struct opts {
    const char *model, *data, *target;
};

/* CLI_OK, CLI_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return -1;
        }
        if (!strcmp(a, "--target")) {
            if (++i == argc) {
                fprintf(stderr, "%s: --target needs a value (see --help)\n", prog);
                return CLI_USAGE;
            }
            o->target = argv[i];
        } else if (!strncmp(a, "--", 2)) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, a);
            return CLI_USAGE;
        } else if (!o->model || !o->data) {
            *(o->model ? &o->data : &o->model) = a;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (MODEL and DATA only)\n", prog, a);
            return CLI_USAGE;
        }
    }
    if (!o->data) {
        fprintf(stderr, "%s: %s (see --help)\n", prog,
                o->model ? "no DATA given" : "no MODEL given");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* The counts conf[t * C + p] of true class t predicted as p, as a table. */
static void print_confusion(const int64_t *conf, int64_t C)
{
    int64_t big = C - 1;
    for (int64_t i = 0; i < C * C; i++) big = conf[i] > big ? conf[i] : big;
    int w = snprintf(NULL, 0, "%lld", (long long)big) + 2;
    w = w < 5 ? 5 : w;
    printf("confusion matrix (rows: true class, columns: predicted class):\n%*s", 9, "true\\pred");
    for (int64_t p = 0; p < C; p++) printf("%*lld", w, (long long)p);
    putchar('\n');
    for (int64_t t = 0; t < C; t++) {
        printf("%9lld", (long long)t);
        for (int64_t p = 0; p < C; p++) printf("%*lld", w, (long long)conf[t * C + p]);
        putchar('\n');
    }
}

static int confusion(struct mlp_model *m, const struct tg_dataset *ds)
{
    int64_t n = tg_dataset_len(ds), C = m->sizes[m->n_sizes - 1];
    double *pred = malloc((size_t)n * sizeof *pred);       /* (n) */
    int64_t *conf = calloc((size_t)(C * C), sizeof *conf); /* (C, C) */
    int rc = pred && conf ? CLI_OK : CLI_FAIL;
    if (!rc && tg_nn_model_predict(m->nm, ds, pred)) {
        fprintf(stderr, "%s: %s\n", prog, mlp_lib_error());
        rc = CLI_FAIL;
    }
    for (int64_t i = 0; !rc && i < n; i++)
        conf[(int64_t)tg_tensor_get(tg_dataset_y(ds), i) * C + (int64_t)pred[i]]++;
    if (!rc) print_confusion(conf, C);
    free(pred);
    free(conf);
    return rc;
}

/* The data set to score: loaded, labels checked, normalized like training. */
static int load(const struct opts *o, struct mlp_model *m, struct mlp_data *data,
                struct tg_dataset **ds)
{
    struct stat sb;
    const char *target = o->target;
    /* the model's own target column applies to CSV files only */
    if (!target && m->target[0] && stat(o->data, &sb) == 0 && S_ISREG(sb.st_mode))
        target = m->target;
    int rc = mlp_data_load(prog, o->data, target, false, true, data);
    if (rc) return rc;
    *ds = data->test ? data->test : data->train;
    int64_t d = tg_dataset_features(*ds), C = m->sizes[m->n_sizes - 1];
    if (d != m->sizes[0]) {
        fprintf(stderr, "%s: %s has %lld features, the model takes %lld\n", prog, o->data,
                (long long)d, (long long)m->sizes[0]);
        return CLI_FAIL;
    }
    if (m->loss == TG_LOSS_XENT && (rc = mlp_check_classes(prog, *ds, &C))) return rc;
    return mlp_normalize(prog, m, o->data, *ds);
}

int tg_cli_eval(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? CLI_OK : rc;
    struct mlp_model m;
    struct mlp_data data = {0};
    struct tg_dataset *ds = NULL;
    if ((rc = mlp_model_read(prog, o.model, &m))) return rc;
    rc = load(&o, &m, &data, &ds);
    char arch[MLP_MAX_LAYERS * 8 + 8];
    if (!rc)
        printf("model: %s %s, loss %s; data: %lld examples\n", mlp_arch_str(&m, arch, sizeof arch),
               tg_nn_act_name(m.act), tg_nn_loss_name(m.loss), (long long)tg_dataset_len(ds));
    struct tg_nn_module model = tg_nn_mlp_module(m.mlp);
    double loss, acc;
    if (!rc && tg_nn_evaluate(&model, ds, m.loss, &loss, &acc)) {
        fprintf(stderr, "%s: evaluation failed: %s\n", prog, tg_last_error());
        rc = CLI_FAIL;
    }
    if (!rc) mlp_print_score("", m.loss, loss, acc, tg_dataset_len(ds));
    if (!rc && m.loss == TG_LOSS_XENT) rc = confusion(&m, ds);
    mlp_model_free(&m);
    mlp_data_free(&data);
    return rc;
}
