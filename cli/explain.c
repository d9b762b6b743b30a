/*
 * cli/explain.c - `tapegrad explain`: the value of an expression, every partial
 * derivative by backward and by central differences, and optionally the
 * chain-rule trace, the graph as DOT and the result as JSON; with --hessian the
 * second partial derivatives (tg_grad twice) beside central differences of the
 * first (cli/hessian.c).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "expr.h"
#include "htmlpage.h"

static const char usage[] =
    "usage: tapegrad explain EXPR [name=value ...] [--hessian] [--trace] [--dot FILE]\n"
    "                        [--json] [--html FILE]\n"
    "\n"
    "Builds EXPR as a graph (f64, each variable a leaf that requires grad), runs\n"
    "backward, and prints the value Div, every partial derivative dDiv/dx and its\n"
    "central-difference estimate.\n"
    "\n"
    "EXPR: numbers (2, 0.5, 1e-3), variables, + - * / ^ (or **), unary minus,\n"
    "parentheses, and the functions neg exp log sqrt abs tanh sigmoid relu softplus\n"
    "sin cos, max(a,b) min(a,b) pow(a,b) leaky_relu(x, slope). ^ binds tighter\n"
    "than unary minus and associates to the right, as in Python: -x^2 = -(x^2).\n"
    "\n"
    "  --hessian   also print the second partials d2Div/dx dy, by differentiating\n"
    "              the recorded backward pass (tg_grad twice), beside central\n"
    "              differences of the first partials; at most 32 variables\n"
    "  --trace     print the backward sweep step by step (the chain rule)\n"
    "  --dot FILE  write the graph in Graphviz DOT to FILE; '-' writes it to stdout\n"
    "              and the report to stderr, so that stdout is pure DOT\n"
    "  --json      print {\"value\": v, \"grad\": {...}, \"numeric\": {...},\n"
    "              \"check\": {...}}, with --hessian also \"hessian\" and\n"
    "              \"hessian_numeric\": {x: {y: ...}}; with --trace the trace goes\n"
    "              to stderr, so that stdout is pure JSON\n"
    "  --html FILE write an interactive page (HTML, self-contained) that steps\n"
    "              through the forward pass and the backward sweep; the graph is\n"
    "              laid out by Graphviz's dot when it is on PATH\n"
    "  -h, --help  this text\n"
    "\n"
    "Example: tapegrad explain '(sigmoid(w*x + b) - t)^2' w=0.5 x=2 b=-0.5 t=1 --trace\n"
    "The check column judges each partial as tg_gradcheck does: agree, kink (the\n"
    "one-sided slopes differ and backward lies between them), not finite, or\n"
    "DISAGREE.\n"
    "Exit status: 0 ok, 1 runtime failure (domain error, ...), 2 usage error,\n"
    "3 backward and the central difference disagree.\n";

/* Exit status when backward and the central difference disagree (not a kink,
 * both finite); tolerances of that judgement: tg_gradcheck's for f64. */
enum { CLI_DISAGREE = 3 };
#define JUDGE_ATOL 1e-8
#define JUDGE_RTOL 1e-6

/* The shortest "%.*g" form of v that reads back as v (at most 17 digits). */
static void shortest(char buf[32], double v)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 32, "%.*g", p, v);
        if (strtod(buf, NULL) == v || isnan(v)) return;
    }
}

struct opts {
    const char *src;
    const char **assign; /* "name=value" arguments */
    int n_assign;
    bool trace, json, hessian;
    const char *dot;
    const char *html; /* --html FILE */
};

/* Longest stretch of the expression an error shows; a longer expression is
 * shown as a window of this many characters around the column. */
enum { REPORT_WIDTH = 72 };

/* The expression (or a window of it around column col, with "..." where it is
 * cut) and a caret under column col, after the one-line message. */
static void report(const char *src, const struct expr_error *err)
{
    if (err->col <= 0) {
        fprintf(stderr, "tapegrad explain: %s\n", err->msg);
        return;
    }
    int len = (int)strnlen(src, (size_t)INT32_MAX), col = err->col <= len ? err->col : len + 1;
    int from = 0, to = len;
    if (len > REPORT_WIDTH) {
        from = col - 1 - REPORT_WIDTH / 2;
        from = from < 0 ? 0 : (from > len - REPORT_WIDTH ? len - REPORT_WIDTH : from);
        to = from + REPORT_WIDTH;
    }
    const char *pre = from > 0 ? "..." : "", *post = to < len ? "..." : "";
    fprintf(stderr, "tapegrad explain: %s at column %d\n  %s%.*s%s\n  %*s^\n", err->msg, err->col,
            pre, to - from, src + from, post, (int)strlen(pre) + col - 1 - from, "");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->assign = calloc((size_t)argc, sizeof *o->assign);
    if (!o->assign) return CLI_FAIL;
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && !strcmp(a, "--")) {
            opts_done = true;
        } else if (!opts_done && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            fputs(usage, stdout);
            return -1;
        } else if (!opts_done && !strcmp(a, "--trace")) {
            o->trace = true;
        } else if (!opts_done && !strcmp(a, "--json")) {
            o->json = true;
        } else if (!opts_done && !strcmp(a, "--hessian")) {
            o->hessian = true;
        } else if (!opts_done && !strcmp(a, "--dot")) {
            if (++i == argc) {
                fprintf(stderr, "tapegrad explain: --dot needs a file name\n");
                return CLI_USAGE;
            }
            o->dot = argv[i];
        } else if (!opts_done && !strcmp(a, "--html")) {
            if (++i == argc) {
                fprintf(stderr, "tapegrad explain: --html needs a file name\n");
                return CLI_USAGE;
            }
            o->html = argv[i];
        } else if (!opts_done && !strncmp(a, "--", 2)) {
            fprintf(stderr, "tapegrad explain: unknown option '%.40s' (see --help)\n", a);
            return CLI_USAGE;
        } else if (!o->src) {
            o->src = a;
        } else if (strchr(a, '=')) {
            o->assign[o->n_assign++] = a;
        } else {
            fprintf(stderr, "tapegrad explain: '%.40s' is not name=value (quote the expression)\n",
                    a);
            return CLI_USAGE;
        }
    }
    if (!o->src) {
        fprintf(stderr, "tapegrad explain: no expression given (see --help)\n");
        return CLI_USAGE;
    }
    if (o->json && o->dot && !strcmp(o->dot, "-")) {
        fprintf(stderr, "tapegrad explain: --dot - and --json both write to stdout\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* values[i] of variable i from the name=value arguments (a name given twice is
 * a usage error); notes the names that are not variables. Linear in the
 * arguments that name variables. */
static int read_values(const struct expr *e, const struct opts *o, double *values)
{
    int *from = malloc(((size_t)e->n_vars + 1) * sizeof *from); /* (n_vars) argument index */
    bool *unused = calloc((size_t)o->n_assign + 1, sizeof *unused);
    int rc = from && unused ? CLI_OK : CLI_FAIL;
    for (int i = 0; !rc && i < e->n_vars; i++) from[i] = -1;
    for (int j = 0; !rc && j < o->n_assign; j++) {
        size_t len = (size_t)(strchr(o->assign[j], '=') - o->assign[j]);
        int i = expr_var_find(e, o->assign[j], len), twice = i >= 0 ? from[i] : -1;
        for (int k = 0; i < 0 && twice < 0 && k < j; k++) /* unused names: rare, quadratic */
            if (unused[k] && !strncmp(o->assign[k], o->assign[j], len + 1)) twice = k;
        if (twice >= 0) {
            fprintf(stderr, "tapegrad explain: '%.*s' is given twice ('%.40s' and '%.40s')\n",
                    (int)(len < 40 ? len : 40), o->assign[j], o->assign[twice], o->assign[j]);
            rc = CLI_USAGE;
        }
        if (i >= 0)
            from[i] = j;
        else
            unused[j] = true;
    }
    for (int i = 0; !rc && i < e->n_vars; i++) {
        if (from[i] < 0) {
            fprintf(stderr, "tapegrad explain: no value given for variable '%s' (add %s=VALUE)\n",
                    e->vars[i], e->vars[i]);
            rc = CLI_USAGE;
            break;
        }
        const char *found = strchr(o->assign[from[i]], '=') + 1;
        char *end;
        values[i] = strtod(found, &end);
        if (end == found || *end || !isfinite(values[i])) {
            fprintf(stderr, "tapegrad explain: bad value for '%s': '%.40s' (a finite number)\n",
                    e->vars[i], found);
            rc = CLI_USAGE;
        }
    }
    for (int j = 0; !rc && j < o->n_assign; j++)
        if (unused[j])
            fprintf(stderr, "tapegrad explain: note: '%.*s' is not in the expression\n",
                    (int)(strchr(o->assign[j], '=') - o->assign[j] < 40
                              ? strchr(o->assign[j], '=') - o->assign[j]
                              : 40),
                    o->assign[j]);
    free(from);
    free(unused);
    return rc;
}

/* Whether name reads as one of the trace's own names: v1, v2, ... (op
 * results), x1, ... (leaves), c1, ... (constants) or Div (the root). */
static bool trace_name(const char *name)
{
    if (!strcmp(name, "Div")) return true;
    if (!strchr("vxc", name[0]) || !name[1]) return false;
    for (const char *p = name + 1; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

/* Rejects variable names that the trace, the rules and the graph would print
 * ambiguously: a trace name, or d<another variable> (read as its gradient). */
static int check_names(const struct expr *e)
{
    for (int i = 0; i < e->n_vars; i++) {
        const char *v = e->vars[i];
        if (trace_name(v)) {
            fprintf(stderr,
                    "tapegrad explain: variable '%s' looks like a name the trace gives (Div, "
                    "v1, x1, c1, ...); rename it\n",
                    v);
            return CLI_USAGE;
        }
        if (v[0] == 'd' && expr_var_find(e, v + 1, strlen(v + 1)) >= 0) {
            fprintf(stderr,
                    "tapegrad explain: variable '%s' reads as the gradient of '%s' in the "
                    "rules; rename it\n",
                    v, v + 1);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

struct session {
    const struct opts *o;
    struct expr e;
    struct tg_tape *T;
    struct tg_tensor **leaves; /* (n_vars) f64 scalars with requires-grad */
    struct tg_tensor **nodes;  /* (e.n) the tensor of every expression node */
    struct tg_tensor *root;
    double value, *values, *grad, *numeric; /* (n_vars) each */
    double *hess, *hess_numeric;            /* (n_vars^2) with --hessian, else NULL */
    struct expr_sides *sides;               /* (n_vars) what each central difference used */
    enum tg_gradcheck_verdict *verdict;     /* (n_vars) backward against the differences */
    FILE *out;                              /* the report: stdout, stderr with --dot - */
    struct tg_graph_name *name_list;        /* (n_vars) the variables' names */
    struct tg_graph_names names;
    struct tg_trace *trace; /* kept for --html */
};

/* Names: the variables. Op results keep the numbers v1, v2, ... of the graph
 * (see legend). */
static int make_names(struct session *s)
{
    const struct expr *e = &s->e;
    s->name_list = calloc((size_t)e->n_vars + 1, sizeof *s->name_list);
    if (!s->name_list) return CLI_FAIL;
    for (int i = 0; i < e->n_vars; i++)
        s->name_list[i] = (struct tg_graph_name){s->leaves[i], e->vars[i]};
    s->names = (struct tg_graph_names){s->name_list, e->n_vars};
    return CLI_OK;
}

/* "v1 = w*x" for every op node: the graph numbers op results in the order they
 * were recorded, and the expression records one op per operator or call, in
 * node order, all of them reachable from the root. */
static void legend(const struct session *s, FILE *f)
{
    int v = 0;
    fputs("where", f);
    for (int k = 0; k < s->e.n; k++) {
        const struct expr_node *nd = &s->e.nodes[k];
        if (nd->kind == EX_NUM || nd->kind == EX_VAR) continue;
        int start = nd->start, len = nd->end - nd->start;
        while (len > 0 && s->o->src[start] == ' ') start++, len--; /* a term's leading blanks */
        while (len > 0 && s->o->src[start + len - 1] == ' ') len--;
        fprintf(f, "%s v%d = %.*s", v ? "," : "", v + 1, len, s->o->src + start);
        v++;
    }
    fputs(v ? "\n" : " nothing\n", f);
}

/* Backward (traced if asked); fills s->grad. */
static int run_backward(struct session *s)
{
    if (tg_tensor_is_leaf(s->root) || tg_tensor_op(s->root) == TG_OP_NONE) {
        for (int i = 0; i < s->e.n_vars; i++) s->grad[i] = s->root == s->leaves[i];
        if (s->o->trace)
            fputs("(no operation to trace: the expression is a single value)\n", s->out);
        return CLI_OK;
    }
    enum tg_status st;
    if (s->o->trace || s->o->html) {
        struct tg_trace *tr = NULL;
        FILE *f = s->o->json ? stderr : s->out;
        st = tg_backward_trace(s->root, NULL, &tr);
        if (!st && s->o->trace) {
            fputc('\n', f);
            legend(s, f);
            st = tg_trace_print(tr, f, &s->names);
        }
        s->trace = tr;
    } else {
        st = tg_backward(s->root, NULL);
    }
    if (st) {
        fprintf(stderr, "tapegrad explain: backward failed: %s\n", tg_last_error());
        return CLI_FAIL;
    }
    for (int i = 0; i < s->e.n_vars; i++) s->grad[i] = tg_tensor_grad_get(s->leaves[i], 0);
    return CLI_OK;
}

/* Central differences (f(v + h) - f(v - h)) / 2h of the expression in plain
 * doubles, re-evaluating for each variable only the nodes that depend on it. */
static int run_numeric(struct session *s)
{
    return expr_numeric_sides(&s->e, s->values, s->numeric, s->sides) ? CLI_FAIL : CLI_OK;
}

/* Each partial judged as tg_gradcheck judges an element (its f64 tolerances,
 * its kink test); returns CLI_DISAGREE when one disagrees outright. */
static int judge(struct session *s)
{
    int rc = CLI_OK;
    for (int i = 0; i < s->e.n_vars; i++) {
        const struct expr_sides *d = &s->sides[i];
        s->verdict[i] =
            tg_gradcheck_judge(s->grad[i], d->f0, d->fp, d->fm, d->h, JUDGE_ATOL, JUDGE_RTOL);
        if (s->verdict[i] == TG_GRADCHECK_DISAGREE) rc = CLI_DISAGREE;
    }
    return rc;
}

/* The agreement column: "agree", "kink: one-sided 1 and 0", "not finite", "DISAGREE". */
static void verdict_text(const struct session *s, int i, char *buf, size_t size)
{
    const struct expr_sides *d = &s->sides[i];
    char r[32], l[32];
    switch (s->verdict[i]) {
    case TG_GRADCHECK_KINK:
        shortest(r, (d->fp - d->f0) / d->h);
        shortest(l, (d->f0 - d->fm) / d->h);
        snprintf(buf, size, "kink: one-sided %s (right), %s (left)", r, l);
        break;
    case TG_GRADCHECK_DISAGREE:
        snprintf(buf, size, "DISAGREE");
        break;
    default:
        snprintf(buf, size, "%s", tg_gradcheck_verdict_name(s->verdict[i]));
    }
}

/* The second partials (--hessian), into s->hess and s->hess_numeric. */
static int run_hessian(struct session *s)
{
    size_t nv = (size_t)s->e.n_vars;
    s->hess = calloc(nv * nv + 1, sizeof *s->hess);
    s->hess_numeric = calloc(nv * nv + 1, sizeof *s->hess_numeric);
    if (!s->hess || !s->hess_numeric) return CLI_FAIL;
    struct expr_error err;
    if (expr_hessian(&s->e, s->values, s->hess, s->hess_numeric, &err)) {
        fprintf(stderr, "tapegrad explain: --hessian: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* d2Div/dx^2 for i == j, d2Div/dx dy otherwise. */
static void second_name(const struct session *s, int i, int j, char *buf, size_t size)
{
    if (i == j)
        snprintf(buf, size, "d2Div/d%s^2", s->e.vars[i]);
    else
        snprintf(buf, size, "d2Div/d%s d%s", s->e.vars[i], s->e.vars[j]);
}

/* The upper triangle: H is symmetric (--json has every entry, each computed). */
static void print_hessian(const struct session *s)
{
    int nv = s->e.n_vars;
    if (!nv) return;
    fprintf(s->out, "\n%-14s %-26s %s\n", "second partial", "tg_grad twice",
            "numeric (central difference of the first)");
    for (int i = 0; i < nv; i++)
        for (int j = i; j < nv; j++) {
            char lhs[160];
            second_name(s, i, j, lhs, sizeof lhs);
            char h[32];
            shortest(h, s->hess[(size_t)i * nv + j]);
            fprintf(s->out, "%-14s %-26s %.10g\n", lhs, h, s->hess_numeric[(size_t)i * nv + j]);
        }
    if (nv > 1) fprintf(s->out, "(symmetric: d2Div/dy dx = d2Div/dx dy; --json lists both)\n");
    for (int k = 0; k < nv * nv; k++)
        if (isnan(s->hess_numeric[k])) {
            fprintf(s->out,
                    "(nan: the expression is not defined at x +- h, h = 1e-6 max(1, |x|))\n");
            break;
        }
}

static void print_head(const struct session *s)
{
    char v[32];
    fprintf(s->out, "expression  %s\n", s->o->src);
    if (s->e.n_vars) {
        fprintf(s->out, "at         ");
        for (int i = 0; i < s->e.n_vars; i++) {
            shortest(v, s->values[i]);
            fprintf(s->out, "%s %s = %s", i ? "," : "", s->e.vars[i], v);
        }
        fprintf(s->out, "\n");
    }
    shortest(v, s->value);
    fprintf(s->out, "value       Div = %s\n", v);
}

static void print_partials(const struct session *s)
{
    if (!s->e.n_vars) return;
    fprintf(s->out, "\n%-14s %-24s %-18s %s\n", "partial", "backward (chain rule)",
            "numeric (central)", "check");
    bool kink = false, inf = false;
    for (int i = 0; i < s->e.n_vars; i++) {
        char lhs[128], g[32], check[160];
        snprintf(lhs, sizeof lhs, "dDiv/d%s", s->e.vars[i]);
        shortest(g, s->grad[i]);
        verdict_text(s, i, check, sizeof check);
        fprintf(s->out, "%-14s %-24s %-18.10g %s\n", lhs, g, s->numeric[i], check);
        kink |= s->verdict[i] == TG_GRADCHECK_KINK;
        inf |= s->verdict[i] == TG_GRADCHECK_NOT_FINITE;
    }
    if (kink)
        fprintf(s->out, "(kink: the one-sided slopes differ and backward lies between them: a "
                        "corner such as relu at 0, or curvature strong at the step h)\n");
    if (inf)
        fprintf(s->out, "(not finite: backward or the central difference is NaN or infinite "
                        "there; nothing to compare)\n");
    for (int i = 0; i < s->e.n_vars; i++)
        if (s->verdict[i] == TG_GRADCHECK_DISAGREE) {
            fprintf(s->out,
                    "(DISAGREE: backward and the central difference differ by more than %g + "
                    "%g |numeric| and it is not a kink; exit status %d)\n",
                    JUDGE_ATOL, JUDGE_RTOL, CLI_DISAGREE);
            break;
        }
}

static int print_json(const struct session *s)
{
    cJSON *obj = cJSON_CreateObject(), *g = cJSON_CreateObject(), *n = cJSON_CreateObject();
    if (!obj || !g || !n) goto fail;
    cJSON_AddItemToObject(obj, "value", cJSON_CreateNumber(s->value));
    cJSON_AddItemToObject(obj, "grad", g);
    cJSON_AddItemToObject(obj, "numeric", n);
    cJSON *c = cJSON_CreateObject();
    if (!c) goto fail_all;
    cJSON_AddItemToObject(obj, "check", c);
    for (int i = 0; i < s->e.n_vars; i++) {
        cJSON_AddItemToObject(g, s->e.vars[i], cJSON_CreateNumber(s->grad[i]));
        cJSON_AddItemToObject(n, s->e.vars[i], cJSON_CreateNumber(s->numeric[i]));
        cJSON_AddItemToObject(c, s->e.vars[i],
                              cJSON_CreateString(tg_gradcheck_verdict_name(s->verdict[i])));
    }
    for (int m = 0; s->hess && m < 2; m++) {
        const double *H = m ? s->hess_numeric : s->hess;
        cJSON *h = cJSON_CreateObject();
        if (!h) goto fail_all;
        cJSON_AddItemToObject(obj, m ? "hessian_numeric" : "hessian", h);
        for (int i = 0; i < s->e.n_vars; i++) {
            cJSON *r = cJSON_CreateObject();
            if (!r) goto fail_all;
            cJSON_AddItemToObject(h, s->e.vars[i], r);
            for (int j = 0; j < s->e.n_vars; j++)
                cJSON_AddItemToObject(r, s->e.vars[j],
                                      cJSON_CreateNumber(H[(size_t)i * s->e.n_vars + j]));
        }
    }
    char *text = cJSON_Print(obj);
    if (!text) {
        cJSON_Delete(obj);
        return CLI_FAIL;
    }
    puts(text);
    cJSON_free(text);
    cJSON_Delete(obj);
    return CLI_OK;
fail_all:
    cJSON_Delete(obj);
    return CLI_FAIL;
fail:
    cJSON_Delete(obj);
    cJSON_Delete(g);
    cJSON_Delete(n);
    return CLI_FAIL;
}

static int write_dot(const struct session *s)
{
    bool std = !strcmp(s->o->dot, "-");
    FILE *f = std ? stdout : fopen(s->o->dot, "w");
    if (!f) {
        fprintf(stderr, "tapegrad explain: cannot write '%s'\n", s->o->dot);
        return CLI_FAIL;
    }
    struct tg_graph_dot_options d = {&s->names, 0, NULL};
    enum tg_status st = tg_graph_dot(s->root, f, &d);
    if ((!std && fclose(f)) || st) {
        fprintf(stderr, "tapegrad explain: writing the graph to '%s' failed\n", s->o->dot);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* --html: the page of the graph and the sweep (cli/htmlpage.c). */
static int write_html(const struct session *s)
{
    size_t size = strlen(s->o->src) + 32 * (size_t)s->e.n_vars + 64;
    for (int i = 0; i < s->e.n_vars; i++) size += strlen(s->e.vars[i]);
    char *title = malloc(size);
    if (!title) return CLI_FAIL;
    int n = snprintf(title, size, "%s", s->o->src);
    for (int i = 0; i < s->e.n_vars; i++) {
        char v[32];
        shortest(v, s->values[i]);
        n += snprintf(title + n, size - (size_t)n, "%s%s = %s", i ? ", " : "   at ", s->e.vars[i],
                      v);
    }
    struct tg_trace none = {0, NULL};
    int rc = htmlpage_write("tapegrad explain", s->o->html, s->root, s->trace ? s->trace : &none,
                            &s->names, title);
    free(title);
    return rc ? CLI_FAIL : CLI_OK;
}

/* Leaves, the graph, the value (checked for domain errors). */
static int build(struct session *s)
{
    int nv = s->e.n_vars;
    s->leaves = calloc((size_t)nv + 1, sizeof *s->leaves);
    s->nodes = calloc((size_t)s->e.n, sizeof *s->nodes);
    s->values = calloc((size_t)nv + 1, sizeof *s->values);
    s->grad = calloc((size_t)nv + 1, sizeof *s->grad);
    s->numeric = calloc((size_t)nv + 1, sizeof *s->numeric);
    s->sides = calloc((size_t)nv + 1, sizeof *s->sides);
    s->verdict = calloc((size_t)nv + 1, sizeof *s->verdict);
    if (!s->sides || !s->verdict) return CLI_FAIL;
    s->T = tg_tape_new();
    if (!s->leaves || !s->nodes || !s->values || !s->grad || !s->numeric || !s->T) return CLI_FAIL;
    int rc = read_values(&s->e, s->o, s->values);
    if (rc) return rc;
    for (int i = 0; i < nv; i++) {
        if (!(s->leaves[i] = tg_tensor_scalar(TG_F64, s->values[i]))) return CLI_FAIL;
        tg_tensor_set_requires_grad(s->leaves[i], true);
    }
    struct expr_error err;
    s->root = expr_build(&s->e, s->T, s->leaves, s->nodes, true, &err);
    if (!s->root) {
        report(s->o->src, &err);
        return CLI_FAIL;
    }
    s->value = tg_tensor_item(s->root);
    return make_names(s);
}

static void session_free(struct session *s)
{
    tg_tape_free(s->T);
    for (int i = 0; s->leaves && i < s->e.n_vars; i++) tg_tensor_free(s->leaves[i]);
    tg_trace_free(s->trace);
    free(s->name_list);
    free(s->leaves);
    free(s->nodes);
    free(s->values);
    free(s->grad);
    free(s->numeric);
    free(s->sides);
    free(s->verdict);
    free(s->hess);
    free(s->hess_numeric);
    expr_free(&s->e);
}

int tg_cli_explain(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        free(o.assign);
        return rc < 0 ? CLI_OK : rc;
    }
    struct session s = {.o = &o, .out = o.dot && !strcmp(o.dot, "-") ? stderr : stdout};
    struct expr_error err;
    if (expr_parse(o.src, &s.e, &err)) {
        report(o.src, &err);
        free(o.assign);
        return CLI_USAGE;
    }
    if (check_names(&s.e)) {
        expr_free(&s.e);
        free(o.assign);
        return CLI_USAGE;
    }
    if (o.hessian && s.e.n_vars > EXPR_HESSIAN_MAX_VARS) {
        fprintf(stderr,
                "tapegrad explain: --hessian takes at most %d variables, the expression has %d\n",
                EXPR_HESSIAN_MAX_VARS, s.e.n_vars);
        expr_free(&s.e);
        free(o.assign);
        return CLI_USAGE;
    }
    rc = build(&s);
    if (!rc && !o.json) print_head(&s);
    if (!rc) rc = run_backward(&s);
    if (!rc) rc = run_numeric(&s);
    int agree = rc ? CLI_OK : judge(&s);
    if (!rc && o.hessian) rc = run_hessian(&s);
    if (!rc && o.json) rc = print_json(&s);
    if (!rc && !o.json) print_partials(&s);
    if (!rc && !o.json && o.hessian) print_hessian(&s);
    if (!rc && o.dot) rc = write_dot(&s);
    if (!rc && o.html) rc = write_html(&s);
    if (!rc) rc = agree;
    if (rc == CLI_FAIL && !s.root && tg_last_status() == TG_ERR_NOMEM)
        fprintf(stderr, "tapegrad explain: out of memory\n");
    session_free(&s);
    free(o.assign);
    return rc;
}
