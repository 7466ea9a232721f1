"""``EventType`` is exactly the set of event types the scripts store, each one documented."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import roost.redis
from roost.runtime import models
from roost.runtime.models import EventType

LUA = Path(roost.redis.__file__).parent / "lua"
DOCS = Path(__file__).parents[3] / "docs" / "observability.md"

CALL = re.compile(r"\b(emit|emit_final)\(([^)\n]*)")
"""A call of ``emit(type, ...)`` or ``emit_final(meta, type, ...)`` (its first line)."""
ETYPE = re.compile(r"\betype\s*=\s*'([a-z_]+)'|\betype\s*=\s*[^'\n]*,\s*'([a-z_]+)'\s*$", re.M)
"""The types a script assigns to its ``etype`` variable before ``emit(etype, ...)``."""


def lua_sources() -> dict[str, str]:
    files = sorted(LUA.rglob("*.lua"))
    assert len(files) > 10, f"no scripts found under {LUA}"
    return {str(f.relative_to(LUA)): f.read_text() for f in files}


def emitted_types() -> set[str]:
    found: set[str] = set()
    for name, text in lua_sources().items():
        lines = [line.split("--", 1)[0] for line in text.splitlines()]
        code = "\n".join(lines)
        via_variable = False
        for line in lines:
            if "function " in line:
                continue  # the definitions of emit and emit_final
            for fn, args in CALL.findall(line):
                parts = [a.strip() for a in args.split(",")]
                kind = parts[1] if fn == "emit_final" else parts[0]
                if re.fullmatch(r"'[a-z_]+'", kind):
                    found.add(kind.strip("'"))
                elif kind == "etype":
                    via_variable = True
                else:  # a type from anywhere else would escape this check
                    raise AssertionError(f"{name}: {fn}({args}) has no literal type")
        if via_variable and name != "_prelude.lua":  # the prelude's emit_final passes it on
            assigned = {a or b for a, b in ETYPE.findall(code)}
            assert assigned, f"{name} emits etype but never assigns it a literal"
            found |= assigned
    return found


def test_every_emitted_type_is_in_the_enum_and_every_member_is_emitted() -> None:
    emitted = emitted_types()
    listed = {str(t) for t in EventType}
    assert emitted - listed == set(), "types the scripts store that EventType lacks"
    assert listed - emitted == set(), "EventType members no script stores"
    # The check itself sees what it should: commit's two types through etype, a few literals.
    assert {"committed", "done", "enqueued", "lease_expired", "waiting"} <= emitted


def test_no_type_is_a_worker_only_notion() -> None:
    # A refused commit and a lost lease change nothing stored: they are log lines and
    # observer calls, never events (nothing could deliver them from the stream).
    assert "stale_commit" not in {str(t) for t in EventType}
    assert "lease_lost" not in {str(t) for t in EventType}


def test_every_type_has_a_docstring_and_a_row_in_the_docs() -> None:
    tree = ast.parse(inspect.getsource(models))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "EventType"]
    documented: set[str] = set()
    body = cls.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.Assign) and isinstance(after, ast.Expr):
            value = after.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                documented.add(node.targets[0].id)  # type: ignore[attr-defined]
    assert documented == {t.name for t in EventType}
    text = DOCS.read_text().split("### Event types", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    assert rows == {str(t) for t in EventType}, "docs/observability.md's table of event types"
