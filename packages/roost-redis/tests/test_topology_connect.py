"""RedisSwarm.connect on redis+sentinel:// and redis+cluster:// URLs, and its one-line errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from roost.redis.scripts import LIBRARIES, LIBRARY, Scripts, prune_libraries
from roost.redis.server import ServerProcess
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.process import free_port
from roost.redis.server.sentinel import SentinelGroup
from roost.redis.swarm import RedisSwarm
from roost.runtime.errors import RedisUnreachable, RoostError
from roost.runtime.models import WorkItem
from roost.runtime.settings import RoostSettings

from .test_functions import old_version, touch_library


async def peers_of_this_version() -> list[dict[str, Any]]:
    return [{"worker_id": "peer", "libraries": list(LIBRARIES)}]


def settings_for(url: str, tmp_path: Path) -> RoostSettings:
    return RoostSettings.from_env({}, redis_url=url, artifact_root=str(tmp_path / "art"))


async def connect_error(url: str, tmp_path: Path) -> RoostError:
    swarm = RedisSwarm(settings_for(url, tmp_path))
    with pytest.raises(RoostError) as caught:
        await swarm.connect()
    return caught.value


@pytest.mark.slow  # starts a Sentinel group (2-3 s)
async def test_a_sentinel_url_asks_the_primary_and_names_what_is_wrong(
    redis_sentinel: SentinelGroup, tmp_path: Path
) -> None:
    async with RedisSwarm(settings_for(redis_sentinel.url, tmp_path)) as swarm:
        work_id = await swarm.enqueue("echo", {"n": 1})
        assert (await swarm.status(work_id)).meta.state == "queued"
        info = await swarm.client.info("server")
        assert int(info["tcp_port"]) == redis_sentinel.primary().port
        # the group's replica confirms a write (ROOST_WAIT_REPLICAS=1 can be acknowledged)
        scripts = Scripts(swarm.client, touch_library(tmp_path))
        key = swarm.keys.base + "touched"
        assert await scripts.acked("touch", [key], ["v"], replicas=1, probe_key=swarm.keys.ack)
    # one group serves the error cases too (each group takes seconds to start)
    unknown = await connect_error(redis_sentinel.url.rsplit("/", 1)[0] + "/nosuch", tmp_path)
    assert "monitor no service named 'nosuch'" in str(unknown)
    host, port = redis_sentinel.sentinel_addresses[0]
    direct = await connect_error(f"redis://{host}:{port}", tmp_path)
    assert "is a Sentinel" in str(direct)


@pytest.mark.slow  # starts a Cluster (3-5 s)
async def test_a_cluster_url_sends_node_commands_to_the_namespace_slot(
    redis_cluster: ClusterGroup, tmp_path: Path
) -> None:
    async with RedisSwarm(settings_for(redis_cluster.url, tmp_path)) as swarm:
        owner = redis_cluster.key_owner(swarm.keys.base)
        assert int((await swarm.client.info("server"))["tcp_port"]) == owner.port
        before = int(owner.info("stats")["total_commands_processed"])
        for _ in range(5):
            await swarm.client.time()
        # TIME went to the slot's owner (the reading itself counts one more INFO)
        assert int(owner.info("stats")["total_commands_processed"]) >= before + 5
        work_id = await swarm.enqueue("echo", {"n": 1})
        assert (await swarm.status(work_id)).meta.state == "queued"
        # FUNCTION LOAD and FUNCTION DELETE too: an old version's library is pruned there
        old = old_version(tmp_path, "roost")
        await Scripts(swarm.client, old).load()
        assert {old.name, LIBRARY.name} <= owner.libraries()
        assert await prune_libraries(swarm.client, peers_of_this_version, "me") == [old.name]
        assert old.name not in owner.libraries() and LIBRARY.name in owner.libraries()
    node = redis_cluster.primaries()[0]
    direct = await connect_error(f"redis://127.0.0.1:{node.port}", tmp_path)
    assert "is a Cluster node" in str(direct) and "redis+cluster://" in str(direct)


async def test_no_sentinel_reachable_is_one_line(tmp_path: Path) -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster"
    err = await connect_error(url, tmp_path)
    assert isinstance(err, RedisUnreachable)
    assert "no sentinel is reachable" in str(err) and "\n" not in str(err)


async def test_no_seed_node_reachable_is_one_line(tmp_path: Path) -> None:
    err = await connect_error(f"redis+cluster://127.0.0.1:{free_port()}", tmp_path)
    assert isinstance(err, RedisUnreachable)
    assert "no seed node of the cluster is reachable" in str(err) and "\n" not in str(err)


async def test_a_single_server_behind_a_cluster_url_is_named(
    redis_server: ServerProcess, tmp_path: Path
) -> None:
    err = await connect_error(f"redis+cluster://127.0.0.1:{redis_server.port}", tmp_path)
    assert "is not in cluster mode" in str(err)


@pytest.mark.slow  # starts a Cluster (3-5 s)
async def test_old_libraries_go_from_every_primary_that_holds_a_partition(
    redis_cluster: ClusterGroup, tmp_path: Path
) -> None:
    settings = RoostSettings.from_env(
        {}, redis_url=redis_cluster.url, artifact_root=str(tmp_path / "art"), partitions=8
    )
    async with RedisSwarm(settings) as swarm:
        await swarm.enqueue_many([WorkItem(engine="echo", payload={"n": n}) for n in range(16)])
        keys = [swarm.keys.for_partition(k).events for k in range(8)]
        holders = {redis_cluster.key_owner(k).name for k in keys}
        assert len(holders) > 1  # the partitions span primaries, not only the home one
        old = old_version(tmp_path, "roost")
        for node in redis_cluster.primaries():
            node.command("FUNCTION", "LOAD", old.code)
            assert old.name in node.libraries()
        # without the partitions' keys, only the home primary is pruned (as before)
        home = redis_cluster.key_owner(swarm.keys.base)
        assert await prune_libraries(swarm.client, peers_of_this_version, "me") == [old.name]
        assert old.name not in home.libraries()
        assert any(old.name in n.libraries() for n in redis_cluster.primaries() if n != home)
        pruned = await prune_libraries(swarm.client, peers_of_this_version, "me", keys=keys)
        assert pruned == [old.name]
        for node in redis_cluster.primaries():
            if node.name in holders | {home.name}:
                assert old.name not in node.libraries(), node
                assert LIBRARY.name in node.libraries(), node  # this version's stays
        # and a worker that starts prunes them all itself
        for node in redis_cluster.primaries():
            node.command("FUNCTION", "LOAD", old.code)
        async with RedisSwarm(settings) as worker:
            task = asyncio.create_task(
                worker.run_worker(["watchlist"], concurrency=1, install_signal_handlers=False)
            )
            held = [n for n in redis_cluster.primaries() if n.name in holders]
            try:
                for _ in range(200):
                    if not any(old.name in n.libraries() for n in held):
                        break
                    await asyncio.sleep(0.05)
                assert all(old.name not in n.libraries() for n in held)
            finally:
                worker.stop_worker()
                await asyncio.wait_for(task, 30)
