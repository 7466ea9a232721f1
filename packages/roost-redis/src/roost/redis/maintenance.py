"""Passes that keep work moving: due promotion, lease recovery, delivery reclaim, retention.

Each pass reads an index ordered by deadline (never SCAN), then runs one script that
re-checks what it read and changes only what is still due; the work done grows with the
number of items that need it, not with the number of items stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from roost.redis.delivery import delivery_routes, migrate_legacy
from roost.redis.keys import STATE_ORDER, Keys, new_token
from roost.redis.schema import Meta

if TYPE_CHECKING:
    from roost.redis.store import RedisStore

__all__ = [
    "BATCH",
    "Clock",
    "promote_due",
    "purge_expired",
    "lapsed_workers",
    "reclaim_stranded",
    "recover_expired",
    "recover_worker",
]

BATCH = 100
STRANDED_GRACE_MS = 1000
"""A delivery that no worker acknowledged for this long is dispatched again."""


class Clock:
    """Estimates the Redis server's clock (ms) from replies that carry its ``TIME``."""

    MAX_RTT_MS = 20.0
    """Replies slower than this say too little about the offset and are ignored."""

    def __init__(self) -> None:
        # Until a reply carries the server's clock, assume it reads like this machine's.
        self.offset_ms = time.time() * 1000.0 - self.local_ms()
        self.observed = False

    @staticmethod
    def local_ms() -> float:
        """This process's monotonic clock in ms: the estimate survives wall-clock steps."""
        return time.monotonic() * 1000.0

    def observe(self, server_ms: float, sent_ms: float) -> None:
        """Record the server time a reply carried; ``sent_ms`` is when the call was sent.

        The server read its clock somewhere between sending and receiving; the midpoint is
        the best guess (taking the receive time alone made the estimate late by the whole
        round trip, so timers woke that much late). A slow reply is still taken when it is
        the first: it beats assuming the server's clock reads like this machine's.
        """
        received = self.local_ms()
        if received - sent_ms <= self.MAX_RTT_MS or not self.observed:
            self.offset_ms = float(server_ms) - (sent_ms + received) / 2.0
            self.observed = True

    def now_ms(self) -> float:
        """Best estimate of the server's clock now."""
        return self.local_ms() + self.offset_ms

    def server_ms(self, local_ms: float) -> float:
        """Best estimate of the server's clock at ``local_ms`` (a :meth:`local_ms` reading)."""
        return local_ms + self.offset_ms


async def promote_due(store: RedisStore, keys: Keys, clock: Clock) -> float:
    """Queue items of ``keys.queue`` whose due time has come.

    Returns the due time (server ms) of the next item, ``-1`` when none, or the current
    time when more items are due right away.
    """
    rows: list[tuple[str, float]] = await store.client.zrange(
        keys.due, 0, BATCH - 1, withscores=True
    )
    horizon = clock.now_ms() + 1.0
    ready = [member for member, score in rows if score <= horizon]
    if not ready:
        return rows[0][1] if rows else -1.0
    next_due = now = -1.0
    for engine, work_ids in (await _by_engine(store, keys, ready)).items():
        route = keys.for_engine(engine) if engine else keys
        sent = clock.local_ms()
        reply = await store.calls.promote(route, items=[(w, new_token()) for w in work_ids])
        next_due, now = reply.next_due, reply.now
        clock.observe(now, sent)
    if len(rows) == BATCH and len(ready) == BATCH:
        return float(now)
    return float(next_due)


async def _by_engine(store: RedisStore, keys: Keys, work_ids: list[str]) -> dict[str, list[str]]:
    """Group items by engine (each group's script call pushes on that engine's list).

    An item without meta goes with any group: the scripts find it gone and only clean up.
    """
    async with store.client.pipeline(transaction=False) as pipe:
        for work_id in work_ids:
            pipe.hget(keys.meta(work_id), Meta.ENGINE)
        engines: list[str | None] = await pipe.execute()
    groups: dict[str, list[str]] = {}
    for work_id, engine in zip(work_ids, engines, strict=True):
        groups.setdefault(engine or "", []).append(work_id)
    return groups


async def recover_expired(store: RedisStore, keys: Keys, clock: Clock) -> tuple[int, int]:
    """Requeue (or, past their attempt limit, kill) items whose lease expired.

    Returns (requeued, dead).
    """
    requeued = dead = 0
    while True:
        rows: list[tuple[str, float]] = await store.client.zrange(
            keys.leases, 0, BATCH - 1, withscores=True
        )
        horizon = clock.now_ms()
        expired = [member for member, score in rows if score <= horizon]
        if not expired:
            return requeued, dead
        async with store.client.pipeline(transaction=False) as pipe:
            for work_id in expired:
                pipe.hmget(keys.meta(work_id), [Meta.LEASE_TOKEN, Meta.RESOURCES, Meta.ENGINE])
            seen: list[list[str | None]] = await pipe.execute()
        r, d, _alive = await _recover(store, keys, list(zip(expired, seen, strict=True)))
        requeued += r
        dead += d
        if len(expired) < BATCH:
            return requeued, dead


async def recover_worker(
    store: RedisStore, keys: Keys, holder: str, beat: float | None
) -> tuple[int, int, bool]:
    """Take back every lease of this queue that worker ``holder`` holds: it is gone.

    ``beat`` is the holder's heartbeat (server ms) as the caller read it from
    ``keys.beats``, or None when it had none: each script call first checks that it is
    unchanged, so a worker that beat again meanwhile (it was only slow) keeps its leases.
    Recovered items go back to the front of their engine's list (or dead, past their
    attempt limit: a lost worker counts as an attempt, as after a lease expiry), and the
    holder leaves the heartbeat index. The work grows with the number of leases held in the
    queue (one read of the lease index), not with the number of items stored.
    Returns (requeued, dead, alive): alive when the holder turned out to beat again.
    """
    requeued = dead = 0
    leased: list[str] = await store.client.zrange(keys.leases, 0, -1)
    for start in range(0, len(leased), BATCH):
        chunk = leased[start : start + BATCH]
        async with store.client.pipeline(transaction=False) as pipe:
            for work_id in chunk:
                pipe.hmget(
                    keys.meta(work_id),
                    [Meta.LEASE_TOKEN, Meta.RESOURCES, Meta.ENGINE, Meta.LEASE_WORKER],
                )
            seen: list[list[str | None]] = await pipe.execute()
        mine = [
            (work_id, fields[:3])
            for work_id, fields in zip(chunk, seen, strict=True)
            if fields[3] == holder
        ]
        if not mine:
            continue
        r, d, alive = await _recover(store, keys, mine, holder=holder, beat=beat)
        if alive:
            return requeued, dead, True
        requeued += r
        dead += d
    _r, _d, alive = await _recover(store, keys, [], holder=holder, beat=beat, forget=True)
    return requeued, dead, alive


async def lapsed_workers(
    store: RedisStore, keys: Keys, clock: Clock, beating_since: float
) -> list[tuple[str, float]]:
    """Workers of this queue whose last heartbeat is older than ``ROOST_HEARTBEAT_TIMEOUT``.

    Judged only by a worker whose own heartbeats have gone through without a gap for that
    long (``beating_since``, server ms): after Redis was away, every worker's last beat is
    old, and each gets a whole timeout to beat again before it is taken for gone.
    """
    cutoff = int(clock.now_ms() - store.settings.heartbeat_timeout * 1000)
    if beating_since > cutoff:
        return []
    rows: list[tuple[str, float]] = await store.client.zrange(
        keys.beats, "-inf", cutoff, byscore=True, offset=0, num=BATCH, withscores=True
    )
    return rows


async def _recover(
    store: RedisStore,
    keys: Keys,
    items: list[tuple[str, list[str | None]]],
    *,
    holder: str = "",
    beat: float | None = None,
    forget: bool = False,
) -> tuple[int, int, bool]:
    """Run recover.lua over ``items`` (work id, [token, resources, engine] as read)."""
    requeued = dead = 0
    # One call per engine: each requeues on its engine's list.
    calls: dict[str, list[tuple[str, str, str, str]]] = {}
    if not items:
        calls[""] = []
    for work_id, (token, res, engine) in items:
        calls.setdefault(engine or "", []).append((work_id, token or "", res or "", new_token()))
    for engine, batch in calls.items():
        route = keys.for_engine(engine) if engine else keys
        reply = await store.calls.recover(
            route,
            holder=holder,
            beat_seen=None if beat is None else int(beat),
            forget=forget,
            items=batch,
        )
        if reply.alive:
            return requeued, dead, True
        requeued += reply.requeued
        dead += reply.dead
    return requeued, dead, False


async def reclaim_stranded(store: RedisStore, keys: Keys) -> tuple[int, int]:
    """Re-dispatch deliveries that no worker will take.

    Those are deliveries taken off a delivery list but never acknowledged (each route's
    active list holds only deliveries between a worker's dequeue and its acquire, so this
    costs O(deliveries in flight + engines)), and those left on the queue's single list of
    the layout before per-engine delivery, which are moved onto their engines' lists.
    Returns (redispatched or moved, cleaned).
    """
    routes = await delivery_routes(store, keys)
    async with store.client.pipeline(transaction=False) as pipe:
        for route in routes:
            pipe.lrange(route.saq_active, 0, -1)
            pipe.hkeys(route.strand)
        pipe.llen(routes[0].saq_queued)
        replies: list[Any] = await pipe.execute()
    redispatched = cleaned = 0
    for i, route in enumerate(routes):
        candidates = list(dict.fromkeys([*replies[2 * i], *replies[2 * i + 1]]))
        r, c = await _reclaim_route(store, route, candidates)
        redispatched += r
        cleaned += c
    if replies[-1] or redispatched:
        redispatched += await migrate_legacy(store, keys)
    return redispatched, cleaned


async def _reclaim_route(store: RedisStore, route: Keys, candidates: list[str]) -> tuple[int, int]:
    """Re-dispatch the stranded ones among ``candidates`` (job ids of ``route``)."""
    redispatched = cleaned = 0
    for start in range(0, len(candidates), BATCH):
        chunk = candidates[start : start + BATCH]
        jobs: list[tuple[str, str, str, str]] = []
        for job_id in chunk:
            parsed = route.parse_job(job_id)
            if parsed is None:
                # Not a Roost delivery: leave SAQ's list alone, forget our tracking of it.
                await store.client.hdel(route.strand, job_id)
                continue
            work_id, dispatch = parsed
            jobs.append((job_id, work_id, dispatch, new_token()))
        if jobs:
            reply = await store.calls.reclaim(route, grace_ms=STRANDED_GRACE_MS, jobs=jobs)
            redispatched += reply.redispatched
            cleaned += reply.cleaned
    return redispatched, cleaned


async def purge_expired(store: RedisStore, keys: Keys, clock: Clock) -> int:
    """Delete finished items older than ``ROOST_RETENTION`` with their index entries.

    Age is judged by the server's clock: the candidates are read by ``clock``'s estimate of
    it, and the purge script deletes only items that finished ``ROOST_RETENTION`` before its
    own ``TIME``, so a worker whose clock runs ahead never deletes work early.
    """
    retention_ms = int(store.settings.retention * 1000)
    cutoff = int(clock.now_ms()) - retention_ms
    deleted = 0
    for state in STATE_ORDER:
        if not state.is_terminal:
            continue
        while True:
            ids: list[str] = await store.client.zrange(
                keys.state(state), "-inf", cutoff, byscore=True, offset=0, num=BATCH
            )
            if not ids:
                break
            async with store.client.pipeline(transaction=False) as pipe:
                for work_id in ids:
                    pipe.hget(keys.meta(work_id), Meta.IDEMPOTENCY_KEY)
                idems: list[str | None] = await pipe.execute()
            reply = await store.calls.purge(
                keys,
                retention_ms=retention_ms,
                items=[(w, idem or "") for w, idem in zip(ids, idems, strict=True)],
            )
            n = reply.deleted
            deleted += n
            if len(ids) < BATCH or int(n) == 0:
                break
    return deleted
