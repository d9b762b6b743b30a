#!/usr/bin/env python3
"""Writes docs/api.md from the public headers: each header's purpose block, then every
declaration with the comment above it, in header order.

    python3 scripts/gen_api.py            # rewrite docs/api.md
    python3 scripts/gen_api.py --check    # exit 1 if docs/api.md is out of date
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADERS = ["tapegrad.h", "status.h", "tensor.h", "tape.h", "ops.h", "ops_linalg.h",
           "ops_shape.h", "ops_nn.h", "ops_conv.h", "ops_norm.h", "gradcheck.h", "check.h", "jacobian.h", "graph.h",
           "trace.h", "params.h", "checkpoint.h", "dataset.h", "nn.h", "model.h", "grad.h",
           "hook.h", "ops_grad.h", "custom_op.h",
           "recompute.h", "threads.h", "dist.h"]


def strip_comment(c):
    lines = c.strip()[2:-2].split("\n")
    out = [re.sub(r"^\s*\* ?", "", l).rstrip() for l in lines]
    out = [l[1:] if l.startswith(" ") and not l.startswith("  ") else l for l in out]
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def items(text):
    """(comment, declaration) pairs of the top-level declarations in text, read line
    by line: a comment block at depth 0 attaches to the declaration that follows;
    a declaration runs until a ';' at brace depth 0. Preprocessor lines are skipped."""
    lines = text.split("\n")
    i, depth, comment, decl = 0, 0, None, []
    while i < len(lines):
        line = lines[i]
        st = line.strip()
        if not decl and st.startswith("#"):
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = lines[i]
            i += 1
            continue
        if not decl and st.startswith("/*"):
            block = [line]
            while "*/" not in lines[i] and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            comment = "\n".join(block)
            i += 1
            continue
        if not decl and (not st or st in ("}", 'extern "C" {')):
            if not st:
                comment = comment  # a blank line keeps the comment for what follows
            i += 1
            continue
        decl.append(line)
        depth += line.count("{") - line.count("}")
        if depth <= 0 and st.endswith(";"):
            d = "\n".join(decl)
            if not re.fullmatch(r"\s*struct \w+;\s*", d):
                yield (strip_comment(comment) if comment else "", d)
            decl, comment, depth = [], None, 0
        i += 1


def main():
    out = ["# API reference", "",
           "Generated from the comments in `include/tapegrad/*.h` by `scripts/gen_api.py`;",
           "do not edit by hand (`meson test api-doc` fails when it is out of date).", ""]
    for h in HEADERS:
        p = ROOT / "include" / "tapegrad" / h
        if not p.exists():
            continue
        text = p.read_text()
        first = re.match(r"\s*(/\*.*?\*/)", text, re.S)
        out += ["## `tapegrad/%s`" % h, ""]
        if first:
            out += [strip_comment(first.group(1)), ""]
            text = text[first.end():]
        for comment, decl in items(text):
            out += ["```c", decl.strip(), "```", ""]
            if comment:
                out += [comment, ""]
    doc = "\n".join(out).rstrip() + "\n"
    target = ROOT / "docs" / "api.md"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != doc:
            print("docs/api.md is out of date: run python3 scripts/gen_api.py")
            return 1
        print("docs/api.md is up to date")
        return 0
    target.write_text(doc)
    print("wrote", target)
    return 0


sys.exit(main())
