/*
 * examples/gradient_penalty.c - a gradient-penalty loss (WGAN-GP's) on a small MLP,
 * differentiated through its own gradient.
 *
 * The critic D(x) = W2 tanh(W1 x + b1) scores each row of a batch X (8, 3). The
 * loss holds D's gradient with respect to its input:
 *
 *     L = mean_b D(x_b) + lambda mean_b (||dD/dx_b|| - 1)^2
 *
 * dD/dX is recorded with tg_grad(create_graph), so it is a graph of the
 * parameters; tg_backward(L) then differentiates through it (a second
 * derivative of D). The program checks every parameter's dL/dp against central
 * differences of L (f64, h = 1e-6) and exits 1 if the worst relative error
 * exceeds 1e-6 - which a wrong second derivative of any op on the path breaks.
 *
 * Usage: gradient_penalty [--detach]   (the flag takes dD/dX without
 *                                       create_graph: the penalty's dependence on
 *                                       the parameters is lost, which must fail)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/tapegrad.h>

enum { B = 8, IN = 3, HID = 5 };
static const double lambda = 10;

struct critic {
    struct tg_tensor *W1, *b1, *W2, *X;
};

/* L on T; NULL with the error set. */
static struct tg_tensor *loss(struct tg_tape *T, const struct critic *c, bool create_graph)
{
    struct tg_tensor *h = tg_tanh(T, tg_linear(T, c->X, c->W1, c->b1, TG_ACT_NONE)); /* (B, HID) */
    struct tg_tensor *D = tg_linear(T, h, c->W2, NULL, TG_ACT_NONE);                 /* (B, 1) */
    struct tg_tensor *sumD = tg_sum(T, D),
                     *gx = NULL; /* rows are independent: d sumD / dx_b = dD_b / dx_b */
    const struct tg_grad_options o = {.create_graph = create_graph};
    if (!sumD || tg_grad(1, &sumD, NULL, 1, &c->X, &o, &gx)) return NULL;
    struct tg_tensor *norm = tg_sqrt(T, tg_sum_axes(T, tg_mul(T, gx, gx), (int[]){1}, 1, false));
    struct tg_tensor *pen = tg_mean(T, tg_pow_scalar(T, tg_add_scalar(T, norm, -1), 2));
    return tg_add(T, tg_mean(T, D), tg_mul_scalar(T, pen, lambda));
}

static double loss_value(struct tg_tape *T, const struct critic *c)
{
    tg_tape_reset(T);
    struct tg_tensor *L = loss(T, c, true);
    return L ? tg_tensor_item(L) : NAN;
}

int main(int argc, char **argv)
{
    bool detach = argc > 1 && strcmp(argv[1], "--detach") == 0;
    struct tg_rng rng;
    tg_rng_seed(&rng, 2024);
    struct critic c = {
        tg_tensor_uniform(TG_F64, 2, (int64_t[]){HID, IN}, &rng, -1, 1),
        tg_tensor_uniform(TG_F64, 1, (int64_t[]){HID}, &rng, -0.5, 0.5),
        tg_tensor_uniform(TG_F64, 2, (int64_t[]){1, HID}, &rng, -1, 1),
        tg_tensor_uniform(TG_F64, 2, (int64_t[]){B, IN}, &rng, -2, 2),
    };
    struct tg_tape *T = tg_tape_new();
    if (!T || !c.W1 || !c.b1 || !c.W2 || !c.X) return 1;
    struct tg_tensor *params[3] = {c.W1, c.b1, c.W2};
    const char *names[3] = {"W1", "b1", "W2"};
    for (int k = 0; k < 3; k++) tg_tensor_set_requires_grad(params[k], true);
    tg_tensor_set_requires_grad(c.X, true); /* the penalty differentiates D in X */

    struct tg_tensor *L = loss(T, &c, !detach);
    if (!L || tg_backward(L, NULL)) {
        fprintf(stderr, "gradient_penalty: %s\n", tg_last_error());
        return 1;
    }
    printf("gradient penalty on a %d-%d-1 tanh critic, batch %d, lambda %g%s\n", IN, HID, B, lambda,
           detach ? " (dD/dX detached)" : "");
    printf("L = %.12f\n", tg_tensor_item(L));
    printf("%-4s %6s %20s %20s %10s\n", "p", "index", "dL/dp (backward)", "central diff.",
           "rel. err");
    double worst = 0;
    const double h = 1e-6;
    for (int k = 0; k < 3; k++) {
        struct tg_tensor *p = params[k];
        for (int64_t i = 0; i < tg_tensor_numel(p); i++) {
            double v = tg_tensor_get(p, i), g = tg_tensor_grad_get(p, i);
            tg_tensor_set(p, i, v + h);
            double up = loss_value(T, &c);
            tg_tensor_set(p, i, v - h);
            double down = loss_value(T, &c);
            tg_tensor_set(p, i, v);
            double num = (up - down) / (2 * h);
            double err = fabs(g - num) / fmax(1, fabs(num));
            worst = fmax(worst, err);
            if (i < 3)
                printf("%-4s %6lld %20.12f %20.12f %10.2e\n", names[k], (long long)i, g, num, err);
        }
    }
    tg_tape_free(T);
    for (int k = 0; k < 3; k++) tg_tensor_free(params[k]);
    tg_tensor_free(c.X);
    if (!(worst <= 1e-6)) {
        printf("gradient_penalty: FAILED (worst relative error %.3g over all %d parameters)\n",
               worst, HID * IN + HID + HID);
        return 1;
    }
    printf("gradient_penalty: every dL/dp matches central differences (worst relative error "
           "%.2e)\n",
           worst);
    return 0;
}
