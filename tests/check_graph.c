/*
 * tests/check_graph.c - the DOT picture of a graph (tg_graph_dot) and the
 * chain-rule trace (tg_backward_trace, tg_trace_print).
 *
 * Reference numbers are derived by hand below, not taken from our own output.
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

#define TOL 1e-12

static struct tg_tensor *leaf(double v, bool grad)
{
    struct tg_tensor *t = tg_tensor_scalar(TG_F64, v);
    if (grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

/* The single neuron of the tutorial with a squared-error divergence:
 *   z = w*x + b,  y = sigmoid(z),  d = y - t,  Div = d^2
 * at w = 0.5, x = 2, b = -0.5, t = 1 (x and t are inputs, w and b parameters).
 * Forward:  z = 0.5*2 - 0.5 = 0.5
 *           y = 1 / (1 + e^-0.5) = 0.6224593312018546
 *           d = y - 1 = -0.3775406687981454,  Div = d^2 = 0.1425369565965509
 * Backward, in the order of the sweep (v5 = pow, v4 = sub, v3 = sigmoid,
 * v2 = add, v1 = mul):
 *   dDiv/dDiv = 1                                    (the seed)
 *   dDiv/dd   = 2d * 1                 = -0.7550813375962908
 *   dDiv/dy   = 1 * dDiv/dd            = -0.7550813375962908   (d = y - t)
 *   f'(z)     = y (1 - y)              =  0.2350037122015945
 *   dDiv/dz   = f'(z) dDiv/dy          = -0.17744691734927373
 *   dDiv/d(wx)= 1 * dDiv/dz,  dDiv/db = 1 * dDiv/dz = -0.17744691734927373
 *   dDiv/dw   = x dDiv/d(wx) = 2 * -0.1774469...  = -0.35489383469854746
 * (the document's dDiv/dw = y_{k-1} dDiv/dz, with y_{k-1} = x). */
struct neuron {
    struct tg_tape *T;
    struct tg_tensor *w, *x, *b, *t, *z, *y, *loss;
};

static void neuron_build(struct neuron *n)
{
    n->T = tg_tape_new();
    n->w = leaf(0.5, true);
    n->x = leaf(2, false);
    n->b = leaf(-0.5, true);
    n->t = leaf(1, false);
    n->z = tg_add(n->T, tg_mul(n->T, n->w, n->x), n->b);
    n->y = tg_sigmoid(n->T, n->z);
    n->loss = tg_pow_scalar(n->T, tg_sub(n->T, n->y, n->t), 2);
    ck_assert_ptr_nonnull(n->loss);
}

static void neuron_free(struct neuron *n)
{
    tg_tape_free(n->T);
    tg_tensor_free(n->w);
    tg_tensor_free(n->x);
    tg_tensor_free(n->b);
    tg_tensor_free(n->t);
}

START_TEST(test_trace_neuron)
{
    struct neuron n;
    neuron_build(&n);
    struct tg_trace *tr = NULL;
    ck_assert_int_eq(tg_backward_trace(n.loss, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 5);
    const enum tg_op ops[5] = {TG_OP_POW_SCALAR, TG_OP_SUB, TG_OP_SIGMOID, TG_OP_ADD, TG_OP_MUL};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(tr->steps[i].op, ops[i]);
        ck_assert_int_eq(tr->steps[i].id, 5 - i); /* v5 .. v1 */
        ck_assert(tr->steps[i].scalar);
    }
    const struct tg_trace_step *s = tr->steps;
    ck_assert_double_eq_tol(s[0].value, 0.1425369565965509, TOL);
    ck_assert_double_eq_tol(s[0].upstream, 1, TOL);
    ck_assert_int_eq(s[0].n_params, 1);
    ck_assert_double_eq(s[0].params[0], 2);
    ck_assert_double_eq_tol(s[0].inputs[0].local, -0.7550813375962908, TOL);
    ck_assert_double_eq_tol(s[0].inputs[0].contrib, -0.7550813375962908, TOL);
    /* sub: y gets 1 * upstream, t (an input) gets nothing */
    ck_assert_double_eq_tol(s[1].upstream, -0.7550813375962908, TOL);
    ck_assert_double_eq_tol(s[1].inputs[0].local, 1, TOL);
    ck_assert(!s[1].inputs[1].gets_grad);
    ck_assert_double_eq_tol(s[1].inputs[1].local, -1, TOL); /* still reported: d(y-t)/dt */
    ck_assert_int_eq(s[1].inputs[1].kind, TG_GRAPH_INPUT);
    /* sigmoid: local f'(z) = y (1 - y) */
    ck_assert_double_eq_tol(s[2].inputs[0].local, 0.2350037122015945, TOL);
    ck_assert_double_eq_tol(s[2].inputs[0].contrib, -0.17744691734927373, TOL);
    /* add: both sides get dDiv/dz; b is a parameter leaf (x3) */
    ck_assert_double_eq_tol(s[3].inputs[1].total, -0.17744691734927373, TOL);
    ck_assert_int_eq(s[3].inputs[1].kind, TG_GRAPH_PARAM);
    ck_assert_int_eq(s[3].inputs[1].id, 3);
    /* mul: dDiv/dw = x dDiv/dz; the local derivative of w*x w.r.t. w is x = 2 */
    ck_assert_double_eq_tol(s[4].inputs[0].local, 2, TOL);
    ck_assert_double_eq_tol(s[4].inputs[0].total, -0.35489383469854746, TOL);
    ck_assert_double_eq_tol(s[4].inputs[1].local, 0.5, TOL);
    ck_assert(!s[4].inputs[1].gets_grad);
    /* the trace changes nothing: same gradients as a plain backward */
    ck_assert_double_eq_tol(tg_tensor_grad_get(n.w, 0), -0.35489383469854746, TOL);
    ck_assert_double_eq_tol(tg_tensor_grad_get(n.b, 0), -0.17744691734927373, TOL);
    tg_tensor_zero_grad(n.w);
    tg_tensor_zero_grad(n.b);
    ck_assert_int_eq(tg_backward(n.loss, NULL), TG_OK);
    ck_assert_double_eq_tol(tg_tensor_grad_get(n.w, 0), -0.35489383469854746, TOL);

    /* the printed form uses the tutorial's notation and names */
    const struct tg_graph_name nm[] = {{n.w, "w"}, {n.b, "b"}, {n.x, "x"},
                                       {n.t, "t"}, {n.z, "z"}, {n.y, "y"}};
    struct tg_graph_names names = {nm, 6};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_trace_print(tr, f, &names), TG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "dDiv/dz += dy/dz * dDiv/dy = 0.235004 * -0.755081 = -0.177447"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "dDiv/dw += dv1/dw * dDiv/dv1 = 2 * -0.177447 = -0.354894"), "%s",
                  buf);
    ck_assert_msg(strstr(buf, "t: an input that needs no gradient"), "%s", buf);
    ck_assert_msg(strstr(buf, "Backward sweep from Div = v5, 5 steps"), "%s", buf);
    ck_assert_msg(strstr(buf, "dDiv/dv5 = 1   (the seed)"), "%s", buf);
    free(buf);
    tg_trace_free(tr);
    tg_trace_free(NULL);
    neuron_free(&n);
}
END_TEST

/* Fan-out: f = x*y + x at x = 3, y = 4. The sweep visits the add first
 * (dDiv/dx = 1, first contribution), then the mul (adds y * 1 = 4: the second
 * contribution, running sum 5 = y + 1). And g = x*x: one distinct input used
 * twice, local derivative 2x = 6. */
START_TEST(test_trace_accumulation)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(3, true), *y = leaf(4, true);
    struct tg_tensor *f = tg_add(T, tg_mul(T, x, y), x);
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(f, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 2);
    /* scalar nodes (short structs with no shape array): entries past the rank read 0 */
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < TG_MAX_DIM; d++) {
            ck_assert_int_eq(tr->steps[k].shape[d], 0);
            ck_assert_int_eq(tr->steps[k].inputs[0].shape[d], 0);
        }
    const struct tg_trace_input *ax = &tr->steps[0].inputs[1], *mx = &tr->steps[1].inputs[0];
    ck_assert_ptr_eq(ax->tensor, x);
    ck_assert_int_eq(ax->nth, 1);
    ck_assert_double_eq_tol(ax->total, 1, TOL);
    ck_assert_ptr_eq(mx->tensor, x);
    ck_assert_int_eq(mx->nth, 2);
    ck_assert_double_eq_tol(mx->contrib, 4, TOL);
    ck_assert_double_eq_tol(mx->total, 5, TOL);
    tg_trace_free(tr);

    tg_tape_reset(T);
    tg_tensor_zero_grad(x);
    struct tg_tensor *g = tg_mul(T, x, x);
    ck_assert_int_eq(tg_backward_trace(g, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->steps[0].n_inputs, 1);
    ck_assert_int_eq(tr->steps[0].inputs[0].uses, 2);
    ck_assert_double_eq_tol(tr->steps[0].inputs[0].local, 6, TOL);
    ck_assert_double_eq_tol(tr->steps[0].inputs[0].total, 6, TOL);
    tg_trace_free(tr);
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(y);
}
END_TEST

/* A step holds its op's facts from the descriptor: name, rule, elementwise
 * flag and parameters (softmax's axis, a reduction's keepdim and axes); the
 * trace prints them after the tape is gone. */
START_TEST(test_trace_op_facts)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *A = tg_tensor_ones(TG_F64, 2, (int64_t[]){2, 3});
    tg_tensor_set_requires_grad(A, true);
    struct tg_tensor *L = tg_sum(T, tg_sum_axes(T, tg_softmax(T, A, -1), (int[]){0}, 1, false));
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(L, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 3);
    const struct tg_trace_step *s = tr->steps;
    ck_assert_str_eq(s[0].op_name, "sum");
    ck_assert_int_eq(s[0].n_params, 0);
    ck_assert_str_eq(s[1].op_name, "sum_axes");
    ck_assert_int_eq(s[1].op, TG_OP_SUM_AXES);
    ck_assert_int_eq(s[1].n_params, 2); /* keepdim 0, axis 0 */
    ck_assert(s[1].params[0] == 0 && s[1].params[1] == 0);
    ck_assert_str_eq(s[2].op_name, "softmax");
    ck_assert_str_eq(s[2].rule, tg_op_vjp(TG_OP_SOFTMAX));
    ck_assert_int_eq(s[2].n_params, 1);
    ck_assert_double_eq(s[2].params[0], 1);
    for (int k = 0; k < 3; k++) ck_assert(!s[k].elementwise);
    tg_tape_free(T);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_trace_print(tr, f, NULL), TG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "= softmax(x1, 1)  shape (2,3)"), "%s", buf);
    ck_assert_msg(strstr(buf, "= sum_axes(v1, 0, 0)  shape (3)"), "%s", buf);
    ck_assert_msg(
        strstr(buf, "[Jacobian block-diagonal 6x6, 2 blocks of 3x3, nnz 18; (2,3) by (2,3)]"), "%s",
        buf);
    free(buf);
    tg_trace_free(tr);
    tg_tensor_free(A);
}
END_TEST

/* Tensors: s = A + b with A (2,3) of ones and b (3) broadcast, Div = sum(s).
 * dDiv/ds = ones(2,3): norm sqrt(6). A receives ones (diagonal Jacobian): norm
 * sqrt(6); b receives the column sums [2,2,2] (a 6x3 Jacobian, one 1 per row): norm sqrt(12). */
START_TEST(test_trace_tensor)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *A = tg_tensor_ones(TG_F64, 2, (int64_t[]){2, 3});
    struct tg_tensor *b = tg_tensor_arange(TG_F64, 1, 4, 1);
    tg_tensor_set_requires_grad(A, true);
    tg_tensor_set_requires_grad(b, true);
    struct tg_tensor *L = tg_sum(T, tg_add(T, A, b));
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(L, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 2);
    ck_assert(!tr->steps[0].scalar);
    ck_assert(isnan(tr->steps[0].inputs[0].local));
    ck_assert_double_eq_tol(tr->steps[0].inputs[0].contrib, sqrt(6), TOL);
    const struct tg_trace_step *s = &tr->steps[1];
    ck_assert_int_eq(s->rank, 2);
    ck_assert_int_eq(s->shape[0], 2);
    ck_assert_int_eq(s->shape[1], 3);
    ck_assert_int_eq(tr->steps[0].rank, 0);
    for (int d = 0; d < TG_MAX_DIM; d++) ck_assert_int_eq(tr->steps[0].shape[d], 0);
    ck_assert_int_eq(s->inputs[1].shape[0], 3);
    for (int d = 1; d < TG_MAX_DIM; d++) ck_assert_int_eq(s->inputs[1].shape[d], 0);
    ck_assert_double_eq_tol(s->upstream, sqrt(6), TOL);
    ck_assert_double_eq_tol(s->inputs[0].contrib, sqrt(6), TOL);
    ck_assert_double_eq_tol(s->inputs[1].contrib, sqrt(12), TOL);
    ck_assert_int_eq(s->inputs[1].rank, 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_trace_print(tr, f, NULL), TG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "[Jacobian dense 6x3, nnz 6; (2,3) by (3)]"), "%s", buf);
    ck_assert_msg(strstr(buf, "[Jacobian diagonal 6x6; (2,3) by (2,3)]"), "%s", buf);
    ck_assert_msg(strstr(buf, "[Jacobian dense 1x6; () by (2,3)]"), "%s", buf);
    free(buf);
    tg_trace_free(tr);
    tg_tape_free(T);
    tg_tensor_free(A);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_trace_errors)
{
    struct tg_trace *tr = (struct tg_trace *)1;
    ck_assert_int_eq(tg_backward_trace(NULL, NULL, &tr), TG_ERR_NULL);
    ck_assert_ptr_null(tr);
    struct tg_tensor *x = leaf(1, true);
    ck_assert_int_eq(tg_backward_trace(x, NULL, &tr), TG_ERR_TAPE); /* a leaf is no root */
    ck_assert_ptr_null(tr);
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_exp(T, x);
    tg_tape_reset(T);
    ck_assert_int_eq(tg_backward_trace(y, NULL, &tr), TG_ERR_STALE);
    ck_assert_int_eq(tg_graph_dot(y, stdout, NULL), TG_ERR_STALE);
    ck_assert_int_eq(tg_trace_print(NULL, stdout, NULL), TG_ERR_NULL);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static char *dot_of(const struct tg_tensor *root, const struct tg_graph_dot_options *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_graph_dot(root, f, o), TG_OK);
    fclose(f);
    return buf;
}

/* Runs `dot -Tsvg` on text; false (with a message) when dot is absent. */
static bool dot_parses(const char *text, bool *ok)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "check_graph: graphviz `dot` not found, DOT syntax not checked\n");
        return false;
    }
    char path[] = "/tmp/tg_graph_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "dot -Tsvg %s -o /dev/null", path);
    *ok = system(cmd) == 0;
    remove(path);
    return true;
}

START_TEST(test_dot_neuron)
{
    struct neuron n;
    neuron_build(&n);
    ck_assert_int_eq(tg_backward(n.loss, NULL), TG_OK);
    const struct tg_graph_name nm[] = {{n.w, "w"}, {n.b, "b"}, {n.x, "x"}, {n.t, "t\"q"}};
    struct tg_graph_names names = {nm, 4};
    struct tg_graph_dot_options o = {&names, 0, NULL};
    char *d = dot_of(n.loss, &o);
    ck_assert_msg(strstr(d, "digraph tapegrad {"), "%s", d);
    /* 4 leaves + 5 op nodes; parameters, inputs and ops look different */
    ck_assert_msg(strstr(d, "fillcolor=\"#ffe4b5\", label=\"w\\nparam () f64\\nvalue 0.5\\ngrad "
                            "-0.354894\""),
                  "%s", d);
    ck_assert_msg(strstr(d, "label=\"x\\ninput () f64\\nvalue 2\""), "%s", d);
    ck_assert_msg(strstr(d, "label=\"t\\\"q\\ninput"), "%s", d); /* quote escaped */
    ck_assert_msg(strstr(d,
                         "shape=ellipse, label=\"v3 = sigmoid\\n() f64\\nrule: dv2 += dv3 * v3 (1 "
                         "- v3)\\nvalue 0.622459\\ngrad -0.755081\""),
                  "%s", d);
    /* edges carry the local derivatives: d(w*x)/dw = x = 2, sigmoid' = y(1-y) */
    ck_assert_msg(strstr(d, "[label=\"dv1/dw = 2\"]"), "%s", d);
    ck_assert_msg(strstr(d, "[label=\"dv3/dv2 = 0.235004\"]"), "%s", d);
    ck_assert_msg(strstr(d, "[label=\"dv5/dv4 = -0.755081\"]"), "%s", d);
    int edges = 0;
    for (const char *p = d; (p = strstr(p, " -> ")); p++) edges++;
    ck_assert_int_eq(edges, 8);
    bool ok;
    if (dot_parses(d, &ok)) ck_assert_msg(ok, "dot rejected:\n%s", d);
    free(d);
    /* the gradients are untouched by drawing */
    ck_assert_double_eq_tol(tg_tensor_grad_get(n.w, 0), -0.35489383469854746, TOL);
    neuron_free(&n);
}
END_TEST

START_TEST(test_dot_tensor)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *A = tg_tensor_ones(TG_F64, 2, (int64_t[]){2, 3});
    struct tg_tensor *b = tg_tensor_arange(TG_F64, 1, 4, 1);
    tg_tensor_set_requires_grad(A, true);
    struct tg_tensor *c = tg_tape_constant(T, TG_F64, 0, NULL, (double[]){2});
    struct tg_tensor *L = tg_sum(T, tg_mul(T, tg_tanh(T, tg_add(T, A, b)), c));
    char *d = dot_of(L, &(struct tg_graph_dot_options){NULL, 3, "BT"});
    ck_assert_msg(strstr(d, "rankdir=BT;"), "%s", d);
    ck_assert_msg(strstr(d, "[label=\"dense 6x3, nnz 6\"]"), "%s", d);
    ck_assert_msg(strstr(d, "[label=\"diagonal 6x6\"]"), "%s", d);
    ck_assert_msg(strstr(d, "[label=\"dense 1x6\"]"), "%s", d);
    ck_assert_msg(strstr(d, "label=\"x2\\ninput (3) f64\\nvalue [1, 2, 3]\""), "%s", d);
    ck_assert_msg(strstr(d, "shape=plaintext, fontcolor=\"#555555\", label=\"c1\\nconst () f64"),
                  "%s", d);
    ck_assert_msg(!strstr(d, "x1\\nparam (2,3) f64\\nvalue"), "%s", d); /* 6 > 3 values */
    bool ok;
    if (dot_parses(d, &ok)) ck_assert_msg(ok, "dot rejected:\n%s", d);
    free(d);
    /* a lone leaf is a graph of one box */
    d = dot_of(b, NULL);
    ck_assert_msg(strstr(d, "t0 [") && !strstr(d, "->"), "%s", d);
    free(d);
    ck_assert_int_eq(tg_graph_dot(NULL, stdout, NULL), TG_ERR_NULL);
    ck_assert_int_eq(tg_graph_dot(L, NULL, NULL), TG_ERR_NULL);
    tg_tape_free(T);
    tg_tensor_free(A);
    tg_tensor_free(b);
}
END_TEST

/* A chain of 200000 nodes: graph collection and the trace do not recurse. */
START_TEST(test_deep_chain)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = leaf(0.5, true), *y = x;
    for (int i = 0; i < 200000; i++) y = tg_sin(T, y);
    FILE *f = fopen("/dev/null", "w");
    ck_assert_int_eq(tg_graph_dot(y, f, NULL), TG_OK);
    fclose(f);
    struct tg_trace *tr;
    ck_assert_int_eq(tg_backward_trace(y, NULL, &tr), TG_OK);
    ck_assert_int_eq(tr->n_steps, 200000);
    ck_assert_int_eq(tr->steps[199999].id, 1);
    tg_trace_free(tr);
    tg_tape_free(T);
    tg_tensor_free(x);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("trace");
    tcase_add_test(tc, test_trace_neuron);
    tcase_add_test(tc, test_trace_accumulation);
    tcase_add_test(tc, test_trace_tensor);
    tcase_add_test(tc, test_trace_op_facts);
    tcase_add_test(tc, test_trace_errors);
    tcase_add_test(tc, test_deep_chain);
    suite_add_tcase(s, tc);
    tc = tcase_create("dot");
    tcase_add_test(tc, test_dot_neuron);
    tcase_add_test(tc, test_dot_tensor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(graph_suite());
}
