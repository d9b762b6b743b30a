#!/usr/bin/python3
"""bench/peer_ddp.py - W8's PyTorch peer (../shared/BENCHMARKS.md): W1's MLP
784-512-512-10 (ReLU, cross-entropy mean, f32, SGD lr 0.01) under
DistributedDataParallel with the Gloo backend, 2 processes x 1 thread on
127.0.0.1, a global batch of 256 (128 rows per process), the same steps as
bench/w8_dist.c.

    bench/peer_ddp.py [--reps N] [--warmup N] [--procs P] [--dir DIR]

--dir DIR: start from DIR/init.bin and train on DIR/x.bin, DIR/y.bin (written by
`w8_dist --dir DIR`: the same initial weights and batches as tapegrad), and write
DIR/final_ddp.bin after the last step, so that bench/run can compare parameters.
Without it, PyTorch's own initialisation and random data.
Prints (process 0):
    PEER workload=w8 procs=2 median_ms=... samples_ms=...
"""
import argparse
import os
import socket
import statistics
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

GLOBAL, POOL, N_IN, N_OUT = 256, 20, 784, 10


def model():
    return torch.nn.Sequential(torch.nn.Linear(N_IN, 512), torch.nn.ReLU(),
                               torch.nn.Linear(512, 512), torch.nn.ReLU(),
                               torch.nn.Linear(512, N_OUT))


def load(net, path):
    """Sets the parameters from a flat f32 file in tapegrad's order (weight (out, in),
    then bias, per layer), which is also net.parameters()' order."""
    flat = torch.from_numpy(np.fromfile(path, dtype=np.float32))
    k = 0
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(flat[k:k + p.numel()].view_as(p))
            k += p.numel()
    assert k == flat.numel(), f"{path}: {flat.numel()} values, the model has {k}"


def worker(rank, args, port):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    torch.manual_seed(1)
    net = model()
    if args.dir:
        load(net, os.path.join(args.dir, "init.bin"))
        X = torch.from_numpy(np.fromfile(os.path.join(args.dir, "x.bin"), dtype=np.float32))
        Y = torch.from_numpy(np.fromfile(os.path.join(args.dir, "y.bin"), dtype=np.int64))
        X = X.view(GLOBAL * POOL, N_IN)
    else:
        X = torch.rand(GLOBAL * POOL, N_IN)
        Y = torch.randint(0, N_OUT, (GLOBAL * POOL,))
    ddp = torch.nn.parallel.DistributedDataParallel(net)  # broadcasts rank 0's weights
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    rows = GLOBAL // args.procs
    times = []
    for i in range(-args.warmup, args.reps):
        b = (i + args.warmup) % POOL
        x = X[b * GLOBAL + rank * rows:b * GLOBAL + (rank + 1) * rows]
        y = Y[b * GLOBAL + rank * rows:b * GLOBAL + (rank + 1) * rows]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(ddp(x), y)
        loss.backward()  # DDP all-reduces (averages) gradient buckets during backward
        opt.step()
        if i >= 0:
            times.append(1e3 * (time.perf_counter() - t0))
    if rank == 0:
        print(f"PEER workload=w8 procs={args.procs} reps={args.reps} "
              f"median_ms={statistics.median(times):.4f} "
              f"samples_ms={','.join(f'{t:.4f}' for t in times)}", flush=True)
        if args.dir:
            flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
            flat.numpy().astype(np.float32).tofile(os.path.join(args.dir, "final_ddp.bin"))
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    mp.spawn(worker, args=(args, free_port()), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
