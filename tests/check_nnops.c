/*
 * tests/check_nnops.c - softmax, the losses and dropout: values and gradients
 * against PyTorch, stability at extreme logits, error reporting, and dropout's
 * mask (ops/softmax.c, ops/loss.c, ops/dropout.c). The gradient checks of these
 * ops on random shapes are in the op-table loop of check_ops.c.
 *
 * Reference values come from PyTorch 1.13 (Debian's python3-torch), float64. The
 * script that printed them is quoted next to each block; it is run as
 *     /usr/bin/python3 -c 'import torch, torch.nn.functional as F; d = torch.float64; ...'
 * with the lines shown; each value printed as Python's repr of the float64 (the
 * shortest string that round-trips).
 */
#include <check.h>
#include "run-suite.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad/check.h>
#include <tapegrad/tapegrad.h>
#include "failalloc.h"

static struct tg_tensor *mat(int rank, const int64_t *shape, const double *v, bool grad)
{
    struct tg_tensor *t = tg_tensor_from(TG_F64, rank, shape, v);
    ck_assert_ptr_nonnull(t);
    if (grad) tg_tensor_set_requires_grad(t, true);
    return t;
}

#define EXPECT_VALUES(t, want, tol)                                                                \
    expect_values((t), (want), sizeof(want) / sizeof(double), tol, #t)
#define EXPECT_GRAD(t, want, tol) expect_grad((t), (want), sizeof(want) / sizeof(double), tol, #t)

static void expect_values(const struct tg_tensor *t, const double *want, int64_t n, double tol,
                          const char *what)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(tg_tensor_get(t, i) - want[i]) <= tol * (1 + fabs(want[i])),
                      "%s[%lld] = %.17g, want %.17g", what, (long long)i, tg_tensor_get(t, i),
                      want[i]);
}

static void expect_grad(const struct tg_tensor *t, const double *want, int64_t n, double tol,
                        const char *what)
{
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(tg_tensor_grad_get(t, i) - want[i]) <= tol * (1 + fabs(want[i])),
                      "grad %s[%lld] = %.17g, want %.17g", what, (long long)i,
                      tg_tensor_grad_get(t, i), want[i]);
}

/* x = [[1,2,3],[1000,1001,999]] (the second row would overflow e^x unshifted),
 * w = [[0.5,-1,2],[1.5,0.25,-0.75]]:
 *   x = torch.tensor([[1.,2.,3.],[1000.,1001.,999.]], dtype=d, requires_grad=True)
 *   w = torch.tensor([[0.5,-1.,2.],[1.5,0.25,-0.75]], dtype=d)
 *   torch.softmax(x,-1); torch.log_softmax(x,-1); torch.softmax(x,0)
 *   (torch.softmax(x,-1)*w).sum().backward(); x.grad
 *   (torch.log_softmax(x,0)*w).sum().backward(); x.grad   (after x.grad = None) */
static const int64_t SX[2] = {2, 3};
static const double X[6] = {1, 2, 3, 1000, 1001, 999};
static const double W[6] = {0.5, -1, 2, 1.5, 0.25, -0.75};

START_TEST(test_softmax_values)
{
    static const double sm_last[] = {0.09003057317038045, 0.2447284710547976, 0.6652409557748218,
                                     0.2447284710547976,  0.6652409557748218, 0.09003057317038045};
    static const double lsm_last[] = {-2.4076059644443806, -1.4076059644443804,
                                      -0.4076059644443804, -1.4076059644443804,
                                      -0.4076059644443804, -2.4076059644443806};
    static const double sm_first[] = {0, 0, 0, 1, 1, 1};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mat(2, SX, X, false);
    EXPECT_VALUES(tg_softmax(T, x, -1), sm_last, 1e-14);
    EXPECT_VALUES(tg_softmax(T, x, 1), sm_last, 1e-14);
    EXPECT_VALUES(tg_log_softmax(T, x, -1), lsm_last, 1e-14);
    EXPECT_VALUES(tg_softmax(T, x, 0), sm_first, 1e-14);
    EXPECT_VALUES(tg_softmax(T, x, -2), sm_first, 1e-14);
    /* log_softmax along axis 0 is finite where softmax underflows to 0 */
    ck_assert_double_eq_tol(tg_tensor_get(tg_log_softmax(T, x, 0), 0), -999, 1e-12);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_softmax_grad)
{
    static const double g_sm_last[] = {-0.05678847003696693, -0.5214597727496746,
                                       0.5782482427866417,   0.2530786026576477,
                                       -0.1436122279424365,  -0.10946637471521108};
    static const double g_lsm_first[] = {0.5, -1.0, 2.0, -0.5, 1.0, -2.0};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mat(2, SX, X, true), *w = mat(2, SX, W, false);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, tg_softmax(T, x, -1), w)), NULL), TG_OK);
    EXPECT_GRAD(x, g_sm_last, 1e-13);
    tg_tensor_zero_grad(x);
    ck_assert_int_eq(tg_backward(tg_sum(T, tg_mul(T, tg_log_softmax(T, x, 0), w)), NULL), TG_OK);
    EXPECT_GRAD(x, g_lsm_first, 1e-13);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_softmax_f32)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mat(2, SX, X, false), *x32 = tg_tensor_to(x, TG_F32);
    struct tg_tensor *a = tg_softmax(T, x, -1), *b = tg_softmax(T, x32, -1);
    ck_assert_int_eq(tg_tensor_dtype(b), TG_F32);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(tg_tensor_get(a, i), tg_tensor_get(b, i), 1e-6);
    tg_tensor_free(x);
    tg_tensor_free(x32);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_softmax_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mat(2, SX, X, false), *s = tg_tensor_scalar(TG_F64, 1);
    ck_assert_ptr_null(tg_softmax(T, x, 2));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(), "softmax: axis 2 is out of range for shape (2,3)");
    ck_assert_ptr_null(tg_log_softmax(T, x, -3));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_ptr_null(tg_softmax(T, s, -1));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    tg_clear_error();
    ck_assert_ptr_null(tg_softmax(T, NULL, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tensor_free(x);
    tg_tensor_free(s);
    tg_tape_free(T);
}
END_TEST

/* z (3,4), labels y = [2,0,3], probability targets t (3,4):
 *   z = torch.tensor([[0.2,-1.3,2.5,0.0],[1.1,0.4,-0.6,3.0],[-2.0,0.5,0.5,1.0]], dtype=d,
 *                    requires_grad=True); y = torch.tensor([2,0,3])
 *   t = torch.tensor([[0.1,0.2,0.3,0.4],[0.,0.,1.,0.],[0.25,0.25,0.25,0.25]], dtype=d,
 *                    requires_grad=True)
 *   F.cross_entropy(z,y,reduction=r) for r in mean, sum, none
 *   F.cross_entropy(z,y).backward(); z.grad
 *   F.cross_entropy(z,t,reduction=r) ...; F.cross_entropy(z,t,reduction='sum').backward()
 *   F.multi_margin_loss(z,y,margin=m,reduction=r) for m in 1.0, 0.7
 *   F.multi_margin_loss(z,y,margin=1.0,reduction='sum').backward(); z.grad */
static const int64_t SZ[2] = {3, 4}, SY[1] = {3};
static const double Z[12] = {0.2, -1.3, 2.5, 0.0, 1.1, 0.4, -0.6, 3.0, -2.0, 0.5, 0.5, 1.0};
static const double Y[3] = {2, 0, 3};
static const double TP[12] = {0.1, 0.2, 0.3, 0.4, 0, 0, 1, 0, 0.25, 0.25, 0.25, 0.25};

START_TEST(test_cross_entropy_labels)
{
    static const double mean[] = {1.0423143083309643}, sum[] = {3.1269429249928926};
    static const double none[] = {0.18624270420643868, 2.1240758524937857, 0.8166243682926684};
    static const double g_mean[] = {
        0.027740689936247606, 0.0061897845881028635, -0.05664263048675725, 0.02271215596240679,
        -0.29348553567900065, 0.019787830703595383,  0.007279536101233779, 0.26641816887417147,
        0.007333982049119865, 0.08934619202131044,   0.08934619202131044,  -0.18602636609174072};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *z = mat(2, SZ, Z, true), *y = mat(1, SY, Y, false);
    struct tg_tensor *l = tg_cross_entropy(T, z, y, TG_REDUCE_MEAN);
    EXPECT_VALUES(l, mean, 1e-14);
    ck_assert_int_eq(tg_tensor_rank(l), 0);
    EXPECT_VALUES(tg_cross_entropy(T, z, y, TG_REDUCE_SUM), sum, 1e-14);
    struct tg_tensor *n = tg_cross_entropy(T, z, y, TG_REDUCE_NONE);
    EXPECT_VALUES(n, none, 1e-14);
    ck_assert_int_eq(tg_tensor_rank(n), 1);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    EXPECT_GRAD(z, g_mean, 1e-13);
    /* the int64 form and f32 labels give the same loss */
    const int64_t yi[3] = {2, 0, 3};
    EXPECT_VALUES(tg_cross_entropy_idx(T, z, yi, 3, TG_REDUCE_MEAN), mean, 1e-14);
    struct tg_tensor *y32 = tg_tensor_to(y, TG_F32);
    EXPECT_VALUES(tg_cross_entropy(T, z, y32, TG_REDUCE_MEAN), mean, 1e-14);
    tg_tensor_free(y32);
    tg_tensor_free(z);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_cross_entropy_probs)
{
    static const double mean[] = {2.6056476416642975}, sum[] = {7.816942924992893};
    static const double none[] = {2.1762427042064383, 3.824075852493786, 1.8166243682926684};
    static const double g_z[] = {-0.016777930191257187, -0.1814306462356914,  0.5300721085397282,
                                 -0.33186353211277964,  0.11954339296299792,  0.059363492110786155,
                                 -0.9781613916962987,   0.7992545066225145,   -0.2279980538526404,
                                 0.018038576063931333,  0.018038576063931333, 0.19192090172477777};
    static const double g_t[] = {2.4862427042064383, 3.9862427042064383,  0.18624270420643868,
                                 2.6862427042064385, 2.1240758524937857,  2.824075852493786,
                                 3.824075852493786,  0.22407585249378564, 3.8166243682926684,
                                 1.3166243682926684, 1.3166243682926684,  0.8166243682926684};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *z = mat(2, SZ, Z, true), *t = mat(2, SZ, TP, true);
    EXPECT_VALUES(tg_cross_entropy_probs(T, z, t, TG_REDUCE_MEAN), mean, 1e-14);
    EXPECT_VALUES(tg_cross_entropy_probs(T, z, t, TG_REDUCE_NONE), none, 1e-14);
    struct tg_tensor *l = tg_cross_entropy_probs(T, z, t, TG_REDUCE_SUM);
    EXPECT_VALUES(l, sum, 1e-14);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    EXPECT_GRAD(z, g_z, 1e-13);
    EXPECT_GRAD(t, g_t, 1e-13);
    tg_tensor_free(z);
    tg_tensor_free(t);
    tg_tape_free(T);
}
END_TEST

/* Logits of 1e4 in f64 and f32 stay finite (log-sum-exp is max-subtracted). */
START_TEST(test_cross_entropy_stable)
{
    struct tg_tape *T = tg_tape_new();
    const double big[4] = {1e4, 0, -1e4, 1e4 - 1};
    struct tg_tensor *z = mat(1, (int64_t[]){4}, big, true), *z32 = tg_tensor_to(z, TG_F32);
    struct tg_tensor *y = tg_tensor_scalar(TG_F64, 3);
    /* term = log(e^0 + e^-1) + 1e4 - (1e4 - 1) = log1p(e^-1) + 1 */
    struct tg_tensor *l = tg_cross_entropy(T, z, y, TG_REDUCE_SUM);
    ck_assert_double_eq_tol(tg_tensor_item(l), log1p(exp(-1)) + 1, 1e-12);
    ck_assert_double_eq_tol(tg_tensor_item(tg_cross_entropy(T, z32, y, TG_REDUCE_SUM)),
                            log1p(exp(-1)) + 1, 1e-3);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    for (int i = 0; i < 4; i++) ck_assert(isfinite(tg_tensor_grad_get(z, i)));
    ck_assert_double_eq_tol(tg_tensor_grad_get(z, 3), 1 / (1 + exp(1)) - 1, 1e-12);
    tg_tensor_free(z);
    tg_tensor_free(z32);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_cross_entropy_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *z = mat(2, SZ, Z, true);
    struct tg_tensor *bad = mat(1, SY, (const double[]){2, 4, 0}, false);
    ck_assert_ptr_null(tg_cross_entropy(T, z, bad, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_str_eq(tg_last_error(), "cross_entropy: label 4 at index 1 is outside 0..3");
    tg_tensor_set(bad, 1, -1);
    ck_assert_ptr_null(tg_cross_entropy(T, z, bad, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    tg_tensor_set(bad, 1, 1.5);
    ck_assert_ptr_null(tg_multi_margin(T, z, bad, 1, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_tensor_set(bad, 1, NAN);
    ck_assert_ptr_null(tg_cross_entropy(T, z, bad, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_ptr_null(tg_cross_entropy_idx(T, z, (const int64_t[]){0, 1, 9}, 3, TG_REDUCE_SUM));
    ck_assert_int_eq(tg_last_status(), TG_ERR_RANGE);
    ck_assert_ptr_null(tg_cross_entropy_idx(T, z, (const int64_t[]){0, 1}, 2, TG_REDUCE_SUM));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    struct tg_tensor *y4 = tg_tensor_zeros(TG_F64, 1, (int64_t[]){4});
    ck_assert_ptr_null(tg_cross_entropy(T, z, y4, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "cross_entropy: shapes (3,4) and (4) do not match (labels "
                                      "need the logits' shape without the class axis)");
    ck_assert_ptr_null(tg_cross_entropy_probs(T, z, y4, TG_REDUCE_MEAN));
    ck_assert_str_eq(tg_last_error(), "cross_entropy_probs: shapes (3,4) and (4) differ");
    ck_assert_ptr_null(tg_cross_entropy(T, z, y4, (enum tg_reduction)7));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    /* a mean over zero samples has no value */
    struct tg_tensor *e = tg_tensor_zeros(TG_F64, 2, (int64_t[]){0, 4});
    struct tg_tensor *ey = tg_tensor_zeros(TG_F64, 1, (int64_t[]){0});
    ck_assert_ptr_null(tg_cross_entropy(T, e, ey, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_double_eq(tg_tensor_item(tg_cross_entropy(T, e, ey, TG_REDUCE_SUM)), 0);
    tg_tensor_free(e);
    tg_tensor_free(ey);
    tg_tensor_free(y4);
    tg_tensor_free(bad);
    tg_tensor_free(z);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_multi_margin)
{
    static const double m1_mean[] = {0.3499999999999999};
    static const double m1_none[] = {0.0, 0.7999999999999999, 0.25};
    static const double m07_mean[] = {0.24999999999999997};
    static const double m07_none[] = {0.0, 0.6499999999999999, 0.09999999999999998};
    static const double g_sum[] = {0.0, 0.0,  0.0, 0.0,  -0.5, 0.25,
                                   0.0, 0.25, 0.0, 0.25, 0.25, -0.5};
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *z = mat(2, SZ, Z, true), *y = mat(1, SY, Y, false);
    EXPECT_VALUES(tg_multi_margin(T, z, y, 1.0, TG_REDUCE_MEAN), m1_mean, 1e-14);
    EXPECT_VALUES(tg_multi_margin(T, z, y, 1.0, TG_REDUCE_NONE), m1_none, 1e-14);
    EXPECT_VALUES(tg_multi_margin(T, z, y, 0.7, TG_REDUCE_MEAN), m07_mean, 1e-14);
    EXPECT_VALUES(tg_multi_margin(T, z, y, 0.7, TG_REDUCE_NONE), m07_none, 1e-14);
    ck_assert_int_eq(tg_backward(tg_multi_margin(T, z, y, 1.0, TG_REDUCE_SUM), NULL), TG_OK);
    EXPECT_GRAD(z, g_sum, 1e-14);
    ck_assert_ptr_null(tg_multi_margin(T, z, y, INFINITY, TG_REDUCE_SUM));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    tg_tensor_free(z);
    tg_tensor_free(y);
    tg_tape_free(T);
}
END_TEST

/*   b = torch.tensor([-100.,-2.,0.,0.5,3.,100.], dtype=d, requires_grad=True)
 *   bt = torch.tensor([0.,1.,0.5,0.2,1.,0.], dtype=d)
 *   F.binary_cross_entropy_with_logits(b,bt,reduction=r); ....backward() (mean); b.grad
 * (PyTorch prints 0 for the first term, log1p(e^-100) = 3.7e-44: equal within tol) */
START_TEST(test_bce_logits)
{
    static const double mean[] = {17.290456587892795}, sum[] = {103.74273952735678};
    static const double none[] = {
        0.0,  2.1269280110429727, 0.6931471805599453, 0.8740769841801067, 0.048587351573741965,
        100.0};
    static const double g_mean[] = {
        6.200126626701392e-45, -0.14679951299631375,  0.0,
        0.07040988853364243,   -0.007904312196261106, 0.16666666666666666};
    struct tg_tape *T = tg_tape_new();
    int64_t s[1] = {6};
    struct tg_tensor *b = mat(1, s, (const double[]){-100, -2, 0, 0.5, 3, 100}, true);
    struct tg_tensor *t = mat(1, s, (const double[]){0, 1, 0.5, 0.2, 1, 0}, false);
    struct tg_tensor *l = tg_bce_logits(T, b, t, TG_REDUCE_MEAN);
    EXPECT_VALUES(l, mean, 1e-14);
    EXPECT_VALUES(tg_bce_logits(T, b, t, TG_REDUCE_SUM), sum, 1e-14);
    EXPECT_VALUES(tg_bce_logits(T, b, t, TG_REDUCE_NONE), none, 1e-14);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    EXPECT_GRAD(b, g_mean, 1e-14);
    tg_tensor_free(b);
    tg_tensor_free(t);
    tg_tape_free(T);
}
END_TEST

/*   m1 = torch.tensor([[1.,2.],[3.,-4.]], dtype=d, requires_grad=True)
 *   m2 = torch.tensor([[0.5,2.5],[1.,-1.]], dtype=d)
 *   F.mse_loss(m1,m2,reduction=r); F.mse_loss(m1,m2).backward(); m1.grad
 *   hs = torch.tensor([2.,0.5,-0.3,-1.5,0.2], dtype=d, requires_grad=True)
 *   hy = torch.tensor([1.,1.,1.,-1.,-1.], dtype=d)
 *   h = torch.clamp(1-hy*hs, min=0); h; h.mean(); h.mean().backward(); hs.grad
 *   lw = torch.tensor([1.,-2.,0.5,3.], dtype=d); 0.5*(lw**2).sum() */
START_TEST(test_mse_hinge_l2)
{
    static const double mse_mean[] = {3.375}, mse_sum[] = {13.5}, mse_none[] = {0.25, 0.25, 4, 9};
    static const double mse_g[] = {0.25, -0.25, 1.0, -1.5}, mse_gt[] = {-0.25, 0.25, -1.0, 1.5};
    static const double h_none[] = {0.0, 0.5, 1.3, 0.0, 1.2}, h_mean[] = {0.6};
    static const double h_g[] = {0.0, -0.2, -0.2, 0.0, 0.2}, l2[] = {7.125};
    struct tg_tape *T = tg_tape_new();
    int64_t s[2] = {2, 2}, hs[1] = {5}, ls[1] = {4};
    struct tg_tensor *p = mat(2, s, (const double[]){1, 2, 3, -4}, true);
    struct tg_tensor *t = mat(2, s, (const double[]){0.5, 2.5, 1, -1}, true);
    struct tg_tensor *l = tg_mse(T, p, t, TG_REDUCE_MEAN);
    EXPECT_VALUES(l, mse_mean, 1e-15);
    EXPECT_VALUES(tg_mse(T, p, t, TG_REDUCE_SUM), mse_sum, 1e-15);
    EXPECT_VALUES(tg_mse(T, p, t, TG_REDUCE_NONE), mse_none, 1e-15);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    EXPECT_GRAD(p, mse_g, 1e-15);
    EXPECT_GRAD(t, mse_gt, 1e-15); /* by symmetry of (p - t)^2 */
    struct tg_tensor *sc = mat(1, hs, (const double[]){2, 0.5, -0.3, -1.5, 0.2}, true);
    struct tg_tensor *y = mat(1, hs, (const double[]){1, 1, 1, -1, -1}, false);
    EXPECT_VALUES(tg_hinge(T, sc, y, TG_REDUCE_NONE), h_none, 1e-15);
    l = tg_hinge(T, sc, y, TG_REDUCE_MEAN);
    EXPECT_VALUES(l, h_mean, 1e-15);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    EXPECT_GRAD(sc, h_g, 1e-15);
    struct tg_tensor *w = mat(1, ls, (const double[]){1, -2, 0.5, 3}, true);
    l = tg_l2_penalty(T, w);
    EXPECT_VALUES(l, l2, 1e-15);
    ck_assert_int_eq(tg_backward(l, NULL), TG_OK);
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_grad_get(w, i), tg_tensor_get(w, i));
    /* errors: shapes named, labels checked */
    ck_assert_ptr_null(tg_mse(T, p, sc, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "mse: shapes (2,2) and (5) differ");
    tg_tensor_set(y, 2, 0);
    ck_assert_ptr_null(tg_hinge(T, sc, y, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    ck_assert_str_eq(tg_last_error(), "hinge: label 0 at index 2 is not -1 or +1");
    struct tg_tensor *p32 = tg_tensor_to(p, TG_F32);
    ck_assert_ptr_null(tg_mse(T, p32, t, TG_REDUCE_MEAN));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    tg_tensor_free(p32);
    tg_tensor_free(p);
    tg_tensor_free(t);
    tg_tensor_free(sc);
    tg_tensor_free(y);
    tg_tensor_free(w);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_dropout_train)
{
    enum { N = 20000 };
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_ones(TG_F64, 2, (int64_t[]){100, N / 100});
    tg_tensor_set_requires_grad(x, true);
    struct tg_rng rng, copy;
    tg_rng_seed(&rng, 99);
    copy = rng;
    struct tg_tensor *y = tg_dropout(T, x, 0.25, true, &rng);
    ck_assert_ptr_nonnull(y);
    int64_t kept = 0;
    for (int64_t i = 0; i < N; i++) {
        double v = tg_tensor_get(y, i);
        /* element i is kept when the i-th uniform draw is >= p */
        bool keep = tg_rng_uniform(&copy) >= 0.25;
        ck_assert_double_eq(v, keep ? 1 / 0.75 : 0);
        kept += keep;
    }
    /* the generator advanced by exactly N draws */
    ck_assert(memcmp(&rng, &copy, sizeof rng) == 0);
    /* Bernoulli(0.75) over 20000 draws: sd 0.003, the bound is ~6.5 sd */
    ck_assert(fabs((double)kept / N - 0.75) < 0.02);
    /* backward applies the recorded mask: d sum(y) / dx = y / x = y */
    ck_assert_int_eq(tg_backward(tg_sum(T, y), NULL), TG_OK);
    for (int64_t i = 0; i < N; i++)
        ck_assert_double_eq(tg_tensor_grad_get(x, i), tg_tensor_get(y, i));
    /* a generator seeded alike gives the same mask */
    struct tg_rng again;
    tg_rng_seed(&again, 99);
    struct tg_tensor *y2 = tg_dropout(T, x, 0.25, true, &again);
    for (int64_t i = 0; i < N; i++) ck_assert_double_eq(tg_tensor_get(y2, i), tg_tensor_get(y, i));
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

START_TEST(test_dropout_identity_and_errors)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = mat(2, SX, X, true);
    struct tg_rng rng, before;
    tg_rng_seed(&rng, 5);
    before = rng;
    struct tg_tensor *e = tg_dropout(T, x, 0.9, false, &rng), *z = tg_dropout(T, x, 0, true, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(z);
    ck_assert(memcmp(&rng, &before, sizeof rng) == 0); /* nothing drawn */
    for (int i = 0; i < 6; i++) {
        ck_assert_double_eq(tg_tensor_get(e, i), X[i]);
        ck_assert_double_eq(tg_tensor_get(z, i), X[i]);
    }
    ck_assert_int_eq(tg_backward(tg_sum(T, e), NULL), TG_OK);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 1);
    const double bad_p[] = {1, -0.1, 1.5, NAN};
    for (int k = 0; k < 4; k++) {
        ck_assert_ptr_null(tg_dropout(T, x, bad_p[k], true, &rng));
        ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
        ck_assert_ptr_null(tg_dropout(T, x, bad_p[k], false, NULL));
        ck_assert_int_eq(tg_last_status(), TG_ERR_VALUE);
    }
    ck_assert_str_eq(tg_last_error(), "dropout: p = nan is outside [0, 1)");
    ck_assert_ptr_null(tg_dropout(T, x, 0.5, true, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_clear_error();
    ck_assert_ptr_null(tg_dropout(T, NULL, 0.5, true, &rng));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NULL);
    tg_tensor_free(x);
    tg_tape_free(T);
}
END_TEST

/* tg_linear takes backward's buffer g in forward; when the tape cannot give it,
 * backward works by blocks without it. Failing each allocation in turn (one at
 * a time), every run that records and sweeps must give the unfailed results:
 * gradients (tg_backward), and W, b updated in place (tg_backward_apply, where
 * the update is folded into the GEMM). */
enum { LB = 40, LIN = 7, LOUT = 300 }; /* y (40, 300): larger than a tape chunk */

/* One run; with fail > 0, the fail-th allocation after the setup fails. */
static bool linear_run(struct tg_tensor *const src[3], bool apply, long fail, double *res)
{
    struct tg_tensor *p[3];
    for (int k = 0; k < 3; k++) {
        p[k] = tg_tensor_copy(src[k]);
        tg_tensor_set_requires_grad(p[k], true);
    }
    struct tg_tape *T = tg_tape_new();
    tg_clear_error();
    if (fail > 0) failalloc_arm(fail, false);
    struct tg_tensor *y = tg_linear(T, p[0], p[1], p[2], TG_ACT_RELU);
    struct tg_tensor *loss = tg_sum(T, tg_mul(T, y, y));
    struct tg_apply list[2] = {{p[1], -0.1, 0.9}, {p[2], -0.1, 0.9}};
    bool ok =
        loss && (apply ? tg_backward_apply(loss, NULL, list, 2) : tg_backward(loss, NULL)) == TG_OK;
    failalloc_disarm();
    tg_set_allocator(NULL);
    int64_t at = 0;
    for (int k = 0; ok && k < 3; k++)
        for (int64_t i = 0; i < tg_tensor_numel(p[k]); i++)
            res[at++] = apply && k > 0 ? tg_tensor_get(p[k], i) : tg_tensor_grad_get(p[k], i);
    for (int k = 0; k < 3; k++) tg_tensor_free(p[k]);
    tg_tape_free(T);
    return ok;
}

START_TEST(test_linear_without_buffer)
{
    bool apply = _i;
    struct tg_rng rng;
    tg_rng_seed(&rng, 5);
    struct tg_tensor *src[3] = {tg_tensor_uniform(TG_F64, 2, (int64_t[]){LB, LIN}, &rng, -1, 1),
                                tg_tensor_uniform(TG_F64, 2, (int64_t[]){LOUT, LIN}, &rng, -1, 1),
                                tg_tensor_uniform(TG_F64, 1, (int64_t[]){LOUT}, &rng, -1, 1)};
    enum { N = LB * LIN + LOUT * LIN + LOUT };
    static double want[N], got[N];
    ck_assert(linear_run(src, apply, 0, want));
    int survived = 0; /* runs that succeeded although an allocation failed */
    for (long n = 1; n < 60; n++) {
        bool ok = linear_run(src, apply, n, got);
        if (!ok) {
            ck_assert_int_ne(tg_last_status(), TG_OK);
            continue;
        }
        survived += failalloc_failures > 0;
        ck_assert_int_eq(tg_last_status(), TG_OK); /* a run that worked reports no failure */
        for (int i = 0; i < N; i++)
            ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])),
                          "failing allocation %ld: [%d] %.17g vs %.17g", n, i, got[i], want[i]);
    }
    ck_assert_int_gt(survived, 0);
    for (int k = 0; k < 3; k++) tg_tensor_free(src[k]);
}
END_TEST

static Suite *nnops_suite(void)
{
    Suite *s = suite_create("nnops");
    TCase *tc = tcase_create("softmax");
    tcase_add_test(tc, test_softmax_values);
    tcase_add_test(tc, test_softmax_grad);
    tcase_add_test(tc, test_softmax_f32);
    tcase_add_test(tc, test_softmax_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("losses");
    tcase_add_test(tc, test_cross_entropy_labels);
    tcase_add_test(tc, test_cross_entropy_probs);
    tcase_add_test(tc, test_cross_entropy_stable);
    tcase_add_test(tc, test_cross_entropy_errors);
    tcase_add_test(tc, test_multi_margin);
    tcase_add_test(tc, test_bce_logits);
    tcase_add_test(tc, test_mse_hinge_l2);
    suite_add_tcase(s, tc);
    tc = tcase_create("linear");
    tcase_add_loop_test(tc, test_linear_without_buffer, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("dropout");
    tcase_add_test(tc, test_dropout_train);
    tcase_add_test(tc, test_dropout_identity_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tg_test_run_suite(nnops_suite());
}
