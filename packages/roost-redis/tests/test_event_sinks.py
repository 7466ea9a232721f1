"""Event sinks get exactly the events stored in the stream, from a fleet of workers.

The workers run in their own processes (so that one can be SIGKILLed), each with an event
sink plugin that appends what it receives to one shared JSON-lines file.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from roost.redis import RedisSwarm
from roost.redis.event_feed import GROUP, RedisEventFeed
from roost.redis.server.cluster import ClusterGroup
from roost.runtime import Registry, RoostSettings, RuntimeEvent, WorkState, get_plugin_manager
from roost.runtime.observe import EventPump
from roost_testkit.engines import HashChainEngine
from roost_testkit.redis_faults import busy, read_only

Spawn = Callable[..., subprocess.Popen[str]]


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def stream(swarm: RedisSwarm) -> list[RuntimeEvent]:
    return await swarm.events(after="0-0", limit=10_000)


async def groups_of(swarm: RedisSwarm) -> list[dict[str, Any]]:
    return await cast(Any, swarm.client).xinfo_groups(swarm.keys.events)


async def consumers_of(swarm: RedisSwarm) -> list[dict[str, Any]]:
    return await cast(Any, swarm.client).xinfo_consumers(swarm.keys.events, GROUP)


async def deliverer(swarm: RedisSwarm) -> str | None:
    return await swarm.client.get(swarm.keys.events_pump)


async def state_is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def has_event(swarm: RedisSwarm, work_id: str, kind: str) -> bool:
    return any(e.type == kind for e in await swarm.events(work_id=work_id))


def sink_env(log: Path, worker_id: str, **more: str) -> dict[str, str]:
    return {"ROOST_TEST_SINK_LOG": str(log), "ROOST_WORKER_ID": worker_id, **more}


async def test_sinks_get_every_stored_event_once_across_two_workers(
    swarm: RedisSwarm, spawn_worker: Spawn, until: Any, tmp_path: Path
) -> None:
    log = tmp_path / "sink.jsonl"
    first = spawn_worker(engines="hashchain", env=sink_env(log, "w1"))
    await until(lambda: _equals(deliverer(swarm), "w1"))
    second = spawn_worker(engines="hashchain,slow", env=sink_env(log, "w2"))

    # Stored by this process, no worker involved: enqueue, cancel, retry.
    done = await swarm.enqueue("hashchain", {"steps": 2})
    cancelled = await swarm.enqueue("hashchain", {}, delay_seconds=60)
    await swarm.cancel(cancelled)
    dead = await swarm.enqueue("hashchain", {"mode": "raise"}, max_attempts=1)
    await until(lambda: state_is(swarm, dead, WorkState.DEAD))
    await swarm.retry(dead)
    await until(lambda: has_event(swarm, dead, "retried"))
    # Only the second worker runs "slow": it holds this lease when it is SIGKILLed.
    expired = await swarm.enqueue("slow", {"mode": "sleep", "seconds": 60})
    await until(lambda: has_event(swarm, expired, "started"))
    second.send_signal(signal.SIGKILL)
    second.wait(10)
    await until(lambda: has_event(swarm, expired, "lease_expired"), timeout=30)
    await until(lambda: state_is(swarm, done, WorkState.DONE))
    await until(lambda: state_is(swarm, dead, WorkState.DEAD))

    stored = await stream(swarm)

    async def all_delivered() -> bool:
        return {r["id"] for r in read_log(log)} >= {e.id for e in stored}

    await until(all_delivered)
    await asyncio.sleep(1.5)  # anything delivered twice would show by now
    got = read_log(log)
    stored = await stream(swarm)
    # Exactly the stored events, each once (the deliverer never died), in stream order.
    assert [r["id"] for r in got] == [e.id for e in stored]
    assert Counter(r["id"] for r in got).most_common(1)[0][1] == 1
    assert {r["pid"] for r in got} == {first.pid}
    kinds = {w: [r["type"] for r in got if r["work_id"] == w] for w in (done, cancelled, dead)}
    assert kinds[done] == ["enqueued", "started", "committed", "committed", "done"]
    assert kinds[cancelled] == ["enqueued", "cancelled"]
    # init_snapshot's snapshot is kept when the step after it fails in the same attempt.
    assert kinds[dead] == [
        *("enqueued", "started", "committed", "dead"),
        *("retried", "started", "dead"),
    ]
    expired_kinds = [r["type"] for r in got if r["work_id"] == expired]
    assert expired_kinds[:3] == ["enqueued", "started", "lease_expired"]
    # The enqueue, cancel and retry were stored by no worker, and delivered all the same.
    by_type = {(r["work_id"], r["type"]): r for r in got}
    assert by_type[(done, "enqueued")]["worker"] is None
    assert by_type[(cancelled, "cancelled")]["worker"] is None
    assert by_type[(dead, "retried")]["worker"] is None
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0


async def _equals(value: Any, expected: object) -> bool:
    return await value == expected


async def test_a_deliverer_killed_mid_batch_loses_nothing_and_keeps_each_items_order(
    swarm: RedisSwarm, spawn_worker: Spawn, until: Any, tmp_path: Path
) -> None:
    log = tmp_path / "sink.jsonl"
    slow = spawn_worker(env=sink_env(log, "w1", ROOST_TEST_SINK_DELAY="0.3"))
    await until(lambda: _equals(deliverer(swarm), "w1"))
    other = spawn_worker(env=sink_env(log, "w2"))
    # Items of an engine no worker runs: their events are what there is to deliver.
    ids = [await swarm.enqueue("idle", {}, delay_seconds=600) for _ in range(12)]
    for work_id in ids[:6]:
        await swarm.cancel(work_id)

    async def some_delivered() -> bool:
        return len(read_log(log)) >= 3

    await until(some_delivered)
    slow.send_signal(signal.SIGKILL)  # mid-batch: 18 events at 0.3 s each
    slow.wait(10)
    stored = await stream(swarm)
    assert len(stored) == 18

    async def all_delivered() -> bool:
        return {r["id"] for r in read_log(log)} >= {e.id for e in stored}

    await until(all_delivered, timeout=30)
    got = read_log(log)
    # The killed worker's batch was claimed: its consumer holds nothing (and is deleted
    # once idle past the TTL when a worker takes over).
    consumers = {c["name"]: c["pending"] for c in await consumers_of(swarm)}
    assert consumers.get("w1", 0) == 0 and "w2" in consumers
    assert {r["pid"] for r in got} == {slow.pid, other.pid}
    before = [r["id"] for r in got if r["pid"] == slow.pid]
    after = [r["id"] for r in got if r["pid"] == other.pid]
    assert 3 <= len(before) < 18
    # The survivor took over the killed worker's unacknowledged batch: it delivered again
    # the events the killed one had read, from the first of them, and all that followed.
    position = {e.id: i for i, e in enumerate(stored)}
    assert after == [e.id for e in stored][position[after[0]] :]
    assert position[after[0]] <= position[before[-1]]
    for work_id in ids:
        seen: list[str] = []
        for r in got:
            if r["work_id"] == work_id and r["id"] not in seen:
                seen.append(r["id"])
        assert seen == sorted(seen, key=position.__getitem__)
        assert len(seen) == (2 if work_id in ids[:6] else 1)
    other.send_signal(signal.SIGTERM)
    assert other.wait(20) == 0


async def test_a_stopping_deliverer_hands_over_at_once(
    swarm: RedisSwarm, spawn_worker: Spawn, until: Any, tmp_path: Path
) -> None:
    log = tmp_path / "sink.jsonl"
    first = spawn_worker(env=sink_env(log, "w1"), lease_ttl=30.0)
    await until(lambda: _equals(deliverer(swarm), "w1"))
    second = spawn_worker(env=sink_env(log, "w2"), lease_ttl=30.0)
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0
    # Well within the 30 s the key would take to lapse.
    await until(lambda: _equals(deliverer(swarm), "w2"), timeout=5)
    work_id = await swarm.enqueue("idle", {})

    async def delivered() -> bool:
        return any(r["work_id"] == work_id for r in read_log(log))

    await until(delivered, timeout=5)
    assert [r["pid"] for r in read_log(log) if r["work_id"] == work_id] == [second.pid]
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0


async def test_events_trimmed_before_delivery_are_counted(swarm: RedisSwarm) -> None:
    small = swarm.settings.model_copy(update={"events_maxlen": 10})
    async with RedisSwarm(small) as trimming:
        got: list[RuntimeEvent] = []

        async def sink(event: RuntimeEvent) -> None:
            got.append(event)

        feed = RedisEventFeed(trimming, "c1")
        pump = EventPump([sink], feed, report=lambda where, exc: None)
        await pump.pump_pass()  # the group starts at the (empty) stream's start
        assert got == []
        for _ in range(400):  # approximate trimming drops whole nodes of 100 entries
            await trimming.enqueue("idle", {}, delay_seconds=600)
        info = await trimming.client.execute_command("XLEN", trimming.keys.events)
        assert int(info) < 400
        while len(got) + pump.lost < 400:
            await pump.pump_pass()
        assert pump.lost == 400 - len(got) > 0
        assert pump.delivered == len(got)
        stored = await stream(trimming)
        assert [e.id for e in got] == [e.id for e in stored]
        groups = await groups_of(trimming)
        assert [g["name"] for g in groups] == [GROUP]
        assert groups[0]["pending"] == 0  # every delivered batch was acknowledged
        await pump.flush()
        assert await deliverer(trimming) is None


async def test_a_worker_without_sinks_delivers_nothing(
    swarm: RedisSwarm, running_worker: Any, until: Any
) -> None:
    work_id = await swarm.enqueue("hashchain", {})
    async with running_worker([HashChainEngine()]):
        await until(lambda: state_is(swarm, work_id, WorkState.DONE))
        assert await deliverer(swarm) is None
    assert len(await stream(swarm)) >= 3  # the stream is there, and no group was made on it
    assert await groups_of(swarm) == []


@pytest.mark.slow
async def test_sinks_are_fed_on_a_cluster(
    redis_cluster: ClusterGroup, settings: RoostSettings, until: Any
) -> None:
    # The stream, its group and the deliverer key share the namespace's slot; the read
    # (XINFO twice and XREADGROUP in one transaction) goes to that slot's primary.
    on_cluster = settings.model_copy(update={"redis_url": redis_cluster.url})
    got: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        got.append(event)

    async with RedisSwarm(on_cluster, registry=registry()) as swarm:
        work_id = await swarm.enqueue("hashchain", {"steps": 2})
        worker = RedisSwarm(on_cluster, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], install_signal_handlers=False, sinks=[sink])
        )
        try:

            async def finished() -> bool:
                return any(e.type == "done" for e in got)

            await until(finished, timeout=30)
            assert [e.type for e in got if e.work_id == work_id] == [
                *("enqueued", "started", "committed", "committed", "done")
            ]
            assert [e.id for e in got] == [e.id for e in await stream(swarm)]
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 30)
            await worker.close()
        assert await deliverer(swarm) is None  # handed over on stop


@pytest.mark.parametrize("fault", ["readonly", "busy"])
async def test_delivery_rides_out_redis_misbehaving(
    swarm: RedisSwarm, running_worker: Any, until: Any, redis_url: str, fault: str
) -> None:
    got: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        got.append(event)

    first = [await swarm.enqueue("hashchain", {"steps": 2}) for _ in range(3)]
    async with running_worker([HashChainEngine()], sinks=[sink], lease_ttl=8.0) as worker:

        async def delivered(ids: list[str]) -> bool:
            return {w for w in ids} <= {e.work_id for e in got if e.type == "done"}

        await until(lambda: delivered(first))
        with {"readonly": read_only, "busy": busy}[fault](redis_url):
            await asyncio.sleep(2.0)
        later = [await swarm.enqueue("hashchain", {"steps": 2}) for _ in range(3)]
        await until(lambda: delivered(later), 40.0)

        async def healthy() -> bool:
            # Every loop passes again and the heartbeat says so: a loop backing off may
            # take its next pass up to a second after the fault, and the beat after that.
            info = [w for w in await swarm.workers() if w["worker_id"] == worker.worker_id]
            return bool(info) and info[0]["healthy"] is True

        await until(healthy, 10.0)
    assert [e.id for e in got] == [e.id for e in await stream(swarm)]


async def test_a_new_deliverer_forgets_consumers_that_hold_nothing(swarm: RedisSwarm) -> None:
    feed = RedisEventFeed(swarm, "old")
    pump = EventPump([], feed, report=lambda where, exc: None)
    await swarm.enqueue("idle", {}, delay_seconds=600)
    await pump.pump_pass()  # "old" delivers the enqueue and acknowledges it
    assert pump.delivered == 1
    await pump.flush()
    await asyncio.sleep(feed.ttl_ms / 1000 + 0.2)  # idle past the TTL
    newer = RedisEventFeed(swarm, "new")
    assert [c["name"] for c in await consumers_of(swarm)] == ["old"]
    batch = await newer.read()  # takes over: claims nothing, forgets "old"
    assert batch.events == [] and batch.lost == 0
    assert [c["name"] for c in await consumers_of(swarm)] in ([], ["new"])
    await newer.close()


async def test_a_deleted_stream_gets_its_group_again(swarm: RedisSwarm) -> None:
    got: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        got.append(event)

    pump = EventPump([sink], RedisEventFeed(swarm, "c1"), report=lambda where, exc: None)
    await swarm.enqueue("idle", {}, delay_seconds=600)
    await pump.pump_pass()
    assert [e.type for e in got] == ["enqueued"]
    await swarm.client.delete(swarm.keys.events)  # FLUSHALL, say: the group goes with it
    assert await pump.pump_pass() == 0.0  # NOGROUP: nothing delivered, no error
    work_id = await swarm.enqueue("idle", {}, delay_seconds=600)
    while len(got) < 2:
        await pump.pump_pass()
    assert (got[1].type, got[1].work_id) == ("enqueued", work_id)
    assert [g["name"] for g in await groups_of(swarm)] == [GROUP]
    await pump.flush()


async def test_a_stalled_deliverer_neither_renews_nor_deletes_its_successors_key(
    swarm: RedisSwarm,
) -> None:
    # The check that the key names this worker and the renewal are one script: a deliverer
    # that stalled past the TTL, whose key a successor took meanwhile, leaves that key alone.
    old = RedisEventFeed(swarm, "old")
    assert await old._lead()  # noqa: SLF001
    lock = swarm.keys.events_pump
    untouched = 60 * old.ttl_ms
    await swarm.client.set(lock, "new", px=untouched)  # "old" stalled; "new" took over
    old.renewed = 0.0  # its renewal is due
    assert not await old._lead()  # noqa: SLF001
    assert await swarm.client.get(lock) == "new"
    assert old.ttl_ms < await swarm.client.pttl(lock) <= untouched
    old.leading = True  # it stops believing it still delivers: letting go leaves the key
    await old.close()
    assert await swarm.client.get(lock) == "new"
    assert old.ttl_ms < await swarm.client.pttl(lock) <= untouched
    newer = RedisEventFeed(swarm, "new")
    before = await _calls(swarm)
    assert await newer._if_mine(renew=True)  # noqa: SLF001
    after = await _calls(swarm)
    # one script on the server (its GET and PEXPIRE inside it), not a read then a write
    # from the client that a stall could fall between
    assert {c: after[c] - before[c] for c in after} == {"fcall": 1, "get": 1, "pexpire": 1}
    assert 0 < await swarm.client.pttl(lock) <= newer.ttl_ms
    assert await newer._if_mine(renew=False)  # noqa: SLF001
    assert await swarm.client.get(lock) is None


async def _calls(swarm: RedisSwarm) -> dict[str, int]:
    """How many FCALL, GET and PEXPIRE commands the server has run (scripts' own included)."""
    stats = await swarm.client.info("commandstats")
    return {
        c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("fcall", "get", "pexpire")
    }
