/*
 * tests/grad_testops.h - a few ops of the tests' own (tests/grad_testops.c) whose
 * vjp_graph records ops of the same family, so that tg_grad and
 * tg_gradgradcheck are tested to any order independently of the op table's
 * VJPs. Same-shape elementwise ops (no broadcasting), a full sum and its
 * transpose, and one op without a vjp_graph.
 */
#ifndef TG_TEST_GRAD_TESTOPS_H
#define TG_TEST_GRAD_TESTOPS_H

struct tg_tape;
struct tg_tensor;

struct tg_tensor *t_mul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b); /* a*b */
struct tg_tensor *t_sin(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *t_cos(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *t_neg(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *t_sum(struct tg_tape *T, struct tg_tensor *x); /* rank 0 */
/* s (one element) repeated to like's shape */
struct tg_tensor *t_expand(struct tg_tape *T, struct tg_tensor *s, struct tg_tensor *like);
/* sin x, whose VJP wrongly treats cos x as a constant */
struct tg_tensor *t_sin_flat(struct tg_tape *T, struct tg_tensor *x);
/* 2x, without a vjp_graph */
struct tg_tensor *t_novjp(struct tg_tape *T, struct tg_tensor *x);

#endif
