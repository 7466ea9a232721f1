"""Resource claims (I6): all-or-nothing, held only during steps, never by two items."""

from __future__ import annotations

import time
from itertools import combinations

from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["ResourceConformance"]


class ResourceConformance(ConformanceSuite):
    """Steps that name a resource run one at a time, and waiting for one is free."""

    @scenario(Capability.RESOURCES)
    async def test_holders_of_a_resource_never_overlap_and_waiting_uses_no_attempts(
        self, sc: Scenario
    ) -> None:
        """Steps sharing a resource never overlap, and waiting for one uses no attempt.

        Twelve items contend for two resources on two workers; every step runs on its first
        attempt.
        """
        plan = {1: ["sleep:0.05"], 2: ["sleep:0.05"]}
        shapes = [["gpu"]] * 6 + [["gpu", "disk"]] * 3 + [["disk"]] * 3
        ids = [await sc.enqueue(steps=2, plan=plan, resources=res) for res in shapes]
        await sc.start_worker(concurrency=4)
        await sc.start_worker(concurrency=4)
        for work_id in ids:
            await sc.until_state(work_id, WorkState.DONE)
        for work_id in ids:
            await sc.assert_contiguous(work_id, steps=2)
        spans = sc.journal.spans()
        assert len(spans) == 2 * len(ids), spans
        for (a, a_end), (b, b_end) in combinations(spans, 2):
            if set(a.resources) & set(b.resources):
                assert a_end.ts <= b.ts or b_end.ts <= a.ts, (a, b)
        assert {r.attempt for r in sc.journal.starts()} == {1}

    @scenario(Capability.RESOURCES)
    async def test_claims_are_all_or_nothing(self, sc: Scenario) -> None:
        """While A holds gpu, B (gpu + disk) waits without holding disk, so C (disk) runs."""
        await sc.start_worker(concurrency=4)
        a = await sc.enqueue(resources=["gpu"], plan={1: ["gate:release-gpu"]})
        await sc.until(lambda: sc.journal.starts(a), "A takes gpu")
        b = await sc.enqueue(resources=["gpu", "disk"])
        c = await sc.enqueue(resources=["disk"])
        await sc.until_state(c, WorkState.DONE)
        assert not sc.journal.starts(b)
        assert await sc.state(b) in (WorkState.QUEUED, WorkState.WAITING)
        assert await sc.state(a) == WorkState.RUNNING
        sc.open_gate("release-gpu")
        for work_id in (a, b):
            await sc.until_state(work_id, WorkState.DONE)
        assert [r.attempt for r in sc.journal.starts(b)] == [1]

    @scenario(Capability.RESOURCES)
    async def test_claims_are_held_only_during_steps(self, sc: Scenario) -> None:
        """Between two steps of A (a delayed continuation), B takes A's resource and runs."""
        await sc.start_worker(concurrency=2)
        a = await sc.enqueue(steps=2, delay=1.0, resources=["gpu"])
        await sc.until_state(a, WorkState.SCHEDULED)
        b = await sc.enqueue(resources=["gpu"])
        await sc.until_state(b, WorkState.DONE)
        await sc.until_state(a, WorkState.DONE)
        [a1_end] = sc.journal.ends(a, 1)
        [a2_start] = sc.journal.starts(a, 2)
        [b_start] = sc.journal.starts(b)
        [b_end] = sc.journal.ends(b)
        assert a1_end.ts <= b_start.ts and b_end.ts <= a2_start.ts

    @scenario(Capability.RESOURCES)
    async def test_a_dead_holders_claims_expire_with_its_lease(self, sc: Scenario) -> None:
        """A worker dies holding a resource: the claim ends with its lease, not later."""
        ttl = self.expiry_ttl
        victim = await sc.start_worker(concurrency=1, lease_ttl=ttl)
        holder = await sc.enqueue(resources=["gpu"], plan={1: ["sleep:60"]})
        await sc.until(lambda: sc.journal.starts(holder), "the holder takes gpu")
        await sc.start_worker(concurrency=2, lease_ttl=ttl)
        waiter = await sc.enqueue(resources=["gpu"])
        await victim.kill()
        killed = time.time()
        for work_id in (waiter, holder):
            await sc.until_state(work_id, WorkState.DONE)
        [started] = sc.journal.starts(waiter)
        assert killed < started.ts < killed + ttl + self.recovery_bound, started.ts - killed
