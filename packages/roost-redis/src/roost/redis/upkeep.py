"""A worker's background loops: lease renewal, due promotion, recovery, heartbeat.

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
from typing import TYPE_CHECKING, Any

from roost.redis.identity import beat, heartbeat_interval
from roost.redis.maintenance import (
    lapsed_workers,
    promote_due,
    purge_expired,
    reclaim_stranded,
    recover_expired,
    recover_worker,
)
from roost.redis.scripts import LIBRARIES
from roost.redis.supervise import raise_if_cancelling

if TYPE_CHECKING:
    from roost.redis.worker import Worker

__all__ = [
    "deregister",
    "heartbeat_pass",
    "maintenance_pass",
    "promote_pass",
    "renew_pass",
]

log = logging.getLogger("roost.worker")

MAINTENANCE_INTERVAL = 0.5
MAINTENANCE_MIN_SLEEP = 0.02
MAINTENANCE_LOCK_MS = 500
PURGE_INTERVAL = 60.0
PROMOTE_IDLE = 0.25


async def renew_pass(worker: Worker) -> float:
    """Renew every lease the worker holds in one call; return the wait until the next pass.

    A lease reported lost (or not renewed before its local deadline while the renewal
    fails) interrupts its step; a cancelled item interrupts its step too.
    """
    interval = max(worker.ttl / 3.0, 0.1)
    batch = [h for h in worker.held.values() if not h.lost]
    if not batch:
        return interval
    sent = time.monotonic()
    item_keys: list[str] = []
    args: list[Any] = [len(batch)]
    for h in batch:
        item_keys += [worker.keys.meta(h.work_id), *(worker.keys.res(r) for r in h.resources)]
        args += [h.work_id, h.token, h.epoch, len(h.resources)]
    sent_ms = worker.clock.local_ms()
    try:
        reply = await worker.swarm.run_script("renew", item_keys, args)
    except Exception:
        for h in batch:
            if time.monotonic() > h.deadline:
                h.lost = True
                h.interrupt()
                worker.observers.lease_lost(h.keys.engine or "")
        raise
    worker.clock.observe(float(reply[0]), sent_ms)
    for h, status in zip(batch, reply[1:], strict=True):
        if status == "OK":
            h.deadline = sent + worker.ttl
        elif status == "CANCELLED":
            h.deadline = sent + worker.ttl
            if not h.cancelled:
                h.cancelled = True
                h.interrupt()
        else:
            h.lost = True
            h.interrupt()
            worker.observers.lease_lost(h.keys.engine or "")
    if worker.observers:
        worker.observers.leases_renewed(sum(1 for status in reply[1:] if status != "LOST"))
    return interval


async def promote_pass(worker: Worker) -> float:
    """Queue due items, then sleep until the next due time known (at most PROMOTE_IDLE)."""
    # Clear before the pass, and take any wake_at during it: a wake that arrives while the
    # pass is in flight must not be lost.
    worker.wake.clear()
    worker.next_promote = float("inf")
    next_due = await promote_due(worker.swarm, worker.keys, worker.clock)
    now = worker.clock.now_ms()
    idle_until = now + PROMOTE_IDLE * 1000
    target = idle_until if next_due < 0 else min(max(next_due, now), idle_until)
    worker.next_promote = target
    if target > now and not worker.wake.is_set():
        try:
            await asyncio.wait_for(worker.wake.wait(), (target - now) / 1000.0)
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
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.last_purge = 0.0

    async def __call__(self) -> float:
        """One pass; returns the wait until the next."""
        worker = self.worker
        client, keys = worker.swarm.client, worker.keys
        got = await client.set(
            keys.recover_lock, worker.swarm.worker_id, nx=True, px=MAINTENANCE_LOCK_MS
        )
        if got:
            try:
                await self._recover()
            finally:
                await client.delete(keys.recover_lock)
        head: list[tuple[str, float]] = await client.zrange(keys.leases, 0, 0, withscores=True)
        if not head:
            return MAINTENANCE_INTERVAL
        until_expiry = (head[0][1] - worker.clock.now_ms()) / 1000.0 + 0.005
        return min(max(until_expiry, MAINTENANCE_MIN_SLEEP), MAINTENANCE_INTERVAL)

    async def _recover(self) -> None:
        worker, keys = self.worker, self.worker.keys
        await self._recover_lapsed()
        requeued, dead = await recover_expired(worker.swarm, keys, worker.clock)
        redispatched, _ = await reclaim_stranded(worker.swarm, keys)
        if requeued or dead or redispatched:
            worker.observers.recovered(requeued, dead, redispatched)
            log.info(
                "recovered %d expired leases (%d dead), re-dispatched %d deliveries",
                requeued,
                dead,
                redispatched,
            )
            worker.wake.set()
        if time.monotonic() - self.last_purge > PURGE_INTERVAL:
            self.last_purge = time.monotonic()
            await purge_expired(worker.swarm, keys, worker.clock)
            await prune(worker)

    async def _recover_lapsed(self) -> None:
        """Take back the leases of workers whose heartbeat stopped (ROOST_HEARTBEAT_TIMEOUT)."""
        worker, keys = self.worker, self.worker.keys
        lapsed = await lapsed_workers(worker.swarm, keys, worker.clock, worker.beating_since)
        for wid, last in lapsed:
            if wid == worker.swarm.worker_id:
                continue  # this very worker: it beats again now
            requeued, dead, alive = await recover_worker(worker.swarm, keys, wid, last)
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
                worker.wake.set()


def maintenance_pass(worker: Worker) -> Maintenance:
    """The maintenance loop's pass function for ``worker``."""
    return Maintenance(worker)


async def prune(worker: Worker) -> None:
    """Forget workers whose heartbeat lapsed and per-minute stats older than a day."""
    client = worker.swarm.client
    now_ms = int(worker.clock.now_ms())
    dead: list[str] = await client.zrange(worker.keys.workers, "-inf", now_ms, byscore=True)
    if dead:
        await client.zrem(worker.keys.workers, *dead)
    for engine in await client.smembers(worker.keys.engines):
        await client.zremrangebyscore(worker.keys.live(engine), "-inf", now_ms)
    fields: list[str] = await client.hkeys(worker.keys.stats)
    old = [f for f in fields if int(f.split(":", 1)[0]) < now_ms // 60000 - 24 * 60]
    if old:
        await client.hdel(worker.keys.stats, *old)


def worker_info(worker: Worker) -> dict[str, Any]:
    """What the heartbeat publishes about ``worker`` (``RedisSwarm.workers`` returns it)."""
    problem = worker.health.problem()
    return {
        "queue": worker.settings.queue,
        "engines": sorted(worker.engines),
        "slots": {e: lane.slots for e, lane in sorted(worker.lanes.items())},
        "concurrency": worker.concurrency,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": worker.started,
        "running": len(worker.held),
        "steps": worker.steps_committed,
        "healthy": problem is None,
        "libraries": list(LIBRARIES),
        **({"problem": problem} if problem else {}),
    }


async def heartbeat_pass(worker: Worker) -> float:
    """Beat; the next pass comes sooner if the worker's health changes.

    A worker whose identity another run has claimed since (it was taken for dead) gives up:
    its leases are no longer its own.
    """
    worker.health.changed.clear()
    mine = await beat(worker, worker_info(worker))
    if not mine:
        worker.superseded = True
        for held in worker.held.values():
            held.lost = True
            held.interrupt()
        worker.give_up(
            f"another worker started with id {worker.swarm.worker_id!r} and took its leases "
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


async def deregister(worker: Worker) -> None:
    """Remove this worker from the live-workers index (best effort).

    A worker replaced by another run of its identity leaves the entries: they are the new
    run's.
    """
    if worker.superseded:
        return
    try:
        await worker.swarm.client.zrem(worker.keys.beats, worker.swarm.worker_id)
        await worker.swarm.client.zrem(worker.keys.workers, worker.swarm.worker_id)
        await worker.swarm.client.delete(worker.keys.worker(worker.swarm.worker_id))
        for engine in worker.engines:
            await worker.swarm.client.zrem(worker.keys.live(engine), worker.swarm.worker_id)
    except Exception as exc:
        log.debug("deregister: %s", exc)
