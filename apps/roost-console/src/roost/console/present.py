"""Formatting shared by templates and the JSON API: times, sizes, events, charts."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from markdown_it import MarkdownIt
from markupsafe import Markup

from roost.runtime.backends import WorkBackend
from roost.runtime.errors import RoostError
from roost.runtime.models import RuntimeEvent, WorkState

__all__ = [
    "ACTION_STATES",
    "TEXT_KINDS",
    "abs_time",
    "ago",
    "chart",
    "describe_event",
    "duration",
    "error_text",
    "event_json",
    "filesize",
    "iso",
    "markdown",
    "pretty_json",
    "redis_problem",
    "seconds",
    "work_url",
]

ACTION_STATES: dict[str, tuple[WorkState, ...]] = {
    "cancel": tuple(state for state in WorkState if not state.is_terminal),
    "retry": tuple(state for state in WorkState if state.is_failure),
    "pause": tuple(s for s in WorkState if not s.is_terminal and s != WorkState.PAUSED),
    "resume": (WorkState.PAUSED,),
}
"""The states cancel, retry, pause and resume apply to (replay applies to any); pages offer
them only there."""

TEXT_KINDS = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "log": "text/plain; charset=utf-8",
    "md": "text/plain; charset=utf-8",
    "markdown": "text/plain; charset=utf-8",
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


def pretty_json(value: Any) -> str:
    """Indented JSON (non-ASCII kept as is)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def seconds(value: Any) -> str:
    """A number of seconds from event data, e.g. ``"0.5 s"`` (as it came if not a number)."""
    try:
        return f"{float(value):g} s"
    except (TypeError, ValueError):
        return str(value)


def duration(value: float | None) -> str:
    """A span of time, short: ``"350 ms"``, ``"4.2 s"``, ``"3 min 5 s"``, ``"2 h 10 min"``."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    if value < 86400:
        return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"
    return f"{int(value // 86400)} d {int(value % 86400 // 3600)} h"


def redis_problem(exc: BaseException, backend: WorkBackend) -> tuple[str, str]:
    """``(kind, message)`` for an error met while talking to Redis through ``backend``.

    ``kind`` is ``redis_unavailable`` when Redis cannot serve right now (unreachable, or
    answering BUSY, LOADING, OOM, READONLY, ...: an outage, which passes) and ``redis_error``
    when the call itself failed. The message names the real cause in one line (the backend
    explains its client's errors); a Roost error keeps its own message.
    """
    if isinstance(exc, RoostError):
        return "redis_unavailable", str(exc)
    fault = backend.explain(exc)
    if fault is None:
        return "redis_error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return ("redis_unavailable" if fault.outage else "redis_error"), fault.message


def error_text(d: dict[str, Any]) -> str:
    """``"Type: message"`` from an event's error data."""
    return f"{d.get('error', 'error')}: {d.get('message', '')}".rstrip(": ")


def _step(ev: RuntimeEvent) -> str:
    return f" (step {ev.step})" if ev.step else ""


def _enqueued(ev: RuntimeEvent) -> str:
    delay = ev.data.get("delay_ms") or 0
    later = f", starts in {seconds(delay / 1000)}" if delay else ""
    parent = f" as a child of {ev.data['parent']}" if ev.data.get("parent") else ""
    return f"enqueued for engine {ev.data.get('engine', '?')}{later}{parent}"


def _delayed(ev: RuntimeEvent) -> str:
    return f"saved v{ev.version}{_step(ev)}, next step in {seconds(ev.data.get('delay', '?'))}"


def _committed(ev: RuntimeEvent) -> str:
    nxt = ev.data.get("next")
    if nxt == "delay":
        return _delayed(ev)
    return f"saved v{ev.version}{_step(ev)}" + (f", next: {nxt}" if nxt else "")


def _dead(ev: RuntimeEvent) -> str:
    # The data of a dead event is that of the failed attempt; its "delay" is never used.
    d = ev.data
    why = error_text(d) if "error" in d else str(d.get("reason", "attempts exhausted"))
    attempt = f" after attempt {d['attempt']}" if "attempt" in d else ""
    return f"dead{attempt}, no attempts left: {why}"


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
    "scheduled": _delayed,
    "done": lambda ev: f"finished at v{ev.version}{_step(ev)}",
    "retrying": lambda ev: (
        f"attempt {ev.data.get('attempt', '?')} failed ({error_text(ev.data)}); "
        f"retry in {seconds(ev.data.get('delay', '?'))}"
    ),
    "dead": _dead,
    "failed": lambda ev: f"failed: {error_text(ev.data)}",
    "step_failed": lambda ev: f"failed: {error_text(ev.data)}",
    "waiting": _waiting,
    "children_ready": lambda ev: (
        f"{ev.data.get('finished', '?')} children finished: the next step is due"
    ),
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


def chart(
    rows: Sequence[dict[str, int]],
    series: Sequence[str],
    *,
    stacked: bool = False,
    width: int = 600,
    height: int = 90,
    gap: int = 3,
) -> list[dict[str, Any]]:
    """Geometry of a bar chart with one slot per row and one bar per series in each slot.

    Bars of a slot stand side by side, or on top of each other with ``stacked``; all are
    scaled to the tallest slot. Each bar is ``{x, y, w, h, series, value, slot}``; empty
    bars are left out.
    """
    if not rows or not series:
        return []
    if stacked:
        top = max(sum(r.get(k, 0) for k in series) for r in rows)
    else:
        top = max(r.get(k, 0) for r in rows for k in series)
    scale = (height - 2) / max(top, 1)
    slot = (width - gap * (len(rows) - 1)) / len(rows)
    sub = slot if stacked else slot / len(series)
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        base = float(height)
        for j, key in enumerate(series):
            value = row.get(key, 0)
            if value <= 0:
                continue
            h = max(2.0, value * scale)
            x = i * (slot + gap) + (0 if stacked else j * sub)
            y = base - h
            if stacked:
                base = y
            out.append(
                {
                    "x": round(x, 2),
                    "y": round(y, 2),
                    "w": round(sub, 2),
                    "h": round(h, 2),
                    "series": key,
                    "value": value,
                    "slot": i,
                }
            )
    return out


@functools.cache
def _markdown_parser() -> MarkdownIt:
    return MarkdownIt("js-default")


def markdown(text: str) -> Markup:
    """Markdown (CommonMark and tables) as HTML that is safe to put in a page.

    markdown-it-py's ``js-default`` preset: HTML in the source is escaped, never passed
    through, and a link or image whose URL is ``javascript:``, ``vbscript:``, ``file:`` or
    ``data:`` (but for ``data:image/...``) is left as text. The page's CSP also keeps
    images from other sites from loading.
    """
    return Markup(_markdown_parser().render(text))  # the parser escaped everything it copied


def work_url(work_id: str, **query: str) -> str:
    """The path of a work item's page, with optional query parameters."""
    tail = f"?{urlencode(query)}" if query else ""
    return f"/work/{quote(work_id, safe='/:@')}{tail}"
