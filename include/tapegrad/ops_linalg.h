/*
 * tapegrad/ops_linalg.h - matrix products and reductions along axes (ops/matmul.c,
 * ops/reduce_axis.c). Included by tapegrad/ops.h; do not include it alone.
 */
#ifndef TAPEGRAD_OPS_LINALG_H
#define TAPEGRAD_OPS_LINALG_H

/* X(ENUM_SUFFIX, name) for each op of this family, in table order. */
#define TG_OPS_LINALG(X)                                                                           \
    X(MATMUL, matmul)                                                                              \
    X(LINEAR, linear)                                                                              \
    X(SUM_AXES, sum_axes)                                                                          \
    X(MEAN_AXES, mean_axes)                                                                        \
    X(MAX_AXES, max_axes)                                                                          \
    X(MIN_AXES, min_axes)                                                                          \
    X(LOGSUMEXP_AXES, logsumexp_axes)                                                              \
    X(VAR_AXES, var_axes)                                                                          \
    X(ARGMAX_AXES, argmax_axes)                                                                    \
    X(ARGMIN_AXES, argmin_axes)

/* ---- matrix products ---- */

/* Activation functions, elementwise: the one enum of the library (nn's layers
 * and MLPs use it too). tg_linear fuses NONE to SIGMOID; LEAKY_RELU (slope
 * TG_NN_LEAKY_SLOPE in nn.h) and SOFTPLUS (log(1 + e^z)) are recorded as their
 * own ops after it (tg_nn_activate). */
enum tg_act {
    TG_ACT_NONE = 0, /* identity: y = z (no op is recorded) */
    TG_ACT_RELU = 1,
    TG_ACT_TANH = 2,
    TG_ACT_SIGMOID = 3,
    TG_ACT_LEAKY_RELU = 4,
    TG_ACT_SOFTPLUS = 5
};

/*
 * A fused layer, for speed: y = act(x W^T + b), the document's z = W y + b for a
 * batch of row vectors: the GEMM writes x W^T, and one pass over its output adds
 * the bias and applies the activation.
 *   x: (B, in) or (in); W: (out, in) (PyTorch's layout); b: (out), or NULL for no
 *   bias (so a failed bias computation must be checked before the call).
 *   y: (B, out) or (out).
 * Backward: g = dy * act'(y); dx += g W; dW += g^T x; db += sum over the batch of g
 * (all with GEMM accumulation, beta = 1). Same as tg_matmul_t + tg_add + the
 * activation op, with fewer passes and no intermediate nodes.
 * Errors: TG_ERR_SHAPE naming the shapes, TG_ERR_VALUE for an activation it does
 * not fuse (LEAKY_RELU, SOFTPLUS) or an unknown one.
 */
struct tg_tensor *tg_linear(struct tg_tape *T, struct tg_tensor *x, struct tg_tensor *W,
                            struct tg_tensor *b, enum tg_act act);

/*
 * The matrix product, with NumPy's matmul rules:
 *   (m,k) x (k,n) -> (m,n)         matrix-matrix
 *   (m,k) x (k)   -> (m)           matrix-vector
 *   (k)   x (k,n) -> (n)           vector-matrix
 *   (k)   x (k)   -> ()            dot product
 *   (...,m,k) x (...,k,n) -> (...,m,n), the batch dimensions (...) broadcast
 *   like NumPy (a 1-D operand takes part in every batch).
 * Both operands have the same dtype and rank >= 1. Errors (NULL returned):
 * TG_ERR_SHAPE naming both shapes, e.g. "matmul: shapes (2,3) and (4,5) do not fit
 * (3 != 4)"; TG_ERR_RANGE when a dimension exceeds INT_MAX (the BLAS limit).
 * dA += dY B^T and dB += A^T dY, summed over broadcast batch dimensions.
 */
struct tg_tensor *tg_matmul(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b);

/*
 * op(a) x op(b), where op transposes the last two axes of the operand when its
 * flag is set, without copying: tg_matmul_t(T, x, W, false, true) is x W^T for a
 * weight W stored (out, in). The flag of a 1-D operand is ignored (a vector has
 * no orientation). The same op as tg_matmul (the flags are its parameters); shape
 * errors print a transposed operand's stored shape followed by ^T.
 */
struct tg_tensor *tg_matmul_t(struct tg_tape *T, struct tg_tensor *a, struct tg_tensor *b,
                              bool trans_a, bool trans_b);

/*
 * Which kernel matrix products use, a testing and benchmarking knob: AUTO (the
 * default) is CBLAS when the library was built with the `blas` feature and the
 * portable cache-blocked kernel otherwise. The setting is per thread
 * (thread-local) and applies to the forward and backward passes that run on that
 * thread after the call. Results of the two kernels agree to rounding (rel 1e-12
 * in f64), not bit for bit.
 */
enum tg_matmul_backend {
    TG_MATMUL_AUTO = 0,
    TG_MATMUL_BLAS = 1,
    TG_MATMUL_PORTABLE = 2,
};
/* TG_ERR_STATE when BLAS is asked for but the library was built without it;
 * TG_ERR_VALUE for an unknown value. The setting is unchanged on failure. */
enum tg_status tg_matmul_set_backend(enum tg_matmul_backend backend);
/* The kernel in use on this thread: TG_MATMUL_BLAS or TG_MATMUL_PORTABLE (never AUTO). */
enum tg_matmul_backend tg_matmul_get_backend(void);

/* ---- reductions along axes ----
 *
 * Each reduces x over the axes listed in `axes` (n_axes entries, borrowed; a
 * negative axis counts from the end). n_axes == 0 (axes may then be NULL)
 * reduces over every axis, like NumPy's axis=None. With keepdim the reduced axes
 * stay as size 1 (the result broadcasts against x); without it they are removed
 * (reducing every axis gives a rank-0 tensor). Reductions run in double precision
 * for f32 inputs too.
 * Errors (NULL returned): TG_ERR_RANGE for an axis out of range or listed twice
 * ("sum_axes: axis 2 is out of range for shape (3,4)", "sum_axes: axis -1 repeats
 * axis 1 for shape (3,4)") or n_axes < 0; TG_ERR_NULL for axes == NULL with
 * n_axes > 0; TG_ERR_SHAPE for a reduction without an identity over an empty
 * slice (mean, max, min, var, argmax, argmin when the reduced axes hold no
 * element and the result is not empty). Sum over an empty slice is 0 and
 * logsumexp -inf.
 */
struct tg_tensor *tg_sum_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim);
struct tg_tensor *tg_mean_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                               bool keepdim);
/* max/min: the gradient goes to one element per slice, the arg-max. At a tie it
 * is the first of the tied elements in row-major order (the lowest flat index).
 * A NaN in a slice wins (the result is NaN; the first NaN gets the gradient). */
struct tg_tensor *tg_max_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim);
struct tg_tensor *tg_min_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              bool keepdim);
/* log(sum(exp(x))) computed as m + log(sum(exp(x - m))), m the slice's maximum,
 * so large inputs do not overflow. dx += dy * exp(x - y) (the softmax). */
struct tg_tensor *tg_logsumexp_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                    int n_axes, bool keepdim);
/* The variance sum((x - mean)^2) / (N - correction), N the elements per slice:
 * correction 0 is the population variance, 1 the unbiased (Bessel) estimate.
 * Computed in two passes (the mean first). TG_ERR_VALUE for a negative or
 * non-finite correction; TG_ERR_SHAPE when N - correction <= 0 and the result
 * is not empty. */
struct tg_tensor *tg_var_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes, int n_axes,
                              double correction, bool keepdim);
/* The position of the maximum / minimum in each slice, ties to the first, as an
 * f64 tensor (whatever x's dtype): for one axis the index along that axis; for
 * several, the row-major flat index within the reduced axes (taken in increasing
 * axis order). No gradient flows through an index: its backward adds nothing. */
struct tg_tensor *tg_argmax_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                 int n_axes, bool keepdim);
struct tg_tensor *tg_argmin_axes(struct tg_tape *T, struct tg_tensor *x, const int *axes,
                                 int n_axes, bool keepdim);

#endif
