"""I10: whatever an engine raises, BaseException included, fails that attempt only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roost.redis import RedisSwarm
from roost.runtime import WorkItem, WorkState
from roost_testkit.engines import ESCAPES, HashChainEngine, expected_state, read_log


async def finished(swarm: RedisSwarm, ids: list[str]) -> bool:
    metas = await swarm.metas(ids)
    return all(m is not None and m.state.is_terminal for m in metas)


@pytest.mark.parametrize("where", ["step", "init"])
async def test_base_exceptions_from_an_engine_fail_the_attempt_and_the_worker_goes_on(
    swarm, spawn_worker, until, tmp_path: Path, where: str
):
    log = tmp_path / "attempts.jsonl"
    escaping = {
        name: WorkItem(
            engine="hashchain",
            payload={"steps": 2, "modes": {"1": "escape"}, "exception": name},
            max_attempts=2,
        )
        for name in ESCAPES
    }
    healthy = [WorkItem(engine="hashchain", payload={"steps": 3}) for _ in range(4)]
    if where == "init":
        escaping = {
            name: item.model_copy(update={"payload": {"init": "escape", "exception": name}})
            for name, item in escaping.items()
        }
    await swarm.enqueue_many([*escaping.values(), *healthy])
    proc = spawn_worker(concurrency=4, env={"ROOST_TEST_LOG": str(log)}, max_attempts=3)
    ids = [i.work_id for i in [*escaping.values(), *healthy]]

    async def settled() -> bool:
        assert proc.poll() is None, "the worker process died"
        return await finished(swarm, ids)

    await until(settled, 60.0)
    for name, item in escaping.items():
        meta = (await swarm.status(item.work_id)).meta
        assert meta.state == WorkState.DEAD, (name, meta.state)
        assert meta.attempts == 2
        assert meta.last_error is not None and meta.last_error.type == name
        kinds = [e.type for e in await swarm.events(work_id=item.work_id)]
        assert kinds.count("retrying") == 1 and kinds[-1] == "dead"
    for item in healthy:
        status = await swarm.status(item.work_id)
        assert status.meta.state == WorkState.DONE
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(item.work_id, 3)
    # The worker still takes new work after all that.
    late = await swarm.enqueue("hashchain", {"steps": 1})
    await until(lambda: finished(swarm, [late]))
    assert (await swarm.status(late)).meta.state == WorkState.DONE
    if where == "step":
        starts = [r for r in read_log(log) if r["phase"] == "start" and r["mode"] == "escape"]
        assert len(starts) == 2 * len(ESCAPES)


async def test_a_cancel_the_runtime_asked_for_stays_a_cancel(swarm, running_worker, until):
    # The step swallows nothing: SIGTERM-like stop cancels it, and the item is released
    # with its attempt refunded (not failed), even though CancelledError is a BaseException.
    work_id = await swarm.enqueue("hashchain", {"steps": 1, "mode": "sleep", "seconds": 30})
    async with running_worker([HashChainEngine()], grace_period=0.3) as worker:
        await until(lambda: _running(swarm, work_id))
        worker.stop_worker()
        await asyncio.sleep(1.0)
    meta = (await swarm.status(work_id)).meta
    assert meta.state == WorkState.QUEUED and meta.attempts == 0
    assert meta.last_error is None


async def _running(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.state == WorkState.RUNNING
