"""The worker: takes deliveries off its engines' lists, leases items, runs steps, commits.

Roost runs its own loop over SAQ's ``RedisQueue`` lists instead of ``saq.Worker``: SAQ's
worker owns retries, timeouts and a sweep that would re-run jobs behind Roost's back,
while here the lease is the only authority. Each engine the worker runs is a lane: its
own slots and its own dispatcher over that engine's delivery list (see
:mod:`roost.redis.delivery`), so a worker only ever takes items it can run, and one
engine's backlog never holds up another's. In a namespace of several partitions, a lane
serves the partitions that rendezvous hashing gives it among the live workers of its engine
(:func:`roost.redis.placement.served_by`), with one dispatcher for each, and follows the
live set as workers come and go. A delivery costs one round trip to take a
batch of jobs, one to acquire (lease + item + snapshot) and one per committed step.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roost.redis.connection import BLOCK_SECONDS
from roost.redis.delivery import migrate_legacy
from roost.redis.event_feed import RedisEventFeed
from roost.redis.faults import describe
from roost.redis.holder import RedisLeases, describe_failure
from roost.redis.identity import claim_identity, heartbeat_interval
from roost.redis.keys import Keys, new_token
from roost.redis.placement import served_by
from roost.redis.scripts import prune_libraries
from roost.redis.supervise import (
    Health,
    RedisUnavailable,
    WorkerStuck,
    retry_outages,
    supervise,
    watch,
)
from roost.redis.upkeep import (
    deregister,
    heartbeat_pass,
    maintenance_pass,
    promote_pass,
    worker_info,
)
from roost.runtime.observe import EventPump, Observers
from roost.runtime.runner import Runner, cancel_all
from roost.runtime.stopping import WorkerSignals
from roost.runtime.stores import Acquired

if TYPE_CHECKING:
    from roost.redis.schedules import Schedules
    from roost.redis.store import RedisStore
    from roost.runtime.engine import Engine
    from roost.runtime.observe import StepObserver
    from roost.runtime.stores import EventSink

__all__ = ["Worker"]

log = logging.getLogger("roost.worker")


CLEANUP_WAIT = 1.0
"""How long each closing chore (background loops, event sinks, deregistering) may take."""


async def _bounded(what: str, awaitable: Awaitable[None], seconds: float) -> None:
    try:
        await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        log.warning("%s did not finish within %.1fs; going on", what, seconds)
    except Exception as exc:
        log.warning("%s failed: %s", what, describe(exc))


@dataclass
class Lane:
    """One engine on this worker: its slots, its delivery route, its running handlers."""

    engine: str
    slots: int
    keys: Keys
    handlers: set[asyncio.Task[None]] = field(default_factory=set[asyncio.Task[None]])
    slot_free: asyncio.Event = field(default_factory=asyncio.Event)
    taking: int = 0
    """Slots the lane's dispatchers (one per partition) are taking deliveries for now."""
    serving: frozenset[int] = frozenset()
    """The partitions whose deliveries this lane takes now (see :meth:`Worker.share`)."""
    live: frozenset[str] | None = None
    """The live workers of this engine that ``serving`` was computed from."""
    dispatchers: dict[int, asyncio.Task[None]] = field(
        default_factory=dict[int, "asyncio.Task[None]"]
    )
    """The lane's dispatcher of each partition: of those it serves, and of those it has
    just stopped serving until their dispatcher ends (after its current take)."""


class Worker:
    """Runs steps for one queue of a namespace until stopped.

    The steps themselves run in a :class:`roost.runtime.runner.Runner` over the queue's
    leases (:class:`roost.redis.holder.RedisLeases`); the worker takes deliveries off its
    engines' lists and keeps the background loops going.
    """

    def __init__(
        self,
        store: RedisStore,
        engines: dict[str, Engine],
        *,
        slots: dict[str, int],
        sinks: list[EventSink],
        observers: list[StepObserver],
        schedules: Schedules,
    ) -> None:
        self.store = store
        self.settings = store.settings
        self.keys = store.keys
        self.engines = engines
        self.schedules = schedules
        self.slots = dict(slots)
        self.lanes = {e: Lane(e, slots[e], store.keys.for_engine(e)) for e in engines}
        self.concurrency = sum(lane.slots for lane in self.lanes.values())
        self.health = Health()
        limits = {eid: getattr(eng, "max_attempts", None) for eid, eng in engines.items()}
        self.leases = RedisLeases(
            store,
            health=self.health,
            engine_limits=" ".join(
                f"{eid}={n}" for eid, n in limits.items() if isinstance(n, int) and n >= 1
            ),
            stopping=lambda: self.runner.stopping,
        )
        self.clock = self.leases.clock
        self.runner = Runner(
            self.leases,
            engines,
            settings=self.settings,
            worker_id=store.worker_id,
            artifacts=lambda: store.artifacts,
            observers=Observers(observers, store.worker_id),
            error_json=describe_failure,
        )
        self.pumps = [
            EventPump(
                sinks,
                RedisEventFeed(store, store.worker_id, keys=keys),
                report=lambda where, exc: self.health.loop(where).report(exc),
            )
            for keys in (store.partition_keys() if sinks else [])
        ]
        """Deliver the namespace's event streams (one per partition) to the event sinks (see
        :mod:`roost.redis.event_feed`); a worker without sinks takes no part."""
        self.failure: str | None = None
        """Why the worker gave up (it then exits non-zero), or None."""
        self.closing = False
        """Set when the worker shuts its background loops down (they end at their next turn)."""
        self.stop_event = asyncio.Event()
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

    @property
    def stopping(self) -> bool:
        """Whether the worker has begun to stop (it takes no new deliveries)."""
        return self.runner.stopping

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking deliveries; running steps get the grace period to finish."""
        if not self.runner.stopping:
            log.info("worker %s stopping", self.store.worker_id)
        self.runner.stopping = True
        self.stop_event.set()
        for lane in self.lanes.values():
            lane.slot_free.set()

    def give_up(self, reason: str) -> None:
        """Stop because the worker cannot make progress; :meth:`run` then raises."""
        if self.failure is None:
            self.failure = reason
            log.error("worker %s gives up: %s", self.store.worker_id, reason)
        self.stop()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Work until :meth:`stop` (or a signal), then drain gracefully.

        Raises:
            WorkerStuck: the worker's loops failed for longer than ``ROOST_STUCK_AFTER``.
        """
        loop = asyncio.get_running_loop()
        signals = WorkerSignals(
            self.settings.grace_period, self.stop, install=install_signal_handlers
        )
        signals.install(loop)
        sent_ms = self.clock.local_ms()
        seconds, micros = await self.store.client.time()
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
        # On a cluster, from every primary that holds a partition of the namespace.
        await prune_libraries(
            self.store.client,
            self.store.workers,
            self.store.worker_id,
            keys=[self.keys.for_partition(k).events for k in range(self.store.partitions)],
        )
        # Deliveries an older version left on the queue's single list go first.
        await migrate_legacy(self.store, self.keys)
        background = [
            self._loop("renewer", self.runner.renew_pass),
            self._loop("promoter", lambda: promote_pass(self)),
            self._loop("maintenance", maintenance_pass(self)),
            # Beats resume within half a second of Redis coming back: the others judge this
            # worker by its silence (ROOST_HEARTBEAT_TIMEOUT), so it must not back off long.
            self._loop("heartbeat", lambda: heartbeat_pass(self), max_backoff=0.5),
            self._loop("schedules", self.schedules.tick),
            *(
                self._loop("sinks" + (f" {k}" if k else ""), pump.pump_pass)
                for k, pump in enumerate(self.pumps)
            ),
            asyncio.create_task(
                watch(self.health, self.settings.stuck_after, self.give_up), name="roost-watch"
            ),
        ]
        # Which partitions this worker serves, before it takes any delivery; then again on
        # every pass of the sharing loop, as workers come and go.
        await retry_outages(
            self.health.loop("sharing"),
            self.share,
            deadline=time.monotonic() + self.settings.stuck_after,
            giving_up=lambda: self.stopping,
        )
        background.append(self._loop("sharing", self._share_pass))
        try:
            await self.stop_event.wait()
            if dispatchers := self._dispatchers():
                await asyncio.wait(dispatchers, timeout=BLOCK_SECONDS + 1.0)
            await self.runner.drain()
        finally:
            self.closing = True
            await cancel_all([*self._dispatchers(), *background], CLEANUP_WAIT)
            for pump in self.pumps:
                await _bounded("event sinks", pump.flush(), CLEANUP_WAIT)
            await _bounded("deregistering", deregister(self), CLEANUP_WAIT)
            signals.stopped(loop, failed=self.failure is not None)
        if self.failure is not None:
            raise WorkerStuck(f"worker {self.store.worker_id} gave up: {self.failure}")

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

    # -- sharing partitions -------------------------------------------------------------

    def serving(self) -> dict[str, list[int]]:
        """The partitions each engine's lane serves now."""
        return {engine: sorted(lane.serving) for engine, lane in self.lanes.items()}

    def served_partitions(self) -> set[int]:
        """The partitions some lane of this worker serves now."""
        return {k for lane in self.lanes.values() for k in lane.serving}

    async def _share_pass(self) -> float:
        await self.share()
        return heartbeat_interval(self.settings.heartbeat_timeout)

    async def share(self) -> None:
        """Serve the partitions rendezvous hashing gives this worker among the live ones.

        Each engine's live set is the engine's live-workers index (this worker counts itself
        in); a lane whose set has not changed keeps what it serves. With one partition there
        is nothing to share and nothing is read.
        """
        partitions = self.store.partitions
        lanes = list(self.lanes.values())
        if partitions == 1:
            rows: list[list[str]] = [[] for _ in lanes]
        else:
            now_ms = int(self.clock.now_ms())
            async with self.store.client.pipeline(transaction=False) as pipe:
                for lane in lanes:
                    pipe.zrange(self.keys.live(lane.engine), now_ms, "+inf", byscore=True)
                rows = await pipe.execute()
        for lane, row in zip(lanes, rows, strict=True):
            live = frozenset(row) | {self.store.worker_id}
            if live != lane.live:
                lane.live = live
                self._serve(lane, served_by(self.store.worker_id, live, partitions))

    def _serve(self, lane: Lane, partitions: frozenset[int]) -> None:
        """Start the dispatchers of ``partitions`` that ``lane`` lacks; the others end.

        A dispatcher of a partition no longer served ends after its current take (at most
        one blocking read): what it took, and every step the lane runs, it finishes. The
        leases fence everything: another worker that takes up the partition meanwhile only
        gets what this one has not taken.
        """
        if self.stopping:
            return
        if partitions != lane.serving:
            log.info(
                "worker %s serves partitions %s of %s (engine %s, %d live)",
                self.store.worker_id,
                ",".join(map(str, sorted(partitions))),
                self.store.partitions,
                lane.engine,
                len(lane.live or ()),
            )
        lane.serving = partitions
        for k in sorted(partitions):
            task = lane.dispatchers.get(k)
            if task is None or task.done():
                lane.dispatchers[k] = self._start_dispatcher(lane, k)
        lane.slot_free.set()  # a dispatcher waiting for a slot in a dropped partition ends

    def _start_dispatcher(self, lane: Lane, k: int) -> asyncio.Task[None]:
        task = asyncio.create_task(
            supervise(
                self.health.loop(f"dispatcher {lane.engine}"),
                functools.partial(self._dispatcher, lane, lane.keys.for_partition(k)),
                lambda: not self.stopping and k in lane.serving,
            ),
            name=f"roost-dispatcher-{lane.engine}" + (f"-{k}" if k else ""),
        )
        task.add_done_callback(functools.partial(self._dispatcher_done, lane, k))
        return task

    def _dispatcher_done(self, lane: Lane, k: int, task: asyncio.Task[None]) -> None:
        if lane.dispatchers.get(k) is task:
            del lane.dispatchers[k]

    def _dispatchers(self) -> list[asyncio.Task[None]]:
        return [t for lane in self.lanes.values() for t in lane.dispatchers.values()]

    # -- taking deliveries --------------------------------------------------------------

    async def _dispatcher(self, lane: Lane, keys: Keys) -> None:
        """Take deliveries of ``lane``'s engine in one partition while it has free slots.

        BLMOVE moves a delivery to the engine's active list in the same command that hands
        it over, so one taken by a worker that dies before acquiring it stays findable
        (reclaim re-dispatches it); each lane blocks on its own list, over its own
        connection, which is what keeps one engine's backlog from holding up another's.
        In a namespace of several partitions, each partition the lane serves has a
        dispatcher; they share the lane's slots (see :meth:`_take`). One whose partition is
        no longer served ends; what it took it hands to the lane's handlers first.
        """
        loop = self.health.loop(f"dispatcher {lane.engine}")
        while not self.stopping and keys.partition in lane.serving:
            free = lane.slots - len(lane.handlers) - lane.taking
            if free <= 0:
                lane.slot_free.clear()
                await lane.slot_free.wait()
                continue
            try:
                jobs = await self._take(lane, keys, free)
                loop.ok()
            except Exception as exc:
                await loop.backoff(exc)
                continue
            if self.stopping and jobs:
                await self._undeliver(keys, jobs)
                return
            # Another partition's dispatcher may have filled the slots while this one
            # blocked: what does not fit goes back to the head of its list.
            room = max(lane.slots - len(lane.handlers), 0)
            for job_id in jobs[:room]:
                task = asyncio.create_task(self._handle(lane, keys, job_id))
                lane.handlers.add(task)
                self.runner.handlers.add(task)
                task.add_done_callback(functools.partial(self._handler_done, lane))
            if jobs[room:]:
                await self._undeliver(keys, jobs[room:])
            # Let the new handlers send their acquire before the next dequeue goes out:
            # on an idle worker that is the difference between the step starting after one
            # round trip or after two.
            await asyncio.sleep(0)

    async def _take(self, lane: Lane, keys: Keys, free: int) -> list[str]:
        """Up to ``free`` deliveries from ``keys``' list, or after a short block, one or none.

        While it dequeues, the dispatcher holds the slots it may fill (``lane.taking``), so
        the lane's dispatchers (one per partition) never take more than its free slots at
        once. It holds none while it blocks: every partition's list is listened to whatever
        the slots, and a delivery that finds them full is put back (see ``_dispatcher``).
        """
        lane.taking += free
        try:
            jobs = (await self.store.calls.dequeue(keys, n=free)).jobs
        finally:
            lane.taking -= free
            lane.slot_free.set()  # the other dispatchers count again
        if jobs:
            return jobs
        job = await self.store.blocking_client.blmove(
            keys.saq_queued, keys.saq_active, BLOCK_SECONDS, "LEFT", "RIGHT"
        )
        return [job] if job else []

    def _handler_done(self, lane: Lane, task: asyncio.Task[None]) -> None:
        lane.handlers.discard(task)
        self.runner.handlers.discard(task)
        lane.slot_free.set()

    async def _undeliver(self, keys: Keys, jobs: list[str]) -> None:
        try:
            await self.store.calls.undeliver(keys, jobs=jobs)
        except Exception as exc:
            log.warning(
                "could not put %d deliveries back (%s); they will be re-dispatched",
                len(jobs),
                describe(exc),
            )

    async def _handle(self, lane: Lane, keys: Keys, job_id: str) -> None:
        """Run one delivery; whatever goes wrong is logged and ends this delivery only.

        An item whose handling failed unexpectedly keeps its lease until it expires; recovery
        then hands it on, counting the attempt, as after a crash. One item's trouble does not
        make the worker unhealthy.
        """
        try:
            await self._handle_delivery(lane, keys, job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.health.loop("steps").report(exc)

    async def _handle_delivery(self, lane: Lane, keys: Keys, job_id: str) -> None:
        try:
            acquired = await self.leases.acquire(keys, job_id, new_token())
        except RedisUnavailable:
            return  # stopping; the delivery is reclaimed later
        if isinstance(acquired, Acquired):
            await self.runner.run(acquired, lane.engine)
        elif acquired is not None:
            self.runner.wake_at(self.clock.now_ms() + acquired)
