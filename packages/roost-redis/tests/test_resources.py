"""I6: resource claims are all-or-nothing, tied to the lease, and waiting costs nothing."""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path
from typing import Any

from roost.redis import RedisSwarm
from roost.runtime import WorkState
from roost_testkit.engines import HashChainEngine, read_log


async def all_done(swarm: RedisSwarm, ids: list[str]) -> bool:
    metas = await swarm.metas(ids)
    return all(m is not None and m.state == WorkState.DONE for m in metas)


def intervals(log: Path) -> list[dict[str, Any]]:
    """(resources, start, end) of every finished attempt."""
    records = read_log(log)
    ends = {
        (r["work_id"], r["version"], r["epoch"]): r["end"] for r in records if r["phase"] == "end"
    }
    out = []
    for r in records:
        if r["phase"] == "start":
            end = ends.get((r["work_id"], r["version"], r["epoch"]))
            if end is not None:
                out.append(
                    {
                        "res": set(r.get("resources", [])),
                        "start": r["start"],
                        "end": end,
                        "attempt": r["attempt"],
                    }
                )
    return out


async def test_holders_of_one_resource_never_overlap_and_waiting_costs_no_attempts(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    payload = {"steps": 2, "mode": "sleep", "seconds": 0.05}
    ids = [await swarm.enqueue("hashchain", payload, resources=["gpu"]) for _ in range(8)]
    ids += [await swarm.enqueue("hashchain", payload, resources=["gpu", "disk"]) for _ in range(4)]
    ids += [await swarm.enqueue("hashchain", payload, resources=["disk"]) for _ in range(4)]
    async with running_worker([HashChainEngine()], concurrency=8):
        await until(lambda: all_done(swarm, ids), timeout=60)
    spans = intervals(log)
    assert len(spans) == 16 * 2
    for a, b in combinations(spans, 2):
        if a["res"] & b["res"]:
            assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    assert all(s["attempt"] == 1 for s in spans)
    for work_id in ids:
        assert (await swarm.status(work_id)).meta.version == 3
    kinds = {e.type for e in await swarm.events(limit=5000)}
    assert "waiting" in kinds


async def test_claims_are_all_or_nothing(swarm, running_worker, until, tmp_path, monkeypatch):
    # A holds gpu for a while; B needs gpu+disk and must not sit on disk while it waits,
    # so C (disk only) runs while A still holds gpu.
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    a = await swarm.enqueue(
        "hashchain", {"steps": 1, "mode": "sleep", "seconds": 1.5}, resources=["gpu"]
    )
    async with running_worker([HashChainEngine()], concurrency=4):
        await until(lambda: _running(swarm, a))
        b = await swarm.enqueue("hashchain", {"steps": 1}, resources=["gpu", "disk"])
        await until(lambda: _state(swarm, b, WorkState.WAITING))
        c = await swarm.enqueue("hashchain", {"steps": 1}, resources=["disk"])
        await until(lambda: _state(swarm, c, WorkState.DONE))
        assert await _state(swarm, a, WorkState.RUNNING)
        await until(lambda: all_done(swarm, [a, b]))
    assert (await swarm.status(b)).meta.attempts == 0


async def _running(swarm: RedisSwarm, work_id: str) -> bool:
    return await _state(swarm, work_id, WorkState.RUNNING)


async def _state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_waiter_is_woken_when_the_holder_releases(
    swarm, running_worker, until, tmp_path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    holder = await swarm.enqueue(
        "hashchain", {"steps": 1, "mode": "sleep", "seconds": 2.5}, resources=["gpu"]
    )
    async with running_worker([HashChainEngine()], concurrency=2):
        await until(lambda: _running(swarm, holder))
        waiter = await swarm.enqueue("hashchain", {"steps": 1}, resources=["gpu"])
        await until(lambda: all_done(swarm, [holder, waiter]))
    records = read_log(log)
    holder_end = next(r["end"] for r in records if r["work_id"] == holder and r["phase"] == "end")
    waiter_start = next(
        r["start"] for r in records if r["work_id"] == waiter and r["phase"] == "start"
    )
    # The waiter's backoff had grown to its 1 s cap; the release woke it before that.
    assert 0 <= waiter_start - holder_end < 0.9


async def test_a_killed_holders_claim_expires_with_its_lease(
    swarm, spawn_worker, running_worker, until, tmp_path: Path
):
    log = tmp_path / "attempts.jsonl"
    holder = await swarm.enqueue(
        "hashchain",
        {"steps": 1, "mode": "sleep", "seconds": 60, "fail_times": 1},
        resources=["gpu"],
    )
    victim = spawn_worker(concurrency=1, env={"ROOST_TEST_LOG": str(log)}, lease_ttl=2.0)
    await until(lambda: _running(swarm, holder))
    waiter = await swarm.enqueue("hashchain", {"steps": 1}, resources=["gpu"])
    victim.kill()
    victim.wait(10)
    killed = time.monotonic()
    async with running_worker([HashChainEngine()], concurrency=2, lease_ttl=2.0):
        await until(lambda: _state(swarm, waiter, WorkState.DONE))
        freed_after = time.monotonic() - killed
        await until(lambda: _state(swarm, holder, WorkState.DONE))
    assert freed_after < 2.0 + 1.5, freed_after
