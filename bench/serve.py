"""bench/serve.py - the timed-step loop of the Python peers, plain or in serve mode.

Serve mode is the protocol of bench/bench-util.h (bench/run drives it): after the
warm-up the program prints READY, then runs each "STEP k" read from stdin as k timed
steps and answers " SAMPLES=t1,...,tk"; anything else (QUIT) or the end of input ends it.
"""
import sys
import time


def time_steps(step, reps, warmup, serve, clock=time.perf_counter):
    """Calls step(i) for `warmup` untimed steps, then for up to `reps` timed ones (all of
    them, or in serve mode the batches asked for on stdin); returns ms per timed step,
    by `clock` (seconds; the wall clock, or time.process_time for CPU time).
    i counts from 0 in each phase."""
    for i in range(warmup):
        step(i)
    out = []

    def timed(k):
        for _ in range(k):
            t0 = clock()
            step(len(out))
            out.append((clock() - t0) * 1e3)

    if not serve:
        timed(reps)
        return out
    print("READY", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "STEP" or len(out) >= reps:
            break
        start = len(out)
        timed(min(int(parts[1]), reps - start))
        print(" SAMPLES=" + ",".join(f"{s:.4f}" for s in out[start:]), flush=True)
    return out
