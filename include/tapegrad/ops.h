/*
 * tapegrad/ops.h - the differentiable operations.
 *
 * Every op records its result on tape T (first argument) and returns it, or
 * returns NULL with the error set (see status.h). A NULL input gives a NULL output
 * and keeps the original message, so expressions can be nested safely:
 *     y = tg_tanh(T, tg_add(T, tg_mul(T, w, x), b));
 * Inputs may be leaves (owned by the caller) or nodes of the same tape.
 *
 * Binary ops broadcast like NumPy: shapes are aligned at the last axis, and each
 * pair of dimensions must be equal or one of them 1. Both inputs must have the
 * same dtype (TG_ERR_DTYPE otherwise). The backward of a broadcast input sums the
 * gradient over the broadcast dimensions.
 *
 * The formulas and vector-Jacobian products of every op are in docs/ops.md.
 */
#ifndef TAPEGRAD_OPS_H
#define TAPEGRAD_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The op table: X(ENUM_SUFFIX, name), one descriptor per entry in ops/. Each
 * family of ops lists its entries in its own header, included here. */
#define TG_OPS_ELEMENTWISE(X)                                                                      \
    X(ADD, add)                                                                                    \
    X(SUB, sub)                                                                                    \
    X(MUL, mul)                                                                                    \
    X(DIV, div)                                                                                    \
    X(POW, pow)                                                                                    \
    X(MAXIMUM, maximum)                                                                            \
    X(MINIMUM, minimum)                                                                            \
    X(AFFINE, affine)                                                                              \
    X(POW_SCALAR, pow_scalar)                                                                      \
    X(NEG, neg)                                                                                    \
    X(EXP, exp)                                                                                    \
    X(LOG, log)                                                                                    \
    X(SQRT, sqrt)                                                                                  \
    X(ABS, abs)                                                                                    \
    X(TANH, tanh)                                                                                  \
    X(SIGMOID, sigmoid)                                                                            \
    X(RELU, relu)                                                                                  \
    X(LEAKY_RELU, leaky_relu)                                                                      \
    X(SOFTPLUS, softplus)                                                                          \
    X(SIN, sin)                                                                                    \
    X(COS, cos)                                                                                    \
    X(SUM, sum)                                                                                    \
    X(MEAN, mean)

#include "ops_linalg.h" /* TG_OPS_LINALG: matmul, reductions along axes */
#include "ops_shape.h"  /* TG_OPS_SHAPE: reshape, permute, slice, gather, concat, ... */
#include "ops_nn.h"     /* TG_OPS_NN: softmax, divergences, dropout */
#include "ops_conv.h"   /* TG_OPS_CONV: conv2d and its adjoints, pooling */
#include "ops_norm.h"   /* TG_OPS_NORM: batch_norm, layer_norm, embedding, where, clamp */
#include "ops_grad.h"   /* TG_OPS_GRAD: detach */

#define TG_OP_LIST(X)                                                                              \
    TG_OPS_ELEMENTWISE(X)                                                                          \
    TG_OPS_LINALG(X) TG_OPS_SHAPE(X) TG_OPS_NN(X) TG_OPS_CONV(X) TG_OPS_NORM(X) TG_OPS_GRAD(X)

enum tg_op {
    TG_OP_NONE = -1, /* a leaf or a constant: no op produced it */
#define TG_X_ENUM(E, n) TG_OP_##E,
    TG_OP_LIST(TG_X_ENUM)
#undef TG_X_ENUM
        TG_OP_COUNT
};

/* ---- binary, broadcasting ---- */
struct tg_tensor *tg_add(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b); /* a + b */
struct tg_tensor *tg_sub(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b); /* a - b */
struct tg_tensor *tg_mul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b); /* a * b */
struct tg_tensor *tg_div(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b); /* a / b */
/* a ^ b elementwise; the gradient w.r.t. b uses log(a) and is 0 where a == 0. */
struct tg_tensor *tg_pow(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b);
/* max/min elementwise; at a tie the gradient is split evenly between a and b. */
struct tg_tensor *tg_maximum(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b);
struct tg_tensor *tg_minimum(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b);

/* ---- a tensor and a plain number ---- */
/* alpha * x + beta: the one op behind the scalar helpers below. */
struct tg_tensor *tg_affine(struct tg_tape *T, struct tg_tensor *x, double alpha, double beta);
struct tg_tensor *tg_add_scalar(struct tg_tape *T, struct tg_tensor *x, double c);  /* x + c */
struct tg_tensor *tg_sub_scalar(struct tg_tape *T, struct tg_tensor *x, double c);  /* x - c */
struct tg_tensor *tg_rsub_scalar(struct tg_tape *T, double c, struct tg_tensor *x); /* c - x */
struct tg_tensor *tg_mul_scalar(struct tg_tape *T, struct tg_tensor *x, double c);  /* x * c */
struct tg_tensor *tg_div_scalar(struct tg_tape *T, struct tg_tensor *x, double c);  /* x / c */
struct tg_tensor *tg_pow_scalar(struct tg_tape *T, struct tg_tensor *x, double p);  /* x ^ p */
/* c / x, recorded as c * x^-1. */
struct tg_tensor *tg_rdiv_scalar(struct tg_tape *T, double c, struct tg_tensor *x);

/* ---- unary, elementwise ---- */
struct tg_tensor *tg_neg(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_exp(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_log(struct tg_tape *T, struct tg_tensor *x); /* natural log */
struct tg_tensor *tg_sqrt(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_abs(struct tg_tape *T, struct tg_tensor *x); /* gradient 0 at 0 */
struct tg_tensor *tg_tanh(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_sigmoid(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_relu(struct tg_tape *T, struct tg_tensor *x); /* gradient 0 at 0 */
/* x > 0 ? x : slope * x; gradient slope at 0. */
struct tg_tensor *tg_leaky_relu(struct tg_tape *T, struct tg_tensor *x, double slope);
struct tg_tensor *tg_softplus(struct tg_tape *T, struct tg_tensor *x); /* log(1 + e^x), stable */
struct tg_tensor *tg_sin(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_cos(struct tg_tape *T, struct tg_tensor *x);

/* ---- reductions over all elements: rank-0 results ---- */
struct tg_tensor *tg_sum(struct tg_tape *T, struct tg_tensor *x);
struct tg_tensor *tg_mean(struct tg_tape *T, struct tg_tensor *x); /* numel > 0 */

/* ---- introspection of the op table and of recorded nodes ---- */
int tg_op_count(void);
const char *tg_op_name(enum tg_op op);    /* "add"; "?" when out of range */
const char *tg_op_formula(enum tg_op op); /* one line, e.g. "y = a + b" */
const char *tg_op_vjp(enum tg_op op);     /* one line, e.g. "da += dy; db += dy" */
int tg_op_arity(enum tg_op op);           /* -1 for a variable number of inputs */
/* The names formula and vjp give the inputs, in slot order, then "->" and the
 * output's: "a b -> y", "A B -> Y"; "?" when out of range. tg_graph_rule
 * (graph.h) prints a recorded node's rule with its own tensors' names instead. */
const char *tg_op_operands(enum tg_op op);
/* The op that produced t (TG_OP_NONE for leaves, constants and NULL; also for
 * a stale handle, with TG_ERR_STALE recorded). The node's inputs and
 * parameters: tg_tensor_n_inputs, tg_tensor_input and tg_tensor_op_params
 * (tensor.h). */
enum tg_op tg_tensor_op(const struct tg_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
