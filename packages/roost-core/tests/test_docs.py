"""Every hook is documented with its exact signature and has a test (datasette style)."""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roost.runtime import hookspecs
from roost.runtime.limits import DOCUMENTED
from roost.runtime.plugins import get_plugin_manager

REPO = Path(__file__).resolve().parents[3]
TEST_DIRS = [
    *sorted(REPO.glob("packages/*/tests")),
    *sorted(REPO.glob("apps/*/tests")),
    *sorted(REPO.glob("plugins/*/tests")),
    REPO / "tests",
]


def hook_specs() -> list[tuple[str, Callable[..., Any]]]:
    pm = get_plugin_manager(autoload=False)
    return [
        (name, getattr(hookspecs, name))
        for name in sorted(vars(hookspecs))
        if pm.parse_hookspec_opts(hookspecs, name) is not None
    ]


def expected_signature(name: str, func: Callable[..., Any]) -> str:
    sig = inspect.signature(func)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"Signature: ``{name}({params}) -> {sig.return_annotation}``"


def test_hookspecs_are_found() -> None:
    names = [name for name, _ in hook_specs()]
    assert {
        "roost_register_engines",
        "roost_register_artifact_stores",
        "roost_register_backends",
        "roost_register_event_sinks",
        "roost_register_observers",
    } <= set(names)
    assert all(name.startswith("roost_") for name in names)


@pytest.mark.parametrize(
    ("name", "func"), hook_specs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_hookspec_documents_its_exact_signature(name: str, func: Callable[..., Any]) -> None:
    doc = inspect.getdoc(func)
    assert doc, f"{name} has no docstring"
    # A long signature may wrap inside the docstring; compare with whitespace collapsed.
    flat = " ".join(doc.split())
    assert expected_signature(name, func) in flat, f"{name}: {expected_signature(name, func)}"


def test_expected_signature_format() -> None:
    def roost_example(register: int) -> None: ...

    assert expected_signature("roost_example", roost_example) == (
        "Signature: ``roost_example(register: int) -> None``"
    )


@functools.cache
def collect_test_names() -> frozenset[str]:
    names: set[str] = set()
    for directory in TEST_DIRS:
        for path in directory.rglob("test_*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if node.name.startswith("test_"):
                        names.add(node.name)
    return frozenset(names)


@pytest.mark.parametrize(
    ("name", "func"), hook_specs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_plugin_hooks_have_tests(name: str, func: Callable[..., Any]) -> None:
    tests = collect_test_names()
    assert "test_plugin_hooks_have_tests" in tests  # the scan sees this very file
    assert any(name in test for test in tests), f"no test function name mentions {name}"


def test_readme_lists_every_limit_as_the_code_has_it() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for what, allowed, where in DOCUMENTED:
        assert f"| {what} | {allowed.describe()} | {where} |" in readme, what
