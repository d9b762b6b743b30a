/*
 * examples/pinn.c - a physics-informed fit: a small MLP u(x) learns u'' = -u on
 * [0, pi] with u(0) = 0 and u(pi/2) = 1, whose solution is sin x.
 *
 * The loss holds the network's second derivative with respect to its input:
 *   r_i  = u''(x_i) + u(x_i)   at 32 collocation points x_i,
 *   loss = mean(r^2) + u(0)^2 + (u(pi/2) - 1)^2.
 * u' and u'' come from tg_grad with create_graph: the rows of the batch are
 * independent, so d/dx of sum(u) is u'(x_i) row by row, and the same again gives
 * u''. tg_backward(loss) then differentiates through both recorded backward
 * passes (third derivatives of the network, with respect to its weights), and
 * Adam updates the weights. The program prints the loss and the maximum error
 * against sin x on 101 points, and exits 1 unless that error is below 1e-3.
 *
 * Usage: pinn [steps]   (default 3000; too few steps must fail the gate)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad/tapegrad.h>

enum { H = 16, N = 32 };

struct net {
    struct tg_tensor *W[3], *b[3];
};

static struct tg_tensor *u_of(struct tg_tape *T, const struct net *m, struct tg_tensor *x)
{
    struct tg_tensor *h = tg_linear(T, x, m->W[0], m->b[0], TG_ACT_TANH);
    h = tg_linear(T, h, m->W[1], m->b[1], TG_ACT_TANH);
    return tg_linear(T, h, m->W[2], m->b[2], TG_ACT_NONE);
}

/* The loss at collocation points x (N,1, requires grad) and boundary points xb. */
static struct tg_tensor *loss_of(struct tg_tape *T, const struct net *m, struct tg_tensor *x,
                                 struct tg_tensor *xb, struct tg_tensor *ub_target)
{
    const struct tg_grad_options cg = {.create_graph = true};
    struct tg_tensor *u = u_of(T, m, x), *du, *d2u;
    struct tg_tensor *su = tg_sum(T, u);
    if (!su || tg_grad(1, &su, NULL, 1, &x, &cg, &du)) return NULL;
    struct tg_tensor *sdu = tg_sum(T, du);
    if (!sdu || tg_grad(1, &sdu, NULL, 1, &x, &cg, &d2u)) return NULL;
    struct tg_tensor *r = tg_add(T, d2u, u);
    struct tg_tensor *e = tg_sub(T, u_of(T, m, xb), ub_target);
    return tg_add(T, tg_mean(T, tg_mul(T, r, r)), tg_sum(T, tg_mul(T, e, e)));
}

static double max_error(struct tg_tape *T, const struct net *m)
{
    double xs[101], worst = 0;
    for (int i = 0; i <= 100; i++) xs[i] = M_PI * i / 100;
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){101, 1}, xs);
    tg_tape_reset(T);
    tg_tape_no_grad_push(T);
    struct tg_tensor *u = u_of(T, m, x);
    for (int i = 0; u && i <= 100; i++) worst = fmax(worst, fabs(tg_tensor_get(u, i) - sin(xs[i])));
    tg_tape_no_grad_pop(T);
    tg_tensor_free(x);
    return u ? worst : INFINITY;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 3000;
    struct tg_rng rng;
    tg_rng_seed(&rng, 3);
    struct net m;
    struct tg_params *P = tg_params_new();
    const int64_t ws[3][2] = {{H, 1}, {H, H}, {1, H}};
    char name[8];
    for (int k = 0; k < 3; k++) {
        m.W[k] = tg_tensor_normal(TG_F64, 2, ws[k], &rng, 0, 1 / sqrt((double)ws[k][1]));
        m.b[k] = tg_tensor_zeros(TG_F64, 1, ws[k]);
        snprintf(name, sizeof name, "W%d", k);
        tg_params_add(P, name, m.W[k]);
        snprintf(name, sizeof name, "b%d", k);
        tg_params_add(P, name, m.b[k]);
        tg_tensor_set_requires_grad(m.W[k], true);
        tg_tensor_set_requires_grad(m.b[k], true);
    }
    double xv[N], bv[2] = {0, M_PI / 2}, tv[2] = {0, 1};
    for (int i = 0; i < N; i++) xv[i] = M_PI * (i + 0.5) / N;
    struct tg_tensor *x = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){N, 1}, xv);
    struct tg_tensor *xb = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 1}, bv);
    struct tg_tensor *tb = tg_tensor_from_f64(TG_F64, 2, (int64_t[]){2, 1}, tv);
    tg_tensor_set_requires_grad(x, true);
    struct tg_nn_optim_config cfg = tg_nn_optim_defaults(TG_OPTIM_ADAM);
    cfg.lr = 0.01;
    cfg.zero_grad = true;
    struct tg_nn_optim *opt = tg_nn_optim_new(P, &cfg);
    struct tg_tape *T = tg_tape_new();
    if (!P || !x || !xb || !tb || !opt || !T) {
        fprintf(stderr, "pinn: %s\n", tg_last_error());
        return 1;
    }
    double loss = NAN;
    for (int s = 0; s <= steps; s++) {
        tg_tape_reset(T);
        struct tg_tensor *L = loss_of(T, &m, x, xb, tb);
        if (!L) {
            fprintf(stderr, "pinn: %s\n", tg_last_error());
            return 1;
        }
        loss = tg_tensor_item(L);
        if (s % 500 == 0 || s == steps) printf("step %5d  loss %.3e\n", s, loss);
        if (s == steps) break;
        if (tg_backward(L, NULL) || tg_nn_optim_step(opt, 1.0)) {
            fprintf(stderr, "pinn: %s\n", tg_last_error());
            return 1;
        }
    }
    double err = max_error(T, &m);
    printf("max |u(x) - sin x| on [0, pi]: %.3e\n", err);
    tg_nn_optim_free(opt);
    tg_tape_free(T);
    tg_params_free(P);
    for (int k = 0; k < 3; k++) {
        tg_tensor_free(m.W[k]);
        tg_tensor_free(m.b[k]);
    }
    tg_tensor_free(x);
    tg_tensor_free(xb);
    tg_tensor_free(tb);
    if (!(err < 1e-3)) {
        printf("pinn: FAILED (error above 1e-3)\n");
        return 1;
    }
    printf("pinn: the network solves u'' = -u (error below 1e-3)\n");
    return 0;
}
