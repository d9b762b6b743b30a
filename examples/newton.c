/*
 * examples/newton.c - Newton's method with second derivatives from tg_grad.
 *
 * Minimises f(x, y) = e^(x+3y-0.1) + e^(x-3y-0.1) + e^(-x-0.1), whose minimiser
 * is exactly (-ln(2)/2, 0). Each step records f on a scalar graph, takes the
 * gradient g = (df/dx, df/dy) with tg_grad(create_graph), differentiates each
 * component again for the Hessian's rows, and solves H p = -g. Near the
 * minimiser Newton's method converges quadratically: the error e_k to the exact
 * minimiser satisfies e_{k+1} <= C e_k^2, so the digits double each step. The
 * program prints e_k and e_{k+1} / e_k^2 and exits 1 unless it reaches 1e-12
 * within 8 steps with the ratio bounded - which a wrong second derivative breaks.
 *
 * Usage: newton [--no-curvature]   (the flag replaces H by 10 I: gradient
 *                                   descent with step 0.1, linear convergence,
 *                                   which must fail the gate)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

/* f at (x, y), recorded on T. */
static struct tg_tensor *f_of(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *y)
{
    struct tg_tensor *a = tg_exp(T, tg_add_scalar(T, tg_add(T, x, tg_mul_scalar(T, y, 3)), -0.1));
    struct tg_tensor *b = tg_exp(T, tg_add_scalar(T, tg_sub(T, x, tg_mul_scalar(T, y, 3)), -0.1));
    struct tg_tensor *c = tg_exp(T, tg_affine(T, x, -1, -0.1));
    return tg_add(T, tg_add(T, a, b), c);
}

/* f, its gradient g and Hessian H at the leaves' values. */
static enum tg_status derivatives(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *y,
                                  double *f, double g[2], double H[2][2])
{
    struct tg_tensor *in[2] = {x, y}, *grad[2], *row[2];
    const struct tg_grad_options cg = {.create_graph = true};
    const struct tg_grad_options zeros_ok = {.allow_unused = true};
    tg_tape_reset(T);
    struct tg_tensor *F = f_of(T, x, y);
    enum tg_status st = F ? tg_grad(1, &F, NULL, 2, in, &cg, grad) : tg_last_status();
    for (int i = 0; !st && i < 2; i++) {
        if ((st = tg_grad(1, &grad[i], NULL, 2, in, &zeros_ok, row))) break;
        g[i] = tg_tensor_item(grad[i]);
        H[i][0] = tg_tensor_item(row[0]);
        H[i][1] = tg_tensor_item(row[1]);
    }
    if (!st) *f = tg_tensor_item(F);
    return st;
}

int main(int argc, char **argv)
{
    bool curvature = !(argc > 1 && strcmp(argv[1], "--no-curvature") == 0);
    const double xs = -log(2.0) / 2, ys = 0; /* the exact minimiser */
    double px = -1.0, py = 0.5, prev_err = NAN, worst_ratio = 0;
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, px), *y = tg_tensor_scalar(TG_F64, py);
    if (!T || !x || !y) return 1;
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(y, true);
    printf("Newton's method on f(x,y) = e^(x+3y-0.1) + e^(x-3y-0.1) + e^(-x-0.1)%s\n",
           curvature ? "" : " (H replaced by 10 I)");
    printf("%4s %22s %22s %20s %12s %14s\n", "k", "x", "y", "f", "error", "e_k/e_{k-1}^2");
    int k, ok = 0;
    for (k = 0; k <= 8; k++) {
        double f, g[2], H[2][2];
        tg_tensor_set(x, 0, px);
        tg_tensor_set(y, 0, py);
        if (derivatives(T, x, y, &f, g, H)) {
            fprintf(stderr, "newton: %s\n", tg_last_error());
            return 1;
        }
        double err = hypot(px - xs, py - ys);
        double ratio = err / (prev_err * prev_err);
        printf("%4d %22.16f %22.16f %20.16f %12.3e", k, px, py, f, err);
        if (k > 0 && err > 0) printf(" %14.4f", ratio);
        printf("\n");
        if (k > 0 && prev_err < 0.1 && err > 0) worst_ratio = fmax(worst_ratio, ratio);
        if (err < 1e-12) {
            ok = 1;
            break;
        }
        if (!curvature) H[0][0] = H[1][1] = 10, H[0][1] = H[1][0] = 0;
        double det = H[0][0] * H[1][1] - H[0][1] * H[1][0];
        px -= (H[1][1] * g[0] - H[0][1] * g[1]) / det;
        py -= (H[0][0] * g[1] - H[1][0] * g[0]) / det;
        prev_err = err;
    }
    tg_tape_free(T);
    tg_tensor_free(x);
    tg_tensor_free(y);
    /* quadratic convergence: e_k <= C e_{k-1}^2 once close, with C of order
     * |f'''| / (2 |f''|) (about 1.6 here) */
    if (!ok || worst_ratio > 10) {
        printf("newton: FAILED (error %s 1e-12 after %d steps, worst ratio %.3g)\n",
               ok ? "<" : "not below", ok ? k : k - 1, worst_ratio);
        return 1;
    }
    printf("newton: converged in %d steps; e_k / e_{k-1}^2 stayed below %.3g (quadratic)\n", k,
           worst_ratio);
    return 0;
}
