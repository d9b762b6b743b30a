#include <stdio.h>
#include <tapegrad/tapegrad.h>

int main(void)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *w = tg_tensor_scalar(TG_F64, 0.5), *x = tg_tensor_scalar(TG_F64, 2.0);
    struct tg_tensor *b = tg_tensor_scalar(TG_F64, -0.3);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_set_requires_grad(b, true);
    /* one neuron: y = tanh(w x + b), loss = (y - 1)^2 */
    struct tg_tensor *y = tg_tanh(T, tg_add(T, tg_mul(T, w, x), b));
    struct tg_tensor *loss = tg_pow_scalar(T, tg_sub_scalar(T, y, 1.0), 2);
    if (!loss || tg_backward(loss, NULL)) {
        fprintf(stderr, "error: %s\n", tg_last_error());
        return 1;
    }
    printf("loss = %.6f  dloss/dw = %.6f  dloss/db = %.6f\n", tg_tensor_item(loss),
           tg_tensor_grad_get(w, 0), tg_tensor_grad_get(b, 0));
    tg_tensor_free(w), tg_tensor_free(x), tg_tensor_free(b), tg_tape_free(T);
    return 0;
}
