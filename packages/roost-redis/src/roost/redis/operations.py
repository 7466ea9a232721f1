"""Operator writes that take more than one script call: replay, raise a budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.budgets import item_limits
from roost.redis.codec import stored_snapshot
from roost.redis.contract import Code
from roost.redis.enqueueing import enqueue_items
from roost.redis.keys import new_token
from roost.runtime import limits
from roost.runtime.errors import BadInput, ConflictError, NotFound
from roost.runtime.models import Budget, Snapshot, WorkItem, WorkStatus

if TYPE_CHECKING:
    from roost.redis.store import RedisStore

__all__ = ["raise_budget", "replay"]


async def replay(
    store: RedisStore, work_id: str, *, version: int | None = None, as_new: bool = False
) -> str:
    """Run an item again from a snapshot; see :meth:`RedisSwarm.replay`."""
    current = await store.status(work_id)
    source = await _replay_source(store, work_id, current, version)
    if as_new:
        assert current.item is not None
        item = current.item.model_copy(
            update={
                "work_id": WorkItem(engine=current.meta.engine).work_id,
                "idempotency_key": None,
            }
        )
        seed = None
        if source is not None:
            seed = source.model_copy(
                update={
                    "work_id": item.work_id,
                    "version": 1,
                    "is_finished": False,
                    "next_step_delay_seconds": 0.0,
                }
            )
        return (await enqueue_items(store, [item], 0, [seed]))[0]
    if not current.meta.state.is_terminal or current.meta.lease is not None:
        raise ConflictError(
            f"work {work_id} is {current.meta.state}; replay in place needs a finished "
            "item (or use as_new)"
        )
    keys = store.item_keys(work_id).for_queue(current.meta.queue or store.settings.queue)
    keys = keys.for_engine(current.meta.engine)
    snap_json = ""
    if source is not None:
        snap_json = stored_snapshot(
            source.model_copy(
                update={
                    "version": current.meta.version + 1,
                    "is_finished": False,
                    "next_step_delay_seconds": 0.0,
                }
            )
        )
    reply = await store.calls.replay(
        keys,
        work_id=work_id,
        expected_version=current.meta.version,
        snapshot_json=snap_json,
        dispatch=new_token(),
        history=store.settings.history,
        from_version="latest" if version is None else version,
    )
    if reply.code is not Code.OK:
        raise ConflictError(f"work {work_id} changed while replaying; try again")
    return work_id


async def _replay_source(
    store: RedisStore, work_id: str, current: WorkStatus, version: int | None
) -> Snapshot | None:
    if version == 0:
        return None
    if version is None or version == current.meta.version:
        if current.snapshot is None:
            return None
        return current.snapshot
    for snap in await store.snapshot_versions(work_id):
        if snap.version == version:
            return snap
    raise NotFound(
        f"work {work_id} has no kept snapshot version {version} "
        f"(ROOST_HISTORY={store.settings.history} keeps that many earlier versions)"
    )


async def raise_budget(
    store: RedisStore,
    work_id: str,
    *,
    steps: int = 0,
    cost: float = 0.0,
    runtime: float = 0.0,
) -> Budget:
    """Raise an item's limits; see :meth:`RedisSwarm.raise_budget`."""
    if steps < 0 or cost < 0 or runtime < 0 or not (steps or cost or runtime):
        raise BadInput("give at least one amount to add (steps, cost or runtime), each >= 0")
    limits.MAX_STEPS.check(max(steps, 1), "steps to add")
    limits.BUDGET.check(cost, "cost to add")
    limits.MAX_RUNTIME.check(max(runtime, 1.0), "runtime to add")
    status = await store.status(work_id)
    keys = store.item_keys(work_id).for_queue(status.meta.queue or store.settings.queue)
    own = item_limits(status.item, None) if status.item else (-1.0, -1.0, -1.0)
    reply = await store.calls.budget(
        keys,
        work_id=work_id,
        add_steps=steps,
        add_cost=repr(float(cost)),
        add_runtime_ms=round(runtime * 1000),
        own=[repr(v) for v in own],
    )
    if reply.code is Code.GONE:
        raise NotFound(f"unknown work id {work_id!r}")
    if reply.code is Code.TERMINAL:
        raise ConflictError(f"work {work_id} is already {reply.state}; its budget is spent")
    budget = (await store.status(work_id)).meta.budget
    assert budget is not None
    return budget
