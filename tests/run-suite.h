/*
 * tests/run-suite.h - the main of a Check test program: runs the suite, prints
 * Check's summary and turns the failure count into the exit status.
 */
#ifndef TG_TEST_RUN_SUITE_H
#define TG_TEST_RUN_SUITE_H

#include <check.h>

static inline int tg_test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
