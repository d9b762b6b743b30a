#!/usr/bin/python3
"""bench/fashion_cnn_torch.py - PyTorch's run of examples/fashion_cnn.c, for the wall-time
comparison in docs/performance.md ("W7"): the W7 network (conv 1->32 3x3 pad 1, ReLU,
max-pool 2; conv 32->64 3x3 pad 1, ReLU, max-pool 2; linear 3136->128 ReLU; linear
128->10) on Debian's Fashion-MNIST, pixels scaled to [0, 1], cross-entropy, Adam lr 1e-3
with a cosine decay stepped once per epoch (CosineAnnealingLR, T_max = epochs: the
learning rate of tapegrad's TG_LR_COSINE), batches of 128 reshuffled every epoch. Prints
`test accuracy: NN.NN%` after every epoch and the training time (the epochs without the
test passes) at the end.

Usage: fashion_cnn_torch.py [DIR] [--epochs N] [--threads N]
"""
import argparse
import gzip
import os
import time

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("dir", nargs="?", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--threads", type=int, default=1)
ARGS = p.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)


def idx(name):
    """An IDX file's array (big-endian header: magic, then one size per dimension)."""
    with gzip.open(os.path.join(ARGS.dir, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    x = torch.from_numpy(idx(f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255)
    y = torch.from_numpy(idx(f"{split}-labels-idx1-ubyte.gz").astype(np.int64))
    return x.view(-1, 1, 28, 28), y


def main():
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=ARGS.epochs)
    train_s = 0.0
    for epoch in range(ARGS.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr))
        total = 0.0
        for k in range(0, len(xtr), 128):
            b = perm[k:k + 128]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        sched.step()
        dt = time.perf_counter() - t0
        train_s += dt
        model.eval()
        with torch.no_grad():
            acc = sum((model(xte[k:k + 256]).argmax(1) == yte[k:k + 256]).sum().item()
                      for k in range(0, len(xte), 256)) / len(xte)
        print(f"epoch {epoch + 1:3d}  loss {total / len(xtr):.4f}  {dt:5.1f} s", flush=True)
        print(f"test accuracy: {100 * acc:.2f}%", flush=True)
    print(f"training time: {train_s:.1f} s for {ARGS.epochs} epochs "
          f"({train_s / ARGS.epochs:.1f} s per epoch, without the test passes)", flush=True)


if __name__ == "__main__":
    main()
