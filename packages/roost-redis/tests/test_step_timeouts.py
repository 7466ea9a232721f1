"""Step timeouts on a real server: a hanging step is cancelled, fails with StepTimeout, retries."""

from __future__ import annotations

import logging

import pytest

from roost.redis import RedisSwarm
from roost.runtime import BadInput, WorkState
from roost_testkit.engines import HashChainEngine, expected_state


class TimedEngine(HashChainEngine):
    """The hash chain with an engine-wide step timeout."""

    step_timeout = 0.3


async def done(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.state == WorkState.DONE


async def test_a_hanging_step_is_cancelled_and_retried(swarm, running_worker, until):
    work_id = await swarm.enqueue(
        "hashchain",
        {"steps": 2, "modes": {"1": "sleep"}, "seconds": 3600, "fail_times": 1},
        step_timeout=0.3,
    )
    async with running_worker([HashChainEngine()]):
        await until(lambda: done(swarm, work_id))
    status = await swarm.status(work_id)
    err = status.meta.last_error
    assert err is not None and err.type == "StepTimeout" and err.attempt == 1
    assert "ran longer than its step timeout (300ms); cancelled" in err.message
    assert status.snapshot is not None
    assert status.snapshot.data["state"] == expected_state(work_id, 2)  # each step once
    types = [e.type for e in await swarm.events(work_id=work_id)]
    assert types.count("retrying") == 1


async def test_the_engine_default_applies_and_an_item_can_raise_it(swarm, running_worker, until):
    short = await swarm.enqueue(
        "hashchain", {"steps": 1, "mode": "sleep", "seconds": 1.0, "fail_times": 1}
    )
    longer = await swarm.enqueue(
        "hashchain",
        {"steps": 1, "mode": "sleep", "seconds": 1.0, "fail_times": 1},
        step_timeout=30,
    )
    async with running_worker([TimedEngine()]):
        await until(lambda: done(swarm, short))
        await until(lambda: done(swarm, longer))
    assert (await swarm.status(short)).meta.last_error.type == "StepTimeout"
    assert (await swarm.status(longer)).meta.last_error is None


async def test_a_step_that_ignores_cancellation_is_abandoned_and_its_lease_let_go(
    swarm, running_worker, until, caplog
):
    caplog.set_level(logging.ERROR, logger="roost.worker")
    work_id = await swarm.enqueue(
        "hashchain",
        {"steps": 1, "mode": "swallow", "seconds": 8, "fail_times": 1},
        step_timeout=0.3,
    )
    async with running_worker([HashChainEngine()]):
        # The retry runs and commits while the first attempt still swallows its cancels.
        await until(lambda: done(swarm, work_id), timeout=7.0)
        status = await swarm.status(work_id)
        assert status.meta.lease is None
    err = status.meta.last_error
    assert err is not None and err.type == "StepTimeout"
    assert "did not stop when cancelled within 2s; abandoned" in err.message
    assert any("did not stop when cancelled" in r.getMessage() for r in caplog.records)


async def test_a_bad_step_timeout_is_refused(swarm):
    for bad in (0, -1, float("nan"), 86401):
        with pytest.raises(BadInput, match="step_timeout must be between 1ms and 1d"):
            await swarm.enqueue("hashchain", {}, step_timeout=bad)
    assert sum((await swarm.counts()).values()) == 0
