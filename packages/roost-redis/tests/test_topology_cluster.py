"""The Cluster fixture: real failovers and a live reshard, a redis+cluster:// client riding them.

The writer calls a Functions library (``FUNCTION LOAD`` through the cluster client reaches
every primary) that writes two keys of one hash slot, so it also meets ``TRYAGAIN`` while a
slot moves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.nodes import Node, wait_until
from roost.redis.topology import ClusterClient, topology_client
from roost_testkit.outage import Writer

LIBRARY = """#!lua name=roostprobe
redis.register_function('roostprobe_put', function(keys, args)
  redis.call('SET', keys[1], args[1])
  return redis.call('SADD', keys[2], args[1])
end)
"""

pytestmark = pytest.mark.slow  # every test starts its own topology (2-3 s)


@pytest.fixture
async def client(redis_cluster: ClusterGroup) -> AsyncIterator[RedisCluster]:
    cluster = topology_client(redis_cluster.url, socket_timeout=2.0, socket_connect_timeout=1.0)
    assert isinstance(cluster, RedisCluster)
    try:
        loaded = await cluster.function_load(LIBRARY)  # one reply per primary
        assert loaded == {f"{h}:{p}": "roostprobe" for h, p in redis_cluster.addresses[:3]}
        yield cluster
    finally:
        await cluster.aclose()


def tags_in(group: ClusterGroup, slots: range, count: int) -> list[str]:
    """``count`` hash tags whose slots lie in ``slots``."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        if group.keyslot(f"t{n}") in slots:
            found.append(f"t{n}")
        n += 1
    return found


def writer_over(client: RedisCluster, tags: list[str]) -> Writer:
    async def write(i: int) -> bool:
        tag = tags[i % len(tags)]
        await client.fcall("roostprobe_put", 2, f"{{{tag}}}:{i}", f"{{{tag}}}:all", i)
        return False

    return Writer(write, pause=0.001)


async def stored(client: RedisCluster, tags: list[str]) -> set[int]:
    members: set[int] = set()
    for tag in tags:
        members |= {int(m) for m in await client.smembers(f"{{{tag}}}:all")}
    return members


def node_of(group: ClusterGroup, which: ClusterNode) -> Node:
    return next(node for node in group.nodes if node.address == (which.host, which.port))


async def test_sigkill_failover_keeps_a_url_client_writing_and_the_functions_loaded(
    redis_cluster: ClusterGroup, client: RedisCluster
) -> None:
    group = redis_cluster
    # The client's default node also finds the keys of XREAD (and, in plain redis-py, FCALL).
    victim = node_of(group, client.get_default_node())
    replica = group.replicas_of(victim)[0]
    await asyncio.to_thread(wait_until, lambda: "roostprobe" in replica.libraries(), 5, "library")
    tags = tags_in(group, range(0, 16384), 60)
    victim_tags = [tag for tag in tags if group.key_owner(tag) is victim]
    assert victim_tags
    writer = writer_over(client, tags).start()
    await writer.until_more(100)
    checkpoint = {i for i, _ in writer.acked}
    sent = int(victim.info("replication")["master_repl_offset"])
    await asyncio.to_thread(
        wait_until,
        lambda: int(replica.info("replication")["slave_repl_offset"]) >= sent,
        5,
        "replica caught up",
    )

    group.kill(victim)
    new = await asyncio.to_thread(group.wait_failover, victim)
    elected = time.monotonic()
    await writer.until_more(100, after=elected)
    await writer.stop()

    assert new is replica
    after = writer.since(elected)
    assert any(tags[i % len(tags)] in victim_tags for i in after)  # the dead shard took writes
    members = await stored(client, tags)
    assert checkpoint <= members and set(after) <= members
    for i in sorted(checkpoint)[-5:]:
        assert await client.get(f"{{{tags[i % len(tags)]}}}:{i}") == str(i)

    assert await client.xadd("{t0}:stream", {"n": "1"})
    assert len(await client.xread({"{t0}:stream": "0-0"}, count=1)) == 1

    group.restart(victim)
    await asyncio.to_thread(group.wait_ok)
    assert victim.role() == "slave" and group.replicas_of(new) == [victim]
    assert "roostprobe" in victim.libraries()


async def test_cluster_failover_command_loses_no_acknowledged_write(
    redis_cluster: ClusterGroup, client: RedisCluster
) -> None:
    group = redis_cluster
    victim = group.slot_owner(0)
    replica = group.replicas_of(victim)[0]
    tags = tags_in(group, range(0, 16384), 60)
    writer = writer_over(client, tags).start()
    await writer.until_more(100)

    old = await asyncio.to_thread(group.failover, replica)
    assert old is victim
    new = await asyncio.to_thread(group.wait_failover, victim)
    switched = time.monotonic()
    await writer.until_more(100, after=switched)
    await writer.stop()

    assert new is replica and victim.role() == "slave"
    assert "roostprobe" in new.libraries()
    members = await stored(client, tags)
    assert {i for i, _ in writer.acked} <= members  # a manual failover waits for the replica
    # The client's roles follow the failover: FUNCTION LOAD and INFO reach primaries only.
    assert {n.port for n in client.get_primaries()} == {p.address[1] for p in group.primaries()}


async def test_a_live_slot_move_under_writes_keeps_every_write(
    redis_cluster: ClusterGroup, client: RedisCluster
) -> None:
    group = redis_cluster
    source = group.slot_owner(0)
    target = next(node for node in group.primaries() if node is not source)
    moving = range(0, 64)
    tags = tags_in(group, moving, 16)
    for i in range(-2000, 0):  # keys for MIGRATE to carry
        tag = tags[i % len(tags)]
        await client.fcall("roostprobe_put", 2, f"{{{tag}}}:{i}", f"{{{tag}}}:all", i)
    writer = writer_over(client, tags).start()
    await writer.until_more(50)

    await asyncio.to_thread(group.move_slots, moving, target, 10)
    await asyncio.to_thread(group.wait_ok)
    moved = time.monotonic()
    await writer.until_more(50, after=moved)
    await writer.stop()

    assert all(group.slot_owner(slot) is target for slot in moving)
    assert group.slot_owner(64) is source
    for slot in moving:
        assert source.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert sum(target.command("CLUSTER", "COUNTKEYSINSLOT", s) for s in moving) >= 2000
    members = await stored(client, tags)
    assert set(range(-2000, 0)) <= members
    assert {i for i, _ in writer.acked} <= members
    # The reloads the moves caused left the client routing through the nodes it closes.
    manager = client.nodes_manager
    assert all(n is manager.nodes_cache[n.name] for ns in manager.slots_cache.values() for n in ns)


async def test_the_cli_reshard_moves_a_primarys_lowest_slots_under_writes(
    redis_cluster: ClusterGroup, client: RedisCluster
) -> None:
    """``ClusterGroup.reshard`` runs ``valkey-cli --cluster reshard``: the source's lowest
    slots move with their keys while a client writes to them, and no write is lost."""
    group = redis_cluster
    source = group.slot_owner(0)
    target = next(node for node in group.primaries() if node is not source)
    moving = range(0, 16)
    tags = tags_in(group, moving, 8)
    for i in range(-500, 0):
        tag = tags[i % len(tags)]
        await client.fcall("roostprobe_put", 2, f"{{{tag}}}:{i}", f"{{{tag}}}:all", i)
    writer = writer_over(client, tags).start()
    await writer.until_more(20)

    assert group.cli_binary().name in ("valkey-cli", "redis-cli")
    await asyncio.to_thread(group.reshard, source, target, len(moving))
    await asyncio.to_thread(group.wait_ok)
    await writer.until_more(20, after=time.monotonic())
    await writer.stop()

    assert all(group.slot_owner(slot) is target for slot in moving)
    assert group.slot_owner(len(moving)) is source
    assert sum(target.command("CLUSTER", "COUNTKEYSINSLOT", s) for s in moving) >= 500
    members = await stored(client, tags)
    assert set(range(-500, 0)) <= members
    assert {i for i, _ in writer.acked} <= members


async def test_a_write_sent_with_its_wait_follows_a_slot_mid_migration(
    redis_cluster: ClusterGroup, client: RedisCluster
) -> None:
    """A reshard caught a slot half moved: a write sent together with its WAIT (a commit
    with ``ROOST_WAIT_REPLICAS``) follows ``ASK`` to the importing node and waits out
    ``TRYAGAIN`` until the rest of its keys have moved, instead of failing."""
    assert isinstance(client, ClusterClient)
    group = redis_cluster
    moved, later = "{mig}:moved", "{mig}:later"
    slot = group.keyslot(moved)
    source = group.slot_owner(slot)
    target = next(node for node in group.primaries() if node is not source)
    await client.set(moved, "before")
    await client.set(later, "before")
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", group.node_id(source))
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", group.node_id(target))
    source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", moved)

    # Its key has moved: the source answers ASK, the write lands on the target.
    asked = await client.on_home_connection(("SET", moved, "asked"), ("WAIT", 1, 2000), key=moved)
    assert asked[0] in (True, "OK") and not isinstance(asked[1], Exception)
    assert await client.get(moved) == "asked"  # the client follows ASK to read it
    assert source.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1  # only the other key

    # One key moved, one not: TRYAGAIN until the other one moves too (0.2 s later).
    async def move_the_rest() -> None:
        await asyncio.sleep(0.2)
        await asyncio.to_thread(
            source.command, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", later
        )

    mover = asyncio.create_task(move_the_rest())
    both = await client.on_home_connection(
        ("MSET", moved, "both", later, "both"), ("WAIT", 1, 2000), key=moved
    )
    await mover
    assert both[0] in (True, "OK") and not isinstance(both[1], Exception)
    assert [await client.get(k) for k in (moved, later)] == ["both", "both"]
    assert source.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0

    # The move ends: MOVED, the slot map is read again, the write goes to the target.
    for node in group.primaries():
        node.command("CLUSTER", "SETSLOT", slot, "NODE", group.node_id(target))
    await asyncio.to_thread(group.wait_ok)
    after = await client.on_home_connection(("SET", later, "after"), ("WAIT", 1, 2000), key=later)
    assert after[0] in (True, "OK")
    assert target.command("GET", later) == "after"


async def test_a_proxied_cluster_routes_clients_and_replication_through_the_proxies(
    redis_cluster_factory: Callable[..., ClusterGroup],
) -> None:
    group = redis_cluster_factory(proxied=True)
    cluster = topology_client(group.url)
    assert isinstance(cluster, RedisCluster)
    try:
        await cluster.set("key", "value")
        assert await cluster.get("key") == "value"
        proxies = {node.proxy.port for node in group.nodes if node.proxy is not None}
        assert {n.port for n in cluster.get_primaries()} == {
            p.address[1] for p in group.primaries()
        }
        assert {n.port for n in cluster.get_nodes()} <= proxies
        primary = group.key_owner("key")
        assert primary.proxy is not None and primary.proxy.connections("replication") == 1
        host, port = primary.address
        direct = Redis(host=host, port=port, decode_responses=True, single_connection_client=True)
        try:
            primary.proxy.pause()
            await direct.set("key", "stalled")
            assert await direct.wait(1, 300) == 0
            primary.proxy.resume()
            assert await direct.wait(1, 5000) == 1
        finally:
            await direct.aclose()
    finally:
        await cluster.aclose()
