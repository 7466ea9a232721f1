"""The meta hash's fields are one schema (roost.redis.schema) for Python and the Lua."""

from __future__ import annotations

import ast
import inspect
import re
from importlib.resources import files

from roost.redis import schema
from roost.redis.codec import META_FIELDS
from roost.redis.schema import STATUS_FIELDS, Meta

LUA = files("roost.redis").joinpath("lua")
HASH_COMMANDS = {"HGET", "HSET", "HMGET", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HEXISTS"}
NOT_META = {"STRAND", "STATS", "plan.kids", "pkids"}
"""The hashes the scripts use that are not an item's meta (their fields are data)."""


def calls(source: str) -> list[list[str]]:
    """The top-level arguments of every ``redis.call(...)`` in ``source``."""
    found: list[list[str]] = []
    for m in re.finditer(r"redis\.call\(", source):
        depth, args, start, i = 1, [], m.end(), m.end()
        quote = None
        while depth:
            ch = source[i]
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == "," and depth == 1:
                args.append(source[start:i].strip())
                start = i + 1
            i += 1
        args.append(source[start : i - 1].strip())
        found.append(args)
    return found


def literal(arg: str) -> str | None:
    m = re.fullmatch(r"'(\w+)'", arg)
    return m.group(1) if m else None


def named_in(source: str) -> list[str | None]:
    """The meta fields one script names as literals."""
    out: list[str | None] = []
    for args in calls(source):
        command = literal(args[0])
        if command not in HASH_COMMANDS or args[1] in NOT_META:
            continue
        # HSET and HINCRBY*: field, value, field, value...; the others: fields.
        named = args[2::2] if command in ("HSET", "HINCRBY", "HINCRBYFLOAT") else args[2:]
        out += [literal(arg) for arg in named]
    # Fields passed on to a helper or built up in a table before one HSET.
    out += re.findall(r"meta_get\([\w.\[\]]+, '(\w+)'\)", source)
    for m in re.finditer(r"holder_call\([^{}\n]*\{([^}]*)\}", source):
        out += [literal(arg.strip()) for arg in m.group(1).split(",")]
    for m in re.finditer(r"local mf = \{([^}]*)\}", source):
        out += [literal(arg.strip()) for arg in m.group(1).split(",")[::2]]
    out += re.findall(r"mf\[#mf \+ 1\] = '(\w+)'; mf\[#mf \+ 1\] =", source)
    return out


def lua_meta_fields() -> dict[str, set[str]]:
    """Every meta field a script names, with the files that name it."""
    fields: dict[str, set[str]] = {}
    for entry in LUA.iterdir():
        if entry.name.endswith(".lua"):
            for name in named_in(entry.read_text()):
                if name is not None:
                    fields.setdefault(name, set()).add(entry.name)
    return fields


def test_every_meta_field_the_lua_names_is_in_the_schema() -> None:
    used = lua_meta_fields()
    strangers = {name: sorted(where) for name, where in used.items() if name not in set(Meta)}
    assert not strangers, f"meta fields missing from roost.redis.schema.Meta: {strangers}"


def test_every_schema_field_is_named_by_some_script() -> None:
    used = lua_meta_fields()
    assert len(used) > 30  # the scanner finds the fields (a broken regex finds none)
    assert sorted(set(Meta) - set(used)) == []


def test_the_status_read_takes_its_fields_from_the_schema() -> None:
    assert META_FIELDS is STATUS_FIELDS
    assert len(set(STATUS_FIELDS)) == len(STATUS_FIELDS)
    assert all(isinstance(f, Meta) for f in STATUS_FIELDS)


def test_every_field_has_a_docstring() -> None:
    tree = ast.parse(inspect.getsource(schema))
    meta = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Meta")
    documented: set[str] = set()
    for before, after in zip(meta.body, meta.body[1:], strict=False):
        if (
            isinstance(before, ast.Assign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            documented.add(before.targets[0].id)  # type: ignore[attr-defined]
    assert documented == {m.name for m in Meta}


def test_field_names_never_change() -> None:
    """Stored data names these fields: a rename would strand data written before it."""
    assert {m.value for m in Meta} >= {
        "engine", "queue", "state", "step", "v", "att", "maxatt", "imax", "prio", "created",
        "updated", "finished", "due", "lep", "lw", "lexp", "ltok", "res", "idem", "cxl", "err",
        "prog", "wsig", "appr", "pause", "nsteps", "spent", "bsteps", "bcost", "bruntime",
        "bover", "pid", "kn", "kfin", "kwait", "fev", "disp", "op", "pst", "pdue", "pmeta",
        "pkids", "pidx", "wcount", "qdue",
    }  # fmt: skip
