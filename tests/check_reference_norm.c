/*
 * tests/check_reference_norm.c - batch_norm, layer_norm, embedding, where and
 * clamp against PyTorch float64: for every case of
 * tests/reference/reference_norm.txt (written by
 * tests/reference/gen_reference_norm.py) the same graph is built with tapegrad
 * in f64 from the case's `input` and `label` tensors, loss = sum(y * R), and the
 * loss, the gradient of every input, batch_norm's running buffers after the step
 * (from the file's rm0/rv0 before it) and, for the *_hvp cases, the
 * Hessian-vector products (tg_hvp against PyTorch's double backward) are
 * compared element by element: |got - ref| <= 1e-9 max(|ref|, 1e-6 max|ref|),
 * the floor taken relative to the tensor's largest element so that an element
 * that cancels to nearly 0 is held to the tensor's scale.
 *
 * Usage: check_reference_norm PATH/reference_norm.txt (meson passes the path).
 * The file and the case table must agree both ways.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

#define REL_TOL 1e-9

struct rec {
    char case_name[64], kind[8], name[32];
    int rank;
    int64_t shape[TG_MAX_DIM], numel;
    double *v;
};
static struct rec *recs;
static int n_recs;
static char load_err[256];

/* One line "<case> <kind> <name> <rank> <dims> <values>" into r; false if malformed. */
static bool parse_line(char *line, struct rec *r)
{
    char *save = NULL, *tok[4];
    for (int i = 0; i < 4; i++)
        if (!(tok[i] = strtok_r(i ? NULL : line, " \t\n", &save))) return false;
    if (strlen(tok[0]) >= sizeof r->case_name || strlen(tok[1]) >= sizeof r->kind ||
        strlen(tok[2]) >= sizeof r->name)
        return false;
    strcpy(r->case_name, tok[0]);
    strcpy(r->kind, tok[1]);
    strcpy(r->name, tok[2]);
    char *end;
    long rank = strtol(tok[3], &end, 10);
    if (*end || rank < 0 || rank > TG_MAX_DIM) return false;
    r->rank = (int)rank;
    r->numel = 1;
    for (int d = 0; d < r->rank; d++) {
        char *t = strtok_r(NULL, " \t\n", &save);
        long long s = t ? strtoll(t, &end, 10) : -1;
        if (!t || *end || s < 0 || s > 1 << 20) return false;
        r->shape[d] = s;
        r->numel *= s;
    }
    if (r->numel > 1 << 20 || !(r->v = malloc((size_t)(r->numel + 1) * sizeof *r->v))) return false;
    for (int64_t i = 0; i < r->numel; i++) {
        char *t = strtok_r(NULL, " \t\n", &save);
        if (!t || ((r->v[i] = strtod(t, &end)), *end) || !isfinite(r->v[i])) return false;
    }
    return strtok_r(NULL, " \t\n", &save) == NULL;
}

static bool load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(load_err, sizeof load_err, "cannot open %s", path), false;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) != -1) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        struct rec *grown = realloc(recs, (size_t)(n_recs + 1) * sizeof *recs);
        if (!grown) break;
        recs = grown;
        memset(&recs[n_recs], 0, sizeof *recs);
        ok = parse_line(line, &recs[n_recs]);
        if (ok)
            n_recs++;
        else
            snprintf(load_err, sizeof load_err, "%s:%d: malformed line", path, lineno);
    }
    free(line);
    fclose(f);
    return ok && n_recs > 0;
}

static const struct rec *find(const char *c, const char *kind, const char *name)
{
    for (int i = 0; i < n_recs; i++)
        if (!strcmp(recs[i].case_name, c) && !strcmp(recs[i].kind, kind) &&
            !strcmp(recs[i].name, name))
            return &recs[i];
    return NULL;
}

/* ---- building a case ---- */

#define MAX_LEAVES 8
struct graph {
    const char *case_name;
    struct tg_tape *T;
    struct tg_tensor *leaf[MAX_LEAVES];
    const struct rec *rec[MAX_LEAVES];
    int n;
    struct tg_tensor *rm, *rv; /* batch_norm's buffers: copies of rm0, rv0 */
};

/* A leaf from the case's tensor kind/name (inputs require grad); fails the test
 * when the file lacks it. */
static struct tg_tensor *leaf(struct graph *g, const char *kind, const char *name)
{
    const struct rec *r = find(g->case_name, kind, name);
    ck_assert_msg(r != NULL, "%s: the file has no %s %s", g->case_name, kind, name);
    ck_assert_int_lt(g->n, MAX_LEAVES);
    struct tg_tensor *t = tg_tensor_from_f64(TG_F64, r->rank, r->shape, r->v);
    ck_assert_ptr_nonnull(t);
    if (!strcmp(kind, "input")) tg_tensor_set_requires_grad(t, true);
    g->rec[g->n] = r;
    return g->leaf[g->n++] = t;
}
static struct tg_tensor *in(struct graph *g, const char *name)
{
    return leaf(g, "input", name);
}
static struct tg_tensor *opt_in(struct graph *g, const char *name)
{
    return find(g->case_name, "input", name) ? in(g, name) : NULL;
}

static struct tg_tensor *batch_norm(struct graph *g, bool training, double momentum, double eps)
{
    struct tg_tensor *x = in(g, "x"), *w = opt_in(g, "w"), *b = opt_in(g, "b");
    g->rm = tg_tensor_copy(leaf(g, "label", "rm0"));
    g->rv = tg_tensor_copy(leaf(g, "label", "rv0"));
    struct tg_batch_norm_stats st = {g->rm, g->rv, NULL};
    return tg_batch_norm(g->T, x, w, b, &st, training, momentum, eps);
}
static struct tg_tensor *b_bn_train_2d(struct graph *g)
{
    return batch_norm(g, true, 0.1, 1e-5);
}
static struct tg_tensor *b_bn_train_4d(struct graph *g)
{
    return batch_norm(g, true, 0.3, 1e-3);
}
static struct tg_tensor *b_bn_eval(struct graph *g)
{
    return batch_norm(g, false, 0.1, 1e-5);
}
static struct tg_tensor *b_ln_last1(struct graph *g)
{
    struct tg_tensor *x = in(g, "x");
    return tg_layer_norm(g->T, x, 1, in(g, "w"), in(g, "b"), 1e-5);
}
static struct tg_tensor *b_ln_last2(struct graph *g)
{
    struct tg_tensor *x = in(g, "x");
    return tg_layer_norm(g->T, x, 2, in(g, "w"), in(g, "b"), 1e-5);
}
static struct tg_tensor *b_ln_plain(struct graph *g)
{
    return tg_layer_norm(g->T, in(g, "x"), 1, NULL, NULL, 1e-3);
}
static struct tg_tensor *b_embedding(struct graph *g)
{
    struct tg_tensor *W = in(g, "W");
    return tg_embedding(g->T, W, leaf(g, "label", "idx"));
}
static struct tg_tensor *b_where(struct graph *g)
{
    struct tg_tensor *a = in(g, "a"), *b = in(g, "b");
    return tg_where(g->T, leaf(g, "label", "cond"), a, b);
}
static struct tg_tensor *b_clamp(struct graph *g)
{
    return tg_clamp(g->T, in(g, "x"), -0.3, 0.4);
}

static const struct {
    const char *name;
    struct tg_tensor *(*build)(struct graph *g);
} cases[] = {
    {"bn_train_2d_hvp", b_bn_train_2d},
    {"bn_train_4d", b_bn_train_4d},
    {"bn_train_plain", b_bn_train_2d},
    {"bn_eval_hvp", b_bn_eval},
    {"ln_last1_hvp", b_ln_last1},
    {"ln_last2", b_ln_last2},
    {"ln_plain", b_ln_plain},
    {"embedding", b_embedding},
    {"where", b_where},
    {"clamp", b_clamp},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* got (n values, or the gradient of leaf t when grad) against the file's r,
 * element by element. */
static void compare_values(const char *c, const char *what, const struct tg_tensor *t, bool grad,
                           const struct rec *r)
{
    ck_assert_msg(t != NULL, "%s: no %s: %s", c, what, tg_last_error());
    ck_assert_msg(r != NULL, "%s: the file has no %s", c, what);
    ck_assert_msg(tg_tensor_numel(t) == r->numel, "%s: %s has %lld elements, the file %lld", c,
                  what, (long long)tg_tensor_numel(t), (long long)r->numel);
    double scale = 0;
    for (int64_t i = 0; i < r->numel; i++) scale = fmax(scale, fabs(r->v[i]));
    for (int64_t i = 0; i < r->numel; i++) {
        double v = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i), ref = r->v[i];
        ck_assert_msg(fabs(v - ref) <= REL_TOL * fmax(fabs(ref), 1e-6 * scale),
                      "%s: %s[%lld] = %.17g, PyTorch %.17g", c, what, (long long)i, v, ref);
    }
}
static void compare(const char *c, const char *what, const struct tg_tensor *got,
                    const struct rec *r)
{
    compare_values(c, what, got, false, r);
}

/* tg_hvp in the file's directions against its hvp lines. */
static void check_hvp(struct graph *g, struct tg_tensor *loss)
{
    struct tg_tensor *x[MAX_LEAVES], *v[MAX_LEAVES], *hv[MAX_LEAVES];
    const struct rec *want[MAX_LEAVES];
    int n = 0;
    for (int k = 0; k < g->n; k++) {
        if (strcmp(g->rec[k]->kind, "input")) continue;
        const struct rec *d = find(g->case_name, "dir", g->rec[k]->name);
        want[n] = find(g->case_name, "hvp", g->rec[k]->name);
        ck_assert_msg(d && want[n], "%s: no dir/hvp %s", g->case_name, g->rec[k]->name);
        x[n] = g->leaf[k];
        v[n] = tg_tensor_from_f64(TG_F64, d->rank, d->shape, d->v);
        ck_assert_ptr_nonnull(v[n++]);
    }
    ck_assert_msg(tg_hvp(loss, n, x, v, NULL, hv) == TG_OK, "%s: %s", g->case_name,
                  tg_last_error());
    for (int i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "hvp %s", want[i]->name);
        compare(g->case_name, what, hv[i], want[i]);
        tg_tensor_free(v[i]);
    }
}

START_TEST(test_case)
{
    ck_assert_msg(n_recs > 0, "%s", load_err);
    const char *c = cases[_i].name;
    struct graph g = {.case_name = c, .T = tg_tape_new()};
    struct tg_tensor *y = cases[_i].build(&g);
    ck_assert_msg(y != NULL, "%s: %s", c, tg_last_error());
    struct tg_tensor *loss = tg_sum(g.T, tg_mul(g.T, y, leaf(&g, "label", "R")));
    ck_assert_int_eq(tg_backward(loss, NULL), TG_OK);
    compare(c, "loss", loss, find(c, "output", "loss"));
    for (int k = 0; k < g.n; k++)
        if (!strcmp(g.rec[k]->kind, "input")) {
            char what[48];
            snprintf(what, sizeof what, "grad %s", g.rec[k]->name);
            compare_values(c, what, g.leaf[k], true, find(c, "grad", g.rec[k]->name));
        }
    if (g.rm) {
        compare(c, "running_mean", g.rm, find(c, "output", "running_mean"));
        compare(c, "running_var", g.rv, find(c, "output", "running_var"));
    }
    if (strstr(c, "_hvp")) check_hvp(&g, loss);
    tg_tape_free(g.T);
    for (int k = 0; k < g.n; k++) tg_tensor_free(g.leaf[k]);
    tg_tensor_free(g.rm);
    tg_tensor_free(g.rv);
}
END_TEST

/* Every case of the file is one of the table's (and the table's are checked by
 * test_case, which fails for a case the file lacks). */
START_TEST(test_file_has_no_unknown_case)
{
    ck_assert_msg(n_recs > 0, "%s", load_err);
    for (int i = 0; i < n_recs; i++) {
        bool known = false;
        for (int k = 0; k < N_CASES && !known; k++)
            known = !strcmp(cases[k].name, recs[i].case_name);
        ck_assert_msg(known, "case %s of the file is not in the table", recs[i].case_name);
    }
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_reference_norm PATH/reference_norm.txt\n");
        return 2;
    }
    load(argv[1]);
    Suite *s = suite_create("reference_norm");
    TCase *tc = tcase_create("cases");
    tcase_add_loop_test(tc, test_case, 0, N_CASES);
    tcase_add_test(tc, test_file_has_no_unknown_case);
    suite_add_tcase(s, tc);
    int rc = tg_test_run_suite(s);
    for (int i = 0; i < n_recs; i++) free(recs[i].v);
    free(recs);
    return rc;
}
