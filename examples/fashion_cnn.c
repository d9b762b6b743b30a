/*
 * examples/fashion_cnn.c - the W7 network (examples/cnn_model.h: two 3x3
 * convolutions with ReLU and 2x2 max pooling, then linear 3136-128-10) trained on
 * Fashion-MNIST with the trainer.
 *
 * Data: Debian's dataset-fashion-mnist, read as examples/fashion_mnist.c does;
 * the model's forward views each row of 784 pixels as a 1x28x28 image.
 * Training: tg_nn_train in mini-batch mode, cross-entropy, Adam (lr 1e-3) with
 * a cosine decay over the epochs, batches of 128 reshuffled every epoch. After
 * each epoch the test set is measured and `test accuracy: NN.NN%` printed. A
 * full run (all images, at least 10 epochs) must reach 91.5% (issue 13); other
 * runs the figure given with --min-accuracy (default 0).
 *
 * Usage: fashion_cnn [DIR] [--epochs N] [--limit N] [--test-limit N] [--threads N]
 *                    [--min-accuracy P] [--expect-decrease]
 *   DIR        the folder of the four *-ubyte.gz files
 *              (default /usr/share/datasets/fashion-mnist)
 *   --epochs   epochs to train (default 10)
 *   --limit    train on the first N training images only (default: all)
 *   --test-limit  measure the first N test images only (default: all)
 *   --threads  threads: tg_threads_set (the convolutions, poolings and large
 *              products split among them) and, with 1, OpenBLAS on one thread
 *   --min-accuracy  the final test accuracy in percent below which the exit
 *              status is 1 (default 91.5 for a full run, else 0)
 *   --expect-decrease  exit 1 unless the last epoch's mean training loss is
 *              below the first's (the quick test)
 * Exit status: 0 on success; 1 when a dataset file is missing, on an error, or
 * when a check above fails; 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tapegrad/tapegrad.h>
#include "cnn_model.h"
#include "fashion_data.h"
#if defined(TG_EXAMPLE_OPENBLAS)
#include <cblas.h>
#endif

#define DEFAULT_DIR     "/usr/share/datasets/fashion-mnist"
#define FULL_RUN_TARGET 91.5 /* percent */
enum { FULL_EPOCHS = 10 };

struct options {
    const char *dir;
    long epochs, limit, test_limit, threads;
    double min_accuracy; /* percent; negative: the default */
    bool expect_decrease;
};

/* What the epoch callback needs and keeps. */
struct progress {
    const struct tg_nn_module *model;
    const struct tg_dataset *test;
    double test_accuracy, first_loss, last_loss, seconds;
};

static bool parse_number(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){DEFAULT_DIR, FULL_EPOCHS, 0, 0, 0, -1, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        bool ok = true;
        if (!strcmp(a, "--epochs"))
            ok = parse_number(v, 1, 1000, &d) && d == (long)d, o->epochs = (long)d, i++;
        else if (!strcmp(a, "--limit"))
            ok = parse_number(v, 1, 60000, &d) && d == (long)d, o->limit = (long)d, i++;
        else if (!strcmp(a, "--test-limit"))
            ok = parse_number(v, 1, 10000, &d) && d == (long)d, o->test_limit = (long)d, i++;
        else if (!strcmp(a, "--threads"))
            ok = parse_number(v, 1, 256, &d) && d == (long)d, o->threads = (long)d, i++;
        else if (!strcmp(a, "--min-accuracy"))
            ok = parse_number(v, 0, 100, &o->min_accuracy), i++;
        else if (!strcmp(a, "--expect-decrease"))
            o->expect_decrease = true;
        else if (i == 1 && a[0] != '-')
            o->dir = a;
        else
            ok = false;
        if (!ok) return false;
    }
    return true;
}

static int on_epoch(const struct tg_nn_epoch_info *e, void *ctx)
{
    struct progress *p = ctx;
    if (tg_nn_evaluate(p->model, p->test, TG_LOSS_XENT, NULL, &p->test_accuracy) != TG_OK)
        return 1; /* stops training; main reports the error */
    if (e->epoch == 0) p->first_loss = e->loss;
    p->last_loss = e->loss;
    p->seconds += e->seconds;
    printf("epoch %3d  lr %.6f  loss %.4f  train acc %6.2f%%  %5.1f s\n", e->epoch + 1, e->lr,
           e->loss, 100 * e->accuracy, e->seconds);
    printf("test accuracy: %.2f%%\n", 100 * p->test_accuracy);
    fflush(stdout);
    return 0;
}

static struct tg_tensor *cnn_module_forward(void *self, struct tg_tape *T, struct tg_tensor *x)
{
    return cnn_forward(self, T, x);
}

/* Trains the network; the progress holds the final test accuracy, or false. */
static bool train(struct cnn *net, struct tg_dataset *train_set, const struct tg_dataset *test_set,
                  long epochs, struct progress *p)
{
    struct tg_nn_module model = {net->params, cnn_module_forward, net};
    *p = (struct progress){&model, test_set, -1, 0, 0, 0};
    struct tg_nn_train_config cfg = fashion_train_config(epochs, on_epoch, p);
    struct tg_nn_train_result res;
    if (tg_nn_train(&model, train_set, &cfg, &res) != TG_OK || res.stop != TG_STOP_MAX_EPOCHS)
        return false;
    printf("training time: %.1f s for %d epochs (%.1f s per epoch, without the test passes)\n",
           p->seconds, res.epochs, p->seconds / res.epochs);
    return true;
}

int main(int argc, char **argv)
{
    struct options o;
    if (!parse_options(argc, argv, &o)) {
        fprintf(stderr,
                "usage: fashion_cnn [DIR] [--epochs N] [--limit N] [--test-limit N] [--threads N] "
                "[--min-accuracy P] [--expect-decrease]\n");
        return 2;
    }
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/t10k-labels-idx1-ubyte.gz", o.dir);
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "fashion_cnn: missing %s (apt install dataset-fashion-mnist)\n", probe);
        return 1;
    }
#if defined(TG_EXAMPLE_OPENBLAS)
    if (o.threads > 0) openblas_set_num_threads((int)o.threads);
#endif
    if (o.threads > 0 && tg_threads_set((int)o.threads)) {
        fprintf(stderr, "fashion_cnn: %s\n", tg_last_error());
        return 2;
    }
    struct tg_dataset *train_set = fashion_first_rows(fashion_load(o.dir, "train"), o.limit);
    struct tg_dataset *test_set = fashion_first_rows(fashion_load(o.dir, "t10k"), o.test_limit);
    struct tg_rng rng;
    tg_rng_seed(&rng, 1);
    struct cnn net;
    bool ok = train_set && test_set && cnn_new(&net, &rng);
    struct progress p = {0};
    if (ok) {
        printf("fashion-mnist: %lld training, %lld test images; CNN conv32-pool-conv64-pool-"
               "128-10, Adam lr 1e-3 cosine, batch 128\n",
               (long long)tg_dataset_len(train_set), (long long)tg_dataset_len(test_set));
        ok = train(&net, train_set, test_set, o.epochs, &p);
    }
    if (!ok) fprintf(stderr, "fashion_cnn: %s\n", tg_last_error());
    if (train_set && test_set) cnn_free(&net);
    tg_dataset_free(train_set);
    tg_dataset_free(test_set);
    tg_threads_set(1); /* the workers end */
    double target = o.min_accuracy >= 0                                            ? o.min_accuracy
                    : o.limit == 0 && o.test_limit == 0 && o.epochs >= FULL_EPOCHS ? FULL_RUN_TARGET
                                                                                   : 0;
    if (ok && 100 * p.test_accuracy < target) {
        fprintf(stderr, "fashion_cnn: test accuracy below the target %.2f%%\n", target);
        ok = false;
    }
    if (ok && o.expect_decrease && !(p.last_loss < p.first_loss)) {
        fprintf(stderr, "fashion_cnn: the loss did not decrease (%.4f, then %.4f)\n", p.first_loss,
                p.last_loss);
        ok = false;
    }
    return ok ? 0 : 1;
}
