"""I7 and the server: delays survive restarts; start-up checks; strict durability; retention."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest

from roost.redis import RedisSwarm
from roost.redis.maintenance import Clock, purge_expired
from roost.redis.server import ServerProcess
from roost.runtime import (
    RedisUnreachable,
    RoostError,
    RoostSettings,
    Snapshot,
    WorkItem,
    WorkState,
)
from roost_testkit.engines import HashChainEngine, expected_state

from .conftest import registry  # noqa: TID252


def settings_for(url: str, tmp_path: Path, **overrides: object) -> RoostSettings:
    return RoostSettings.from_env(
        {},
        redis_url=url,
        home=tmp_path / "home",
        namespace=f"t{uuid.uuid4().hex[:8]}",
        lease_ttl=3.0,
        **overrides,
    )


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_delayed_continuation_survives_worker_and_redis_restarts(
    redis_server_factory, tmp_path, until
):
    server = redis_server_factory(appendonly=True, appendfsync="always")
    settings = settings_for(server.url, tmp_path)
    async with RedisSwarm(settings, registry=registry()) as swarm:
        work_id = await swarm.enqueue("hashchain", {"steps": 2, "delay": 2.5})
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], install_signal_handlers=False)
        )
        await until(lambda: is_state(swarm, work_id, WorkState.SCHEDULED))
        worker.stop_worker()
        await asyncio.wait_for(task, 10)
        await worker.close()
        due = (await swarm.status(work_id)).meta.due_at
        assert due is not None
    server.kill()
    server.restart()
    async with RedisSwarm(settings, registry=registry()) as swarm:
        status = await swarm.status(work_id)
        assert status.meta.state == WorkState.SCHEDULED and status.meta.due_at == due
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], install_signal_handlers=False)
        )
        try:
            await until(lambda: is_state(swarm, work_id, WorkState.DONE), timeout=20)
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 10)
            await worker.close()
        events = await swarm.events(work_id=work_id)
        fired = [e.ts for e in events if e.type == "done" and e.version == 3]
        assert fired and fired[0] >= due - 0.01
        status = await swarm.status(work_id)
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(work_id, 2)


async def test_a_server_that_may_evict_is_refused(redis_server_factory, tmp_path):
    server = redis_server_factory(**{"maxmemory-policy": "allkeys-lru"})
    with pytest.raises(RoostError, match="noeviction"):
        async with RedisSwarm(settings_for(server.url, tmp_path), registry=registry()):
            pass


async def test_a_server_without_persistence_is_used_with_a_warning(redis_url, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="roost.redis"):
        async with RedisSwarm(settings_for(redis_url, tmp_path), registry=registry()) as swarm:
            assert swarm.server is not None and not swarm.server.aof
    assert "keeps nothing on disk" in caplog.text


async def test_unreachable_server_is_one_clear_error(tmp_path):
    settings = settings_for("redis://127.0.0.1:1/0", tmp_path)
    with pytest.raises(RedisUnreachable, match="cannot reach Redis at redis://127.0.0.1:1/0"):
        async with RedisSwarm(settings, registry=registry()):
            pass


async def test_strict_durability_needs_an_append_only_file(redis_url, tmp_path):
    with pytest.raises(RoostError, match="ROOST_STRICT_DURABILITY"):
        async with RedisSwarm(
            settings_for(redis_url, tmp_path, strict_durability=True), registry=registry()
        ):
            pass


async def test_strict_durability_commits_after_fsync(redis_server_factory, tmp_path, until):
    server = redis_server_factory(appendonly=True, appendfsync="everysec")
    probe = RedisSwarm(settings_for(server.url, tmp_path), registry=registry())
    async with probe:
        assert probe.server is not None
        if not probe.server.has_waitaof:
            pytest.skip("this server has no WAITAOF (Redis < 7.2)")
    settings = settings_for(server.url, tmp_path, strict_durability=True)
    async with RedisSwarm(settings, registry=registry()) as swarm:
        work_id = await swarm.enqueue("hashchain", {"steps": 3})
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], install_signal_handlers=False)
        )
        try:
            await until(lambda: is_state(swarm, work_id, WorkState.DONE))
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 10)
            await worker.close()
    # Everything acknowledged was fsynced: a hard kill loses none of it.
    server.kill()
    server.restart()
    async with RedisSwarm(settings, registry=registry()) as swarm:
        status = await swarm.status(work_id)
        assert status.meta.state == WorkState.DONE and status.meta.version == 4


async def waitaof_calls(swarm: RedisSwarm) -> int:
    stats = await swarm.client.info("commandstats")
    return int(stats.get("cmdstat_waitaof", {}).get("calls", 0))


async def test_strict_durability_enqueue_waits_for_the_fsync(redis_server_factory, tmp_path):
    server = redis_server_factory(appendonly=True, appendfsync="everysec")
    plain = settings_for(server.url, tmp_path)
    async with RedisSwarm(plain, registry=registry()) as swarm:
        assert swarm.server is not None
        if not swarm.server.has_waitaof:
            pytest.skip("this server has no WAITAOF (Redis < 7.2)")
        before = await waitaof_calls(swarm)
        await swarm.enqueue("hashchain", {"steps": 1})
        assert await waitaof_calls(swarm) == before  # no fsync wait without strict durability
    strict = plain.model_copy(update={"strict_durability": True})
    async with RedisSwarm(strict, registry=registry()) as swarm:
        before = await waitaof_calls(swarm)
        one = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key="k")
        assert await waitaof_calls(swarm) == before + 1
        batch = [WorkItem(engine="hashchain", payload={"steps": 1}) for _ in range(3)]
        many = await swarm.enqueue_many(batch)  # one engine: one script call, one wait
        assert await waitaof_calls(swarm) == before + 2
        again = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key="k")
        assert again == one and await waitaof_calls(swarm) == before + 3
    server.kill()
    server.restart()
    async with RedisSwarm(strict, registry=registry()) as swarm:
        for work_id in [one, *many]:
            assert (await swarm.status(work_id)).meta.state == WorkState.QUEUED


async def test_scripts_reload_after_the_server_forgets_them(swarm, running_worker, until):
    first = await swarm.enqueue("hashchain", {"steps": 1})
    await swarm.client.execute_command("SCRIPT", "FLUSH")  # type: ignore[attr-defined]
    second = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([HashChainEngine()]) as worker:
        await until(lambda: is_state(swarm, first, WorkState.DONE))
        await worker.client.execute_command("SCRIPT", "FLUSH")  # type: ignore[attr-defined]
        await until(lambda: is_state(swarm, second, WorkState.DONE))


async def test_retention_deletes_finished_items_with_their_index_entries(
    swarm, settings, running_worker, until
):
    ids = [
        await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=f"k{i}") for i in range(3)
    ]
    live = await swarm.enqueue("hashchain", {"steps": 1, "mode": "sleep", "seconds": 30})
    await swarm.signal(ids[0], "never-awaited")  # its signal stream outlives the item's run
    async with running_worker([HashChainEngine()]):
        for work_id in ids:
            await until(lambda w=work_id: is_state(swarm, w, WorkState.DONE))
        await until(lambda: is_state(swarm, live, WorkState.RUNNING))
        await asyncio.sleep(1.1)
        assert len(await swarm.pending_signals(ids[0])) == 1
        short = settings.model_copy(update={"retention": 1.0})
        async with RedisSwarm(short, registry=registry()) as purger:
            deleted = await purge_expired(purger, purger.keys, Clock())
        assert deleted == 3
        assert (await swarm.counts())["done"] == 0
        for i, work_id in enumerate(ids):
            assert not await swarm.client.hgetall(swarm.keys.meta(work_id))
            assert await swarm.client.get(swarm.keys.snap(work_id)) is None
            assert await swarm.client.get(swarm.keys.item(work_id)) is None
            assert await swarm.client.get(swarm.keys.idem(f"k{i}")) is None
        assert await swarm.pending_signals(ids[0]) == []  # the stream went with the item
        assert (await swarm.status(live)).meta.state == WorkState.RUNNING
        await swarm.cancel(live)


async def test_a_password_never_appears_in_errors(tmp_path):
    settings = settings_for("redis://user:hunter2@127.0.0.1:1/0", tmp_path)
    with pytest.raises(RoostError) as caught:
        async with RedisSwarm(settings, registry=registry()):
            pass
    assert "hunter2" not in str(caught.value)
    assert "redis://***@127.0.0.1:1/0" in str(caught.value)


async def test_stats_cover_wall_clock_minutes(swarm):
    await swarm.enqueue("hashchain", {})
    stats = await swarm.stats(minutes=5)
    minutes = list(stats)
    assert len(minutes) == 5
    assert all(b - a == 60 for a, b in zip(minutes, minutes[1:], strict=False))
    assert stats[minutes[-1]].get("enqueued") == 1
    assert all(stats[m] == {} for m in minutes[:-2])


class SlowCommitEngine:
    """Step 1 asks for a 2 s delay and SIGSTOPs Redis for 1.5 s as it returns, so the
    commit that schedules step 2 reaches Redis 1.5 s after the step ended."""

    engine_id = "slow-commit"

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="init", data={})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        now = time.time()
        if "ended" not in snapshot.data:
            self.server.pause()
            asyncio.get_running_loop().call_later(1.5, self.server.resume)
            data = {"ended": time.time()}
            return snapshot.model_copy(
                update={"step": "one", "data": data, "next_step_delay_seconds": 2.0}
            )
        data = {**snapshot.data, "started": now}
        update = {"step": "two", "data": data, "next_step_delay_seconds": 0.0}
        return snapshot.model_copy(update={**update, "is_finished": True})


async def test_a_delay_runs_from_the_end_of_the_step_not_from_its_commit(
    swarm, redis_server, running_worker, until
):
    work_id = await swarm.enqueue(SlowCommitEngine.engine_id)
    async with running_worker([SlowCommitEngine(redis_server)], lease_ttl=5.0):
        await asyncio.sleep(2.0)  # Redis is stopped for part of this
        await until(lambda: is_state(swarm, work_id, WorkState.DONE), timeout=10)
    status = await swarm.status(work_id)
    assert status.snapshot is not None
    gap = status.snapshot.data["started"] - status.snapshot.data["ended"]
    # From the commit, step 2 would start 3.5 s after step 1 ended.
    assert 1.95 <= gap < 2.5, gap
