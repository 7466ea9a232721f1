"""The worker: takes deliveries off its engines' lists, leases items, runs steps, commits.

Roost runs its own loop over SAQ's ``RedisQueue`` lists instead of ``saq.Worker``: SAQ's
worker owns retries, timeouts and a sweep that would re-run jobs behind Roost's back,
while here the lease is the only authority. Each engine the worker runs is a lane: its
own slots and its own dispatcher over that engine's delivery list (see
:mod:`roost.redis.delivery`), so a worker only ever takes items it can run, and one
engine's backlog never holds up another's. A delivery costs one round trip to take a
batch of jobs, one to acquire (lease + item + snapshot) and one per committed step.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from roost.redis.children import family_for
from roost.redis.connection import BLOCK_SECONDS
from roost.redis.delivery import migrate_legacy
from roost.redis.faults import describe
from roost.redis.holder import Held, commit, fail, interrupted, progress, release
from roost.redis.identity import claim_identity
from roost.redis.keys import Keys, new_token
from roost.redis.maintenance import Clock
from roost.redis.scripts import prune_libraries
from roost.redis.signals import receive
from roost.redis.stopping import StopSignals
from roost.redis.supervise import (
    Health,
    RedisUnavailable,
    WorkerStuck,
    retry_outages,
    supervise,
    watch,
)
from roost.redis.timeouts import step_limit, wait_step
from roost.redis.upkeep import (
    deregister,
    heartbeat_pass,
    maintenance_pass,
    promote_pass,
    renew_pass,
    worker_info,
)
from roost.runtime.context import StepContext, use_step_context
from roost.runtime.contract import accept
from roost.runtime.errors import EngineContractError, PermanentError
from roost.runtime.models import Lease, RuntimeEvent, Signal, Snapshot, WorkItem
from roost.runtime.observe import Observers

if TYPE_CHECKING:
    from roost.redis.swarm import RedisSwarm
    from roost.runtime.engine import Engine
    from roost.runtime.observe import StepObserver
    from roost.runtime.stores import EventSink

__all__ = ["Worker"]

log = logging.getLogger("roost.worker")


WAIT_BASE_MS = 50
WAIT_CAP_MS = 1000

STEP_STOP_WAIT = 2.0
"""After the grace period, how long a cancelled step has to end (and its item released)."""
RELEASE_WAIT = 2.0
"""How long the release of an item whose step did not end may take before it is given up."""
CLEANUP_WAIT = 1.0
"""How long each closing chore (background loops, event sinks, deregistering) may take."""

T = TypeVar("T")


def acquire_waits(reply: list[Any]) -> tuple[float | None, float | None]:
    """From an acquire reply: seconds the item sat queued, and how late it was (or None)."""
    now = float(reply[3])
    queued = float(reply[9]) if len(reply) > 9 and reply[9] else None
    due = float(reply[10]) if len(reply) > 10 and reply[10] else None
    return (
        None if queued is None else max(now - queued, 0.0) / 1000.0,
        None if due is None else max(now - due, 0.0) / 1000.0,
    )


class StepEscaped(Exception):  # noqa: N818 (it carries, it is not an error of its own)
    """Carries a ``BaseException`` an engine raised (``SystemExit``, ``KeyboardInterrupt``...).

    Raised out of the step's task in its place, so that it fails that attempt only: it never
    reaches the event loop (where ``SystemExit`` and ``KeyboardInterrupt`` end the process) and
    is never taken for the runtime's own cancel.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__qualname__}: {original}")
        self.original = original


async def _bounded(what: str, awaitable: Awaitable[None], seconds: float) -> None:
    try:
        await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        log.warning("%s did not finish within %.1fs; going on", what, seconds)
    except Exception as exc:
        log.warning("%s failed: %s", what, describe(exc))


async def _cancel_all(tasks: list[asyncio.Task[None]], seconds: float = CLEANUP_WAIT) -> None:
    """Cancel ``tasks`` and wait for them a while, cancelling again any that swallowed it."""
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + seconds
    while pending and (left := deadline - time.monotonic()) > 0:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=min(left, 0.2))
    if pending:
        log.error("tasks did not stop: %s", sorted(t.get_name() for t in pending))


@dataclass
class Lane:
    """One engine on this worker: its slots, its delivery route, its running handlers."""

    engine: str
    slots: int
    keys: Keys
    handlers: set[asyncio.Task[None]] = field(default_factory=set[asyncio.Task[None]])
    slot_free: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    """Runs steps for one queue of a namespace until stopped."""

    def __init__(
        self,
        swarm: RedisSwarm,
        engines: dict[str, Engine],
        *,
        slots: dict[str, int],
        sinks: list[EventSink],
        observers: list[StepObserver] | None = None,
    ) -> None:
        self.swarm = swarm
        self.settings = swarm.settings
        self.keys = swarm.keys
        self.engines = engines
        self.lanes = {e: Lane(e, slots[e], swarm.keys.for_engine(e)) for e in engines}
        self.concurrency = sum(lane.slots for lane in self.lanes.values())
        self.sinks = [*swarm.registry.event_sinks, *sinks]
        self.observers = Observers([*swarm.registry.observers, *(observers or [])], swarm.worker_id)
        self.ttl = self.settings.lease_ttl
        self.held: dict[str, Held] = {}
        self.handlers: set[asyncio.Task[None]] = set()
        self.clock = Clock()
        self.health = Health()
        self.failure: str | None = None
        """Why the worker gave up (it then exits non-zero), or None."""
        self.stopping = False
        self.closing = False
        """Set when the worker shuts its background loops down (they end at their next turn)."""
        self.stop_event = asyncio.Event()
        self.wake = asyncio.Event()
        self.events: asyncio.Queue[RuntimeEvent] = asyncio.Queue(maxsize=10_000)
        self.steps_committed = 0
        self.next_promote = 0.0
        self.started = self.clock.now_ms() / 1000.0
        self.incarnation = new_token()
        """This run of the worker's identity (a restart with the same id has another)."""
        self.last_beat = time.monotonic()
        """When the last heartbeat that went through was sent (monotonic)."""
        self.beat_done = time.monotonic()
        """When the last heartbeat that went through came back (monotonic)."""
        self.beating_since = float("inf")
        """Server ms at which this worker's current unbroken run of heartbeats began."""
        self.superseded = False
        """Set when another run claimed this worker's identity (it looked dead)."""
        self._signals: StopSignals | None = None
        limits = {eid: getattr(eng, "max_attempts", None) for eid, eng in engines.items()}
        self.engine_limits = " ".join(
            f"{eid}={n}" for eid, n in limits.items() if isinstance(n, int) and n >= 1
        )

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking deliveries; running steps get the grace period to finish."""
        if not self.stopping:
            log.info("worker %s stopping", self.swarm.worker_id)
        self.stopping = True
        self.stop_event.set()
        for lane in self.lanes.values():
            lane.slot_free.set()

    def give_up(self, reason: str) -> None:
        """Stop because the worker cannot make progress; :meth:`run` then raises."""
        if self.failure is None:
            self.failure = reason
            log.error("worker %s gives up: %s", self.swarm.worker_id, reason)
        self.stop()

    def _on_signal(self, signum: int) -> None:
        """SIGINT/SIGTERM in the loop: stop gracefully (:class:`StopSignals` does the rest)."""
        self.stop()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Work until :meth:`stop` (or a signal), then drain gracefully.

        Raises:
            WorkerStuck: the worker's loops failed for longer than ``ROOST_STUCK_AFTER``.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if install_signal_handlers else ()
        for signum in signals:
            loop.add_signal_handler(signum, self._on_signal, signum)
        if signals:
            self._signals = StopSignals(self.settings.grace_period, signals)
            self._signals.install()
        sent_ms = self.clock.local_ms()
        seconds, micros = await self.swarm.client.time()
        self.clock.observe(seconds * 1000.0 + micros / 1000.0, sent_ms)
        self.started = self.clock.now_ms() / 1000.0
        # Before any work: a dead predecessor's leases come back, and this worker beats,
        # so that if it dies its own leases are found by its silence, not their expiry.
        # Idempotent, so an outage (Redis busy, loading, failing over) is ridden out.
        await retry_outages(
            self.health.loop("identity"),
            lambda: claim_identity(self, worker_info(self)),
            deadline=time.monotonic() + self.settings.stuck_after,
            giving_up=lambda: self.stopping,
        )
        # The Functions libraries of other versions go once every live worker runs this one.
        await prune_libraries(self.swarm.client, self.swarm.workers, self.swarm.worker_id)
        # Deliveries an older version left on the queue's single list go first.
        await migrate_legacy(self.swarm, self.keys)
        background = [
            self._loop("renewer", lambda: renew_pass(self)),
            self._loop("promoter", lambda: promote_pass(self)),
            self._loop("maintenance", maintenance_pass(self)),
            # Beats resume within half a second of Redis coming back: the others judge this
            # worker by its silence (ROOST_HEARTBEAT_TIMEOUT), so it must not back off long.
            self._loop("heartbeat", lambda: heartbeat_pass(self), max_backoff=0.5),
            self._loop("schedules", self.swarm.schedules.tick),
            self._loop("sinks", self._sink_pass),
            asyncio.create_task(
                watch(self.health, self.settings.stuck_after, self.give_up), name="roost-watch"
            ),
        ]
        dispatchers = [
            asyncio.create_task(
                supervise(
                    self.health.loop(f"dispatcher {lane.engine}"),
                    functools.partial(self._dispatcher, lane),
                    lambda: not self.stopping,
                ),
                name=f"roost-dispatcher-{lane.engine}",
            )
            for lane in self.lanes.values()
        ]
        try:
            await self.stop_event.wait()
            await asyncio.wait(dispatchers, timeout=BLOCK_SECONDS + 1.0)
            await self._drain()
        finally:
            self.closing = True
            await _cancel_all([*dispatchers, *background])
            await _bounded("event sinks", self._flush_sinks(), CLEANUP_WAIT)
            await _bounded("deregistering", deregister(self), CLEANUP_WAIT)
            for signum in signals:
                loop.remove_signal_handler(signum)
            if self._signals is not None:
                self._signals.keep()
                self._signals.stopped(failed=self.failure is not None)
        if self.failure is not None:
            raise WorkerStuck(f"worker {self.swarm.worker_id} gave up: {self.failure}")

    def _loop(
        self,
        name: str,
        body: Callable[[], Awaitable[float | None]],
        max_backoff: float | None = None,
    ) -> asyncio.Task[None]:
        loop = self.health.loop(name)
        if max_backoff is not None:
            loop.max_backoff = max_backoff
        task = asyncio.create_task(
            supervise(loop, body, lambda: not self.closing), name=f"roost-{name}"
        )
        task.add_done_callback(self._loop_ended)
        return task

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not self.closing and not task.cancelled():
            # supervise() outlives every Exception; only a BaseException ends it early.
            self.give_up(f"{task.get_name()} ended: {task.exception()!r}")

    async def _drain(self) -> None:
        """Let running steps finish within the grace period, then release their items.

        A step still running when the grace period ends is cancelled and its item released
        (its attempt refunded). A step that does not end when cancelled (it blocks in a
        thread, or swallows the cancel) has its item released all the same once
        STEP_STOP_WAIT has passed: the process is about to exit and take the step with it.
        Only when Redis cannot take the release is an item left to its lease, which recovery
        hands on when it expires (counting that attempt, like a crash).
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
            asyncio.create_task(release(self, h, "worker stopping", deadline=deadline))
            for h in stuck
        ]
        if releases:
            await asyncio.wait(releases, timeout=RELEASE_WAIT + 0.5)
        await _cancel_all(list(pending))

    # -- taking deliveries --------------------------------------------------------------

    async def _dispatcher(self, lane: Lane) -> None:
        """Take deliveries of ``lane``'s engine while it has free slots.

        BLMOVE moves a delivery to the engine's active list in the same command that hands
        it over, so one taken by a worker that dies before acquiring it stays findable
        (reclaim re-dispatches it); each lane blocks on its own list, over its own
        connection, which is what keeps one engine's backlog from holding up another's.
        """
        loop = self.health.loop(f"dispatcher {lane.engine}")
        keys = lane.keys
        while not self.stopping:
            free = lane.slots - len(lane.handlers)
            if free <= 0:
                lane.slot_free.clear()
                await lane.slot_free.wait()
                continue
            try:
                jobs: list[str] = await self.swarm.run_script("dequeue", [], [free], keys=keys)
                if not jobs:
                    job = await self.swarm.blocking_client.blmove(
                        keys.saq_queued, keys.saq_active, BLOCK_SECONDS, "LEFT", "RIGHT"
                    )
                    jobs = [job] if job else []
                loop.ok()
            except Exception as exc:
                await loop.backoff(exc)
                continue
            if self.stopping and jobs:
                await self._undeliver(keys, jobs)
                return
            for job_id in jobs:
                task = asyncio.create_task(self._handle(lane, job_id))
                lane.handlers.add(task)
                self.handlers.add(task)
                task.add_done_callback(functools.partial(self._handler_done, lane))
            # Let the new handlers send their acquire before the next dequeue goes out:
            # on an idle worker that is the difference between the step starting after one
            # round trip or after two.
            await asyncio.sleep(0)

    def _handler_done(self, lane: Lane, task: asyncio.Task[None]) -> None:
        lane.handlers.discard(task)
        self.handlers.discard(task)
        lane.slot_free.set()

    async def _undeliver(self, keys: Keys, jobs: list[str]) -> None:
        try:
            await self.swarm.run_script("undeliver", [], jobs, keys=keys)
        except Exception as exc:
            log.warning(
                "could not put %d deliveries back (%s); they will be re-dispatched",
                len(jobs),
                describe(exc),
            )

    async def retrying(
        self, call: Callable[[], Awaitable[T]], *, deadline: float | None = None
    ) -> T:
        """Run ``call()`` until Redis serves it (scripts tolerate a repeat); outages only.

        Raises:
            RedisUnavailable: the outage outlasted ``deadline`` (monotonic) or, without one,
                the worker began to stop.
        """
        return await retry_outages(
            self.health.loop("steps"),
            call,
            deadline=deadline,
            giving_up=lambda: deadline is None and self.stopping,
        )

    async def _handle(self, lane: Lane, job_id: str) -> None:
        """Run one delivery; whatever goes wrong is logged and ends this delivery only.

        An item whose handling failed unexpectedly keeps its lease until it expires; recovery
        then hands it on, counting the attempt, as after a crash. One item's trouble does not
        make the worker unhealthy.
        """
        try:
            await self._handle_delivery(lane, job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.health.loop("steps").report(exc)

    async def _handle_delivery(self, lane: Lane, job_id: str) -> None:
        parsed = lane.keys.parse_job(job_id)
        if parsed is None:
            log.warning("ignoring a foreign job on the queue: %s", job_id)
            return
        work_id, dispatch = parsed
        token = new_token()
        resources = ""
        for _ in range(3):
            sent = time.monotonic()
            sent_ms = self.clock.local_ms()
            try:
                reply = await self.retrying(
                    functools.partial(
                        self._acquire, lane.keys, work_id, dispatch, token, job_id, resources
                    ),
                )
            except RedisUnavailable:
                return  # stopping; the delivery is reclaimed later
            if reply[0] == "NEEDRES":
                resources = reply[1]
                continue
            break
        else:
            return
        if reply[0] == "OK":
            self.clock.observe(float(reply[3]), sent_ms)
            await self._run_item(lane, work_id, token, reply, sent)
        elif reply[0] == "WAIT":
            self.wake_at(self.clock.now_ms() + float(reply[1]))

    async def _acquire(
        self, keys: Keys, work_id: str, dispatch: str, token: str, job_id: str, resources: str
    ) -> Any:
        names = resources.split(" ") if resources else []
        return await self.swarm.run_script(
            "acquire",
            [
                keys.meta(work_id),
                keys.item(work_id),
                keys.snap(work_id),
                job_id,
                *keys.res_block(names),
            ],
            [
                work_id,
                dispatch,
                token,
                self.settings.max_attempts,
                len(names),
                resources,
                WAIT_BASE_MS,
                WAIT_CAP_MS,
                self.engine_limits,
            ],
            keys=keys,
        )

    # -- running an item ------------------------------------------------------------------

    async def _run_item(
        self, lane: Lane, work_id: str, token: str, reply: list[Any], sent: float
    ) -> None:
        _, epoch, lexp, _now, attempt, version, item_json, snap_json, cxl = reply[:9]
        item = WorkItem.model_validate_json(item_json)
        route = lane.keys if item.engine == lane.engine else self.keys.for_engine(item.engine)
        held = Held(work_id, token, int(epoch), list(item.resources), sent + self.ttl, route)
        if self.observers:
            held.waits = acquire_waits(reply)
        lease = Lease(
            work_id=work_id,
            worker_id=self.swarm.worker_id,
            token=token,
            epoch=int(epoch),
            expires_at=float(lexp) / 1000.0,
        )
        self.held[work_id] = held
        try:
            if cxl:
                held.cancelled = True
                await release(self, held, "cancelled")
                return
            self.event("started", work_id, None, int(version), {"attempt": int(attempt)})
            snapshot = Snapshot.model_validate_json(snap_json) if snap_json else None
            engine = self.engines.get(item.engine)
            if engine is None:
                # Only a delivery put on the wrong list gets here: send it to its own
                # engine's list, with its attempt refunded.
                log.warning("work %s of %s was on %s's list", work_id, item.engine, lane.engine)
                await release(self, held, "wrong engine's list")
                return
            await self._steps(held, lease, engine, item, snapshot, int(version), int(attempt))
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
        version: int,
        attempt: int,
    ) -> None:
        inline = 0
        # An init snapshot not committed yet: it goes to Redis together with the first
        # step's result (one round trip less before a new item's first step). If the worker
        # dies in between, init_snapshot simply runs again, as after any crash before a
        # commit.
        pending: str | None = None
        while True:
            if self.stopping:
                # Stopping began while the lease was being taken or an inline commit was
                # in flight: no step starts after that; the item goes back with its attempt.
                await release(self, held, "worker stopping")
                return
            signals: list[Signal] = []
            timed_out = False
            if snapshot is not None:
                try:
                    snapshot, signals, timed_out = await receive(self, held, snapshot)
                except RedisUnavailable:
                    return  # the lease lapses; recovery hands the item on
            ctx = StepContext(
                work_id=item.work_id,
                version=version,
                attempt=attempt,
                worker_id=self.swarm.worker_id,
                artifacts=self.swarm.artifacts,
                workspace_root=self.settings.workspaces,
                lease=lease,
                report=lambda f, m, d: progress(self, held, f, m, d),
                cancel_event=held.cancel_event,
                signals=signals,
                wait_timed_out=timed_out,
                family=family_for(
                    self.swarm, item, stepping=snapshot is not None, retrying=self.retrying
                ),
            )

            task = self._start_step(held, ctx, engine, item, snapshot, version, attempt)
            timed_out = await wait_step(held, step_limit(engine, item))
            exc = timed_out or (None if task.cancelled() else task.exception())
            if not timed_out and (
                task.cancelled() or (exc is not None and held.cancel_event.is_set())
            ):
                # Told to stop (worker stopping, lease lost, item cancelled): however the
                # step ended, that is an interruption, not a failure of the step.
                await interrupted(self, held)
                return
            if exc is not None:
                if isinstance(exc, StepEscaped):
                    exc = exc.original
                if pending is not None:
                    # Keep the init snapshot (only the step failed) and the lease and claims,
                    # so the failure below is recorded against this attempt.
                    kept = await commit(
                        self, held, item, snapshot, pending, version - 1, inline, hold=True
                    )
                    if kept is None:
                        return
                terminal = isinstance(exc, EngineContractError | PermanentError)
                await fail(self, held, item, exc, attempt, terminal=terminal)
                return
            new, snap_json, ended = task.result()
            held.charge += ctx.charged
            if snapshot is None and self._goes_on_after_init(new):
                pending = snap_json
                snapshot, version = new, version + 1
                continue
            base = version if pending is None else version - 1
            next_snapshot = await commit(
                self,
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
            self._call(ctx, engine, item, snapshot, version + 1),
            context=record.context if record is not None else None,
        )
        return held.task

    @staticmethod
    async def _call(
        ctx: StepContext, engine: Engine, item: WorkItem, snap: Snapshot | None, version: int
    ) -> tuple[Snapshot, str, float]:
        """Run init_snapshot or step under the step context; check the result as ``version``.

        Returns the accepted snapshot (a fresh copy), the JSON text to commit and the
        time the engine returned (:meth:`Clock.local_ms`). Whatever the engine raises fails
        this attempt only: a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``,
        ``GeneratorExit``, a ``CancelledError`` the runtime did not ask for) comes out as
        :class:`StepEscaped`; only the runtime's own cancel comes out as a cancel.
        """
        with use_step_context(ctx):
            try:
                if snap is None:
                    result: object = await engine.init_snapshot(item)
                else:
                    result = await engine.step(snap, item)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                raise StepEscaped(exc) from exc
            except Exception:
                raise
            except BaseException as exc:
                raise StepEscaped(exc) from exc
            ended = Clock.local_ms()
            return (*accept(result, item, version=version, previous=snap), ended)

    def _goes_on_after_init(self, init: Snapshot) -> bool:
        """Whether step 1 follows init_snapshot at once, on the same lease and claims."""
        return (
            not init.is_finished
            and init.next_step_delay_seconds <= 0
            and not init.waits
            and not self.stopping
        )

    # -- background tasks -----------------------------------------------------------------

    def wake_at(self, due_ms: float) -> None:
        """Make the promoter look again at ``due_ms`` (server time) at the latest."""
        if due_ms <= self.next_promote:
            self.wake.set()

    # -- events -----------------------------------------------------------------------------

    def event(
        self,
        etype: str,
        work_id: str,
        step: str | None,
        version: int | None,
        data: dict[str, Any],
        eid: str = "",
    ) -> None:
        """Hand an event to the event sinks (delivered off the step path, in order)."""
        if not self.sinks:
            return
        event = RuntimeEvent(
            id=eid,
            type=etype,
            work_id=work_id,
            step=step,
            version=version,
            worker=self.swarm.worker_id,
            data=data,
        )
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event sinks are too slow; dropped a %s event", etype)

    async def _sink_pass(self) -> float:
        await self._deliver(await self.events.get())
        return 0.0

    async def _deliver(self, event: RuntimeEvent) -> None:
        for sink in self.sinks:
            try:
                await sink(event)
            except Exception as exc:  # a sink's failure is logged once per kind, never fatal
                self.health.loop(f"event sink {sink!r}").report(exc)

    async def _flush_sinks(self) -> None:
        while not self.events.empty():
            await self._deliver(self.events.get_nowait())
