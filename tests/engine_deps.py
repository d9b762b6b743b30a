#!/usr/bin/env python3
"""tests/engine_deps.py - the engine depends on no op.

The engine (engine/) knows ops only through their descriptors (struct
tg_op_desc in engine/engine-impl.h); ops/ is built on the engine, never the
other way round. Two checks:
  1. every tg_* symbol that the engine's static library leaves undefined is
     defined by the library itself (nm), so it calls nothing in ops/;
  2. no engine source includes, directly or through a public header, an ops/
     file or tapegrad/ops*.h.
Usage: engine_deps.py NM LIBTG_ENGINE.a SOURCE_ROOT
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def symbols(nm, lib, *flags):
    out = subprocess.run([nm, *flags, lib], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if parts and not line.endswith(':'):
            names.add(parts[-1])
    return names


def resolve(name, here, root):
    """The file an #include "name" in directory `here` refers to, or None."""
    for base in (here, os.path.join(root, 'include')):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    return None


def forbidden(path, root):
    rel = os.path.relpath(path, root)
    return rel.startswith('ops' + os.sep) or re.match(r'include/tapegrad/ops[^/]*\.h$', rel)


def main():
    nm, lib, root = sys.argv[1:4]
    bad = []
    undefined = {s for s in symbols(nm, lib, '-u') if s.startswith('tg_')}
    defined = symbols(nm, lib, '--defined-only')
    for s in sorted(undefined - defined):
        bad.append(f'{os.path.basename(lib)} calls {s}, which the engine does not define')
    engine = os.path.join(root, 'engine')
    for f in sorted(os.listdir(engine)):
        if not f.endswith(('.c', '.h')):
            continue
        # walk the includes of f, transitively, keeping the chain for the message
        todo, seen = [(os.path.join(engine, f), [f])], set()
        while todo:
            path, chain = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            with open(path, encoding='utf-8') as fh:
                text = fh.read()
            for name in INCLUDE.findall(text):
                target = resolve(name, os.path.dirname(path), root)
                if target is None:
                    continue
                if forbidden(target, root):
                    bad.append(' -> '.join(chain + [os.path.relpath(target, root)]))
                else:
                    todo.append((target, chain + [name]))
    if not undefined:
        bad.append('nm listed no undefined tg_ symbol at all: the check cannot be trusted')
    for b in bad:
        print('engine depends on ops:', b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
