"""Bounded retries (I5): backoff, then dead with the last error; snapshots untouched."""

from __future__ import annotations

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["RetryConformance"]


class RetryConformance(ConformanceSuite):
    """A failing step is retried with backoff a bounded number of times."""

    @scenario(Capability.BOUNDED_RETRIES)
    async def test_a_step_that_always_fails_goes_dead_with_its_last_error(
        self, sc: Scenario
    ) -> None:
        """A step failing every attempt is retried with backoff, then goes dead.

        Three attempts (the worker's ``max_attempts``) with exponential backoff between
        them; the failed attempts leave the snapshot as the step found it.
        """
        base = 0.2
        await sc.start_worker(max_attempts=3, retry_delay=base, retry_max_delay=5.0)
        work_id = await sc.enqueue(steps=3, plan={2: ["raise"] * 5})
        status = await sc.until_state(work_id, WorkState.DEAD)
        starts = sc.journal.starts(work_id, 2)
        assert [r.attempt for r in starts] == [1, 2, 3], starts
        # Backoff before attempt n+1 is between d/2 and d, d = retry_delay * 2**(n-1).
        for n, (a, b) in enumerate(zip(starts, starts[1:], strict=False), start=1):
            assert b.ts - a.ts >= base * 2 ** (n - 1) / 2, (n, b.ts - a.ts)
        assert status.meta.attempts == 3
        error = status.meta.last_error
        assert error is not None
        assert error.type == "RuntimeError" and "failed on purpose" in error.message, error
        assert error.attempt == 3
        assert status.snapshot is not None and status.snapshot.version == 2
        assert [entry["v"] for entry in status.snapshot.data["trail"]] == [1]
        dead = await sc.store.list_work(state=WorkState.DEAD)
        assert [meta.work_id for meta in dead.items] == [work_id]

    @scenario(Capability.BOUNDED_RETRIES)
    async def test_a_transient_failure_is_retried_then_committed_once(self, sc: Scenario) -> None:
        """Two failed attempts, then success: one commit, from the third attempt."""
        await sc.start_worker()
        work_id = await sc.enqueue(steps=2, plan={1: ["raise", "raise"]}, max_attempts=3)
        await sc.until_state(work_id, WorkState.DONE)
        status = await sc.assert_contiguous(work_id, steps=2)
        assert [r.attempt for r in sc.journal.starts(work_id, 1)] == [1, 2, 3]
        assert status.snapshot is not None
        assert status.snapshot.data["trail"][0]["attempt"] == 3

    @scenario(Capability.BOUNDED_RETRIES)
    async def test_a_permanent_error_fails_the_item_at_once(self, sc: Scenario) -> None:
        """``PermanentError`` fails the item on its first attempt, whatever its limit."""
        await sc.start_worker()
        work_id = await sc.enqueue(steps=2, plan={1: ["permanent"] * 5}, max_attempts=5)
        status = await sc.until_state(work_id, WorkState.FAILED)
        assert [r.attempt for r in sc.journal.starts(work_id)] == [1]
        assert status.meta.attempts == 1
        error = status.meta.last_error
        assert error is not None
        assert error.type == "PermanentError" and "cannot succeed" in error.message, error
        assert status.snapshot is None or status.snapshot.data["trail"] == []
