#!/usr/bin/env python3
"""Runs the `tapegrad explain` commands that a Markdown page shows and compares their
output with the block printed under each, so the pages stay true to the program.

    python3 scripts/check_doc_commands.py build/cli/tapegrad docs/backprop.md ...

A command is an indented line `$ tapegrad explain ...` followed by a fenced block with
its output; a non-zero exit status is written as a last line `(exit status N)`. A
block line `...` ends the comparison (the page shows only the beginning).
"""
import re
import shlex
import subprocess
import sys


def commands(text):
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^\s+\$ (tapegrad explain .*)$", line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        k = j + 1
        while k < len(lines) and not lines[k].startswith("```"):
            k += 1
        yield i + 1, m.group(1), lines[j + 1:k]


def main():
    exe, pages = sys.argv[1], sys.argv[2:]
    checked = failed = 0
    for page in pages:
        for lineno, cmd, want in commands(open(page).read()):
            args = shlex.split(cmd)[1:]
            r = subprocess.run([exe] + args, capture_output=True, text=True)
            got = (r.stdout + r.stderr).rstrip("\n").split("\n")
            if r.returncode:
                got.append("(exit status %d)" % r.returncode)
            if "..." in want:
                want = want[:want.index("...")]
                got = got[:len(want)]
            checked += 1
            if [l.rstrip() for l in got] != [l.rstrip() for l in want]:
                failed += 1
                print("%s:%d: `%s` prints something else:" % (page, lineno, cmd))
                for a, b in zip(got + [""] * len(want), want + [""] * len(got)):
                    if a.rstrip() != b.rstrip():
                        print("  page: %r\n  now:  %r" % (b, a))
                        break
    print("%d passed, %d failed" % (checked - failed, failed))
    return 1 if failed or not checked else 0


sys.exit(main())
