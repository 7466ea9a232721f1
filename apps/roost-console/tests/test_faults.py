"""A Redis that answers but refuses writes: the console names the real cause.

Out of memory (``maxmemory`` under ``noeviction``) and read-only (the server turned replica
of a primary that does not answer) are outages that pass: actions get 503 with
``kind: redis_unavailable`` and a message naming OOM or READONLY, never "lost the
connection"; once the server serves again the same action works, with no restart.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from starlette.testclient import TestClient

from roost_testkit.redis_faults import out_of_memory, read_only

from .conftest import DEAD, ORIGIN  # noqa: TID252

Post = Callable[..., Any]


FAULTS: dict[str, tuple[Callable[[str], AbstractContextManager[None]], tuple[str, ...]]] = {
    "oom": (out_of_memory, ("OOM", "out of memory")),
    "readonly": (read_only, ("READONLY", "read-only replica")),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_refused_action_names_the_cause(
    fault: str,
    client: TestClient,
    post: Post,
    csrf: Callable[[TestClient], str],
    seed: Callable[..., list[str]],
    redis_url: str,
) -> None:
    refusing, words = FAULTS[fault]
    (work_id,) = seed([DEAD])
    token = csrf(client)
    assert client.get("/api/health").json()["ok"] is True  # connected before the fault
    with refusing(redis_url):
        r = post(client, f"/api/retry/{work_id}")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["kind"] == "redis_unavailable"
        assert all(w in body["error"] for w in words), body["error"]
        assert "lost the connection" not in body["error"]
        assert "127.0.0.1" in body["error"]  # which Redis

        page = client.post(
            f"/actions/retry/{work_id}",
            data={"csrf_token": token, "confirmed": "1"},
            headers=ORIGIN,
        )
        assert page.status_code == 503
        assert "Redis cannot serve the console right now" in page.text
        assert all(w in page.text for w in words)
        assert "lost the connection" not in page.text and "Traceback" not in page.text

        bulk = post(client, "/api/bulk/retry", json={"work_ids": [work_id]})
        assert bulk.status_code == 200
        (result,) = bulk.json()["results"]
        assert result["ok"] is False and result["kind"] == "redis_unavailable"
        assert all(w in result["error"] for w in words), result["error"]

        # Reads still work: the item is as it was.
        assert client.get(f"/api/work/{work_id}").json()["meta"]["state"] == "dead"
    done = post(client, f"/api/retry/{work_id}")
    assert done.status_code == 200, done.text
    assert done.json()["meta"]["state"] == "queued"


def test_an_unreachable_redis_is_still_said_to_be_unreachable(
    client: TestClient, redis_server: Any
) -> None:
    assert client.get("/api/health").status_code == 200
    redis_server.stop()
    r = client.get("/api/counts")
    assert r.status_code == 503
    assert r.json()["kind"] == "redis_unavailable"
    assert r.json()["error"].startswith("lost the connection to Redis")
    page = client.get("/work")
    assert page.status_code == 503 and "Redis is not reachable" in page.text
    assert "Start Redis" in page.text
