#!/usr/bin/env python3
"""Reports import cycles between the top-level modules of a crate.

Usage: scripts/module-cycles.py bundle/src [gateway/src ...]

Each file is attributed to its top-level module (`check/upstreams.rs` -> `check`);
every `crate::<name>` it mentions (in `use` lines or inline paths) is an edge to
`<name>` when `<name>` is a module of the crate. `#[cfg(test)]` files (`tests.rs`)
and the crate root are left out: the root re-exports everything by design.
Exit status 1 when a cycle exists.
"""
import pathlib
import re
import sys


def graph(src):
    src = pathlib.Path(src)
    mods = {p.stem if p.is_file() else p.name for p in src.iterdir()
            if (p.suffix == ".rs" and p.stem not in ("lib", "main", "tests")) or p.is_dir()}
    edges = {m: set() for m in mods}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src)
        top = rel.parts[0].removesuffix(".rs")
        if top not in mods:
            continue
        text = f.read_text()
        # Drop the unit tests at the end of a file: they may use anything.
        text = text.split("#[cfg(test)]\nmod tests")[0]
        for m in re.finditer(r"crate::(\w+)", text):
            dep = m.group(1)
            if dep in mods and dep != top:
                edges[top].add(dep)
        # `use crate::{a, b::c}`
        for m in re.finditer(r"crate::\{([^}]*)\}", text):
            for dep in re.findall(r"(?:^|,)\s*(\w+)", m.group(1)):
                if dep in mods and dep != top:
                    edges[top].add(dep)
    return edges


def cycles(edges):
    found, state = [], {}

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for d in sorted(edges[n]):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [])
    return found


status = 0
for src in sys.argv[1:]:
    e = graph(src)
    for n in sorted(e):
        print(f"{src}: {n} -> {', '.join(sorted(e[n])) or '(leaf)'}")
    for c in cycles(e):
        print(f"{src}: CYCLE {' -> '.join(c)}")
        status = 1
sys.exit(status)
