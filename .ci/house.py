#!/usr/bin/env python3
"""The house check: the rooms of each library crate import one another without cycles,
and no source file is over 500 lines once its #[cfg(test)] module is left out.

    python3 .ci/house.py          # from anywhere; exits 1 and says why on a finding

The module tree is read from the `mod` declarations, starting at each crate's src/lib.rs.
A module's references are its `use crate::…`, `use super::…` and `use self::…` trees and
the `crate::…` / `super::…` paths in its code (comments and #[cfg(test)] modules left out),
each resolved to the deepest module it names. It is approximate: it does not follow
re-exports or names brought in by a glob.

Rooms: an edge between a module and one of its own ancestors (`super::`, a folder using its
children) is not a cycle. Any other edge A → B is counted between the two sibling rooms
under A's and B's nearest common folder that hold them (`server::conn` → `client::reconnect`
counts as `server` → `client`). Within each folder, the rooms it holds must form no cycle.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["rpc-core", "rpc-macros", "rpc-transport"]
MAX_LINES = 500

MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(r#)?(\w+)\s*;")
CFG_TEST = re.compile(r"^\s*#\[cfg\(test\)\]")
USE_START = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+")
INLINE_PATH = re.compile(r"(?<![\w:])(crate|super|self)((?:\s*::\s*(?:r#)?\w+)+)")


def strip_tests(lines):
    """Lines outside top-level `#[cfg(test)] mod … { … }` blocks (rustfmt closes them with a
    `}` in column 0)."""
    kept, i = [], 0
    while i < len(lines):
        if CFG_TEST.match(lines[i]) and not lines[i].startswith(" "):
            j = i + 1
            while j < len(lines) and lines[j].lstrip().startswith("#["):
                j += 1
            if j < len(lines) and re.match(r"^(?:pub\s+)?mod\s+\w+\s*\{", lines[j]):
                k = j + 1
                while k < len(lines) and lines[k].rstrip() != "}":
                    k += 1
                i = k + 1
                continue
        kept.append(lines[i])
        i += 1
    return kept


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(tree):
    """`a::{b, c::{d, e}}` → [[a, b], [a, c, d], [a, c, e]] (globs and renames dropped)."""
    tree = re.sub(r"\s+as\s+(?:r#)?\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(s, prefix):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                head = [p for p in part[:brace].split("::") if p]
                walk(part[brace + 1 : -1], prefix + head)
            else:
                out.append(prefix + [p for p in part.split("::") if p and p != "*"])

    walk(tree, [])
    return out


def use_trees(text):
    trees = []
    for m in USE_START.finditer(text):
        end = text.find(";", m.end())
        if end >= 0:
            trees.append(text[m.end() : end])
    return trees


class Crate:
    def __init__(self, name):
        self.name = name
        self.src = os.path.join(ROOT, name, "src")
        self.files = {}  # module path (tuple) -> file path
        self.test_only = set()
        self.walk((), os.path.join(self.src, "lib.rs"), os.path.join(self.src), False)

    def walk(self, module, path, folder, test_only):
        self.files[module] = path
        if test_only:
            self.test_only.add(module)
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            m = MOD_DECL.match(line)
            if not m or line.startswith(" "):
                continue
            name = m.group(2)
            attrs = []
            j = i - 1
            while j >= 0 and lines[j].lstrip().startswith("#["):
                attrs.append(lines[j])
                j -= 1
            child_test = test_only or any(CFG_TEST.match(a) for a in attrs)
            for candidate in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
                if os.path.exists(candidate):
                    child_folder = os.path.join(folder, name)
                    self.walk(module + (name,), candidate, child_folder, child_test)
                    break

    def resolve(self, module, path):
        """The deepest module a path names, or None for an outside crate."""
        if not path:
            return None
        head, rest = path[0], path[1:]
        if head == "crate":
            base = ()
        elif head in ("super", "self"):
            # `self` is the module itself (`a::b` in a/b.rs or a/b/mod.rs), `super` its parent
            base = module
            while path and path[0] in ("super", "self"):
                if path[0] == "super":
                    base = base[:-1]
                path = path[1:]
            rest = path
        else:
            return None
        target = base
        for seg in rest:
            seg = seg.removeprefix("r#")
            if target + (seg,) in self.files:
                target = target + (seg,)
            else:
                break
        return target

    def edges(self):
        out = {}
        for module, path in self.files.items():
            if module in self.test_only:
                continue
            with open(path, encoding="utf-8") as f:
                text = strip_comments("\n".join(strip_tests(f.read().splitlines())))
            paths = []
            for tree in use_trees(text):
                paths.extend(expand_use(tree))
            for m in INLINE_PATH.finditer(text):
                paths.append([m.group(1)] + [p for p in re.sub(r"\s+", "", m.group(2)).split("::") if p])
            for p in paths:
                target = self.resolve(module, p)
                if target is None or target in self.test_only:
                    continue
                if target[: len(module)] == module or module[: len(target)] == target:
                    continue  # self, a child, or an ancestor
                out.setdefault(module, set()).add(target)
        return out


def rooms(edges):
    """Per folder, the edges between the rooms (its children) it holds: {folder: {a: {b: [why]}}}."""
    by_folder = {}
    for a, targets in edges.items():
        for b in targets:
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            folder, ra, rb = a[:n], a[: n + 1], b[: n + 1]
            by_folder.setdefault(folder, {}).setdefault(ra, {}).setdefault(rb, []).append((a, b))
    return by_folder


def cycles(graph):
    """Strongly connected sets of more than one node (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def name(module):
    return "::".join(module) or "crate"


def main():
    problems = 0
    for crate_name in CRATES:
        crate = Crate(crate_name)
        for folder, graph in sorted(rooms(crate.edges()).items()):
            for scc in cycles(graph):
                problems += 1
                print(f"{crate_name}: import cycle between {', '.join(name(m) for m in scc)}:")
                members = set(scc)
                for ra in scc:
                    for rb, why in sorted(graph.get(ra, {}).items()):
                        if rb in members:
                            shown = ", ".join(f"{name(a)} → {name(b)}" for a, b in sorted(set(why)))
                            print(f"    {name(ra)} → {name(rb)}  ({shown})")
        for module, path in sorted(crate.files.items()):
            if module in crate.test_only:
                continue
            with open(path, encoding="utf-8") as f:
                count = len(strip_tests(f.read().splitlines()))
            if count > MAX_LINES:
                problems += 1
                rel = os.path.relpath(path, ROOT)
                print(f"{rel}: {count} lines without its tests (the limit is {MAX_LINES})")
    if problems:
        print(f"house: {problems} finding(s)")
        return 1
    print("house: no import cycle, no file over", MAX_LINES, "lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
