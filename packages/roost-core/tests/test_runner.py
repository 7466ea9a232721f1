"""The core runner's policy, without a backend: what follows a step, and the retry backoff."""

from __future__ import annotations

import random
from typing import Any

import pytest

from roost.runtime.models import Snapshot, WorkItem
from roost.runtime.observe import Observers
from roost.runtime.runner import Runner, retry_backoff
from roost.runtime.settings import RoostSettings
from roost.runtime.stores import LeaseStore, Next


def settings(**values: Any) -> RoostSettings:
    return RoostSettings.from_env({}, **values)


def runner(**values: Any) -> Runner:
    # The policy never calls the store; a bare object stands in for it.
    store: LeaseStore = object()  # pyright: ignore[reportAssignmentType]
    return Runner(
        store,
        {},
        settings=settings(**values),
        worker_id="w",
        artifacts=lambda: pytest.fail("no step runs here"),
        observers=Observers([]),
        error_json=lambda exc, attempt, now: ("", "", ""),
    )


def snap(**fields: Any) -> Snapshot:
    return Snapshot(work_id="w1", engine="e", **fields)


ITEM = WorkItem(engine="e")


def test_what_follows_a_committed_step() -> None:
    r = runner(inline_steps=2)
    assert r.next_after(snap(is_finished=True), ITEM, 0) == (Next.DONE, 0)
    assert r.next_after(snap(wait_for_signals=["go"]), ITEM, 0) == (Next.AWAIT_SIGNALS, 0)
    assert r.next_after(snap(next_step_delay_seconds=1.5), ITEM, 0) == (Next.DELAY, 1500)
    assert r.next_after(snap(), ITEM, 0) == (Next.INLINE, 0)
    assert r.next_after(snap(), ITEM, 1) == (Next.INLINE, 0)
    # Past ROOST_INLINE_STEPS, with resources to give back, or stopping: back to the queue.
    assert r.next_after(snap(), ITEM, 2) == (Next.QUEUE, 0)
    held = WorkItem(engine="e", resources=["r"])
    assert r.next_after(snap(), held, 0) == (Next.QUEUE, 0)
    r.stopping = True
    assert r.next_after(snap(), ITEM, 0) == (Next.QUEUE, 0)


def test_inline_steps_zero_always_queues() -> None:
    assert runner(inline_steps=0).next_after(snap(), ITEM, 0) == (Next.QUEUE, 0)


@pytest.mark.parametrize(("attempt", "full"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 50.0)])
def test_retry_backoff_doubles_is_capped_and_jittered_in_the_upper_half(
    attempt: int, full: float
) -> None:
    s = settings(retry_delay=2.0, retry_max_delay=50.0)
    rng = random.getstate()
    try:
        random.seed(attempt)
        waits = [retry_backoff(s, attempt) for _ in range(200)]
    finally:
        random.setstate(rng)
    assert all(full * 500 <= w <= full * 1000 for w in waits), (min(waits), max(waits))
    assert max(waits) - min(waits) > full * 100  # jittered, not one fixed wait
