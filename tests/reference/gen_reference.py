#!/usr/bin/python3
"""Writes reference values and gradients computed by PyTorch for a fixed set of
graphs to reference.txt, which tests/check_reference.c recomputes with tapegrad.

Run from the repository root:  /usr/bin/python3 tests/reference/gen_reference.py

Format, one tensor per line:
    <case> <kind> <name> <rank> <dim>... <value>...
kind is `input` (a leaf the C side builds), `label` (a constant the graph uses, no
gradient: class indices, targets, the random weights R), `output` (the forward value)
or `grad` (d loss / d input). Cases whose names start with `hvp_` also have, for
every input, a `dir` (a random direction v_i) and an `hvp` (the Hessian-vector
product sum_j d^2 loss / d input_i d input_j v_j, by double backward). Values are
printed with 17 significant digits (f64 round trip). Every case reduces to a scalar
`loss`.
"""
import sys

import torch

torch.manual_seed(20261126)
torch.set_default_dtype(torch.float64)
lines = []


def emit(case, kind, name, t):
    t = t.detach().to(torch.float64).contiguous()
    dims = list(t.shape)
    vals = " ".join("%.17g" % v for v in t.reshape(-1).tolist())
    lines.append("%s %s %s %d %s %s" % (case, kind, name, len(dims),
                                         " ".join(str(d) for d in dims), vals))


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(tuple(shape)) * (hi - lo) + lo).requires_grad_(True)


def finish(case, inputs, loss, labels=None):
    loss.backward()
    for name, t in inputs.items():
        emit(case, "input", name, t)
    for name, t in (labels or {}).items():
        emit(case, "label", name, t)
    emit(case, "output", "loss", loss)
    for name, t in inputs.items():
        emit(case, "grad", name, t.grad)


# 1. linear + bias + relu + softmax cross-entropy (mean over the batch)
X, W, b = leaf(4, 5), leaf(3, 5), leaf(3)
y = torch.tensor([0, 2, 1, 2])
z = torch.relu(X @ W.T + b)
finish("linear_relu_xent", {"X": X, "W": W, "b": b},
       torch.nn.functional.cross_entropy(z, y), {"y": y})

# 2. batched matmul with broadcast batch dimensions: (2,1,3,4) x (5,4,2) -> (2,5,3,2)
A, B, R = leaf(2, 1, 3, 4), leaf(5, 4, 2), torch.rand(2, 5, 3, 2)
finish("batched_matmul", {"A": A, "B": B}, ((A @ B) * R).sum(), {"R": R})

# 3. log_softmax over axis 0
X, R = leaf(4, 3, lo=-3, hi=3), torch.rand(4, 3)
finish("log_softmax_axis0", {"X": X}, (torch.log_softmax(X, 0) * R).sum(), {"R": R})

# 4. slicing and concat: X[1:4, ::2] (3,3) next to X[0:3, 1::2] (3,3) -> (3,6)
X, R = leaf(5, 6), torch.rand(3, 6)
Y = torch.cat([X[1:4, ::2], X[0:3, 1::2]], dim=1)
finish("slice_concat", {"X": X}, (Y * R).sum(), {"R": R})

# 5. the divergences
P, T = leaf(6, 4), torch.rand(6, 4)
finish("mse_mean", {"P": P}, torch.nn.functional.mse_loss(P, T), {"T": T})
P = leaf(6, 4)
finish("mse_sum", {"P": P}, torch.nn.functional.mse_loss(P, T, reduction="sum"), {"T": T})
L, y = leaf(5, 7, lo=-4, hi=4), torch.tensor([6, 0, 3, 3, 1])
finish("xent_labels_sum", {"L": L},
       torch.nn.functional.cross_entropy(L, y, reduction="sum"), {"y": y})
L, Q = leaf(5, 7, lo=-4, hi=4), torch.softmax(torch.rand(5, 7) * 3, dim=1)
finish("xent_probs_mean", {"L": L}, torch.nn.functional.cross_entropy(L, Q), {"Q": Q})
L, Tb = leaf(8, lo=-5, hi=5), (torch.rand(8) > 0.5).double()
finish("bce_logits_mean", {"L": L},
       torch.nn.functional.binary_cross_entropy_with_logits(L, Tb), {"T": Tb})
S, Yb = leaf(8, lo=-2, hi=2), torch.tensor([1., -1, 1, 1, -1, -1, 1, -1])
finish("hinge_mean", {"S": S}, torch.clamp(1 - Yb * S, min=0).mean(), {"Y": Yb})
Wp = leaf(3, 4)
finish("l2_half_sum", {"W": Wp}, 0.5 * (Wp ** 2).sum())



def finish_hvp(case, inputs, loss, labels=None):
    """Loss, gradient and Hessian-vector product with respect to all inputs: the
    gradient recorded with create_graph, then the gradient of <g, v> (double
    backward) for a random direction v per input."""
    xs = list(inputs.values())
    grads = torch.autograd.grad(loss, xs, create_graph=True)
    dirs = [torch.rand(x.shape) * 2 - 1 for x in xs]
    dot = sum((g * v).sum() for g, v in zip(grads, dirs))
    hvps = torch.autograd.grad(dot, xs)
    for name, t in inputs.items():
        emit(case, "input", name, t)
    for name, t in (labels or {}).items():
        emit(case, "label", name, t)
    for name, v in zip(inputs, dirs):
        emit(case, "dir", name, v)
    emit(case, "output", "loss", loss)
    for name, g in zip(inputs, grads):
        emit(case, "grad", name, g)
    for name, h in zip(inputs, hvps):
        emit(case, "hvp", name, h)


F = torch.nn.functional
# 6. Hessian-vector products of whole graphs (tapegrad: tg_hvp over all inputs).
# A tanh MLP 4-5-2 with MSE, the data X an input too (mixed partials in X and W).
X, W1, b1, W2, b2 = leaf(6, 4), leaf(5, 4), leaf(5), leaf(2, 5), leaf(2)
T = torch.rand(6, 2) * 2 - 1
finish_hvp("hvp_tanh_mlp", {"X": X, "W1": W1, "b1": b1, "W2": W2, "b2": b2},
           F.mse_loss(F.linear(torch.tanh(F.linear(X, W1, b1)), W2, b2), T), {"T": T})
# softmax cross-entropy of a linear layer (class labels, mean over the batch)
X, W, b, y = leaf(5, 4, lo=-2, hi=2), leaf(3, 4), leaf(3), torch.tensor([2, 0, 1, 1, 2])
finish_hvp("hvp_xent_linear", {"X": X, "W": W, "b": b}, F.cross_entropy(X @ W.T + b, y),
           {"y": y})
# softmax, log-sum-exp and sigmoid / softplus along the rows
X, R = leaf(3, 5, lo=-2, hi=2), torch.rand(3, 5)
finish_hvp("hvp_softmax_mix", {"X": X},
           (torch.softmax(X, 1) * R).sum() + torch.logsumexp(X, 1).pow(2).sum()
           + (torch.sigmoid(X) * F.softplus(X)).mean(), {"R": R})
# a scalar expression of three rank-0 inputs (b > 0)
a, b, c = leaf(), leaf(lo=0.5, hi=2.0), leaf()
finish_hvp("hvp_scalar_expr", {"a": a, "b": b, "c": c},
           torch.sin(a * b) + torch.exp(c) / (b + a * a) + torch.log(b) * c
           + torch.tanh(a - c) * torch.sqrt(b) + torch.pow(b, c))

out = sys.argv[1] if len(sys.argv) > 1 else "tests/reference/reference.txt"
with open(out, "w") as f:
    f.write("# generated by tests/reference/gen_reference.py with torch %s\n" % torch.__version__)
    f.write("\n".join(lines) + "\n")
print("wrote %d tensors to %s" % (len(lines), out))
