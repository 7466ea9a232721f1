"""The work list is ordered by the time it shows, running items included, across pages."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

SLOW = {"mode": "sleep", "seconds": 0.25, "steps": 40}


def test_a_running_item_sorts_by_its_last_update(client: TestClient, background: Any) -> None:
    background.start_worker(concurrency=1)
    running = background.enqueue(SLOW)
    entered = background.wait_state(running, "running").updated_at
    queued = background.enqueue({"steps": 1})  # waits: the one slot is taken
    queued_at = background.meta(queued).updated_at
    assert queued_at > entered
    # the running item commits a step on the same lease: it is now the latest update
    background.wait(running, lambda m: m.updated_at > queued_at and m.state == "running")

    items = client.get("/api/work").json()["items"]
    assert [w["work_id"] for w in items] == [running, queued]
    only_running = client.get("/api/work?state=running").json()["items"]
    assert [w["work_id"] for w in only_running] == [running]
    html = client.get("/work").text
    assert html.index(f'data-work="{running}"') < html.index(f'data-work="{queued}"')


def test_pages_follow_the_shown_time_without_gaps_or_repeats(
    client: TestClient, background: Any
) -> None:
    background.start_worker(concurrency=2)
    runners = [background.enqueue(SLOW) for _ in range(2)]
    for work_id in runners:
        background.wait_state(work_id, "running")
    waiting = [background.enqueue({"steps": 1}) for _ in range(4)]
    for work_id in runners:  # both commit after the others were enqueued
        last = background.meta(waiting[-1]).updated_at
        background.wait(work_id, lambda m, t=last: m.updated_at > t and m.state == "running")

    seen: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(10):
        page = client.get(f"/api/work?limit=2{cursor}").json()
        seen += page["items"]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    ids = [w["work_id"] for w in seen]
    assert sorted(ids) == sorted(runners + waiting) and len(set(ids)) == len(ids)
    assert set(ids[:2]) == set(runners)
    times = [w["updated_at"] for w in seen]
    assert times == sorted(times, reverse=True)
