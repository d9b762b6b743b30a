#!/usr/bin/python3
"""bench/peer_micro.py - a pure-Python scalar autograd, the peer of W3 and W4.

A minimal reverse-mode engine over Python floats, in the style of micrograd (written
for this benchmark): each Value holds a number, a gradient, its inputs and a closure
that adds its vector-Jacobian product into the inputs' gradients. Backward sorts the
graph topologically (iteratively, so the 30,000-node chain of W4 does not hit the
recursion limit) and runs the closures in reverse.

    peer_micro.py w3 [--steps N] [--warmup N]   two-moons MLP 2-16-16-1, per SGD step
    peer_micro.py w4 [--reps N]    x <- tanh(x*1.0001 + 0.0001), 10,000 times, backward

Prints one line per result, like peer_torch.py:
    PEER workload=<w> impl=micro threads=1 reps=<r> median_ms=<m> ... samples_ms=...
Nodes are counted as Value objects created during one step (constants included, as
the engine creates a Value for every plain number that meets a Value).
"""
import argparse
import math
import random
import time


class Value:
    """A scalar node: data, grad, the inputs it was computed from, and its backward."""
    __slots__ = ("data", "grad", "_inputs", "_backward")
    created = 0

    def __init__(self, data, inputs=()):
        Value.created += 1
        self.data = data
        self.grad = 0.0
        self._inputs = inputs
        self._backward = None

    @staticmethod
    def lift(x):
        return x if isinstance(x, Value) else Value(float(x))

    def __add__(self, other):
        other = Value.lift(other)
        out = Value(self.data + other.data, (self, other))

        def backward():  # d(a+b) = da + db
            self.grad += out.grad
            other.grad += out.grad
        out._backward = backward
        return out

    def __mul__(self, other):
        other = Value.lift(other)
        out = Value(self.data * other.data, (self, other))

        def backward():  # d(ab) = b da + a db
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,))

        def backward():  # relu'(x) = [x > 0]
            if out.data > 0:
                self.grad += out.grad
        out._backward = backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))

        def backward():  # tanh'(x) = 1 - tanh(x)^2
            self.grad += (1.0 - t * t) * out.grad
        out._backward = backward
        return out

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-Value.lift(other))

    def __rsub__(self, other):
        return Value.lift(other) + (-self)

    def backward(self):
        """Topological order by an iterative depth-first search, then the chain rule."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
                continue
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.append((v, True))
            for u in v._inputs:
                if id(u) not in seen:
                    stack.append((u, False))
        self.grad = 1.0
        for v in reversed(order):
            if v._backward:
                v._backward()


class Neuron:
    def __init__(self, n_in, rng, nonlin):
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_in)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = self.b
        for wi, xi in zip(self.w, x):
            act = act + wi * xi
        return act.relu() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, sizes, rng):
        self.layers = [[Neuron(sizes[i], rng, i < len(sizes) - 2) for _ in range(sizes[i + 1])]
                       for i in range(len(sizes) - 1)]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def make_moons(n, noise, rng):
    """Two interleaved half circles (as in sklearn's make_moons): upper moon -1, lower +1."""
    n_out = n // 2
    n_in = n - n_out
    xs, ys = [], []
    for i in range(n):
        outer = i < n_out
        t = math.pi * (i / (n_out - 1) if outer else (i - n_out) / (n_in - 1))
        x0 = math.cos(t) if outer else 1.0 - math.cos(t)
        x1 = math.sin(t) if outer else 0.5 - math.sin(t)
        xs.append((x0 + noise * rng.gauss(0, 1), x1 + noise * rng.gauss(0, 1)))
        ys.append(-1.0 if outer else 1.0)
    return xs, ys


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def report(workload, samples, **extra):
    fields = [f"PEER workload={workload} impl=micro threads=1",
              f"reps={len(samples)} median_ms={median(samples):.4f}"]
    fields += [f"{k}={v}" for k, v in extra.items()]
    fields.append("samples_ms=" + ",".join(f"{s:.4f}" for s in samples))
    print(" ".join(fields), flush=True)


def run_w3(steps, warmup):
    """SVM max-margin loss + 1e-4 L2, SGD lr = 1.0 - 0.9 k / 100, one sample per step.

    The first steps are faster than the steady state (Python's cyclic garbage collector
    has less to scan), so `warmup` steps train untimed before `steps` timed ones."""
    rng = random.Random(1337)
    xs, ys = make_moons(100, 0.1, rng)
    model = MLP([2, 16, 16, 1], rng)
    params = model.parameters()
    samples, nodes = [], 0
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        Value.created = 0
        scores = [model([Value(a), Value(b)]) for a, b in xs]
        losses = [(1 + -y * s).relu() for y, s in zip(ys, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        loss = data_loss + 1e-4 * sum(p * p for p in params)
        nodes = Value.created
        for p in params:
            p.grad = 0.0
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in params:
            p.data -= lr * p.grad
        if k >= warmup:
            samples.append((time.perf_counter() - t0) * 1e3)
        acc = sum((s.data > 0) == (y > 0) for y, s in zip(ys, scores)) / len(ys)
    med = median(samples)
    report("w3", samples, n_nodes=nodes, ns_per_node=f"{med * 1e6 / nodes:.1f}",
           accuracy=f"{acc:.2f}", loss=f"{loss.data:.6f}")


def run_w4(reps, iters=10000):
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        x = Value(0.5)
        y = x
        for _ in range(iters):
            y = (y * 1.0001 + 0.0001).tanh()
        y.backward()
        samples.append((time.perf_counter() - t0) * 1e3)
    med = median(samples)
    # 3 primitive ops per iteration, as for the other engines (constants not counted).
    report("w4", samples, n_nodes=3 * iters, ns_per_node=f"{med * 1e6 / (3 * iters):.1f}",
           dydx=f"{x.grad:.6e}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["w3", "w4"])
    p.add_argument("--steps", type=int, default=100, help="w3: timed SGD steps")
    p.add_argument("--warmup", type=int, default=0, help="w3: untimed SGD steps first")
    p.add_argument("--reps", type=int, default=5, help="w4: timed chains")
    a = p.parse_args()
    run_w3(a.steps, a.warmup) if a.workload == "w3" else run_w4(a.reps)
