"""The console's module structure: no import cycles, and every read goes through queries."""

from __future__ import annotations

import ast
from pathlib import Path

import roost.console

PACKAGE = Path(roost.console.__file__).parent
GATEWAYS = {"queries", "worklist", "actions", "state"}
"""The modules that talk to the swarm; every other one goes through them."""


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    """Console modules imported anywhere in a module (TYPE_CHECKING and functions too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "roost.console":
                found |= {a.name for a in node.names}
            elif node.module.startswith("roost.console."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("roost.console."):
                    found.add(alias.name.split(".")[2])
    return found


def test_console_modules_import_without_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(tree) & set(modules) for name, tree in modules.items()}
    graph.pop("__init__")  # the package's re-exports sit above everything
    for deps in graph.values():
        deps.discard("__init__")
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())
    assert {"app", "api", "pages", "stream", "state"} <= set(graph)


def test_only_the_gateways_call_the_swarm() -> None:
    offenders: list[str] = []
    for name, tree in _modules().items():
        if name in GATEWAYS:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "swarm"
            ):
                offenders.append(f"{name}.py:{node.lineno} swarm.{node.attr}")
    assert offenders == []
