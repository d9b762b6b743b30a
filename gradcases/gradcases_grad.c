/*
 * gradcases/gradcases_grad.c - gradient-check cases of detach (ops/detach.c),
 * listed in the shape family's table (gradcases_shape.c).
 *
 * A central difference moves the detached input too (the value of detach(x) is
 * x), so no finite difference can see a stopped gradient: the cases detach an
 * input that needs no gradient and differentiate through the other one, which
 * checks the value that detach passes on (a wrong value gives a wrong
 * gradient of x). That the stopped gradient is zero is checked in
 * tests/check_detach.c.
 */
#include "gradcases.h"

/* A random shape of rank 0..3, the same for a (requires grad) and b (does not). */
static int pair_one_grad(struct tg_rng *r, struct tg_tensor **in)
{
    int64_t s[3];
    int rank = (int)tg_rng_below(r, 4);
    for (int d = 0; d < rank; d++) s[d] = gc_dim(r);
    in[0] = gc_rand(r, rank, s, -2, 2, true);
    in[1] = gc_rand(r, rank, s, -2, 2, false);
    return in[0] && in[1] ? 2 : 0;
}

int gc_mk_detach(struct tg_rng *r, struct tg_tensor **in)
{
    return pair_one_grad(r, in);
}

/* y = x * detach(b): a leaf detached (its buffer shared) */
struct tg_tensor *gc_f_detach(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    (void)n;
    (void)c;
    return tg_mul(T, x[0], tg_detach(T, x[1]));
}

/* y = x * detach(1.5 b - 0.5) + x: a node detached */
struct tg_tensor *gc_f_detach_node(struct tg_tape *T, struct tg_tensor *const *x, int n, void *c)
{
    (void)n;
    (void)c;
    struct tg_tensor *d = tg_detach(T, tg_affine(T, x[1], 1.5, -0.5));
    return tg_add(T, tg_mul(T, x[0], d), x[0]);
}
