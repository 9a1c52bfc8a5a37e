#!/usr/bin/env python3
"""Reports import cycles between the top-level modules of a crate.

Usage: scripts/module-cycles.py CRATE_SRC_DIR [--graph]

Reads every `.rs` file under the directory, maps it to its top-level module
(`auth/jwt.rs` -> `auth`), and draws an edge A -> B for every `crate::B` path in
A's code (in `use` lines, grouped `use crate::{B, C::x}` lists, and inline paths).
Unit tests (`#[cfg(test)]` items) are ignored: a test may reach anywhere.
The crate root (`lib.rs`, `main.rs`) declares the modules and is left out.
Exits 1 and prints each cycle (as a strongly connected component) if there is one.
"""

import re
import sys
from pathlib import Path

ROOTS = {"lib.rs", "main.rs"}


def module_of(src: Path, file: Path) -> str:
    rel = file.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def strip_tests(code: str) -> str:
    """Drops `#[cfg(test)]` items (a `mod tests { ... }` or an `impl`), by braces."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        if m.start() < i:
            continue
        out.append(code[i : m.start()])
        j = code.find("{", m.end())
        semi = code.find(";", m.end())
        if j == -1 or (semi != -1 and semi < j):
            i = semi + 1  # `#[cfg(test)] use ...;` or `mod x;`
            continue
        depth = 0
        for k in range(j, len(code)):
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
                if depth == 0:
                    i = k + 1
                    break
        else:
            i = len(code)
    out.append(code[i:])
    return "".join(out)


def strip_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"//[^\n]*", "", code)


def targets(code: str):
    # Inline and `use crate::a::...` paths.
    for m in re.finditer(r"\bcrate::([A-Za-z_][A-Za-z0-9_]*)", code):
        yield m.group(1)
    # Grouped: `use crate::{a, b::c, d::{e, f}}`: the first name of each item.
    for m in re.finditer(r"\bcrate::\{", code):
        depth, start, items = 1, m.end(), []
        k = start
        while k < len(code) and depth:
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
            k += 1
        body = code[start : k - 1]
        depth, item = 0, ""
        for ch in body + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(item.strip())
                item = ""
            else:
                item += ch
        for it in items:
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", it)
            if name and name.group(0) != "self":
                yield name.group(0)


def graph(src: Path) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for file in sorted(src.rglob("*.rs")):
        if file.parent == src and file.name in ROOTS:
            continue
        a = module_of(src, file)
        code = strip_tests(strip_comments(file.read_text()))
        deps = edges.setdefault(a, set())
        for b in targets(code):
            if b != a:
                deps.add(b)
    modules = set(edges)
    return {a: {b for b in deps if b in modules} for a, deps in edges.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    src = Path(args[0])
    edges = graph(src)
    if "--graph" in sys.argv:
        for a in sorted(edges):
            print(f"{a} -> {', '.join(sorted(edges[a])) or '(leaf)'}")
    found = cycles(edges)
    for comp in found:
        inner = [f"{a} -> {b}" for a in comp for b in sorted(edges[a]) if b in comp]
        print(f"cycle in {src}: {{{', '.join(comp)}}}: {'; '.join(inner)}")
    if not found:
        print(f"{src}: {len(edges)} modules, no import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
