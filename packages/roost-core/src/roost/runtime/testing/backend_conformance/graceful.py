"""Graceful stop (I9): running steps finish, none starts, leases are released."""

from __future__ import annotations

import time

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["GracefulStopConformance"]


class GracefulStopConformance(ConformanceSuite):
    """A stopping worker finishes or hands back what it runs and takes nothing new."""

    @scenario(Capability.GRACEFUL_STOP)
    async def test_stop_lets_running_steps_commit_and_starts_no_new_ones(
        self, sc: Scenario
    ) -> None:
        """A stopping worker lets its two running steps commit and starts no other.

        It exits, and the items wait, unleased, for the next worker.
        """
        worker = await sc.start_worker(concurrency=2, grace_period=10.0)
        ids = [await sc.enqueue(steps=3, plan={1: ["sleep:1.0"]}) for _ in range(2)]
        await sc.until(lambda: len(sc.journal.starts()) == 2, "both steps start")
        stop_at = time.time()
        took = await worker.stop()
        assert took < 10.0 + self.stop_bound, took
        assert all(r.ts < stop_at for r in sc.journal.starts())
        assert len(sc.journal.ends()) == 2
        for work_id in ids:
            status = await sc.store.status(work_id)
            assert status.meta.lease is None, status.meta
            assert status.meta.state == WorkState.QUEUED, status.meta
            assert status.snapshot is not None
            assert [entry["v"] for entry in status.snapshot.data["trail"]] == [1]
        await sc.start_worker(concurrency=2)
        for work_id in ids:
            await sc.until_state(work_id, WorkState.DONE)
            await sc.assert_contiguous(work_id, steps=3)
        assert [r.attempt for r in sc.journal.starts()] == [1] * 6

    @scenario(Capability.GRACEFUL_STOP)
    async def test_a_step_longer_than_the_grace_period_is_released(self, sc: Scenario) -> None:
        """A step outlasting the grace period is handed back without using an attempt.

        The worker exits within the grace period plus :attr:`stop_bound`; the next worker
        runs the step as its attempt 1.
        """
        grace = 1.0
        worker = await sc.start_worker(concurrency=1, grace_period=grace)
        work_id = await sc.enqueue(steps=1, plan={1: ["gate:go"]})
        await sc.until(lambda: sc.journal.starts(work_id), "the step starts")
        took = await worker.stop()
        assert took < grace + self.stop_bound, took
        status = await sc.store.status(work_id)
        assert status.meta.lease is None, status.meta
        assert status.meta.state == WorkState.QUEUED, status.meta
        assert status.meta.attempts == 0, status.meta
        sc.open_gate("go")
        await sc.start_worker(concurrency=1)
        await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=1)
        assert [(r.label, r.attempt) for r in sc.journal.starts(work_id)] == [
            ("w0", 1),
            ("w1", 1),
        ]
