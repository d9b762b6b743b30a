/*
 * cli/mlpio.h - what `tapegrad train` and `tapegrad eval` share: reading the
 * DATA argument (a CSV file, an IDX pair IMAGES,LABELS or an MNIST-style
 * folder), the checks on class labels and parameters, the model (its file
 * format and normalization are the library's: tapegrad/model.h) and small
 * parsers.
 *
 * Every function that can fail prints one line "PROG: problem" on stderr and
 * returns a CLI_* exit status (cli.h); success is CLI_OK.
 */
#ifndef TG_CLI_MLPIO_H
#define TG_CLI_MLPIO_H

#include <stdbool.h>
#include <stdint.h>
#include <tapegrad/tapegrad.h>

/* The most dense layers a model file may describe. */
#define MLP_MAX_LAYERS 32

/* The library's last message without its leading "tg_function: ". */
const char *mlp_lib_error(void);

/* ---- parsers of option values (0 on success, -1 otherwise) ---- */

/* A decimal integer in [lo, hi], the whole string. */
int mlp_parse_long(const char *s, long lo, long hi, long *out);
/* A finite number > 0, the whole string. */
int mlp_parse_positive(const char *s, double *out);
/* "256,128" into sizes[0..*n-1] (each 1..1000000, at most max entries); "none" or
 * "" is no entry. */
int mlp_parse_sizes(const char *s, int64_t *sizes, int max, int *n);

/* ---- data ---- */

enum mlp_data_kind { MLP_DATA_CSV = 0, MLP_DATA_IDX = 1 };

/* What DATA named. A folder gives `train` (train-*) and `test` (t10k-*), each only
 * when asked for; the other forms give `train` only (whatever it is used for). */
struct mlp_data {
    enum mlp_data_kind kind;
    struct tg_dataset *train, *test; /* owned; NULL when not loaded */
};

/*
 * Loads DATA `spec` (raw values, no normalization) as f32:
 *   - a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each possibly ".gz", "-"
 *     or "." before "idx"): the train pair when want_train, the t10k pair when
 *     want_test;
 *   - an existing file: CSV with a header row, target column `target` (a name, or
 *     an integer index, negative from the end; NULL: the last column);
 *   - "IMAGES,LABELS": an IDX pair.
 * --target with IDX data is a usage error. Free with mlp_data_free.
 */
int mlp_data_load(const char *prog, const char *spec, const char *target, bool want_train,
                  bool want_test, struct mlp_data *out);
void mlp_data_free(struct mlp_data *d);

/*
 * Class labels: every target of ds must be an integer in [0, C). With *C <= 0 on
 * entry, C becomes max label + 1 (at least 2) and only the integer check applies.
 */
int mlp_check_classes(const char *prog, const struct tg_dataset *ds, int64_t *C);

/* ---- the model: tapegrad/model.h, and what the command adds ---- */

/* A model file's MLP (tg_nn_model) with the facts the command prints. */
struct mlp_model {
    struct tg_nn_model *nm; /* owned */
    struct tg_nn_mlp *mlp;  /* borrowed from nm */
    int64_t sizes[MLP_MAX_LAYERS + 1];
    int n_sizes;
    enum tg_act act; /* of the hidden layers */
    enum tg_nn_loss loss;
    char target[256]; /* the --target given to train, "" for the default */
};

/*
 * Creates m's MLP (sizes, act; the output layer linear; weights drawn by init
 * from rng, f32) and its model with `loss`; fills the other fields. The target
 * is kept as the model file's metadata key "target".
 */
int mlp_model_new(const char *prog, struct mlp_model *m, enum tg_nn_init init, struct tg_rng *rng);
/* tg_nn_model_save with the target; the error names the file. */
int mlp_model_save(const char *prog, struct mlp_model *m, const char *path);
/* tg_nn_model_load (f32) into *m (free with mlp_model_free). */
int mlp_model_read(const char *prog, const char *path, struct mlp_model *m);
void mlp_model_free(struct mlp_model *m);

/* tg_nn_model_normalize on ds, named `what` (the DATA argument) in errors. */
int mlp_normalize(const char *prog, const struct mlp_model *m, const char *what,
                  struct tg_dataset *ds);

/* Every parameter of the MLP is finite, or an error naming the first that is not. */
int mlp_check_params(const char *prog, const struct mlp_model *m);

/* "4-64-3": the layer sizes of m, into buf. */
char *mlp_arch_str(const struct mlp_model *m, char *buf, size_t size);

/* Prints "LABEL loss L  accuracy A% (right/n)" (no accuracy for MSE). */
void mlp_print_score(const char *label, enum tg_nn_loss loss, double mean_loss, double accuracy,
                     int64_t n);

#endif
