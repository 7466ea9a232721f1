"""Numbers and text are checked before any write, on a real worker and server."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from roost.redis import RedisSwarm
from roost.runtime import (
    BadInput,
    Registry,
    RoostSettings,
    Snapshot,
    WorkItem,
    WorkState,
    get_plugin_manager,
)
from roost_testkit.settings import fast_settings


class HugeDelayEngine:
    """Asks for a continuation 1e306 seconds away after its first step."""

    engine_id = "huge-delay"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="one")

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        new = snapshot.model_copy()
        new.step = "two"
        new.next_step_delay_seconds = float(item.payload.get("delay", 1e306))
        return new


class FinishEngine:
    engine_id = "finish"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        return snapshot.model_copy(update={"is_finished": True, "step": "done"})


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    return fast_settings(redis_url, tmp_path / "home", lease_ttl=30.0, grace_period=30.0)


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


async def wait_state(swarm: RedisSwarm, work_id: str, states: set[WorkState]) -> WorkState:
    deadline = time.monotonic() + 20
    while True:
        state = (await swarm.status(work_id)).meta.state
        if state in states or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


async def test_an_engine_delay_out_of_range_fails_the_item_at_once(
    settings: RoostSettings,
) -> None:
    async with RedisSwarm(settings, registry=registry()) as swarm:
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([HugeDelayEngine(), FinishEngine()], install_signal_handlers=False)
        )
        try:
            huge = await swarm.enqueue("huge-delay", {})
            state = await wait_state(swarm, huge, {WorkState.FAILED, WorkState.DEAD})
            status = await swarm.status(huge)
            assert state == WorkState.FAILED, status.meta
            err = status.meta.last_error
            assert err is not None and err.type == "EngineContractError"
            assert err.attempt == 1  # no retries: a contract error is terminal
            assert "next_step_delay_seconds must be between 0 and 365d" in err.message
            assert status.snapshot is not None and status.snapshot.step == "one"
            # The worker goes on: the longest allowed delay is scheduled, other items finish.
            longest = await swarm.enqueue("huge-delay", {"delay": 365 * 86400.0})
            assert await wait_state(swarm, longest, {WorkState.SCHEDULED}) == WorkState.SCHEDULED
            due = (await swarm.status(longest)).meta.due_at
            assert due is not None and due - time.time() > 364 * 86400
            done = await swarm.enqueue("finish", {})
            assert await wait_state(swarm, done, {WorkState.DONE}) == WorkState.DONE
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 30)
            await worker.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload": {"x": math.nan}}, "payload: x is nan"),
        ({"payload": {"x": [math.inf]}}, "payload: x[0] is inf"),
        ({"payload": {"x": "\ud800"}}, "lone surrogate"),
        ({"priority": 10**7}, "priority must be between"),
        ({"max_attempts": 5000}, "max_attempts must be between 1 and 1,000"),
    ],
)
async def test_enqueue_refuses_what_would_not_round_trip(
    settings: RoostSettings, kwargs: dict[str, object], message: str
) -> None:
    async with RedisSwarm(settings, registry=registry()) as swarm:
        payload = kwargs.pop("payload", {})
        with pytest.raises(BadInput, match=message.replace("[", r"\[")):
            await swarm.enqueue("finish", payload, **kwargs)  # type: ignore[arg-type]
        assert sum((await swarm.counts()).values()) == 0
