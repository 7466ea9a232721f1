"""Strict JSON (RFC 8259) for payloads: what Roost stores must read back the same.

Python's :mod:`json` accepts ``NaN``, ``Infinity`` and ``1e400`` (read as infinity) and
turns a lone surrogate escape into a string no UTF-8 encoder accepts; pydantic stores a
NaN as ``null``. None of these round-trip, so payloads are checked here before anything is
written: :func:`loads` parses text strictly, :func:`check` checks a value built in Python.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn, cast

from roost.runtime.errors import BadInput

__all__ = ["check", "loads"]

_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_]{1,40}")


def _constant(name: str) -> Any:
    raise BadInput(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"the number {text} is too large for a JSON number")
    return value


def loads(text: str | bytes, *, where: str = "JSON") -> Any:
    """Parse strict JSON text and check the result with :func:`check`.

    Args:
        text: the JSON text; bytes must be UTF-8.
        where: what the text is, for messages (``--payload``, ``payload``).

    Raises:
        BadInput: not UTF-8, not JSON, or JSON that does not round-trip (NaN, Infinity,
            numbers beyond a double, lone surrogates, integers of more than 4300 digits).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"{where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where} is not JSON: {exc}") from None
    except RecursionError:
        raise BadInput(f"{where} is nested too deeply") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise BadInput(f"{where} is not usable JSON: {exc}") from None
    check(value, where=where)
    return value


def check(value: Any, *, where: str = "") -> None:
    """Check that ``value`` is plain JSON data that encodes and decodes to itself.

    Allowed: dicts with string keys, lists, strings (valid Unicode), finite floats, ints,
    booleans and None. Iterative, so deep nesting cannot exhaust the stack.

    Args:
        value: the value to check.
        where: what the value is (``--payload``); the message starts with ``{where}: ``.

    Raises:
        BadInput: the message names the first offending place (``a[2] is nan, ...``).
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            if not item.isascii() and not _is_unicode(item):
                _fail(where, path, "holds a lone surrogate, which is not Unicode text")
        elif isinstance(item, float):
            if not math.isfinite(item):
                _fail(where, path, f"is {item}, which is not JSON (RFC 8259)")
        elif isinstance(item, dict):
            stack += _members(where, path, cast("dict[Any, Any]", item))
        elif isinstance(item, list | tuple):
            for i, child in enumerate(cast("list[Any]", item)):
                stack.append((f"{path}[{i}]", child))
        else:
            _fail(where, path, f"is a {type(item).__name__}, which is not JSON-serializable")


def _fail(where: str, path: str, problem: str) -> NoReturn:
    subject = path or "the value"
    raise BadInput(f"{where}: {subject} {problem}" if where else f"{subject} {problem}")


def _members(where: str, path: str, item: dict[Any, Any]) -> list[tuple[str, Any]]:
    """The members of a dict to check next; its keys are checked here."""
    members: list[tuple[str, Any]] = []
    for key, child in item.items():
        if not isinstance(key, str):
            _fail(where, path, f"has a key that is not a string: {key!r}")
        if not key.isascii() and not _is_unicode(key):
            _fail(where, path, "has a key with a lone surrogate, which is not Unicode")
        members.append((_member(path, key), child))
    return members


def _member(path: str, key: str) -> str:
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    shown = json.dumps(key)
    return f"{path}[{shown if len(shown) <= 40 else shown[:38] + '…'}]"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
