#!/usr/bin/env python3
"""Fails if source files of the crate import each other in a circle.

Reads `use` trees and inline `crate::…`/`super::…` paths of every file under
src/ (binaries and test modules aside), resolves each to the file of the
module it names, and looks for strongly connected components. A file's use
of its own ancestor `mod.rs` (the re-exports a parent gathers for users) is
not counted: a child naming its parent's items is not a circle.

    python3 .ci/import_cycles.py        # exit 1 and the circles, if any
"""
import os
import re
import sys


def source(path):
    text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def module_of(path):
    parts = path[len("src/"):-len(".rs")].split("/")
    return parts[:-1] if parts[-1] in ("mod", "lib") else parts


def use_paths(text):
    """Every path a `use` tree names, expanded ({a, b::c} → two paths)."""
    out = []

    def expand(prefix, tree):
        tree = tree.strip()
        if "{" not in tree:
            out.append(prefix + [p.strip() for p in tree.split(" as ")[0].split("::")])
            return
        i = tree.index("{")
        head = [p for p in tree[:i].split("::") if p.strip()]
        inner, depth, cur, parts = tree[i + 1:tree.rindex("}")], 0, "", []
        for ch in inner:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for part in parts:
            if part.strip():
                expand(prefix + head, part)

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        expand([], m.group(1).replace("\n", " "))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        out.append(m.group(1).split("::"))
    return out


def main():
    files = {}
    for d, _, names in os.walk("src"):
        if d.startswith("src/bin"):
            continue
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(d, name)
                files[path] = source(path)
    modules = {tuple(module_of(p)): p for p in files}

    def resolve(parts):
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in modules:
                return modules[tuple(parts[:n])]
        return None

    edges = {p: set() for p in files}
    for path, text in files.items():
        me = module_of(path)
        for used in use_paths(text):
            if used[0] == "crate":
                parts = used[1:]
            elif used[0] in ("super", "self"):
                base, i = list(me), 0
                while i < len(used) and used[i] in ("super", "self"):
                    if used[i] == "super":
                        base = base[:-1]
                    i += 1
                parts = base + used[i:]
            else:
                continue
            target = resolve(parts)
            ancestor = target == "src/lib.rs" or (
                target is not None
                and target.endswith("mod.rs")
                and path.startswith(target[: -len("mod.rs")])
            )
            if target and target != path and not ancestor:
                edges[path].add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on, counter, circles = {}, {}, [], set(), [0], []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                circles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for comp in circles:
        print("import circle: " + " <-> ".join(comp))
    print(f"import_cycles: {len(files)} files, {len(circles)} circles")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
