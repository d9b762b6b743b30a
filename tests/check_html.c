/*
 * tests/check_html.c - tg_graph_html, the interactive page of a graph and its
 * sweep: the facts it embeds (read back from its JSON block with cJSON), the
 * numeric check and its verdicts, that values and gradients are left as they
 * were, the Graphviz SVG it embeds, escaping, and its errors.
 * (tests/browser/ drives the page itself in Chromium.)
 *
 * Reference numbers are derived by hand (see tests/check_graph.c's neuron).
 */
#include <check.h>
#include "run-suite.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

static struct tg_tensor *leaf(double v, bool grad)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    if (grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

/* Writes the page to memory; returns its status, *text the page (free it). */
static enum tg_status page(struct tg_tensor *root, const struct tg_trace *tr,
                           const struct tg_graph_html_options *o, char **text)
{
    size_t len = 0;
    FILE *m = open_memstream(text, &len);
    ck_assert_ptr_nonnull(m);
    enum tg_status st = tg_graph_html(root, tr, m, o);
    ck_assert_int_eq(fclose(m), 0);
    return st;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The JSON block of a page, parsed. */
static cJSON *facts(const char *text)
{
    const char *tag = "<script type=\"application/json\" id=\"tg-data\">";
    const char *a = strstr(text, tag);
    ck_assert_ptr_nonnull(a);
    a += strlen(tag);
    const char *b = strstr(a, "</script>");
    ck_assert_ptr_nonnull(b);
    char *json = strndup(a, (size_t)(b - a));
    cJSON *j = cJSON_Parse(json);
    free(json);
    ck_assert_msg(j != NULL, "the page's JSON block does not parse");
    return j;
}

static double num(const cJSON *j)
{
    ck_assert_ptr_nonnull(j);
    return cJSON_IsString(j) ? strtod(j->valuestring, NULL) : j->valuedouble;
}

/* The node of the page labelled name, or NULL. */
static const cJSON *node_named(const cJSON *f, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(f, "nodes"))
    {
        if (!strcmp(cJSON_GetObjectItem(n, "label")->valuestring, name)) return n;
    }
    return NULL;
}

/* The neuron: Div = (sigmoid(w x + b) - t)^2 at w = 0.5, x = 2, b = -0.5, t = 1. */
START_TEST(test_neuron_page)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *w = leaf(0.5, true), *x = leaf(2, false), *b = leaf(-0.5, true),
                     *t = leaf(1, false);
    struct tg_tensor *z = tg_add(T, tg_mul(T, w, x), b);
    struct tg_tensor *loss = tg_pow_scalar(T, tg_sub(T, tg_sigmoid(T, z), t), 2);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(loss, NULL, &tr), TG_OK);
    double before = tg_tensor_item(loss), zv = tg_tensor_item(z);
    double gw = tg_tensor_grad_get(w, 0), gb = tg_tensor_grad_get(b, 0);
    struct tg_graph_name nm[] = {{w, "w"}, {x, "x"}, {b, "b"}, {t, "t"}};
    struct tg_graph_names names = {nm, 4};
    struct tg_graph_html_options o = {.names = &names, .title = "(sigmoid(w*x + b) - t)^2"};
    char *text = NULL;
    ck_assert_int_eq(page(loss, tr, &o, &text), TG_OK);
    /* the replays of the numeric check left every value and gradient as it was */
    ck_assert(tg_tensor_item(loss) == before && tg_tensor_item(z) == zv);
    ck_assert(tg_tensor_grad_get(w, 0) == gw && tg_tensor_grad_get(b, 0) == gb);
    ck_assert(tg_tensor_item(w) == 0.5 && tg_tensor_item(b) == -0.5);
    /* 4 leaves + 5 ops, drawn by the library's own layout (no svg given) */
    ck_assert_int_eq(count(text, "<g class=\"node\""), 9);
    ck_assert_int_eq(count(text, "<g class=\"edge\""), 8);
    ck_assert_ptr_nonnull(strstr(text, "own layered layout"));
    ck_assert_ptr_null(strstr(text, "http://") ? strstr(text, "<script src") : NULL);
    cJSON *f = facts(text);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(f, "nodes")), 9);
    ck_assert_str_eq(cJSON_GetObjectItem(f, "root_name")->valuestring, "Div");
    const cJSON *steps = cJSON_GetObjectItem(f, "steps");
    ck_assert_int_eq(cJSON_GetArraySize(steps), 5);
    const cJSON *s0 = cJSON_GetArrayItem(steps, 0), *s1 = cJSON_GetArrayItem(steps, 1);
    ck_assert(num(cJSON_GetObjectItem(s0, "upstream")) == 1.0); /* the seed */
    /* step 2 sweeps d = y - t: upstream 2d = -0.7550813375962908 */
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(s1, "upstream")), -0.7550813375962908, 1e-15);
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "rule")->valuestring, tr->steps[1].rule);
    /* the last step is w*x: the local derivative of w is x = 2 */
    const cJSON *s4 = cJSON_GetArrayItem(steps, 4);
    const cJSON *in0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s4, "inputs"), 0);
    ck_assert(num(cJSON_GetObjectItem(in0, "local")) == 2.0);
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(in0, "total")), -0.35489383469854746, 1e-15);
    const cJSON *nw = node_named(f, "w");
    ck_assert_ptr_nonnull(nw);
    ck_assert_str_eq(cJSON_GetObjectItem(nw, "kind")->valuestring, "param");
    ck_assert_double_eq_tol(num(cJSON_GetArrayItem(cJSON_GetObjectItem(nw, "grad"), 0)),
                            -0.35489383469854746, 1e-15);
    /* w and b are checked (x and t need no gradient), both agree */
    const cJSON *checks = cJSON_GetObjectItem(f, "checks");
    ck_assert_int_eq(cJSON_GetArraySize(checks), 2);
    const cJSON *c;
    cJSON_ArrayForEach(c, checks)
    {
        const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "items"), 0);
        ck_assert_str_eq(cJSON_GetObjectItem(it, "verdict")->valuestring, "agree");
        ck_assert_double_eq_tol(num(cJSON_GetObjectItem(it, "numeric")),
                                num(cJSON_GetObjectItem(it, "analytic")), 1e-8);
    }
    /* the second check is b's: its index in nodes, its gradient dDiv/dz */
    const cJSON *cb = cJSON_GetArrayItem(checks, 1);
    int bi = (int)num(cJSON_GetObjectItem(cb, "node"));
    const cJSON *nb = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "nodes"), bi);
    ck_assert_ptr_eq(nb, node_named(f, "b"));
    const cJSON *ib = cJSON_GetArrayItem(cJSON_GetObjectItem(cb, "items"), 0);
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(ib, "analytic")), -0.17744691734927373, 1e-15);
    cJSON_Delete(f);
    free(text);
    tg_trace_free(tr);
    tg_tensor_free(w), tg_tensor_free(x), tg_tensor_free(b), tg_tensor_free(t);
    tg_tape_free(T);
}
END_TEST

/* relu at 0 is a kink: backward says 0, the one-sided slopes are 0 and 1. */
START_TEST(test_kink_verdict)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0, true), *y = leaf(1.5, true);
    struct tg_tensor *rx = tg_relu(T, x); /* recorded first: x is the first leaf */
    struct tg_tensor *r = tg_add(T, rx, tg_mul(T, y, y));
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(r, NULL, &tr), TG_OK);
    char *text = NULL;
    ck_assert_int_eq(page(r, tr, NULL, &text), TG_OK);
    cJSON *f = facts(text);
    const cJSON *checks = cJSON_GetObjectItem(f, "checks");
    ck_assert_int_eq(cJSON_GetArraySize(checks), 2);
    const cJSON *ix =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(checks, 0), "items"), 0);
    const cJSON *iy =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(checks, 1), "items"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(ix, "verdict")->valuestring, "kink");
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(ix, "right")), 1.0, 1e-6);
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(ix, "left")), 0.0, 1e-6);
    ck_assert_str_eq(cJSON_GetObjectItem(iy, "verdict")->valuestring, "agree");
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(iy, "numeric")), 3.0, 1e-7); /* 2y */
    /* y * y: one edge, used twice, local derivative 2y = 3 */
    ck_assert_ptr_nonnull(strstr(text, "dv2/dx2 = 3 (used 2x)"));
    cJSON_Delete(f);
    free(text);
    tg_trace_free(tr);
    tg_tensor_free(x), tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

/* A tensor graph with a seed: values kept up to max_values, the check of
 * sum(seed * root) in f64, Jacobian structures named. */
START_TEST(test_tensor_seed_page)
{
    struct tg_tape *T = tg_tape_new();
    double av[6] = {0.5, -1, 2, 0.25, 1.5, -0.75}, sv[3] = {1, -2, 0.5};
    struct tg_tensor *a = tg_tensor_from(TG_F64, 2, (int64_t[]){2, 3}, av);
    struct tg_tensor *b = tg_tensor_from(TG_F64, 1, (int64_t[]){3}, sv);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    struct tg_tensor *y = tg_sum_axes(T, tg_tanh(T, tg_add(T, a, b)), (int[]){0}, 1, false);
    ck_assert_ptr_nonnull(y);
    struct tg_tensor *seed = tg_tensor_from(TG_F64, 1, (int64_t[]){3}, sv);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(y, seed, &tr), TG_OK);
    struct tg_graph_html_options o = {.seed = seed, .max_values = 4, .max_check = 5};
    char *text = NULL;
    ck_assert_int_eq(page(y, tr, &o, &text), TG_OK);
    cJSON *f = facts(text);
    const cJSON *na = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "nodes"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(na, "value")), 4);
    ck_assert(num(cJSON_GetObjectItem(na, "numel")) == 6);
    const cJSON *checks = cJSON_GetObjectItem(f, "checks"), *c;
    ck_assert_int_eq(cJSON_GetArraySize(checks), 2);
    int items = 0;
    cJSON_ArrayForEach(c, checks)
    {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "items"))
        {
            ck_assert_str_eq(cJSON_GetObjectItem(it, "verdict")->valuestring, "agree");
            items++;
        }
    }
    ck_assert_int_eq(items, 5 + 3); /* a: the first 5 of 6; b: all 3 */
    /* tg_jacobian_classify's wording, as the trace and DOT edges give it: b broadcast
     * over the 2 rows of a + b, tanh elementwise */
    ck_assert_ptr_nonnull(strstr(text, "\"jacobian\":\"dense 6x3, nnz 6\""));
    ck_assert_ptr_nonnull(strstr(text, "\"jacobian\":\"diagonal 6x6\""));
    /* without the seed a non-scalar root cannot be checked: no checks, no error */
    free(text);
    cJSON_Delete(f);
    ck_assert_int_eq(page(y, tr, NULL, &text), TG_OK);
    ck_assert_ptr_nonnull(strstr(text, "\"checks\":[]"));
    free(text);
    tg_trace_free(tr);
    tg_tensor_free(a), tg_tensor_free(b), tg_tensor_free(seed);
    tg_tape_free(T);
}
END_TEST

/* A Graphviz drawing is embedded from its <svg element on; the title is escaped
 * in the HTML and cannot close the script holding the JSON. */
START_TEST(test_svg_and_escaping)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0.3, true);
    struct tg_tensor *y = tg_sin(T, x);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(y, NULL, &tr), TG_OK);
    struct tg_graph_html_options o = {
        .title = "</script><b>x & y</b>",
        .svg = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg id=\"given\"><g class=\"node\">"
               "<title>t0</title></g></svg>\n"};
    char *text = NULL;
    ck_assert_int_eq(page(y, tr, &o, &text), TG_OK);
    ck_assert_ptr_nonnull(strstr(text, "<svg id=\"given\">"));
    ck_assert_ptr_null(strstr(text, "<?xml"));
    ck_assert_ptr_nonnull(strstr(text, "laid out by Graphviz"));
    ck_assert_ptr_nonnull(strstr(text, "&lt;/script&gt;&lt;b&gt;x &amp; y&lt;/b&gt;"));
    ck_assert_ptr_nonnull(strstr(text, "\"title\":\"<\\/script><b>x & y<\\/b>\""));
    ck_assert_int_eq(count(text, "</script>"), 2); /* the JSON block's and the script's */
    cJSON *f = facts(text);
    cJSON_Delete(f);
    free(text);
    tg_trace_free(tr);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* A lone leaf: no sweep, nothing to check (its gradient was never computed). */
START_TEST(test_lone_leaf)
{
    struct tg_tensor *x = leaf(2, true);
    struct tg_trace none = {0, NULL};
    char *text = NULL;
    ck_assert_int_eq(page(x, &none, NULL, &text), TG_OK);
    cJSON *f = facts(text);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(f, "checks")), 0);
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(f, "no_check")->valuestring, "single"));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(f, "nodes")), 1);
    cJSON_Delete(f);
    free(text);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0.3, true);
    struct tg_tensor *y = tg_sin(T, x), *y2 = tg_cos(T, x);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(y, NULL, &tr), TG_OK);
    char *text = NULL;
    ck_assert_int_eq(page(NULL, tr, NULL, &text), TG_ERR_NULL);
    free(text);
    ck_assert_int_eq(page(y, NULL, NULL, &text), TG_ERR_NULL);
    free(text);
    ck_assert_int_eq(tg_graph_html(y, tr, NULL, NULL), TG_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_graph_html"));
    ck_assert_int_eq(page(y2, tr, NULL, &text), TG_ERR_MISMATCH); /* a trace of another root */
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_graph_html"));
    free(text);
    struct tg_graph_html_options o = {.svg = "digraph { a -> b }"};
    ck_assert_int_eq(page(y, tr, &o, &text), TG_ERR_FORMAT);
    free(text);
    struct tg_tensor *s2 = tg_tensor_from(TG_F64, 1, (int64_t[]){2}, (double[]){1, 1});
    struct tg_graph_html_options os = {.seed = s2};
    ck_assert_int_eq(page(y, tr, &os, &text), TG_ERR_MISMATCH); /* seed of another shape */
    free(text);
    tg_tape_reset(T);
    ck_assert_int_eq(page(y, tr, NULL, &text), TG_ERR_STALE);
    free(text);
    tg_trace_free(tr);
    tg_tensor_free(x), tg_tensor_free(s2);
    tg_tape_free(T);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_neuron_page);
    tcase_add_test(tc, test_kink_verdict);
    tcase_add_test(tc, test_tensor_seed_page);
    tcase_add_test(tc, test_svg_and_escaping);
    tcase_add_test(tc, test_lone_leaf);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(suite());
}
