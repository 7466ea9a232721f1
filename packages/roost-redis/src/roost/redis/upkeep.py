"""A worker's background loops on Redis: due promotion, recovery, heartbeat.

Each loop is a pass function run under :func:`roost.redis.supervise.supervise`: a pass does
its work and returns how long to wait before the next one; a pass that raises is logged (once
per kind of failure) and tried again after a backoff, so no Redis error ends a loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol

from roost.redis.identity import Member, beat, heartbeat_interval, unbroken_since
from roost.redis.maintenance import lapsed_workers, promote_due, purge_expired, recover_worker
from roost.redis.scripts import LIBRARIES
from roost.redis.supervise import raise_if_cancelling

if TYPE_CHECKING:
    from roost.redis.holder import RedisLeases
    from roost.redis.keys import Keys
    from roost.redis.supervise import Health
    from roost.runtime.runner import Runner

__all__ = [
    "Kept",
    "deregister",
    "heartbeat_pass",
    "maintenance_pass",
    "promote_pass",
    "worker_info",
]

log = logging.getLogger("roost.worker")

MAINTENANCE_INTERVAL = 0.5
MAINTENANCE_MIN_SLEEP = 0.02
MAINTENANCE_LOCK_MS = 500
PURGE_INTERVAL = 60.0
PROMOTE_IDLE = 0.25


class Kept(Member, Protocol):
    """What the loops here read and change of a worker (``roost.redis.worker.Worker``)."""

    runner: Runner
    leases: RedisLeases
    health: Health
    superseded: bool
    started: float
    concurrency: int
    slots: dict[str, int]

    def give_up(self, reason: str) -> None:
        """Stop the worker because it cannot make progress."""
        ...

    def serving(self) -> dict[str, list[int]]:
        """The partitions each engine's lane serves now."""
        ...

    def served_partitions(self) -> set[int]:
        """The partitions some lane of the worker serves now."""
        ...


async def promote_pass(worker: Kept) -> float:
    """Queue due items, then sleep until the next due time known (at most PROMOTE_IDLE).

    Only in the partitions the worker serves: each partition is served by at least one live
    worker (two once there are two), which promotes it; promoting every partition on every
    worker would cost each worker a script call per partition and pass, for nothing.
    """
    # Clear before the pass, and take any wake_at during it: a wake that arrives while the
    # pass is in flight must not be lost.
    runner = worker.runner
    runner.wake.clear()
    runner.next_promote = float("inf")
    dues = [
        await promote_due(worker.store, worker.keys.for_partition(k), worker.clock)
        for k in sorted(worker.served_partitions())
    ]
    next_due = min((d for d in dues if d >= 0), default=-1.0)
    now = worker.clock.now_ms()
    idle_until = now + PROMOTE_IDLE * 1000
    target = idle_until if next_due < 0 else min(max(next_due, now), idle_until)
    runner.next_promote = target
    if target > now and not runner.wake.is_set():
        try:
            await asyncio.wait_for(runner.wake.wait(), (target - now) / 1000.0)
        except TimeoutError:
            raise_if_cancelling()
    return 0.0


class Maintenance:
    """Recovers orphans and purges old work, when this worker wins the queue's lock.

    Each pass wakes at the earliest lease expiry known (at most every MAINTENANCE_INTERVAL):
    expired leases are recovered and stranded deliveries re-dispatched; every PURGE_INTERVAL,
    finished work past its retention is deleted. The lock only keeps workers from doing the
    same pass at once; it is released after each pass, so a crashed worker's lock never
    delays the next pass by more than its short expiry.

    A pass covers every partition, whichever the worker serves: the lock makes it one
    worker's pass per queue whatever the number of workers, and recovery is what must work
    while the sharing of partitions is in flux (a worker that died was serving some).
    """

    def __init__(self, worker: Kept) -> None:
        self.worker = worker
        self.last_purge = 0.0

    async def __call__(self) -> float:
        """One pass; returns the wait until the next."""
        worker = self.worker
        client, keys = worker.store.client, worker.keys
        got = await client.set(
            keys.recover_lock, worker.store.worker_id, nx=True, px=MAINTENANCE_LOCK_MS
        )
        if got:
            try:
                await self._recover()
            finally:
                await client.delete(keys.recover_lock)
        heads: list[float] = []
        for k in range(worker.store.partitions):
            head: list[tuple[str, float]] = await client.zrange(
                keys.for_partition(k).leases, 0, 0, withscores=True
            )
            heads += [score for _, score in head]
        if not heads:
            return MAINTENANCE_INTERVAL
        until_expiry = (min(heads) - worker.clock.now_ms()) / 1000.0 + 0.005
        return min(max(until_expiry, MAINTENANCE_MIN_SLEEP), MAINTENANCE_INTERVAL)

    async def _recover(self) -> None:
        worker, keys = self.worker, self.worker.keys
        await self._recover_lapsed()
        recovered = await worker.leases.recover()
        requeued, dead, redispatched = recovered.requeued, recovered.dead, recovered.redispatched
        if requeued or dead or redispatched:
            worker.runner.observers.recovered(requeued, dead, redispatched)
            log.info(
                "recovered %d expired leases (%d dead), re-dispatched %d deliveries",
                requeued,
                dead,
                redispatched,
            )
            worker.runner.wake.set()
        if time.monotonic() - self.last_purge > PURGE_INTERVAL:
            self.last_purge = time.monotonic()
            for k in range(worker.store.partitions):
                await purge_expired(worker.store, keys.for_partition(k), worker.clock)
            await prune(worker)

    async def _recover_lapsed(self) -> None:
        """Take back the leases of workers whose heartbeat stopped (ROOST_HEARTBEAT_TIMEOUT)."""
        worker = self.worker
        for k in range(worker.store.partitions):
            await self._recover_lapsed_in(worker.keys.for_partition(k))

    async def _recover_lapsed_in(self, keys: Keys) -> None:
        worker = self.worker
        lapsed = await lapsed_workers(worker.store, keys, worker.clock, unbroken_since(worker))
        for wid, last in lapsed:
            if wid == worker.store.worker_id:
                continue  # this very worker: it beats again now
            requeued, dead, alive = await recover_worker(worker.store, keys, wid, last)
            if alive:
                continue
            silent = (worker.clock.now_ms() - last) / 1000.0
            log.warning(
                "worker %s stopped beating %.1fs ago: took back its %d leases (%d dead)",
                wid,
                silent,
                requeued + dead,
                dead,
                extra={"event": "worker_lost", "worker": wid, "leases": requeued + dead},
            )
            if requeued or dead:
                worker.runner.wake.set()


def maintenance_pass(worker: Kept) -> Maintenance:
    """The maintenance loop's pass function for ``worker``."""
    return Maintenance(worker)


async def prune(worker: Kept) -> None:
    """Forget workers whose heartbeat lapsed and per-minute stats older than a day."""
    client = worker.store.client
    now_ms = int(worker.clock.now_ms())
    dead: list[str] = await client.zrange(worker.keys.workers, "-inf", now_ms, byscore=True)
    if dead:
        await client.zrem(worker.keys.workers, *dead)
    for engine in await client.smembers(worker.keys.engines):
        await client.zremrangebyscore(worker.keys.live(engine), "-inf", now_ms)
    for k in range(worker.store.partitions):
        stats = worker.keys.for_partition(k).stats
        fields: list[str] = await client.hkeys(stats)
        old = [f for f in fields if int(f.split(":", 1)[0]) < now_ms // 60000 - 24 * 60]
        if old:
            await client.hdel(stats, *old)


def worker_info(worker: Kept) -> dict[str, Any]:
    """What the heartbeat publishes about ``worker`` (``RedisSwarm.workers`` returns it)."""
    problem = worker.health.problem()
    return {
        "queue": worker.settings.queue,
        "engines": sorted(worker.engines),
        "slots": dict(sorted(worker.slots.items())),
        "concurrency": worker.concurrency,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": worker.started,
        "running": len(worker.runner.held),
        "steps": worker.runner.steps_committed,
        "healthy": problem is None,
        "libraries": list(LIBRARIES),
        **({"partitions": worker.serving()} if worker.store.partitions > 1 else {}),
        **({"problem": problem} if problem else {}),
    }


async def heartbeat_pass(worker: Kept) -> float:
    """Beat; the next pass comes sooner if the worker's health changes.

    A worker whose identity another run has claimed since (it was taken for dead) gives up:
    its leases are no longer its own.
    """
    worker.health.changed.clear()
    mine = await beat(worker, worker_info(worker))
    if not mine:
        worker.superseded = True
        worker.runner.lose_all()
        worker.give_up(
            f"another worker started with id {worker.store.worker_id!r} and took its leases "
            "(this one looked dead: its heartbeat had stopped)"
        )
        return heartbeat_interval(worker.settings.heartbeat_timeout)
    try:
        await asyncio.wait_for(
            worker.health.changed.wait(), heartbeat_interval(worker.settings.heartbeat_timeout)
        )
    except TimeoutError:
        raise_if_cancelling()
    return 0.0


async def deregister(worker: Kept) -> None:
    """Remove this worker from the live-workers index (best effort).

    A worker replaced by another run of its identity leaves the entries: they are the new
    run's.
    """
    if worker.superseded:
        return
    try:
        for k in range(worker.store.partitions):
            await worker.store.client.zrem(
                worker.keys.for_partition(k).beats, worker.store.worker_id
            )
        await worker.store.client.zrem(worker.keys.workers, worker.store.worker_id)
        await worker.store.client.delete(worker.keys.worker(worker.store.worker_id))
        for engine in worker.engines:
            await worker.store.client.zrem(worker.keys.live(engine), worker.store.worker_id)
    except Exception as exc:
        log.debug("deregister: %s", exc)
