"""What ``roost worker`` prints while it runs: steps, failures, and summaries at high rates.

Every step outcome is a line while the worker is quiet enough to read them (at most
:data:`LINES_PER_SECOND` step lines a second); above that, the rest of each second is one
summary line (``-v`` prints every step). A failed attempt is one line with its outcome
(``retrying``, ``dead``, ``failed``) followed by the last lines of its traceback (all of them
with ``--full-tracebacks``): the runtime's log record of the failure (which has the
traceback) is taken off the log and printed with the event that says what became of it.
A quiet worker's lines are written as they come; a busy worker's in batches, at most
:data:`FLUSH_INTERVAL` apart, so printing costs it little.

The lines come from the event stream, like everything events say: :meth:`StepPrinter.follow`
reads the stream from where it ended when the worker started and prints the events this
worker stored (the fleet's event sinks are another matter: see
:class:`roost.runtime.observe.EventPump`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TextIO

from roost.cli import render
from roost.cli.logs import exception_of, format_traceback, iso, json_line
from roost.runtime import RuntimeEvent

if TYPE_CHECKING:
    from roost.runtime.stores import WorkStore

__all__ = ["FLUSH_INTERVAL", "LINES_PER_SECOND", "StepPrinter"]

LINES_PER_SECOND = 20
"""Step lines printed per second before the rest of the second is summarised (and as many
failure lines)."""
FLUSH_INTERVAL = 0.1
"""How often buffered lines are written out."""
ORPHAN_AFTER = 10.0
"""A failure whose outcome event has not come after this long is printed on its own."""

QUIET_EVENTS = frozenset({"started"})
FAILURE_EVENTS = frozenset({"retrying", "dead", "failed"})
FOLLOW_RETRY = 0.5
"""After the stream could not be read (an outage), how long before reading it again."""
STEP_EVENTS = frozenset({"committed", "done"})


class StepPrinter(logging.Filter):
    """An event sink that prints the worker's steps, and a log filter that takes failures.

    Args:
        verbose: print every step (no summaries).
        fmt: ``text`` lines or ``json`` (one object per line, like the JSON logs).
        traceback_lines: last lines of a failure's traceback shown in text (``None``: all).
        out: where lines go (default: ``sys.stdout`` when the printer is made).
        rate: step lines (and failure lines) per second before summarising.
        orphan_after: seconds after which a failure with no outcome event is printed alone.
    """

    def __init__(
        self,
        *,
        verbose: bool = False,
        fmt: str = "text",
        traceback_lines: int | None = 6,
        out: TextIO | None = None,
        rate: int = LINES_PER_SECOND,
        orphan_after: float = ORPHAN_AFTER,
    ) -> None:
        super().__init__()
        self.verbose = verbose
        self.json = fmt == "json"
        self.traceback_lines = traceback_lines
        self.out = out or sys.stdout
        self.rate = rate
        self.orphan_after = orphan_after
        self.steps = 0
        """Steps committed, for the last line."""
        self.buffer: list[str] = []
        self.failures: dict[tuple[str, int], tuple[float, logging.LogRecord]] = {}
        self.window = time.monotonic()
        self.flushed = 0.0
        self.shown: Counter[str] = Counter()
        self.hidden: Counter[str] = Counter()

    # -- the log side -------------------------------------------------------------------

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep a failed step's record to print it with its outcome; pass the others."""
        if getattr(record, "event", None) != "step_failed":
            return True
        key = (str(getattr(record, "work_id", "")), int(getattr(record, "attempt", 0)))
        self.failures[key] = (time.monotonic(), record)
        return False

    # -- the event side ---------------------------------------------------------------------

    async def follow(self, store: WorkStore, worker_id: Callable[[], str]) -> None:
        """Print the events the worker ``worker_id()`` stores, as they are stored (until cancelled).

        Reading starts where the stream ends now and resumes where it left off after an
        outage (the worker's own loops say what failed).
        """
        last: str | None = None
        while True:
            try:
                if last is None:
                    tail = await store.events(limit=1)
                    last = tail[-1].id if tail else "0-0"
                async for event in store.follow_events(after=last):
                    last = event.id
                    me = worker_id()
                    if me and event.worker == me:
                        await self(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # the stream could not be read: an outage the worker reports
                await asyncio.sleep(FOLLOW_RETRY)

    async def __call__(self, event: RuntimeEvent) -> None:
        """Print (or count) the event's line."""
        kind = event.type
        if kind in QUIET_EVENTS:
            return
        if kind in STEP_EVENTS:
            self.steps += 1
        record = None
        if kind in FAILURE_EVENTS:
            _, record = self.failures.pop((event.work_id, _attempt(event)), (0.0, None))
        budget = "failure" if kind in FAILURE_EVENTS else "step"
        now = time.monotonic()
        self._roll(now)
        if self.verbose or self.shown[budget] < self.rate:
            self.shown[budget] += 1
            self.buffer.append(self.line(event, record))
            if now - self.flushed >= FLUSH_INTERVAL:  # a quiet worker prints as it happens
                self.flush()
        else:
            self.hidden[kind] += 1

    def line(self, event: RuntimeEvent, record: logging.LogRecord | None = None) -> str:
        """The output for one event (with the failure's traceback when ``record`` has one)."""
        text = _text(event)
        if self.json:
            fields: dict[str, Any] = {
                "ts": iso(event.ts),
                "level": "warning" if event.type in FAILURE_EVENTS else "info",
                "logger": "roost.worker",
                "message": text,
                "event": event.type,
                "work_id": event.work_id,
                "version": event.version,
                "step": event.step,
                "worker": event.worker,
                **event.data,
            }
            if record is not None:
                fields["engine"] = getattr(record, "engine", None)
                exc = exception_of(record)
                if exc is not None:
                    fields["traceback"] = format_traceback(exc, None)
            return json_line({k: v for k, v in fields.items() if v is not None})
        line = f"{render.clock(event.ts)}  {text}"
        exc = exception_of(record) if record is not None else None
        if exc is not None:
            trace = format_traceback(exc, self.traceback_lines)
            line += "".join(f"\n    {t}" for t in trace.splitlines())
        return line

    # -- summaries and writing ----------------------------------------------------------------

    def _roll(self, now: float) -> None:
        """Close the second that ended: summarise what it did not print."""
        if now - self.window < 1.0:
            return
        if self.hidden:
            self.buffer.append(self._summary(now - self.window))
        self.window = now
        self.shown.clear()
        self.hidden.clear()

    def _summary(self, seconds: float) -> str:
        steps = sum(n for k, n in self.hidden.items() if k in STEP_EVENTS)
        failed = sum(n for k, n in self.hidden.items() if k in FAILURE_EVENTS)
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.hidden.items()))
        text = f"... {sum(self.hidden.values()):,} more events in {seconds:.1f}s ({kinds})"
        if failed:
            text += "; failures: roost events --type retrying,dead,failed"
        text += "; -v prints every step"
        if self.json:
            return json_line(
                {
                    "ts": iso(time.time()),
                    "level": "info",
                    "logger": "roost.worker",
                    "message": text,
                    "event": "summary",
                    "steps": steps,
                    "failures": failed,
                    "counts": dict(self.hidden),
                }
            )
        return f"{render.clock(time.time())}  {text}"

    def _orphans(self, now: float) -> None:
        """Failures whose outcome never came (Redis was unreachable): print them alone."""
        for key, (seen, record) in list(self.failures.items()):
            if now - seen >= self.orphan_after:
                del self.failures[key]
                event = RuntimeEvent(
                    type="step_failed",
                    work_id=key[0],
                    ts=record.created,
                    worker=getattr(record, "worker", None),
                    data={
                        "attempt": key[1],
                        "error": getattr(record, "error", None) or _exc_name(record),
                        "message": f"{_exc_text(record)} (its outcome was not recorded)",
                    },
                )
                self.buffer.append(self.line(event, record))

    def flush(self) -> None:
        """Write out what is buffered (and summaries and orphans that are due)."""
        now = time.monotonic()
        self._roll(now)
        self._orphans(now)
        if self.buffer:
            self.out.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()
            self.out.flush()
        self.flushed = now

    def close(self) -> None:
        """Write out everything, the summary of the last partial second included."""
        if self.hidden:
            self.buffer.append(self._summary(time.monotonic() - self.window))
            self.hidden.clear()
        self.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncGenerator[StepPrinter]:
        """Flush every :data:`FLUSH_INTERVAL` for the duration of the block, then close."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                self.flush()

        task = asyncio.create_task(tick(), name="roost-cli-printer")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.close()


def _attempt(event: RuntimeEvent) -> int:
    try:
        return int(event.data.get("attempt", 0))
    except (TypeError, ValueError):
        return 0


def _exc_name(record: logging.LogRecord) -> str:
    exc = exception_of(record)
    return type(exc).__qualname__ if exc is not None else "error"


def _exc_text(record: logging.LogRecord) -> str:
    exc = exception_of(record)
    return str(exc) if exc is not None else record.getMessage()


def _text(event: RuntimeEvent) -> str:
    """``committed   <id>  v3  check-2  next step in 5s``: an event, without its time."""
    version = "" if event.version is None else f"v{event.version}"
    parts = [f"{event.type:<10}", event.work_id, version]
    if event.type in STEP_EVENTS:
        parts.append(event.step or "")
    if event.type in (*FAILURE_EVENTS, "step_failed"):
        data = event.data
        message = render.compact(str(data.get("message", "")), 120)
        attempt, error = data.get("attempt", "?"), data.get("error", "?")
        parts.append(f"attempt {attempt} failed: {error}: {message}")
        if event.type == "retrying" and "delay" in data:
            delay = float(data["delay"])
            parts.append(f"(retry in {delay:.1f}s)" if delay >= 1 else f"(retry in {delay:.3g}s)")
    else:
        parts.append(render.event_details(event))
    return "  ".join(p for p in parts if p)
