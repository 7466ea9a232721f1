"""Resume in seconds: a restarted worker takes its predecessor's leases back; a vanished
worker is found by its silent heartbeat long before its leases expire; both fenced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from roost.redis import RedisSwarm
from roost.redis.identity import Member, WorkerIdInUse, beat, unbroken_since
from roost.redis.maintenance import Clock
from roost.runtime import RoostSettings, WorkState
from roost_testkit.engines import HashChainEngine, expected_state, read_log
from roost_testkit.redis_faults import out_of_memory

LONG_TTL = 60.0
"""Leases that outlive every test here: whatever resumes an item, it is not their expiry."""


async def _is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def _started(log: Path, work_id: str, version: int, pid: int | None = None) -> bool:
    return any(
        r["work_id"] == work_id
        and r["version"] == version
        and r["phase"] == "start"
        and (pid is None or r["pid"] == pid)
        for r in read_log(log)
    )


async def _took_back(swarm: RedisSwarm, work_id: str) -> bool:
    """Whether the item's lease has been taken back from its holder."""
    return any(e.type == "lease_expired" for e in await swarm.events(work_id=work_id))


async def _server_s(swarm: RedisSwarm) -> float:
    seconds, micros = await swarm.client.time()
    return seconds + micros / 1e6


async def _check_history(swarm: RedisSwarm, work_id: str) -> list[str]:
    """The item finished with every step committed once; returns its event types."""
    status = await swarm.status(work_id)
    assert status.meta.state == WorkState.DONE
    assert status.snapshot is not None
    assert status.snapshot.data["state"] == expected_state(work_id, 2)
    events = await swarm.events(work_id=work_id)
    assert [e.version for e in events if e.type in ("committed", "done")] == [1, 2, 3]
    return [e.type for e in events]


async def test_a_restart_with_the_same_id_takes_the_leases_back_at_once(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    env = {"ROOST_TEST_LOG": str(log), "ROOST_WORKER_ID": "w-restart"}
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "sleep"}, "seconds": 300, "fail_times": 1}
    )
    victim = spawn_worker(concurrency=2, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _started(log, work_id, 1))
    first = (await swarm.status(work_id)).meta.lease
    assert first is not None and first.worker_id == "w-restart"
    victim.kill()
    victim.wait(10)
    restarted_at = await _server_s(swarm)
    successor = spawn_worker(concurrency=2, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _is(swarm, work_id, WorkState.DONE), timeout=30)
    kinds = await _check_history(swarm, work_id)
    events = await swarm.events(work_id=work_id)
    taken = [e for e in events if e.type == "lease_expired"]
    assert len(taken) == 1, kinds
    assert taken[0].data.get("reason") == "worker gone"
    # Taken back long before the lease could have expired (60 s).
    assert taken[0].ts - restarted_at < LONG_TTL / 4
    starts = [r for r in read_log(log) if r["phase"] == "start" and r["version"] == 1]
    assert [r["pid"] for r in starts] == [victim.pid, successor.pid]
    assert starts[0]["epoch"] < starts[1]["epoch"]
    assert successor.poll() is None


async def test_a_second_live_worker_with_the_same_id_is_refused(
    swarm, settings, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    env = {"ROOST_TEST_LOG": str(log), "ROOST_WORKER_ID": "w-twin"}
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "sleep"}, "seconds": 2.0, "fail_times": 1}
    )
    first = spawn_worker(concurrency=2, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _started(log, work_id, 1))
    twin_settings = settings.model_copy(update={"worker_id": "w-twin"})
    async with RedisSwarm(twin_settings, registry=swarm.registry) as twin:
        with pytest.raises(WorkerIdInUse, match="w-twin.*in use by a live worker.*pid"):
            await asyncio.wait_for(
                twin.run_worker([HashChainEngine()], install_signal_handlers=False), 10
            )
    # The live worker kept its lease and finishes the item on its first attempt.
    await until(lambda: _is(swarm, work_id, WorkState.DONE), timeout=30)
    kinds = await _check_history(swarm, work_id)
    assert "lease_expired" not in kinds
    assert kinds.count("started") == 1
    assert first.poll() is None
    workers = [w["worker_id"] for w in await swarm.workers()]
    assert workers == ["w-twin"]


async def test_a_vanished_worker_is_found_by_its_silent_heartbeat(
    swarm, spawn_worker, running_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "sleep"}, "seconds": 300, "fail_times": 1}
    )
    victim = spawn_worker(
        concurrency=1,
        env={"ROOST_TEST_LOG": str(log), "ROOST_HEARTBEAT_TIMEOUT": "2s"},
        lease_ttl=LONG_TTL,
    )
    await until(lambda: _started(log, work_id, 1))
    victim.kill()
    victim.wait(10)
    killed_at = await _server_s(swarm)
    os.environ["ROOST_TEST_LOG"] = str(log)
    try:
        async with running_worker(
            [HashChainEngine()], concurrency=1, lease_ttl=LONG_TTL, heartbeat_timeout=2.0
        ):
            await until(lambda: _is(swarm, work_id, WorkState.DONE), timeout=30)
    finally:
        del os.environ["ROOST_TEST_LOG"]
    await _check_history(swarm, work_id)
    events = await swarm.events(work_id=work_id)
    taken = [e for e in events if e.type == "lease_expired"]
    assert len(taken) == 1 and taken[0].data.get("reason") == "worker gone"
    assert taken[0].data.get("worker") is not None
    assert taken[0].ts - killed_at < LONG_TTL / 4
    # The lost worker left the heartbeat index with its leases.
    assert await swarm.client.zrange(swarm.keys.beats, 0, -1) == []


async def test_a_stalled_worker_taken_for_gone_cannot_commit_and_gives_up(
    swarm, spawn_worker, until, tmp_path: Path
):
    # The first attempt of step 1 blocks its worker's event loop (no heartbeat, no renewal)
    # until the test opens the gate. A worker started with the same id takes the identity
    # and the lease over; then the stalled one wakes up, its commit is refused, it sees it
    # was replaced and exits. (The gate, not a fixed stall, so that a successor slow to
    # start on a loaded machine still finds the stalled worker silent.)
    log = tmp_path / "attempts.jsonl"
    gate = tmp_path / "wake"
    env = {"ROOST_TEST_LOG": str(log), "ROOST_WORKER_ID": "w-stall"}
    work_id = await swarm.enqueue(
        "hashchain",
        {
            "steps": 2,
            "modes": {"1": "block"},
            "seconds": 60.0,
            "gate": str(gate),
            "fail_times": 1,
        },
    )
    stalled = spawn_worker(concurrency=1, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _started(log, work_id, 1))
    successor = spawn_worker(concurrency=1, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _took_back(swarm, work_id), timeout=30)
    gate.touch()
    await until(lambda: _is(swarm, work_id, WorkState.DONE), timeout=30)
    assert stalled.wait(30) != 0
    kinds = await _check_history(swarm, work_id)
    assert kinds.count("lease_expired") == 1
    events = await swarm.events(work_id=work_id)
    v2 = next(e for e in events if e.version == 2 and e.type == "committed")
    starts = [r for r in read_log(log) if r["phase"] == "start" and r["version"] == 1]
    assert [r["pid"] for r in starts] == [stalled.pid, successor.pid]
    assert v2.worker == "w-stall"
    stderr = (tmp_path / "worker-0.log").read_text()
    assert "refused: STALE" in stderr
    assert "took its leases" in stderr
    # The replaced worker left the identity to its successor, which still runs.
    assert successor.poll() is None
    assert [w["worker_id"] for w in await swarm.workers()] == ["w-stall"]
    assert int(successor.pid) == (await swarm.workers())[0]["pid"]
    successor.send_signal(signal.SIGTERM)
    assert successor.wait(20) == 0


async def test_a_restart_during_an_outage_takes_the_leases_back_once_redis_serves(
    swarm, spawn_worker, until, tmp_path: Path
):
    # Redis refuses writes (OOM) while the restarted worker claims its identity: the claim
    # is retried, not fatal, and the leases come back when Redis serves again.
    log = tmp_path / "attempts.jsonl"
    env = {"ROOST_TEST_LOG": str(log), "ROOST_WORKER_ID": "w-outage"}
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "sleep"}, "seconds": 300, "fail_times": 1}
    )
    victim = spawn_worker(concurrency=1, env=env, lease_ttl=LONG_TTL)
    await until(lambda: _started(log, work_id, 1))
    victim.kill()
    victim.wait(10)
    assert swarm.settings.redis_url is not None
    with out_of_memory(swarm.settings.redis_url):
        successor = spawn_worker(concurrency=1, env=env, lease_ttl=LONG_TTL)
        await asyncio.sleep(2.0)
        assert successor.poll() is None
        # It has not taken work yet: its claim (a heartbeat write) waits for Redis.
        assert not await _started(log, work_id, 1, pid=successor.pid)
    await until(lambda: _is(swarm, work_id, WorkState.DONE), timeout=30)
    kinds = await _check_history(swarm, work_id)
    assert kinds.count("lease_expired") == 1
    assert successor.poll() is None


def test_a_run_of_heartbeats_is_broken_while_a_gap_is_under_way():
    """The maintenance loop can come back from an outage before the heartbeat does.

    Seen in the full chaos tier (Redis busy for 6 s, above the 5 s heartbeat timeout): a
    worker's maintenance pass went through before its own heartbeat did, judged the others
    by a run of beats the outage had broken, and took back 16 live leases. Until a
    heartbeat goes through again, the run is broken: that worker judges nobody.
    """
    settings = RoostSettings(heartbeat_timeout=5.0)
    member = SimpleNamespace(settings=settings, beating_since=1_000.0)
    member.beat_done = time.monotonic()  # the last beat just came back
    assert unbroken_since(cast(Member, member)) == 1_000.0
    member.beat_done = time.monotonic() - 3.0  # none for 3 s: more than two 1 s intervals
    assert unbroken_since(cast(Member, member)) == float("inf")


async def test_only_a_claim_writes_the_incarnation(swarm: RedisSwarm):
    """A beat never writes its incarnation back: only claiming the identity does.

    A beat reads the incarnation, then writes its fields. Were the write to include the
    incarnation, a successor's claim landing between the two would be undone, and the
    successor, not the stalled worker it replaced, would find itself replaced.
    """
    key = swarm.keys.worker(swarm.worker_id)

    def member(incarnation: str) -> Member:
        return cast(
            Member,
            SimpleNamespace(
                store=swarm,
                keys=swarm.keys,
                settings=swarm.settings,
                clock=Clock(),
                incarnation=incarnation,
                beat_done=0.0,
                beating_since=0.0,
                last_beat=0.0,
                engines=["hashchain"],
            ),
        )

    old, new = member("old"), member("new")
    assert await beat(old, {}, claim=True)
    assert await swarm.client.hget(key, "inc") == "old"
    assert await beat(new, {}, claim=True)
    assert not await beat(old, {})  # replaced: writes nothing
    assert await swarm.client.hget(key, "inc") == "new"
    # The interleaving itself: the old run's check passed (no incarnation stored yet),
    # its fields are written, and the incarnation a claim wrote meanwhile survives them.
    await swarm.client.hdel(key, "inc")
    assert await beat(old, {})
    assert await swarm.client.hget(key, "inc") is None
    assert await beat(new, {})
    assert await swarm.client.hget(key, "inc") is None
    assert await beat(new, {}, claim=True)
    assert not await beat(old, {})
