/*
 * examples/moons_data.h - the two-moons data set shared by moons_scalar.c and
 * moons_tensor.c, so both examples train on exactly the same points.
 *
 * sklearn-style two moons: n/2 points on an upper half circle (label -1) and n/2
 * on a shifted lower one (label +1), each coordinate with Gaussian noise of
 * standard deviation 0.1 drawn from rng (two draws per point, x then y).
 */
#ifndef TAPEGRAD_EXAMPLES_MOONS_DATA_H
#define TAPEGRAD_EXAMPLES_MOONS_DATA_H

#include <math.h>
#include <tapegrad/tapegrad.h>

/* Fills X (n, 2) and y (n) (n even, >= 4), advancing rng by 2n normal draws. */
static inline void moons_make(struct tg_rng *rng, int n, double X[][2], double y[])
{
    for (int k = 0; k < n; k++) {
        int outer = k < n / 2;
        double t = M_PI * (double)(outer ? k : k - n / 2) / (n / 2 - 1);
        X[k][0] = (outer ? cos(t) : 1 - cos(t)) + 0.1 * tg_rng_normal(rng);
        X[k][1] = (outer ? sin(t) : 0.5 - sin(t)) + 0.1 * tg_rng_normal(rng);
        y[k] = outer ? -1 : 1;
    }
}

#endif
