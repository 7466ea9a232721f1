"""Recovery (I3, I5): orphaned work resumes elsewhere; a crash counts as an attempt."""

from __future__ import annotations

import time

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    WorkerHandle,
    scenario,
)

__all__ = ["RecoveryConformance"]


class RecoveryConformance(ConformanceSuite):
    """Nothing falls between chairs when a worker dies."""

    @scenario(Capability.RECOVERY)
    async def test_an_orphaned_item_resumes_elsewhere_within_the_lease_ttl(
        self, sc: Scenario
    ) -> None:
        """A step whose worker was killed runs again elsewhere, as its second attempt.

        It starts within the lease TTL plus :attr:`recovery_bound` of the kill.
        """
        ttl = self.expiry_ttl
        victim = await sc.start_worker(concurrency=1, lease_ttl=ttl)
        work_id = await sc.enqueue(steps=2, plan={1: ["sleep:60"]})
        await sc.until(lambda: sc.journal.starts(work_id, 1), "the step starts")
        rescuer = await sc.start_worker(concurrency=1, lease_ttl=ttl)
        await victim.kill()
        killed = time.time()
        status = await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=2)
        first, again = sc.journal.starts(work_id, 1)
        assert (first.label, again.label) == (victim.label, rescuer.label)
        assert again.ts - killed < ttl + self.recovery_bound, again.ts - killed
        assert again.attempt == 2
        assert status.snapshot is not None
        assert status.snapshot.data["trail"][0]["label"] == rescuer.label

    @scenario(Capability.RECOVERY)
    async def test_a_step_that_kills_its_worker_every_time_goes_dead(self, sc: Scenario) -> None:
        """A step that kills its worker on every attempt ends dead.

        Workers are restarted; the crashes use up the item's attempts instead of
        crashing workers forever.
        """
        ttl = self.expiry_ttl
        work_id = await sc.enqueue(steps=2, plan={1: ["exit"] * 5}, max_attempts=2)
        current: list[WorkerHandle] = [await sc.start_worker(concurrency=1, lease_ttl=ttl)]

        async def dead() -> bool:
            if not current[-1].alive:
                assert len(current) < 5, "the item keeps crashing workers"
                current.append(await sc.start_worker(concurrency=1, lease_ttl=ttl))
            return await sc.state(work_id) == WorkState.DEAD

        await sc.until(dead, "the item is dead")
        assert [r.attempt for r in sc.journal.starts(work_id)] == [1, 2]
        status = await sc.store.status(work_id)
        assert status.meta.attempts == 2
        assert status.meta.last_error is not None
        assert status.snapshot is None or status.snapshot.data["trail"] == []
        # Two workers died; the third found the item out of attempts and never ran it.
        assert len(current) == 3 and current[-1].alive
