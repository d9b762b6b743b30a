/*
 * tests/check_teach.c - what the teaching tools print about a node is true.
 *
 * Rules (tg_graph_rule, the trace, the DOT labels): matmul's rule, for each of
 * its four transpose-flag combinations, is parsed as the products it names
 * ("dA += dY B") and evaluated on small matrices: every product must fit the
 * shapes and equal the gradient backward computed. For every op of the table
 * (every gradient-check case of gradcases/, so ops added later are covered),
 * the rule printed with the node's own names names only operands the node has:
 * no gradient d<letter> of an operand letter of the op is left unrenamed, every
 * d<name> is the node's or one of its inputs', and every input that backward
 * gave a nonzero gradient has its d<name> in the rule. What this does not
 * check: the arithmetic of rules other than matmul's (they are prose-like
 * formulas; their numbers are checked by the gradient checks of the ops).
 */
#include <check.h>
#include "run-suite.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradcases.h"

/* ---- matmul: the rule as products of A, B, dY and their transposes ---- */

struct mat {
    int64_t r, c;
    double v[64];
};

static struct mat mat_of(const struct tg_tensor *t, const double *data)
{
    struct mat m = {tg_tensor_shape(t)[0], tg_tensor_shape(t)[1], {0}};
    memcpy(m.v, data, (size_t)(m.r * m.c) * sizeof *m.v);
    return m;
}

static struct mat transpose(const struct mat *m)
{
    struct mat t = {m->c, m->r, {0}};
    for (int64_t i = 0; i < m->r; i++)
        for (int64_t j = 0; j < m->c; j++) t.v[j * t.c + i] = m->v[i * m->c + j];
    return t;
}

/* The factor named at *p ("A", "B", "dY", each optionally "^T"); advances *p. */
static bool factor(const char **p, const struct mat *A, const struct mat *B, const struct mat *dY,
                   struct mat *out)
{
    while (**p == ' ') (*p)++;
    if (!strncmp(*p, "dY", 2)) {
        *out = *dY;
        *p += 2;
    } else if (**p == 'A' || **p == 'B') {
        *out = **p == 'A' ? *A : *B;
        *p += 1;
    } else {
        return false;
    }
    if (!strncmp(*p, "^T", 2)) {
        *out = transpose(out);
        *p += 2;
    }
    return true;
}

/* Checks one clause "dX += F G" of the rule against grad (X's gradient). */
static void check_clause(const char *clause, const struct mat *A, const struct mat *B,
                         const struct mat *dY, const struct mat *grad, const char *rule)
{
    const char *p = strstr(clause, "+=");
    ck_assert_msg(p, "rule '%s': clause '%s' has no +=", rule, clause);
    p += 2;
    struct mat f, g;
    ck_assert_msg(factor(&p, A, B, dY, &f) && factor(&p, A, B, dY, &g),
                  "rule '%s': '%s' is not a product of two of A, B, dY", rule, clause);
    ck_assert_msg(f.c == g.r, "rule '%s': '%s' multiplies (%lld,%lld) by (%lld,%lld)", rule, clause,
                  (long long)f.r, (long long)f.c, (long long)g.r, (long long)g.c);
    ck_assert_msg(f.r == grad->r && g.c == grad->c,
                  "rule '%s': '%s' is (%lld,%lld), the operand (%lld,%lld)", rule, clause,
                  (long long)f.r, (long long)g.c, (long long)grad->r, (long long)grad->c);
    for (int64_t i = 0; i < f.r; i++)
        for (int64_t j = 0; j < g.c; j++) {
            double s = 0;
            for (int64_t k = 0; k < f.c; k++) s += f.v[i * f.c + k] * g.v[k * g.c + j];
            ck_assert_msg(fabs(s - grad->v[i * grad->c + j]) < 1e-12,
                          "rule '%s': '%s' gives %g at (%lld,%lld), backward %g", rule, clause, s,
                          (long long)i, (long long)j, grad->v[i * grad->c + j]);
        }
}

START_TEST(test_matmul_rule_per_flags)
{
    bool ta = _i & 1, tb = _i >> 1;
    int64_t m = 2, k = 3, n = 4; /* op(A) is (m,k), op(B) (k,n) */
    int64_t sa[2] = {ta ? k : m, ta ? m : k}, sb[2] = {tb ? n : k, tb ? k : n};
    struct tg_rng rng;
    tg_rng_seed(&rng, 7 + (uint64_t)_i);
    struct tg_tensor *a = gc_rand(&rng, 2, sa, -1, 1, true), *b = gc_rand(&rng, 2, sb, -1, 1, true);
    struct tg_tensor *c = gc_rand(&rng, 2, (int64_t[]){m, n}, -1, 1, false);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *Y = tg_matmul_t(T, a, b, ta, tb);
    ck_assert_ptr_nonnull(Y);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, Y, c)), NULL), TG_OK); /* dY = c */
    char rule[TG_RULE_MAX];
    ck_assert_int_gt(tg_graph_rule(Y, NULL, NULL, rule, sizeof rule), 0);
    struct mat A = mat_of(a, tg_tensor_data(a)), B = mat_of(b, tg_tensor_data(b));
    struct mat dY = mat_of(c, tg_tensor_data(c));
    struct mat dA = mat_of(a, tg_tensor_grad(a)), dB = mat_of(b, tg_tensor_grad(b));
    char *semi = strchr(rule, ';');
    ck_assert_msg(semi && !strncmp(rule, "dA", 2) && !strncmp(semi + 2, "dB", 2),
                  "rule '%s' is not 'dA += ..; dB += ..'", rule);
    char first[TG_RULE_MAX];
    snprintf(first, sizeof first, "%.*s", (int)(semi - rule), rule);
    check_clause(first, &A, &B, &dY, &dA, rule);
    check_clause(semi + 1, &A, &B, &dY, &dB, rule);
    /* and in the tensors' own names, as the trace prints it */
    char named[TG_RULE_MAX];
    tg_graph_rule(Y, (const char *const[]){"y", "W"}, "Wy", named, sizeof named);
    static const char *const want[4] = {"dy += dWy W^T; dW += y^T dWy",
                                        "dy += W dWy^T; dW += y dWy", "dy += dWy W; dW += dWy^T y",
                                        "dy += W^T dWy^T; dW += dWy^T y^T"};
    ck_assert_str_eq(named, want[_i]);
    tg_tape_free(T);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
}
END_TEST

/* ---- every op: the rule names only operands the node has ---- */

/* The first node under y (y included) recorded by op, or NULL. */
static struct tg_tensor *find_op(struct tg_tensor *y, enum tg_op op)
{
    struct tg_tensor *stack[256];
    int n = 0;
    stack[n++] = y;
    while (n) {
        struct tg_tensor *t = stack[--n];
        if (tg_tensor_op(t) == op) return t;
        for (int i = 0; i < tg_tensor_n_inputs(t) && n < 256; i++)
            stack[n++] = tg_tensor_input(t, i);
    }
    return NULL;
}

/* The letters of the inputs in spec ("a b -> y"): their count, into letters. */
static int spec_inputs(const char *spec, char letters[][16])
{
    int n = 0;
    for (const char *p = spec; *p && strncmp(p, "->", 2);) {
        size_t len = strcspn(p, " ");
        if (len) snprintf(letters[n++], 16, "%.*s", (int)len, p);
        p += len;
        while (*p == ' ') p++;
    }
    return n;
}

/* Checks the gradient words of the rendered rule of node t (inputs IN0.., node OUT). */
static void check_rule_words(const struct tg_tensor *t, enum tg_op op, const char *label,
                             const char *rule)
{
    char letters[8][16];
    int nl = spec_inputs(tg_op_operands(op), letters);
    int n_in = tg_tensor_n_inputs(t);
    ck_assert_msg(tg_op_arity(op) < 0 || nl == n_in,
                  "%s: operands '%s' name %d inputs, the op has %d", tg_op_name(op),
                  tg_op_operands(op), nl, n_in);
    for (const char *p = rule; *p; p++) {
        if (!isalpha((unsigned char)*p) ||
            (p > rule && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '\'')))
            continue;
        size_t len = 0;
        while (isalnum((unsigned char)p[len])) len++;
        if (p[0] == 'd' && len > 1 && p[len] != '(') { /* a gradient word, not a function */
            const char *w = p + 1;
            bool own = !strncmp(w, "OUT", 3) && len == 4;
            for (int i = 0; i < n_in && !own; i++) {
                char nm[16];
                snprintf(nm, sizeof nm, "IN%d", i);
                own = strlen(nm) == len - 1 && !strncmp(w, nm, len - 1);
            }
            for (int l = 0; l < nl && !own; l++)
                ck_assert_msg(!(strlen(letters[l]) == len - 1 && !strncmp(w, letters[l], len - 1)),
                              "%s (%s): rule '%s' names d%s, an operand this node lacks",
                              tg_op_name(op), label, rule, letters[l]);
        }
        p += len - 1;
    }
}

static void check_case(const struct gc_case *gc, uint64_t seed)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, seed);
    struct tg_tensor *in[GC_MAX_IN] = {NULL};
    int n = gc->make(&rng, in);
    ck_assert_msg(n > 0, "%s: make failed", gc->label);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = gc->fn(T, in, n, NULL);
    ck_assert_msg(y, "%s (%s): %s", tg_op_name(gc->op), gc->label, tg_last_error());
    struct tg_tensor *t = find_op(y, gc->op);
    ck_assert_msg(t, "%s (%s): the op is not in the graph", tg_op_name(gc->op), gc->label);
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(tg_sum(T, y), NULL, &tr), TG_OK);
    int n_in = tg_tensor_n_inputs(t);
    char names[8][16];
    const char *in_names[8];
    for (int i = 0; i < n_in && i < 8; i++) {
        snprintf(names[i], sizeof names[i], "IN%d", i);
        in_names[i] = names[i];
    }
    char rule[TG_RULE_MAX * 2];
    int len = tg_graph_rule(t, in_names, "OUT", rule, sizeof rule);
    ck_assert_msg(len > 0 && len < (int)sizeof rule, "%s: rule length %d", gc->label, len);
    check_rule_words(t, gc->op, gc->label, rule);
    const struct tg_trace_step *s = NULL; /* the sweep's step of node t */
    for (int64_t k = 0; k < tr->n_steps; k++)
        if (tr->steps[k].node == t) s = &tr->steps[k];
    if (!tg_tensor_requires_grad(t)) { /* detach: the sweep never reaches it */
        ck_assert_msg(!s, "%s (%s): a node that needs no gradient has a step", tg_op_name(gc->op),
                      gc->label);
        tg_trace_free(tr);
        tg_tape_free(T);
        gc_free_all(in, n);
        return;
    }
    ck_assert_msg(s, "%s (%s): the trace has no step for the node", tg_op_name(gc->op), gc->label);
    ck_assert_str_eq(s->operands, tg_op_operands(gc->op));
    for (int d = 0; d < s->n_inputs; d++) { /* an input this node added to has its d<name> */
        const struct tg_trace_input *x = &s->inputs[d];
        if (!x->gets_grad || !(x->contrib != 0) || tg_op_arity(gc->op) < 0) continue;
        int i = 0; /* its first slot; variadic ops are skipped: "dx_k" stands for all */
        while (!(x->slots >> i & 1)) i++;
        char word[24];
        snprintf(word, sizeof word, "dIN%d", i);
        ck_assert_msg(strstr(rule, word), "%s (%s): input %d gets a gradient, rule '%s' lacks %s",
                      tg_op_name(gc->op), gc->label, i, rule, word);
    }
    tg_trace_free(tr);
    tg_tape_free(T);
    gc_free_all(in, n);
}

START_TEST(test_rule_names_every_op)
{
    int checked = 0;
    for (int f = 0; f < GC_N_FAMILIES; f++)
        for (int c = 0; c < *gc_families[f].n; c++) {
            const struct gc_case *gc = &gc_families[f].cases[c];
            if ((int)gc->op != _i) continue;
            for (int rep = 0; rep < 3; rep++) check_case(gc, 1000 * (uint64_t)c + (uint64_t)rep);
            checked++;
        }
    ck_assert_msg(checked > 0, "%s has no gradient-check case", tg_op_name(_i));
}
END_TEST

/* The mul step of tanh(w*x + b): its rule in the node's names, not the op's letters. */
START_TEST(test_trace_rule_in_node_names)
{
    struct tg_tensor *w = tg_tensor_scalar(TG_F64, 0.5), *x = tg_tensor_scalar(TG_F64, 2);
    struct tg_tensor *b = tg_tensor_scalar(TG_F64, -0.5);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_set_requires_grad(b, true);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_tanh(T, tg_add(T, tg_mul(T, w, x), b));
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(y, NULL, &tr), TG_OK);
    struct tg_graph_name nm[3] = {{w, "w"}, {x, "x"}, {b, "b"}};
    struct tg_graph_names names = {nm, 3};
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    ck_assert_int_eq(tg_trace_print(tr, f, &names), TG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "rule: dw += dv1 * x; dx += dv1 * w"), "%s", buf);
    ck_assert_msg(strstr(buf, "rule: dv1 += dv2; db += dv2"), "%s", buf);
    ck_assert_msg(!strstr(buf, "dy * b"), "%s", buf);
    tg_trace_free(tr);
    tg_tape_free(T);
    tg_tensor_free(w);
    tg_tensor_free(x);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_graph_rule_errors)
{
    char buf[16];
    ck_assert_int_eq(tg_graph_rule(NULL, NULL, NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 1);
    ck_assert_int_eq(tg_graph_rule(x, NULL, NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_add(T, x, x);
    ck_assert_int_eq(tg_graph_rule(y, NULL, NULL, NULL, 1), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    /* truncation: snprintf's contract */
    int len = tg_graph_rule(y, NULL, NULL, buf, 5);
    ck_assert_int_eq(len, (int)strlen("da += dy; db += dy"));
    ck_assert_str_eq(buf, "da +");
    ck_assert_int_eq(tg_graph_rule(y, NULL, NULL, NULL, 0), len);
    tg_tape_reset(T);
    ck_assert_int_eq(tg_graph_rule(y, NULL, NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_STALE);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

/* ---- gradient checks that check nothing ---- */

static struct tg_tensor *relu_sum(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_sum(T, tg_relu(T, x[0]));
}

/* relu at 0 everywhere: every element is a kink, so the check compared nothing. */
START_TEST(test_gradcheck_all_kinks_fails)
{
    struct tg_tensor *x = tg_tensor_zeros(TG_F64, 1, (int64_t[]){3});
    tg_tensor_set_requires_grad(x, true);
    struct tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, NULL, &rep), TG_ERR_GRADCHECK);
    ck_assert(!rep.passed && !rep.skipped);
    ck_assert_int_eq(rep.n_kinks, 3);
    ck_assert_msg(strstr(rep.message, "3 of 3 elements are kinks") &&
                      strstr(rep.message, "move the inputs away from the kinks"),
                  "%s", rep.message);
    /* opt-in: a skip, said so */
    struct tg_gradcheck_options o = {.skip_kinks = true};
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, &o, &rep), TG_OK);
    ck_assert(rep.skipped && !rep.passed);
    ck_assert_msg(!strncmp(rep.message, "skipped:", 8), "%s", rep.message);
    /* 2 kinks of 3 (x = 0, 0, 1): over the default half, within a share of 0.7 */
    tg_tensor_set(x, 2, 1);
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, NULL, &rep), TG_ERR_GRADCHECK);
    ck_assert_int_eq(rep.n_kinks, 2);
    o = (struct tg_gradcheck_options){.max_kink_share = 0.7};
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, &o, &rep), TG_OK);
    ck_assert(rep.passed && !rep.skipped);
    /* share 1 still fails when every element is a kink */
    tg_tensor_set(x, 2, 0);
    o = (struct tg_gradcheck_options){.max_kink_share = 1};
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, &o, &rep), TG_ERR_GRADCHECK);
    /* away from the kinks it passes */
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i - 1.5);
    ck_assert_int_eq(tg_gradcheck(relu_sum, &x, 1, NULL, NULL, &rep), TG_OK);
    ck_assert_int_eq(rep.n_kinks, 0);
    /* nothing requires grad: an error, not a pass */
    tg_tensor_set_requires_grad(x, false);
    ck_assert_int_ne(tg_gradcheck(relu_sum, &x, 1, NULL, NULL, &rep), TG_OK);
    tg_tensor_free(x);
}
END_TEST

/* The one-element judgement, on functions worked out by hand. */
START_TEST(test_gradcheck_judge)
{
    double h = 1e-6;
    /* x^2 at 3: f = 9, slopes 6 +- h, analytic 6 */
    ck_assert_int_eq(tg_gradcheck_judge(6, 9, (3 + h) * (3 + h), (3 - h) * (3 - h), h, 1e-8, 1e-6),
                     TG_GRADCHECK_AGREE);
    /* relu at 0: analytic 0, one-sided 1 and 0 */
    ck_assert_int_eq(tg_gradcheck_judge(0, 0, h, 0, h, 1e-8, 1e-6), TG_GRADCHECK_KINK);
    /* relu at 0 with a wrong analytic 2: outside the one-sided slopes */
    ck_assert_int_eq(tg_gradcheck_judge(2, 0, h, 0, h, 1e-8, 1e-6), TG_GRADCHECK_DISAGREE);
    /* sqrt at 0: analytic inf, f(-h) NaN */
    ck_assert_int_eq(tg_gradcheck_judge(INFINITY, 0, sqrt(h), NAN, h, 1e-8, 1e-6),
                     TG_GRADCHECK_NOT_FINITE);
    /* x^2 at 3 with analytic 5 */
    ck_assert_int_eq(tg_gradcheck_judge(5, 9, (3 + h) * (3 + h), (3 - h) * (3 - h), h, 1e-8, 1e-6),
                     TG_GRADCHECK_DISAGREE);
    ck_assert_str_eq(tg_gradcheck_verdict_name(TG_GRADCHECK_KINK), "kink");
    ck_assert_str_eq(tg_gradcheck_verdict_name((enum tg_gradcheck_verdict)9), "?");
}
END_TEST

/* ---- one Jacobian classification: the graph's, the trace's and tg_jacobian's ---- */

static struct tg_tensor *g_W; /* the weight of y_Wt */
static struct tg_tensor *y_Wt(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    return tg_matmul_t(T, x[0], g_W, false, true);
}

static void same_info(const struct tg_jacobian_info *a, const struct tg_jacobian_info *b,
                      const char *what)
{
    ck_assert_msg(a->structure == b->structure && a->nnz == b->nnz && a->n_blocks == b->n_blocks &&
                      a->block_rows == b->block_rows && a->block_cols == b->block_cols &&
                      a->rows == b->rows && a->cols == b->cols,
                  "%s: the node's Jacobian is %s (nnz %lld, %lld blocks), tg_jacobian's %s (nnz "
                  "%lld, %lld blocks)",
                  what, tg_jacobian_structure_name(a->structure), (long long)a->nnz,
                  (long long)a->n_blocks, tg_jacobian_structure_name(b->structure),
                  (long long)b->nnz, (long long)b->n_blocks);
}

/* Y = y W^T on a batch of two rows: block-diagonal in y, in every tool. */
START_TEST(test_batched_product_block_diagonal)
{
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct tg_tensor *y = gc_rand(&rng, 2, (int64_t[]){2, 2}, 0.5, 1, true);
    g_W = gc_rand(&rng, 2, (int64_t[]){3, 2}, 0.5, 1, true);
    struct tg_jacobian_info whole, node;
    struct tg_tensor *J = NULL;
    ck_assert_int_eq(tg_jacobian(y_Wt, NULL, y, &J, &whole), TG_OK);
    ck_assert_int_eq(whole.structure, TG_JAC_BLOCK_DIAGONAL);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *Y = y_Wt(T, &y, 1, NULL);
    ck_assert_int_eq(tg_graph_jacobian(Y, 0, &node), TG_OK);
    same_info(&node, &whole, "y W^T by y");
    char text[160];
    tg_jacobian_format(&node, text, sizeof text);
    ck_assert_str_eq(text, "block-diagonal 6x4, 2 blocks of 3x2, nnz 12");
    /* the DOT edge y -> Y says the same */
    struct tg_tensor *L = tg_sum(T, Y);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_graph_dot(L, f, NULL), TG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "[label=\"block-diagonal 6x4, 2 blocks of 3x2, nnz 12\"]"), "%s",
                  buf);
    free(buf);
    /* and the trace */
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(L, NULL, &tr), TG_OK);
    buf = NULL;
    f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_trace_print(tr, f, NULL), TG_OK);
    fclose(f);
    ck_assert_msg(
        strstr(buf, "[Jacobian block-diagonal 6x4, 2 blocks of 3x2, nnz 12; (2,3) by (2,2)]"), "%s",
        buf);
    free(buf);
    tg_trace_free(tr);
    /* errors */
    ck_assert_int_eq(tg_graph_jacobian(Y, 2, &node), TG_ERR_RANGE);
    ck_assert_int_eq(tg_graph_jacobian(y, 0, &node), TG_ERR_STATE);
    ck_assert_int_eq(tg_graph_jacobian(Y, 0, NULL), TG_ERR_NULL);
    ck_assert_int_eq(tg_jacobian_format(NULL, text, sizeof text), -1);
    tg_tape_free(T);
    tg_tensor_free(J);
    tg_tensor_free(y);
    tg_tensor_free(g_W);
}
END_TEST

/* Every case whose output is the op's node, for each leaf input that requires
 * grad and feeds the node directly: the node's classification is tg_jacobian's. */
START_TEST(test_node_jacobian_every_op)
{
    int compared = 0, cases = 0;
    for (int f = 0; f < GC_N_FAMILIES; f++)
        for (int c = 0; c < *gc_families[f].n; c++) {
            const struct gc_case *gc = &gc_families[f].cases[c];
            if ((int)gc->op != _i) continue;
            cases++;
            for (int rep = 0; rep < 3; rep++) {
                struct tg_rng rng;
                tg_rng_seed(&rng, 77 + 1000 * (uint64_t)c + (uint64_t)rep);
                struct tg_tensor *in[GC_MAX_IN] = {NULL};
                int n = gc->make(&rng, in);
                ck_assert_int_gt(n, 0);
                struct tg_tape *T = tg_tape_new();
                struct tg_tensor *y = gc->fn(T, in, n, NULL);
                ck_assert_ptr_nonnull(y);
                for (int slot = 0; tg_tensor_op(y) == gc->op && slot < tg_tensor_n_inputs(y);
                     slot++) {
                    int k = 0;
                    while (k < n && in[k] != tg_tensor_input(y, slot)) k++;
                    if (k == n || !tg_tensor_requires_grad(in[k])) continue;
                    if (tg_tensor_numel(y) * tg_tensor_numel(in[k]) > TG_GRAPH_JACOBIAN_MAX)
                        continue;
                    struct tg_jacobian_info node, whole;
                    ck_assert_int_eq(tg_graph_jacobian(y, slot, &node), TG_OK);
                    struct gc_one_input oi = {gc, in, n, k};
                    struct tg_tensor *J = NULL;
                    ck_assert_int_eq(tg_jacobian(gc_with_input_k, &oi, in[k], &J, &whole), TG_OK);
                    same_info(&node, &whole, gc->label);
                    tg_tensor_free(J);
                    compared++;
                }
                tg_tape_free(T);
                gc_free_all(in, n);
            }
        }
    ck_assert_msg(cases > 0, "%s has no gradient-check case", tg_op_name(_i));
    (void)compared; /* cases whose output is another op (e.g. a sum after it) compare nothing */
}
END_TEST

Suite *teach_suite(void);
Suite *teach_suite(void)
{
    Suite *s = suite_create("teach");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_matmul_rule_per_flags, 0, 4);
    tcase_add_loop_test(tc, test_rule_names_every_op, 0, TG_OP_COUNT);
    tcase_add_test(tc, test_trace_rule_in_node_names);
    tcase_add_test(tc, test_graph_rule_errors);
    suite_add_tcase(s, tc);
    TCase *jac = tcase_create("jacobian");
    tcase_add_test(jac, test_batched_product_block_diagonal);
    tcase_add_loop_test(jac, test_node_jacobian_every_op, 0, TG_OP_COUNT);
    suite_add_tcase(s, jac);
    TCase *gc = tcase_create("gradcheck");
    tcase_add_test(gc, test_gradcheck_all_kinks_fails);
    tcase_add_test(gc, test_gradcheck_judge);
    suite_add_tcase(s, gc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(teach_suite());
}
