"""Per-engine delivery: inside a queue, each engine has its own SAQ queue (its lists).

A worker takes deliveries only from the lists of the engines it runs, so an item reaches
only a worker that can run it. The queue's set of engines (``Keys.engines``) names every
list there is, for recovery and for the fleet view; each live worker also stands in one
sorted set per engine it runs (``Keys.live``), so "which engines have queued work and no
live worker" is a read of a few small keys.

Before per-engine delivery a queue had one list for every engine; deliveries still on it
(queued by an older version, during a rolling deploy or before an upgrade) are moved onto
their engine's list by the maintenance pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.keys import Keys, new_token
from roost.redis.schema import Meta

if TYPE_CHECKING:
    from roost.redis.store import RedisStore

__all__ = ["MIGRATE_BATCH", "delivery_routes", "migrate_legacy", "unserved_engines"]

MIGRATE_BATCH = 100
"""Deliveries of the previous layout moved per script call."""


async def delivery_routes(store: RedisStore, keys: Keys) -> list[Keys]:
    """The queue's delivery routes: the previous layout's single list, then each engine's."""
    engines: set[str] = await store.client.smembers(keys.engines)
    legacy = keys.for_queue(keys.queue)
    return [legacy, *(legacy.for_engine(e) for e in sorted(engines))]


async def migrate_legacy(store: RedisStore, keys: Keys) -> int:
    """Move the deliveries on the previous layout's single list onto their engines' lists.

    They keep their order, ahead of what was queued on those lists since. Returns how many
    were moved (deliveries of items that moved on are dropped).
    """
    legacy = keys.for_queue(keys.queue)
    jobs: list[str] = await store.client.lrange(legacy.saq_queued, 0, -1)
    moved = 0
    # Newest first, a batch at a time: each batch goes in front of the one moved before it.
    for end in range(len(jobs), 0, -MIGRATE_BATCH):
        batch = [
            (job, parsed)
            for job in reversed(jobs[max(0, end - MIGRATE_BATCH) : end])
            if (parsed := legacy.parse_job(job)) is not None
        ]
        async with store.client.pipeline(transaction=False) as pipe:
            for _job, (work_id, _dispatch) in batch:
                pipe.hget(legacy.meta(work_id), Meta.ENGINE)
            engines: list[str | None] = await pipe.execute()
        groups: dict[str | None, list[tuple[str, tuple[str, str]]]] = {}
        for entry, engine in zip(batch, engines, strict=True):
            groups.setdefault(engine, []).append(entry)
        for engine, entries in groups.items():
            route = legacy if engine is None else legacy.for_engine(engine)
            reply = await store.calls.migrate(
                route,
                legacy=legacy,
                jobs=[(job, w, dispatch, new_token()) for job, (w, dispatch) in entries],
            )
            moved += reply.moved
    return moved


async def unserved_engines(store: RedisStore, keys: Keys) -> dict[str, int]:
    """Engines of ``keys.queue`` with queued deliveries and no live worker running them.

    Returns ``{engine: deliveries queued}`` (in every partition). Costs two round trips
    and O(engines x partitions) work, whatever the number of items or workers.
    """
    parts = [keys.for_partition(k) for k in range(store.partitions)]
    async with store.client.pipeline(transaction=False) as pipe:
        for part in parts:
            pipe.smembers(part.engines)
        pipe.execute_command("TIME")  # a cluster pipeline refuses pipe.time()
        *members, (seconds, _micros) = await pipe.execute()
    engines: list[str] = sorted(set[str]().union(*members))
    if not engines:
        return {}
    now_ms = int(seconds) * 1000
    async with store.client.pipeline(transaction=False) as pipe:
        for engine in engines:
            pipe.zcount(keys.live(engine), f"({now_ms}", "+inf")
            for part in parts:
                pipe.llen(part.for_engine(engine).saq_queued)
        replies: list[int] = await pipe.execute()
    out: dict[str, int] = {}
    width = 1 + len(parts)
    for i, engine in enumerate(engines):
        live, queued = (
            int(replies[width * i]),
            sum(map(int, replies[width * i + 1 : width * (i + 1)])),
        )
        if queued and not live:
            out[engine] = queued
    return out
