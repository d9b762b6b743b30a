/*
 * gradcases/gradcases.h - gradient-check cases of the op table, shared by the
 * `gradcheck` test suite (tests/check_ops.c) and `tapegrad gradcheck`.
 *
 * Every op family keeps its cases in gradcases/gradcases_<family>.c. A case builds
 * random f64 inputs (random shapes, broadcasting, odd sizes) and a function that
 * applies the op; check_ops.c checks every case of every op in the table (in f64
 * and f32, see gc_check_op) and fails for an op that has none.
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
extern const struct gc_case gc_cases_conv[];
extern const int gc_n_conv;

extern const struct gc_case gc_cases_norm[];
extern const int gc_n_norm;

/* detach's cases (gradcases_grad.c), listed in gc_cases_shape. */
int gc_mk_detach(struct tg_rng *rng, struct tg_tensor **in);
struct tg_tensor *gc_f_detach(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c);
struct tg_tensor *gc_f_detach_node(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c);

/* The case tables by family; scalar_run: every case of the family also takes
 * rank-0 inputs (one more run per repeat on the first element of each input, for
 * the one-element kernels of the scalar record path). */
struct gc_family {
    const struct gc_case *cases;
    const int *n;
    bool scalar_run;
};
#define GC_N_FAMILIES 6
extern const struct gc_family gc_families[GC_N_FAMILIES];

/* Copies of in[0..n) in dtype dt, requiring grad as the originals do; false when
 * one failed (the others are made; free them all with gc_free_all). */
bool gc_convert(struct tg_tensor *const *in, int n, enum tg_dtype dt, struct tg_tensor **out);
/* Rank-0 f64 copies of in[0..n): each input's first element, requiring grad as it does. */
bool gc_scalars(struct tg_tensor *const *in, int n, struct tg_tensor **out);
/* tg_tensor_free of t[0..n). */
void gc_free_all(struct tg_tensor **t, int n);

/* Tolerances of the f32 check (see gc_check_op). */
#define GC_F32_ATOL 1e-5
#define GC_F32_RTOL 1e-4

/* The outcome of one op's cases (gradcases.c). */
struct gc_op_result {
    int n_cases;    /* cases found for the op (0: none, which is a failure) */
    int n_runs;     /* runs: case x repeat, and again on scalars for elementwise cases */
    int n_failed;   /* runs that failed (in f64 or f32) or could not run */
    double max_abs; /* f64: the largest abs error of a worst element over the runs */
    double max_rel; /* f64: the largest rel error of a worst element over the runs */
    double max_f32; /* f32: the largest |g32 - g64| / tolerance over all elements */
    char first_failure[320];
};

/*
 * Checks every case of `op` `repeats` times, each repeat on new random shapes and
 * values drawn from a seed derived from op, case, repeat and `seed`:
 *   - the case's function must record `op` (found in the graph under its output);
 *   - f64: tg_gradcheck against central differences, atol 1e-8, rtol 1e-6;
 *   - f32: the same function on the inputs rounded to f32, its backward against
 *     the f64 backward at those rounded inputs, per element
 *     |g32 - g64| <= GC_F32_ATOL * max(1, max |g64| of the input) + GC_F32_RTOL * |g64|;
 *   - elementwise cases (unary, binary ops and the full reductions) run once more
 *     on rank-0 inputs (each input's first element), in both dtypes, which takes
 *     the ops' one-element kernels.
 */
void gc_check_op(enum tg_op op, int repeats, uint64_t seed, struct gc_op_result *res);
/* The same checks for one case of one's own (scalar_run: also on rank-0 inputs),
 * as case 0 of a family of one. */
void gc_check_case(const struct gc_case *gc, bool scalar_run, int repeats, uint64_t seed,
                   struct gc_op_result *res);

/* A case's function with input k replaced by the tensor tg_jacobian differentiates:
 * pass gc_with_input_k as the function and a struct gc_one_input as its context
 * (in[0..n) the case's inputs; in[k] is the one replaced). */
struct gc_one_input {
    const struct gc_case *gc;
    struct tg_tensor **in;
    int n, k;
};
struct tg_tensor *gc_with_input_k(struct tg_tape *T, struct tg_tensor *const *x, int nx, void *ctx);

#endif
