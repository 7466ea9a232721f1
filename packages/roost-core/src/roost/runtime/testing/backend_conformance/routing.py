"""Per-engine delivery: an item only ever reaches a worker that runs its engine."""

from __future__ import annotations

import asyncio

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)
from roost.runtime.testing.chain_engine import CHAIN, CHAIN_OTHER

__all__ = ["EngineRoutingConformance"]


class EngineRoutingConformance(ConformanceSuite):
    """Mixed fleets: work waits for a worker of its engine instead of failing elsewhere."""

    @scenario(Capability.ENGINE_ROUTING)
    async def test_an_item_only_reaches_a_worker_that_runs_its_engine(self, sc: Scenario) -> None:
        """Items of an engine no live worker runs wait, untouched, for a worker of it.

        They stay queued with no attempt and no error while the other engine's items
        finish; a worker for their engine then runs them.
        """
        mine = await sc.start_worker([CHAIN])
        ours: list[str] = []
        theirs: list[str] = []
        for _ in range(4):
            ours.append(await sc.enqueue(engine=CHAIN))
            theirs.append(await sc.enqueue(engine=CHAIN_OTHER))
        for work_id in ours:
            await sc.until_state(work_id, WorkState.DONE)
        await asyncio.sleep(0.5)  # time for a wrong delivery to show
        for work_id in theirs:
            meta = (await sc.store.status(work_id)).meta
            assert meta.state == WorkState.QUEUED, meta
            assert meta.attempts == 0 and meta.last_error is None, meta
        assert not [r for r in sc.journal.starts() if r.engine == CHAIN_OTHER]
        other = await sc.start_worker([CHAIN_OTHER])
        for work_id in theirs:
            await sc.until_state(work_id, WorkState.DONE)
        for record in sc.journal.starts():
            expected = mine.label if record.engine == CHAIN else other.label
            assert record.label == expected, record
