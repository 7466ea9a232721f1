"""The console's ``/metrics``: the queue's gauges for Prometheus, token-guarded like the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from roost.console import create_app
from roost.runtime import RoostSettings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = "s3cret-token-for-metrics-0123456789"


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_match_counts(
    client: TestClient, seed: Callable[..., list[str]], enqueue: Callable[..., str]
) -> None:
    seed(
        [
            {"engine": "hashchain", "payload": {"steps": 2}},
            {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1},
        ]
    )
    enqueue()
    enqueue()
    client.get("/metrics")  # the first read learns the queue's engines
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    got = parse(r.text)
    counts = client.get("/api/counts").json()
    for state in ("queued", "running", "done", "dead", "scheduled", "retrying", "waiting"):
        assert got[("roost_work_items", (("queue", "roost"), ("state", state)))] == counts[state]
    assert (counts["queued"], counts["done"], counts["dead"]) == (2, 1, 1)
    assert got[("roost_redis_up", ())] == 1
    assert got[("roost_oldest_queued_age_seconds", (("queue", "roost"),))] >= 0
    deliveries = (
        "roost_engine_deliveries",
        (("engine", "hashchain"), ("list", "queued"), ("queue", "roost")),
    )
    assert got[deliveries] == 2
    assert got[("roost_live_workers", (("queue", "roost"),))] == 0


def test_metrics_need_the_token_when_one_is_set(settings: RoostSettings) -> None:
    app = create_app(settings, token=TOKEN, port=8766)
    with TestClient(app, base_url="http://127.0.0.1:8766", follow_redirects=False) as c:
        assert c.get("/metrics").status_code == 401
        ok = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "roost_redis_up 1.0" in ok.text


def test_metrics_say_redis_is_down_instead_of_failing(
    client: TestClient, redis_server: Any
) -> None:
    assert parse(client.get("/metrics").text)[("roost_redis_up", ())] == 1
    redis_server.stop()
    r = client.get("/metrics")
    assert r.status_code == 200
    got = parse(r.text)
    assert got == {("roost_redis_up", ()): 0}
