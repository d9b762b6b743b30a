/*
 * examples/layer_trace.c - one layer of the source document's vector formulas,
 * traced: z = W y + b, y' = tanh(z), Div = sum(y'), on a batch of two rows.
 *
 * Prints the chain-rule trace (tg_backward_trace) in the document's notation, then
 * checks the two gradients the document derives by hand:
 *   dDiv/dW = (dDiv/dz)^T y   (an outer product per row, summed over the batch)
 *   dDiv/db = dDiv/dz summed over the batch (the bias was broadcast)
 * Exit status 0 when both agree with the trace's numbers.
 * Usage: layer_trace [--html FILE]: FILE gets the interactive page of the graph
 * and the sweep (tg_graph_html; cli/htmlpage.c lays it out with Graphviz).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "htmlpage.h"

int main(int argc, char **argv)
{
    const char *html = argc == 3 && !strcmp(argv[1], "--html") ? argv[2] : NULL;
    if (argc > 1 && !html) {
        fprintf(stderr, "usage: layer_trace [--html FILE]\n");
        return 2;
    }
    /* y (2,2): two examples; W (3,2): the layer's weights, stored (out, in); b (3) */
    double yv[4] = {0.5, -1.0, 2.0, 0.25}, wv[6] = {0.2, -0.4, 0.7, 0.1, -0.3, 0.5},
           bv[3] = {0.1, -0.2, 0.05};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *y = tg_tensor_from(TG_F64, 2, (int64_t[]){2, 2}, yv);
    struct tg_tensor *W = tg_tensor_from(TG_F64, 2, (int64_t[]){3, 2}, wv);
    struct tg_tensor *b = tg_tensor_from(TG_F64, 1, (int64_t[]){3}, bv);
    if (!T || !y || !W || !b || tg_tensor_set_requires_grad(W, true) ||
        tg_tensor_set_requires_grad(b, true)) {
        fprintf(stderr, "layer_trace: %s\n", tg_last_error());
        return 1;
    }
    struct tg_tensor *Wy = tg_matmul_t(T, y, W, false, true); /* rows: (W y_t)^T, (2,3) */
    struct tg_tensor *z = tg_add(T, Wy, b);                   /* z = W y + b */
    struct tg_tensor *out = tg_tanh(T, z);                    /* y' = f(z) */
    struct tg_tensor *div = tg_sum(T, out);                   /* a stand-in divergence */
    struct tg_trace *tr = NULL;
    if (!div || tg_backward_trace(div, NULL, &tr)) {
        fprintf(stderr, "layer_trace: %s\n", tg_last_error());
        return 1;
    }
    struct tg_graph_name nm[] = {{y, "y"}, {W, "W"}, {b, "b"}, {Wy, "Wy"}, {z, "z"}, {out, "f"}};
    struct tg_graph_names names = {nm, 6};
    tg_trace_print(tr, stdout, &names);
    int page = html ? htmlpage_write("layer_trace", html, div, tr, &names,
                                     "Div = sum(tanh(y W^T + b)), a batch of two rows")
                    : 0;

    /* The document's formulas, by hand, from dDiv/dz = 1 - tanh(z)^2 (dDiv/df = 1). */
    double dW[6] = {0}, db[3] = {0}, worst = 0;
    for (int t = 0; t < 2; t++)
        for (int j = 0; j < 3; j++) {
            double f = tg_tensor_get(out, t * 3 + j), dz = 1 - f * f;
            db[j] += dz;
            for (int i = 0; i < 2; i++) dW[j * 2 + i] += dz * yv[t * 2 + i];
        }
    printf("\nby the document's formulas:\n  dDiv/dW = sum_t (dDiv/dz_t)^T y_t =");
    for (int k = 0; k < 6; k++) {
        printf(" %.6f", dW[k]);
        worst = fmax(worst, fabs(dW[k] - tg_tensor_grad_get(W, k)));
    }
    printf("\n  dDiv/db = sum_t dDiv/dz_t =");
    for (int j = 0; j < 3; j++) {
        printf(" %.6f", db[j]);
        worst = fmax(worst, fabs(db[j] - tg_tensor_grad_get(b, j)));
    }
    printf("\nlargest difference from the engine's gradients: %.3g\n", worst);
    tg_trace_free(tr);
    tg_tensor_free(y);
    tg_tensor_free(W);
    tg_tensor_free(b);
    tg_tape_free(T);
    return worst < 1e-12 && !page ? 0 : 1;
}
