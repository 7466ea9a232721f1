"""Operator recovery: retry a dead item, replay a finished one, versions stay contiguous."""

from __future__ import annotations

import pytest

from roost.runtime.errors import ConflictError, NotFound
from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["RetryReplayConformance"]


class RetryReplayConformance(ConformanceSuite):
    """``retry`` and ``replay`` run work again without losing or repeating a version."""

    @scenario(Capability.RETRY_REPLAY)
    async def test_retry_runs_a_dead_item_again_from_its_latest_snapshot(
        self, sc: Scenario
    ) -> None:
        """A dead item, retried once its cause is fixed, finishes.

        The failed step runs again with fresh attempts from the snapshot it died on.
        """
        await sc.start_worker(max_attempts=2)
        work_id = await sc.enqueue(steps=2, plan={2: ["raise-unless:fixed"] * 4})
        await sc.until_state(work_id, WorkState.DEAD)
        with pytest.raises(NotFound):
            await sc.store.retry("no-such-item")
        sc.open_gate("fixed")
        meta = await sc.store.retry(work_id)
        assert meta.state in (WorkState.QUEUED, WorkState.RUNNING, WorkState.DONE), meta
        status = await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=2)
        assert [r.attempt for r in sc.journal.starts(work_id, 2)] == [1, 2, 1]
        assert status.snapshot is not None
        assert status.snapshot.data["trail"][-1]["attempt"] == 1
        with pytest.raises(ConflictError):
            await sc.store.retry(work_id)  # done: nothing to retry

    @scenario(Capability.RETRY_REPLAY)
    async def test_retry_refuses_work_that_is_not_failed_or_dead(self, sc: Scenario) -> None:
        """Queued work cannot be retried (it would run twice); nothing changes."""
        work_id = await sc.enqueue()
        with pytest.raises(ConflictError):
            await sc.store.retry(work_id)
        status = await sc.store.status(work_id)
        assert status.meta.state == WorkState.QUEUED and status.meta.attempts == 0

    @scenario(Capability.RETRY_REPLAY)
    async def test_replay_runs_a_finished_item_again_with_contiguous_versions(
        self, sc: Scenario
    ) -> None:
        """Replay in place continues the versions; replay as new leaves the original alone.

        Replayed from scratch in place, the item's versions go on from where they were;
        replayed as a new item, the copy runs on its own.
        """
        await sc.start_worker()
        work_id = await sc.enqueue(steps=2)
        await sc.until_state(work_id, WorkState.DONE)
        assert await sc.store.replay(work_id, version=0) == work_id
        status = await sc.until_done_at(work_id, 6)
        assert status.snapshot is not None
        assert [entry["v"] for entry in status.snapshot.data["trail"]] == [4, 5]
        assert await sc.committed_versions(work_id) == [1, 2, 3, 4, 5, 6]
        copy = await sc.store.replay(work_id, version=0, as_new=True)
        assert copy != work_id
        await sc.until_state(copy, WorkState.DONE)
        await sc.assert_contiguous(copy, steps=2)
        assert (await sc.store.status(work_id)).meta.version == 6
        unfinished = await sc.enqueue(delay_seconds=60)
        with pytest.raises(ConflictError):
            await sc.store.replay(unfinished)
        with pytest.raises(NotFound):
            await sc.store.replay("no-such-item")
