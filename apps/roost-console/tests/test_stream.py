"""The live stream (server-sent events) on a real uvicorn server, and the formatting helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from roost.console import serve_in_thread
from roost.console.present import ago, describe_event, filesize, redact_url
from roost.runtime import BadInput, RoostSettings, RuntimeEvent

TOKEN = "stream-token-0123456789abcdef"


def read_events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """Parse ``count`` SSE events (id, event, data) from a line iterator."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if not line:
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    raise AssertionError(f"stream ended after {len(events)} events")


@pytest.fixture
def url(settings: RoostSettings) -> Iterator[str]:
    with serve_in_thread(settings) as base:
        yield base


def test_stream_sends_events_as_they_happen(url: str, enqueue: Callable[..., str]) -> None:
    with httpx.Client(timeout=10) as c, c.stream("GET", f"{url}/api/stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "retry: 2000"
        work_id = enqueue(payload={"steps": 1})
        (ev,) = read_events(lines, 1)
    assert ev["event"] == "runtime"
    assert ev["data"]["type"] == "enqueued" and ev["data"]["work_id"] == work_id
    assert ev["id"] == ev["data"]["id"]
    assert ev["data"]["summary"] == "enqueued for engine hashchain"


def test_stream_filters_by_work_id_and_resumes(url: str, enqueue: Callable[..., str]) -> None:
    first = enqueue(payload={"steps": 1})
    second = enqueue(payload={"steps": 1})
    with httpx.Client(timeout=10) as c:
        # after=0-0 replays the stream from the start; only the chosen item's events come
        with c.stream("GET", f"{url}/api/stream?work_id={second}&after=0-0") as r:
            (ev,) = read_events(r.iter_lines(), 1)
        assert ev["data"]["work_id"] == second
        # a reconnecting browser sends Last-Event-ID and gets what came after it
        third = enqueue(payload={"steps": 1})
        with c.stream("GET", f"{url}/api/stream", headers={"last-event-id": ev["id"]}) as r:
            (nxt,) = read_events(r.iter_lines(), 1)
        assert nxt["data"]["work_id"] == third
    assert first != second


def test_stream_rejects_bad_positions(url: str) -> None:
    r = httpx.get(f"{url}/api/stream?after=bogus")
    assert r.status_code == 400 and r.json()["kind"] == "bad_input"
    r = httpx.get(f"{url}/api/stream", headers={"last-event-id": "1-2-3"})
    assert r.status_code == 400


def test_stream_needs_the_token(settings: RoostSettings, enqueue: Callable[..., str]) -> None:
    with serve_in_thread(settings, token=TOKEN) as base:
        assert httpx.get(f"{base}/api/stream").status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        with (
            httpx.Client(timeout=10) as c,
            c.stream("GET", f"{base}/api/stream?after=0-0", headers=auth) as r,
        ):
            assert r.status_code == 200
            work_id = enqueue()
            (ev,) = read_events(r.iter_lines(), 1)
        assert ev["data"]["work_id"] == work_id


def test_serve_in_thread_refuses_public_bind_without_token(settings: RoostSettings) -> None:
    with pytest.raises(BadInput), serve_in_thread(settings, host="0.0.0.0"):
        pass


def test_formatting_helpers() -> None:
    assert ago(None) == "—"
    assert ago(100.0, now=100.4) == "just now"
    assert ago(100.0, now=142.0) == "42 s ago"
    assert ago(100.0, now=100.0 + 3 * 3600 + 5) == "3 h ago"
    assert ago(200.0, now=100.0) == "in 1 min"
    assert filesize(512) == "512 B" and filesize(1500) == "1.5 kB"
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    ev = RuntimeEvent(
        type="retrying",
        work_id="w",
        version=3,
        data={"error": "OSError", "message": "boom", "attempt": 2, "delay": 0.5},
    )
    assert describe_event(ev) == "attempt 2 failed (OSError: boom); retry in 0.5 s"
    odd = RuntimeEvent(type="something_new", work_id="w", data={"a": 1})
    assert describe_event(odd) == "something new: a=1"
    broken = RuntimeEvent(type="progress", work_id="w", data={"fraction": "half"})
    assert describe_event(broken) == "progress "
