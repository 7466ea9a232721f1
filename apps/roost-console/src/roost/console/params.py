"""Reading and validating request parameters; bad input raises :class:`BadInput` (400)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

from roost.runtime.errors import BadInput
from roost.runtime.models import WorkState, validate_name

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "ReplayArgs",
    "body_fields",
    "body_pairs",
    "event_id",
    "int_param",
    "name_param",
    "parse_state",
    "replay_args",
    "state_param",
    "types_param",
]

_EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_EVENT_TYPE = re.compile(r"[a-z][a-z_]{0,39}")


def int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter between ``lo`` and ``hi``."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadInput(f"{name} must be a whole number from {lo} to {hi}, not {raw!r}")
    return int(raw)


def state_param(request: Request) -> WorkState | None:
    """The ``state`` query parameter (empty: any state)."""
    return parse_state(request.query_params.get("state", ""))


def parse_state(raw: str) -> WorkState | None:
    """A state name (empty: any state).

    Raises:
        BadInput: not a state's name.
    """
    raw = raw.strip()
    if not raw:
        return None
    try:
        return WorkState(raw)
    except ValueError:
        states = ", ".join(s.value for s in WorkState)
        raise BadInput(f"unknown state {raw[:40]!r} (one of: {states})") from None


def types_param(request: Request) -> list[str]:
    """The ``type`` query parameters (event types; each may be given several times)."""
    out: list[str] = []
    for raw in request.query_params.getlist("type"):
        raw = raw.strip()
        if raw and not _EVENT_TYPE.fullmatch(raw):
            raise BadInput(f"invalid event type {raw[:40]!r}")
        if raw and raw not in out:
            out.append(raw)
    return out


def name_param(request: Request, name: str, kind: str) -> str | None:
    """A name-like query parameter (engine, work id), validated as Roost validates names."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return validate_name(kind, raw)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def event_id(raw: str | None, name: str = "after") -> str | None:
    """An event stream position (``1700000000000-0``) or ``None``."""
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if not _EVENT_ID.fullmatch(raw):
        raise BadInput(f"{name} must be an event id like 1700000000000-0, not {raw[:40]!r}")
    return raw


async def body_pairs(request: Request) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a small form-encoded or JSON object body, in order.

    A JSON list value gives one pair per element; values are strings (``true``/``false``
    for booleans) and ``null`` values are left out.

    Raises:
        BadInput: a JSON body that is not an object.
    """
    body = await request.body()
    if not body:
        return []
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise BadInput("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    out: list[tuple[str, str]] = []
    for key, value in cast("dict[str, Any]", data).items():
        values = cast("list[Any]", value) if isinstance(value, list) else [value]
        out += [(key, _text(v)) for v in values if v is not None]
    return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


async def body_fields(request: Request) -> dict[str, str]:
    """Fields of a small form-encoded or JSON object body (the last value of each name)."""
    return dict(await body_pairs(request))


class ReplayArgs:
    """What a replay request asks for: a version (``None`` latest, 0 from scratch), as new."""

    def __init__(self, version: int | None, as_new: bool) -> None:
        self.version = version
        self.as_new = as_new


def replay_args(fields: dict[str, str]) -> ReplayArgs:
    """Read ``version`` (``latest``, empty, or a number) and ``as_new`` from body fields."""
    raw = fields.get("version", "").strip().lower()
    if raw in ("", "latest", "none", "null"):
        version = None
    elif raw.isdigit() and len(raw) < 10:
        version = int(raw)
    else:
        raise BadInput(f"version must be 'latest' or a version number, not {raw[:40]!r}")
    as_new = fields.get("as_new", "").strip().lower() in ("1", "true", "on", "yes")
    return ReplayArgs(version, as_new)
