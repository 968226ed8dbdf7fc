"""The package's shape stays what README's "Where things are" says: one folder a layer, the flow
one way (sources → snapshot → bind → checks → report / actions → front ends), no import cycle.

Reads every module's imports with ast (no third-party tool): top-level, inside functions and
under ``if TYPE_CHECKING:`` alike, since each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "vifscope"

CORE = {"model", "sources", "store", "bind", "checks", "report", "actions", "probe", "fleet"}
FRONTS = {"cli", "exporter", "watch", "serve", "top", "lab"}
# layer -> the layers it may import (besides itself and the package root's __version__).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "sources": {"model"},
    "store": {"model"},  # the MAC pool database: I/O beside sources, used by actions and front ends
    "bind": {"model"},
    "checks": {"model", "bind"},
    "report": {"model", "bind", "checks"},
    "actions": {"model", "sources", "store", "bind", "checks", "report"},
    "probe": {"model", "sources", "bind", "report"},
    "fleet": {"model", "sources", "report"},  # the hub: agents' answers (sources.agents) → one view
    # front ends share the core and each other's engines, but only cli/ may import cli/
    **{front: CORE | (FRONTS - {"cli"}) for front in FRONTS - {"cli"}},
    "cli": CORE | FRONTS,
}
ROOT_MODULES = {"vifscope", "vifscope.__main__"}  # __init__ (the version) and python -m vifscope


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported vifscope module, line) for every import statement anywhere in the module.
    ``from pkg import sub`` is an edge to the submodule when ``sub`` is one, else to ``pkg``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vifscope":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, name, path.name == "__init__.py")
            if target.split(".")[0] != "vifscope":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def graph() -> dict[str, set[str]]:
    mods = all_modules()
    known = set(mods)
    return {name: {dep for dep, _ in imports_of(name, path, known) if dep != name} for name, path in mods.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and module not in ROOT_MODULES else "<root>"


def forbidden_edges(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, deps in g.items():
        src_layer = layer(src)
        if src_layer == "<root>":
            continue
        for dep in deps:
            dep_layer = layer(dep)
            if dep == "vifscope" or dep_layer == src_layer:
                continue
            if dep_layer not in ALLOWED.get(src_layer, set()):
                bad.append(f"{src} ({src_layer}) imports {dep} ({dep_layer})")
    return sorted(bad)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        comp.append(member)
                        if member == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
            elif child not in g:
                continue
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(g[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_every_module_is_in_a_known_layer() -> None:
    stray = [m for m in all_modules() if m not in ROOT_MODULES and layer(m) not in ALLOWED]
    assert not stray, f"modules outside the layers README lists (give them a folder): {stray}"


def test_no_forbidden_edge() -> None:
    assert forbidden_edges(graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_only_cli_has_cli_modules() -> None:
    named = [m for m in all_modules() if m.endswith("_cli") or m.endswith(".cli")]
    assert named == ["vifscope.cli"]


# The checker itself must be able to fail: each rule on a small graph that breaks it.
@pytest.mark.parametrize(
    ("edge", "rule"),
    [
        (("vifscope.checks.binding", "vifscope.sources.snapshot"), "checks imports sources"),
        (("vifscope.report.topology", "vifscope.actions.apply"), "report imports actions"),
        (("vifscope.sources.ovs", "vifscope.report.documents"), "sources imports report"),
        (("vifscope.serve.routes", "vifscope.cli.graph"), "serve imports cli"),
        (("vifscope.model.core", "vifscope.bind.join"), "model imports bind"),
    ],
)
def test_forbidden_edges_are_caught(edge: tuple[str, str], rule: str) -> None:
    g = {edge[0]: {edge[1]}, edge[1]: set()}
    assert forbidden_edges(g), rule


def test_a_cycle_is_caught() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_inside_functions_and_type_checking_count(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from vifscope.watch.daemon import Watch\n"
        "def f():\n    from vifscope import report\n    import vifscope.sources.ovs\n"
    )
    known = {"vifscope.watch.daemon", "vifscope.report", "vifscope.sources.ovs"}
    assert {d for d, _ in imports_of("vifscope.watch.handlers", src, known)} == known
