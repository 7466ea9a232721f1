"""What a schedule is in Redis: its keys, its hash's fields, its scripts, and its public model.

Keys (under the namespace's hash tag, names encoded with :func:`~roost.redis.keys.encode_part`
like every other key)::

    {base}sched:<name>               hash: the definition and the tick state
    {base}scheds                     sorted set of every schedule's name (for listing)
    {base}q:<queue>:sched:due        sorted set: unpaused schedules of the queue, by next tick
    {base}q:<queue>:sched:clock      hash: ``seen`` (last tick pass, server ms) and ``missed``
                                     (ticks at or before it were missed; see :mod:`.ticks`)

The scripts live in ``lua/schedules/`` (no shared prelude: they touch only these keys and
the item meta a schedule's last item has).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from roost.redis.contract import Contract, decode, pack
from roost.redis.keys import Keys, encode_part
from roost.redis.recurrence import Recurrence
from roost.redis.replies import ScanReply, ScheduleReply
from roost.redis.scripts import SCHEDULE_LIBRARY, Scripts
from roost.runtime.errors import BadInput
from roost.runtime.models import WorkItem, WorkState
from roost.runtime.settings import RoostSettings

if TYPE_CHECKING:
    from roost.redis.aio import AsyncRedis

R = TypeVar("R")

__all__ = [
    "SCHEDULE_CONTRACTS",
    "MISSED_POLICIES",
    "Backend",
    "MissedPolicy",
    "Schedule",
    "ScheduleKeys",
    "ScheduleScripts",
    "TERMINAL_STATES",
    "check_schedule_name",
    "tick_key",
]

MissedPolicy = Literal["run-once", "skip"]
MISSED_POLICIES: tuple[MissedPolicy, ...] = ("run-once", "skip")
TERMINAL_STATES = " ".join(s.value for s in WorkState if s.is_terminal)
"""Passed to the scripts that judge whether a schedule's last item is finished."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}")


def check_schedule_name(name: str) -> str:
    """Return ``name`` if it is a valid schedule name (1-100 of ``A-Z a-z 0-9 _ . : @ / -``).

    Raises:
        BadInput: it is not.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise BadInput(
            f"invalid schedule name {name!r}: use 1-100 characters from A-Z a-z 0-9 _ . : @ / -, "
            "starting with a letter or digit"
        )
    return name


def tick_key(name: str, tick_ms: int) -> str:
    """The idempotency key of the item a schedule's tick makes: ``schedule:<name>:<tick ms>``."""
    return f"schedule:{name}:{tick_ms}"


class Backend(Protocol):
    """What the schedule store needs of :class:`~roost.redis.RedisSwarm`."""

    @property
    def client(self) -> AsyncRedis:
        """The connected client."""
        ...

    keys: Keys
    settings: RoostSettings

    async def enqueue_home(self, items: Sequence[WorkItem]) -> list[str]:
        """Create work items in the namespace's home partition; return their ids in order.

        A schedule's items live next to it: its scripts read its last item's meta.
        """
        ...


class ScheduleKeys:
    """Key names of the schedules of one namespace."""

    def __init__(self, keys: Keys) -> None:
        self.base = keys.base
        self.names = f"{keys.base}scheds"

    def schedule(self, name: str) -> str:
        """Hash of one schedule: its definition and its tick state."""
        return f"{self.base}sched:{encode_part(name)}"

    def due(self, queue: str) -> str:
        """Sorted set of the queue's unpaused schedules, scored by next tick (ms)."""
        return f"{self.base}q:{encode_part(queue)}:sched:due"

    def clock(self, queue: str) -> str:
        """Hash: when the queue's schedules were last looked at, and the missed-tick mark."""
        return f"{self.base}q:{encode_part(queue)}:sched:clock"


SCHEDULE_CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (
        Contract.of(
            "scan",
            keys="due clock",
            args="missed_after_ms count",
            replies={"": "now missed next_tick rows*(name tick)"},
        ),
        Contract.of(
            "decide",
            keys="sched due clock last_meta",
            args="name tick last version finished_states",
            replies={
                "DECIDED": "outcome mark",
                "GONE": "",
                "MOVED": "next_tick",
                "PAUSED": "",
                "RETRY": "",
            },
        ),
        Contract.of(
            "advance",
            keys="sched due",
            args="name tick outcome next_tick work_id",
            replies={"OK": "", "GONE": "", "MOVED": ""},
        ),
        Contract.of(
            "save",
            keys="sched names due old_due",
            args="name replace old_queue first_tick fields*",
            replies={"OK": "created", "EXISTS": "", "RETRY": ""},
        ),
        Contract.of(
            "edit",
            keys="sched names due",
            args="op name queue arg",
            replies={"OK": "", "SAME": "", "GONE": "", "RETRY": ""},
        ),
    )
}
"""The schedule scripts' contracts, as their headers state them (checked by a test)."""


class ScheduleScripts:
    """The schedule scripts (a Functions library of their own) as typed methods."""

    def __init__(self, client: AsyncRedis) -> None:
        self._scripts = Scripts(client, SCHEDULE_LIBRARY)

    async def _run(
        self, name: str, keys: dict[str, Any], args: dict[str, Any], reply: type[R]
    ) -> R:
        contract = SCHEDULE_CONTRACTS[name]
        raw = await self._scripts(
            name, pack(contract.keys, keys, []), pack(contract.args, args, [])
        )
        return decode(contract, raw, reply)

    async def scan(self, *, due: str, clock: str, missed_after_ms: int, count: int) -> ScanReply:
        """The schedules of one queue due by the server's clock (see scan.lua)."""
        return await self._run(
            "scan",
            {"due": due, "clock": clock},
            {"missed_after_ms": missed_after_ms, "count": count},
            ScanReply,
        )

    async def decide(
        self,
        *,
        sched: str,
        due: str,
        clock: str,
        last_meta: str,
        name: str,
        tick: int,
        last: str,
        version: str,
        finished_states: str,
    ) -> ScheduleReply:
        """Decide what a due tick does, once for every worker (see decide.lua)."""
        return await self._run(
            "decide",
            {"sched": sched, "due": due, "clock": clock, "last_meta": last_meta},
            {
                "name": name,
                "tick": tick,
                "last": last,
                "version": version,
                "finished_states": finished_states,
            },
            ScheduleReply,
        )

    async def advance(
        self,
        *,
        sched: str,
        due: str,
        name: str,
        tick: int,
        outcome: str,
        next_tick: int | None,
        work_id: str,
    ) -> ScheduleReply:
        """Carry out a decided tick (see advance.lua)."""
        return await self._run(
            "advance",
            {"sched": sched, "due": due},
            {
                "name": name,
                "tick": tick,
                "outcome": outcome,
                "next_tick": "" if next_tick is None else next_tick,
                "work_id": work_id,
            },
            ScheduleReply,
        )

    async def save(
        self,
        *,
        sched: str,
        names: str,
        due: str,
        old_due: str,
        name: str,
        replace: bool,
        old_queue: str,
        first_tick: int | None,
        fields: list[Any],
    ) -> ScheduleReply:
        """Create or replace a schedule (see save.lua)."""
        return await self._run(
            "save",
            {"sched": sched, "names": names, "due": due, "old_due": old_due},
            {
                "name": name,
                "replace": "1" if replace else "0",
                "old_queue": old_queue,
                "first_tick": "" if first_tick is None else first_tick,
                "fields": fields,
            },
            ScheduleReply,
        )

    async def edit(
        self, *, sched: str, names: str, due: str, op: str, name: str, queue: str, arg: str
    ) -> ScheduleReply:
        """Pause, resume or remove a schedule, or record a run-now item (see edit.lua)."""
        return await self._run(
            "edit",
            {"sched": sched, "names": names, "due": due},
            {"op": op, "name": name, "queue": queue, "arg": arg},
            ScheduleReply,
        )


class Schedule(BaseModel):
    """A schedule: what it enqueues, when, and what its last tick did.

    Times are epoch seconds of the Redis server's clock.
    """

    name: str
    engine: str
    payload: dict[str, Any] = Field(default_factory=dict[str, Any])
    resources: list[str] = Field(default_factory=list[str])
    queue: str
    cron: str | None = None
    every: float | None = None
    """Seconds between ticks (interval schedules)."""
    timezone: str | None = None
    """The cron expression's timezone."""
    missed: MissedPolicy = "run-once"
    """What a worker does with ticks missed while no worker ran: one item for them all, or none."""
    skip_if_running: bool = False
    """Skip a tick while the schedule's previous item is unfinished."""
    paused: bool = False
    created_at: float = 0.0
    next_run: float | None = None
    """The next tick (None when paused or when the expression never matches again)."""
    last_tick: float | None = None
    """The tick the last outcome was for."""
    last_outcome: str | None = None
    """``fired``, ``fired-missed`` (one item for missed ticks), ``skipped-missed``,
    ``skipped-running`` or ``run-now``."""
    last_at: float | None = None
    """When the last outcome happened."""
    last_work_id: str | None = None
    """The last item the schedule made."""
    last_state: WorkState | None = None
    """That item's state when the schedule was read (None once it is gone)."""
    fired: int = 0
    """Ticks that made an item."""
    skipped: int = 0
    """Ticks that made none (missed with ``skip``, or skipped while the last item ran)."""

    @property
    def recurrence(self) -> Recurrence:
        """The schedule's rhythm."""
        if self.cron is not None:
            return Recurrence(cron=self.cron, timezone=self.timezone or "UTC")
        return Recurrence(every_ms=round((self.every or 0) * 1000))

    def item(self, *, tick_ms: int | None) -> WorkItem:
        """The work item a tick (or, with ``tick_ms`` None, a run-now) enqueues."""
        return WorkItem(
            engine=self.engine,
            payload=self.payload,
            resources=self.resources,
            idempotency_key=None if tick_ms is None else tick_key(self.name, tick_ms),
            queue=self.queue,
        )


def _ms(value: str | None) -> float | None:
    return int(value) / 1000.0 if value else None


def schedule_from_hash(name: str, h: Mapping[str, str]) -> Schedule:
    """Read a schedule's hash (as :func:`definition_fields` and the scripts wrote it)."""
    every = h.get("every")
    paused = h.get("paused") == "1"
    return Schedule(
        name=name,
        engine=h["engine"],
        payload=json.loads(h.get("payload") or "{}"),
        resources=[r for r in h.get("res", "").split(" ") if r],
        queue=h["queue"],
        cron=h.get("cron") or None,
        every=int(every) / 1000.0 if every else None,
        timezone=h.get("tz") or None,
        missed="skip" if h.get("missed") == "skip" else "run-once",
        skip_if_running=h.get("skiprun") == "1",
        paused=paused,
        created_at=_ms(h.get("created")) or 0.0,
        next_run=None if paused else _ms(h.get("next")),
        last_tick=_ms(h.get("ltick")),
        last_outcome=h.get("lout") or None,
        last_at=_ms(h.get("lat")),
        last_work_id=h.get("last") or None,
        fired=int(h.get("fired") or 0),
        skipped=int(h.get("skipped") or 0),
    )


def definition_fields(schedule: Schedule) -> list[str]:
    """The definition as field/value pairs for the save script."""
    recurrence = schedule.recurrence
    return [
        "engine",
        schedule.engine,
        "payload",
        json.dumps(schedule.payload, separators=(",", ":"), allow_nan=False),
        "res",
        " ".join(schedule.resources),
        "queue",
        schedule.queue,
        "cron",
        recurrence.cron or "",
        "every",
        str(recurrence.every_ms or ""),
        "tz",
        recurrence.timezone if recurrence.cron else "",
        "missed",
        schedule.missed,
        "skiprun",
        "1" if schedule.skip_if_running else "0",
    ]
