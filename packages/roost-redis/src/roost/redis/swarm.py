"""``RedisSwarm``: Roost on Redis + SAQ, for apps, the CLI and the console."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from roost.redis.children import cancel_tree, children_of, load_outcomes
from roost.redis.codec import event_from_entry
from roost.redis.connection import BLOCK_SECONDS
from roost.redis.contract import Code
from roost.redis.delivery import delivery_routes, unserved_engines
from roost.redis.enqueueing import enqueue_items
from roost.redis.keys import STATE_ORDER, new_token
from roost.redis.listing import item_events, list_page, stream_pos
from roost.redis.operations import raise_budget
from roost.redis.operations import replay as replay_item
from roost.redis.pausing import pause as pause_item
from roost.redis.pausing import resume as resume_item
from roost.redis.schedules import Schedules
from roost.redis.schema import Meta
from roost.redis.signals import SignalSent, decision, pending_signals, send_signal
from roost.redis.store import EmbeddedServerFailed, RedisStore
from roost.redis.worker import Worker
from roost.runtime.children import ChildOutcome
from roost.runtime.errors import BadInput, ConflictError, NotFound
from roost.runtime.models import (
    APPROVAL_SIGNAL,
    Budget,
    RuntimeEvent,
    Signal,
    Snapshot,
    WorkItem,
    WorkMeta,
    WorkPage,
    WorkState,
)
from roost.runtime.plugins import check_engine
from roost.runtime.stores import WorkStore

if TYPE_CHECKING:
    from roost.runtime.engine import Engine
    from roost.runtime.observe import StepObserver
    from roost.runtime.stores import EventSink

__all__ = ["EmbeddedServerFailed", "RedisSwarm"]

FOLLOW_POLL = 0.1
"""Seconds between reads of a partitioned namespace's streams while following events."""

log = logging.getLogger("roost.redis")


def _bad_item(exc: ValidationError) -> BadInput:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "item"
    return BadInput(f"{where}: {err['msg']}")


class RedisSwarm(RedisStore, WorkStore):
    """Roost's runtime on Redis: enqueue and inspect work, operate on it, run workers.

    Use it as an async context manager::

        async with RedisSwarm() as swarm:          # settings from ROOST_* variables
            work_id = await swarm.enqueue("watchlist", {"url": "http://127.0.0.1:8000"})
            print((await swarm.status(work_id)).meta.state)

    With ``ROOST_REDIS_URL`` unset it starts (or reuses) the embedded server under
    ``ROOST_HOME``. Keyword arguments override the settings.
    """

    @functools.cached_property
    def schedules(self) -> Schedules:
        """Recurring work of this namespace: add, list, pause, resume, remove, run now."""
        return Schedules(self)

    # -- enqueue --------------------------------------------------------------------------

    async def enqueue(
        self,
        engine: str,
        payload: Mapping[str, Any] | None = None,
        *,
        resources: Sequence[str] = (),
        idempotency_key: str | None = None,
        delay_seconds: float = 0.0,
        priority: int = 0,
        max_attempts: int | None = None,
        step_timeout: float | None = None,
        max_steps: int | None = None,
        max_runtime: float | None = None,
        budget: float | None = None,
    ) -> str:
        """Create a work item and return its work id.

        Args:
            engine: the engine id that runs it.
            payload: a JSON object handed to the engine as ``item.payload``.
            resources: names the item must hold exclusively during each step.
            idempotency_key: the same key always yields the same work id.
            delay_seconds: start after this long (a float).
            priority: above 0 goes to the front of its engine's list in the queue.
            max_attempts: attempts per step before the item is dead (default: the
                engine's ``max_attempts`` attribute, else ``ROOST_MAX_ATTEMPTS``).
            step_timeout: seconds one step may run before it is cancelled and its attempt
                fails with ``StepTimeout`` (default: the engine's ``step_timeout``, else none).
            max_steps: a step budget: the item pauses as "budget exceeded" once this many
                steps committed (default: the engine's ``max_steps``).
            max_runtime: a wall-clock budget in seconds from its creation (default: the
                engine's ``max_runtime``).
            budget: a cost budget for what its steps charge with ``StepContext.charge``
                (default: the engine's ``budget``).

        Raises:
            BadInput: the payload is not a JSON object, a name is invalid, or (with
                ``validate_engines``) the engine is unknown. Nothing is written.
        """
        if payload is not None and not isinstance(payload, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BadInput(f"payload must be a JSON object, not {type(payload).__name__}")
        # Only what differs from the model's defaults is passed: a default needs no check.
        fields: dict[str, Any] = {"engine": engine, "payload": dict(payload or {})}
        if resources != ():
            fields["resources"] = list(resources)
        if type(priority) is not int or priority != 0:
            fields["priority"] = priority
        optional = {
            "idempotency_key": idempotency_key,
            "max_attempts": max_attempts,
            "step_timeout": step_timeout,
            "max_steps": max_steps,
            "max_runtime": max_runtime,
            "budget": budget,
        }
        fields.update((k, v) for k, v in optional.items() if v is not None)
        try:
            item = WorkItem(queue=self.settings.queue, **fields)
        except ValidationError as exc:
            raise _bad_item(exc) from None
        return (await self.enqueue_many([item], delay_seconds=delay_seconds))[0]

    async def enqueue_many(
        self,
        items: Sequence[WorkItem],
        *,
        delay_seconds: float = 0.0,
        seeds: Sequence[Snapshot | None] | None = None,
    ) -> list[str]:
        """Create many work items in few round trips; return their ids in order.

        Items keep their ``work_id``; the swarm's queue is used for all of them.

        Args:
            items: the work items.
            delay_seconds: start all of them after this long.
            seeds: optional starting snapshots, one per item (stored as version 1, so
                ``init_snapshot`` does not run); ``None`` entries start normally.
        """
        if not delay_seconds >= 0 or delay_seconds == float("inf"):
            raise BadInput("delay_seconds must be a finite number >= 0")
        if seeds is not None and len(seeds) != len(items):
            raise BadInput("seeds must have one entry per item")
        return await enqueue_items(self, items, int(round(delay_seconds * 1000)), seeds)

    async def enqueue_home(self, items: Sequence[WorkItem]) -> list[str]:
        """Create work items in the namespace's home partition (partition 0).

        For the items of schedules, which live next to them (see :mod:`roost.redis.ticks`).
        """
        return await enqueue_items(self, items, 0, None, partition=0)

    # -- reading ----------------------------------------------------------------------------

    async def list_work(
        self,
        *,
        state: WorkState | None = None,
        engine: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkPage:
        """List items, most recently updated first.

        Args:
            state: only items in this state (an index read: O(log N + page)).
            engine: only items of this engine (filters the state indexes as it pages).
            limit: page size (1-1000).
            cursor: ``next_cursor`` of the previous page.
        """
        if not 1 <= limit <= 1000:
            raise BadInput("limit must be between 1 and 1000")
        states = [state] if state else list(STATE_ORDER)
        return await list_page(self, states, engine=engine, limit=limit, cursor=cursor)

    async def dead_letters(self, *, limit: int = 50, cursor: str | None = None) -> WorkPage:
        """List dead items (a step failed on every allowed attempt), most recent first."""
        return await self.list_work(state=WorkState.DEAD, limit=limit, cursor=cursor)

    async def counts(self) -> dict[str, int]:
        """Number of items per state, plus the queue's deliveries queued and in flight."""
        out = dict.fromkeys([*map(str, STATE_ORDER), "saq_queued", "saq_active"], 0)
        for keys in self.partition_keys():  # each partition's counts, summed
            routes = await delivery_routes(self, keys)
            async with self.client.pipeline(transaction=False) as pipe:
                for s in STATE_ORDER:
                    pipe.zcard(keys.state(s))
                for route in routes:
                    pipe.llen(route.saq_queued)
                    pipe.llen(route.saq_active)
                values: list[int] = await pipe.execute()
            for s, v in zip(STATE_ORDER, values, strict=False):
                out[str(s)] += int(v)
            lengths = values[len(STATE_ORDER) :]
            out["saq_queued"] += sum(lengths[0::2])
            out["saq_active"] += sum(lengths[1::2])
        return out

    async def unserved_engines(self, queue: str | None = None) -> dict[str, int]:
        """Engines with queued work in ``queue`` (default: this swarm's) and no live worker.

        Returns ``{engine: deliveries queued}``: that work stays queued until a worker of
        the queue that runs the engine starts. A few reads, whatever the amount of work.
        """
        if queue is not None:
            self.settings.model_copy(update={"queue": queue}).check()
        return await unserved_engines(self, self.keys.for_queue(queue or self.settings.queue))

    async def events(
        self, *, work_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[RuntimeEvent]:
        """Return events, oldest first.

        Args:
            work_id: only this item's events.
            after: a stream position (an event ``id``); only later events. Without it, the
                most recent ``limit`` events. A malformed one is :class:`BadInput`.
            limit: at most this many events.
        """
        if not 1 <= limit <= 10_000:
            raise BadInput("limit must be between 1 and 10000")
        if after is not None:
            stream_pos(after)
        if work_id is None:
            # Each partition's stream, merged by stream id (the server's clock at each event).
            rows: list[tuple[str, dict[str, str]]] = []
            for keys in self.partition_keys():
                if after is None:
                    rows += await self.client.xrevrange(keys.events, count=limit)
                else:
                    rows += await self.client.xrange(keys.events, min=f"({after}", count=limit)
            rows.sort(key=lambda row: stream_pos(row[0]))
            rows = rows[-limit:] if after is None else rows[:limit]
            return [event_from_entry(i, f) for i, f in rows]
        return await item_events(self, work_id, after, limit)

    async def follow_events(
        self, *, work_id: str | None = None, after: str | None = None
    ) -> AsyncIterator[RuntimeEvent]:
        """Yield events as they are stored, starting after ``after`` (default: from now)."""
        if after is not None:
            stream_pos(after)
        if self.partitions > 1:
            async for event in self._follow_partitions(work_id, after):
                yield event
            return
        last = after or "$"
        while True:
            reply = await self.blocking_client.xread(
                {self.keys.events: last}, count=500, block=int(BLOCK_SECONDS * 1000)
            )
            for _stream, rows in reply or []:
                for entry_id, fields in rows:
                    last = entry_id
                    if work_id is None or fields.get("w") == work_id:
                        yield event_from_entry(entry_id, fields)

    async def _follow_partitions(
        self, work_id: str | None, after: str | None
    ) -> AsyncIterator[RuntimeEvent]:
        """:meth:`follow_events` over every partition's stream, polled in turn.

        Each stream is read from where it was left; what a round finds is yielded in stream
        id order. (The streams may live on different nodes: one XREAD cannot block on all.)
        """
        streams = [k.events for k in self.partition_keys()]
        if after is not None:
            last = dict.fromkeys(streams, after)
        else:
            last = {}
            for stream in streams:
                tail = await self.client.xrevrange(stream, count=1)
                last[stream] = tail[0][0] if tail else "0-0"
        while True:
            found: list[tuple[str, dict[str, str]]] = []
            for stream in streams:
                rows = await self.client.xrange(stream, min=f"({last[stream]}", count=500)
                if rows:
                    last[stream] = rows[-1][0]
                    found += rows
            found.sort(key=lambda row: stream_pos(row[0]))
            for entry_id, fields in found:
                if work_id is None or fields.get("w") == work_id:
                    yield event_from_entry(entry_id, fields)
            if not found:
                await asyncio.sleep(FOLLOW_POLL)

    async def stats(self, minutes: int = 15) -> dict[int, dict[str, int]]:
        """Per-minute counters for the last ``minutes`` minutes of the server's clock.

        Keys are the minutes' start (epoch seconds), oldest first, every minute present
        (empty when nothing happened); values count enqueued, started, committed, done,
        retried, dead, failed and cancelled events.
        """
        if not 1 <= minutes <= 24 * 60:
            raise BadInput("minutes must be between 1 and 1440")
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.execute_command("TIME")
            for keys in self.partition_keys():
                pipe.hgetall(keys.stats)
            (seconds, _micro), *parts = await pipe.execute()
        current = int(seconds) // 60
        out: dict[int, dict[str, int]] = {
            m * 60: {} for m in range(current - minutes + 1, current + 1)
        }
        for raw in parts:  # each partition's counters, summed
            for field, value in dict[str, str](raw).items():
                minute, _, kind = field.partition(":")
                bucket = out.get(int(minute) * 60)
                if bucket is not None:
                    bucket[kind] = bucket.get(kind, 0) + int(value)
        return out

    # -- operating ----------------------------------------------------------------------

    async def cancel(self, work_id: str) -> WorkMeta:
        """Cancel an unfinished item, and then its unfinished children (theirs too).

        A running item is marked cancelled at once; its step is told to stop and its
        commit is refused. Raises :class:`ConflictError` for a finished item.
        """
        meta = await self.cancel_one(work_id)
        if meta.children_total:
            await cancel_tree(self, work_id)
        return meta

    async def children(self, work_id: str) -> list[WorkMeta]:
        """The metas of an item's children, in the order its steps spawned them."""
        return await children_of(self, work_id)

    async def child_outcomes(self, work_id: str) -> list[ChildOutcome]:
        """What the next step of ``work_id`` would receive from ``StepContext.children()``."""
        return await load_outcomes(self, work_id)

    async def signal(
        self,
        work_id: str,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        sender: str = "api",
    ) -> SignalSent:
        """Send a signal to an unfinished item.

        It is kept, in order, until the commit of the step that receives it: the step after
        a wait for ``name`` (at once if the item awaits it now). A signal sent before the
        item waits for it is not lost.

        Raises:
            NotFound: no such work id.
            SignalRefused: the item is finished or cancelled, or holds too many signals.
            BadInput: an invalid name, or a payload that is not a JSON object or too large.
        """
        return await send_signal(self, work_id, name, payload or {}, sender)

    async def approve(
        self, work_id: str, *, note: str | None = None, sender: str = "api"
    ) -> SignalSent:
        """Approve what the item asks (the ``approval`` signal with decision ``approved``)."""
        return await send_signal(self, work_id, APPROVAL_SIGNAL, decision(True, note), sender)

    async def reject(
        self, work_id: str, *, note: str | None = None, sender: str = "api"
    ) -> SignalSent:
        """Reject what the item asks (the ``approval`` signal with decision ``rejected``)."""
        return await send_signal(self, work_id, APPROVAL_SIGNAL, decision(False, note), sender)

    async def pause(self, work_id: str) -> WorkMeta:
        """Pause an unfinished item: it runs no new step until resumed, and keeps its place.

        A running step may finish and commit; the commit then parks the item instead of
        going on. Raises :class:`ConflictError` for a finished or already paused item.
        """
        return await pause_item(self, work_id)

    async def resume(self, work_id: str) -> WorkMeta:
        """Resume a paused item where it was (queued, scheduled, retrying or awaiting).

        Raises :class:`ConflictError` when the item is not paused.
        """
        return await resume_item(self, work_id)

    async def raise_budget(
        self, work_id: str, *, steps: int = 0, cost: float = 0.0, runtime: float = 0.0
    ) -> Budget:
        """Raise an unfinished item's budgets: add ``steps``, ``cost`` or ``runtime`` seconds.

        Each adds to the current limit (or, where the item had none, to what it used so far).
        An item paused as "budget exceeded" stays paused: :meth:`resume` it.

        Raises:
            NotFound: no such work id.
            ConflictError: the item is finished.
            BadInput: nothing to add, or a negative or out-of-range amount.
        """
        return await raise_budget(self, work_id, steps=steps, cost=cost, runtime=runtime)

    async def pending_signals(self, work_id: str) -> list[Signal]:
        """The signals sent to an item that no step has consumed yet, oldest first."""
        return await pending_signals(self, work_id)

    async def retry(self, work_id: str) -> WorkMeta:
        """Queue a failed or dead item again, with fresh attempts, from its latest snapshot.

        Raises :class:`ConflictError` when the item is neither failed nor dead.
        """
        keys, h = await self._keys_of(work_id)
        keys = keys.for_engine(h.get(Meta.ENGINE, ""))
        reply = await self.calls.retry(keys, work_id=work_id, dispatch=new_token())
        if reply.code is Code.GONE:
            raise NotFound(f"unknown work id {work_id!r}")
        if reply.code is Code.CONFLICT:
            raise ConflictError(
                f"work {work_id} is {reply.state}; only failed or dead work can be retried"
            )
        return (await self.status(work_id)).meta

    async def replay(
        self, work_id: str, *, version: int | None = None, as_new: bool = False
    ) -> str:
        """Run an item again from a snapshot and return the id of the item that runs.

        Args:
            work_id: a finished item (done, failed, dead or cancelled) unless ``as_new``.
            version: the snapshot version to start from: ``None`` the latest, ``0`` from
                scratch (``init_snapshot`` runs again), an earlier one if history keeps it.
            as_new: run a copy as a new work item (the original stays as it is).

        In place, the chosen snapshot becomes the next version, so versions stay
        contiguous. Raises :class:`NotFound` for a version not kept and
        :class:`ConflictError` for an unfinished item (unless ``as_new``).
        """
        return await replay_item(self, work_id, version=version, as_new=as_new)

    # -- workers ----------------------------------------------------------------------------

    async def run_worker(
        self,
        engines: Sequence[str | Engine] | Mapping[str, int] | Mapping[Engine, int] | None = None,
        *,
        concurrency: int = 10,
        install_signal_handlers: bool = True,
        sinks: Sequence[EventSink] = (),
        observers: Sequence[StepObserver] = (),
    ) -> None:
        """Run a worker until it is stopped (SIGINT/SIGTERM, or :meth:`stop_worker`).

        The worker takes only items of its engines, from its queue; each engine has its
        own slots, so a backlog of one never holds up another.

        Args:
            engines: engine ids to build from the registry, or engine objects, as a list or
                as a mapping to each one's slots (``{"watchlist": 4, "my-engine": 1}``);
                default: every registered engine.
            concurrency: how many steps of each engine run at once, unless the mapping
                says otherwise.
            install_signal_handlers: the first SIGINT/SIGTERM stops gracefully (running steps
                get ``ROOST_GRACE_PERIOD`` to finish, then are released to other workers);
                a second one exits at once.
            sinks: extra event sinks (besides the registered ones) for this worker.
            observers: extra step observers (besides the registered ones), such as
                :class:`roost.redis.metrics.WorkerMetrics`.

        The worker's identity is ``ROOST_WORKER_ID`` when set (see
        :mod:`roost.redis.identity`): started with the identity of a worker that died, it
        takes that worker's leases back at once.

        Raises:
            WorkerIdInUse: ``ROOST_WORKER_ID`` names a worker that is alive (a ``BadInput``).
            SettingsError: the namespace has another number of partitions than
                ``ROOST_PARTITIONS`` asks for.
        """
        if concurrency < 1:
            raise BadInput("concurrency must be at least 1")
        built = self.build_engines(None if engines is None else list(engines))
        given: list[tuple[str | Engine, object]] = []
        if isinstance(engines, Mapping):
            given = list(engines.items())
        slots = {e: concurrency for e in built}
        for spec, n in given:
            eid = spec if isinstance(spec, str) else spec.engine_id
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise BadInput(f"engine {eid}: slots must be a whole number of at least 1")
            slots[eid] = n
        await self.settle_partitions()
        self.worker_id = (
            self.settings.worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_token()[:6]}"
        )
        self._worker = Worker(
            self,
            built,
            slots=slots,
            sinks=[*self.registry.event_sinks, *sinks],
            observers=[*self.registry.observers, *observers],
            schedules=self.schedules,
        )
        try:
            await self._worker.run(install_signal_handlers=install_signal_handlers)
        finally:
            self._worker = None

    def stop_worker(self) -> None:
        """Ask the running worker to stop gracefully (as a first SIGTERM would)."""
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.stop()

    def build_engines(self, engines: Sequence[str | Engine] | None) -> dict[str, Engine]:
        """Build engines by id (from the registry) or take engine objects as they are."""
        built: dict[str, Engine] = {}
        for spec in engines if engines is not None else sorted(self.registry.engines):
            if isinstance(spec, str):
                built[spec] = self.registry.build_engine(spec)
            else:
                check_engine(spec, getattr(spec, "engine_id", "?"))
                built[spec.engine_id] = spec
        if not built:
            raise BadInput("no engines to run: install an engine plugin or pass engines=[...]")
        return built
