/*
 * cli/gradcheck.c - `tapegrad gradcheck`: the op-table gradient check as a table.
 *
 * Runs every gradient-check case of every op in the table (the cases of the
 * `gradcheck` test suite, gradcases/) on random shapes and prints, per op, the
 * number of runs, the largest absolute and relative error of the worst element
 * in f64 (against central differences, atol 1e-8, rtol 1e-6), the largest f32
 * error as a fraction of its tolerance (f32 backward against f64 backward), and
 * whether all runs passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "cli.h"
#include "gradcases.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tapegrad gradcheck [--op NAME] [--repeats N] [--seed N]\n\n"
               "Gradient-checks every op of the table on random shapes and prints: op, runs,\n"
               "max abs and rel error in f64 (backward against central differences), the\n"
               "largest f32 error / tolerance (backward in f32 against backward in f64 at\n"
               "the same f32-rounded inputs), pass. Each case must record its op; the\n"
               "elementwise ops run again on scalars (their one-element kernels).\n"
               "Exit status 0 when every op passes, 1 otherwise.\n\n"
               "  --op NAME     check only this op (e.g. matmul)\n"
               "  --repeats N   random shapes per case (default 4)\n"
               "  --seed N      seed of the shapes and values (default 0)\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Edit distance between a and b (short op names: a row of 64 suffices). */
static int distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), row[65];
    if (la > 64 || lb > 64) return 99;
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* When name is not an op of the table: says so on stderr, with the closest
 * names (edit distance at most 2) or else the whole list, and returns true. */
static bool unknown_op(const char *name)
{
    int best = 3;
    for (int op = 0; op < tg_op_count(); op++) {
        if (!strcmp(name, tg_op_name((enum tg_op)op))) return false;
        int d = distance(name, tg_op_name((enum tg_op)op));
        best = d < best ? d : best;
    }
    fprintf(stderr, "tapegrad gradcheck: no op named '%.40s'; ", name);
    if (best <= 2) {
        fputs("did you mean", stderr);
        for (int op = 0, k = 0; op < tg_op_count(); op++)
            if (distance(name, tg_op_name((enum tg_op)op)) == best)
                fprintf(stderr, "%s '%s'", k++ ? " or" : "", tg_op_name((enum tg_op)op));
        fputs("?\n", stderr);
    } else {
        fputs("the ops are:", stderr);
        for (int op = 0; op < tg_op_count(); op++)
            fprintf(stderr, " %s", tg_op_name((enum tg_op)op));
        fputc('\n', stderr);
    }
    return true;
}

int tg_cli_gradcheck(int argc, char **argv)
{
    const char *only = NULL;
    long repeats = 4, seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        }
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--op") && has_value) {
            only = argv[++i];
        } else if (!strcmp(a, "--repeats") && has_value) {
            if (parse_int(argv[++i], 1, 1000, &repeats)) goto bad;
        } else if (!strcmp(a, "--seed") && has_value) {
            if (parse_int(argv[++i], 0, 1L << 30, &seed)) goto bad;
        } else {
            fprintf(stderr, "tapegrad gradcheck: unknown or incomplete option '%s'\n", a);
            return CLI_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "tapegrad gradcheck: bad value '%s' for %s\n", argv[i], a);
        return CLI_USAGE;
    }
    if (only && unknown_op(only)) return CLI_USAGE;
    int n_ops = 0, n_bad = 0;
    printf("%-18s %5s %12s %12s %12s  %s\n", "op", "runs", "max abs err", "max rel err",
           "f32 err/tol", "pass");
    for (int op = 0; op < tg_op_count(); op++) {
        if (only && strcmp(only, tg_op_name((enum tg_op)op))) continue;
        struct gc_op_result r;
        gc_check_op((enum tg_op)op, (int)repeats, (uint64_t)seed, &r);
        bool pass = r.n_cases > 0 && r.n_failed == 0;
        printf("%-18s %5d %12.3e %12.3e %12.3e  %s\n", tg_op_name((enum tg_op)op), r.n_runs,
               r.max_abs, r.max_rel, r.max_f32, pass ? "yes" : "NO");
        if (!pass)
            printf("    %s\n", r.n_cases ? r.first_failure : "no gradient-check case for this op");
        n_ops++;
        n_bad += !pass;
    }
    if (n_ops == 0) {
        fprintf(stderr, "tapegrad gradcheck: no op named '%s'\n", only);
        return CLI_USAGE;
    }
    printf("%d ops checked, %d passed, %d failed\n", n_ops, n_ops - n_bad, n_bad);
    return n_bad ? CLI_FAIL : CLI_OK;
}
