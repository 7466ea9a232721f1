"""The Sentinel group fixture: real failovers, a client from a redis+sentinel:// URL riding them.

The writer sends ``FCALL`` (a Functions library loaded once on the primary) and ``WAIT 1`` on
the same connection, so each write knows whether a replica had it when it was acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from redis.asyncio import Redis

from roost.redis.server.nodes import Node, wait_until
from roost.redis.server.sentinel import SentinelGroup
from roost.redis.topology import topology_client
from roost_testkit.outage import Writer

LIBRARY = """#!lua name=roostprobe
redis.register_function('roostprobe_add', function(keys, args)
  return redis.call('SADD', keys[1], args[1])
end)
"""

pytestmark = pytest.mark.slow  # every test starts its own topology (2-3 s)


def caught_up(primary: Node, replica: Node) -> bool:
    sent = int(primary.info("replication")["master_repl_offset"])
    return int(replica.info("replication")["slave_repl_offset"]) >= sent


@pytest.fixture
async def client(redis_sentinel: SentinelGroup) -> AsyncIterator[Redis]:
    url_client = topology_client(redis_sentinel.url, socket_timeout=2.0, socket_connect_timeout=1.0)
    try:
        yield url_client
    finally:
        await url_client.aclose()


def replicated_writer(client: Redis) -> Writer:
    async def write(i: int) -> bool:
        async with client.pipeline(transaction=False) as pipe:
            pipe.fcall("roostprobe_add", 1, "written", i)
            pipe.wait(1, 100)  # alone, the new primary waits it out
            _, replicas = await pipe.execute()
        return int(replicas) >= 1

    return Writer(write)


async def written(client: Redis) -> set[int]:
    return {int(member) for member in await client.smembers("written")}


async def test_sigkill_failover_keeps_a_url_client_writing_and_the_functions_loaded(
    redis_sentinel: SentinelGroup, client: Redis
) -> None:
    group = redis_sentinel
    assert await client.function_load(LIBRARY) == "roostprobe"
    replica = group.replicas()[0]
    await asyncio.to_thread(wait_until, lambda: "roostprobe" in replica.libraries(), 5, "library")
    writer = replicated_writer(client).start()
    await writer.until_more(50)
    assert writer.durable

    old = await asyncio.to_thread(group.kill_primary)
    new = await asyncio.to_thread(group.wait_failover, old)
    elected = time.monotonic()
    await writer.until_more(20, after=elected)
    await writer.stop()

    assert new is replica and new.role() == "master"
    members = await written(client)
    assert set(writer.durable) <= members  # every write a replica acknowledged survived
    assert set(writer.since(elected)) <= members  # FCALL works on the promoted replica

    await asyncio.to_thread(group.restart, old)
    assert await asyncio.to_thread(group.wait_stable) is new
    assert old.role() == "slave"
    await asyncio.to_thread(wait_until, lambda: caught_up(new, old), 10, "replica caught up")
    assert {int(m) for m in old.command("SMEMBERS", "written")} == members
    assert "roostprobe" in old.libraries()  # the full sync carried the library too


async def test_sentinel_failover_command_moves_a_url_client_to_the_new_primary(
    redis_sentinel: SentinelGroup, client: Redis
) -> None:
    group = redis_sentinel
    assert await client.function_load(LIBRARY) == "roostprobe"
    writer = replicated_writer(client).start()
    await writer.until_more(50)
    assert writer.durable

    old = await asyncio.to_thread(group.failover)
    new = await asyncio.to_thread(group.wait_failover, old)  # old is demoted too
    switched = time.monotonic()
    await writer.until_more(20, after=switched)
    await writer.stop()

    assert new is not old and new.role() == "master" and old.role() == "slave"
    members = await written(client)
    assert set(writer.durable) <= members
    assert set(writer.since(switched)) <= members
    assert "roostprobe" in new.libraries() and "roostprobe" in old.libraries()


def plain_writer(client: Redis) -> Writer:
    async def write(i: int) -> bool:
        await client.fcall("roostprobe_add", 1, "written", i)  # type: ignore[misc]
        return False

    return Writer(write)


async def test_a_url_client_follows_sentinel_failover_before_the_old_primary_is_demoted(
    redis_sentinel: SentinelGroup, client: Redis
) -> None:
    group = redis_sentinel
    assert await client.function_load(LIBRARY) == "roostprobe"
    writer = plain_writer(client).start()  # no WAIT: nothing else tells it the primary moved
    await writer.until_more(50)

    old = await asyncio.to_thread(group.failover)
    await asyncio.to_thread(
        wait_until, lambda: group.reported_primary() not in (None, old.address), 30, "new primary"
    )
    named = time.monotonic()
    assert old.role() == "master"  # the sentinels demote it some 10 s later
    new = await asyncio.to_thread(group.wait_failover, old)
    demoted = time.monotonic()
    await writer.until_more(20, after=demoted)
    await writer.stop()

    assert demoted - named > 3  # the window in which the old primary still took writes
    members = await written(client)
    # Within a second or two of the sentinels naming the new primary, writes went there.
    moved = set(writer.since(named + 2.5))
    assert moved and moved <= members, sorted(moved - members)[:5]
    assert new.role() == "master"


def test_a_primary_restarted_before_any_failover_comes_back_with_its_data(
    redis_sentinel_factory: Callable[..., SentinelGroup],
) -> None:
    group: SentinelGroup = redis_sentinel_factory(
        down_after_ms=5000, config={"appendfsync": "always"}
    )
    primary = group.primary()
    primary.command("SET", "kept", "yes")
    primary.command("FUNCTION", "LOAD", LIBRARY)
    group.kill_primary()
    group.restart(primary)
    assert group.wait_stable(10) is primary
    assert primary.command("GET", "kept") == "yes"
    assert "roostprobe" in primary.libraries()


def test_a_paused_proxy_stalls_replication_and_a_delay_makes_it_lag(
    redis_sentinel_factory: Callable[..., SentinelGroup],
) -> None:
    group: SentinelGroup = redis_sentinel_factory(proxied=True)
    primary, replica = group.primary(), group.replicas()[0]
    proxy = primary.proxy
    assert proxy is not None and proxy.connections("replication") == 1
    host, port = primary.address  # the proxy's: clients go through it too
    client = redis.Redis(host=host, port=port, decode_responses=True, single_connection_client=True)
    try:
        assert client.wait(1, 1000) == 1
        proxy.pause()
        for i in range(100):
            client.set(f"stalled:{i}", "x" * 100)
        assert client.wait(1, 300) == 0
        info = primary.info("replication")
        assert int(info["master_repl_offset"]) - int(info["slave0"]["offset"]) > 100 * 100
        assert int(replica.info("replication")["slave_repl_offset"]) < int(
            info["master_repl_offset"]
        )
        proxy.resume()
        assert client.wait(1, 5000) == 1
        assert caught_up(primary, replica)

        proxy.set_delay(0.5)
        client.set("late", "1")
        started = time.monotonic()
        assert client.wait(1, 200) == 0
        assert client.wait(1, 5000) == 1
        assert time.monotonic() - started >= 0.45
        proxy.set_delay(0)

        # Promote the replica while its link is stalled: what it never received is lost.
        proxy.pause()
        for i in range(20):
            client.sadd("unreplicated", i)
        assert client.wait(1, 200) == 0
        old = group.kill_primary()
        new = group.wait_failover(old)
        assert new is replica
        assert new.command("SCARD", "unreplicated") == 0
        assert new.command("EXISTS", "stalled:99") == 1
    finally:
        client.close()
