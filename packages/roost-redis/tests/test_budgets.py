"""Budgets on a real server: exceeded mid-run, paused (not failed), raised, never double-charged."""

from __future__ import annotations

import pytest

from roost.redis import RedisSwarm
from roost.runtime import BadInput, ConflictError, WorkState
from roost_testkit.waiting import MeteredEngine


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_a_cost_budget_exceeded_mid_run_pauses_and_a_raise_resumes(
    swarm, running_worker, until
):
    work_id = await swarm.enqueue(
        "metered", {"steps": 6, "charge": 2.5, "fail_times": 1}, budget=7.0
    )
    async with running_worker([MeteredEngine()]):
        await until(lambda: is_state(swarm, work_id, WorkState.PAUSED))
        status = await swarm.status(work_id)
        meta = status.meta
        assert meta.display_state == "budget exceeded" and meta.paused_reason == "budget"
        assert meta.budget is not None and meta.budget.exceeded == "cost"
        # 3 steps of 2.5 reach 7.0; every step failed once after charging: not counted.
        assert meta.budget.steps == 3 and meta.budget.spent == 7.5
        assert status.snapshot.data["done"] == 3 and meta.lease is None
        raised = await swarm.raise_budget(work_id, cost=10)
        assert raised.budget == 17.0
        assert await is_state(swarm, work_id, WorkState.PAUSED)  # raising does not resume
        await swarm.resume(work_id)
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    budget = (await swarm.status(work_id)).meta.budget
    assert budget is not None and budget.steps == 6 and budget.spent == 15.0
    assert budget.exceeded is None


async def test_a_step_budget_and_a_raise_without_a_limit(swarm, running_worker, until):
    capped = await swarm.enqueue("metered", {"steps": 5, "charge": 0}, max_steps=2)
    free = await swarm.enqueue("metered", {"steps": 2, "charge": 0.5})
    async with running_worker([MeteredEngine()]):
        await until(lambda: is_state(swarm, capped, WorkState.PAUSED))
        await until(lambda: is_state(swarm, free, WorkState.DONE))
        meta = (await swarm.status(capped)).meta
        assert meta.budget.exceeded == "steps" and meta.budget.steps == 2
        assert (await swarm.raise_budget(capped, steps=3)).max_steps == 5
        await swarm.resume(capped)
        await until(lambda: is_state(swarm, capped, WorkState.DONE))
    free_budget = (await swarm.status(free)).meta.budget
    assert free_budget is not None and free_budget.spent == 1.0 and free_budget.max_steps is None


async def test_a_runtime_budget(swarm, running_worker, until):
    work_id = await swarm.enqueue("metered", {"steps": 50, "sleep": 0.3}, max_runtime=1.0)
    async with running_worker([MeteredEngine()]):
        await until(lambda: is_state(swarm, work_id, WorkState.PAUSED))
    meta = (await swarm.status(work_id)).meta
    assert meta.budget.exceeded == "runtime" and meta.budget.steps < 50


async def test_budget_input_is_checked(swarm):
    with pytest.raises(BadInput, match="max_steps must be between 1"):
        await swarm.enqueue("metered", {}, max_steps=0)
    with pytest.raises(BadInput, match="budget must be between 0"):
        await swarm.enqueue("metered", {}, budget=float("inf"))
    work_id = await swarm.enqueue("metered", {})
    with pytest.raises(BadInput, match="at least one amount"):
        await swarm.raise_budget(work_id)
    with pytest.raises(BadInput):
        await swarm.raise_budget(work_id, cost=-1)
    await swarm.cancel(work_id)
    with pytest.raises(ConflictError, match="already cancelled"):
        await swarm.raise_budget(work_id, steps=1)
