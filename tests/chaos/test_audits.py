"""The chaos suite's own audits and probes catch what they are meant to catch."""

from __future__ import annotations

from typing import Any

import pytest

from roost.runtime import RuntimeEvent
from roost_testkit.chaos.contention import overlaps
from roost_testkit.chaos.history import Kill, audit_commits, resume_delays

pytestmark = pytest.mark.chaos


def ev(etype: str, worker: str, version: int | None = None, ts: float = 0.0, **data: Any):
    return RuntimeEvent(type=etype, work_id="w", worker=worker, version=version, ts=ts, data=data)


def run(version: int, worker: str, epoch: int) -> dict[str, Any]:
    return {"phase": "end", "work_id": "w", "version": version, "worker": worker, "epoch": epoch}


def clean_history() -> tuple[list[RuntimeEvent], list[dict[str, Any]]]:
    events = [
        ev("started", "A"),
        ev("committed", "A", 1, next="inline"),
        ev("committed", "A", 2, next="queue"),
        ev("started", "B"),
        ev("done", "B", 3, next="done"),
    ]
    return events, [run(1, "A", 1), run(2, "B", 2)]


def test_a_clean_history_passes():
    events, attempts = clean_history()
    audit = audit_commits(events, attempts, {"w": 3})
    assert audit.problems.summary() == []
    assert (audit.commits, audit.duplicates, audit.holders_checked) == (3, 0, 3)


def test_a_version_committed_twice_is_a_duplicate():
    events, attempts = clean_history()
    events.insert(3, ev("committed", "A", 2, next="queue"))
    audit = audit_commits(events, attempts, {"w": 3})
    assert audit.duplicates == 1
    assert any("duplicate" in p for p in audit.problems.summary())


def test_a_commit_after_the_lease_expired_is_caught():
    events, attempts = clean_history()
    events.insert(2, ev("lease_expired", "C"))
    audit = audit_commits(events, attempts, {"w": 3})
    assert any("non-holder" in p for p in audit.problems.summary())


def test_a_commit_whose_run_is_not_in_the_log_under_that_epoch_is_caught():
    events, _ = clean_history()
    audit = audit_commits(events, [run(1, "A", 1), run(2, "B", 1)], {"w": 3})
    assert any("matching run" in p for p in audit.problems.summary())


def test_a_missing_version_is_caught():
    events, attempts = clean_history()
    audit = audit_commits(events, attempts, {"w": 4})
    assert any("missing commit" in p for p in audit.problems.summary())


def test_overlapping_holders_are_found():
    assert overlaps([(0.0, 1.0, "a"), (1.0, 2.0, "b"), (3.0, 4.0, "c")]) == []
    assert overlaps([(0.0, 2.0, "a"), (1.0, 1.5, "b"), (1.8, 3.0, "c")]) == [("a", "b"), ("a", "c")]


def test_resume_delay_is_measured_from_the_kill_to_the_next_grant():
    events = [
        ev("started", "A", ts=1.0),
        ev("lease_expired", "X", ts=4.0),
        ev("started", "B", ts=4.5),
    ]
    delays, problems = resume_delays(events, [Kill(2.0, "A", ["w"])])
    assert delays == [2.5] and problems.summary() == []
    delays, problems = resume_delays(events[:2], [Kill(2.0, "A", ["w"])])
    assert delays == [] and any("never resumed" in p for p in problems.summary())


async def test_the_i3_probe_sees_an_item_nobody_can_find(redis_url: str, tmp_path):
    from roost.redis import RedisSwarm
    from roost.runtime import RoostSettings
    from roost_testkit.chaos.base import registry
    from roost_testkit.chaos.invariants import unfindable

    settings = RoostSettings.from_env({}, redis_url=redis_url, home=tmp_path / "home")
    async with RedisSwarm(settings, registry=registry()) as swarm:
        work_id = await swarm.enqueue("hashchain", {"steps": 1})
        assert await unfindable(swarm) == (1, [])
        # Lose its delivery: it is queued, and no worker will ever be handed it.
        route = swarm.keys.for_engine("hashchain")
        jobs = await swarm.client.lrange(route.saq_queued, 0, -1)
        await swarm.client.lrem(route.saq_queued, 0, jobs[0])
        seen, problems = await unfindable(swarm)
        assert seen == 1 and problems == [f"{work_id} queued: no delivery with its dispatch token"]


def test_only_crashes_explain_attempts_beyond_the_first():
    from roost_testkit.chaos.contention import attempts_beyond_crashes

    crash = [
        ev("started", "A", 1, attempt=1),
        ev("lease_expired", "X", 1),
        ev("started", "B", 1, attempt=2),
        ev("committed", "B", 2, next="queue"),
        ev("started", "B", 2, attempt=1),
    ]
    assert attempts_beyond_crashes(crash) == []
    waited = [ev("started", "A", 1, attempt=1), ev("started", "B", 1, attempt=2)]
    assert attempts_beyond_crashes(waited) == ["w@v1: attempt 2, not 1"]
