"""Pause and resume on a real server: no new step while paused, back where it was after."""

from __future__ import annotations

import pytest

from roost.redis import RedisSwarm
from roost.runtime import ConflictError, NotFound, WorkState
from roost_testkit.engines import HashChainEngine, expected_state
from roost_testkit.waiting import SignalCollector


async def state_of(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return await state_of(swarm, work_id) == state


async def test_pause_during_a_step_lets_it_commit_and_holds_the_next(swarm, running_worker, until):
    work_id = await swarm.enqueue(
        "hashchain", {"steps": 3, "modes": {"1": "sleep"}, "seconds": 1.0}
    )
    async with running_worker([HashChainEngine()]):
        await until(lambda: is_state(swarm, work_id, WorkState.RUNNING))
        meta = await swarm.pause(work_id)
        assert meta.state == WorkState.RUNNING and meta.paused_reason == "operator"
        with pytest.raises(ConflictError, match="already paused"):
            await swarm.pause(work_id)
        await until(lambda: is_state(swarm, work_id, WorkState.PAUSED))
        status = await swarm.status(work_id)
        # The running step committed (v2); its continuation waits, with no lease.
        assert status.meta.version == 2 and status.meta.lease is None
        assert await swarm.client.zscore(swarm.keys.due, work_id) is None
        paused = [e.data for e in await swarm.events(work_id=work_id) if e.type == "paused"]
        assert paused == [{"reason": "operator", "previous": "running"}]
        resumed = await swarm.resume(work_id)
        assert resumed.state in (WorkState.QUEUED, WorkState.RUNNING, WorkState.DONE)
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    assert status.snapshot.data["state"] == expected_state(work_id, 3)
    types = [e.type for e in await swarm.events(work_id=work_id)]
    assert types.count("paused") == 1 and types.count("resumed") == 1


async def test_a_paused_item_keeps_its_place_and_runs_nothing(swarm, running_worker, until):
    delayed = await swarm.enqueue("hashchain", {"steps": 1}, delay_seconds=0.5)
    queued = await swarm.enqueue("hashchain", {"steps": 1})
    for work_id in (delayed, queued):
        assert (await swarm.pause(work_id)).state == WorkState.PAUSED
    before = await swarm.client.hget(swarm.keys.meta(delayed), "pdue")
    other = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([HashChainEngine()]):
        await until(lambda: is_state(swarm, other, WorkState.DONE))
        assert await state_of(swarm, delayed) == WorkState.PAUSED
        assert await state_of(swarm, queued) == WorkState.PAUSED
        assert (await swarm.resume(delayed)).state == WorkState.SCHEDULED
        assert (await swarm.status(delayed)).meta.due_at == int(before) / 1000
        await swarm.resume(queued)
        await until(lambda: is_state(swarm, delayed, WorkState.DONE))
        await until(lambda: is_state(swarm, queued, WorkState.DONE))


async def test_pause_an_awaiting_item_and_a_signal_meanwhile(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"]})
    async with running_worker([SignalCollector()]):
        await until(lambda: is_state(swarm, work_id, WorkState.AWAITING))
        await swarm.pause(work_id)
        sent = await swarm.signal(work_id, "go", {"n": 1})
        assert not sent.woke and await state_of(swarm, work_id) == WorkState.PAUSED
        await swarm.resume(work_id)  # the signal arrived meanwhile: it goes on at once
        await until(lambda: is_state(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    assert [r["payload"] for r in status.snapshot.data["received"]] == [{"n": 1}]


async def test_resume_without_a_new_signal_goes_back_to_awaiting(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"]})
    async with running_worker([SignalCollector()]):
        await until(lambda: is_state(swarm, work_id, WorkState.AWAITING))
        await swarm.pause(work_id)
        assert (await swarm.resume(work_id)).state == WorkState.AWAITING
        assert (await swarm.status(work_id)).meta.waiting_for == ["go"]


async def test_pause_and_resume_refuse_what_they_cannot_do(swarm):
    with pytest.raises(NotFound):
        await swarm.pause("nope")
    with pytest.raises(NotFound):
        await swarm.resume("nope")
    work_id = await swarm.enqueue("hashchain", {})
    with pytest.raises(ConflictError, match="not paused"):
        await swarm.resume(work_id)
    await swarm.cancel(work_id)
    with pytest.raises(ConflictError, match="already cancelled"):
        await swarm.pause(work_id)
