"""Formatting shared by templates and the JSON API: times, sizes, events, charts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from roost.runtime.models import RuntimeEvent

__all__ = [
    "TEXT_KINDS",
    "abs_time",
    "ago",
    "bars",
    "describe_event",
    "event_json",
    "filesize",
    "iso",
    "pretty_json",
    "redact_url",
    "work_url",
]

TEXT_KINDS = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "log": "text/plain; charset=utf-8",
    "md": "text/plain; charset=utf-8",
    "csv": "text/plain; charset=utf-8",
}
"""Artifact kinds shown inline (as JSON or plain text); every other kind is an attachment."""


def ago(ts: float | None, now: float | None = None) -> str:
    """``"12 s ago"``, ``"3 min ago"``, ``"in 5 s"``; ``"—"`` for no time."""
    if not ts:
        return "—"
    delta = (time.time() if now is None else now) - ts
    future = delta < 0
    d = abs(delta)
    if d < 1:
        return "just now"
    if d < 60:
        text = f"{int(d)} s"
    elif d < 3600:
        text = f"{int(d // 60)} min"
    elif d < 86400:
        text = f"{int(d // 3600)} h"
    else:
        text = f"{int(d // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def abs_time(ts: float | None) -> str:
    """``"2026-05-01 14:03:07 UTC"``; empty for no time."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ts: float | None) -> str:
    """ISO 8601 in UTC (for ``<time datetime>``); empty for no time."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def filesize(n: int | None) -> str:
    """``"512 B"``, ``"1.2 kB"``, ``"3.4 MB"``."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def pretty_json(value: Any) -> str:
    """Indented JSON (non-ASCII kept as is)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _seconds(value: Any) -> str:
    try:
        return f"{float(value):g} s"
    except (TypeError, ValueError):
        return str(value)


def _error(d: dict[str, Any]) -> str:
    return f"{d.get('error', 'error')}: {d.get('message', '')}".rstrip(": ")


def _step(ev: RuntimeEvent) -> str:
    return f" (step {ev.step})" if ev.step else ""


def _enqueued(ev: RuntimeEvent) -> str:
    delay = ev.data.get("delay_ms") or 0
    later = f", starts in {_seconds(delay / 1000)}" if delay else ""
    return f"enqueued for engine {ev.data.get('engine', '?')}{later}"


def _committed(ev: RuntimeEvent) -> str:
    nxt = ev.data.get("next")
    return f"saved v{ev.version}{_step(ev)}" + (f", next: {nxt}" if nxt else "")


def _dead(ev: RuntimeEvent) -> str:
    d = ev.data
    why = _error(d) if "error" in d else str(d.get("reason", "attempts exhausted"))
    return f"dead after attempt {d.get('attempt', '?')}: {why}"


def _waiting(ev: RuntimeEvent) -> str:
    held: Any = ev.data.get("held_by") or []
    names = ", ".join(map(str, held)) if isinstance(held, list) else str(held)  # pyright: ignore[reportUnknownArgumentType]
    return f"waiting for resources held by others: {names}"


def _progress(ev: RuntimeEvent) -> str:
    frac = ev.data.get("fraction")
    pct = f"{float(frac) * 100:.0f}%" if isinstance(frac, int | float) else ""
    return "progress " + " ".join(p for p in (pct, str(ev.data.get("message") or "")) if p)


_DESCRIBE: dict[str, Callable[[RuntimeEvent], str]] = {
    "enqueued": _enqueued,
    "started": lambda ev: f"step started from v{ev.version}, attempt {ev.data.get('attempt', '?')}",
    "committed": _committed,
    "scheduled": lambda ev: (
        f"saved v{ev.version}{_step(ev)}, next step in " + _seconds(ev.data.get("delay", "?"))
    ),
    "done": lambda ev: f"finished at v{ev.version}{_step(ev)}",
    "retrying": lambda ev: (
        f"attempt {ev.data.get('attempt', '?')} failed ({_error(ev.data)}); "
        f"retry in {_seconds(ev.data.get('delay', '?'))}"
    ),
    "dead": _dead,
    "failed": lambda ev: f"failed: {_error(ev.data)}",
    "step_failed": lambda ev: f"failed: {_error(ev.data)}",
    "waiting": _waiting,
    "progress": _progress,
    "cancelled": lambda ev: f"cancelled by an operator (was {ev.data.get('previous', '?')})",
    "retried": lambda ev: f"retried by an operator (was {ev.data.get('previous', '?')})",
    "replayed": lambda ev: (
        f"replayed from version {ev.data.get('from_version', '?')}; now v{ev.version}"
    ),
    "lease_expired": lambda ev: (
        f"lease expired on worker {ev.data.get('worker', '?')}; queued again"
    ),
    "released": lambda ev: f"lease released ({ev.data.get('reason', '?')})",
}


def describe_event(ev: RuntimeEvent) -> str:
    """One line saying what an event means, e.g. ``"saved v3 (step s2)"``."""
    describe = _DESCRIBE.get(ev.type)
    if describe is not None:
        try:
            return describe(ev)
        except (TypeError, ValueError):  # odd data from a newer runtime: fall back
            pass
    rest = ", ".join(f"{k}={v}" for k, v in ev.data.items())
    return ev.type.replace("_", " ") + _step(ev) + (f": {rest}" if rest else "")


def event_json(ev: RuntimeEvent) -> dict[str, Any]:
    """An event as the API returns it: the event's fields plus a ``summary`` line."""
    return {**ev.model_dump(mode="json"), "summary": describe_event(ev)}


def bars(
    values: list[int], *, width: int = 600, height: int = 90, gap: int = 3
) -> list[dict[str, float]]:
    """Geometry of a bar chart: one ``{x, y, w, h}`` per value, scaled to the largest."""
    if not values:
        return []
    top = max(max(values), 1)
    w = (width - gap * (len(values) - 1)) / len(values)
    out: list[dict[str, float]] = []
    for i, v in enumerate(values):
        h = 0.0 if v == 0 else max(2.0, (height - 2) * v / top)
        x, y = round(i * (w + gap), 2), round(height - h, 2)
        out.append({"x": x, "y": y, "w": round(w, 2), "h": round(h, 2)})
    return out


def work_url(work_id: str, **query: str) -> str:
    """The path of a work item's page, with optional query parameters."""
    tail = f"?{urlencode(query)}" if query else ""
    return f"/work/{quote(work_id, safe='/:@')}{tail}"
