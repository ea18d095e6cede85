"""The import graph of src/pallet, read from the code: no circles, and no arrow up the architecture.

Every import counts, at the top of a module or inside a function (a lazy import is still a
dependency). The layers are ../shared/ARCHITECTURE.md's: a package may import its own layer and the
layers below it, never one above (the engine never imports the CLI, the runtime never the engine).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# layer of each package, from the bottom (the kernel layer and the shared basics) to the CLI
LAYERS: dict[str, int] = {
    "base": 0,              # pallet/__init__, errors, jsonfast, records, fsutil, flagtable, codebundle
    "linux": 0,             # the kernel layer, pallet.linux
    "config": 1,
    "oci": 1,
    "reference": 2,
    "runtime": 2,
    "layers": 2,
    "store": 3,
    "registry": 4,          # the package itself (its __init__)
    "registry.client": 4,
    "registry.server": 4,
    "network": 4,
    "engine": 5,
    "build": 6,
    "kube": 6,
    "systemd": 6,
    "explain": 7,
    "api": 8,
    "cli": 9,
}
BASE = {"pallet", "pallet.errors", "pallet.jsonfast", "pallet.records", "pallet.fsutil", "pallet.flagtable",
        "pallet.codebundle"}


def package_of(module: str) -> str:
    if module in BASE:
        return "base"
    parts = module.split(".")
    if parts[1] == "linux":
        return "linux"
    if parts[1] == "registry" and len(parts) > 2:
        return "registry." + parts[2]
    return parts[1]


def modules() -> dict[str, Path]:
    found = {}
    for f in (SRC / "pallet").rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = f
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the pallet modules it imports (a `from pkg import sub` of a submodule names the submodule)."""
    mods = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t.startswith("pallet") and t != name:
                    edges[name].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_every_package_has_a_layer():
    unknown = sorted({package_of(m) for m in modules()} - set(LAYERS))
    assert not unknown, f"packages missing from the architecture map in this test: {unknown}"


def test_no_import_circles_between_modules():
    assert cycles(import_graph()) == []


def test_no_import_circles_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for a, bs in import_graph().items():
        for b in bs:
            if package_of(a) != package_of(b):
                edges[package_of(a)].add(package_of(b))
    assert cycles(edges) == []


def test_no_arrow_runs_up_the_architecture():
    up = sorted(f"{a} -> {b}" for a, bs in import_graph().items() for b in bs
                if LAYERS.get(package_of(b), 99) > LAYERS.get(package_of(a), 99))
    assert up == []


def test_the_checks_see_what_they_guard():
    """The graph is read from the code: known arrows are there, and a circle is found when there is one."""
    edges = import_graph()
    assert "pallet.engine.core" in edges["pallet.engine.healthproc"]   # imported inside a function
    assert any(package_of(t) == "linux" for t in edges["pallet.runtime.init"])
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert package_of("pallet.registry.server.app") == "registry.server"
