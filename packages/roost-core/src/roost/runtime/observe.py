"""Observer hooks and the event pump: what a worker tells metrics, tracing and event sinks.

A worker calls its observers synchronously on the step path, so an observer must be cheap
(count in memory, start a span) and must never do I/O there. The worker builds one
:class:`Observers` from the observers the plugins registered
(``roost_register_observers``) and the ones it was given; with none, each call is a
check of an empty tuple.

One :class:`StepRecord` follows one attempt of one step (``init_snapshot`` counts as a
step): :meth:`StepObserver.step_started` sees it before the engine is called,
:meth:`StepObserver.step_ended` once its outcome is known (committed, retried, failed,
dead, interrupted or refused). Observers keep their own state for the step in
``record.scratch`` under a key of their own.

Event sinks are told off the step path, and only about what was stored: the backend keeps
every runtime event in its event stream (whichever process wrote it: a worker, the CLI, the
console), and :class:`EventPump` reads that stream through the backend's :class:`EventFeed`
and delivers each event to every sink in order, in a loop of the worker's own.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from roost.runtime.models import RuntimeEvent

__all__ = [
    "OUTCOMES",
    "EventBatch",
    "EventFeed",
    "EventPump",
    "Observers",
    "Outcome",
    "StepObserver",
    "StepRecord",
    "enqueue_headers",
]

log = logging.getLogger("roost.observe")

Outcome = Literal["committed", "retried", "failed", "dead", "interrupted", "refused"]
"""How a step attempt ended.

``committed``: its snapshot was stored. ``retried``: it raised and the item retries after
a backoff. ``failed``: it raised a permanent error (or broke the engine contract) and the
item failed. ``dead``: it raised on its last allowed attempt. ``interrupted``: the worker
stopped, the item was cancelled or its lease was lost while it ran. ``refused``: the backend
refused or could not take its commit (a stale lease, a cancel that came first, an outage
outlasting the lease).
"""

OUTCOMES: tuple[Outcome, ...] = ("committed", "retried", "failed", "dead", "interrupted", "refused")


@dataclass(slots=True, eq=False)
class StepRecord:
    """One attempt of one step, as observers see it.

    Attributes:
        work_id: the item's id (a trace attribute; never a metric label).
        engine: the item's engine.
        version: the snapshot version the step produces if it commits.
        attempt: the attempt number of this step (1 for the first).
        worker_id: the worker running it.
        headers: the item's headers (trace context set at enqueue, among others).
        queued_for: seconds the item waited queued before its lease was taken (the
            enqueue-to-start latency of its first step), or None when not known (steps
            run inline on the same lease).
        late_by: for an item that was due at a time (a delay, a retry's backoff, a wait
            for resources), how many seconds after that time it started; else None.
        started: ``time.perf_counter()`` when the step started.
        duration: seconds from start to outcome (0 until ended).
        outcome: set when the step ended.
        detail: more about the outcome: what follows a commit (``done``, ``inline``,
            ``queue``, ``delay``, ``hold``), the exception type of a failure, why an
            interruption or refusal happened.
        context: the ``contextvars.Context`` the engine runs in, or None for a copy of
            the worker's: an observer that needs to set variables there (a current span)
            sets it in ``step_started``, once (``record.context = record.context or
            contextvars.copy_context()``), then ``record.context.run(var.set, value)``.
        scratch: observers' own state for this step, each under its own key.
    """

    work_id: str
    engine: str
    version: int
    attempt: int
    worker_id: str
    headers: dict[str, str] = field(default_factory=dict[str, str])
    queued_for: float | None = None
    late_by: float | None = None
    started: float = 0.0
    duration: float = 0.0
    outcome: Outcome | None = None
    detail: str = ""
    context: contextvars.Context | None = None
    scratch: MutableMapping[object, Any] = field(default_factory=dict[object, Any])


class StepObserver:
    """Receives a worker's step and lease notifications; every method does nothing here.

    Subclass and override what you need. Methods are called on the worker's event loop,
    on the step path: keep them cheap and never block. An observer that raises is logged
    and the step goes on.
    """

    def step_started(self, record: StepRecord) -> None:
        """A step attempt is about to run (its lease is held)."""

    def step_ended(self, record: StepRecord) -> None:
        """A step attempt's outcome is known (``record.outcome`` is set)."""

    def leases_renewed(self, count: int) -> None:
        """The worker renewed ``count`` leases in one call."""

    def lease_lost(self, engine: str) -> None:
        """The worker lost the lease of an item of ``engine`` (its step is abandoned)."""

    def recovered(self, requeued: int, dead: int, redispatched: int) -> None:
        """A recovery pass requeued expired leases, declared some dead, re-dispatched."""

    def enqueue_headers(self) -> Mapping[str, str] | None:
        """Headers to store on the work this process enqueues now (a trace context), or None.

        Called once per enqueue call, in the caller's context; the item's own headers win.
        """
        return None


class Observers:
    """The observers of one worker, called in order; cheap when there are none."""

    __slots__ = ("_all", "worker_id")

    def __init__(self, observers: Iterable[StepObserver], worker_id: str = "") -> None:
        self._all = tuple(observers)
        self.worker_id = worker_id

    def __bool__(self) -> bool:
        return bool(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def step_started(
        self,
        *,
        work_id: str,
        engine: str,
        version: int,
        attempt: int,
        headers: dict[str, str] | None = None,
        queued_for: float | None = None,
        late_by: float | None = None,
    ) -> StepRecord | None:
        """Start a record and tell every observer; None when there are no observers."""
        if not self._all:
            return None
        record = StepRecord(
            work_id=work_id,
            engine=engine,
            version=version,
            attempt=attempt,
            worker_id=self.worker_id,
            headers=headers if headers is not None else {},
            queued_for=queued_for,
            late_by=late_by,
            started=time.perf_counter(),
        )
        for obs in self._all:
            try:
                obs.step_started(record)
            except Exception as exc:  # an observer's bug never fails a step
                _failed(obs, exc)
        return record

    def step_ended(self, record: StepRecord | None, outcome: Outcome, detail: str = "") -> None:
        """End ``record`` (once: a second call does nothing) and tell every observer."""
        if record is None or record.outcome is not None:
            return
        record.duration = time.perf_counter() - record.started
        record.outcome = outcome
        record.detail = detail
        for obs in self._all:
            try:
                obs.step_ended(record)
            except Exception as exc:
                _failed(obs, exc)

    def steps_ended(
        self,
        records: list[StepRecord],
        outcome: Outcome,
        detail: str = "",
        *,
        upto: int | None = None,
    ) -> None:
        """End the open ``records`` (those producing at most version ``upto``, if given).

        The ended ones leave the list. A commit that stores an ``init_snapshot`` together
        with the step after it ends both; a commit that keeps only the init ends its record
        alone.
        """
        if not records:
            return
        keep: list[StepRecord] = []
        for record in records:
            if upto is not None and record.version > upto:
                keep.append(record)
            else:
                self.step_ended(record, outcome, detail)
        records[:] = keep

    def leases_renewed(self, count: int) -> None:
        """Tell every observer ``count`` leases were renewed."""
        for obs in self._all:
            _safely(obs.leases_renewed, count)

    def lease_lost(self, engine: str) -> None:
        """Tell every observer a lease of ``engine`` was lost."""
        for obs in self._all:
            _safely(obs.lease_lost, engine)

    def recovered(self, requeued: int, dead: int, redispatched: int) -> None:
        """Tell every observer what a recovery pass did."""
        for obs in self._all:
            _safely(obs.recovered, requeued, dead, redispatched)


def _safely(method: Any, *args: Any) -> None:
    try:
        method(*args)
    except Exception as exc:  # an observer's bug never fails a step
        _failed(method, exc)


def _failed(observer: object, exc: Exception) -> None:
    log.warning("observer %r failed: %s: %s", observer, type(exc).__name__, exc)


def enqueue_headers(observers: Iterable[StepObserver]) -> dict[str, str]:
    """The headers ``observers`` want on work enqueued now (empty without observers)."""
    out: dict[str, str] = {}
    for obs in observers:
        try:
            out.update(obs.enqueue_headers() or {})
        except Exception as exc:  # an observer's bug never fails an enqueue
            log.warning("observer %r failed: %s: %s", obs, type(exc).__name__, exc)
    return out


@dataclass(slots=True)
class EventBatch:
    """What one read of an :class:`EventFeed` returned.

    Attributes:
        events: stored events to deliver, in stream order.
        lost: events the feed knows were stored but can no longer deliver (the stream
            dropped them before any process delivered them); they are counted and logged.
        wait: seconds before the next read when ``events`` is empty (this process is not
            the one delivering now, say); 0 when the read already waited.
    """

    events: list[RuntimeEvent] = field(default_factory=list[RuntimeEvent])
    lost: int = 0
    wait: float = 0.0


class EventFeed(Protocol):
    """A backend's stored events, read for the event sinks of a fleet.

    The backend decides which process delivers which event (so that each is delivered by
    one process) and in what order (stream order, at least per work item). An event
    read is delivered again later, by this or another process, until :meth:`ack` says every
    sink took it: delivery is at least once.
    """

    async def read(self) -> EventBatch:
        """The next events to deliver (may wait a while for some)."""
        ...

    async def ack(self, event_ids: Sequence[str]) -> None:
        """Every sink took these events: they are not delivered again."""
        ...

    async def close(self) -> None:
        """This process stops delivering: let another take over at once."""
        ...


class EventPump:
    """Hands the events a backend stored to the event sinks, in order, off the step path.

    Every event the backend's :class:`EventFeed` reads goes to each sink in turn; the
    batch is acknowledged once every sink had every event of it. A sink that raises is
    reported and skipped (the event is not delivered to it again). Events the feed lost
    before delivery are counted in :attr:`lost` and logged.
    """

    def __init__(
        self,
        sinks: Sequence[Callable[[RuntimeEvent], Awaitable[None]]],
        feed: EventFeed,
        report: Callable[[str, Exception], None],
    ) -> None:
        """Pump ``feed`` to ``sinks``; ``report(where, exc)`` logs a sink's failure."""
        self.sinks = list(sinks)
        self.feed = feed
        self.report = report
        self.delivered = 0
        """Events delivered to every sink by this process."""
        self.lost = 0
        """Events the feed reported lost before delivery (trimmed from the stream)."""
        self._unacked: list[str] = []

    async def pump_pass(self) -> float:
        """Read a batch, deliver it, acknowledge it; a loop's pass (returns the wait)."""
        if self._unacked:  # delivered, but the acknowledgement failed: try it again first
            await self.feed.ack(self._unacked)
            self._unacked = []
        batch = await self.feed.read()
        if batch.lost:
            self.lost += batch.lost
            log.warning(
                "%d events were trimmed from the stream before they were delivered to the "
                "event sinks (ROOST_EVENTS_MAXLEN is too small for how far the sinks lag)",
                batch.lost,
            )
        for event in batch.events:
            await self._deliver(event)
            self._unacked.append(event.id)
            self.delivered += 1
        if self._unacked:
            await self.feed.ack(self._unacked)
            self._unacked = []
        return batch.wait

    async def _deliver(self, event: RuntimeEvent) -> None:
        for sink in self.sinks:
            try:
                await sink(event)
            except Exception as exc:  # a sink's failure is logged once per kind, never fatal
                self.report(f"event sink {sink!r}", exc)

    async def flush(self) -> None:
        """Acknowledge what was delivered and hand delivery over (the worker is stopping).

        Events read but not delivered stay pending: the next process to deliver takes them.
        """
        try:
            if self._unacked:
                await self.feed.ack(self._unacked)
                self._unacked = []
        finally:
            await self.feed.close()
