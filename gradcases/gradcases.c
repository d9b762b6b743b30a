/*
 * gradcases/gradcases.c - runs the gradient-check cases of one op: shared by the
 * op-table loop test (tests/check_ops.c) and `tapegrad gradcheck`.
 */
#include <math.h>
#include <stdio.h>
#include "gradcases.h"

struct family {
    const struct gc_case *cases;
    const int *n;
};
static const struct family families[] = {
    {gc_cases_elementwise, &gc_n_elementwise},
    {gc_cases_nn, &gc_n_nn},
    {gc_cases_linalg, &gc_n_linalg},
    {gc_cases_shape, &gc_n_shape},
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

static void note_failure(struct gc_op_result *res, const char *label, int rep, const char *why)
{
    if (res->n_failed++ == 0)
        snprintf(res->first_failure, sizeof res->first_failure, "%s (repeat %d): %s", label, rep,
                 why);
}

/* One run of case gc: make inputs, gradcheck, fold the report into res. */
static void run_case(const struct gc_case *gc, int c, int rep, uint64_t seed,
                     struct gc_op_result *res)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed + 1000u * (unsigned)gc->op + 10u * (unsigned)c + (unsigned)rep);
    struct tg_tensor *in[GC_MAX_IN] = {0};
    res->n_runs++;
    int n = gc->make(&rng, in);
    if (n <= 0) {
        note_failure(res, gc->label, rep, tg_last_error());
        return;
    }
    struct tg_gradcheck_options o = {.atol = 1e-8, .rtol = 1e-6};
    struct tg_gradcheck_report r;
    enum tg_status st = tg_gradcheck(gc->fn, in, n, NULL, &o, &r);
    if (st != TG_OK)
        note_failure(res, gc->label, rep, r.message);
    else if (r.n_checked == 0 && tg_tensor_numel(in[0]) != 0)
        note_failure(res, gc->label, rep, "nothing was checked");
    if (r.worst_input >= 0) {
        res->max_abs = fmax(res->max_abs, r.abs_err);
        res->max_rel = fmax(res->max_rel, r.rel_err);
    }
    for (int k = 0; k < n; k++) tg_tensor_free(in[k]);
}

void gc_check_op(enum tg_op op, int repeats, uint64_t seed, struct gc_op_result *res)
{
    *res = (struct gc_op_result){0};
    for (int f = 0; f < N_FAMILIES; f++)
        for (int c = 0; c < *families[f].n; c++) {
            const struct gc_case *gc = &families[f].cases[c];
            if (gc->op != op) continue;
            res->n_cases++;
            for (int rep = 0; rep < repeats; rep++) run_case(gc, c, rep, seed, res);
        }
}
