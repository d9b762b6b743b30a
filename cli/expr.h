/*
 * cli/expr.h - arithmetic expressions for `tapegrad explain` (not installed).
 *
 * The parser turns text such as "(sigmoid(w*x + b) - t)^2" into a flat list of
 * nodes in postorder: every node's operands come before it, so building the
 * graph is one loop, with no recursion however long the expression is. The
 * parser recurses only on nesting (parentheses, unary minus, powers), and that
 * depth is capped at EXPR_MAX_DEPTH.
 *
 * Grammar (precedence and associativity as in Python):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := ('-' | '+') unary | power          so -x^2 = -(x^2)
 *   power   := primary (('^' | '**') unary)?     right-assoc: 2^3^2 = 2^9
 *   primary := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
 */
#ifndef TG_CLI_EXPR_H
#define TG_CLI_EXPR_H

#include <tapegrad/tapegrad.h>

#define EXPR_MAX_DEPTH 64

enum expr_kind { EX_NUM, EX_VAR, EX_NEG, EX_BIN, EX_CALL };

struct expr_node {
    enum expr_kind kind;
    int op;     /* EX_BIN: '+' '-' '*' '/' '^'; EX_CALL: index of the function */
    int a, b;   /* operand nodes (-1 when absent) */
    double num; /* EX_NUM: the number */
    int var;    /* EX_VAR: index into vars */
    int col;    /* 1-based column of the token that names the operation */
    int start;  /* the node's text is src[start, end) */
    int end;
};

struct expr {
    struct expr_node *nodes; /* postorder; the root is the last */
    int n, cap;
    char **vars; /* variable names in order of first use */
    int n_vars, vars_cap;
    struct expr_var *by_name; /* vars[] by name (a hash table; expr.c) */
};

struct expr_error {
    int col; /* 1-based; 0 when the error has no position */
    char msg[192];
};

/* Parses src into e (zeroed by the call). Returns 0, or -1 with err filled
 * (e is then freed). */
int expr_parse(const char *src, struct expr *e, struct expr_error *err);
void expr_free(struct expr *e);

/* The name of function index i of an EX_CALL node ("sigmoid"). */
const char *expr_func_name(int i);

/* The index of the variable named name[0..len) in e->vars, or -1. */
int expr_var_find(const struct expr *e, const char *name, size_t len);

/*
 * Builds e on tape T (f64) with vars[i] the tensor of variable i and stores the
 * tensor of node k in out[k] (out has e->n entries). With check set, a domain
 * error (log or sqrt of a negative number, division by zero, ...) or a NaN/Inf
 * value stops the build: returns NULL with err naming the op and its column.
 * Without check it returns whatever the ops compute. NULL with err also when
 * an op fails (message from tapegrad).
 */
struct tg_tensor *expr_build(const struct expr *e, struct tg_tape *T, struct tg_tensor **vars,
                             struct tg_tensor **out, bool check, struct expr_error *err);

/*
 * The value of node k from the values of its operands, val[nodes[k].a] and
 * val[nodes[k].b], and of the variables, vars[]: the formulas of the ops' f64
 * kernels in plain double arithmetic, so the value is the graph's to the last bit.
 * No domain checks: log(-1) is NaN.
 */
double expr_node_value(const struct expr *e, int k, const double *val, const double *vars);

/*
 * Central differences (f(v + h) - f(v - h)) / 2h, h = 1e-6 max(1, |v|), of the
 * expression's value with respect to every variable, into numeric (n_vars), at
 * the variables' values vars (n_vars). Each variable re-evaluates only the nodes
 * that depend on it (in plain doubles, expr_node_value), so an expression whose
 * variables each reach few nodes costs little more than one evaluation per
 * variable. Returns 0, or -1 when out of memory.
 */
int expr_numeric_grad(const struct expr *e, const double *vars, double *numeric);
/* What a central difference of one variable used: f at v, v + h and v - h. */
struct expr_sides {
    double f0, fp, fm, h;
};
/* expr_numeric_grad that also stores, when sides (n_vars) is not NULL, each
 * variable's f0, fp, fm and h (for tg_gradcheck_judge's kink test). */
int expr_numeric_sides(const struct expr *e, const double *vars, double *numeric,
                       struct expr_sides *sides);

/* The most variables expr_hessian takes (explain --hessian prints n^2 numbers). */
#define EXPR_HESSIAN_MAX_VARS 32

/*
 * The second partial derivatives of the expression at the variables' values
 * (n_vars), row-major n_vars x n_vars, H[i n + j] = d2f / dx_i dx_j:
 *   H          analytic: g = grad f by tg_grad with create_graph, then row i =
 *              grad g_i by tg_grad again (cli/hessian.c);
 *   H_numeric  central differences of the analytic first derivatives (tg_grad,
 *              f64): column j = (g(x + h e_j) - g(x - h e_j)) / 2h, h = 1e-6
 *              max(1, |x_j|); NaN where x +- h e_j is outside the domain
 *              (expr_build's checks: log of a negative number, ...).
 * Returns 0, or -1 with err filled (col 0): more than EXPR_HESSIAN_MAX_VARS
 * variables, an op without a differentiable VJP, out of memory.
 */
int expr_hessian(const struct expr *e, const double *values, double *H, double *H_numeric,
                 struct expr_error *err);

#endif
