"""A worker's background loops: lease renewal, due promotion, recovery, heartbeat."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from roost.redis.connection import INFRA_ERRORS
from roost.redis.maintenance import (
    promote_due,
    purge_expired,
    reclaim_stranded,
    recover_expired,
)

if TYPE_CHECKING:
    from roost.redis.worker import Worker

__all__ = [
    "deregister",
    "heartbeat_loop",
    "maintenance_loop",
    "promote_loop",
    "raise_if_cancelling",
    "renew_leases",
]

log = logging.getLogger("roost.worker")

MAINTENANCE_INTERVAL = 0.5
MAINTENANCE_MIN_SLEEP = 0.02
MAINTENANCE_LOCK_MS = 500
PURGE_INTERVAL = 60.0
HEARTBEAT_INTERVAL = 5.0
PROMOTE_IDLE = 0.25


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that arrived disguised as a timeout.

    On Python 3.11, a cancel that lands while redis-py waits inside ``asyncio.wait_for`` or
    ``asyncio.timeout`` can come out as ``TimeoutError``, which the loops below catch as
    "Redis is unreachable"; a stopping worker then waited forever for such a loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def renew_leases(worker: Worker) -> None:
    """Renew every lease the worker holds, in one call every third of the lease TTL.

    A lease reported lost (or not renewed before its local deadline while Redis is away)
    interrupts its step; a cancelled item interrupts its step too.
    """
    interval = max(worker.ttl / 3.0, 0.1)
    while not worker.closing:
        await asyncio.sleep(interval)
        batch = [h for h in worker.held.values() if not h.lost]
        if not batch:
            continue
        sent = time.monotonic()
        item_keys: list[str] = []
        args: list[Any] = [len(batch)]
        for h in batch:
            item_keys += [worker.keys.meta(h.work_id), *(worker.keys.res(r) for r in h.resources)]
            args += [h.work_id, h.token, h.epoch, len(h.resources)]
        sent_ms = worker.clock.local_ms()
        try:
            reply = await worker.swarm.run_script("renew", item_keys, args)
        except INFRA_ERRORS as exc:
            raise_if_cancelling()
            log.warning("lease renewal failed: %s", exc)
            for h in batch:
                if time.monotonic() > h.deadline:
                    h.lost = True
                    h.interrupt()
            continue
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


async def promote_loop(worker: Worker) -> None:
    """Queue due items, then sleep until the next due time known (at most PROMOTE_IDLE)."""
    while not worker.closing:
        # Clear before the pass, and take any wake_at during it: a wake that arrives while
        # the pass is in flight must not be lost (it used to be cleared afterwards).
        worker.wake.clear()
        worker.next_promote = float("inf")
        try:
            next_due = await promote_due(worker.swarm, worker.keys, worker.clock)
        except INFRA_ERRORS as exc:
            raise_if_cancelling()
            log.debug("promote: %s", exc)
            next_due = -1.0
        now = worker.clock.now_ms()
        idle_until = now + PROMOTE_IDLE * 1000
        target = idle_until if next_due < 0 else min(max(next_due, now), idle_until)
        worker.next_promote = target
        if target > now and not worker.wake.is_set():
            try:
                await asyncio.wait_for(worker.wake.wait(), (target - now) / 1000.0)
            except TimeoutError:
                raise_if_cancelling()


async def maintenance_loop(worker: Worker) -> None:
    """Recover orphans and purge old work, when this worker wins the queue's lock.

    It wakes at the earliest lease expiry it knows of (at most every MAINTENANCE_INTERVAL):
    expired leases are recovered and stranded deliveries re-dispatched; every
    PURGE_INTERVAL, finished work past its retention is deleted. The lock only keeps
    workers from doing the same pass at once; it is released after each pass, so a crashed
    worker's lock never delays the next pass by more than its short expiry.
    """
    last_purge = 0.0
    client, keys = worker.swarm.client, worker.keys
    while not worker.closing:
        delay = MAINTENANCE_INTERVAL
        try:
            got = await client.set(
                keys.recover_lock, worker.swarm.worker_id, nx=True, px=MAINTENANCE_LOCK_MS
            )
            if got:
                requeued, dead = await recover_expired(worker.swarm, keys, worker.clock)
                redispatched, _ = await reclaim_stranded(worker.swarm, keys)
                if requeued or dead or redispatched:
                    log.info(
                        "recovered %d expired leases (%d dead), re-dispatched %d deliveries",
                        requeued,
                        dead,
                        redispatched,
                    )
                    worker.wake.set()
                if time.monotonic() - last_purge > PURGE_INTERVAL:
                    last_purge = time.monotonic()
                    await purge_expired(worker.swarm, keys)
                    await prune(worker)
                await client.delete(keys.recover_lock)
            head: list[tuple[str, float]] = await client.zrange(keys.leases, 0, 0, withscores=True)
            if head:
                until_expiry = (head[0][1] - worker.clock.now_ms()) / 1000.0 + 0.005
                delay = min(max(until_expiry, MAINTENANCE_MIN_SLEEP), MAINTENANCE_INTERVAL)
        except INFRA_ERRORS as exc:
            raise_if_cancelling()
            log.debug("maintenance: %s", exc)
        await asyncio.sleep(delay)


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


async def heartbeat_loop(worker: Worker) -> None:
    """Publish this worker's description (engines, queue, load) for ``RedisSwarm.workers``.

    The worker also stands in its queue's live set of each engine it runs, which is how
    work whose engine no live worker runs is told apart from work that merely waits.
    """
    info = {
        "queue": worker.settings.queue,
        "engines": sorted(worker.engines),
        "slots": {e: lane.slots for e, lane in sorted(worker.lanes.items())},
        "concurrency": worker.concurrency,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": worker.started,
    }
    key = worker.keys.worker(worker.swarm.worker_id)
    while not worker.closing:
        now_ms = worker.clock.now_ms()
        body = json.dumps(
            {
                **info,
                "running": len(worker.held),
                "steps": worker.steps_committed,
                "heartbeat": now_ms / 1000.0,
            }
        )
        expiry = {worker.swarm.worker_id: now_ms + HEARTBEAT_INTERVAL * 3000}
        try:
            async with worker.swarm.client.pipeline(transaction=False) as pipe:
                pipe.hset(key, "info", body)
                pipe.pexpire(key, int(HEARTBEAT_INTERVAL * 3000))
                pipe.zadd(worker.keys.workers, expiry)
                for engine in worker.engines:
                    pipe.zadd(worker.keys.live(engine), expiry)
                pipe.sadd(worker.keys.engines, *worker.engines)
                await pipe.execute()
        except INFRA_ERRORS as exc:
            raise_if_cancelling()
            log.debug("heartbeat: %s", exc)
        await asyncio.sleep(HEARTBEAT_INTERVAL)


async def deregister(worker: Worker) -> None:
    """Remove this worker from the live-workers index (best effort)."""
    try:
        await worker.swarm.client.zrem(worker.keys.workers, worker.swarm.worker_id)
        await worker.swarm.client.delete(worker.keys.worker(worker.swarm.worker_id))
        for engine in worker.engines:
            await worker.swarm.client.zrem(worker.keys.live(engine), worker.swarm.worker_id)
    except INFRA_ERRORS:
        pass
