#!/usr/bin/env python3
"""Checks the public names of the installed headers against the naming scheme of
docs/design.md ("Naming"): every function is tg_<module>_..., the module being the one
its header declares, except op constructors (they return a struct tg_tensor * and take
the tape first), the engine's algorithms and the error/allocator calls of status.h;
every struct and enum is tg_<module>... likewise. Prints each name that breaks the
scheme and exits 1 if there is any.

    python3 scripts/check_names.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INC = ROOT / "include" / "tapegrad"

# header -> the name prefixes (after "tg_") its functions and types may use
MODULES = {
    "status.h": ["status"],
    "tensor.h": ["tensor", "dtype", "rng"],
    "tape.h": ["tape"],
    "ops.h": ["op", "tensor"],
    "ops_linalg.h": ["op", "matmul", "act"],
    "ops_shape.h": ["op"],
    "ops_nn.h": ["op"],
    "ops_conv.h": ["op", "conv", "pool"],
    "ops_norm.h": ["op", "batch_norm"],
    "ops_grad.h": ["op"],
    "gradcheck.h": ["gradcheck"],
    "check.h": ["gradcheck"],
    "jacobian.h": ["jacobian"],
    "graph.h": ["graph"],
    "trace.h": ["trace"],
    "params.h": ["params"],
    "checkpoint.h": ["checkpoint"],
    "dataset.h": ["dataset"],
    "nn.h": ["nn"],
    "model.h": ["nn"],
    "grad.h": ["grad"],
    "hook.h": ["hook"],
    "custom_op.h": ["custom_op"],
    "recompute.h": ["recompute"],
    "threads.h": ["threads"],

    "dist.h": ["dist"],
}
# named for what they compute (docs/design.md, "Naming")
ALGORITHMS = {"tg_backward", "tg_backward_apply", "tg_backward_trace", "tg_gradcheck",
              "tg_jacobian", "tg_vjp", "tg_grad", "tg_gradgradcheck", "tg_hvp",
              "tg_hessian", "tg_jvp"}
# types named for the op or call they parametrise
TYPES = {"tg_tensor", "tg_tape", "tg_status", "tg_allocator", "tg_apply", "tg_reduction",
         "tg_slice_spec"}
STATUS_CALLS = {"tg_last_error", "tg_last_status", "tg_clear_error", "tg_set_error",
                "tg_set_allocator", "tg_malloc", "tg_realloc", "tg_free"}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def main():
    bad = []
    for path in sorted(INC.glob("*.h")):
        if path.name == "tapegrad.h":
            continue
        mods = MODULES.get(path.name)
        if mods is None:
            bad.append(f"{path.name}: header has no module in scripts/check_names.py")
            continue
        text = strip_comments(path.read_text())
        text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
        ok_prefix = tuple(f"tg_{m}_" for m in mods) + tuple(f"tg_{m}" for m in mods)
        # function-pointer typedefs: typedef <ret> (*tg_name)(<params>);
        for m in re.finditer(r"typedef[^;]*?\(\s*\*\s*(tg_\w+)\s*\)[^;]*;", text):
            if not (m.group(1) + "_").startswith(ok_prefix):
                bad.append(f"{path.name}: typedef {m.group(1)} is not tg_<{'|'.join(mods)}>_...")
        text = re.sub(r"typedef[^;]*;", " ", text)
        # function declarations: <return type> name(<params>);
        for m in re.finditer(r"([\w\s\*]+?)\b(tg_\w+)\s*\((?!\s*\*)([^;{]*?)\)\s*(?:__attribute__\(\(.*?\)\)\s*)?;",
                             text, flags=re.S):
            ret, name, params = m.group(1), m.group(2), m.group(3)
            if name in ALGORITHMS or (path.name == "status.h" and name in STATUS_CALLS):
                continue
            is_op = (path.name.startswith("ops") and re.search(r"struct\s+tg_tensor\s*\*\s*$", ret)
                     and re.match(r"\s*struct\s+tg_tape\s*\*", params))
            if is_op:
                continue
            if not (name + "_").startswith(ok_prefix):
                bad.append(f"{path.name}: function {name} is not tg_<{'|'.join(mods)}>_...")
        for m in re.finditer(r"\b(struct|enum)\s+(tg_\w+)\s*\{", text):
            name = m.group(2)
            if not (name + "_").startswith(ok_prefix) and name not in TYPES:
                bad.append(f"{path.name}: {m.group(1)} {name} is not tg_<{'|'.join(mods)}>...")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} name(s) break the scheme of docs/design.md (Naming)")
        return 1
    print("names: every public name follows the scheme")
    return 0


if __name__ == "__main__":
    sys.exit(main())
