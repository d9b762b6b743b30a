/*
 * cli/report.h - `tapegrad train --report FILE.html`: a training report as one
 * self-contained page (inline SVG and CSS, no script, no network): loss and
 * accuracy per epoch (train and test), per-layer gradient norms, update/weight
 * ratios and dead-ReLU fractions per epoch, weight histograms of the first and
 * the last epoch, and the confusion matrix.
 *
 * cli/train.c feeds it once per epoch and calls report_finish at the end; the
 * functions print one line "tapegrad train: problem" on failure and return a
 * CLI_* status (cli.h).
 */
#ifndef TG_CLI_REPORT_H
#define TG_CLI_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <tapegrad/tapegrad.h>

struct report;

/* A report to be written to path (created now, so that a path that cannot be
 * written fails before training) for at most max_epochs epochs of an MLP with
 * n_sizes layer widths (sizes[0] inputs ... sizes[n_sizes - 1] outputs); title
 * and about (a line on the data and model) are copied. NULL when path cannot be
 * created (said on stderr) or out of memory. */
struct report *report_new(const char *path, int max_epochs, const int64_t *sizes, int n_sizes,
                          bool relu, bool classify, const char *title, const char *about);
void report_free(struct report *r);

/* The scores of 0-based epoch e: the trainer's running means (train) and, when
 * there is a test set, an evaluation after the epoch (else NaN). */
void report_epoch(struct report *r, int e, double train_loss, double train_acc, double test_loss,
                  double test_acc);
/* Layer k of epoch e: gradient norm, ||W_end - W_start|| / ||W_start||, and the
 * fraction of dead ReLU units (NaN for the output layer or other activations). */
void report_layer(struct report *r, int e, int k, double grad_norm, double ratio, double dead);
/* Copies the weights of every layer of mlp: the first call's copy is kept as
 * the first epoch's, each later one replaces the last epoch's. */
int report_weights(struct report *r, const struct tg_nn_mlp *mlp);
/* Counts the confusion matrix of mlp on ds (named set, e.g. "test") and writes
 * the page. */
int report_finish(struct report *r, struct tg_nn_mlp *mlp, const struct tg_dataset *ds,
                  const char *set);

#endif
