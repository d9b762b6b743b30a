#!/usr/bin/python3
"""bench/peer_torch_cnn.py - the PyTorch peer of W7 (../shared/BENCHMARKS.md "W7"): a
LeNet-style CNN training step, NCHW f32, batch 128, 28x28x1 inputs; conv 1->32 3x3 pad 1,
ReLU, max-pool 2; conv 32->64 3x3 pad 1, ReLU, max-pool 2; linear 3136->128 ReLU; linear
128->10; softmax cross-entropy (mean); SGD lr 0.01. The network of bench/w7_cnn.c.

Prints one line that bench/run parses:
    PEER workload=w7 impl=torch threads=<n> torch_threads=<t> blas_threads=<b> reps=<r>
         median_ms=<m> loss=<l> samples_ms=<a>,<b>,...
Thread settings as bench/peer_torch.py: --torch-threads (torch.set_num_threads and
OMP_NUM_THREADS) and --blas-threads (OPENBLAS_NUM_THREADS), set before torch is imported;
both default to --threads. --serve: timed steps in batches asked for on stdin.
"""
import argparse
import os

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--threads", type=int, default=1)
p.add_argument("--torch-threads", type=int, default=None)
p.add_argument("--blas-threads", type=int, default=None)
p.add_argument("--reps", type=int, default=60)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--serve", action="store_true")
ARGS = p.parse_args()
ARGS.torch_threads = ARGS.torch_threads or ARGS.threads
ARGS.blas_threads = ARGS.blas_threads or ARGS.threads
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.torch_threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import serve  # noqa: E402  (bench/serve.py, next to this script)

torch.set_num_threads(ARGS.torch_threads)


def lenet():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def main():
    pool = 8
    g = torch.Generator().manual_seed(7)
    xs = torch.rand(pool, 128, 1, 28, 28, generator=g)
    ys = torch.randint(0, 10, (pool, 128), generator=g)
    torch.manual_seed(7)
    model = lenet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    last = [0.0]

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xs[i % pool]), ys[i % pool])
        loss.backward()
        opt.step()
        last[0] = loss.item()

    samples = serve.time_steps(step, ARGS.reps, ARGS.warmup, ARGS.serve)
    s = sorted(samples)
    n = len(s)
    med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    print(f"PEER workload=w7 impl=torch threads={ARGS.threads} torch_threads={ARGS.torch_threads} "
          f"blas_threads={ARGS.blas_threads} reps={n} median_ms={med:.4f} loss={last[0]:.4f} "
          "samples_ms=" + ",".join(f"{x:.4f}" for x in samples), flush=True)


if __name__ == "__main__":
    main()
