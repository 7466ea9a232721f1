"""Cancellation: a running item's commit is refused; a waiting item never runs again."""

from __future__ import annotations

import asyncio
import time

import pytest

from roost.runtime.errors import ConflictError
from roost.runtime.models import WorkState, WorkStatus
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["CancellationConformance"]


class CancellationConformance(ConformanceSuite):
    """``cancel`` takes effect at once and no later commit undoes it."""

    @scenario(Capability.CANCELLATION)
    async def test_a_running_items_commit_is_refused(self, sc: Scenario) -> None:
        """An item cancelled mid-step stays cancelled: the step's commit is refused.

        The step cannot be interrupted (it blocks its loop), so it returns a result; the
        result is not committed and the lease is released.
        """
        await sc.start_worker(concurrency=1)
        work_id = await sc.enqueue(steps=2, plan={1: ["block-until:cancelled"]})
        await sc.until(lambda: sc.journal.starts(work_id, 1), "the step starts")
        before = (await sc.store.status(work_id)).meta.version
        meta = await sc.store.cancel(work_id)
        assert meta.state == WorkState.CANCELLED
        sc.open_gate("cancelled")
        await sc.until(lambda: sc.journal.ends(work_id, 1), "the step returns")
        released = await sc.until(
            lambda: _unleased(sc, work_id), "the lease is released", timeout=self.lease_ttl * 2
        )
        assert released.meta.state == WorkState.CANCELLED
        assert released.meta.version == before, released.meta
        assert released.snapshot is None or released.snapshot.data["trail"] == []
        with pytest.raises(ConflictError):
            await sc.store.cancel(work_id)

    @scenario(Capability.CANCELLATION)
    async def test_queued_and_scheduled_items_never_run_once_cancelled(self, sc: Scenario) -> None:
        """Items cancelled while queued, due later, or between two steps never run again.

        Other work runs past them.
        """
        queued = await sc.enqueue()
        later = await sc.enqueue(delay_seconds=0.5)
        between = await sc.enqueue(steps=2, delay=0.5)
        for work_id in (queued, later):
            assert (await sc.store.cancel(work_id)).state == WorkState.CANCELLED
        await sc.start_worker()
        scheduled = await sc.until_state(between, WorkState.SCHEDULED)
        assert (await sc.store.cancel(between)).state == WorkState.CANCELLED
        other = await sc.enqueue()
        await sc.until_state(other, WorkState.DONE)
        due = scheduled.meta.due_at
        assert due is not None
        await asyncio.sleep(max(0.0, due + self.delay_bound - time.time()))  # all were due
        for work_id in (queued, later):
            status = await sc.store.status(work_id)
            assert status.meta.state == WorkState.CANCELLED and status.snapshot is None
            assert not sc.journal.starts(work_id)
        status = await sc.store.status(between)
        assert status.meta.state == WorkState.CANCELLED
        assert [r.version for r in sc.journal.starts(between)] == [1]
        assert status.snapshot is not None and status.snapshot.version == 2


async def _unleased(sc: Scenario, work_id: str) -> WorkStatus | None:
    status = await sc.store.status(work_id)
    return status if status.meta.lease is None else None
