"""I9: graceful stop on SIGTERM/SIGINT; a second signal exits at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from roost.redis import RedisSwarm
from roost.runtime import Snapshot, WorkItem, WorkState
from roost.runtime.observe import StepObserver, StepRecord
from roost_testkit.engines import HashChainEngine, read_log

from .conftest import registry  # noqa: TID252


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


def started(log: Path) -> list[dict]:
    return [r for r in read_log(log) if r["phase"] == "start"]


async def test_sigterm_lets_running_steps_commit_and_starts_no_new_ones(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    ids = [
        await swarm.enqueue("hashchain", {"steps": 3, "mode": "sleep", "seconds": 1.0})
        for _ in range(2)
    ]
    proc = spawn_worker(concurrency=2, env={"ROOST_TEST_LOG": str(log)}, grace_period=10.0)
    await until(lambda: _count(log, 2))
    stop_at = time.time()
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 15)
    stopped = time.time() - stop_at
    assert rc == 0
    assert stopped < 10.0
    # Nothing started after the signal; both running steps committed.
    assert all(r["start"] < stop_at for r in started(log))
    ends = [r for r in read_log(log) if r["phase"] == "end"]
    assert len(ends) == 2
    for work_id in ids:
        meta = (await swarm.status(work_id)).meta
        assert meta.version == 2 and meta.state == WorkState.QUEUED and meta.lease is None
        assert meta.attempts == 0


async def _count(log: Path, n: int) -> bool:
    return len(started(log)) >= n


class Quick(HashChainEngine):
    """Runs every step plainly: the worker that resumes a released item."""

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        plain = item.model_copy(update={"payload": {**item.payload, "mode": "plain"}})
        return await super().step(snapshot, plain)


async def test_a_step_longer_than_the_grace_period_is_released_without_losing_an_attempt(
    swarm, spawn_worker, running_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 1, "mode": "sleep", "seconds": 30, "fail_times": 1}
    )
    proc = spawn_worker(concurrency=1, env={"ROOST_TEST_LOG": str(log)}, grace_period=1.0)
    await until(lambda: _count(log, 1))
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 15)
    assert rc == 0
    meta = (await swarm.status(work_id)).meta
    assert meta.state == WorkState.QUEUED
    assert meta.attempts == 0
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert kinds[-1] == "released"
    async with running_worker([Quick()]):
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    starts = [e for e in await swarm.events(work_id=work_id) if e.type == "started"]
    assert [e.data["attempt"] for e in starts] == [1, 1]


async def test_a_second_signal_exits_at_once(swarm, spawn_worker, until, tmp_path: Path):
    log = tmp_path / "attempts.jsonl"
    await swarm.enqueue("hashchain", {"steps": 1, "mode": "sleep", "seconds": 30})
    proc = spawn_worker(concurrency=1, env={"ROOST_TEST_LOG": str(log)}, grace_period=60.0)
    await until(lambda: _count(log, 1))
    proc.send_signal(signal.SIGINT)
    await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # the same interrupt delivered twice (as uv run does)
    await asyncio.sleep(0.6)
    assert proc.poll() is None  # still draining its running step
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc = await asyncio.to_thread(proc.wait, 5)
    assert time.monotonic() - sent < 2.0
    assert rc == 128 + signal.SIGINT


async def test_a_worker_stops_promptly_however_often_it_is_started_and_stopped(
    swarm, settings, until
):
    # Regression: on Python 3.11 a cancel could be swallowed by a background loop (it came
    # out of redis-py's wait_for as TimeoutError) and the stop then waited forever.
    import random

    await swarm.enqueue_many(
        [
            WorkItem(engine="hashchain", payload={"steps": 50, "mode": "sleep", "seconds": 0.01})
            for _ in range(8)
        ]
    )
    rng = random.Random(7)
    for _ in range(15):
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], concurrency=4, install_signal_handlers=False)
        )
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        worker.stop_worker()
        await asyncio.wait_for(task, 15)
        await worker.close()


async def test_cancel_all_ends_a_task_that_swallows_its_cancel():
    from roost.runtime.runner import cancel_all

    swallowed = asyncio.Event()

    async def stubborn() -> None:  # like a loop whose wait_for ate the CancelledError
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.02)
    await asyncio.wait_for(cancel_all([task], 1.0), 5)
    assert swallowed.is_set() and task.cancelled()


# -- I9: the stop is bounded whatever the steps do ---------------------------------------------


async def _sigterm_exits_in_bound(proc: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM: the process exits 0 within the grace period plus STOP_BOUND."""
    from roost.runtime.stopping import STOP_BOUND

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, grace + STOP_BOUND + 5)
    took = time.monotonic() - sent
    assert rc == 0
    assert took <= grace + STOP_BOUND, took


async def _released_with_attempt_refunded(swarm: RedisSwarm, work_id: str) -> None:
    meta = (await swarm.status(work_id)).meta
    assert meta.state == WorkState.QUEUED and meta.attempts == 0 and meta.lease is None
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert kinds[-1] == "released"


async def test_sigterm_exits_within_the_bound_when_a_step_blocks_in_a_thread(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    work_id = await swarm.enqueue("hashchain", {"steps": 1, "mode": "thread", "seconds": 40})
    proc = spawn_worker(concurrency=1, env={"ROOST_TEST_LOG": str(log)}, grace_period=1.0)
    await until(lambda: _count(log, 1))
    await _sigterm_exits_in_bound(proc, grace=1.0)
    await _released_with_attempt_refunded(swarm, work_id)


async def test_sigterm_exits_within_the_bound_when_a_step_swallows_its_cancel(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    work_id = await swarm.enqueue("hashchain", {"steps": 1, "mode": "swallow", "seconds": 120})
    other = await swarm.enqueue("hashchain", {"steps": 1, "mode": "sleep", "seconds": 0.5})
    proc = spawn_worker(concurrency=2, env={"ROOST_TEST_LOG": str(log)}, grace_period=1.0)
    await until(lambda: _count(log, 2))
    await _sigterm_exits_in_bound(proc, grace=1.0)
    # The step that ignored its cancel: its item is released all the same (documented).
    await _released_with_attempt_refunded(swarm, work_id)
    assert (await swarm.status(other)).meta.state == WorkState.DONE


async def test_a_second_signal_exits_at_once_while_a_step_blocks_the_event_loop(
    swarm, spawn_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    await swarm.enqueue("hashchain", {"steps": 1, "mode": "block", "seconds": 30})
    proc = spawn_worker(concurrency=1, env={"ROOST_TEST_LOG": str(log)}, grace_period=60.0)
    await until(lambda: _count(log, 1))
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 10)
    assert time.monotonic() - sent < 2.0
    assert rc == 128 + signal.SIGTERM


class StopAsAStepStarts(StepObserver):
    """Stops the worker the moment the runner starts step ``version`` (before its task runs)."""

    def __init__(self, swarm: RedisSwarm, version: int) -> None:
        self.swarm = swarm
        self.version = version
        self.ended: list[tuple[int, str | None, str]] = []

    def step_started(self, record: StepRecord) -> None:
        if record.version == self.version:
            self.swarm.stop_worker()

    def step_ended(self, record: StepRecord) -> None:
        self.ended.append((record.version, record.outcome, record.detail))


class Counting(HashChainEngine):
    """Counts the engine calls that began."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        self.steps += 1
        return await super().step(snapshot, item)


async def test_a_stop_that_lands_as_a_step_is_started_keeps_the_engine_from_running(
    swarm: RedisSwarm,
):
    """Stopping after the runner decided to start a step but before the step's task ran.

    The engine is not called: the step ends as interrupted and the item goes back queued,
    with no attempt used (what the drain chaos scenario checks: no step starts after the
    worker began to stop).
    """
    work_id = await swarm.enqueue("hashchain", {"steps": 3, "mode": "plain"})
    engine = Counting()
    observer = StopAsAStepStarts(swarm, version=2)  # step 1, after init_snapshot (v1)
    await asyncio.wait_for(
        swarm.run_worker([engine], install_signal_handlers=False, observers=[observer]), 30
    )
    assert engine.steps == 0
    # The init snapshot, not committed yet (it goes with step 1's commit), ends with it.
    assert observer.ended == [(v, "interrupted", "worker stopping") for v in (1, 2)]
    meta = (await swarm.status(work_id)).meta
    assert meta.state == WorkState.QUEUED and meta.lease is None and meta.version == 0
    assert meta.attempts == 0
