#!/usr/bin/env python3
"""Checks three rules of docs/design.md that a compiler does not see, and prints each
place that breaks one (exit 1 if any):

- every function of the installed headers has a definition a reader can grep: a line
  that starts its definition (`type name(` at the start of a line, not a macro) in
  some .c file of the library (engine/, ops/, nn/);
- no library or program code includes anything from tests/;
- code comments of the library hold no measurements or benchmark history
  (W1..W6 figures, "docs/performance.md", per-node nanoseconds, percentages): those
  belong in docs/performance.md and commit messages.

    python3 scripts/check_layout.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIB = ["engine", "ops", "nn", "dist"]
PROGRAMS = ["cli", "examples", "bench", "gradcases"]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def public_functions():
    names = set()
    for h in (ROOT / "include" / "tapegrad").glob("*.h"):
        text = strip_comments(h.read_text())
        text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
        text = re.sub(r"typedef[^;]*;", " ", text)  # function-pointer types declare no function
        for m in re.finditer(r"\b(tg_\w+)\s*\((?!\s*\*)[^;{]*?\)\s*(?:__attribute__\(\(.*?\)\)\s*)?;", text,
                             flags=re.S):
            names.add(m.group(1))
    return names


def sources(dirs, exts=(".c", ".h", ".inc")):
    for d in dirs:
        for p in sorted((ROOT / d).rglob("*")):
            if p.suffix in exts and p.is_file():
                yield p


def main():
    bad = []
    defined = set()
    for p in sources(LIB, (".c",)):
        for line in p.read_text().split("\n"):
            m = re.match(r"^[A-Za-z_][\w\s\*]*?\b(tg_\w+)\s*\(", line)
            if m and not line.rstrip().endswith(";"):
                defined.add(m.group(1))
    for name in sorted(public_functions() - defined):
        bad.append(f"{name}: declared in include/tapegrad/ but no line of engine/, ops/ or nn/ "
                   "starts its definition (a macro hides it?)")
    test_headers = {h.name for h in (ROOT / "tests").glob("*.h")}
    for p in sources(LIB + PROGRAMS):
        for k, line in enumerate(p.read_text().split("\n"), 1):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            local = (p.parent / inc).exists()
            if "tests/" in inc or (inc in test_headers and not local):
                bad.append(f"{p.relative_to(ROOT)}:{k}: includes test code: {line.strip()}")
    hist = re.compile(r"\bW[1-6]\b|performance\.md|\bns (per|/) ?node|\d+(\.\d+)? ?% (fewer|more|faster|slower)"
                      r"|\b(fell|rose) (to|from) ")
    for p in sources(LIB):
        text = p.read_text()
        for m in re.finditer(r"/\*.*?\*/|//[^\n]*", text, flags=re.S):
            if hist.search(m.group(0)):
                k = text.count("\n", 0, m.start()) + 1
                bad.append(f"{p.relative_to(ROOT)}:{k}: a measurement or history in a comment: "
                           f"{hist.search(m.group(0)).group(0)!r}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} place(s) break the layout rules (docs/design.md)")
        return 1
    print("layout: definitions greppable, no test code included, no measurements in comments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
