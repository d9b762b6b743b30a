/*
 * tapegrad/check.h - Check (libcheck) assertions built on tg_gradcheck and
 * tg_gradgradcheck.
 *
 * Include it after <check.h> in a Check test:
 *     ck_assert_gradcheck(my_fn, inputs, 2, NULL, NULL);
 * On failure the test fails with the report's message: the input, the flat index,
 * the analytic and numeric values and the errors of the worst element.
 * Only this header needs Check; the library itself does not link it.
 */
#ifndef TAPEGRAD_CHECK_H
#define TAPEGRAD_CHECK_H

#include "gradcheck.h"
#include "grad.h"

#define ck_assert_gradcheck(fn, inputs, n_inputs, ctx, options)                                    \
    do {                                                                                           \
        struct tg_gradcheck_report tg_ck_rep_;                                                     \
        enum tg_status tg_ck_st_ =                                                                 \
            tg_gradcheck((fn), (inputs), (n_inputs), (ctx), (options), &tg_ck_rep_);               \
        ck_assert_msg(tg_ck_st_ == TG_OK, "gradcheck of %s: %s (%s)", #fn, tg_ck_rep_.message,     \
                      tg_status_str(tg_ck_st_));                                                   \
    } while (0)

/* The same for tg_gradgradcheck (second order, tapegrad/grad.h). */
#define ck_assert_gradgradcheck(fn, inputs, n_inputs, ctx, options)                                \
    do {                                                                                           \
        struct tg_gradcheck_report tg_ck_rep_;                                                     \
        enum tg_status tg_ck_st_ =                                                                 \
            tg_gradgradcheck((fn), (inputs), (n_inputs), (ctx), (options), &tg_ck_rep_);           \
        ck_assert_msg(tg_ck_st_ == TG_OK, "gradgradcheck of %s: %s (%s)", #fn, tg_ck_rep_.message, \
                      tg_status_str(tg_ck_st_));                                                   \
    } while (0)

#endif
