/*
 * tests/check_cli.c - the expression parser and builder of `tapegrad explain`
 * (cli/expr.c), called directly: precedence, associativity, numbers, calls,
 * error messages and their columns, nesting limits and domain errors; the plain
 * evaluation and numeric derivatives behind explain's numeric column; the check
 * of trained parameters in cli/mlpio.c.
 * Expected values are plain arithmetic, worked out in the comments.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "expr.h"
#include "mlpio.h"

/* The value of src with x = 3 and y = 0.5 (variables named otherwise are 1). */
static double eval(const char *src)
{
    struct expr e;
    struct expr_error err;
    ck_assert_msg(expr_parse(src, &e, &err) == 0, "%s: %s at %d", src, err.msg, err.col);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor **vars = calloc((size_t)e.n_vars + 1, sizeof *vars);
    struct tg_tensor **nodes = calloc((size_t)e.n, sizeof *nodes);
    for (int i = 0; i < e.n_vars; i++)
        vars[i] = tg_tensor_scalar(TG_F64, !strcmp(e.vars[i], "x")   ? 3
                                           : !strcmp(e.vars[i], "y") ? 0.5
                                                                     : 1);
    struct tg_tensor *r = expr_build(&e, T, vars, nodes, true, &err);
    ck_assert_msg(r != NULL, "%s: %s", src, err.msg);
    double v = tg_tensor_item(r);
    for (int i = 0; i < e.n_vars; i++) tg_tensor_free(vars[i]);
    free(vars);
    free(nodes);
    tg_tape_free(T);
    expr_free(&e);
    return v;
}

static const struct {
    const char *src;
    double want;
} values[] = {
    {"2+3*4", 14},
    {"(2+3)*4", 20},
    {"1-2-3", -4}, /* left-assoc */
    {"8/4/2", 1},
    {"2^3^2", 512}, /* right-assoc: 2^9 */
    {"-x^2", -9},
    {"(-x)^2", 9}, /* ^ before unary minus */
    {"-2^2", -4},
    {"2^-1", 0.5},
    {"x**2", 9},
    {"--x", 3},
    {"+x", 3},
    {"-x*-x", 9},
    {"1e-3*1000", 1},
    {".5 + 1.5", 2},
    {"2.5E+1", 25},
    {"max(1, x)*min(4, x)", 9},
    {"pow(x, 2)", 9},
    {"pow(2, x)", 8},
    {"leaky_relu(-2, 0.1)", -0.2},
    {"leaky_relu(x, -0.5)", 3},
    {"sigmoid(0)", 0.5},
    {"relu(-x) + abs(-x)", 3},
    {"exp(0) + log(1)", 1},
    {"sqrt(x*x + 16)", 5},
    {"tanh(0) + sin(0) + cos(0)", 1},
    {"neg(x) + softplus(0) - log(2)", -3},
    {"x*y - y*x", 0},
    {"  x  ", 3},
    {"2 * -x", -6},
};

START_TEST(test_values)
{
    double v = eval(values[_i].src);
    ck_assert_msg(fabs(v - values[_i].want) < 1e-12, "%s = %.17g, want %g", values[_i].src, v,
                  values[_i].want);
}
END_TEST

START_TEST(test_structure)
{
    struct expr e;
    struct expr_error err;
    /* -x^2 is neg(x ^ 2): nodes x, 2, ^, neg in postorder */
    ck_assert_int_eq(expr_parse("-x^2", &e, &err), 0);
    ck_assert_int_eq(e.n, 4);
    ck_assert_int_eq(e.nodes[3].kind, EX_NEG);
    ck_assert_int_eq(e.nodes[2].kind, EX_BIN);
    ck_assert_int_eq(e.nodes[2].op, '^');
    ck_assert_int_eq(e.nodes[2].col, 3);
    ck_assert_int_eq(e.nodes[3].a, 2);
    expr_free(&e);
    /* variables are listed once, in order of first use; -NUMBER is folded */
    ck_assert_int_eq(expr_parse("b*a + a - 1", &e, &err), 0);
    ck_assert_int_eq(e.n_vars, 2);
    ck_assert_str_eq(e.vars[0], "b");
    ck_assert_str_eq(e.vars[1], "a");
    expr_free(&e);
    ck_assert_int_eq(expr_parse("x^-1", &e, &err), 0);
    ck_assert_int_eq(e.nodes[1].kind, EX_NUM);
    ck_assert_double_eq(e.nodes[1].num, -1);
    expr_free(&e);
    /* a name is a function only when a '(' follows */
    ck_assert_int_eq(expr_parse("exp + 1", &e, &err), 0);
    ck_assert_int_eq(e.n_vars, 1);
    ck_assert_str_eq(e.vars[0], "exp");
    expr_free(&e);
}
END_TEST

static const struct {
    const char *src;
    int col;
    const char *msg;
} errors[] = {
    {"x + * y", 5, "unexpected '*'"},
    {"sin(x", 6, "expected ',' or ')' in the call of sin"},
    {"(x + 1", 7, "missing ')' for the '(' of column 1"},
    {"x)", 2, "unmatched ')'"},
    {"x y", 3, "unexpected 'y'"},
    {"foo(x)", 1, "unknown function 'foo'"},
    {"1.2.3", 1, "malformed number"},
    {"1e", 1, "malformed number (exponent)"},
    {"2x", 1, "malformed number"},
    {"", 1, "unexpected end of expression"},
    {"x + ", 5, "unexpected end of expression"},
    {"x $ 2", 3, "unexpected '$'"},
    {"sin(x, y)", 1, "sin takes 1 argument, got 2"},
    {"max(x)", 1, "max takes 2 arguments, got 1"},
    {"leaky_relu(x, y)", 15, "leaky_relu: the slope must be a number"},
    {"3 * ()", 6, "unexpected ')'"},
};

START_TEST(test_errors)
{
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(errors[_i].src, &e, &err), -1);
    ck_assert_str_eq(err.msg, errors[_i].msg);
    ck_assert_msg(err.col == errors[_i].col, "'%s': column %d, want %d", errors[_i].src, err.col,
                  errors[_i].col);
    ck_assert_ptr_null(e.nodes); /* freed on failure */
}
END_TEST

static char *repeat(const char *a, int n, const char *mid, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc(n * (la + lb) + lm + 1), *p = s;
    for (int i = 0; i < n; i++, p += la) memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < n; i++, p += lb) memcpy(p, b, lb);
    *p = 0;
    return s;
}

START_TEST(test_depth)
{
    struct expr e;
    struct expr_error err;
    char *s = repeat("(", 60, "x", ")");
    ck_assert_int_eq(expr_parse(s, &e, &err), 0);
    expr_free(&e);
    free(s);
    s = repeat("(", 100, "x", ")");
    ck_assert_int_eq(expr_parse(s, &e, &err), -1);
    ck_assert_str_eq(err.msg, "expression nested more than 64 levels deep");
    ck_assert_int_eq(err.col, 65); /* inside the 64th "(": level 65 (level 1 is the top) */
    free(s);
    s = repeat("-", 1000, "x", "");
    ck_assert_int_eq(expr_parse(s, &e, &err), -1);
    free(s);
    s = repeat("2^", 1000, "x", "");
    ck_assert_int_eq(expr_parse(s, &e, &err), -1);
    ck_assert_str_eq(err.msg, "expression nested more than 64 levels deep");
    free(s);
    /* a long flat sum is not nesting: it parses and builds without recursion */
    s = repeat("x+", 100000, "x", "");
    ck_assert_double_eq_tol(eval(s), 3 * 100001.0, 1e-6);
    free(s);
}
END_TEST

static const struct {
    const char *src;
    int col;
    const char *msg;
} domain[] = {
    {"log(x - 4)", 1, "domain error: log of a negative number (-1)"},
    {"1 + log(x - 3)", 5, "domain error: log of zero (0)"},
    {"sqrt(-x)", 1, "domain error: sqrt of a negative number (-3)"},
    {"y / (x - 3)", 3, "domain error: division by zero"},
    {"(-x)^0.5", 5, "domain error: power of a negative base (-3) to a non-integer exponent (0.5)"},
    {"pow(-x, y)", 1,
     "domain error: power of a negative base (-3) with a variable exponent (its derivative needs "
     "log of the base)"},
    {"(x - 3)^-2", 8, "domain error: division by zero (0 to the power -2)"},
    {"2 * exp(x * 1000)", 5, "numeric error: exp produced inf"},
};

START_TEST(test_domain)
{
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(domain[_i].src, &e, &err), 0);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *vars[2] = {tg_tensor_scalar(TG_F64, 3), tg_tensor_scalar(TG_F64, 0.5)};
    if (e.n_vars == 2 && !strcmp(e.vars[0], "y")) { /* keep x = 3, y = 0.5 */
        struct tg_tensor *t = vars[0];
        vars[0] = vars[1];
        vars[1] = t;
    }
    struct tg_tensor **nodes = calloc((size_t)e.n, sizeof *nodes);
    ck_assert_ptr_null(expr_build(&e, T, vars, nodes, true, &err));
    ck_assert_str_eq(err.msg, domain[_i].msg);
    ck_assert_int_eq(err.col, domain[_i].col);
    /* without the check the ops just compute (NaN, Inf) */
    tg_tape_reset(T);
    ck_assert_ptr_nonnull(expr_build(&e, T, vars, nodes, false, &err));
    free(nodes);
    tg_tensor_free(vars[0]);
    tg_tensor_free(vars[1]);
    tg_tape_free(T);
    expr_free(&e);
}
END_TEST

/* The plain-double evaluation behind the numeric column: every node of every
 * expression above gives the graph's value to the last bit (x = 3, y = 0.5,
 * other variables 1); and the numeric derivatives of expressions with shared
 * and repeated variables agree with backward's. */
START_TEST(test_plain_values)
{
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(values[_i].src, &e, &err), 0);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor **vars = calloc((size_t)e.n_vars + 1, sizeof *vars);
    struct tg_tensor **nodes = calloc((size_t)e.n, sizeof *nodes);
    double *x = calloc((size_t)e.n_vars + 1, sizeof *x), *val = calloc((size_t)e.n, sizeof *val);
    for (int i = 0; i < e.n_vars; i++) {
        x[i] = !strcmp(e.vars[i], "x") ? 3 : !strcmp(e.vars[i], "y") ? 0.5 : 1;
        vars[i] = tg_tensor_scalar(TG_F64, x[i]);
    }
    ck_assert_ptr_nonnull(expr_build(&e, T, vars, nodes, true, &err));
    for (int k = 0; k < e.n; k++) {
        val[k] = expr_node_value(&e, k, val, x);
        ck_assert_msg(val[k] == tg_tensor_item(nodes[k]), "%s: node %d: %.17g, graph %.17g",
                      values[_i].src, k, val[k], tg_tensor_item(nodes[k]));
    }
    for (int i = 0; i < e.n_vars; i++) tg_tensor_free(vars[i]);
    free(vars);
    free(nodes);
    free(x);
    free(val);
    tg_tape_free(T);
    expr_free(&e);
}
END_TEST

START_TEST(test_numeric_grad)
{
    static const char *const srcs[] = {
        "a*b + sin(a) - c/a",
        "x*x*x + x - exp(y*x)",
        "((a + b) * (b + c)) * ((c + d) + a) + d",
        "sigmoid(w*x + b) * softplus(x - w) + tanh(b)^2",
        "max(a, b) + min(b, c) + leaky_relu(a - c, 0.1) + sqrt(a*a + b*b) + pow(a, b)",
        "p + q",
    };
    static const double at[] = {0.7, 1.3, 1.9, 0.45, 1.1, 2.3};
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(srcs[_i], &e, &err), 0);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor **vars = calloc((size_t)e.n_vars, sizeof *vars);
    struct tg_tensor **nodes = calloc((size_t)e.n, sizeof *nodes);
    double x[6], num[6];
    for (int i = 0; i < e.n_vars; i++) {
        x[i] = at[i];
        vars[i] = tg_tensor_scalar(TG_F64, x[i]);
        tg_tensor_set_requires_grad(vars[i], true);
    }
    struct tg_tensor *root = expr_build(&e, T, vars, nodes, true, &err);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(tg_backward(root, NULL), TG_OK);
    ck_assert_int_eq(expr_numeric_grad(&e, x, num), 0);
    for (int i = 0; i < e.n_vars; i++) {
        double g = tg_tensor_grad_get(vars[i], 0);
        ck_assert_msg(fabs(num[i] - g) <= 1e-7 * (1 + fabs(g)),
                      "%s: d/d%s numeric %.12g, backward %.12g", srcs[_i], e.vars[i], num[i], g);
        tg_tensor_free(vars[i]);
    }
    free(vars);
    free(nodes);
    tg_tape_free(T);
    expr_free(&e);
}
END_TEST

/* Variables by name: found whatever their number, each once. */
START_TEST(test_many_variables)
{
    enum { N = 3000 };
    char *src = malloc(N * 16), *p = src;
    for (int i = 0; i < N; i++) p += sprintf(p, "%sv%d*v%d", i ? " + " : "", i, (i * 7) % N);
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(src, &e, &err), 0);
    ck_assert_int_eq(e.n_vars, N);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "v%d", i);
        int k = expr_var_find(&e, name, strlen(name));
        ck_assert_int_ge(k, 0);
        ck_assert_str_eq(e.vars[k], name);
    }
    ck_assert_int_eq(expr_var_find(&e, "v", 1), -1);
    ck_assert_int_eq(expr_var_find(&e, "v30000", 6), -1);
    double *x = malloc(N * sizeof *x), *num = malloc(N * sizeof *num);
    for (int k = 0; k < N; k++) x[k] = 0.001 * atoi(e.vars[k] + 1); /* v_i = i / 1000 */
    ck_assert_int_eq(expr_numeric_grad(&e, x, num), 0);
    /* d/dv_i sum_j v_j v_{7j mod N} = v_{7i mod N} + v_j for the j with 7j = i mod N */
    for (int i = 0; i < N; i++) {
        double want = 0.001 * ((i * 7) % N);
        for (int j = 0; j < N; j++)
            if ((j * 7) % N == i) want += 0.001 * j;
        snprintf(name, sizeof name, "v%d", i);
        int k = expr_var_find(&e, name, strlen(name));
        ck_assert_msg(fabs(num[k] - want) < 1e-6, "d/d%s: %g, want %g", name, num[k], want);
    }
    free(x);
    free(num);
    free(src);
    expr_free(&e);
}
END_TEST

/* What training leaves is checked before anything is reported or saved: a NaN
 * or Inf weight anywhere fails mlp_check_params (a ReLU turns a NaN input into
 * 0, so the loss can stay finite while the weights are not). */
/* expr_hessian (explain --hessian): second partials worked out by hand at x, y,
 * H = {d2/dx2, d2/dxdy, d2/dy2}; the numeric column (central differences of the
 * first partials) within 1e-6. Expressions in x and y, x first. */
static const struct {
    const char *src;
    double x, y;
    double h[3];
} hessians[] = {
    /* 2y, 2x, 0 */
    {"x^2*y", 1, 2, {4, 2, 0}},
    /* bilinear; then a constant gradient */
    {"x*y + y", 3, -1, {0, 1, 0}},
    {"x + y", 0.5, 0.25, {0, 0, 0}},
    /* 0, -1/y^2, 2x/y^3 */
    {"x/y", 0.7, 1.3, {0, -1 / (1.3 * 1.3), 2 * 0.7 / (1.3 * 1.3 * 1.3)}},
    /* y^2 e^xy, (1 + xy) e^xy, x^2 e^xy */
    {"exp(x*y)", 0.5, 2, {4 * M_E, 2 * M_E, 0.25 * M_E}},
    /* -sin x cos y, -cos x sin y, -sin x cos y */
    {"sin(x)*cos(y)", 0.3, 0.9, {-0.18369830628609546, -0.74834077968113089, -0.18369830628609546}},
    /* -sqrt(y)/x^2, 1/(2x sqrt y), -log(x)/(4 y^1.5) */
    {"log(x)*sqrt(y)", 2, 4, {-0.5, 0.125, -0.02166084939249829}},
    /* 0, 1 - tanh^2 y, -2x tanh y (1 - tanh^2 y) */
    {"x*tanh(y)", 1.5, 0.4, {0, 0.85563878608117772, -0.97529720651059149}},
    /* 6x, -4y, -4x */
    {"x^3 - 2*x*y^2", 1, 1, {6, -4, -4}},
    /* y(y-1) x^(y-2), x^(y-1) (1 + y log x), x^y log^2 x */
    {"pow(x, y)", 2, 3, {12, 12.317766166719343, 3.8436241113456111}},
};

START_TEST(test_hessian)
{
    struct expr e;
    struct expr_error err;
    ck_assert_int_eq(expr_parse(hessians[_i].src, &e, &err), 0);
    ck_assert_int_eq(e.n_vars, 2);
    ck_assert_str_eq(e.vars[0], "x");
    double v[2] = {hessians[_i].x, hessians[_i].y}, H[4], N[4];
    ck_assert_int_eq(expr_hessian(&e, v, H, N, &err), 0);
    const double *w = hessians[_i].h, want[4] = {w[0], w[1], w[1], w[2]};
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(fabs(H[k] - want[k]) <= 1e-9 * (1 + fabs(want[k])),
                      "%s: H[%d] = %.17g, want %.17g", hessians[_i].src, k, H[k], want[k]);
        ck_assert_msg(fabs(N[k] - want[k]) <= 1e-6 * (1 + fabs(want[k])),
                      "%s: numeric H[%d] = %.17g, want %.17g", hessians[_i].src, k, N[k], want[k]);
    }
    expr_free(&e);
}
END_TEST

START_TEST(test_hessian_limits)
{
    struct expr e;
    struct expr_error err;
    double v[EXPR_HESSIAN_MAX_VARS + 1], H[4], N[4];
    for (int i = 0; i <= EXPR_HESSIAN_MAX_VARS; i++) v[i] = 1;
    /* one variable more than the limit: refused with a message, nothing computed */
    char src[512] = "x0", name[16];
    for (int i = 1; i <= EXPR_HESSIAN_MAX_VARS; i++) {
        snprintf(name, sizeof name, "+x%d", i);
        strcat(src, name);
    }
    ck_assert_int_eq(expr_parse(src, &e, &err), 0);
    ck_assert_int_eq(expr_hessian(&e, v, NULL, NULL, &err), -1);
    ck_assert_str_eq(err.msg, "--hessian takes at most 32 variables, the expression has 33");
    expr_free(&e);
    /* a constant or a single variable: all zeros */
    ck_assert_int_eq(expr_parse("x", &e, &err), 0);
    ck_assert_int_eq(expr_hessian(&e, v, H, N, &err), 0);
    ck_assert_double_eq(H[0], 0);
    ck_assert_double_eq(N[0], 0);
    expr_free(&e);
    /* log(x) at 1e-7: x - h is outside the domain, the numeric entry is NaN;
     * the analytic one is -1/x^2 */
    ck_assert_int_eq(expr_parse("log(x)", &e, &err), 0);
    v[0] = 1e-7;
    ck_assert_int_eq(expr_hessian(&e, v, H, N, &err), 0);
    ck_assert_double_eq_tol(H[0], -1e14, 1e2);
    ck_assert(isnan(N[0]));
    expr_free(&e);
}
END_TEST

START_TEST(test_check_params)
{
    struct mlp_model m = {
        .sizes = {3, 4, 2}, .n_sizes = 3, .act = TG_ACT_RELU, .loss = TG_LOSS_XENT};
    struct tg_rng rng;
    tg_rng_seed(&rng, 0);
    ck_assert_int_eq(mlp_model_new("test", &m, TG_INIT_HE_UNIFORM, &rng), 0);
    ck_assert_int_eq(mlp_check_params("test", &m), 0);
    tg_tensor_set(tg_nn_mlp_weight(m.mlp, 0), 5, NAN);
    ck_assert_int_ne(mlp_check_params("test", &m), 0);
    tg_tensor_set(tg_nn_mlp_weight(m.mlp, 0), 5, 0.5);
    tg_tensor_set(tg_nn_mlp_bias(m.mlp, 1), 1, -INFINITY);
    ck_assert_int_ne(mlp_check_params("test", &m), 0);
    mlp_model_free(&m);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("parser");
    tcase_add_loop_test(tc, test_values, 0, sizeof values / sizeof values[0]);
    tcase_add_test(tc, test_structure);
    tcase_add_loop_test(tc, test_errors, 0, sizeof errors / sizeof errors[0]);
    tcase_add_test(tc, test_depth);
    tcase_add_loop_test(tc, test_domain, 0, sizeof domain / sizeof domain[0]);
    tcase_add_loop_test(tc, test_plain_values, 0, sizeof values / sizeof values[0]);
    tcase_add_loop_test(tc, test_numeric_grad, 0, 6);
    tcase_add_test(tc, test_many_variables);
    tcase_add_test(tc, test_check_params);
    tcase_add_loop_test(tc, test_hessian, 0, sizeof hessians / sizeof hessians[0]);
    tcase_add_test(tc, test_hessian_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(cli_suite());
}
