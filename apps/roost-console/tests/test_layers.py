"""Every read and write of the console goes through its gateway modules.

Which console module may import which is an import-linter contract (``console-layers`` in
the root pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import roost.console

PACKAGE = Path(roost.console.__file__).parent
GATEWAYS = {"queries", "worklist", "actions", "state", "schedule_ops", "approval_ops"}
"""The modules that talk to the backend; every other one goes through them."""
ANYWHERE = {"fault_types", "explain"}
"""What any module may ask of the backend: what its errors mean (it reads nothing)."""


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}


def test_only_the_gateways_call_the_backend() -> None:
    offenders: list[str] = []
    for name, tree in _modules().items():
        if name in GATEWAYS:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "backend"
                and node.attr not in ANYWHERE
            ):
                offenders.append(f"{name}.py:{node.lineno} backend.{node.attr}")
    assert offenders == []
