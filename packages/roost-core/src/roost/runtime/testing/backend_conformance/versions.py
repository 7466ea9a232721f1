"""Contiguous versions (I4): each committed step adds exactly 1; none lost or applied twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from roost.runtime.models import WorkState, WorkStatus
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    WorkerHandle,
    scenario,
)

__all__ = ["ContiguousVersionsConformance"]

STEPS = 4


class ContiguousVersionsConformance(ConformanceSuite):
    """Versions count committed steps exactly, whatever happens between them."""

    @scenario(Capability.CONTIGUOUS_VERSIONS)
    async def test_each_committed_step_adds_exactly_one(self, sc: Scenario) -> None:
        """Each step adds exactly one version, however the next step is reached.

        Items continuing at once, after a delay, or through resource claims all end at
        version ``steps + 1``, every step committed once and run once.
        """
        ids = [await sc.enqueue(steps=STEPS) for _ in range(3)]
        ids += [await sc.enqueue(steps=STEPS, delay=0.05) for _ in range(3)]
        ids += [await sc.enqueue(steps=STEPS, resources=[f"lane-{i}"]) for i in range(3)]
        await sc.start_worker(concurrency=4)
        for work_id in ids:
            await sc.until_state(work_id, WorkState.DONE)
        for work_id in ids:
            await sc.assert_contiguous(work_id, STEPS)
            runs = [(r.version, r.attempt) for r in sc.journal.starts(work_id)]
            assert runs == [(v, 1) for v in range(1, STEPS + 1)], runs

    @scenario(Capability.CONTIGUOUS_VERSIONS)
    async def test_versions_stay_contiguous_through_worker_crashes(self, sc: Scenario) -> None:
        """Versions stay contiguous while workers crash and are restarted.

        Steps kill their worker, and a worker is killed from outside mid-step; every item
        still commits each step exactly once, in order.
        """
        ttl = self.expiry_ttl

        async def start() -> WorkerHandle:
            return await sc.start_worker(concurrency=2, lease_ttl=ttl, max_attempts=6)

        ids: list[str] = []
        for i in range(6):
            # Steps long enough that a poll, however late under load, finds one running.
            plan = {v: ["sleep:0.5"] for v in range(1, STEPS + 1)}
            if i < 2:
                plan[i + 2] = ["exit", "sleep:0.2"]  # attempt 1 of this step kills its worker
            ids.append(await sc.enqueue(steps=STEPS, plan=plan))
        workers: list[WorkerHandle] = list(await asyncio.gather(start(), start()))
        killed = False

        async def all_done() -> bool:
            nonlocal killed
            for i, worker in enumerate(workers):
                if not worker.alive:
                    workers[i] = await start()
            if not killed and len(sc.journal.ends()) >= 6:
                busy = _busy_labels(sc)
                victim = next((w for w in workers if w.label in busy and w.alive), None)
                if victim is not None:
                    await victim.kill()
                    killed = True
            states = [await sc.state(work_id) for work_id in ids]
            assert WorkState.DEAD not in states, states
            return all(s == WorkState.DONE for s in states)

        await sc.until(all_done, "every item is done", timeout=self.wait_timeout * 2)
        assert killed, "no worker was busy to be killed"
        for work_id in ids:
            status = await sc.assert_contiguous(work_id, STEPS)
            _assert_crashes_counted(sc, status)
        for i, work_id in enumerate(ids[:2]):
            crashed = sc.journal.starts(work_id, i + 2)
            assert crashed[0].action == "exit" and len(crashed) >= 2, crashed


def _assert_crashes_counted(sc: Scenario, status: WorkStatus) -> None:
    """Every crash counted as an attempt of its step; the committed run was the last one."""
    work_id = status.meta.work_id
    by_version: dict[int, list[int]] = defaultdict(list)
    for record in sc.journal.starts(work_id):
        by_version[record.version].append(record.attempt)
    assert status.snapshot is not None
    for entry in status.snapshot.data["trail"]:
        attempts = by_version[entry["v"]]
        assert attempts == sorted(set(attempts)), (work_id, attempts)
        assert entry["attempt"] == attempts[-1], (work_id, entry, attempts)


def _busy_labels(sc: Scenario) -> set[str]:
    """Labels of workers with a step started and not ended."""
    ended = {(r.work_id, r.version, r.attempt, r.worker) for r in sc.journal.ends()}
    return {
        r.label
        for r in sc.journal.starts()
        if (r.work_id, r.version, r.attempt, r.worker) not in ended and r.action != "exit"
    }
