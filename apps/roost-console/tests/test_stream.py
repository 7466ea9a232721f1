"""The live stream (server-sent events) on a real uvicorn server, and the formatting helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from roost.console import serve_in_thread
from roost.console.present import ago, describe_event, filesize
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


# -- one reader for every stream ------------------------------------------------------------


def _xread_clients(redis_url: str) -> int:
    """Connections of the test's server blocked in (or last running) XREAD."""
    import redis

    with redis.Redis.from_url(redis_url) as r:
        clients: list[dict[str, Any]] = r.client_list()
    return sum(1 for c in clients if c.get("cmd") == "xread")


async def _open_streams(base: str, n: int, work_id: str | None = None) -> list[Any]:
    """Open ``n`` streams at once; return (client, response, line iterator) once each said
    it is connected."""
    opened: list[Any] = []
    suffix = f"?work_id={work_id}" if work_id else ""
    for _ in range(n):
        client = httpx.AsyncClient(timeout=20)
        request = client.build_request("GET", f"{base}/api/stream{suffix}")
        response = await client.send(request, stream=True)
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        opened.append((client, response, lines))
    return opened


async def _first_event(lines: Any) -> dict[str, Any]:
    current: dict[str, Any] = {}
    async for line in lines:
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if not line:
            if current:
                return current
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    raise AssertionError("the stream ended without an event")


def test_many_streams_share_one_redis_reader(
    url: str, redis_url: str, enqueue: Callable[..., str]
) -> None:
    import asyncio

    clients = 40

    async def run() -> None:
        streams = await _open_streams(url, clients)
        try:
            assert _xread_clients(redis_url) == 1  # one blocking read, not one per stream
            work_id = await asyncio.to_thread(enqueue, payload={"steps": 1})
            got = await asyncio.wait_for(
                asyncio.gather(*(_first_event(lines) for _, _, lines in streams)), 20
            )
            assert [e["data"]["work_id"] for e in got] == [work_id] * clients
            assert len({e["id"] for e in got}) == 1
        finally:
            for client, response, _ in streams:
                await response.aclose()
                await client.aclose()

    asyncio.run(run())
    # the last stream gone, the reader stops and frees its connection
    deadline = time.monotonic() + 10
    while _xread_clients(redis_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _xread_clients(redis_url) == 0


def test_a_filtered_stream_only_gets_its_item(url: str, enqueue: Callable[..., str]) -> None:
    import asyncio

    async def run() -> None:
        other = await asyncio.to_thread(enqueue, payload={"steps": 1})
        mine = await asyncio.to_thread(enqueue, payload={"steps": 1})
        (everything,) = await _open_streams(url, 1)
        (filtered,) = await _open_streams(url, 1, work_id=mine)
        try:
            await asyncio.to_thread(
                _cancel, url, other
            )  # an event of the other item: only the unfiltered stream sees it
            await asyncio.to_thread(_cancel, url, mine)
            first_all = await asyncio.wait_for(_first_event(everything[2]), 10)
            first_mine = await asyncio.wait_for(_first_event(filtered[2]), 10)
            assert first_all["data"]["work_id"] == other
            assert first_mine["data"]["work_id"] == mine
            assert first_mine["data"]["type"] == "cancelled"
        finally:
            for client, response, _ in (everything, filtered):
                await response.aclose()
                await client.aclose()

    asyncio.run(run())


def _cancel(base: str, work_id: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        token = c.get("/api/csrf").json()["csrf_token"]
        r = c.post(f"/api/cancel/{work_id}", headers={"origin": base, "x-csrf-token": token})
        assert r.status_code == 200, r.text


def test_a_resumed_stream_catches_up_then_goes_live_without_repeats(
    url: str, enqueue: Callable[..., str]
) -> None:
    ids = [enqueue(payload={"steps": 1}) for _ in range(3)]
    with httpx.Client(timeout=10) as c:
        with c.stream("GET", f"{url}/api/stream?after=0-0") as r:
            lines = r.iter_lines()
            backlog = read_events(lines, 3)
            assert [e["data"]["work_id"] for e in backlog] == ids
            later = enqueue(payload={"steps": 1})
            (live,) = read_events(lines, 1)
        assert live["data"]["work_id"] == later
        # resuming from the middle sends only what came after, each once
        with c.stream("GET", f"{url}/api/stream", headers={"last-event-id": backlog[0]["id"]}) as r:
            rest = read_events(r.iter_lines(), 3)
    assert [e["data"]["work_id"] for e in rest] == [*ids[1:], later]


async def test_a_subscriber_that_falls_behind_is_ended() -> None:
    from roost.console.hub import BUFFER, Subscription, publish

    sub = Subscription(None)
    for i in range(BUFFER + 1):
        sub.offer(publish(RuntimeEvent(id=f"1-{i}", type="progress", work_id="w")))
    assert sub.lagging and sub.ended == "fell behind the event stream"
    got = 0
    with pytest.raises(EOFError):
        while True:
            assert await sub.next(1) is not None
            got += 1
    assert got == BUFFER  # what it had queued is still delivered, then it ends


async def test_the_hub_serves_a_bounded_number_of_streams(
    settings: RoostSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roost.console import hub as hub_module
    from roost.console.hub import EventHub, HubBusy
    from roost.redis import RedisSwarm

    monkeypatch.setattr(hub_module, "MAX_SUBSCRIBERS", 3)
    hub = EventHub()
    async with RedisSwarm(settings) as swarm:
        subs = [await hub.subscribe(swarm) for _ in range(3)]
        with pytest.raises(HubBusy, match="at most 3"):
            await hub.subscribe(swarm)
        hub.unsubscribe(subs[0])
        subs[0] = await hub.subscribe(swarm)
        assert hub.subscribers == 3
        await hub.close()
        assert hub.subscribers == 0
        with pytest.raises(EOFError, match="shutting down"):
            await subs[1].next(1)
