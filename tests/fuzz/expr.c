/*
 * tests/fuzz/expr.c - fuzzes the `tapegrad explain` expression parser
 * (cli/expr.c): the input is the expression text. A parsed expression is then
 * built on a tape with every variable a scalar leaf (values from a fixed table),
 * checked (domain errors stop the build) and unchecked, and backpropagated.
 *
 * Invariants: a parse failure has a message and a column inside the text (or 0);
 * a success has its root last and every operand index before its node; a checked
 * build that succeeds has a finite value and backward returns TG_OK.
 */
#include <math.h>
#include "expr.h"
#include "fuzz.h"

static void check_shape(const struct expr *e)
{
    FUZZ_CHECK(e->n >= 1);
    for (int k = 0; k < e->n; k++) {
        const struct expr_node *nd = &e->nodes[k];
        FUZZ_CHECK(nd->a < k && nd->b < k);
        if (nd->kind == EX_VAR) FUZZ_CHECK(nd->var >= 0 && nd->var < e->n_vars);
    }
}

static void build(const struct expr *e, bool check)
{
    static const double values[] = {0.5, -1.5, 2.0, 0.0, 3.25, -0.75};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor **leaves = calloc((size_t)e->n_vars + 1, sizeof *leaves);
    struct tg_tensor **out = calloc((size_t)e->n, sizeof *out);
    if (!T || !leaves || !out) goto done;
    for (int i = 0; i < e->n_vars; i++) {
        leaves[i] = tg_tensor_full(TG_F64, 0, NULL, values[i % 6]);
        if (!leaves[i]) goto done;
        tg_tensor_set_requires_grad(leaves[i], true);
    }
    struct expr_error err;
    struct tg_tensor *root = expr_build(e, T, leaves, out, check, &err);
    if (!root) {
        FUZZ_CHECK(err.msg[0]);
    } else if (check) {
        FUZZ_CHECK(isfinite(tg_tensor_item(root)));
        enum tg_status st = tg_backward(root, NULL);
        /* an expression of numbers only has nothing to differentiate */
        FUZZ_CHECK(st == TG_OK || st == TG_ERR_TAPE || st == TG_ERR_NOMEM);
    }
done:
    for (int i = 0; leaves && i < e->n_vars; i++) tg_tensor_free(leaves[i]);
    free(leaves);
    free(out);
    tg_tape_free(T);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    struct expr e;
    struct expr_error err;
    if (expr_parse(src, &e, &err) != 0) {
        FUZZ_CHECK(err.msg[0] && err.col >= 0 && (size_t)err.col <= strlen(src) + 1);
        FUZZ_CHECK(e.nodes == NULL && e.vars == NULL);
    } else {
        check_shape(&e);
        build(&e, true);
        build(&e, false);
        expr_free(&e);
    }
    free(src);
    return 0;
}
