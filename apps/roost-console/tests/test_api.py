"""The JSON API: the shapes the pages and scripts rely on, and the operator actions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from roost.console import worklist
from roost.redis import RedisSwarm
from roost.runtime import RoostSettings, WorkItem

DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}
Seeder = Callable[..., list[str]]
Post = Callable[..., Any]


def test_overview_shape(client: TestClient, seed: Seeder, enqueue: Callable[..., str]) -> None:
    seed([{"engine": "hashchain", "payload": {"steps": 3}}])
    queued = enqueue()
    ov = client.get("/api/overview?minutes=5").json()
    assert ov["counts"]["done"] == 1 and ov["counts"]["queued"] == 1
    assert [m["start"] for m in ov["throughput"]] == sorted(m["start"] for m in ov["throughput"])
    assert len(ov["throughput"]) == 5
    assert (
        ov["throughput"][-1]["counts"]["committed"] + ov["throughput"][-2]["counts"]["committed"]
        >= 4
    )  # init + 3 steps, in this minute or the one before
    assert [w["work_id"] for w in ov["live"]["queued"]] == [queued]
    assert set(ov["live"]) == {"running", "awaiting", "waiting", "retrying", "scheduled", "queued"}
    assert ov["events"][0]["type"] == "enqueued"  # newest first
    assert all("summary" in e for e in ov["events"])
    assert ov["workers"] == []  # the seeding worker has stopped


def test_counts_stats_workers(client: TestClient, seed: Seeder) -> None:
    seed([DEAD])
    assert client.get("/api/counts").json()["dead"] == 1
    minutes = client.get("/api/stats?minutes=3").json()["minutes"]
    assert len(minutes) == 3 and sum(m["counts"]["dead"] for m in minutes) == 1
    assert client.get("/api/workers").json() == {"workers": [], "unserved": {}}
    assert client.get("/api/stats?minutes=0").status_code == 400


def test_work_list_and_search(client: TestClient, seed: Seeder) -> None:
    done, dead = seed([{"engine": "hashchain", "payload": {"steps": 1}}, DEAD])
    page = client.get("/api/work").json()
    assert {w["work_id"] for w in page["items"]} == {done, dead}
    assert page["next_cursor"] is None and page["scanned"] is None
    only = client.get("/api/work?state=dead").json()["items"]
    assert [w["work_id"] for w in only] == [dead]
    found = client.get(f"/api/work?q={dead[5:12]}").json()
    assert [w["work_id"] for w in found["items"]] == [dead]
    assert found["scanned"] == 2 and found["query"] == dead[5:12]
    exact = client.get(f"/api/work?q={done}&state=done").json()
    assert [w["work_id"] for w in exact["items"]] == [done]
    assert client.get(f"/api/work?q={done}&state=dead").json()["items"] == []


def test_search_is_bounded_and_resumable(client: TestClient, settings: RoostSettings) -> None:
    async def fill() -> list[str]:
        async with RedisSwarm(settings) as swarm:
            return await swarm.enqueue_many(
                [WorkItem(engine="hashchain") for _ in range(worklist.SCAN_BUDGET + 700)]
            )

    ids = asyncio.run(fill())
    oldest = ids[0]  # enqueued first: updated longest ago, at the end of the listing
    first = client.get(f"/api/work?q={oldest[4:14]}").json()
    assert first["scanned"] == worklist.SCAN_BUDGET
    assert first["items"] == [] and first["next_cursor"]
    more = client.get(f"/api/work?q={oldest[4:14]}&cursor={first['next_cursor']}").json()
    assert [w["work_id"] for w in more["items"]] == [oldest]
    assert more["next_cursor"] is None
    # an exact id is found at once, however old
    assert client.get(f"/api/work?q={oldest}").json()["items"][0]["work_id"] == oldest


def test_status_versions_and_events(wclient: TestClient, world: Any) -> None:
    client, work_id = wclient, world.done
    status = client.get(f"/api/work/{work_id}").json()
    assert set(status) == {"meta", "snapshot", "item", "unserved"}
    assert status["unserved"] == {}  # done: no worker is awaited
    assert status["meta"]["state"] == "done" and status["snapshot"]["version"] == 4
    versions = client.get(f"/api/versions/{work_id}").json()["versions"]
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    events = client.get(f"/api/events?work_id={work_id}").json()["events"]
    types = [e["type"] for e in events]
    assert types == ["enqueued", "started", "committed", "committed", "committed", "done"]
    assert events[2]["summary"].startswith("saved v1")
    later = client.get(f"/api/events?work_id={work_id}&after={events[3]['id']}").json()["events"]
    assert [e["id"] for e in later] == [e["id"] for e in events[4:]]


def test_api_errors_are_json_in_words(client: TestClient) -> None:
    cases = {
        "/api/work/nope": (404, "not_found"),
        "/api/versions/nope": (404, "not_found"),
        "/api/work?state=bogus": (400, "bad_input"),
        "/api/events?after=zzz": (400, "bad_input"),
        "/api/events?limit=100000": (400, "bad_input"),
        "/api/nothing-here": (404, "http"),
        "/api/artifacts/xyz": (400, "bad_input"),
    }
    for path, (status, kind) in cases.items():
        r = client.get(path)
        assert r.status_code == status, path
        body = r.json()
        assert body["kind"] == kind and body["error"], path


def test_retry_moves_dead_work_to_queued(client: TestClient, seed: Seeder, post: Post) -> None:
    (work_id,) = seed([DEAD])
    r = post(client, f"/api/retry/{work_id}")
    assert r.status_code == 200
    assert r.json()["meta"]["state"] == "queued" and r.json()["meta"]["attempts"] == 0
    again = post(client, f"/api/retry/{work_id}")
    assert again.status_code == 409
    assert "only failed or dead work can be retried" in again.json()["error"]


def test_cancel_queued_work(client: TestClient, enqueue: Callable[..., str], post: Post) -> None:
    work_id = enqueue()
    r = post(client, f"/api/cancel/{work_id}")
    assert r.status_code == 200 and r.json()["meta"]["state"] == "cancelled"
    assert post(client, f"/api/cancel/{work_id}").status_code == 409
    assert post(client, "/api/cancel/unknown-id").status_code == 404


@pytest.mark.parametrize(
    ("body", "expect_version"),
    [({}, 5), ({"version": 2}, 5), ({"version": "latest"}, 5), ({"version": 0}, 4)],
)
def test_replay_in_place(
    client: TestClient, seed: Seeder, post: Post, body: dict[str, Any], expect_version: int
) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 3}}])
    r = post(client, f"/api/replay/{work_id}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["work_id"] == work_id
    meta = r.json()["meta"]
    assert meta["state"] == "queued" and meta["version"] == expect_version


def test_replay_as_new_and_errors(client: TestClient, seed: Seeder, post: Post) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 2}}])
    r = post(client, f"/api/replay/{work_id}", json={"as_new": True, "version": 2})
    assert r.status_code == 200
    new_id = r.json()["work_id"]
    assert new_id != work_id and r.json()["meta"]["state"] == "queued"
    missing = post(client, f"/api/replay/{work_id}", json={"version": 99})
    assert missing.status_code == 404 and "no kept snapshot version 99" in missing.json()["error"]
    bad = post(client, f"/api/replay/{work_id}", json={"version": "x"})
    assert bad.status_code == 400
    unfinished = post(client, f"/api/replay/{new_id}", json={})
    assert unfinished.status_code == 409
    form = post(client, f"/api/replay/{work_id}", data={"version": "1", "as_new": "1"})
    assert form.status_code == 200 and form.json()["work_id"] != work_id


def test_artifact_description(wclient: TestClient, world: Any) -> None:
    client, work_id = wclient, world.artifacts
    arts = client.get(f"/api/work/{work_id}").json()["snapshot"]["artifacts"]
    json_art = next(a for a in arts if a["kind"] == "json")
    desc = client.get(f"/api/artifacts/{json_art['artifact_id']}").json()
    assert desc["kind"] == "json" and desc["metadata"] == {"verdict": "reachable"}
    assert desc["size"] == json_art["size"] > 0


def test_health(client: TestClient, settings: RoostSettings) -> None:
    h = client.get("/api/health").json()
    assert h["ok"] is True and h["namespace"] == settings.namespace
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", h["redis"])


def test_bulk_retry_reports_each_item(client: TestClient, seed: Seeder, post: Post) -> None:
    dead1, dead2, done = seed([DEAD, DEAD, {"engine": "hashchain", "payload": {"steps": 1}}])
    r = post(client, "/api/bulk/retry", json={"work_ids": [dead1, done, "no-such-item", dead2]})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["action"] == "retry" and report["more"] is False
    by_id = {x["work_id"]: x for x in report["results"]}
    assert [x["work_id"] for x in report["results"]] == [dead1, done, "no-such-item", dead2]
    assert by_id[dead1]["ok"] and by_id[dead1]["state"] == "queued"
    assert by_id[dead2]["ok"] and by_id[dead2]["state"] == "queued"
    assert not by_id[done]["ok"] and by_id[done]["kind"] == "conflict"
    assert "only failed or dead work can be retried" in by_id[done]["error"]
    assert by_id["no-such-item"]["kind"] == "not_found"
    assert client.get("/api/counts").json()["dead"] == 0


def test_bulk_retry_of_every_dead_item_of_an_engine(
    client: TestClient, seed: Seeder, post: Post
) -> None:
    dead = seed([DEAD, DEAD, DEAD])
    other = post(client, "/api/bulk/retry", json={"state": "dead", "engine": "other"})
    assert other.status_code == 400 and "no dead work of engine other" in other.json()["error"]
    wrong = post(client, "/api/bulk/retry", json={"state": "done"})
    assert wrong.status_code == 400 and "dead or failed" in wrong.json()["error"]
    r = post(client, "/api/bulk/retry", data={"state": "dead", "engine": "hashchain"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert sorted(x["work_id"] for x in results) == sorted(dead)
    assert all(x["ok"] and x["state"] == "queued" for x in results)


def test_bulk_cancel_of_a_selection(
    client: TestClient, enqueue: Callable[..., str], post: Post
) -> None:
    a, b, keep = enqueue(), enqueue(), enqueue()
    form = urlencode([("work_id", a), ("work_id", b), ("work_id", a)])
    ctype = {"content-type": "application/x-www-form-urlencoded"}
    r = post(client, "/api/bulk/cancel", content=form, headers=ctype)
    assert r.status_code == 200
    assert [(x["work_id"], x["state"]) for x in r.json()["results"]] == [
        (a, "cancelled"),
        (b, "cancelled"),
    ]
    assert client.get(f"/api/work/{keep}").json()["meta"]["state"] == "queued"


def test_bulk_actions_need_csrf_and_valid_input(
    client: TestClient, enqueue: Callable[..., str], post: Post
) -> None:
    work_id = enqueue()
    r = client.post(
        "/api/bulk/cancel",
        json={"work_ids": [work_id]},
        headers={"origin": "http://127.0.0.1:8766"},
    )
    assert r.status_code == 403
    assert client.get(f"/api/work/{work_id}").json()["meta"]["state"] == "queued"
    assert post(client, "/api/bulk/replay", json={"work_ids": [work_id]}).status_code == 400
    assert post(client, "/api/bulk/cancel", json={}).status_code == 400
    assert post(client, "/api/bulk/cancel", json={"state": "bogus"}).status_code == 400
    too_many = post(client, "/api/bulk/cancel", json={"work_ids": [f"w{i}" for i in range(1001)]})
    assert too_many.status_code in (400, 413)


def test_an_engine_filter_reads_one_stretch_per_page(
    client: TestClient, settings: RoostSettings
) -> None:
    async def fill() -> list[str]:
        async with RedisSwarm(settings) as swarm:
            return await swarm.enqueue_many(
                [WorkItem(engine="hashchain") for _ in range(worklist.SCAN_BUDGET + 700)]
            )

    asyncio.run(fill())
    first = client.get("/api/work?engine=absent").json()
    assert first["items"] == [] and first["next_cursor"]  # one stretch read, more to go
    rest = client.get(f"/api/work?engine=absent&cursor={first['next_cursor']}").json()
    assert rest["items"] == [] and rest["next_cursor"] is None
