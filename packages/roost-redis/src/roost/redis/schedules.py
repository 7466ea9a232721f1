"""Schedules: recurring work. Each tick of a schedule enqueues one work item.

A schedule names an engine, a payload and resources (what :meth:`RedisSwarm.enqueue` takes)
and when to enqueue it: every so often, or by a cron expression in a timezone (see
:mod:`roost.redis.recurrence`). It belongs to the queue of the swarm that added it; that
queue's workers fire its ticks (see :mod:`roost.redis.ticks`), so a schedule needs a running
worker of its queue, like any work. Use it through ``swarm.schedules``::

    async with RedisSwarm() as swarm:
        await swarm.schedules.add(
            "watch-example",
            "watchlist",
            {"url": "https://example.com", "checks_required": 1},
            every="5m",
        )
        for schedule in await swarm.schedules.list():
            print(schedule.name, schedule.next_run, schedule.last_state)

The item a tick makes carries the idempotency key ``schedule:<name>:<tick ms>``: keys of
that form are Roost's; do not use them for items of your own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from roost.redis.contract import Code
from roost.redis.recurrence import Recurrence
from roost.redis.schedule_data import (
    MISSED_POLICIES,
    Schedule,
    ScheduleKeys,
    ScheduleScripts,
    check_schedule_name,
    definition_fields,
    schedule_from_hash,
)
from roost.redis.ticks import TickPass
from roost.runtime.errors import BadInput, ConflictError, NotFound, RoostError
from roost.runtime.models import WorkItem, WorkState

if TYPE_CHECKING:
    from roost.redis.aio import AsyncRedis
    from roost.redis.schedule_data import Backend, MissedPolicy

__all__ = ["Schedule", "Schedules"]

TRIES = 5
"""How often an edit is tried again when the schedule changed between its read and its write."""


def _state(value: str | None) -> WorkState | None:
    try:
        return WorkState(value) if value else None
    except ValueError:
        return None


class Schedules:
    """The schedules of a namespace, and the tick pass of a worker (``swarm.schedules``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.keys = ScheduleKeys(backend.keys)
        self._scripts: tuple[AsyncRedis, ScheduleScripts] | None = None
        self._pass: TickPass | None = None

    @property
    def scripts(self) -> ScheduleScripts:
        """The schedule scripts, registered on the backend's current client."""
        client = self._backend.client
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, ScheduleScripts(client))
            self._pass = None
        return self._scripts[1]

    # -- defining -------------------------------------------------------------------------

    async def add(
        self,
        name: str,
        engine: str,
        payload: Mapping[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: str | float | None = None,
        timezone: str | None = None,
        resources: Sequence[str] = (),
        missed: MissedPolicy = "run-once",
        skip_if_running: bool = False,
        replace: bool = False,
    ) -> Schedule:
        """Create a schedule in this swarm's queue; return it.

        Args:
            name: 1-100 characters from ``A-Z a-z 0-9 _ . : @ / -``; unique in the namespace.
            engine: the engine of the items it makes.
            payload: their payload (a JSON object).
            cron: a cron expression (five fields, or six with seconds first), or
            every: an interval (seconds, or ``30s``, ``5m``, ``1h``...; 1 s to 365 days;
                ticks fall on its multiples since the Unix epoch).
            timezone: the cron expression's IANA timezone (default UTC).
            resources: resources its items hold during each step.
            missed: ticks missed while no worker ran: ``run-once`` makes one item for them
                all, ``skip`` none.
            skip_if_running: skip a tick while the schedule's last item is unfinished.
            replace: replace a schedule of that name (its counters and last item stay, and so
                does a pause); without it an existing name is a :class:`ConflictError`.

        Raises:
            BadInput: a malformed name, recurrence, timezone, payload or resource. Nothing
                is written.
            ConflictError: the name exists and ``replace`` is false.
        """
        check_schedule_name(name)
        if missed not in MISSED_POLICIES:
            raise BadInput(f"missed must be one of {', '.join(MISSED_POLICIES)}, not {missed!r}")
        if payload is not None and not isinstance(payload, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BadInput(f"payload must be a JSON object, not {type(payload).__name__}")
        recurrence = Recurrence.parse(cron=cron, every=every, timezone=timezone)
        queue = self._backend.settings.queue
        try:
            item = WorkItem(engine=engine, payload=dict(payload or {}), resources=list(resources))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "schedule"
            raise BadInput(f"{where}: {err['msg']}") from None
        schedule = Schedule(
            name=name,
            engine=item.engine,
            payload=item.payload,
            resources=item.resources,
            queue=queue,
            cron=recurrence.cron,
            every=recurrence.every_ms / 1000 if recurrence.every_ms else None,
            timezone=recurrence.timezone if recurrence.cron else None,
            missed=missed,
            skip_if_running=skip_if_running,
        )
        fields = definition_fields(schedule)
        for _ in range(TRIES):
            had = await self._backend.client.hget(self.keys.schedule(name), "queue") or ""
            first = recurrence.next_after(await self._server_ms())
            reply = await self.scripts.save(
                sched=self.keys.schedule(name),
                names=self.keys.names,
                due=self.keys.due(queue),
                old_due=self.keys.due(had or queue),
                name=name,
                replace=replace,
                old_queue=had,
                first_tick=first,
                fields=list(fields),
            )
            if reply.code is Code.EXISTS:
                raise ConflictError(f"schedule {name} exists (remove it first, or replace it)")
            if reply.code is Code.OK:
                return await self.get(name)
        raise ConflictError(f"schedule {name} kept changing while it was saved; try again")

    async def pause(self, name: str) -> Schedule:
        """Stop a schedule's ticks (its items already made go on). Pausing twice is a no-op.

        Raises:
            NotFound: no such schedule.
        """
        await self._edit("pause", name)
        return await self.get(name)

    async def resume(self, name: str) -> Schedule:
        """Start a paused schedule again, from its next tick after now.

        Ticks that fell in the pause are not made up for. Resuming a running schedule is a
        no-op.

        Raises:
            NotFound: no such schedule.
        """
        await self._edit("resume", name)
        return await self.get(name)

    async def remove(self, name: str) -> None:
        """Delete a schedule (its items already made go on).

        Raises:
            NotFound: no such schedule.
        """
        await self._edit("remove", name)

    async def run_now(self, name: str) -> str:
        """Enqueue the schedule's item now, outside its ticks; return the work id.

        Its ticks go on as before; the item becomes the schedule's last item (so
        ``skip_if_running`` waits for it too).

        Raises:
            NotFound: no such schedule.
            BadInput: the schedule belongs to another queue than this swarm's.
        """
        schedule = await self.get(name)
        if schedule.queue != self._backend.settings.queue:
            raise BadInput(
                f"schedule {name} belongs to queue {schedule.queue}; run it now from that "
                f"queue (ROOST_QUEUE={schedule.queue} or --queue {schedule.queue})"
            )
        work_id = (await self._backend.enqueue_home([schedule.item(tick_ms=None)]))[0]
        await self._edit("ran", name, work_id)
        return work_id

    async def _edit(self, op: str, name: str, arg: str = "") -> None:
        check_schedule_name(name)
        key = self.keys.schedule(name)
        for _ in range(TRIES):
            h = await self._backend.client.hgetall(key)
            if not h.get("queue"):
                raise NotFound(f"unknown schedule {name!r}")
            if op == "resume":
                upcoming = schedule_from_hash(name, h).recurrence.next_after(
                    await self._server_ms()
                )
                arg = "" if upcoming is None else str(upcoming)
            queue = h["queue"]
            reply = await self.scripts.edit(
                sched=key,
                names=self.keys.names,
                due=self.keys.due(queue),
                op=op,
                name=name,
                queue=queue,
                arg=arg,
            )
            if reply.code is Code.GONE:
                raise NotFound(f"unknown schedule {name!r}")
            if reply.code is not Code.RETRY:
                return
        raise ConflictError(f"schedule {name} kept changing; try again")

    async def _server_ms(self) -> int:
        seconds, micros = await self._backend.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # -- reading ------------------------------------------------------------------------------

    async def get(self, name: str) -> Schedule:
        """One schedule, with its last item's state.

        Raises:
            NotFound: no such schedule.
        """
        check_schedule_name(name)
        found = await self._read([name])
        if not found:
            raise NotFound(f"unknown schedule {name!r}")
        return found[0]

    async def list(self) -> list[Schedule]:
        """Every schedule of the namespace (all queues), by name, with its last item's state."""
        names: list[str] = await self._backend.client.zrange(self.keys.names, 0, -1)
        return await self._read(names)

    async def _read(self, names: Sequence[str]) -> list[Schedule]:
        client = self._backend.client
        async with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.schedule(name))
            rows: list[dict[str, str]] = await pipe.execute()
        found: list[Schedule] = []
        for name, h in zip(names, rows, strict=True):
            if not h.get("engine"):
                continue
            try:
                found.append(schedule_from_hash(name, h))
            except (ValueError, KeyError) as exc:
                raise RoostError(f"schedule {name} is unreadable: {exc}") from None
        last = [s for s in found if s.last_work_id]
        async with client.pipeline(transaction=False) as pipe:
            for s in last:
                assert s.last_work_id is not None
                pipe.hget(self._backend.keys.meta(s.last_work_id), "state")
            states: list[str | None] = await pipe.execute()
        for s, state in zip(last, states, strict=True):
            s.last_state = _state(state)
        return found

    # -- the worker's pass ----------------------------------------------------------------

    async def tick(self) -> float:
        """One tick pass for this swarm's queue; returns the wait (s) until the next one.

        A worker runs it in its supervised ``schedules`` loop; see :mod:`roost.redis.ticks`.
        """
        scripts = self.scripts
        if self._pass is None:
            self._pass = TickPass(self._backend, self.keys, scripts)
        return await self._pass()
