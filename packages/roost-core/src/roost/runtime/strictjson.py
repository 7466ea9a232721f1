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
from typing import Any, cast

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


def check(value: Any, *, where: str = "value") -> None:
    """Check that ``value`` is plain JSON data that encodes and decodes to itself.

    Allowed: dicts with string keys, lists, strings (valid Unicode), finite floats, ints,
    booleans and None. Iterative, so deep nesting cannot exhaust the stack.

    Raises:
        BadInput: the message names the first offending place (``payload.a[2]``).
    """
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadInput(f"{path} is {item}, which is not JSON (RFC 8259)")
        elif isinstance(item, dict):
            for key, child in cast("dict[Any, Any]", item).items():
                if not isinstance(key, str):
                    raise BadInput(f"{path} has a key that is not a string: {key!r}")
                _check_text(key, path)
                stack.append((_member(path, key), child))
        elif isinstance(item, list | tuple):
            for i, child in enumerate(cast("list[Any]", item)):
                stack.append((f"{path}[{i}]", child))
        else:
            raise BadInput(f"{path} is a {type(item).__name__}, which is not JSON")


def _member(path: str, key: str) -> str:
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}"
    shown = json.dumps(key)
    return f"{path}[{shown if len(shown) <= 40 else shown[:38] + '…'}]"


def _check_text(text: str, path: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{path} holds a lone surrogate, which is not Unicode text") from None
