#!/usr/bin/python3
"""bench/peer_numpy.py - W1 with NumPy and hand-written backprop (a peer with no graph).

MLP 784-512-512-10, ReLU, softmax cross-entropy (mean over the batch), float32, batch
128, SGD lr 0.01, a pool of 60 batches (inputs uniform [0,1), labels uniform 0..9)
cycled; --warmup untimed steps, then --reps timed ones. The matrix products go through
NumPy's BLAS (OpenBLAS on Debian); --threads sets OPENBLAS_NUM_THREADS before NumPy is
imported. Prints one line like peer_torch.py:
    PEER workload=w1 impl=numpy threads=<n> reps=<r> median_ms=<m> loss=<l> samples_ms=...
"""
import argparse
import os

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=200)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--serve", action="store_true",
                help="timed steps in batches asked for on stdin (bench/run)")
ARGS = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

import serve  # noqa: E402  (bench/serve.py, next to this script)


def init(rng, n_in, n_out):
    """Weights (n_in, n_out) uniform +-1/sqrt(n_in) like torch.nn.Linear; bias (n_out)."""
    k = 1.0 / np.sqrt(n_in)
    return [rng.uniform(-k, k, (n_in, n_out)).astype(np.float32),
            rng.uniform(-k, k, n_out).astype(np.float32)]


def step(params, x, y, lr):
    """One forward + backward + SGD update; returns the loss."""
    (w1, b1), (w2, b2), (w3, b3) = params
    n = x.shape[0]
    z1 = x @ w1 + b1                        # (B, 512)
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2 + b2                       # (B, 512)
    h2 = np.maximum(z2, 0)
    z3 = h2 @ w3 + b3                       # (B, 10)
    z3 -= z3.max(axis=1, keepdims=True)     # stable softmax
    e = np.exp(z3)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    dz3 = p                                 # dL/dz3 = (softmax - onehot) / B
    dz3[np.arange(n), y] -= 1
    dz3 /= n
    dw3, db3 = h2.T @ dz3, dz3.sum(axis=0)
    dz2 = (dz3 @ w3.T) * (z2 > 0)
    dw2, db2 = h1.T @ dz2, dz2.sum(axis=0)
    dz1 = (dz2 @ w2.T) * (z1 > 0)           # the first layer needs no input gradient
    dw1, db1 = x.T @ dz1, dz1.sum(axis=0)
    for (w, b), dw, db in zip(params, (dw1, dw2, dw3), (db1, db2, db3)):
        w -= lr * dw
        b -= lr * db
    return float(loss)


def main():
    rng = np.random.default_rng(1)
    xs = rng.random((60, 128, 784), dtype=np.float32)
    ys = rng.integers(0, 10, (60, 128))
    params = [init(rng, 784, 512), init(rng, 512, 512), init(rng, 512, 10)]
    loss = 0.0

    def one(i):
        nonlocal loss
        loss = step(params, xs[i % 60], ys[i % 60], 0.01)

    # bench/serve.py: all --reps timed steps, or with --serve the batches bench/run asks for
    samples = serve.time_steps(one, ARGS.reps, ARGS.warmup, ARGS.serve)
    s = sorted(samples)
    n = len(s)
    med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    print(f"PEER workload=w1 impl=numpy threads={ARGS.threads} reps={n} median_ms={med:.4f} "
          f"loss={loss:.5f} samples_ms=" + ",".join(f"{v:.4f}" for v in samples), flush=True)


if __name__ == "__main__":
    main()
