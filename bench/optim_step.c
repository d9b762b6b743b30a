/*
 * bench/optim_step.c - one optimizer step alone, on the parameters of F's MLP
 * (784-256-128-10, f32: 235,146 values), gradients set once, zero_grad off so
 * every step reads the same gradients. Prints one line per optimizer:
 *   OPTIM kind=<sgd|momentum|nesterov|adam> numel=<n> median_ms=<m>
 * Usage: optim_step [--reps N]
 */
#include <tapegrad/tapegrad.h>
#include "bench-util.h"

int main(int argc, char **argv)
{
    int reps = bench_int_opt(argc, argv, "--reps", 300);
    struct tg_rng rng;
    tg_rng_seed(&rng, 7);
    int64_t sizes[4] = {784, 256, 128, 10};
    struct tg_nn_mlp *mlp =
        tg_nn_mlp_new(sizes, 4, TG_ACT_RELU, TG_ACT_NONE, TG_F32, TG_INIT_HE_UNIFORM, &rng);
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!mlp || !t) return 1;
    struct tg_params *params = tg_nn_mlp_params(mlp);
    for (size_t k = 0; k < tg_params_count(params); k++) {
        struct tg_tensor *p = tg_params_tensor(params, k);
        float *g = tg_tensor_grad_mut(p);
        for (int64_t i = 0; i < tg_tensor_numel(p); i++)
            g[i] = (float)(1e-3 * (tg_rng_uniform(&rng) - 0.5));
    }
    static const struct {
        const char *name;
        enum tg_nn_optim_kind kind;
        bool nesterov;
    } kinds[] = {{"sgd", TG_OPTIM_SGD, false},
                 {"momentum", TG_OPTIM_MOMENTUM, false},
                 {"nesterov", TG_OPTIM_MOMENTUM, true},
                 {"adam", TG_OPTIM_ADAM, false}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct tg_nn_optim_config oc = tg_nn_optim_defaults(kinds[k].kind);
        oc.lr = 1e-6; /* small: the parameters barely move over the reps */
        oc.nesterov = kinds[k].nesterov;
        struct tg_nn_optim *opt = tg_nn_optim_new(params, &oc);
        if (!opt) return 1;
        for (int i = -10; i < reps; i++) {
            double t0 = bench_now_ms();
            if (tg_nn_optim_step(opt, 1.0)) return 1;
            if (i >= 0) t[i] = bench_now_ms() - t0;
        }
        printf("OPTIM kind=%s numel=%lld median_ms=%.4f\n", kinds[k].name,
               (long long)tg_params_numel(params), bench_median(t, reps));
        tg_nn_optim_free(opt);
    }
    tg_nn_mlp_free(mlp);
    free(t);
    return 0;
}
