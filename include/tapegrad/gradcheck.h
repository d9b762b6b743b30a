/*
 * tapegrad/gradcheck.h - numerical gradient checking, a public API.
 *
 * tg_gradcheck compares the gradients that backward computes for a function of
 * some leaf inputs with central finite differences, element by element, and
 * reports the worst element. Use it in your own tests to check a model or a
 * custom composite op (tapegrad/check.h wraps it as a Check assertion).
 */
#ifndef TAPEGRAD_GRADCHECK_H
#define TAPEGRAD_GRADCHECK_H

#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The function under test: builds its output on T from the inputs (borrowed) and
 * returns it (a node of T), or NULL on error. It must be deterministic and must not
 * keep pointers to T's nodes between calls. */
typedef struct tg_tensor *(*tg_gradcheck_fn)(struct tg_tape *T, struct tg_tensor *const *inputs,
                                             int n_inputs, void *ctx);

struct tg_gradcheck_options {
    double eps;    /* finite-difference step; 0 picks 1e-6 (f64) or 1e-3 (f32 numerics) */
    double atol;   /* pass when |analytic - numeric| <= atol + rtol * |numeric|; */
    double rtol;   /*   0 for both picks 1e-8/1e-6 in f64 and 1e-4/1e-2 in f32 */
    uint64_t seed; /* for the random projection of a non-scalar output */
    /* The numeric side runs the function on f64 copies of f32 inputs (so the
     * differences are taken in f64) unless this is set; the function must then
     * accept f64 inputs. When it fails on f64 inputs the check falls back to f32. */
    bool no_promote;
    /* A check that compared (almost) nothing is not a pass: when more than this
     * share of the checked elements are kinks, the check fails with
     * TG_ERR_GRADCHECK and a message saying so and suggesting inputs away from
     * the kinks. 0 picks 0.5; 1 fails only when every element is a kink. */
    double max_kink_share;
    /* Opt-in: such a check returns TG_OK with report->skipped set instead of
     * failing (for inputs that sit on kinks on purpose). */
    bool skip_kinks;
};

/* The result. "Worst" is the element with the largest error relative to the
 * tolerance; kinks are excluded from it and counted separately. */
struct tg_gradcheck_report {
    bool passed;
    int64_t n_checked;   /* elements compared */
    int64_t n_failed;    /* elements beyond tolerance */
    int64_t n_kinks;     /* elements skipped: the function is not smooth there */
    int worst_input;     /* index into inputs, -1 when nothing was checked */
    int64_t worst_index; /* flat index into that input */
    double analytic;     /* backward's value at the worst element */
    double numeric;      /* central difference at the worst element */
    double abs_err;
    double rel_err; /* abs_err / max(|numeric|, tiny) */
    int kink_input; /* first kink found (-1 if none) */
    int64_t kink_index;
    bool numeric_f64; /* the numeric side ran in f64 */
    /* Too many kinks (see max_kink_share) and options->skip_kinks set: nothing
     * was failed, nor meaningfully checked; passed is false. */
    bool skipped;
    char message[256]; /* one line describing the outcome */
};

/*
 * Checks d(out)/d(inputs[i]) for every input with requires-grad set. A scalar
 * output is differentiated directly; any other output is projected onto a fixed
 * random vector v (seeded by options->seed), i.e. the check is on v^T J.
 * A kink is an element where the one-sided differences disagree with each other
 * beyond the tolerance (relu at 0, abs at 0, max at a tie): the report counts it
 * instead of reporting a false failure.
 * The inputs' values are restored; their gradients are zeroed on return.
 * options may be NULL (defaults); report may be NULL.
 * Returns TG_OK when the check passed, TG_ERR_GRADCHECK when it ran and failed,
 * or the status of the error that stopped it: TG_ERR_NULL (fn or inputs NULL, an
 * input NULL, or fn returned NULL without setting an error), fn's own status when
 * it returned NULL with one, TG_ERR_STATE (an input is not a leaf), TG_ERR_NOMEM.
 */
enum tg_status tg_gradcheck(tg_gradcheck_fn fn, struct tg_tensor *const *inputs, int n_inputs,
                            void *ctx, const struct tg_gradcheck_options *options,
                            struct tg_gradcheck_report *report);

/* How a derivative compares with finite differences (tg_gradcheck_judge). */
enum tg_gradcheck_verdict {
    TG_GRADCHECK_AGREE = 0,      /* |analytic - central| <= atol + rtol |central| */
    TG_GRADCHECK_KINK = 1,       /* the one-sided slopes differ, analytic between them */
    TG_GRADCHECK_NOT_FINITE = 2, /* analytic or central difference is NaN or infinite */
    TG_GRADCHECK_DISAGREE = 3    /* none of the above: a wrong derivative */
};

/*
 * The judgement tg_gradcheck makes of one element: analytic is backward's
 * derivative, f0, fp and fm the function at x, x + h and x - h (h > 0). The
 * central difference is (fp - fm) / 2h, the one-sided slopes (fp - f0) / h and
 * (f0 - fm) / h. AGREE within the tolerance; otherwise KINK when the one-sided
 * slopes differ by more than the tolerance and analytic lies between them (relu
 * or abs at 0, max at a tie); otherwise NOT_FINITE when analytic or the central
 * difference is not finite; otherwise DISAGREE. Pure: no errors, no state.
 */
enum tg_gradcheck_verdict tg_gradcheck_judge(double analytic, double f0, double fp, double fm,
                                             double h, double atol, double rtol);

/* "agree", "kink", "not finite", "disagree"; "?" when out of range. */
const char *tg_gradcheck_verdict_name(enum tg_gradcheck_verdict v);

#ifdef __cplusplus
}
#endif
#endif
