"""Signals and approvals on a real server: kept in order, consumed once, by the right commit."""

from __future__ import annotations

import asyncio

import pytest

from roost.redis import RedisSwarm
from roost.runtime import BadInput, NotFound, SignalRefused, WorkState
from roost.runtime.limits import MAX_SIGNAL_PAYLOAD
from roost_testkit.waiting import SignalCollector


async def state_of(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


def received(status) -> list[tuple[str, dict]]:
    assert status.snapshot is not None
    return [(r["name"], r["payload"]) for r in status.snapshot.data["received"]]


async def test_a_signal_sent_during_the_wait_wakes_the_item(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"]})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.AWAITING))
        status = await swarm.status(work_id)
        assert status.meta.waiting_for == ["go"] and status.meta.lease is None
        sent = await swarm.signal(work_id, "go", {"n": 1}, sender="tester")
        assert sent.woke
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    assert received(status) == [("go", {"n": 1})]
    assert status.snapshot.data["received"][0]["sender"] == "tester"
    assert status.snapshot.data["timeouts"] == 0
    assert await swarm.pending_signals(work_id) == []  # consumed by the commit


async def test_a_signal_sent_before_the_wait_is_kept_in_order(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"]})
    # Sent while the item is still queued: nothing waits for them yet.
    for n in range(3):
        sent = await swarm.signal(work_id, "go", {"n": n})
        assert not sent.woke
    await swarm.signal(work_id, "other", {"n": 99})
    assert [s.payload["n"] for s in await swarm.pending_signals(work_id)] == [0, 1, 2, 99]
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    # The step after the wait received all three, in the order they were sent.
    assert received(status) == [("go", {"n": 0}), ("go", {"n": 1}), ("go", {"n": 2})]
    # The signal nobody waited for stays, unconsumed.
    assert [s.name for s in await swarm.pending_signals(work_id)] == ["other"]


async def test_a_signal_after_the_wait_ended_is_kept_for_the_next_wait(
    swarm, running_worker, until
):
    work_id = await swarm.enqueue("collector", {"names": ["go"], "rounds": 2, "sleep": 0.5})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.AWAITING))
        await swarm.signal(work_id, "go", {"n": 1})
        await until(lambda: _is(swarm, work_id, WorkState.RUNNING))
        # The step after the first wait is running: this one is for the second wait.
        assert not (await swarm.signal(work_id, "go", {"n": 2})).woke
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    assert received(await swarm.status(work_id)) == [("go", {"n": 1}), ("go", {"n": 2})]
    assert await swarm.pending_signals(work_id) == []


async def test_two_signals_racing_one_wait_are_each_consumed_once(swarm, running_worker, until):
    ids = [await swarm.enqueue("collector", {"names": ["a", "b"]}) for _ in range(10)]
    async with running_worker([SignalCollector()]):
        for work_id in ids:
            await until(lambda w=work_id: _is(swarm, w, WorkState.AWAITING))
        sent = await asyncio.gather(
            *(swarm.signal(w, name, {"w": w}) for w in ids for name in ("a", "b"))
        )
        for work_id in ids:
            await until(lambda w=work_id: _is(swarm, w, WorkState.DONE))
    assert sum(s.woke for s in sent) == len(ids)  # exactly one of each pair woke its item
    for work_id in ids:
        status = await swarm.status(work_id)
        got = [r["id"] for r in status.snapshot.data["received"]]
        left = [s.id for s in await swarm.pending_signals(work_id)]
        mine = sorted(s.signal_id for s in sent if s.work_id == work_id)
        # Each signal either reached the step (once) or is still kept: none lost or doubled.
        assert got and sorted(got + left) == mine and not set(got) & set(left)


async def test_a_step_that_fails_leaves_its_signals_for_the_retry(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"], "fail_times": 2})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.AWAITING))
        await swarm.signal(work_id, "go", {"n": 7})
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    assert status.meta.last_error is not None  # two attempts failed first
    assert received(status) == [("go", {"n": 7})]
    assert await swarm.pending_signals(work_id) == []


async def test_a_wait_times_out_with_a_marker(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"names": ["go"], "timeout": 0.3})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    status = await swarm.status(work_id)
    assert status.snapshot.data["timeouts"] == 1 and received(status) == []


async def test_approval_and_rejection_reach_the_next_step(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"approval": "ship it?", "rounds": 2})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.AWAITING))
        meta = (await swarm.status(work_id)).meta
        assert meta.needs_approval and meta.display_state == "needs approval"
        assert meta.approval is not None and meta.approval.message == "ship it?"
        assert meta.approval.details == {"round": 1}
        await swarm.approve(work_id, note="looks good", sender="alice")
        await until(lambda: _round_waits(swarm, work_id, 2))
        await swarm.reject(work_id, note="too costly")
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    decisions = (await swarm.status(work_id)).snapshot.data["decisions"]
    assert decisions == [
        {"decision": "approved", "note": "looks good", "sender": "alice"},
        {"decision": "rejected", "note": "too costly", "sender": "api"},
    ]
    assert not (await swarm.status(work_id)).meta.needs_approval


async def test_signals_to_finished_cancelled_or_unknown_items_are_refused(swarm):
    with pytest.raises(NotFound, match="unknown work id"):
        await swarm.signal("nope", "go")
    work_id = await swarm.enqueue("collector", {})
    await swarm.cancel(work_id)
    with pytest.raises(SignalRefused, match="is cancelled; it takes no more signals"):
        await swarm.signal(work_id, "go")
    with pytest.raises(SignalRefused):
        await swarm.approve(work_id)
    other = await swarm.enqueue("collector", {})
    with pytest.raises(BadInput, match="invalid signal name"):
        await swarm.signal(other, "has space")
    with pytest.raises(BadInput, match="at most"):
        await swarm.signal(other, "go", {"x": "y" * MAX_SIGNAL_PAYLOAD})
    with pytest.raises(BadInput, match="not JSON"):
        await swarm.signal(other, "go", {"x": float("nan")})
    assert await swarm.pending_signals(other) == []
    assert await swarm.pending_signals(work_id) == []


async def test_cancel_an_awaiting_item(swarm, running_worker, until):
    work_id = await swarm.enqueue("collector", {"timeout": 60})
    async with running_worker([SignalCollector()]):
        await until(lambda: _is(swarm, work_id, WorkState.AWAITING))
        assert (await swarm.cancel(work_id)).state == WorkState.CANCELLED
        assert await swarm.client.zscore(swarm.keys.due, work_id) is None


async def _is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return await state_of(swarm, work_id) == state


async def _round_waits(swarm: RedisSwarm, work_id: str, n: int) -> bool:
    status = await swarm.status(work_id)
    return status.meta.state == WorkState.AWAITING and status.meta.step == f"wait-{n}"
