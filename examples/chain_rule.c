/*
 * examples/chain_rule.c - the chain rule of the source document, with numbers.
 *
 * y = f(g(x)) with g(x) = x^2 and f(z) = sin z. The chain rule says
 * dy/dx = df/dz * dz/dx = cos(x^2) * 2x. This program prints the forward values,
 * both local derivatives, their product, the engine's gradient, and a central
 * finite-difference estimate, so the three can be compared.
 *
 * Usage: chain_rule [x] [--html FILE]     (default x = 1.5)
 * --html FILE also writes the interactive page of the graph and the sweep
 * (tg_graph_html; cli/htmlpage.c lays it out with Graphviz when it can).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad/tapegrad.h>
#include "htmlpage.h"

static double f_of_g(double x)
{
    return sin(x * x);
}

int main(int argc, char **argv)
{
    double x0 = 1.5;
    const char *html = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--html") && i + 1 < argc)
            html = argv[++i];
        else
            x0 = strtod(argv[i], NULL);
    }
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, x0);
    if (!T || !x || tg_tensor_set_requires_grad(x, true)) {
        fprintf(stderr, "chain_rule: %s\n", tg_last_error());
        return 1;
    }
    struct tg_tensor *z = tg_pow_scalar(T, x, 2); /* z = g(x) = x^2 */
    struct tg_tensor *y = tg_sin(T, z);           /* y = f(z) = sin z */
    struct tg_trace *tr = NULL;
    if (!y || (html ? tg_backward_trace(y, NULL, &tr) : tg_backward(y, NULL))) {
        fprintf(stderr, "chain_rule: %s\n", tg_last_error());
        return 1;
    }
    struct tg_graph_name nm[] = {{x, "x"}, {z, "z"}, {y, "y"}};
    struct tg_graph_names names = {nm, 3};
    int page = html ? htmlpage_write("chain_rule", html, y, tr, &names, "y = sin(x^2)") : 0;
    tg_trace_free(tr);
    double dz_dx = 2 * x0, dy_dz = cos(tg_tensor_item(z)), h = 1e-6;
    double numeric = (f_of_g(x0 + h) - f_of_g(x0 - h)) / (2 * h);
    printf("y = f(g(x)) with g(x) = x^2, f(z) = sin(z), at x = %g\n", x0);
    printf("forward:  z = g(x) = %.10f   y = f(z) = %.10f\n", tg_tensor_item(z), tg_tensor_item(y));
    printf("local:    dz/dx = 2x = %.10f   dy/dz = cos(z) = %.10f\n", dz_dx, dy_dz);
    printf("chain:    dy/dx = dy/dz * dz/dx = %.10f\n", dy_dz * dz_dx);
    printf("engine:   dy/dx = %.10f   (tg_backward)\n", tg_tensor_grad_get(x, 0));
    printf("numeric:  dy/dx ~ %.10f   (central difference, h = %g)\n", numeric, h);
    int ok = fabs(tg_tensor_grad_get(x, 0) - dy_dz * dz_dx) < 1e-12 &&
             fabs(tg_tensor_grad_get(x, 0) - numeric) < 1e-6;
    tg_tensor_free(x);
    tg_tape_free(T);
    return ok && !page ? 0 : 1;
}
