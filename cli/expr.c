/*
 * cli/expr.c - the expression parser (precedence climbing by grammar levels)
 * and the builder that records a parsed expression as a tapegrad graph.
 */
#include "expr.h"
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* an out-of-memory during an insertion leaves the element out (hh.tbl NULL) */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* A variable's entry in the name table. */
struct expr_var {
    const char *name; /* e->vars[index] */
    int index;
    UT_hash_handle hh;
};

/* ---- the functions an expression may call ---- */

typedef struct tg_tensor *(*unary_fn)(struct tg_tape *, struct tg_tensor *);
typedef struct tg_tensor *(*binary_fn)(struct tg_tape *, struct tg_tensor *, struct tg_tensor *);

enum { F_POW = 0, F_MAX, F_MIN, F_LEAKY, F_FIRST_UNARY };

static const struct func {
    const char *name;
    int arity;
    unary_fn un;
    binary_fn bin;
} funcs[] = {
    {"pow", 2, NULL, tg_pow},           {"max", 2, NULL, tg_maximum},
    {"min", 2, NULL, tg_minimum},       {"leaky_relu", 2, NULL, NULL},
    {"neg", 1, tg_neg, NULL},           {"exp", 1, tg_exp, NULL},
    {"log", 1, tg_log, NULL},           {"sqrt", 1, tg_sqrt, NULL},
    {"abs", 1, tg_abs, NULL},           {"tanh", 1, tg_tanh, NULL},
    {"sigmoid", 1, tg_sigmoid, NULL},   {"relu", 1, tg_relu, NULL},
    {"softplus", 1, tg_softplus, NULL}, {"sin", 1, tg_sin, NULL},
    {"cos", 1, tg_cos, NULL},
};
enum { N_FUNCS = sizeof funcs / sizeof funcs[0] };

const char *expr_func_name(int i)
{
    return i >= 0 && i < N_FUNCS ? funcs[i].name : "?";
}

/* ---- the parser ---- */

struct parser {
    const char *src;
    int pos;
    int depth;
    struct expr *e;
    struct expr_error *err;
};

static int fail(struct parser *p, int pos, const char *fmt, ...)
{
    if (p->err->msg[0]) return -1; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    p->err->col = pos + 1;
    return -1;
}

static char peek(struct parser *p)
{
    while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t') p->pos++;
    return p->src[p->pos];
}

/* Appends a node; returns its index or -1. */
static int push(struct parser *p, struct expr_node nd)
{
    struct expr *e = p->e;
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 32;
        struct expr_node *n = realloc(e->nodes, (size_t)cap * sizeof *n);
        if (!n) return fail(p, p->pos, "out of memory");
        e->nodes = n;
        e->cap = cap;
    }
    e->nodes[e->n] = nd;
    return e->n++;
}

static int node(struct parser *p, enum expr_kind k, int op, int a, int b, int col, int start)
{
    struct expr_node nd = {k, op, a, b, 0, -1, col + 1, start, p->pos};
    return push(p, nd);
}

static int enter(struct parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, p->pos, "expression nested more than %d levels deep", EXPR_MAX_DEPTH);
    return 0;
}

static int parse_expr(struct parser *p);
static int parse_unary(struct parser *p);

/* digits [. digits] [e [+-] digits], or . digits ... */
static int parse_number(struct parser *p)
{
    const char *s = p->src;
    int i = p->pos, start = i;
    while (isdigit((unsigned char)s[i])) i++;
    if (s[i] == '.') i++;
    while (isdigit((unsigned char)s[i])) i++;
    if (i == start + 1 && s[start] == '.') return fail(p, start, "malformed number");
    if (s[i] == 'e' || s[i] == 'E') {
        int j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (!isdigit((unsigned char)s[j])) return fail(p, start, "malformed number (exponent)");
        while (isdigit((unsigned char)s[j])) j++;
        i = j;
    }
    if (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.')
        return fail(p, start, "malformed number");
    char buf[64];
    if (i - start >= (int)sizeof buf) return fail(p, start, "number too long");
    memcpy(buf, s + start, (size_t)(i - start));
    buf[i - start] = 0;
    p->pos = i;
    struct expr_node nd = {EX_NUM, 0, -1, -1, strtod(buf, NULL), -1, start + 1, start, i};
    return push(p, nd);
}

int expr_var_find(const struct expr *e, const char *name, size_t len)
{
    struct expr_var *v = NULL;
    HASH_FIND(hh, e->by_name, name, len, v);
    return v ? v->index : -1;
}

static int var_index(struct parser *p, const char *name, int len)
{
    struct expr *e = p->e;
    int found = expr_var_find(e, name, (size_t)len);
    if (found >= 0) return found;
    if (e->n_vars == e->vars_cap) {
        int cap = e->vars_cap ? 2 * e->vars_cap : 16;
        char **vars = realloc(e->vars, (size_t)cap * sizeof *vars);
        if (!vars) return fail(p, p->pos, "out of memory");
        e->vars = vars;
        e->vars_cap = cap;
    }
    struct expr_var *v = malloc(sizeof *v);
    char *copy = strndup(name, (size_t)len);
    if (v && copy) {
        *v = (struct expr_var){.name = copy, .index = e->n_vars};
        HASH_ADD_KEYPTR(hh, e->by_name, copy, (unsigned)len, v);
        if (v->hh.tbl) return e->vars[e->n_vars] = copy, e->n_vars++;
    }
    free(v);
    free(copy);
    return fail(p, p->pos, "out of memory");
}

/* NAME '(' expr (',' expr)* ')' with the name at [start, start + len). */
static int parse_call(struct parser *p, int start, int len)
{
    int f = -1;
    for (int i = 0; i < N_FUNCS; i++)
        if ((int)strlen(funcs[i].name) == len &&
            !strncmp(funcs[i].name, p->src + start, (size_t)len))
            f = i;
    if (f < 0) return fail(p, start, "unknown function '%.*s'", len, p->src + start);
    p->pos++; /* '(' */
    int args[2] = {-1, -1}, n = 0;
    for (;;) {
        int a = parse_expr(p);
        if (a < 0) return -1;
        if (n < 2) args[n] = a;
        n++;
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) != ')')
            return fail(p, p->pos, "expected ',' or ')' in the call of %s", funcs[f].name);
        p->pos++;
        break;
    }
    if (n != funcs[f].arity)
        return fail(p, start, "%s takes %d argument%s, got %d", funcs[f].name, funcs[f].arity,
                    funcs[f].arity == 1 ? "" : "s", n);
    if (f == F_LEAKY && p->e->nodes[args[1]].kind != EX_NUM)
        return fail(p, p->e->nodes[args[1]].start, "leaky_relu: the slope must be a number");
    return node(p, EX_CALL, f, args[0], args[1], start, start);
}

static int parse_primary(struct parser *p)
{
    char c = peek(p);
    int start = p->pos;
    if (isdigit((unsigned char)c) || c == '.') return parse_number(p);
    if (isalpha((unsigned char)c) || c == '_') {
        while (isalnum((unsigned char)p->src[p->pos]) || p->src[p->pos] == '_') p->pos++;
        int len = p->pos - start;
        if (peek(p) == '(') return parse_call(p, start, len);
        int v = var_index(p, p->src + start, len);
        if (v < 0) return -1;
        struct expr_node nd = {EX_VAR, 0, -1, -1, 0, v, start + 1, start, start + len};
        p->pos = start + len;
        return push(p, nd);
    }
    if (c == '(') {
        p->pos++;
        int a = parse_expr(p);
        if (a < 0) return -1;
        if (peek(p) != ')')
            return fail(p, p->pos, "missing ')' for the '(' of column %d", start + 1);
        p->pos++;
        return a;
    }
    if (c == 0) return fail(p, p->pos, "unexpected end of expression");
    return fail(p, p->pos, "unexpected '%c'", c);
}

static int parse_power(struct parser *p)
{
    int start = p->pos;
    int a = parse_primary(p);
    if (a < 0) return -1;
    char c = peek(p);
    if (c != '^' && !(c == '*' && p->src[p->pos + 1] == '*')) return a;
    int col = p->pos;
    p->pos += c == '^' ? 1 : 2;
    if (enter(p)) return -1;
    int b = parse_unary(p); /* right-assoc; the exponent may be negative: 2^-1 */
    p->depth--;
    if (b < 0) return -1;
    return node(p, EX_BIN, '^', a, b, col, start);
}

static int parse_unary(struct parser *p)
{
    char c = peek(p);
    if (c != '-' && c != '+') return parse_power(p);
    int start = p->pos;
    p->pos++;
    if (enter(p)) return -1;
    int a = parse_unary(p);
    p->depth--;
    if (a < 0 || c == '+') return a;
    struct expr_node *x = &p->e->nodes[a];
    if (x->kind == EX_NUM) { /* fold -NUMBER, so that x^-1 stays a power by a constant */
        x->num = -x->num;
        x->start = start;
        x->col = start + 1;
        return a;
    }
    return node(p, EX_NEG, '-', a, -1, start, start);
}

static int parse_term(struct parser *p)
{
    int start = p->pos;
    int a = parse_unary(p);
    while (a >= 0 && (peek(p) == '/' || (peek(p) == '*' && p->src[p->pos + 1] != '*'))) {
        int col = p->pos;
        char op = p->src[p->pos++];
        int b = parse_unary(p);
        if (b < 0) return -1;
        a = node(p, EX_BIN, op, a, b, col, start);
    }
    return a;
}

static int parse_expr(struct parser *p)
{
    if (enter(p)) return -1;
    int start = p->pos;
    int a = parse_term(p);
    while (a >= 0 && (peek(p) == '+' || peek(p) == '-')) {
        int col = p->pos;
        char op = p->src[p->pos++];
        int b = parse_term(p);
        if (b < 0) return -1;
        a = node(p, EX_BIN, op, a, b, col, start);
    }
    p->depth--;
    return a;
}

int expr_parse(const char *src, struct expr *e, struct expr_error *err)
{
    memset(e, 0, sizeof *e);
    memset(err, 0, sizeof *err);
    struct parser p = {src, 0, 0, e, err};
    int root = parse_expr(&p);
    if (root >= 0 && peek(&p) != 0) {
        char c = peek(&p);
        root = c == ')' ? fail(&p, p.pos, "unmatched ')'") : fail(&p, p.pos, "unexpected '%c'", c);
    }
    if (root < 0) {
        expr_free(e);
        return -1;
    }
    /* every parse function returns the node it pushed last, so the root is last */
    if (root != e->n - 1) {
        fail(&p, 0, "internal error: the root is not the last node");
        expr_free(e);
        return -1;
    }
    return 0;
}

void expr_free(struct expr *e)
{
    struct expr_var *v, *tmp;
    HASH_ITER(hh, e->by_name, v, tmp)
    {
        HASH_DEL(e->by_name, v);
        free(v);
    }
    for (int i = 0; i < e->n_vars; i++) free(e->vars[i]);
    free(e->vars);
    free(e->nodes);
    memset(e, 0, sizeof *e);
}

/* ---- building the graph ---- */

static struct tg_tensor *bfail(struct expr_error *err, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->col = col;
    return NULL;
}

/* base ^ exponent, checked: the exponent node ne decides pow_scalar vs pow. */
static struct tg_tensor *build_pow(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b,
                                   const struct expr_node *ne, const struct expr_node *nd,
                                   bool check, struct expr_error *err)
{
    double x = tg_tensor_item(a), y = tg_tensor_item(b);
    if (check && x < 0 && ne->kind != EX_NUM)
        return bfail(err, nd->col,
                     "domain error: power of a negative base (%g) with a "
                     "variable exponent (its derivative needs log of the base)",
                     x);
    if (check && x < 0 && y != floor(y))
        return bfail(err, nd->col,
                     "domain error: power of a negative base (%g) to a "
                     "non-integer exponent (%g)",
                     x, y);
    if (check && x == 0 && y < 0)
        return bfail(err, nd->col, "domain error: division by zero (0 to the power %g)", y);
    return ne->kind == EX_NUM ? tg_pow_scalar(T, a, ne->num) : tg_pow(T, a, b);
}

static struct tg_tensor *build_bin(struct tg_tape *T, const struct expr *e,
                                   const struct expr_node *nd, struct tg_tensor **t, bool check,
                                   struct expr_error *err)
{
    struct tg_tensor *a = t[nd->a], *b = t[nd->b];
    switch (nd->op) {
    case '+':
        return tg_add(T, a, b);
    case '-':
        return tg_sub(T, a, b);
    case '*':
        return tg_mul(T, a, b);
    case '/':
        if (check && tg_tensor_item(b) == 0)
            return bfail(err, nd->col, "domain error: division by zero");
        return tg_div(T, a, b);
    default:
        return build_pow(T, a, b, &e->nodes[nd->b], nd, check, err);
    }
}

static struct tg_tensor *build_call(struct tg_tape *T, const struct expr *e,
                                    const struct expr_node *nd, struct tg_tensor **t, bool check,
                                    struct expr_error *err)
{
    const struct func *f = &funcs[nd->op];
    struct tg_tensor *a = t[nd->a];
    double x = tg_tensor_item(a);
    if (nd->op == F_POW) return build_pow(T, a, t[nd->b], &e->nodes[nd->b], nd, check, err);
    if (nd->op == F_LEAKY) return tg_leaky_relu(T, a, e->nodes[nd->b].num);
    if (f->bin) return f->bin(T, a, t[nd->b]);
    if (check && f->un == tg_log && x <= 0)
        return bfail(err, nd->col, "domain error: log of %s (%g)",
                     x == 0 ? "zero" : "a negative number", x);
    if (check && f->un == tg_sqrt && x < 0)
        return bfail(err, nd->col, "domain error: sqrt of a negative number (%g)", x);
    return f->un(T, a);
}

static const char *node_what(const struct expr_node *nd)
{
    static char buf[32];
    if (nd->kind == EX_CALL) return expr_func_name(nd->op);
    if (nd->kind == EX_NEG) return "unary minus";
    if (nd->kind == EX_NUM) return "a number";
    if (nd->kind == EX_VAR) return "a variable";
    snprintf(buf, sizeof buf, "'%c'", nd->op == 0 ? '?' : nd->op);
    return buf;
}

struct tg_tensor *expr_build(const struct expr *e, struct tg_tape *T, struct tg_tensor **vars,
                             struct tg_tensor **out, bool check, struct expr_error *err)
{
    memset(err, 0, sizeof *err);
    for (int k = 0; k < e->n; k++) {
        const struct expr_node *nd = &e->nodes[k];
        struct tg_tensor *r = NULL;
        switch (nd->kind) {
        case EX_NUM:
            r = tg_tape_constant(T, TG_F64, 0, NULL, &nd->num);
            break;
        case EX_VAR:
            r = vars[nd->var];
            break;
        case EX_NEG:
            r = tg_neg(T, out[nd->a]);
            break;
        case EX_BIN:
            r = build_bin(T, e, nd, out, check, err);
            break;
        case EX_CALL:
            r = build_call(T, e, nd, out, check, err);
            break;
        }
        if (!r) return err->msg[0] ? NULL : bfail(err, nd->col, "%s", tg_last_error());
        double v = tg_tensor_item(r);
        if (check && !isfinite(v))
            return bfail(err, nd->col, "numeric error: %s produced %g", node_what(nd), v);
        out[k] = r;
    }
    return e->n ? out[e->n - 1] : NULL;
}

/* ---- plain double evaluation, for the numeric derivatives ---- */

/* f(x) of function index f with the f64 kernels' formulas (ops/unary.c). */
static double unary_value(int f, double x)
{
    switch (f) {
    case F_FIRST_UNARY: /* neg */
        return -x;
    case F_FIRST_UNARY + 1:
        return exp(x);
    case F_FIRST_UNARY + 2:
        return log(x);
    case F_FIRST_UNARY + 3:
        return sqrt(x);
    case F_FIRST_UNARY + 4:
        return fabs(x);
    case F_FIRST_UNARY + 5:
        return tanh(x);
    case F_FIRST_UNARY + 6: /* sigmoid, stable on both sides */
        return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case F_FIRST_UNARY + 7:
        return x > 0 ? x : 0;
    case F_FIRST_UNARY + 8: /* softplus */
        return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
    case F_FIRST_UNARY + 9:
        return sin(x);
    default:
        return cos(x);
    }
}

/* Node k's value from its operands' values a and b, x being the value of the
 * variable of an EX_VAR node. */
static double apply(const struct expr *e, int k, double a, double b, double x)
{
    const struct expr_node *nd = &e->nodes[k];
    switch (nd->kind) {
    case EX_NUM:
        return nd->num;
    case EX_VAR:
        return x;
    case EX_NEG:
        return -a;
    case EX_BIN:
        switch (nd->op) {
        case '+':
            return a + b;
        case '-':
            return a - b;
        case '*':
            return a * b;
        case '/':
            return a / b;
        default:
            return pow(a, b);
        }
    case EX_CALL:
        switch (nd->op) {
        case F_POW:
            return pow(a, b);
        case F_MAX:
            return a > b ? a : b;
        case F_MIN:
            return a < b ? a : b;
        case F_LEAKY:
            return a > 0 ? a : e->nodes[nd->b].num * a;
        default:
            return unary_value(nd->op, a);
        }
    }
    return NAN;
}

double expr_node_value(const struct expr *e, int k, const double *val, const double *vars)
{
    const struct expr_node *nd = &e->nodes[k];
    return apply(e, k, nd->a >= 0 ? val[nd->a] : 0, nd->b >= 0 ? val[nd->b] : 0,
                 nd->kind == EX_VAR ? vars[nd->var] : 0);
}

/* Lists by node: cons[first[k] .. first[k+1]) are the nodes that take node k
 * as an operand; occ[occ_first[i] .. occ_first[i+1]) the nodes of variable i. */
struct links {
    int *first, *cons, *occ_first, *occ;
};

static int links_new(const struct expr *e, struct links *l)
{
    int n = e->n;
    l->first = calloc((size_t)n + 1, sizeof *l->first);
    l->cons = malloc((size_t)(2 * n + 1) * sizeof *l->cons);
    l->occ_first = calloc((size_t)e->n_vars + 1, sizeof *l->occ_first);
    l->occ = malloc((size_t)n * sizeof *l->occ);
    int *at = malloc(((size_t)n + (size_t)e->n_vars + 1) * sizeof *at);
    if (!l->first || !l->cons || !l->occ_first || !l->occ || !at) {
        free(at);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        const struct expr_node *nd = &e->nodes[k];
        if (nd->a >= 0) l->first[nd->a + 1]++;
        if (nd->b >= 0) l->first[nd->b + 1]++;
        if (nd->kind == EX_VAR) l->occ_first[nd->var + 1]++;
    }
    for (int k = 0; k < n; k++) l->first[k + 1] += l->first[k];
    for (int i = 0; i < e->n_vars; i++) l->occ_first[i + 1] += l->occ_first[i];
    memcpy(at, l->first, (size_t)n * sizeof *at);
    memcpy(at + n, l->occ_first, (size_t)e->n_vars * sizeof *at);
    for (int k = 0; k < n; k++) {
        const struct expr_node *nd = &e->nodes[k];
        if (nd->a >= 0) l->cons[at[nd->a]++] = k;
        if (nd->b >= 0) l->cons[at[nd->b]++] = k;
        if (nd->kind == EX_VAR) l->occ[at[n + nd->var]++] = k;
    }
    free(at);
    return 0;
}

static void links_free(struct links *l)
{
    free(l->first);
    free(l->cons);
    free(l->occ_first);
    free(l->occ);
}

/* The work of expr_numeric_grad; every array (n). */
struct cone {
    struct links l;
    int *mark;         /* the variable whose cone a node was last put in, -1 for none */
    int *order;        /* the cone */
    int *stack, *next; /* the walk: nodes, and the index of the next consumer to visit */
};

/*
 * The nodes that depend on variable i into order[0..m), in reverse topological
 * order (a depth-first walk over consumers lists each node after all of its
 * consumers): read backwards, it evaluates every node after its operands.
 */
static int cone_of(struct cone *w, int i)
{
    int m = 0, top = 0;
    for (int o = w->l.occ_first[i]; o < w->l.occ_first[i + 1]; o++) {
        int k = w->l.occ[o];
        if (w->mark[k] == i) continue;
        w->mark[k] = i;
        w->stack[top] = k;
        w->next[top++] = w->l.first[k];
        while (top > 0) {
            int t = w->stack[top - 1];
            if (w->next[top - 1] == w->l.first[t + 1]) {
                w->order[m++] = t;
                top--;
                continue;
            }
            int u = w->l.cons[w->next[top - 1]++];
            if (w->mark[u] == i) continue;
            w->mark[u] = i;
            w->stack[top] = u;
            w->next[top++] = w->l.first[u];
        }
    }
    return m;
}

/* f(v + h) and f(v - h) for variable i into f[0], f[1]: the cone's nodes
 * re-evaluated into vp and vm, its operands outside the cone read from val. */
static void eval_cone(const struct expr *e, const struct cone *w, int i, int m, const double *val,
                      double *vp, double *vm, double v, double h, double f[2])
{
    for (int j = m - 1; j >= 0; j--) {
        int k = w->order[j], a = e->nodes[k].a, b = e->nodes[k].b;
        bool ina = a >= 0 && w->mark[a] == i, inb = b >= 0 && w->mark[b] == i;
        double a0 = a >= 0 ? val[a] : 0, b0 = b >= 0 ? val[b] : 0;
        vp[k] = apply(e, k, ina ? vp[a] : a0, inb ? vp[b] : b0, v + h);
        vm[k] = apply(e, k, ina ? vm[a] : a0, inb ? vm[b] : b0, v - h);
    }
    int root = e->n - 1;
    f[0] = w->mark[root] == i ? vp[root] : val[root];
    f[1] = w->mark[root] == i ? vm[root] : val[root];
}

int expr_numeric_grad(const struct expr *e, const double *vars, double *numeric)
{
    return expr_numeric_sides(e, vars, numeric, NULL);
}

int expr_numeric_sides(const struct expr *e, const double *vars, double *numeric,
                       struct expr_sides *sides)
{
    size_t n = (size_t)e->n + 1;
    struct cone w;
    memset(&w, 0, sizeof w);
    double *val = malloc(n * sizeof *val), *vp = malloc(n * sizeof *vp);
    double *vm = malloc(n * sizeof *vm);
    w.mark = malloc(n * sizeof *w.mark);
    w.order = malloc(n * sizeof *w.order);
    w.stack = malloc(n * sizeof *w.stack);
    w.next = malloc(n * sizeof *w.next);
    int rc = -1;
    if (!val || !vp || !vm || !w.mark || !w.order || !w.stack || !w.next || links_new(e, &w.l))
        goto done;
    for (int k = 0; k < e->n; k++) {
        val[k] = expr_node_value(e, k, val, vars);
        w.mark[k] = -1;
    }
    for (int i = 0; i < e->n_vars; i++) {
        int m = cone_of(&w, i);
        double v = vars[i], h = 1e-6 * (fabs(v) > 1 ? fabs(v) : 1), f[2];
        eval_cone(e, &w, i, m, val, vp, vm, v, h, f);
        numeric[i] = (f[0] - f[1]) / (2 * h);
        if (sides) sides[i] = (struct expr_sides){e->n ? val[e->n - 1] : 0, f[0], f[1], h};
    }
    rc = 0;
done:
    links_free(&w.l);
    free(val);
    free(vp);
    free(vm);
    free(w.mark);
    free(w.order);
    free(w.stack);
    free(w.next);
    return rc;
}
