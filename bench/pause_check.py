#!/usr/bin/python3
"""bench/pause_check.py - how long must bench/run pause between two W1 contestants?

After a batch of 2-thread GEMMs, OpenBLAS's idle worker thread spins (calling
sched_yield) before it sleeps. Part 1 measures how long: the CPU time that the
threads of a process other than the main one take after its last GEMM (from
/proc/<pid>/task, sampled every 50 ms while it waits for the next command).
Part 2 measures what that costs the next contestant: `w1_mlp` batches of 10 steps
started 5 ms and 0.3 s after a `gemm_floor` batch, in alternation over 40 rounds;
the figure is the median of the per-round ratios (short pause / long pause), with
the quartiles: the host's noise is large, so run it more than once.

Usage: bench/pause_check.py [--build DIR]   (after meson setup build && ninja -C build)
"""
import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(HERE, "run"))
spec = importlib.util.spec_from_loader("bench_run", loader)
run = importlib.util.module_from_spec(spec)
loader.exec_module(run)


def other_threads_ticks(pid):
    """Clock ticks (user + system) of every thread of pid but the main one."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    bench = os.path.join(args.build, "bench")
    common = ["--reps", "100000", "--warmup", "20"]
    floor, tg = run.Pool("gemm_floor"), run.Pool("tapegrad")
    fs = run.Server(floor, [os.path.join(bench, "gemm_floor")] + common, 2, "FLOOR")
    ts = run.Server(tg, [os.path.join(bench, "w1_mlp"), "--threads", "2"] + common, 2, "TG")
    hz = os.sysconf("SC_CLK_TCK")

    fs.batch(20)
    t0, start = time.monotonic(), other_threads_ticks(fs.p.pid)
    spin = []
    for _ in range(10):
        time.sleep(0.05)
        spin.append((time.monotonic() - t0, (other_threads_ticks(fs.p.pid) - start) / hz))
    print("SPIN " + " ".join(f"t={t:.2f}s:cpu={c:.2f}s" for t, c in spin))

    ratios = []
    for r in range(40):
        t = {}
        for pause in ((0.3, 0.005) if r % 2 else (0.005, 0.3)):
            fs.batch(10)
            time.sleep(pause)
            ts.batch(10)
            t[pause] = tg.rounds[-1]
            time.sleep(0.3)
        ratios.append(t[0.005] / t[0.3])
    q = statistics.quantiles(ratios, n=4)
    print(f"PAUSE rounds=40 short_over_long_median={statistics.median(ratios):.3f} "
          f"quartiles={q[0]:.3f},{q[2]:.3f}")
    for s in (fs, ts):
        s.finish()


if __name__ == "__main__":
    main()
