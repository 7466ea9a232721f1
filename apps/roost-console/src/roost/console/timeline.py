"""An item's timeline: each step attempt and each wait between them, read from its events.

A *step* span runs from the moment a worker took the item (``started``), or from the commit
of the step before it on the same lease (an inline continuation emits no ``started``), to
the event that ended it: a commit (``committed``/``done``), a failure (``retrying``,
``dead``, ``failed``), an expired lease or a release. A *wait* span covers the time between
steps: queued, a requested delay, retry backoff, resources held by others, an operator's
retry or replay. The first ``committed`` of an attempt that started from version 0 is the
initial snapshot (``init_snapshot``), stored with that attempt's commit: it is a note on the
step, not a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from roost.console.present import error_text, seconds
from roost.runtime.models import ErrorInfo, RuntimeEvent, WorkMeta

__all__ = ["Span", "Timeline", "build", "resolved_by"]

Status = Literal["ok", "failed", "lost", "running", "waiting", "info"]
SUCCESS = frozenset({"committed", "scheduled", "done"})
"""Event types that mean a step was saved."""


class Span(BaseModel):
    """One row of the timeline: a step attempt, a wait, or a moment (``end == start``)."""

    kind: Literal["step", "wait", "mark"]
    start: float
    end: float | None = None
    """``None`` while it lasts (the step still runs, the item still waits)."""
    label: str
    status: Status
    outcome: str = ""
    worker: str | None = None
    attempt: int | None = None
    notes: list[str] = []

    def duration(self, now: float) -> float:
        """How long it took (or has taken so far)."""
        return max((self.end if self.end is not None else now) - self.start, 0.0)


class Timeline(BaseModel):
    """An item's spans, oldest first, with the range they cover.

    ``partial`` is true when the item's first events are not among those read (the read
    limit, or the event stream was trimmed).
    """

    spans: list[Span]
    start: float
    end: float
    partial: bool
    steps: int
    failures: int

    def bar(self, span: Span) -> dict[str, float]:
        """Where a span sits on a 0-1000 axis spanning the timeline (``x``, ``w``)."""
        total = max(self.end - self.start, 1e-3)
        x = (span.start - self.start) / total * 1000
        w = span.duration(self.end) / total * 1000
        return {"x": round(min(x, 998.0), 1), "w": round(max(w, 2.0), 1)}


class _Builder:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.step: Span | None = None
        self.from_version = 0
        self.init_pending = False
        self.progress = 0
        self.wait: Span | None = None

    def open_wait(self, t: float, label: str) -> None:
        self.close_wait(t)
        self.wait = Span(kind="wait", start=t, label=label, status="waiting")
        self.spans.append(self.wait)

    def close_wait(self, t: float) -> None:
        if self.wait is not None:
            self.wait.end = t
            self.wait.status = "info"
            self.wait = None

    def open_step(self, ev: RuntimeEvent, attempt: int | None, version: int) -> None:
        self.close_wait(ev.ts)
        self.from_version = version
        self.init_pending = version == 0
        self.progress = 0
        self.step = Span(
            kind="step",
            start=ev.ts,
            label=f"step from v{version}" + (f" ({ev.step})" if ev.step else ""),
            status="running",
            worker=ev.worker,
            attempt=attempt,
        )
        self.spans.append(self.step)

    def close_step(self, ev: RuntimeEvent, status: Status, outcome: str) -> None:
        if self.step is None:  # its start is older than the events read
            self.spans.append(
                Span(kind="mark", start=ev.ts, end=ev.ts, label=ev.type, status=status)
            )
            self.spans[-1].outcome = outcome
            return
        self.step.end = ev.ts
        self.step.status = status
        self.step.outcome = outcome
        if self.progress:
            self.step.notes.append(f"{self.progress} progress report(s)")
        self.step = None

    def mark(self, ev: RuntimeEvent, label: str, status: Status = "info") -> None:
        self.spans.append(Span(kind="mark", start=ev.ts, end=ev.ts, label=label, status=status))


def _attempt(ev: RuntimeEvent) -> int | None:
    value: Any = ev.data.get("attempt")
    return value if isinstance(value, int) else None


def _saved(b: _Builder, ev: RuntimeEvent) -> None:
    version = ev.version or 0
    nxt = str(ev.data.get("next", ""))
    if b.step is not None and b.init_pending and version == 1 and nxt in ("inline", "hold"):
        b.init_pending = False
        b.step.notes.append(f"initial snapshot saved as v1 ({ev.step})")
        return
    done = ev.type == "done"
    name = f" ({ev.step})" if ev.step else ""
    b.close_step(ev, "ok", f"{'finished at' if done else 'saved'} v{version}{name}")
    if done:
        b.close_wait(ev.ts)
    elif nxt == "inline":
        b.open_step(ev, 1, version)
    elif nxt == "delay" or ev.type == "scheduled":
        b.open_wait(ev.ts, f"delay of {seconds(ev.data.get('delay', '?'))} it asked for")
    else:
        b.open_wait(ev.ts, "queued for the next step")


def _failed(b: _Builder, ev: RuntimeEvent) -> None:
    why = error_text(ev.data) if "error" in ev.data else str(ev.data.get("reason", ""))
    if ev.type == "retrying":
        b.close_step(ev, "failed", f"failed: {why}")
        b.open_wait(ev.ts, f"retry backoff of {seconds(ev.data.get('delay', '?'))}")
    elif ev.type == "dead":
        if b.step is None:
            b.close_wait(ev.ts)
            b.mark(ev, f"dead: {why or 'attempts exhausted'}", "failed")
        else:
            b.close_step(ev, "failed", f"failed: {why}; dead, no attempts left")
    else:
        b.close_step(ev, "failed", f"failed, cannot run: {why}")


def _other(b: _Builder, ev: RuntimeEvent) -> None:
    data = ev.data
    if ev.type == "enqueued":
        delay = data.get("delay_ms") or 0
        label = f"delayed start of {seconds(delay / 1000)}" if delay else "queued"
        b.open_wait(ev.ts, label)
    elif ev.type == "lease_expired":
        b.close_step(ev, "lost", f"lease expired on worker {data.get('worker', '?')}")
        b.open_wait(ev.ts, "queued again after the lease expired")
    elif ev.type == "released":
        reason = str(data.get("reason", "?"))
        b.close_step(ev, "info", f"lease released ({reason})")
        if reason != "cancelled":
            b.open_wait(ev.ts, "queued again")
    elif ev.type == "waiting":
        held: Any = data.get("held_by") or []
        names = ", ".join(map(str, held)) if isinstance(held, list) else str(held)  # pyright: ignore[reportUnknownArgumentType]
        b.open_wait(ev.ts, f"waiting for resources held by {names}")
    elif ev.type == "cancelled":
        if b.step is not None:
            b.step.notes.append("cancel requested while it ran")
        else:
            b.close_wait(ev.ts)
        b.mark(ev, f"cancelled by an operator (was {data.get('previous', '?')})")
    elif ev.type == "retried":
        b.open_wait(ev.ts, f"queued by an operator's retry (was {data.get('previous', '?')})")
    elif ev.type == "replayed":
        b.open_wait(ev.ts, f"queued by a replay from version {data.get('from_version', '?')}")


def build(events: Sequence[RuntimeEvent], meta: WorkMeta, now: float) -> Timeline:
    """The timeline of an item from its events (oldest first) and its current meta."""
    b = _Builder()
    for ev in events:
        if ev.type == "started":
            if b.step is not None:
                b.close_step(ev, "lost", "ended without a record")
            b.open_step(ev, _attempt(ev), ev.version or 0)
        elif ev.type in SUCCESS:
            _saved(b, ev)
        elif ev.type in ("retrying", "dead", "failed"):
            _failed(b, ev)
        elif ev.type == "progress":
            b.progress += 1
        else:
            _other(b, ev)
    finished = meta.state.is_terminal
    if finished:
        b.close_wait(meta.finished_at or (events[-1].ts if events else now))
    end = events[-1].ts if finished and events else now
    start = events[0].ts if events else meta.created_at
    steps = [s for s in b.spans if s.kind == "step"]
    return Timeline(
        spans=b.spans,
        start=start,
        end=max(end, start),
        partial=not events or events[0].type != "enqueued",
        steps=len(steps),
        failures=sum(s.status in ("failed", "lost") for s in steps),
    )


def resolved_by(error: ErrorInfo | None, events: Sequence[RuntimeEvent]) -> RuntimeEvent | None:
    """The first save after ``error``: the event showing a later attempt succeeded.

    ``None`` when there is no error, or no step was saved after it (among ``events``).
    """
    if error is None:
        return None
    for ev in events:
        if ev.type in SUCCESS and ev.ts > error.ts:
            return ev
    return None
