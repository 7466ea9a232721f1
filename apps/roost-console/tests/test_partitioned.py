"""The console on a namespace of 4 partitions: the same API, whatever partition an item is in.

The items below land in every partition (Roost spreads items without a key in turn);
overview, counts, the work list with its cursor, an item's page and the operator actions
work as on a namespace of one partition.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from roost.redis.placement import partition_of
from roost.runtime import RoostSettings
from roost_testkit.settings import fast_settings

P = 4
DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}
Seeder = Callable[..., list[str]]
Post = Callable[..., Any]


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    return fast_settings(redis_url, tmp_path / "home", history=3, partitions=P)


def test_reads_merge_every_partition(client: TestClient, seed: Seeder) -> None:
    done = seed([{"engine": "hashchain", "payload": {"steps": 1}} for _ in range(7)] + [DEAD])
    assert {partition_of(w, P) for w in done} == set(range(P))
    counts = client.get("/api/counts").json()
    assert counts["done"] == 7 and counts["dead"] == 1
    minutes = client.get("/api/stats?minutes=3").json()["minutes"]
    assert sum(m["counts"]["done"] for m in minutes) == 7
    listed: list[str] = []
    cursor = ""
    while True:
        page = client.get(f"/api/work?limit=3{'&cursor=' + cursor if cursor else ''}").json()
        listed += [w["work_id"] for w in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert sorted(listed) == sorted(done)
    for work_id in done:
        status = client.get(f"/api/work/{work_id}")
        assert status.status_code == 200, status.text
    ov = client.get("/api/overview?minutes=5").json()
    assert ov["counts"]["done"] == 7
    assert {e["work_id"] for e in ov["events"]} <= set(done)


def test_operator_actions_find_the_item(
    client: TestClient, seed: Seeder, enqueue: Callable[..., str], post: Post
) -> None:
    queued: list[str] = []
    while {partition_of(w, P) for w in queued} != set(range(P)):  # one in each partition
        queued.append(enqueue())
        assert len(queued) < 100
    for work_id in queued:
        r = post(client, f"/api/cancel/{work_id}")
        assert r.status_code == 200 and r.json()["meta"]["state"] == "cancelled"
    (dead,) = seed([DEAD])
    r = post(client, f"/api/retry/{dead}")
    assert r.status_code == 200 and r.json()["meta"]["state"] == "queued"
