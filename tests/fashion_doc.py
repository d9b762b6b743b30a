#!/usr/bin/env python3
"""Runs the Fashion-MNIST command that docs/examples.md shows with `--portable`
and compares every epoch's loss and accuracies, and the final test accuracy, with
the page; then runs it again with another thread count and expects the same
numbers (the portable kernel has one summation order). Times are not compared.

    python3 tests/fashion_doc.py build/examples/fashion_mnist docs/examples.md

Exit 77 (skipped) when the dataset is not installed.
"""
import os
import re
import shlex
import subprocess
import sys

NUMBERS = re.compile(r"^(epoch\s+\d+\s+lr \S+\s+loss \S+\s+train acc\s+\S+\s+test acc\s+\S+)"
                     r"|^(test accuracy: \S+)")


def figures(lines):
    out = []
    for line in lines:
        m = NUMBERS.match(line.strip())
        if m:
            out.append(m.group(1) or m.group(2))
    return out


def main():
    exe, page = sys.argv[1], sys.argv[2]
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        return 77
    lines = open(page).read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^\s+\$ (?:time )?\./build/examples/fashion_mnist (.*--portable.*)$", line)
        if m:
            break
    else:
        print("%s: no `./build/examples/fashion_mnist ... --portable` command" % page)
        return 1
    args = shlex.split(m.group(1))
    want = figures(lines[i + 1:i + 40])
    if len(want) < 2:
        print("%s:%d: too few figures under the command" % (page, i + 1))
        return 1
    failed = 0
    for threads in ("1", "2"):
        run = [a for a in args]
        if "--threads" in run:
            run[run.index("--threads") + 1] = threads
        else:
            run += ["--threads", threads]
        r = subprocess.run([exe] + run, capture_output=True, text=True)
        got = figures(r.stdout.split("\n"))
        if r.returncode or got != want:
            failed += 1
            print("`fashion_mnist %s` (exit %d) prints other figures than %s:%d"
                  % (" ".join(run), r.returncode, page, i + 1))
            for a, b in zip(got + [""] * len(want), want + [""] * len(got)):
                if a != b:
                    print("  page: %r\n  now:  %r" % (b, a))
                    break
    print("%d figures compared, threads 1 and 2: %s" % (len(want), "FAIL" if failed else "ok"))
    return 1 if failed else 0


sys.exit(main())
