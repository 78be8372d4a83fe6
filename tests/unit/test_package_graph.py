"""The packages of funops import each other without cycles (issue 29): every import counts —
module level, inside functions and under `TYPE_CHECKING` — since each one ties the importing layer to
the imported one. docs/architecture.md ("Layers and imports") says which layer may import which."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "funops"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> Iterator[str]:
    """Every funops module `path` imports, wherever the import statement is."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            # `from funops.x import y` may name a submodule y
            yield from (f"{target}.{alias.name}" for alias in node.names)


def module_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        source = module_name(path)
        graph[source] = {t for t in imported(path) if t in modules and t != source}
    return graph


def package_of(module: str) -> str:
    """`funops.kinds.file` → `kinds`; a top-level module (`funops.errors`) is a package of its own,
    `funops/__init__.py` is "(root)"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for source, targets in module_graph().items():
        edges = graph.setdefault(package_of(source), set())
        edges.update(package_of(t) for t in targets if package_of(t) != package_of(source))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def links(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The edges inside one cycle, for the failure message."""
    members = set(component)
    return [f"{a} → {b}" for a in component for b in sorted(graph.get(a, ())) if b in members]


def describe(graph: dict[str, set[str]]) -> str:
    return "\n".join(f"cycle {' ↔ '.join(c)}:\n  " + "\n  ".join(links(graph, c)) for c in cycles(graph))


def test_the_packages_import_each_other_without_cycles() -> None:
    graph = package_graph()
    assert cycles(graph) == [], describe(graph)


def test_the_modules_import_each_other_without_cycles() -> None:
    graph = module_graph()
    assert cycles(graph) == [], describe(graph)


if __name__ == "__main__":  # print the current cycles: python tests/unit/test_package_graph.py
    print(describe(package_graph()) or "no package cycle")
    print(describe(module_graph()) or "no module cycle")
