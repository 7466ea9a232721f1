"""Fencing (I1, I2): one lease holder at a time; a lapsed holder's commit changes nothing."""

from __future__ import annotations

import asyncio

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    WorkerHandle,
    scenario,
)

__all__ = ["FencingConformance"]


async def _take_over(sc: Scenario, work_id: str, ttl: float) -> WorkerHandle:
    """Start a second worker and wait until it runs the item's first step."""
    taker = await sc.start_worker(concurrency=1, lease_ttl=ttl)
    await sc.until(
        lambda: [r for r in sc.journal.starts(work_id, 1) if r.label == taker.label],
        "another worker takes the item over",
    )
    return taker


async def _assert_fenced_then_finished(
    sc: Scenario, work_id: str, taker: WorkerHandle, gate: str
) -> None:
    """Assert the fenced worker committed nothing; then the taker commits every step.

    The taker is held at ``gate`` until the check is done.
    """
    mid = await sc.store.status(work_id)
    assert mid.meta.state == WorkState.RUNNING, mid.meta
    assert mid.meta.version <= 1, mid.meta  # no step committed: at most the init snapshot
    sc.open_gate(gate)
    status = await sc.until_state(work_id, WorkState.DONE)
    await sc.assert_contiguous(work_id, steps=2)
    assert status.snapshot is not None
    authors = [entry["label"] for entry in status.snapshot.data["trail"]]
    assert authors == [taker.label, taker.label]


class FencingConformance(ConformanceSuite):
    """Leases are renewed while a step runs, and fence off a holder whose lease lapsed."""

    @scenario(Capability.FENCING)
    async def test_a_stalled_worker_is_fenced_and_its_late_commit_changes_nothing(
        self, sc: Scenario
    ) -> None:
        """A step stalls its worker's event loop past the TTL; another worker takes over.

        The stalled step returns only once the new holder runs the same step, from the same
        version, so only the lease fence (not the version check) can refuse its commit.
        """
        ttl = self.expiry_ttl
        stalled = await sc.start_worker(concurrency=1, lease_ttl=ttl)
        work_id = await sc.enqueue(steps=2, plan={1: ["block-until:taken", "gate:answered"]})
        await sc.until(lambda: sc.journal.starts(work_id, 1), "the first attempt starts")
        taker = await _take_over(sc, work_id, ttl)
        sc.open_gate("taken")
        await sc.until(lambda: sc.journal.ends(work_id, 1), "the stalled step returns")
        await stalled.stop()  # its late commit has been answered by now
        await _assert_fenced_then_finished(sc, work_id, taker, "answered")
        starts = sc.journal.starts(work_id, 1)
        assert [r.label for r in starts] == [stalled.label, taker.label], starts
        assert [r.label for r in sc.journal.ends(work_id, 1)] == [stalled.label, taker.label]
        if starts[0].epoch is not None and starts[1].epoch is not None:
            assert starts[0].epoch < starts[1].epoch

    @scenario(Capability.FENCING)
    async def test_a_paused_worker_is_fenced_when_it_wakes(self, sc: Scenario) -> None:
        """A worker frozen mid-step (SIGSTOP) past the TTL changes nothing when it resumes."""
        ttl = self.expiry_ttl
        paused = await sc.start_worker(concurrency=1, lease_ttl=ttl)
        work_id = await sc.enqueue(steps=2, plan={1: ["gate:paused", "gate:woken"]})
        await sc.until(lambda: sc.journal.starts(work_id, 1), "the first attempt starts")
        await paused.pause()
        sc.open_gate("paused")  # the frozen step returns as soon as it runs again
        taker = await _take_over(sc, work_id, ttl)
        await paused.resume()
        await paused.stop()  # whatever it does on waking is done once it has exited
        await _assert_fenced_then_finished(sc, work_id, taker, "woken")

    @scenario(Capability.FENCING)
    async def test_a_step_longer_than_the_lease_keeps_its_lease(self, sc: Scenario) -> None:
        """A healthy worker renews its lease through a step two TTLs long.

        The step commits on its first attempt, and the other worker never runs it.
        """
        ttl = self.expiry_ttl
        await asyncio.gather(*(sc.start_worker(concurrency=1, lease_ttl=ttl) for _ in range(2)))
        work_id = await sc.enqueue(steps=2, plan={1: [f"sleep:{2 * ttl}"]})
        await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=2)
        starts = sc.journal.starts(work_id)
        assert [(r.version, r.attempt) for r in starts] == [(1, 1), (2, 1)], starts
