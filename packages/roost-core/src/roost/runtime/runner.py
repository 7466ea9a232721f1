"""The step cycle, written once for every backend.

A backend delivers items and keeps their leases; this module runs them. The backend is a
:class:`roost.runtime.stores.LeaseStore`: it acquires an item's lease, renews the leases a
worker holds, commits a step's snapshot, records a failed attempt, releases an item, saves
progress and recovers what lapsed, each with a typed reply. The :class:`Runner` owns the
rest: the step loop (``init_snapshot``, then ``step`` after ``step`` on the same lease while
the item goes on inline), what follows a committed step (done, a wait, a delay, inline or
back to the queue), the backoff of a failed attempt, step timeouts, interruptions (lease
lost, item cancelled, worker stopping) and the drain of a stopping worker. It builds no
events: the backend stores each event with the write it records, and the event sinks get
them from there (see :class:`roost.runtime.observe.EventPump`).

A backend's worker takes deliveries, acquires their leases and hands each to
:meth:`Runner.run`; it runs :meth:`Runner.renew_pass` in a loop of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from roost.runtime.context import StepContext
from roost.runtime.errors import EngineContractError, PermanentError
from roost.runtime.models import Lease, Signal, Snapshot, WorkItem
from roost.runtime.steps import StepEscaped, call_step, step_limit, wait_step
from roost.runtime.stores import (
    Acquired,
    Commit,
    CommitStatus,
    FailStatus,
    Failure,
    Held,
    LeaseStore,
    Next,
    RenewStatus,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from roost.runtime.engine import Engine
    from roost.runtime.observe import Observers, Outcome
    from roost.runtime.settings import RoostSettings
    from roost.runtime.stores import ArtifactStore

__all__ = [
    "PROGRESS_MIN_INTERVAL",
    "Runner",
    "cancel_all",
    "retry_backoff",
]

log = logging.getLogger("roost.worker")
_T = TypeVar("_T")

PROGRESS_MIN_INTERVAL = 0.5
"""A step's progress is saved at most this often (seconds), and its last report always."""
STEP_STOP_WAIT = 2.0
"""After the grace period, how long a cancelled step has to end (and its item released)."""
RELEASE_WAIT = 2.0
"""How long the release of an item whose step did not end may take before it is given up."""


def retry_backoff(settings: RoostSettings, attempt: int) -> int:
    """The wait before retrying after failed attempt ``attempt`` (ms): exponential, jittered.

    ``ROOST_RETRY_DELAY`` doubled per attempt, capped at ``ROOST_RETRY_MAX_DELAY``; the wait
    is drawn from the upper half of that, so retries of many items spread out.
    """
    delay = min(settings.retry_delay * 2 ** (attempt - 1), settings.retry_max_delay)
    return int((delay / 2 + random.uniform(0, delay / 2)) * 1000)


async def cancel_all(tasks: Sequence[asyncio.Task[None]], seconds: float) -> None:
    """Cancel ``tasks`` and wait for them a while, cancelling again any that swallowed it."""
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + seconds
    while pending and (left := deadline - time.monotonic()) > 0:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=min(left, 0.2))
    if pending:
        log.error("tasks did not stop: %s", sorted(t.get_name() for t in pending))


_EVENT_DATA = {o: json.dumps({"next": o}) for o in (Next.DONE, Next.INLINE, Next.HOLD, Next.QUEUE)}
"""The event data of a commit with no delay, by what follows: the same text every step."""


class Runner:
    """Runs the steps of the items a worker leases, against a :class:`LeaseStore`."""

    def __init__(
        self,
        store: LeaseStore,
        engines: dict[str, Engine],
        *,
        settings: RoostSettings,
        worker_id: str,
        artifacts: Callable[[], ArtifactStore],
        observers: Observers,
        error_json: Callable[[BaseException, int, float], tuple[str, str, str]],
    ) -> None:
        """Set the runner up (it starts nothing).

        Args:
            store: the backend.
            engines: the engines this worker runs, by id.
            settings: the worker's settings (lease TTL, inline steps, retries, grace period).
            worker_id: this worker's identity.
            artifacts: the artifact store steps write to (called when a step starts).
            observers: the step observers.
            error_json: ``error_json(exc, attempt, now)`` describes a failed attempt:
                its error type, message and the full description as JSON.
        """
        self.store = store
        self.engines = engines
        self.settings = settings
        self.worker_id = worker_id
        self.artifacts = artifacts
        self.observers = observers
        self.error_json = error_json
        self.ttl = settings.lease_ttl
        self.held: dict[str, Held] = {}
        self.handlers: set[asyncio.Task[None]] = set()
        """The tasks that run deliveries (each ends when its item is let go)."""
        self.stopping = False
        self.steps_committed = 0
        self.wake = asyncio.Event()
        """Set when due work may be waiting (a retry, a delay, a woken item)."""
        self.next_promote = 0.0
        """When (backend ms) the promotion of due work looks next."""

    # -- waking due work ---------------------------------------------------------------

    def wake_at(self, due_ms: float) -> None:
        """Make the promotion of due work look again at ``due_ms`` at the latest."""
        if due_ms <= self.next_promote:
            self.wake.set()

    # -- running an item ---------------------------------------------------------------

    async def run(self, acquired: Acquired, engine_id: str) -> None:
        """Run the steps of a leased item until it lets go of the lease.

        ``engine_id`` is the engine whose delivery it was: an item of another engine goes
        back to its own engine's queue, its attempt refunded.
        """
        item = acquired.item
        work_id = acquired.work_id
        held = Held(
            work_id,
            acquired.token,
            acquired.epoch,
            item.engine,
            list(item.resources),
            acquired.sent + self.ttl,
            acquired.route,
        )
        if self.observers:
            held.waits = acquired.waits
        lease = Lease(
            work_id=work_id,
            worker_id=self.worker_id,
            token=acquired.token,
            epoch=acquired.epoch,
            expires_at=acquired.expires_ms / 1000.0,
        )
        self.held[work_id] = held
        try:
            if acquired.cancelled:
                held.cancelled = True
                await self.release(held, "cancelled")
                return
            snapshot = acquired.snapshot
            engine = self.engines.get(item.engine)
            if engine is None:
                # Only a delivery put on the wrong list gets here: send it to its own
                # engine's list, with its attempt refunded.
                log.warning("work %s of %s was on %s's list", work_id, item.engine, engine_id)
                await self.release(held, "wrong engine's list")
                return
            await self._steps(held, lease, engine, item, snapshot, acquired)
        finally:
            self.held.pop(work_id, None)
            self.observers.steps_ended(held.records, "interrupted", "not committed")

    async def _steps(
        self,
        held: Held,
        lease: Lease,
        engine: Engine,
        item: WorkItem,
        snapshot: Snapshot | None,
        acquired: Acquired,
    ) -> None:
        version, attempt = acquired.version, acquired.attempt
        inline = 0
        # An init snapshot not committed yet: it goes to the backend together with the
        # first step's result (one round trip less before a new item's first step). If the
        # worker dies in between, init_snapshot simply runs again, as after any crash
        # before a commit.
        pending: str | None = None
        while True:
            if self.stopping:
                # Stopping began while the lease was being taken or an inline commit was
                # in flight: no step starts after that; the item goes back with its attempt.
                await self.release(held, "worker stopping")
                return
            signals: list[Signal] = []
            timed_out = False
            if snapshot is not None:
                try:
                    snapshot, signals, timed_out = await self._receive(held, snapshot)
                except StoreUnavailable:
                    return  # the lease lapses; recovery hands the item on
            ctx = StepContext(
                work_id=item.work_id,
                version=version,
                attempt=attempt,
                worker_id=self.worker_id,
                artifacts=self.artifacts(),
                workspace_root=self.settings.workspaces,
                lease=lease,
                report=lambda f, m, d: self.progress(held, f, m, d),
                cancel_event=held.cancel_event,
                signals=signals,
                wait_timed_out=timed_out,
                family=self.store.family(item, stepping=snapshot is not None),
            )

            task = self._start_step(held, ctx, engine, item, snapshot, version, attempt)
            timed_out = await wait_step(held, step_limit(engine, item))
            exc = timed_out or (None if task.cancelled() else task.exception())
            if not timed_out and (
                task.cancelled() or (exc is not None and held.cancel_event.is_set())
            ):
                # Told to stop (worker stopping, lease lost, item cancelled): however the
                # step ended, that is an interruption, not a failure of the step.
                await self.interrupted(held)
                return
            if exc is not None:
                if isinstance(exc, StepEscaped):
                    exc = exc.original
                if pending is not None:
                    # Keep the init snapshot (only the step failed) and the lease and claims,
                    # so the failure below is recorded against this attempt.
                    kept = await self.commit(
                        held, item, snapshot, pending, version - 1, inline, hold=True
                    )
                    if kept is None:
                        return
                terminal = isinstance(exc, EngineContractError | PermanentError)
                await self.fail(held, item, exc, attempt, terminal=terminal)
                return
            new, snap_json, ended = task.result()
            held.charge += ctx.charged
            if snapshot is None and self._goes_on_after_init(new):
                pending = snap_json
                snapshot, version = new, version + 1
                continue
            base = version if pending is None else version - 1
            next_snapshot = await self.commit(
                held,
                item,
                new,
                snap_json,
                base,
                inline,
                init=snapshot if pending is not None else None,
                ended=ended,
                ctx=ctx,
            )
            if next_snapshot is None:
                return
            pending = None
            snapshot, version, attempt, inline = next_snapshot, version + 1, 1, inline + 1

    async def _receive(self, held: Held, snapshot: Snapshot) -> tuple[Snapshot, list[Signal], bool]:
        """What the step after a wait starts from.

        Returns the snapshot without its wait, the signals it waited for that arrived (their
        ids recorded on ``held``, for the commit to consume) and whether the wait timed out.
        A snapshot that did not wait costs no round trip.
        """
        if not snapshot.waits:
            held.consume = []
            return snapshot, [], False
        names = set(snapshot.waits_for)
        arrived = [s for s in await self.store.signals(held) if s.name in names]
        held.consume = [s.id for s in arrived]
        timed_out = not arrived and snapshot.wait_timeout_seconds is not None
        return snapshot.without_wait(), arrived, timed_out

    def _start_step(
        self,
        held: Held,
        ctx: StepContext,
        engine: Engine,
        item: WorkItem,
        snapshot: Snapshot | None,
        version: int,
        attempt: int,
    ) -> asyncio.Task[tuple[Snapshot, str, float]]:
        """Start the step after ``version`` as ``held.task``, observed (and traced) if asked."""
        record = self.observers.step_started(
            work_id=item.work_id,
            engine=item.engine,
            version=version + 1,
            attempt=attempt,
            headers=item.headers,
            queued_for=held.waits[0],
            late_by=held.waits[1],
        )
        if record is not None:
            held.records.append(record)
            held.waits = (None, None)
        held.task = asyncio.create_task(
            self._unless_stopping(call_step(ctx, engine, item, snapshot, version + 1)),
            context=record.context if record is not None else None,
        )
        return held.task

    async def _unless_stopping(self, step: Coroutine[Any, Any, _T]) -> _T:
        """Run ``step``, unless the worker began to stop before the task's first run.

        A task starts on a later pass of the event loop than the one that made it, and a
        SIGTERM handled in between must not let the engine start: the step ends as
        interrupted (its item is released with its attempt), as if stopping had come first.
        """
        if self.stopping:
            step.close()
            raise asyncio.CancelledError("the worker began to stop before the step started")
        return await step

    def _goes_on_after_init(self, init: Snapshot) -> bool:
        """Whether step 1 follows init_snapshot at once, on the same lease and claims."""
        return (
            not init.is_finished
            and init.next_step_delay_seconds <= 0
            and not init.waits
            and not self.stopping
        )

    # -- what a lease holder writes back ---------------------------------------------------

    def next_after(self, new: Snapshot, item: WorkItem, inline: int) -> tuple[Next, int]:
        """What follows a committed step, and the delay in ms for :attr:`Next.DELAY`."""
        if new.is_finished:
            return Next.DONE, 0
        if new.waits:
            return Next.AWAIT_SIGNALS, 0
        delay_ms = int(round(new.next_step_delay_seconds * 1000))
        if delay_ms > 0:
            return Next.DELAY, delay_ms
        if not self.stopping and inline < self.settings.inline_steps and not item.resources:
            return Next.INLINE, 0
        return Next.QUEUE, 0

    async def commit(
        self,
        held: Held,
        item: WorkItem,
        new: Snapshot | None,
        snap_json: str,
        version: int,
        inline: int,
        *,
        init: Snapshot | None = None,
        hold: bool = False,
        ended: float | None = None,
        ctx: StepContext | None = None,
    ) -> Snapshot | None:
        """Commit ``new`` on top of committed ``version``; ``init`` goes first if given.

        With ``hold``, the lease (and any resource claims) are kept whatever ``new`` says.
        ``ended`` is when the step returned (monotonic ms): a delay it asks for runs
        from then, so a commit held up by a busy worker or a slow backend does not add to it.
        ``ctx`` is the step's context: the children it spawned are created by this commit,
        and a wait for them parks the item (``awaiting``).
        Returns the snapshot to continue with on the same lease, or None.
        """
        assert new is not None
        outcome, delay_ms = (Next.HOLD, 0) if hold else self.next_after(new, item, inline)
        family = ctx.family if ctx is not None and not hold else None
        if family is not None and family.wait is not None and not new.is_finished:
            outcome, delay_ms = Next.AWAIT, 0
        data = _EVENT_DATA.get(outcome) if not delay_ms else None
        if data is None:
            data = json.dumps(
                {"next": str(outcome), "delay": delay_ms / 1000.0}
                if delay_ms
                else {"next": str(outcome)}
            )
        request = Commit(
            item=item,
            snapshot=new,
            snapshot_json=snap_json,
            base=version,
            next=outcome,
            delay_ms=delay_ms,
            event_data=data,
            init=init,
            ended_ms=self.store.clock.server_ms(ended) if ended is not None else None,
            family=family,
            engine=self.engines.get(item.engine),
        )
        final = request.final
        try:
            reply = await self.store.commit(held, request)
        except StoreUnavailable as exc:
            log.error(
                "commit of %s v%d failed: the backend could not take it before the lease "
                "lapsed (%s)",
                held.work_id,
                final,
                exc,
            )
            self.observers.steps_ended(held.records, "refused", "store unavailable")
            return None
        status = reply.status
        if status in (CommitStatus.CHILD_TAKEN, CommitStatus.CHILD_RACE) and ctx is not None:
            why = (
                f"child {reply.reason} belongs to another parent or has children of its own"
                if status is CommitStatus.CHILD_TAKEN
                else (f"child idempotency key {reply.reason!r} keeps changing owner")
            )
            await self.fail(held, item, EngineContractError(why), ctx.attempt, terminal=True)
            return None
        if status in (CommitStatus.COMMITTED, CommitStatus.REPEATED):
            self.observers.steps_ended(held.records, "committed", str(outcome), upto=final)
            held.consume = []
            held.charge = 0.0
            self.steps_committed += final - version
            if reply.woke:
                self.wake.set()
            if reply.due_ms is not None and outcome is Next.DELAY:
                self.wake_at(reply.due_ms)
            if (
                outcome in (Next.INLINE, Next.HOLD)
                and not held.cancel_event.is_set()
                and not reply.paused
            ):
                return new  # parsed from the committed text: it shares nothing with the engine
            return None
        code = reply.reason if status is CommitStatus.REFUSED else str(status)
        self.observers.steps_ended(held.records, "refused", code.lower())
        if status is CommitStatus.CANCELLED:
            log.info("work %s was cancelled; its commit was refused", held.work_id)
        else:
            log.warning("commit of %s v%d refused: %s", held.work_id, final, code)
        return None

    async def fail(
        self, held: Held, item: WorkItem, exc: BaseException, attempt: int, *, terminal: bool
    ) -> None:
        """Record a failed attempt: retry after a backoff with jitter, or fail/dead the item.

        The event of a retry says when it comes (``delay``); a ``dead`` or ``failed`` event
        has no delay: nothing follows it.
        """
        etype, message, error_json = self.error_json(
            exc, attempt, self.store.clock.now_ms() / 1000.0
        )
        backoff_ms = retry_backoff(self.settings, attempt)
        final = {"error": etype, "message": message[:200], "attempt": attempt}
        data = json.dumps(final)
        retry_data = json.dumps({**final, "delay": backoff_ms / 1000.0})
        log.warning(
            "work %s attempt %d failed: %s: %s",
            held.work_id,
            attempt,
            etype,
            message[:200],
            extra={
                "event": "step_failed",
                "work_id": held.work_id,
                "engine": item.engine,
                "attempt": attempt,
                "worker": self.worker_id,
                "error": etype,
                "exception": exc,
            },
        )
        failure = Failure(item, error_json, backoff_ms, terminal, data, retry_data)
        try:
            reply = await self.store.fail(held, failure)
        except StoreUnavailable:
            self.observers.steps_ended(held.records, "refused", "store unavailable")
            return
        observed: dict[FailStatus, Outcome] = {
            FailStatus.RETRYING: "retried",
            FailStatus.DEAD: "dead",
            FailStatus.FAILED: "failed",
        }
        outcome = observed.get(reply.status)
        if outcome is None:
            self.observers.steps_ended(held.records, "refused", reply.reason.lower())
            return
        self.observers.steps_ended(held.records, outcome, etype)
        if reply.woke:
            self.wake.set()
        if reply.due_ms is not None:
            self.wake_at(reply.due_ms)

    async def interrupted(self, held: Held) -> None:
        """A step that was cut short: its lease was lost, it was cancelled, or the worker stops."""
        why = "lease lost" if held.lost else "cancelled" if held.cancelled else "worker stopping"
        self.observers.steps_ended(held.records, "interrupted", why)
        if held.lost:
            log.warning("lease of %s lost; its step was abandoned", held.work_id)
        elif held.cancelled:
            await self.release(held, "cancelled")
        else:
            await self.release(held, "worker stopping")

    async def release(self, held: Held, reason: str, *, deadline: float | None = None) -> None:
        """Give the item back to the queue's front without using an attempt.

        Tried until the backend takes it, the lease lapses or ``deadline`` (monotonic)
        passes; then the item is left to its lease, which recovery hands on when it expires.
        """
        until = held.deadline if deadline is None else min(deadline, held.deadline)
        try:
            reply = await self.store.release(held, reason, deadline=until)
        except StoreUnavailable:
            return
        if reply.released:
            if reply.woke:
                self.wake.set()

    async def progress(
        self, held: Held, fraction: float | None, message: str | None, data: dict[str, Any]
    ) -> None:
        """Save a step's progress report (at most every PROGRESS_MIN_INTERVAL, and the last)."""
        now = time.monotonic()
        if now - held.last_progress < PROGRESS_MIN_INTERVAL and fraction != 1.0:
            return
        held.last_progress = now
        ts = self.store.clock.now_ms() / 1000.0
        body = json.dumps({"fraction": fraction, "message": message, "data": data, "ts": ts})
        await self.store.progress(held, body)

    # -- leases ------------------------------------------------------------------------------

    async def renew_pass(self) -> float:
        """Renew every lease held in one call; return the wait until the next pass.

        A lease reported lost (or not renewed before its local deadline while the renewal
        fails) interrupts its step; a cancelled item interrupts its step too.
        """
        interval = max(self.ttl / 3.0, 0.1)
        batch = [h for h in self.held.values() if not h.lost]
        if not batch:
            return interval
        sent = time.monotonic()
        try:
            statuses = await self.store.renew(batch)
        except Exception:
            for h in batch:
                if time.monotonic() > h.deadline:
                    self._lost(h)
            raise
        for h, status in zip(batch, statuses, strict=True):
            if status is RenewStatus.OK:
                h.deadline = sent + self.ttl
            elif status is RenewStatus.CANCELLED:
                h.deadline = sent + self.ttl
                if not h.cancelled:
                    h.cancelled = True
                    h.interrupt()
            else:
                self._lost(h)
        if self.observers:
            self.observers.leases_renewed(sum(1 for s in statuses if s is not RenewStatus.LOST))
        return interval

    def _lost(self, held: Held) -> None:
        held.lost = True
        held.interrupt()
        self.observers.lease_lost(held.engine)

    def lose_all(self) -> None:
        """Every lease is no longer this worker's (another run took its identity)."""
        for held in self.held.values():
            held.lost = True
            held.interrupt()

    async def drain(self) -> None:
        """Let running steps finish within the grace period, then release their items.

        A step still running when the grace period ends is cancelled and its item released
        (its attempt refunded). A step that does not end when cancelled (it blocks in a
        thread, or swallows the cancel) has its item released all the same once
        STEP_STOP_WAIT has passed: the process is about to exit and take the step with it.
        Only when the backend cannot take the release is an item left to its lease, which
        recovery hands on when it expires (counting that attempt, like a crash).
        """
        if not self.handlers:
            return
        log.info(
            "waiting up to %.0fs for %d running steps",
            self.settings.grace_period,
            len(self.handlers),
        )
        _done, pending = await asyncio.wait(self.handlers, timeout=self.settings.grace_period)
        if not pending:
            return
        log.warning("grace period over: releasing %d items to other workers", len(pending))
        for held in list(self.held.values()):
            held.interrupt()  # neither lost nor cancelled: released as stopping
        _done, pending = await asyncio.wait(pending, timeout=STEP_STOP_WAIT)
        if not pending:
            return
        stuck = list(self.held.values())
        log.warning(
            "%d steps did not stop when cancelled (%s); releasing their items anyway",
            len(stuck),
            ", ".join(h.work_id for h in stuck),
        )
        deadline = time.monotonic() + RELEASE_WAIT
        releases = [
            asyncio.create_task(self.release(h, "worker stopping", deadline=deadline))
            for h in stuck
        ]
        if releases:
            await asyncio.wait(releases, timeout=RELEASE_WAIT + 0.5)
        await cancel_all(list(pending), 1.0)
