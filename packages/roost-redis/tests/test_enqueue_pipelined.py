"""``enqueue_many`` over several partitions: one pipeline per primary (docs/scaling-out.md).

Every call comes back in order, each item in the partition its id names; a primary that
lacks the Functions library gets it and the calls it refused are run again on their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from roost.redis import RedisSwarm
from roost.redis.placement import partition_of
from roost.redis.scripts import LIBRARY, NotReplicated, Scripts
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.pool import configured_binary
from roost.runtime import RoostSettings
from roost.runtime.models import WorkItem

from .conftest import registry  # noqa: TID252

P = 8


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    group = ClusterGroup(tmp_path_factory.mktemp("cluster"), binary=configured_binary())
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture(params=["server", pytest.param("cluster", marks=pytest.mark.slow)])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        return request.getfixturevalue("cluster_group").url
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def settings(settings: RoostSettings) -> RoostSettings:
    return RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": P})


def _items(n: int) -> list[WorkItem]:
    return [WorkItem(engine=("a", "b")[i % 2], payload={"n": i}) for i in range(n)]


async def _check(swarm: RedisSwarm, items: list[WorkItem], ids: list[str]) -> None:
    assert len(ids) == len(items) == len(set(ids))
    metas = await swarm.metas(ids)
    for item, work_id, meta in zip(items, ids, metas, strict=True):
        assert meta is not None and meta.state.value == "queued"
        status = await swarm.status(work_id)
        assert status.item.engine == item.engine and status.item.payload == item.payload
    assert {partition_of(w, P) for w in ids} == set(range(P))


async def test_calls_to_every_partition_come_back_in_order(swarm: RedisSwarm):
    items = _items(2 * 2 * P)  # two engines in every partition: 2P calls
    ids = await swarm.enqueue_many(items)
    await _check(swarm, items, ids)
    assert (await swarm.counts())["saq_queued"] == len(items)
    keyed = [WorkItem(engine="a", payload={"k": i}, idempotency_key=f"g{i}/key") for i in range(12)]
    first = await swarm.enqueue_many(keyed)
    assert await swarm.enqueue_many(keyed) == first  # the duplicate check answers per call
    assert len({partition_of(w, P) for w in first}) > 1


async def test_a_primary_without_the_library_gets_it_and_the_calls_go_through(
    swarm: RedisSwarm, request: pytest.FixtureRequest
):
    await swarm.enqueue_many(_items(4))  # the namespace's P is recorded
    if "cluster" in request.node.callspec.params.get("redis_url", ""):
        group: ClusterGroup = request.getfixturevalue("cluster_group")
        for node in group.primaries():
            node.client().execute_command("FUNCTION FLUSH")
    else:
        await swarm.client.execute_command("FUNCTION FLUSH")
    items = _items(4 * P)
    ids = await swarm.enqueue_many(items)
    await _check(swarm, items, ids)
    if "cluster" in request.node.callspec.params.get("redis_url", ""):
        group = request.getfixturevalue("cluster_group")
        held = {group.key_owner(swarm.item_keys(w).meta(w)).name for w in ids}
        assert len(held) > 1
        for node in group.primaries():
            if node.name in held:
                assert LIBRARY.name in str(node.client().execute_command("FUNCTION LIST"))


async def test_each_primary_s_calls_are_acknowledged_like_one(
    settings: RoostSettings, request: pytest.FixtureRequest
):
    """The waits follow each primary's pipeline: asking one replica more than each primary
    has (none on the server, one in the cluster), the writes are not acknowledged."""
    cluster = "cluster" in request.node.callspec.params.get("redis_url", "")
    wanted = 2 if cluster else 1
    strict = settings.model_copy(update={"wait_replicas": wanted})
    async with RedisSwarm(strict, registry=registry()) as swarm:
        # every primary has the library, so that every call runs in its pipeline
        if cluster:
            group: ClusterGroup = request.getfixturevalue("cluster_group")
            for node in group.primaries():
                node.client().execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY.code)
        else:
            await Scripts(swarm.client).load()
        items = _items(2 * P)
        with pytest.raises(NotReplicated, match=f"{wanted - 1} of {wanted} replicas"):
            await swarm.enqueue_many(items)
        # the writes stand on the primary (as for one call): a retry by key finds them
        assert (await swarm.counts())["queued"] == len(items)
