"""Operator API: idempotent enqueue, cancel, retry, replay, listing, events."""

from __future__ import annotations

import asyncio

import pytest

from roost.redis import RedisSwarm
from roost.runtime import BadInput, ConflictError, NotFound, RoostSettings, WorkItem, WorkState
from roost_testkit.engines import HashChainEngine, chain_next, chain_seed

from .conftest import registry  # noqa: TID252


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_same_idempotency_key_same_work_id_even_from_concurrent_clients(
    swarm, settings: RoostSettings
):
    first = await swarm.enqueue("hashchain", {"n": 1}, idempotency_key="order-42")
    assert await swarm.enqueue("hashchain", {"n": 2}, idempotency_key="order-42") == first

    async def client() -> str:
        async with RedisSwarm(settings, registry=registry()) as other:
            return await other.enqueue("hashchain", {}, idempotency_key="order-43")

    ids = await asyncio.gather(*(client() for _ in range(20)))
    assert len(set(ids)) == 1
    counts = await swarm.counts()
    assert counts["queued"] == 2
    status = await swarm.status(first)
    assert status.item is not None and status.item.payload == {"n": 1}
    assert status.meta.idempotency_key == "order-42"


async def test_batch_enqueue_returns_ids_in_order(swarm):
    items = [WorkItem(engine="hashchain", payload={"i": i}) for i in range(450)]
    ids = await swarm.enqueue_many(items)
    assert ids == [i.work_id for i in items]
    assert (await swarm.counts())["queued"] == 450
    assert (await swarm.counts())["saq_queued"] == 450


async def test_bad_input_is_refused_before_anything_is_written(swarm):
    with pytest.raises(BadInput, match="payload must be a JSON object"):
        await swarm.enqueue("hashchain", ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="resource"):
        await swarm.enqueue("hashchain", {}, resources=["has space"])
    with pytest.raises(BadInput, match="engine"):
        await swarm.enqueue("bad engine!", {})
    with pytest.raises(BadInput, match="not JSON-serializable"):
        await swarm.enqueue("hashchain", {"x": object()})
    with pytest.raises(BadInput, match="delay"):
        await swarm.enqueue("hashchain", {}, delay_seconds=-1)
    with pytest.raises(NotFound, match="unknown work id"):
        await swarm.status("does-not-exist")
    assert sum((await swarm.counts()).values()) == 0
    assert await swarm.events() == []


async def test_cancel_a_queued_item_and_workers_skip_it(swarm, running_worker, until):
    doomed = await swarm.enqueue("hashchain", {"steps": 1})
    meta = await swarm.cancel(doomed)
    assert meta.state == WorkState.CANCELLED
    other = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([HashChainEngine()]):
        await until(lambda: is_state(swarm, other, WorkState.DONE))
    status = await swarm.status(doomed)
    assert status.meta.state == WorkState.CANCELLED and status.snapshot is None
    with pytest.raises(ConflictError):
        await swarm.cancel(doomed)
    assert (await swarm.counts())["saq_queued"] == 0


async def test_cancel_a_running_item_refuses_its_commit(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"steps": 2, "modes": {"1": "sleep"}, "seconds": 30})
    async with running_worker([HashChainEngine()], lease_ttl=1.0):
        await until(lambda: _running_step(swarm, work_id))
        meta = await swarm.cancel(work_id)
        assert meta.state == WorkState.CANCELLED
        assert meta.lease is not None  # the holder has not noticed yet
        await until(lambda: _released(swarm, work_id))
    status = await swarm.status(work_id)
    assert status.meta.state == WorkState.CANCELLED
    # The refused commit carried the init snapshot and the first step's result: neither landed.
    assert status.meta.version == 0 and status.snapshot is None
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert kinds[-2:] == ["cancelled", "released"]


async def _running_step(swarm: RedisSwarm, work_id: str) -> bool:
    meta = (await swarm.status(work_id)).meta
    return meta.state == WorkState.RUNNING and meta.lease is not None


async def _released(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.lease is None


async def test_retry_needs_a_failed_or_dead_item(swarm):
    work_id = await swarm.enqueue("hashchain", {})
    with pytest.raises(ConflictError, match="only failed or dead"):
        await swarm.retry(work_id)


async def test_replay_in_place_keeps_versions_contiguous(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"steps": 2})
    async with running_worker([HashChainEngine()]):
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
        assert await swarm.replay(work_id, version=0) == work_id
        await until(lambda: _done_at(swarm, work_id, 6))
    status = await swarm.status(work_id)
    # v1-v3 first run; replay from scratch: init again as v4, then steps from v4 and v5
    # (the chain folds the version in, so it differs from the first run's).
    state = chain_seed(work_id)
    for version in (4, 5):
        state = chain_next(state, work_id, version)
    assert status.snapshot is not None and status.snapshot.data["state"] == state
    events = await swarm.events(work_id=work_id)
    versions = [e.version for e in events if e.type in ("committed", "done")]
    assert versions == [1, 2, 3, 4, 5, 6]
    assert "replayed" in [e.type for e in events]


async def _done_at(swarm: RedisSwarm, work_id: str, version: int) -> bool:
    meta = (await swarm.status(work_id)).meta
    return meta.state == WorkState.DONE and meta.version == version


async def test_replay_from_a_kept_version_and_as_a_new_item(settings, running_worker, until):
    kept = settings.model_copy(update={"history": 10})
    async with RedisSwarm(kept, registry=registry()) as swarm:
        work_id = await swarm.enqueue("hashchain", {"steps": 3})
        async with running_worker([HashChainEngine()], history=10):
            await until(lambda: is_state(swarm, work_id, WorkState.DONE))
            versions = [s.version for s in await swarm.snapshot_versions(work_id)]
            assert versions == [4, 3, 2, 1]
            # From version 2 (one step done): two more steps are needed.
            assert await swarm.replay(work_id, version=2) == work_id
            await until(lambda: _done_at(swarm, work_id, 7))
            copy_id = await swarm.replay(work_id, version=3, as_new=True)
            assert copy_id != work_id
            await until(lambda: is_state(swarm, copy_id, WorkState.DONE))
        snapshot = (await swarm.status(work_id)).snapshot
        assert snapshot is not None and snapshot.data["done"] == 3
        copy = await swarm.status(copy_id)
        # Seeded as version 1 with the data of version 3 (two steps done), then one step.
        assert copy.snapshot is not None and copy.snapshot.version == 2
        assert copy.snapshot.data["done"] == 3
        with pytest.raises(NotFound, match="no kept snapshot version 99"):
            await swarm.replay(work_id, version=99)


async def test_replay_refuses_an_unfinished_item(swarm):
    work_id = await swarm.enqueue("hashchain", {})
    with pytest.raises(ConflictError):
        await swarm.replay(work_id)


async def test_list_filters_by_state_and_engine_with_paging(swarm):
    a = [await swarm.enqueue("hashchain", {}) for _ in range(7)]
    b = [await swarm.enqueue("other", {}) for _ in range(5)]
    await swarm.cancel(a[0])
    page = await swarm.list_work(engine="other", limit=3)
    assert len(page.items) == 3 and page.next_cursor
    rest = await swarm.list_work(engine="other", limit=3, cursor=page.next_cursor)
    assert len(rest.items) == 2 and rest.next_cursor is None
    assert {m.work_id for m in page.items + rest.items} == set(b)
    everything = await swarm.list_work(limit=100)
    assert len(everything.items) == 12
    # Most recently updated first (to the millisecond): the cancel happened last.
    times = [m.updated_at for m in everything.items]
    assert times == sorted(times, reverse=True)
    assert a[0] in {m.work_id for m in everything.items if m.updated_at == times[0]}
    cancelled = await swarm.list_work(state=WorkState.CANCELLED)
    assert [m.work_id for m in cancelled.items] == [a[0]]
    with pytest.raises(BadInput, match="cursor"):
        await swarm.list_work(cursor="garbage")


async def test_events_from_a_position_and_following(swarm):
    first = await swarm.enqueue("hashchain", {})
    events = await swarm.events()
    assert [(e.type, e.work_id) for e in events] == [("enqueued", first)]
    mark = events[-1].id
    second = await swarm.enqueue("hashchain", {})
    later = await swarm.events(after=mark)
    assert [e.work_id for e in later] == [second]

    async def follow() -> list[str]:
        seen: list[str] = []
        async for event in swarm.follow_events():
            seen.append(event.work_id)
            if len(seen) == 2:
                return seen
        return seen

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    third = await swarm.enqueue("hashchain", {})
    fourth = await swarm.enqueue("hashchain", {})
    assert await asyncio.wait_for(task, 10) == [third, fourth]


async def test_a_bad_item_late_in_a_large_batch_writes_nothing(settings):
    checking = RedisSwarm(settings, registry=registry(), validate_engines=True)
    checking.registry.engines["hashchain"] = HashChainEngine
    async with checking:
        items = [WorkItem(engine="hashchain") for _ in range(450)]
        items.append(WorkItem(engine="nobody-has-this"))
        with pytest.raises(BadInput, match="unknown engine 'nobody-has-this'"):
            await checking.enqueue_many(items)
        assert sum((await checking.counts()).values()) == 0


async def test_an_items_events_are_found_among_many_others(swarm):
    first = await swarm.enqueue("hashchain", {})
    await swarm.enqueue_many([WorkItem(engine="hashchain") for _ in range(2500)])
    await swarm.cancel(first)
    await swarm.enqueue_many([WorkItem(engine="hashchain") for _ in range(2500)])
    events = await swarm.events(work_id=first)
    assert [e.type for e in events] == ["enqueued", "cancelled"]
    assert [e.type for e in await swarm.events(work_id=first, limit=1)] == ["cancelled"]
    later = await swarm.events(work_id=first, after=events[0].id)
    assert [e.type for e in later] == ["cancelled"]
    assert await swarm.events(work_id=first, after=events[1].id) == []
