/*
 * gradcases/gradcases.h - gradient-check cases of the op table, shared by the
 * `gradcheck` test suite (tests/check_ops.c) and `tapegrad gradcheck`.
 *
 * Every op family keeps its cases in gradcases/gradcases_<family>.c. A case builds
 * random f64 inputs (random shapes, broadcasting, odd sizes) and a function that
 * applies the op; check_ops.c gradchecks every case of every op in the table and
 * fails for an op that has none.
 */
#ifndef TG_GRADCASES_H
#define TG_GRADCASES_H

#include <tapegrad/tapegrad.h>

#define GC_MAX_IN 4

struct gc_case {
    enum tg_op op;
    const char *label;
    /* Fills in[] with new leaves (the ones to differentiate have requires-grad
     * set) and returns how many; 0 on failure. */
    int (*make)(struct tg_rng *rng, struct tg_tensor **in);
    tg_gradcheck_fn fn;
};

/* Helpers for cases. */
struct tg_tensor *gc_rand(struct tg_rng *rng, int rank, const int64_t *shape, double lo, double hi,
                          bool grad);
int64_t gc_dim(struct tg_rng *rng); /* a random size among 1, 2, 3, 5, 7 */

extern const struct gc_case gc_cases_elementwise[];
extern const int gc_n_elementwise;
extern const struct gc_case gc_cases_nn[];
extern const int gc_n_nn;
extern const struct gc_case gc_cases_linalg[];
extern const int gc_n_linalg;
extern const struct gc_case gc_cases_shape[];
extern const int gc_n_shape;

/* The outcome of one op's cases (gradcases.c). */
struct gc_op_result {
    int n_cases;    /* cases found for the op (0: none, which is a failure) */
    int n_runs;     /* case x repeat runs */
    int n_failed;   /* runs that failed or could not run */
    double max_abs; /* the largest abs error of a worst element over the runs */
    double max_rel; /* the largest rel error of a worst element over the runs */
    char first_failure[320];
};

/* Gradchecks every case of `op` `repeats` times in f64 (atol 1e-8, rtol 1e-6),
 * each repeat on new random shapes drawn from a seed derived from op, case,
 * repeat and `seed`. */
void gc_check_op(enum tg_op op, int repeats, uint64_t seed, struct gc_op_result *res);

#endif
