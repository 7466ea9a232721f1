"""I5: failures are bounded: retries with backoff, dead letters, contract errors, crashes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from roost.redis import RedisSwarm
from roost.runtime import PermanentError, Snapshot, WorkItem, WorkState
from roost_testkit.engines import HashChainEngine, expected_state, read_log


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_step_that_always_raises_goes_dead_after_exactly_max_attempts(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    work_id = await swarm.enqueue("hashchain", {"steps": 3, "modes": {"2": "raise"}})
    async with running_worker([HashChainEngine()], max_attempts=3):
        await until(lambda: is_state(swarm, work_id, WorkState.DEAD))
    status = await swarm.status(work_id)
    attempts = [r for r in read_log(log) if r["phase"] == "start" and r["version"] == 2]
    assert [r["attempt"] for r in attempts] == [1, 2, 3]
    assert status.meta.attempts == 3
    err = status.meta.last_error
    assert err is not None
    assert err.type == "RuntimeError"
    assert "failed on purpose" in err.message
    assert "raise RuntimeError" in err.traceback
    assert err.attempt == 3
    # Failed attempts never touched the snapshot: it is still the one step 2 started from.
    assert status.snapshot is not None and status.snapshot.version == 2
    assert status.meta.version == 2
    page = await swarm.dead_letters()
    assert [m.work_id for m in page.items] == [work_id]
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert kinds.count("retrying") == 2 and kinds[-1] == "dead"


async def test_transient_failure_retries_with_growing_backoff_then_succeeds(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "raise"}, "fail_times": 3}
    )
    async with running_worker(
        [HashChainEngine()], max_attempts=5, retry_delay=0.2, retry_max_delay=5.0
    ):
        await until(lambda: is_state(swarm, work_id, WorkState.RETRYING))
        retrying = (await swarm.status(work_id)).meta
        assert retrying.due_at is not None and retrying.last_error is not None
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    starts = [r["start"] for r in read_log(log) if r["phase"] == "start" and r["version"] == 1]
    assert len(starts) == 4
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # Equal-jitter exponential backoff: attempt n waits between d/2 and d, d = 0.2 * 2**(n-1).
    for n, gap in enumerate(gaps, start=1):
        assert gap >= 0.2 * 2 ** (n - 1) / 2, gaps
    status = await swarm.status(work_id)
    assert status.snapshot is not None
    assert status.snapshot.data["state"] == expected_state(work_id, 2)
    assert status.meta.attempts == 0


class LimitedEngine(HashChainEngine):
    max_attempts = 1


async def test_engine_and_item_attempt_limits(swarm, running_worker, until):
    by_engine = await swarm.enqueue("hashchain", {"mode": "raise"})
    by_item = await swarm.enqueue("hashchain", {"mode": "raise"}, max_attempts=2)
    async with running_worker([LimitedEngine()], max_attempts=5):
        await until(lambda: is_state(swarm, by_engine, WorkState.DEAD))
        await until(lambda: is_state(swarm, by_item, WorkState.DEAD))
    assert (await swarm.status(by_engine)).meta.attempts == 1
    assert (await swarm.status(by_item)).meta.attempts == 2


class ContractBreaker:
    engine_id = "breaker"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        if item.payload.get("bad") == "none":
            return None  # type: ignore[return-value]
        return snapshot.model_copy(update={"work_id": "someone-else"})


async def test_contract_violations_fail_without_retries_and_unknown_engines_wait(
    swarm, running_worker, until
):
    returns_none = await swarm.enqueue("breaker", {"bad": "none"})
    changes_id = await swarm.enqueue("breaker", {"bad": "id"})
    unknown = await swarm.enqueue("nobody-runs-this", {})
    fine = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([ContractBreaker(), HashChainEngine()], max_attempts=3):
        for work_id in (returns_none, changes_id):
            await until(lambda w=work_id: is_state(swarm, w, WorkState.FAILED))
        await until(lambda: is_state(swarm, fine, WorkState.DONE))
        # No worker runs its engine: it waits, untouched, and is reported as such.
        unknown_meta = (await swarm.status(unknown)).meta
        assert unknown_meta.state == WorkState.QUEUED
        assert unknown_meta.attempts == 0 and unknown_meta.last_error is None
        assert await swarm.unserved_engines() == {"nobody-runs-this": 1}
    none_err = (await swarm.status(returns_none)).meta.last_error
    assert none_err is not None and none_err.type == "EngineContractError"
    assert "NoneType" in none_err.message
    id_err = (await swarm.status(changes_id)).meta.last_error
    assert id_err is not None and "work_id" in id_err.message
    for work_id in (returns_none, changes_id):
        status = await swarm.status(work_id)
        assert status.meta.attempts == 1
        assert status.snapshot is not None and status.snapshot.version == 1


async def test_a_step_that_kills_its_worker_counts_as_an_attempt(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    work_id = await swarm.enqueue("hashchain", {"steps": 2, "modes": {"1": "exit"}})
    deaths = 0
    for _ in range(6):
        proc = spawn_worker(
            concurrency=1, env={"ROOST_TEST_LOG": str(log)}, lease_ttl=1.0, max_attempts=3
        )
        while proc.poll() is None and not await is_state(swarm, work_id, WorkState.DEAD):
            await asyncio.sleep(0.05)
        if proc.poll() is not None:
            deaths += 1
            continue
        break
    await until(lambda: is_state(swarm, work_id, WorkState.DEAD))
    assert deaths == 3
    status = await swarm.status(work_id)
    assert status.meta.last_error is not None and status.meta.last_error.type == "WorkerLost"
    assert [r["attempt"] for r in read_log(log) if r["phase"] == "start"] == [1, 2, 3]
    # Nothing was committed: the init snapshot goes to Redis with the first step's result,
    # and every attempt of that step died.
    assert status.meta.version == 0 and status.snapshot is None


class Flaky(HashChainEngine):
    """Raises while ``broken`` is set: an outage the operator fixes before retrying."""

    broken = True

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        if self.broken:
            raise ConnectionRefusedError("the downstream API is down")
        return await super().step(snapshot, item)


async def test_retry_runs_a_dead_item_again_once(swarm, running_worker, until):
    engine = Flaky()
    work_id = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([engine], max_attempts=2):
        await until(lambda: is_state(swarm, work_id, WorkState.DEAD))
        assert (await swarm.status(work_id)).meta.attempts == 2
        engine.broken = False
        meta = await swarm.retry(work_id)
        assert meta.state in (WorkState.QUEUED, WorkState.RUNNING, WorkState.DONE)
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    events = await swarm.events(work_id=work_id)
    kinds = [e.type for e in events]
    assert kinds.count("retried") == 1
    assert kinds[kinds.index("retried") :].count("started") == 1
    status = await swarm.status(work_id)
    assert status.snapshot is not None
    assert status.snapshot.data["state"] == expected_state(work_id, 1)


async def test_redis_unreachable_for_a_while_uses_no_attempts(
    swarm, running_worker, until, redis_server, tmp_path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    ids = [
        await swarm.enqueue("hashchain", {"steps": 3, "mode": "sleep", "seconds": 0.3})
        for _ in range(4)
    ]
    async with running_worker([HashChainEngine()], lease_ttl=8.0):
        await until(lambda: _any_started(log))
        redis_server.pause()
        await asyncio.sleep(2.5)
        redis_server.resume()
        for work_id in ids:
            await until(lambda w=work_id: is_state(swarm, w, WorkState.DONE), timeout=40)
    for work_id in ids:
        kinds = [e.type for e in await swarm.events(work_id=work_id)]
        assert "retrying" not in kinds and "lease_expired" not in kinds, kinds
    assert all(r["attempt"] == 1 for r in read_log(log))
    del os.environ["ROOST_TEST_LOG"]


async def _any_started(log: Path) -> bool:
    return bool(read_log(log))


class Refuses(HashChainEngine):
    """Finds the payload unusable: a retry cannot help."""

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        raise PermanentError(f"no such account: {item.payload['account']}")


async def test_a_permanent_error_fails_the_item_without_retries(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"account": "acme"}, max_attempts=5)
    assert (await swarm.status(work_id)).meta.max_attempts == 5  # the item's own limit
    async with running_worker([Refuses()]):
        await until(lambda: is_state(swarm, work_id, WorkState.FAILED))
    meta = (await swarm.status(work_id)).meta
    assert meta.attempts == 1
    assert meta.last_error is not None and meta.last_error.type == "PermanentError"
    assert meta.last_error.message == "no such account: acme"
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert "retrying" not in kinds and kinds[-1] == "failed"


async def test_a_resource_items_failing_first_step_runs_out_of_attempts(
    swarm, running_worker, until, tmp_path, monkeypatch
):
    # The first step follows init_snapshot on the same lease; when it fails, the init
    # snapshot is kept and the failure counted, claims or not (it used to go back to the
    # queue with its attempt reset, so a resource item could fail forever).
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 2, "modes": {"1": "raise"}}, resources=["gpu"]
    )
    async with running_worker([HashChainEngine()], max_attempts=3):
        await until(lambda: is_state(swarm, work_id, WorkState.DEAD))
    status = await swarm.status(work_id)
    assert [r["attempt"] for r in read_log(log) if r["phase"] == "start"] == [1, 2, 3]
    assert status.meta.version == 1 and status.snapshot is not None
    assert status.snapshot.step == "start"  # the init snapshot was kept
    assert await swarm.client.get(swarm.keys.res("gpu")) is None
