#!/usr/bin/python3
"""bench/peer_torch.py - the PyTorch peer of the tapegrad benchmarks (docs/performance.md).

Runs one workload of ../shared/BENCHMARKS.md with PyTorch 1.13 (Debian's python3-torch)
and prints one machine-readable line per result:

    PEER workload=<w> impl=torch threads=<n> torch_threads=<t> blas_threads=<b> reps=<r>
         median_ms=<m> [extra key=value ...] samples_ms=<a>,<b>,...

Workloads: w1 (MLP 784-512-512-10 step), w4 (scalar tanh chain), w5 (MLP 32-64-64-1 step),
f (Fashion-MNIST MLP 784-256-128-10 end to end), w6 (one Hessian-vector product by double
backward, or with --mode grad the same model's gradient; --model small or f).

Thread settings: --torch-threads sets torch.set_num_threads and OMP_NUM_THREADS,
--blas-threads sets OPENBLAS_NUM_THREADS; both default to --threads. They are set in the
environment before torch is imported, which is when OpenBLAS reads them.
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["w1", "w4", "w5", "w6", "f"])
    p.add_argument("--threads", type=int, default=1, help="the thread budget being measured")
    p.add_argument("--torch-threads", type=int, default=None)
    p.add_argument("--blas-threads", type=int, default=None)
    p.add_argument("--reps", type=int, default=200, help="timed steps (w1, w5) or chains (w4)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--serve", action="store_true",
                   help="w1, w5: timed steps in batches asked for on stdin; f: one epoch "
                        "per request (bench/run)")
    p.add_argument("--epochs", type=int, default=20, help="f: training epochs")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--target", type=float, default=0.885, help="f: test accuracy to time")
    p.add_argument("--model", choices=["small", "f"], default="small",
                   help="w6: W5's MLP 32-64-64-1 (MSE, batch 16) or F's 784-256-128-10 (CE, 128)")
    p.add_argument("--mode", choices=["hvp", "grad"], default="hvp",
                   help="w6: time the Hessian-vector product or the gradient alone")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="w6: time steps by the wall clock or by the process's CPU time")
    a = p.parse_args()
    a.torch_threads = a.torch_threads or a.threads
    a.blas_threads = a.blas_threads or a.threads
    return a


ARGS = parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.torch_threads)

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import serve  # noqa: E402  (bench/serve.py, next to this script)

torch.set_num_threads(ARGS.torch_threads)


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def report(workload, samples, **extra):
    """Prints the result line; extra keys go between median_ms and the samples."""
    a = ARGS
    fields = [f"PEER workload={workload} impl=torch threads={a.threads}",
              f"torch_threads={a.torch_threads} blas_threads={a.blas_threads}",
              f"reps={len(samples)} median_ms={median(samples):.4f}"]
    fields += [f"{k}={v}" for k, v in extra.items()]
    fields.append("samples_ms=" + ",".join(f"{s:.4f}" for s in samples))
    print(" ".join(fields), flush=True)


def mlp(sizes, act):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def time_steps(step, n_batches):
    """Warm-up, then timed steps over a cycled pool (bench/serve.py: all --reps of them,
    or with --serve the batches bench/run asks for); returns ms per timed step."""
    return serve.time_steps(lambda i: step(i % n_batches), ARGS.reps, ARGS.warmup, ARGS.serve)


def run_w1():
    """MLP 784-512-512-10, ReLU, softmax CE (mean), f32, batch 128, SGD lr 0.01."""
    g = torch.Generator().manual_seed(1)
    xs = torch.rand(60, 128, 784, generator=g)
    ys = torch.randint(0, 10, (60, 128), generator=g)
    torch.manual_seed(1)
    model = mlp([784, 512, 512, 10], torch.nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xs[i]), ys[i])
        loss.backward()
        opt.step()
        return loss

    samples = time_steps(step, 60)
    report("w1", samples, loss=f"{step(0).item():.5f}")


def run_w5():
    """MLP 32-64-64-1, tanh, MSE, f32, batch 16, SGD lr 0.01."""
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(60, 16, 32, generator=g)
    ys = torch.randn(60, 16, 1, generator=g)
    torch.manual_seed(5)
    model = mlp([32, 64, 64, 1], torch.nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(xs[i]), ys[i])
        loss.backward()
        opt.step()

    report("w5", time_steps(step, 60))


def run_w6():
    """W6: one Hessian-vector product with respect to all parameters, f32: the gradient
    with create_graph=True, then torch.autograd.grad of <g, v> for a fixed random v.
    Layers as F.linear on plain parameter tensors (tanh hidden). --mode grad times the
    same model's gradient alone (torch.autograd.grad(loss, params))."""
    import resource
    small = ARGS.model == "small"
    sizes, batch, pool = ([32, 64, 64, 1], 16, 64) if small else ([784, 256, 128, 10], 128, 8)
    g = torch.Generator().manual_seed(6)
    if small:
        xs = torch.rand(pool, batch, sizes[0], generator=g) * 2 - 1
        ys = torch.rand(pool, batch, 1, generator=g) * 2 - 1
    else:
        xs = torch.rand(pool, batch, sizes[0], generator=g)
        ys = torch.randint(0, 10, (pool, batch), generator=g)
    params = []
    for i in range(len(sizes) - 1):
        a = (6.0 / (sizes[i] + sizes[i + 1])) ** 0.5  # Xavier uniform, like tapegrad's
        params.append((torch.rand(sizes[i + 1], sizes[i], generator=g) * 2 - 1) * a)
        params.append(torch.zeros(sizes[i + 1]))
    for p in params:
        p.requires_grad_(True)
    v = [torch.randn(p.shape, generator=g) for p in params]

    def loss_of(i):
        h = xs[i]
        for k in range(0, len(params), 2):
            h = F.linear(h, params[k], params[k + 1])
            if k + 2 < len(params):
                h = torch.tanh(h)
        return F.mse_loss(h, ys[i]) if small else F.cross_entropy(h, ys[i])

    def hvp(i):
        grads = torch.autograd.grad(loss_of(i), params, create_graph=True)
        dot = sum((gk * vk).sum() for gk, vk in zip(grads, v))
        return torch.autograd.grad(dot, params)

    def grad(i):
        return torch.autograd.grad(loss_of(i), params)

    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    samples = serve.time_steps(lambda i: (hvp if ARGS.mode == "hvp" else grad)(i % pool),
                               ARGS.reps, ARGS.warmup, ARGS.serve, clock)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    report("w6", samples, model=ARGS.model, mode=ARGS.mode, clock=ARGS.clock, loss=f"{loss_of(0).item():.5f}",
           peak_rss_mib=f"{rss:.1f}")


def run_w4():
    """x <- tanh(x * 1.0001 + 0.0001) 10,000 times from one rank-0 leaf, then backward."""
    iters = 10000
    x = torch.tensor(0.5, requires_grad=True)

    def chain(_):
        x.grad = None
        y = x
        for _ in range(iters):
            y = torch.tanh(y * 1.0001 + 0.0001)
        y.backward()

    # One chain is ~0.5 s here: few warm-ups and reps are plenty for a median.
    samples = time_steps(chain, 1)
    med = median(samples)
    report("w4", samples, n_nodes=3 * iters, ns_per_node=f"{med * 1e6 / (3 * iters):.1f}",
           dydx=f"{x.grad.item():.6e}")


def load_idx(path):
    """An IDX file (gzipped) as a numpy array: the MNIST family's format."""
    import gzip
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def run_f():
    """Fashion-MNIST, MLP 784-256-128-10 ReLU, CE, Adam lr 1e-3 with cosine decay, batch 128."""
    t_load = time.perf_counter()
    d = ARGS.data
    xtr = torch.from_numpy(load_idx(f"{d}/train-images-idx3-ubyte.gz").reshape(-1, 784)
                           .astype(np.float32) / 255.0)
    ytr = torch.from_numpy(load_idx(f"{d}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(load_idx(f"{d}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
                           .astype(np.float32) / 255.0)
    yte = torch.from_numpy(load_idx(f"{d}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    load_s = time.perf_counter() - t_load
    torch.manual_seed(7)
    g = torch.Generator().manual_seed(7)
    model = mlp([784, 256, 128, 10], torch.nn.ReLU)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps_per_epoch = (len(xtr) + 127) // 128
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=ARGS.epochs * steps_per_epoch)
    epoch_ms, accs, t_reach = [], [], None
    t_start = time.perf_counter()
    if ARGS.serve:  # one epoch per "STEP 1" on stdin (bench/bench-util.h's protocol)
        print("READY", flush=True)
    for ep in range(ARGS.epochs):
        if ARGS.serve:
            line = sys.stdin.readline().split()
            if len(line) != 2 or line[0] != "STEP":
                break
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for b in range(steps_per_epoch):
            idx = perm[b * 128:(b + 1) * 128]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        epoch_ms.append((time.perf_counter() - t0) * 1e3)
        accs.append(acc)
        if t_reach is None and acc >= ARGS.target:  # in serve mode: the epochs' own time
            t_reach = sum(epoch_ms) / 1e3 if ARGS.serve else time.perf_counter() - t_start
        if ARGS.serve:
            print(f" SAMPLES={epoch_ms[-1]:.4f} ACC={acc:.4f}", flush=True)
    wall_s = sum(epoch_ms) / 1e3 if ARGS.serve else time.perf_counter() - t_start
    report("f", epoch_ms, epochs=len(accs), test_acc=f"{accs[-1]:.4f}",
           best_acc=f"{max(accs):.4f}", wall_s=f"{wall_s:.2f}", load_s=f"{load_s:.2f}",
           target=ARGS.target, time_to_target_s="NA" if t_reach is None else f"{t_reach:.2f}",
           accs="/".join(f"{a:.4f}" for a in accs))


if __name__ == "__main__":
    {"w1": run_w1, "w4": run_w4, "w5": run_w5, "w6": run_w6, "f": run_f}[ARGS.workload]()
    sys.exit(0)
