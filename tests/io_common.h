/*
 * tests/io_common.h - helpers shared by tests/check_io.c and tests/check_io_dataset.c.
 */
#ifndef TG_TESTS_IO_COMMON_H
#define TG_TESTS_IO_COMMON_H

#include <check.h>
#include <stddef.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

#define DATA TG_SOURCE_DIR "/tests/data/"

extern char tmpdir[256];
void make_tmpdir(void);                 /* a fresh directory under $TMPDIR or /tmp */
void remove_tmpdir(void);               /* removes it and the files in it */
const char *tmp_path(const char *name); /* tmpdir/name, in a static buffer */
void write_bytes(const char *path, const void *b, size_t n);
int count_files(void); /* entries in tmpdir */

/* Asserts that status expression `st` (evaluated once) is `want` and that the
 * message contains `substr`. */
#define ck_assert_error(st, want, substr)                                                          \
    do {                                                                                           \
        enum tg_status st_ = (st), want_ = (want);                                                 \
        ck_assert_msg(st_ == want_, "status %s, want %s (%s)", tg_status_str(st_),                 \
                      tg_status_str(want_), tg_last_error());                                      \
        ck_assert_msg(strstr(tg_last_error(), substr), "message \"%s\" lacks \"%s\"",              \
                      tg_last_error(), substr);                                                    \
    } while (0)

/* The dataset tcase, in tests/check_io_dataset.c. */
TCase *io_dataset_tcase(void);

#endif
