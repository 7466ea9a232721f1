"""The tick pass: every worker turns its queue's due schedule ticks into work items.

Each tick makes exactly one item however many workers run the pass at once, and none is
lost or doubled when a worker dies in the middle:

1. ``scan`` reads, by the Redis server's clock (``TIME``), the schedules whose next tick has
   come (an index by next tick, never SCAN).
2. ``decide`` records what the tick does, once: the first worker to ask decides, every other
   worker (and a worker that takes over after a crash) gets the same outcome.
3. A tick that fires enqueues its item with the idempotency key ``schedule:<name>:<tick ms>``
   (see I8): a second enqueue of the same tick returns the same work id and creates nothing.
4. ``advance`` moves the schedule to its next tick by a compare-and-set on the tick and its
   decision. A worker that dies between 3 and 4 leaves the decision in place; the next pass
   (its own or another worker's) enqueues the same key again, a no-op, and advances.

Missed ticks: a tick is missed when it came due while no worker of the queue was looking at
the schedules, that is when no tick pass ran for more than :data:`MISSED_AFTER` (every worker
stopped, or none could reach Redis). The first pass after such a gap marks every pending tick
missed (in the same script that notes the pass), and each schedule's policy says what they do:
``run-once`` makes one item for all of them (the first missed tick's), ``skip`` makes none;
either way the schedule goes on at its first tick after the gap. Ticks that come due while
workers run are never missed, only late: a pass that falls behind (a busy worker, a short
Redis hiccup) catches up on each of them in turn.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from roost.redis.contract import Code
from roost.redis.faults import describe, is_outage
from roost.redis.schedule_data import TERMINAL_STATES, schedule_from_hash

if TYPE_CHECKING:
    from roost.redis.schedule_data import Backend, ScheduleKeys, ScheduleScripts

__all__ = ["BATCH", "CATCH_UP", "IDLE", "MISSED_AFTER", "TickPass"]

log = logging.getLogger("roost.worker")

MISSED_AFTER = 5.0
"""Seconds without a tick pass after which the ticks that came due meanwhile are missed."""
IDLE = 0.5
"""A pass with nothing due soon looks again after this long (new schedules, other workers)."""
BATCH = 100
"""Due schedules one pass reads; a full batch is followed by another pass at once."""
CATCH_UP = 20
"""Late ticks of one schedule that one pass fires before it turns to the next schedule."""
RELOG_AFTER = 300.0


class TickPass:
    """The ``schedules`` loop of a worker: one call is one pass; it returns the wait until the next.

    Redis outages propagate (the worker's supervisor backs off and retries); anything else
    that goes wrong with one schedule is logged (once per schedule and kind, every
    :data:`RELOG_AFTER` seconds at most) and leaves the other schedules alone.
    """

    def __init__(self, backend: Backend, keys: ScheduleKeys, scripts: ScheduleScripts) -> None:
        self.backend = backend
        self.keys = keys
        self.scripts = scripts
        self._logged: dict[tuple[str, str], float] = {}

    async def __call__(self) -> float:
        """One pass over the queue's due schedules."""
        queue = self.backend.settings.queue
        sent = time.monotonic()
        reply = await self.scripts.scan(
            due=self.keys.due(queue),
            clock=self.keys.clock(queue),
            missed_after_ms=int(MISSED_AFTER * 1000),
            count=BATCH,
        )
        now = reply.now
        soonest = None if reply.next_tick is None else int(reply.next_tick)
        rows = reply.rows
        for row_name, row_tick in rows:
            name, tick = str(row_name), int(float(row_tick))
            try:
                upcoming = await self._fire(name, tick, now)
            except Exception as exc:
                if is_outage(exc):
                    raise
                self._report(name, exc)
                continue
            if upcoming is not None and (soonest is None or upcoming < soonest):
                soonest = upcoming
        if len(rows) >= BATCH:
            return 0.0
        if soonest is None:
            return IDLE
        # ``now`` is the server's clock when the scan ran; time has passed here since.
        wait = (soonest - now) / 1000.0 - (time.monotonic() - sent) + 0.001
        return min(IDLE, max(wait, 0.0))

    async def _fire(self, name: str, tick: int, now: int) -> int | None:
        """Carry out ``name``'s due ticks up to ``now``; return its next tick after them."""
        client, keys = self.backend.client, self.keys
        for _ in range(CATCH_UP):
            h = await client.hgetall(keys.schedule(name))
            queue = h.get("queue") or self.backend.settings.queue
            last = h.get("last", "")
            reply = await self.scripts.decide(
                sched=keys.schedule(name),
                due=keys.due(queue),
                clock=keys.clock(queue),
                last_meta=self.backend.keys.meta(last) if last else keys.schedule(name),
                name=name,
                tick=tick,
                last=last,
                version=h.get("ver", ""),
                finished_states=TERMINAL_STATES,
            )
            if reply.code is Code.RETRY:
                continue
            if reply.code is Code.MOVED:
                return None if reply.next_tick is None else int(reply.next_tick)
            if reply.code is not Code.DECIDED:
                return None  # removed or paused meanwhile
            outcome, mark = reply.outcome, reply.mark
            schedule = schedule_from_hash(name, h)
            upcoming = schedule.recurrence.next_after(max(tick, int(mark) if mark else tick))
            work_id = ""
            if outcome.startswith("fired"):
                work_id = (await self.backend.enqueue_home([schedule.item(tick_ms=tick)]))[0]
            done = await self.scripts.advance(
                sched=keys.schedule(name),
                due=keys.due(queue),
                name=name,
                tick=tick,
                outcome=outcome,
                next_tick=upcoming,
                work_id=work_id,
            )
            if done.code is not Code.OK:
                return None
            if outcome.endswith("missed"):
                log.info(
                    "schedule %s: ticks from %d to %d were missed (no worker ran): %s",
                    name,
                    tick,
                    int(mark),
                    f"one item {work_id}" if work_id else "skipped",
                )
            else:
                log.debug("schedule %s: tick %d %s %s", name, tick, outcome, work_id)
            if upcoming is None or upcoming > now:
                return upcoming
            tick = upcoming
        return tick

    def _report(self, name: str, exc: Exception) -> None:
        key = (name, type(exc).__name__)
        at = time.monotonic()
        if at - self._logged.get(key, -RELOG_AFTER) >= RELOG_AFTER:
            log.error("schedule %s: its tick failed: %s", name, describe(exc), exc_info=exc)
        self._logged[key] = at
