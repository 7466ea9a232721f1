"""Durable delays (I7): a delayed continuation is stored, survives workers, fires on time."""

from __future__ import annotations

import time

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["DelayConformance"]

CLOCK_SLACK = 0.05
"""Tolerance between the backend's clock and the workers' (the same host in tests)."""


class DelayConformance(ConformanceSuite):
    """``next_step_delay_seconds`` schedules the next step durably and precisely."""

    @scenario(Capability.DURABLE_DELAYS)
    async def test_a_delayed_continuation_fires_close_to_its_due_time(self, sc: Scenario) -> None:
        """The next step starts at the item's due time, within :attr:`delay_bound`.

        It never starts before the delay has passed since the previous step ended.
        """
        delay = 0.8
        await sc.start_worker()
        work_id = await sc.enqueue(steps=2, delay=delay)
        scheduled = await sc.until_state(work_id, WorkState.SCHEDULED)
        due = scheduled.meta.due_at
        assert due is not None
        await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=2)
        [ended] = sc.journal.ends(work_id, 1)
        [started] = sc.journal.starts(work_id, 2)
        assert started.ts - ended.ts >= delay - CLOCK_SLACK, started.ts - ended.ts
        assert due - CLOCK_SLACK <= started.ts < due + self.delay_bound, started.ts - due

    @scenario(Capability.DURABLE_DELAYS)
    async def test_a_delayed_continuation_survives_a_worker_restart(self, sc: Scenario) -> None:
        """The only worker dies while the item is scheduled; a new worker runs it when due."""
        delay = 1.5
        first = await sc.start_worker()
        work_id = await sc.enqueue(steps=2, delay=delay)
        scheduled = await sc.until_state(work_id, WorkState.SCHEDULED)
        due = scheduled.meta.due_at
        assert due is not None
        await first.kill()
        second = await sc.start_worker()
        ready = time.time()
        status = await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=2)
        [started] = sc.journal.starts(work_id, 2)
        assert started.label == second.label
        assert started.ts >= due - CLOCK_SLACK, started.ts - due
        assert started.ts < max(due, ready) + self.delay_bound, started.ts - max(due, ready)
        assert status.snapshot is not None
        assert [entry["label"] for entry in status.snapshot.data["trail"]] == [
            first.label,
            second.label,
        ]
