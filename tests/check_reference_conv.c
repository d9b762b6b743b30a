/*
 * tests/check_reference_conv.c - conv2d, conv1d, max_pool2d and avg_pool2d against
 * PyTorch float64: every case of tests/reference/reference_conv.txt (written by
 * gen_reference_conv.py: random shapes with stride > 1, padding, dilation,
 * groups and odd sizes) is recomputed, its output y and the gradients of
 * loss = sum(y * R) with respect to x, W and b compared with PyTorch's, in f64
 * (tight) and in f32 (the same inputs rounded, loose).
 * Usage: check_reference_conv PATH/reference_conv.txt
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

enum { MAX_CASES = 64, MAX_T = 12, LINE = 1 << 16 };

struct rtensor {
    char kind[8], name[8];
    int rank;
    int64_t shape[4];
    double *v;
    int64_t n;
};
struct rcase {
    char name[32];
    struct rtensor t[MAX_T];
    int nt;
};

static const char *ref_path;
static struct rcase cases[MAX_CASES];
static int n_cases;

/* One line "<case> <kind> <name> <rank> <dims> <values>" into a tensor of its case. */
static void parse_line(char *line)
{
    char *save = NULL, *tok = strtok_r(line, " \n", &save);
    if (!tok || tok[0] == '#') return;
    if (n_cases == 0 || strcmp(cases[n_cases - 1].name, tok) != 0) {
        ck_assert_int_lt(n_cases, MAX_CASES);
        snprintf(cases[n_cases++].name, sizeof cases[0].name, "%s", tok);
    }
    struct rcase *c = &cases[n_cases - 1];
    ck_assert_int_lt(c->nt, MAX_T);
    struct rtensor *t = &c->t[c->nt++];
    snprintf(t->kind, sizeof t->kind, "%s", strtok_r(NULL, " \n", &save));
    snprintf(t->name, sizeof t->name, "%s", strtok_r(NULL, " \n", &save));
    t->rank = atoi(strtok_r(NULL, " \n", &save));
    ck_assert(t->rank >= 0 && t->rank <= 4);
    t->n = 1;
    for (int d = 0; d < t->rank; d++) t->n *= t->shape[d] = atoll(strtok_r(NULL, " \n", &save));
    t->v = malloc((size_t)t->n * sizeof *t->v);
    ck_assert_ptr_nonnull(t->v);
    for (int64_t k = 0; k < t->n; k++) {
        char *s = strtok_r(NULL, " \n", &save);
        ck_assert_ptr_nonnull(s);
        t->v[k] = strtod(s, NULL);
    }
}

static void load(void)
{
    FILE *f = fopen(ref_path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", ref_path);
    char *line = malloc(LINE);
    ck_assert_ptr_nonnull(line);
    while (fgets(line, LINE, f)) parse_line(line);
    free(line);
    fclose(f);
}

static const struct rtensor *find(const struct rcase *c, const char *kind, const char *name)
{
    for (int i = 0; i < c->nt; i++)
        if (!strcmp(c->t[i].kind, kind) && !strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}

/* Every element of got (n values read by get) within atol * scale + rtol |want|,
 * scale = max(1, max |want|). */
static void compare(const char *what, const struct rcase *c, const struct tg_tensor *got, bool grad,
                    const struct rtensor *want, double atol, double rtol)
{
    ck_assert_msg(got != NULL, "%s %s: %s", c->name, what, tg_last_error());
    ck_assert_int_eq(tg_tensor_numel(got), want->n);
    double scale = 1;
    for (int64_t k = 0; k < want->n; k++) scale = fmax(scale, fabs(want->v[k]));
    for (int64_t k = 0; k < want->n; k++) {
        double g = grad ? tg_tensor_grad_get(got, k) : tg_tensor_get(got, k);
        ck_assert_msg(fabs(g - want->v[k]) <= atol * scale + rtol * fabs(want->v[k]),
                      "%s %s[%lld]: %.17g, PyTorch %.17g", c->name, what, (long long)k, g,
                      want->v[k]);
    }
}

static struct tg_tensor *leaf_of(const struct rtensor *r, enum tg_dtype dt, bool grad)
{
    struct tg_tensor *t = tg_tensor_from_f64(dt, r->rank, r->shape, r->v);
    ck_assert_ptr_nonnull(t);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* The op of case c on x, W, b (W, b may be NULL) with its options p. */
static struct tg_tensor *apply(struct tg_tape *T, const double *p, struct tg_tensor *x,
                               struct tg_tensor *W, struct tg_tensor *b)
{
    int op = (int)p[0];
    int64_t s[2] = {(int64_t)p[1], (int64_t)p[2]}, pad[2] = {(int64_t)p[3], (int64_t)p[4]};
    int64_t dil[2] = {(int64_t)p[5], (int64_t)p[6]}, groups = (int64_t)p[7];
    struct tg_conv_params cp = {
        {s[0], s[1]}, {pad[0], pad[1]}, {dil[0], dil[1]}, groups, TG_ACT_NONE};
    struct tg_pool_params pp = {{(int64_t)p[8], (int64_t)p[9]}, {s[0], s[1]}, {pad[0], pad[1]}};
    switch (op) {
    case 0:
        return tg_conv2d(T, x, W, b, &cp);
    case 1:
        return tg_conv1d(T, x, W, b, s[1], pad[1], dil[1], groups);
    case 2:
        return tg_max_pool2d(T, x, &pp);
    default:
        return tg_avg_pool2d(T, x, &pp);
    }
}

static void run_case(const struct rcase *c, enum tg_dtype dt, double atol, double rtol)
{
    const struct rtensor *p = find(c, "param", "p"), *rx = find(c, "input", "x");
    const struct rtensor *rw = find(c, "input", "W"), *rb = find(c, "input", "b");
    ck_assert_msg(p && rx && find(c, "label", "R") && find(c, "output", "y"), "%s: incomplete",
                  c->name);
    struct tg_tensor *x = leaf_of(rx, dt, true), *W = rw ? leaf_of(rw, dt, true) : NULL;
    struct tg_tensor *b = rb ? leaf_of(rb, dt, true) : NULL;
    struct tg_tensor *R = leaf_of(find(c, "label", "R"), dt, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = apply(T, p->v, x, W, b);
    compare("y", c, y, false, find(c, "output", "y"), atol, rtol);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, y, R)), NULL), TG_OK);
    compare("dx", c, x, true, find(c, "grad", "x"), atol, rtol);
    if (W) compare("dW", c, W, true, find(c, "grad", "W"), atol, rtol);
    if (b) compare("db", c, b, true, find(c, "grad", "b"), atol, rtol);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tensor_free(R);
}

START_TEST(test_reference_conv)
{
    load();
    int counts[4] = {0};
    for (int i = 0; i < n_cases; i++) {
        run_case(&cases[i], TG_F64, 1e-12, 1e-10);
        run_case(&cases[i], TG_F32, 2e-5, 1e-4);
        counts[(int)find(&cases[i], "param", "p")->v[0]]++;
    }
    /* each op has cases: an empty or truncated file must not pass */
    for (int op = 0; op < 4; op++)
        ck_assert_msg(counts[op] >= 2, "op %d: %d cases", op, counts[op]);
    for (int i = 0; i < n_cases; i++)
        for (int k = 0; k < cases[i].nt; k++) free(cases[i].t[k].v);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/reference_conv.txt\n", argv[0]);
        return 2;
    }
    ref_path = argv[1];
    Suite *s = suite_create("reference_conv");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reference_conv);
    suite_add_tcase(s, tc);
    return tg_test_run_suite(s);
}
