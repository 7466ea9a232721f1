"""A namespace of several partitions, end to end on one server (docs/scaling-out.md).

Enqueue spreads items over the partitions (or places them by key and resource group),
work ids name their partition, a worker runs every partition's work to done, and reads
(status, list with its cursor, counts, stats, events) see the whole namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from roost.redis import RedisSwarm
from roost.redis.placement import hash_partition, partition_of
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.pool import configured_binary
from roost.runtime import RoostSettings
from roost.runtime.errors import BadInput, ConflictError
from roost.runtime.models import WorkItem, WorkState
from roost_testkit.engines import HashChainEngine
from roost_testkit.family import FanOutEngine
from roost_testkit.waiting import SignalCollector

from .conftest import WorkerFactory, registry  # noqa: TID252

P = 4


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    group = ClusterGroup(tmp_path_factory.mktemp("cluster"), binary=configured_binary())
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture(params=["server", pytest.param("cluster", marks=pytest.mark.slow)])
def redis_url(request: pytest.FixtureRequest) -> str:
    """Every test runs on one server and on a local 3-primary cluster."""
    if request.param == "cluster":
        return request.getfixturevalue("cluster_group").url
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def settings(settings: RoostSettings) -> RoostSettings:
    return RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": P})


async def _state(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


async def _all_in(swarm: RedisSwarm, ids: list[str], state: WorkState, until: Any) -> None:
    async def reached() -> bool:
        metas = await swarm.metas(ids)
        return all(m is not None and m.state is state for m in metas)

    await until(reached, timeout=60)


async def test_items_spread_run_to_done_and_reads_see_every_partition(
    swarm: RedisSwarm, running_worker: WorkerFactory, until: Any
):
    ids = await swarm.enqueue_many(
        [WorkItem(engine="hashchain", payload={"steps": 2}) for _ in range(40)]
    )
    assert sorted({partition_of(w, P) for w in ids}) == list(range(P))
    assert [sum(partition_of(w, P) == k for w in ids) for k in range(P)] == [10] * P
    for work_id in ids:  # each item's keys are in its own partition
        keys = swarm.item_keys(work_id)
        assert await swarm.client.hget(keys.meta(work_id), "state") == "queued"
    counts = await swarm.counts()
    assert counts["queued"] == 40 and counts["saq_queued"] == 40
    async with running_worker([HashChainEngine()], concurrency=8):
        await _all_in(swarm, ids, WorkState.DONE, until)
    counts = await swarm.counts()
    assert counts["done"] == 40 and counts["queued"] == 0 and counts["saq_queued"] == 0
    listed: list[str] = []
    cursor = None
    while True:
        page = await swarm.list_work(limit=7, cursor=cursor)
        listed += [m.work_id for m in page.items]
        times = [m.updated_at for m in page.items]
        assert times == sorted(times, reverse=True)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(listed) == sorted(ids) and len(listed) == 40
    events = await swarm.events(limit=10_000)
    assert {e.work_id for e in events if e.type == "enqueued"} == set(ids)
    assert [e.id for e in events] == sorted(
        (e.id for e in events), key=lambda i: tuple(map(int, i.split("-")))
    )
    stats = await swarm.stats(minutes=5)
    assert sum(m.get("done", 0) for m in stats.values()) == 40
    one = ids[5]
    assert [e.type for e in await swarm.events(work_id=one)][0] == "enqueued"


async def test_operations_find_the_item_from_its_id(
    swarm: RedisSwarm, running_worker: WorkerFactory, until: Any
):
    async with running_worker([HashChainEngine(), SignalCollector()], concurrency=8):
        waiting = [await swarm.enqueue("collector", {"rounds": 1}) for _ in range(P * 2)]
        assert {partition_of(w, P) for w in waiting} == set(range(P))
        for work_id in waiting:
            await until(lambda w=work_id: _is(swarm, w, WorkState.WAITING, WorkState.AWAITING))
        cancelled, paused, signalled = waiting[:P], waiting[P : P + 2], waiting[P + 2 :]
        for work_id in cancelled:
            assert (await swarm.cancel(work_id)).state is WorkState.CANCELLED
        for work_id in paused:
            await swarm.pause(work_id)
            await swarm.resume(work_id)
            await swarm.signal(work_id, "go")
        for work_id in signalled:
            await swarm.signal(work_id, "go")
        await _all_in(swarm, paused + signalled, WorkState.DONE, until)
        done = paused[0]
        new_version = await swarm.replay(done)
        assert new_version
        with pytest.raises(ConflictError):
            await swarm.retry(cancelled[0])
    assert await _state(swarm, cancelled[1]) is WorkState.CANCELLED


async def _is(swarm: RedisSwarm, work_id: str, *states: WorkState) -> bool:
    return await _state(swarm, work_id) in states


async def test_keys_and_resources_place_items_and_keep_duplicates_out(swarm: RedisSwarm):
    key = "tenant-7/nightly"
    first = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=key)
    again = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=key)
    assert first == again and partition_of(first, P) == hash_partition(key, P)
    with_res = await swarm.enqueue(
        "hashchain", {"steps": 1}, idempotency_key="tenant-7/b", resources=["tenant-7/db"]
    )
    assert partition_of(with_res, P) == hash_partition("tenant-7", P)
    other = next(
        f"t{i}" for i in range(100) if hash_partition(f"t{i}", P) != hash_partition("tenant-7", P)
    )
    before = await swarm.counts()
    with pytest.raises(BadInput, match="in different partitions"):
        await swarm.enqueue("hashchain", {}, idempotency_key=key, resources=[f"{other}/db"])
    assert await swarm.counts() == before


async def test_children_live_in_their_parents_partition(
    swarm: RedisSwarm, running_worker: WorkerFactory, until: Any
):
    async with running_worker([HashChainEngine(), FanOutEngine()], concurrency=8):
        parents = [
            await swarm.enqueue("fanout", {"children": 3, "key_prefix": f"p{i}"}) for i in range(P)
        ]
        await _all_in(swarm, parents, WorkState.DONE, until)
    for parent in parents:
        kids = await swarm.children(parent)
        assert len(kids) == 3
        assert {partition_of(k.work_id, P) for k in kids} == {partition_of(parent, P)}
        assert all(k.state is WorkState.DONE for k in kids)


async def test_follow_merges_the_partitions_streams(swarm: RedisSwarm):
    seen: list[str] = []

    async def follow() -> None:
        async for event in swarm.follow_events():
            if event.type == "enqueued":
                seen.append(event.work_id)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    ids = await swarm.enqueue_many([WorkItem(engine="hashchain", payload={}) for _ in range(8)])
    for _ in range(100):
        if len(seen) >= 8:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    assert sorted(seen) == sorted(ids)


async def test_the_namespace_keeps_its_number(settings: RoostSettings, swarm: RedisSwarm):
    await swarm.enqueue("hashchain", {})
    other = RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": 8})
    with pytest.raises(Exception, match=f"has {P} partitions, not 8"):
        async with RedisSwarm(other, registry=registry()):
            pass
    unset = RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": None})
    async with RedisSwarm(unset, registry=registry()) as reader:
        assert reader.partitions == P
