"""Human output: times (absolute and relative), tables, a status tree, JSON.

On a terminal, tables are drawn with rich and states are coloured (``NO_COLOR`` turns the
colours off); when the output is piped or redirected it stays plain, aligned text, stable
for scripts and ``grep``, and rich is not imported at all.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import typer
from pydantic import BaseModel

from roost.runtime import Artifact, Budget, RuntimeEvent, WorkMeta, WorkState, WorkStatus
from roost.runtime.limits import format_seconds

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "STATE_STYLES",
    "STYLES",
    "EventColumns",
    "ago",
    "clock",
    "compact",
    "echo_json",
    "event_details",
    "event_row",
    "family_lines",
    "meta_row",
    "print_status",
    "print_table",
    "show_value",
    "status_tree",
    "table",
    "terminal",
    "when",
]

META_HEADERS = ("WORK ID", "ENGINE", "STATE", "STEP", "VER", "ATT", "UPDATED")
EVENT_HEADERS = ("TIME", "TYPE", "WORK ID", "VER", "STEP", "WORKER", "DETAILS")
_NEXT = {
    "inline": "next step at once",
    "queue": "requeued",
    "done": "finished",
    "hold": "saved; the step failed",
    "await_signals": "awaits signals",
    "await": "awaiting children",
}


STATE_STYLES: dict[WorkState, str] = {
    WorkState.QUEUED: "cyan",
    WorkState.SCHEDULED: "blue",
    WorkState.RETRYING: "yellow",
    WorkState.WAITING: "magenta",
    WorkState.AWAITING: "magenta",
    WorkState.PAUSED: "yellow",
    WorkState.RUNNING: "bold green",
    WorkState.DONE: "green",
    WorkState.FAILED: "red",
    WorkState.DEAD: "bold red",
    WorkState.CANCELLED: "dim",
}
"""The colour of each work state on a terminal."""

STYLES: dict[str, str] = {
    **STATE_STYLES,
    "committed": "green",
    "enqueued": "cyan",
    "step_failed": "red",
    "lease_expired": "yellow",
    "broken": "red",
    "ok": "green",
    "needs approval": "bold yellow",
    "budget exceeded": "bold yellow",
    "signalled": "cyan",
}
"""Colours of states, event types and statuses on a terminal (cells are looked up here)."""


def terminal() -> Console | None:
    """A rich console on stdout when it is a terminal, else ``None`` (print plain text)."""
    if not _may_be_terminal():
        return None
    from rich.console import Console  # ~0.1 s to import: only for a terminal

    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    return console if console.is_terminal else None


def _may_be_terminal() -> bool:
    """False when rich would surely find that stdout is no terminal (no need to import it).

    Rich treats stdout as a terminal when ``TTY_COMPATIBLE`` or ``FORCE_COLOR`` says so, else
    when it is a TTY; with either variable set, rich decides.
    """
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a table: drawn with rich on a terminal, plain aligned text otherwise.

    A cell whose text is a state, an event type or a status gets its colour.
    """
    console = terminal()
    if console is None:
        typer.echo(table(headers, rows))
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header in headers:
        last = header == headers[-1]
        grid.add_column(header, no_wrap=not last, overflow="fold" if last else "ellipsis")
    for row in rows:
        grid.add_row(*(Text(cell, style=STYLES.get(cell.split(":")[0], "")) for cell in row))
    console.print(grid)


def echo_json(value: BaseModel | Any, *, indent: int | None = 2) -> None:
    """Print a pydantic model or plain data as JSON on stdout."""
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=indent))
    else:
        typer.echo(json.dumps(value, indent=indent, sort_keys=False, default=str))


def ago(ts: float, now: float | None = None) -> str:
    """``3s ago``, ``5m ago``, ``in 12s``: a compact relative time."""
    delta = (time.time() if now is None else now) - ts
    future = delta < 0
    seconds = abs(delta)
    if seconds < 1:
        text = "now" if not future else "in <1s"
        return text
    for size, unit in ((365 * 86400, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size:
            value = seconds // size
            text = f"{int(value)}{unit}" if value < 10_000 else f">9999{unit}"
            break
    else:  # pragma: no cover
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def clock(ts: float, now: float | None = None) -> str:
    """Local wall-clock time: ``14:03:07``, with the date when it is not today."""
    try:
        moment = datetime.fromtimestamp(ts)
    except (OverflowError, OSError, ValueError):  # stored before times were range-checked
        return f"{ts:g} (epoch seconds)"
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def when(ts: float | None, now: float | None = None) -> str:
    """Absolute and relative: ``14:03:07 (3m ago)``; ``-`` for no time."""
    if not ts:
        return "-"
    return f"{clock(ts, now)} ({ago(ts, now)})"


_TIME_KEYS = ("ts", "time", "due")
_EPOCH_S = (1e9, 1e11)
"""Numbers in this range under a time-like key are epoch seconds (2001 to 5138)."""


def show_value(key: str, value: Any, limit: int = 80, now: float | None = None) -> str:
    """A data value for people: epoch times under time-like keys as ``14:03:07 (3m ago)``.

    A key is time-like when it is ``ts``, ``time``, ``due`` or ends in ``_at``; its value is
    read as epoch seconds, or milliseconds when it is a thousand times too large.
    """
    if (key in _TIME_KEYS or key.endswith("_at")) and isinstance(value, int | float):
        if not isinstance(value, bool):
            seconds = float(value)
            if _EPOCH_S[0] * 1000 <= seconds < _EPOCH_S[1] * 1000:
                seconds /= 1000
            if _EPOCH_S[0] <= seconds < _EPOCH_S[1]:
                return when(seconds, now)
    return compact(value, limit)


def compact(value: Any, limit: int = 80) -> str:
    """One-line JSON of ``value``, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines: list[str] = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def meta_row(meta: WorkMeta, now: float | None = None) -> list[str]:
    """A work item as a row under :data:`META_HEADERS`."""
    return [
        meta.work_id,
        meta.engine,
        meta.display_state,
        meta.step or "-",
        str(meta.version),
        f"{meta.attempts}/{meta.max_attempts}",
        when(meta.updated_at, now),
    ]


def event_details(event: RuntimeEvent) -> str:
    """The interesting part of an event's data, as ``key=value`` pairs."""
    data = dict(event.data)
    parts: list[str] = []
    nxt = data.pop("next", None)
    delay = data.pop("delay", None)
    if nxt == "delay" and delay is not None:
        parts.append(f"next step in {delay:g}s")
    elif nxt is not None:
        parts.append(_NEXT.get(str(nxt), f"next={nxt}"))
    elif delay is not None and event.type == "retrying":
        parts.append(f"retry in {delay:g}s")
    for key, value in data.items():
        parts.append(f"{key}={show_value(key, value, 60)}")
    return " ".join(parts)


def event_row(event: RuntimeEvent, now: float | None = None) -> list[str]:
    """An event as a row under :data:`EVENT_HEADERS`."""
    return [
        when(event.ts, now),
        event.type,
        event.work_id,
        "-" if event.version is None else str(event.version),
        event.step or "-",
        event.worker or "-",
        event_details(event),
    ]


def _artifact_line(artifact: Artifact) -> str:
    meta = " ".join(f"{k}={compact(v, 40)}" for k, v in artifact.metadata.items())
    size = f"{artifact.size} B" if artifact.size else ""
    return " ".join(p for p in (artifact.artifact_id, artifact.kind, size, meta) if p)


def _meta_lines(status: WorkStatus, now: float | None) -> list[str]:
    m = status.meta
    rows: list[tuple[str, str]] = [
        ("step", f"{m.step or '-'}   version {m.version}   attempts {m.attempts}/{m.max_attempts}"),
        ("queue", f"{m.queue or '-'}   priority {m.priority}"),
    ]
    if m.resources:
        rows.append(("resources", ", ".join(m.resources)))
    rows.append(("created", when(m.created_at, now)))
    rows.append(("updated", when(m.updated_at, now)))
    if m.due_at:
        rows.append(("due", when(m.due_at, now)))
    if m.finished_at:
        rows.append(("finished", when(m.finished_at, now)))
    lease = m.lease
    if lease is None:
        rows.append(("lease", "none"))
    else:
        expires = ago(lease.expires_at, now)
        rows.append(("lease", f"{lease.worker_id} (epoch {lease.epoch}, expires {expires})"))
    if m.cancel_requested:
        rows.append(("cancel", "requested"))
    rows += _wait_rows(m)
    if m.progress:
        frac = "" if m.progress.fraction is None else f"{m.progress.fraction:.0%} "
        rows.append(("progress", f"{frac}{m.progress.message or ''}".strip()))
    if m.last_error:
        err = m.last_error
        text = f"{err.type}: {compact(err.message, 100)} (attempt {err.attempt}, {ago(err.ts, now)}"
        if m.error_is_past:
            rows.append(("past error", f"{text}; a later attempt succeeded)"))
        else:
            rows.append(("last error", f"{text})"))
    return [f"  {label:<11} {value}" for label, value in rows]


def budget_text(budget: Budget | None) -> str:
    """``steps 3/5, spent 7.5/10, runtime limit 1h; exceeded: cost``, or ``no budget``."""
    if budget is None:
        return "no budget"
    steps = f"/{budget.max_steps}" if budget.max_steps is not None else ""
    spent = f"/{budget.budget:g}" if budget.budget is not None else ""
    parts = [f"steps {budget.steps}{steps}", f"spent {budget.spent:g}{spent}"]
    if budget.max_runtime is not None:
        parts.append(f"runtime limit {format_seconds(budget.max_runtime)}")
    text = ", ".join(parts)
    return f"{text}; exceeded: {budget.exceeded}" if budget.exceeded else text


def _wait_rows(m: WorkMeta) -> list[tuple[str, str]]:
    """What an awaiting item waits for; an approval's message and details."""
    rows: list[tuple[str, str]] = []
    if m.approval is not None:
        rows.append(("approval", f"{compact(m.approval.message, 200)}   (roost approve/reject)"))
        rows += [(f"  {k}", show_value(k, v, 100)) for k, v in m.approval.details.items()]
    elif m.waiting_for:
        rows.append(("awaits", ", ".join(m.waiting_for) + "   (roost signal)"))
    if m.budget is not None:
        hint = "   (roost budget --add ...; roost resume)" if m.budget.exceeded else ""
        rows.append(("budget", budget_text(m.budget) + hint))
    if m.paused_reason and m.state == WorkState.PAUSED:
        rows.append(("paused", f"by {m.paused_reason}   (roost resume)"))
    elif m.paused_reason:
        rows.append(("pause", "requested: takes effect when the running step commits"))
    if m.pending_signals:
        rows.append(("signals", f"{m.pending_signals} kept for a later step"))
    return rows


def _snapshot_lines(status: WorkStatus) -> list[str]:
    snap = status.snapshot
    if snap is None:
        return ["  snapshot    none yet"]
    line = f"  snapshot    v{snap.version}  step {snap.step}"
    if snap.is_finished:
        line += "  finished"
    elif snap.next_step_delay_seconds:
        line += f"  next step after {snap.next_step_delay_seconds:g}s"
    lines = [line]
    for key, value in snap.data.items():
        if isinstance(value, list) and value:
            items = cast("list[Any]", value)
            lines.append(f"    {key}: [{len(items)} items]")
            lines += [f"      - {compact(entry, 100)}" for entry in items[-5:]]
        else:
            lines.append(f"    {key}: {show_value(key, value, 100)}")
    lines += [f"  artifact    {_artifact_line(a)}" for a in snap.artifacts]
    return lines


def family_lines(
    status: WorkStatus, children: Sequence[WorkMeta], now: float | None = None
) -> list[str]:
    """The parent and children of an item, with progress as done/total."""
    m = status.meta
    lines: list[str] = []
    if m.parent_id:
        lines.append(f"  parent      {m.parent_id}")
    if m.children_total:
        text = f"{m.children_finished}/{m.children_total} finished"
        if m.children_wait is not None:
            text += f", awaiting {m.children_wait}"
        lines.append(f"  children    {text}")
        for child in children[:CHILD_LINES]:
            step = f"{child.step or '-'} v{child.version}"
            lines.append(
                f"    {child.work_id}  {child.engine}  {child.state}  {step}  "
                f"{when(child.updated_at, now)}"
            )
        if len(children) > CHILD_LINES:
            rest = len(children) - CHILD_LINES
            lines.append(f"    ... {rest} more: roost list --parent {m.work_id}")
    return lines


CHILD_LINES = 20
"""Children ``roost status --human`` lists (``roost list --parent`` lists them all)."""


def print_status(status: WorkStatus, children: Sequence[WorkMeta] = ()) -> None:
    """Print :func:`status_tree`; on a terminal the state and a current error are coloured."""
    text = status_tree(status, children=children)
    console = terminal()
    if console is None:
        typer.echo(text)
        return
    from rich.text import Text

    lines = [Text(line) for line in text.splitlines()]
    state = status.meta.display_state
    lines[0].highlight_words([state], style=STYLES.get(state, ""))
    for line in lines:
        if line.plain.startswith("  last error"):
            line.stylize("red")
        console.print(line)


def status_tree(
    status: WorkStatus, now: float | None = None, children: Sequence[WorkMeta] = ()
) -> str:
    """A compact, readable view of ``roost status`` (with its parent and children)."""
    m = status.meta
    head = f"{m.work_id}  {m.engine}  {m.display_state}"
    family = family_lines(status, children, now)
    return "\n".join([head, *_meta_lines(status, now), *family, *_snapshot_lines(status)])


class EventColumns:
    """Fixed columns for events, so that lines printed one by one (``--follow``) align.

    Widths come from the first batch (at least :data:`MIN_WIDTHS`); a longer step or
    worker is cut with ``…``, a longer work id pushes the line (ids are never cut).
    """

    MIN_WIDTHS: dict[str, int] = {
        "TIME": 8,
        "TYPE": 13,
        "WORK ID": 32,
        "VER": 4,
        "STEP": 14,
        "WORKER": 24,
    }

    def __init__(self, first: Sequence[RuntimeEvent] = (), now: float | None = None) -> None:
        self.now = now
        self.widths = dict(self.MIN_WIDTHS)
        for event in first:
            self.widths["TIME"] = max(self.widths["TIME"], len(clock(event.ts, now)))
            self.widths["WORK ID"] = max(self.widths["WORK ID"], len(event.work_id))

    def cells(self, event: RuntimeEvent) -> list[str]:
        """The event's cells, padded or cut to the column widths (details unpadded)."""
        values = [
            clock(event.ts, self.now),
            event.type,
            event.work_id,
            "-" if event.version is None else str(event.version),
            event.step or "-",
            event.worker or "-",
        ]
        cells: list[str] = []
        for (name, width), value in zip(self.widths.items(), values, strict=True):
            if len(value) > width and name in ("STEP", "WORKER"):
                value = value[: width - 1] + "…"
            cells.append(value.ljust(width))
        return [*cells, event_details(event)]

    def header(self) -> str:
        """The header line."""
        names = [name.ljust(width) for name, width in self.widths.items()]
        return "  ".join([*names, "DETAILS"])

    def line(self, event: RuntimeEvent) -> str:
        """One event as a line of plain text."""
        return "  ".join(self.cells(event)).rstrip()

    def styled(self, event: RuntimeEvent) -> Text:
        """One event as a line for a terminal, its type coloured."""
        from rich.text import Text

        cells = self.cells(event)
        text = Text()
        for i, cell in enumerate(cells):
            if i:
                text.append("  ")
            text.append(cell, style=STYLES.get(event.type, "") if i == 1 else "")
        text.rstrip()
        return text
