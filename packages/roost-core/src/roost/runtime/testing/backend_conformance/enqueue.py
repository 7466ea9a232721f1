"""Idempotent enqueue (I8): the same idempotency key always yields the same work id."""

from __future__ import annotations

import asyncio

from roost.runtime.models import WorkItem, WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)
from roost.runtime.testing.chain_engine import CHAIN

__all__ = ["IdempotentEnqueueConformance"]

CLIENTS = 12


class IdempotentEnqueueConformance(ConformanceSuite):
    """Enqueueing twice under one key creates one item, which runs once."""

    @scenario(Capability.IDEMPOTENT_ENQUEUE)
    async def test_the_same_key_yields_the_same_work_id(self, sc: Scenario) -> None:
        """Single and batch enqueues agree on one item per key; the first payload wins."""
        first = await sc.store.enqueue(CHAIN, sc.payload(), idempotency_key="order-1")
        second = {**sc.payload(), "note": "second"}
        assert await sc.store.enqueue(CHAIN, second, idempotency_key="order-1") == first
        batch = [
            WorkItem(engine=CHAIN, payload=sc.payload(), idempotency_key=key)
            for key in ("order-2", "order-2", "order-1")
        ]
        ids = await sc.store.enqueue_many(batch)
        assert ids[0] == ids[1] != first and ids[2] == first, ids
        unkeyed = [await sc.store.enqueue(CHAIN, sc.payload()) for _ in range(2)]
        assert len({*unkeyed, first, ids[0]}) == 4
        status = await sc.store.status(first)
        assert status.item is not None and "note" not in status.item.payload
        assert status.meta.idempotency_key == "order-1"
        await sc.start_worker()
        distinct = [first, ids[0], *unkeyed]
        for work_id in distinct:
            await sc.until_state(work_id, WorkState.DONE)
        listed = await sc.store.list_work(limit=100)
        assert sorted(m.work_id for m in listed.items) == sorted(distinct)
        assert sorted(r.work_id for r in sc.journal.starts()) == sorted(distinct)

    @scenario(Capability.IDEMPOTENT_ENQUEUE)
    async def test_concurrent_clients_agree_on_one_work_id(self, sc: Scenario) -> None:
        """Clients on their own connections race to enqueue one key: one item, run once."""

        async def client(n: int) -> str:
            async with sc.backend.open_store() as store:
                payload = {**sc.payload(), "client": n}
                return await store.enqueue(CHAIN, payload, idempotency_key="order-3")

        ids = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        assert len(set(ids)) == 1, ids
        [work_id] = set(ids)
        listed = await sc.store.list_work(limit=100)
        assert [m.work_id for m in listed.items] == [work_id]
        await sc.start_worker()
        await sc.until_state(work_id, WorkState.DONE)
        assert len(sc.journal.starts(work_id)) == 1
