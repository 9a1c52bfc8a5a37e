#!/usr/bin/env python3
"""Import cycles between the modules of a crate.

Reads every `.rs` file under a crate's `src/`, takes each module's references to
other modules of the same crate (`use crate::a::b`, `crate::a::b::f(...)` in
code, `super::x`, `self::x` in `use`), resolves `pub use` re-exports to the
module that defines the item (a re-export itself is not an edge: it is the
parent's facade, not code that depends on the child), and prints every strongly connected component of
more than one module, at two levels: top-level modules (`oci`, `registry`,
`commands`), and files (`oci::layout`, `commands::build`). A parent module
declaring its children (`mod x;`) is not an edge; test modules are skipped.

Usage: scripts/module-cycles.py CRATE_SRC_DIR... [--edges] [--top]
Exits 1 when any crate has a cycle (with `--top`: between top-level modules;
file-level cycles are still printed).
"""
import os
import re
import signal
import sys

# `… | head` ends quietly.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)

def check(root, show_edges):

    modules = {}  # path tuple -> source text (without #[cfg(test)] mod tests)
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if rel == "main.rs":
                parts = ["<main>"]
            text = open(os.path.join(dirpath, f)).read()
            # Drop the unit tests: they may use anything.
            m = re.search(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)
            if m:
                text = text[: m.start()]
            # Drop comments.
            text = re.sub(r"//[^\n]*", "", text)
            modules[tuple(parts)] = text


    def deepest_module(path):
        """The longest prefix of `path` that is a module, and the rest."""
        for i in range(len(path), -1, -1):
            if tuple(path[:i]) in modules:
                return tuple(path[:i]), path[i:]
        return (), path


    # Re-exports: (module, name) -> the path it re-exports.
    reexports = {}


    def expand_use(tree):
        """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]."""
        tree = re.sub(r"\s+", "", tree)
        out = []

        def rec(prefix, t):
            i = t.find("{")
            if i < 0:
                t = re.sub(r"as\w+$", "", t)
                out.append(prefix + [p for p in t.split("::") if p])
                return
            head = [p for p in t[:i].split("::") if p]
            if "}" not in t:
                return
            body = t[i + 1 : t.rindex("}")]
            depth, cur, items = 0, "", []
            for ch in body:
                if ch == "," and depth == 0:
                    items.append(cur)
                    cur = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                cur += ch
            if cur:
                items.append(cur)
            for it in items:
                if it == "self":
                    out.append(prefix + head)
                else:
                    rec(prefix + head, it)

        rec([], tree)
        return out


    def absolute(mod, path):
        """Resolve a use path relative to `mod` to an absolute path in the crate, or None."""
        if not path:
            return None
        if path[0] == "crate":
            return path[1:]
        if path[0] == "super":
            base = list(mod)
            while path and path[0] == "super":
                base = base[:-1]
                path = path[1:]
            return base + path
        if path[0] == "self":
            return list(mod) + path[1:]
        # A child module named directly (`use layout::X` in a mod.rs).
        if tuple(list(mod) + path[:1]) in modules:
            return list(mod) + path
        return None


    for mod, text in modules.items():
        for m in re.finditer(r"(?m)^\s*pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for p in expand_use(m.group(1)):
                a = absolute(mod, p)
                if a:
                    reexports[(mod, p[-1])] = a


    def target(mod, path):
        """The module an absolute path refers to, following re-exports."""
        for _ in range(10):
            t, rest = deepest_module(path)
            if rest and (t, rest[0]) in reexports and reexports[(t, rest[0])] != path:
                path = reexports[(t, rest[0])] + rest[1:]
                continue
            return t
        return t


    edges = {}
    for mod, text in modules.items():
        refs = []
        # A `pub use` is the module's facade, not a dependency of its code: it is
        # followed (above) from the modules that name the item through it.
        for m in re.finditer(r"(?m)^\s*use\s+([^;]+);", text):
            refs.extend(expand_use(m.group(1)))
        for m in re.finditer(r"(?<!::)\b((?:crate|super|\w+)(?:::\w+)+)", text):
            p = m.group(1).split("::")
            # `crate::…`, `super::…`, or a child module named in code (`layer::MAX`).
            if p[0] in ("crate", "super") or tuple(list(mod) + p[:1]) in modules:
                refs.append(p)
        for p in refs:
            a = absolute(mod, p)
            if a is None:
                continue
            t = target(mod, a)
            # Not an edge: itself, or an ancestor's re-export resolved to itself.
            if t == mod or not t and not a:
                continue
            edges.setdefault(mod, set()).add(t)


    def sccs(nodes, succ):
        index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = n[0]
            n[0] += 1
            stack.append(v)
            on.add(v)
            for w in succ.get(v, ()):
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
                    out.append(comp)

        sys.setrecursionlimit(10000)
        for v in nodes:
            if v not in index:
                visit(v)
        return out


    name = lambda m: "::".join(m) or "crate"
    failed = False
    for level, key in (("top-level modules", lambda m: m[:1]), ("files", lambda m: m)):
        counts = level == "top-level modules" or not top_only
        succ = {}
        for a, bs in edges.items():
            for b in bs:
                ka, kb = key(a), key(b)
                if ka != kb and ka and kb:
                    succ.setdefault(ka, set()).add(kb)
        nodes = sorted({key(m) for m in modules if key(m)})
        cycles = sccs(nodes, succ)
        print(f"{level}: {len(nodes)} modules, {sum(len(v) for v in succ.values())} edges, {len(cycles)} cycles")
        for c in cycles:
            failed |= counts
            comp = set(c)
            print("  cycle:", ", ".join(sorted(name(m) for m in c)))
            for a in sorted(comp):
                for b in sorted(succ.get(a, ())):
                    if b in comp:
                        print(f"    {name(a)} -> {name(b)}")
        if show_edges and level == "top-level modules":
            for a in sorted(succ):
                print(f"  {name(a)} -> {', '.join(sorted(name(b) for b in succ[a]))}")
    return failed


show_edges = "--edges" in sys.argv
top_only = "--top" in sys.argv
roots = [a for a in sys.argv[1:] if not a.startswith("--")]
failed = False
for root in roots:
    print(f"== {root}")
    failed |= check(root, show_edges)
sys.exit(1 if failed else 0)
