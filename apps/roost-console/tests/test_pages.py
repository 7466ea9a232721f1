"""The HTML pages: what an operator sees, empty states and errors in words."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from roost.console import create_app, queries
from roost.redis import RedisSwarm
from roost.runtime import RoostSettings, RuntimeEvent, WorkState

BASE = "http://127.0.0.1:8766"
ORIGIN = {"origin": BASE}
DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}
Seeder = Callable[..., list[str]]


def text_of(html: str) -> str:
    """The visible text, whitespace collapsed (for asserting on sentences)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_empty_namespace_explains_itself(client: TestClient) -> None:
    overview = text_of(client.get("/").text)
    assert "Nothing is running or waiting" in overview
    assert "No worker is running" in overview
    assert "No events yet" in overview
    assert "No work yet" in text_of(client.get("/work").text)
    assert "No dead work" in text_of(client.get("/failed").text)
    assert "No events yet" in text_of(client.get("/events").text)


def test_overview_counts_live_work_and_events(
    client: TestClient, seed: Seeder, enqueue: Callable[..., str]
) -> None:
    done = seed([{"engine": "hashchain", "payload": {"steps": 2}}] * 2 + [DEAD])
    queued = enqueue(payload={"steps": 1})
    html = client.get("/").text
    tiles = dict(re.findall(r'data-count="(\w+)">\s*<span class="tile-n">(\d+)</span>', html))
    assert tiles["done"] == "2" and tiles["dead"] == "1" and tiles["queued"] == "1"
    assert tiles["running"] == "0"
    assert f'data-work="{queued}"' in html  # listed under live work
    assert f'data-work="{done[0]}"' not in html  # finished work is not live
    assert "saved v2" in html  # recent events, described in words
    assert re.search(r"\d+ steps saved, 2 items finished, 1 dead in the last 15 minutes", html)


def test_work_list_filters_by_state_and_engine(
    client: TestClient, seed: Seeder, enqueue: Callable[..., str]
) -> None:
    done, dead = seed([{"engine": "hashchain", "payload": {"steps": 1}}, DEAD])
    queued = enqueue(engine="other-engine")
    everything = client.get("/work").text
    assert all(w in everything for w in (done, dead, queued))
    only_dead = client.get("/work?state=dead").text
    assert dead in only_dead and done not in only_dead and queued not in only_dead
    other = client.get("/work?engine=other-engine").text
    assert queued in other and done not in other
    assert "No work matches these filters" in client.get("/work?state=cancelled").text


def test_work_list_bad_filters_are_400_in_words(client: TestClient) -> None:
    r = client.get("/work?state=bogus")
    assert r.status_code == 400
    assert "unknown state &#39;bogus&#39;" in r.text
    r = client.get("/work?engine=no%20spaces")
    assert r.status_code == 400 and "invalid engine" in r.text
    r = client.get("/work?cursor=garbage")
    assert r.status_code == 400 and "invalid cursor" in r.text
    assert "Traceback" not in r.text


def test_work_list_pages_with_a_cursor(client: TestClient, settings: RoostSettings) -> None:
    import asyncio

    from roost.redis import RedisSwarm
    from roost.runtime import WorkItem

    async def fill() -> list[str]:
        async with RedisSwarm(settings) as swarm:
            items = [WorkItem(engine="hashchain") for _ in range(120)]
            return await swarm.enqueue_many(items)

    ids = set(asyncio.run(fill()))
    seen: list[str] = []
    url = "/work?limit=50"
    pages = 0
    while url:
        html = client.get(url).text
        seen += re.findall(r'<tr data-work="([0-9a-f]{32})">', html)
        nxt = re.search(r'href="(/work\?[^"]+)" id="next-page"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        pages += 1
    assert pages == 3
    assert len(seen) == 120 and set(seen) == ids


def test_search_finds_exact_ids_and_substrings(
    client: TestClient, seed: Seeder, enqueue: Callable[..., str]
) -> None:
    a = enqueue()
    b = enqueue()
    exact = client.get(f"/work?q={a}").text
    assert a in exact and b not in exact
    part = client.get(f"/work?q={b[3:9].upper()}").text
    assert b in part
    assert "most recently updated items" in text_of(part)
    none = client.get("/work?q=zzzz-not-there").text
    assert "No work matches these filters" in none


def test_detail_page_shows_everything(wclient: TestClient, world: Any) -> None:
    work_id = world.done
    html = wclient.get(f"/work/{work_id}").text
    page = text_of(html)
    assert work_id in page
    assert 'data-state="done"' in html
    assert "Attempts 0 of 3" in page
    assert "Lease none" in page
    assert re.search(r"Created (just now|\d+ s ago) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert "who" in page and "ops" in page  # payload tree
    assert 'id="snapshot-tree" data-version="4"' in html
    assert "state" in page and "done" in page
    assert re.findall(r"<summary>v(\d+) · step", html) == ["3", "2", "1"]
    assert "finished at v4" in page and "enqueued for engine hashchain" in page
    assert 'action="/actions/replay/' in html
    retry_form = re.search(r'<form class="action" [^>]*action="/actions/retry/[^>]*>', html)
    assert retry_form and " hidden" in retry_form.group(0)  # done work cannot be retried


def test_detail_of_dead_work_shows_the_error(wclient: TestClient, world: Any) -> None:
    html = wclient.get(f"/work/{world.dead}").text
    page = text_of(html)
    assert "RuntimeError: step from version 1 failed on purpose" in page
    assert "Traceback (most recent call last)" in html  # the excerpt is shown as text
    card = re.search(r'<section class="([^"]*)" id="last-error"[^>]*>', html)
    assert card and " hidden" not in card.group(0)  # shown
    assert card.group(1) == "card error-card"  # and current: nothing succeeded after it
    retry_form = re.search(r'<form class="action" [^>]*action="/actions/retry/[^>]*>', html)
    assert retry_form and " hidden" not in retry_form.group(0)
    assert 'data-states="failed dead"' in retry_form.group(0)  # the script hides it elsewhere
    cancel_form = re.search(r'<form class="action" [^>]*action="/actions/cancel/[^>]*>', html)
    assert cancel_form and " hidden" in cancel_form.group(0)
    live = " ".join(state for state in WorkState if not state.is_terminal)
    assert f'data-states="{live}"' in cancel_form.group(0)
    assert re.search(r"<details open><summary>Traceback", html)


def test_detail_lists_artifacts_with_viewer_links(wclient: TestClient, world: Any) -> None:
    client, work_id = wclient, world.artifacts
    html = client.get(f"/work/{work_id}").text
    links = re.findall(r'href="(/artifacts/[0-9a-f]{64}\?kind=(\w+)&amp;work=[^"]+)"', html)
    assert sorted(k for _, k in links) == ["json", "md", "png", "txt"]
    json_view = next(url for url, k in links if k == "json").replace("&amp;", "&")
    view = client.get(json_view)
    assert view.status_code == 200
    assert "&#34;checks&#34;: [\n    1," in view.text  # pretty-printed, escaped
    assert f'href="/work/{work_id}"' in view.text  # back to the item
    png_view = next(url for url, k in links if k == "png").replace("&amp;", "&")
    assert "is not shown in the browser" in client.get(png_view).text


def test_unknown_work_id_is_explained(client: TestClient) -> None:
    r = client.get("/work/nope-not-here")
    assert r.status_code == 404
    assert "unknown work id &#39;nope-not-here&#39;" in r.text
    assert "Traceback" not in r.text
    r = client.get("/work/%3Cscript%3E")
    assert r.status_code == 404
    assert "<script>" not in r.text.replace('<script src="/static/console.js" defer>', "")


def test_unknown_page_is_explained(client: TestClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert "there is no page at /no/such/page" in r.text


def test_redis_unreachable_is_explained(tmp_path: Any) -> None:
    settings = RoostSettings.from_env({}, redis_url="redis://127.0.0.1:1/0", home=tmp_path)
    app = create_app(settings, port=8766)
    with TestClient(app, base_url=BASE) as c:
        for path in ("/", "/work", "/work/abc", "/events", "/failed"):
            r = c.get(path)
            assert r.status_code == 503, path
            assert "Redis is not reachable" in r.text
            assert "cannot reach Redis at redis://127.0.0.1:1/0" in r.text
            assert "Traceback" not in r.text
        api = c.get("/api/overview")
        assert api.status_code == 503
        assert api.json()["kind"] == "redis_unavailable"
        assert c.get("/api/stream").status_code == 503


def test_redis_password_is_not_shown(tmp_path: Any) -> None:
    settings = RoostSettings.from_env(
        {}, redis_url="redis://user:hunter2@127.0.0.1:1/0", home=tmp_path
    )
    with TestClient(create_app(settings, port=8766), base_url=BASE) as c:
        r = c.get("/")
        assert "hunter2" not in r.text
        assert "redis://***@127.0.0.1:1/0" in r.text


def test_confirmation_page_without_script(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([DEAD])
    token = client.get("/api/csrf").json()["csrf_token"]
    r = client.post(f"/actions/retry/{work_id}", data={"csrf_token": token}, headers=ORIGIN)
    assert r.status_code == 200
    assert f"Retry work {work_id}?" in text_of(r.text)
    assert 'name="confirmed" value="1"' in r.text
    assert client.get(f"/api/work/{work_id}").json()["meta"]["state"] == "dead"
    r = client.post(
        f"/actions/retry/{work_id}",
        data={"csrf_token": token, "confirmed": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/work/{work_id}?done=retried"
    after = client.get(r.headers["location"]).text
    assert "Queued again with fresh attempts" in after
    assert 'data-state="queued"' in after


def test_replay_as_new_from_the_page(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 2}}])
    token = client.get("/api/csrf").json()["csrf_token"]
    r = client.post(
        f"/actions/replay/{work_id}",
        data={"csrf_token": token, "confirmed": "1", "version": "2", "as_new": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    new_id = re.match(r"/work/([0-9a-f]{32})\?done=replayed_new&from=", r.headers["location"])
    assert new_id and new_id.group(1) != work_id
    page = client.get(r.headers["location"]).text
    assert "This is a new work item, replayed from a copy" in page
    assert f'href="/work/{work_id}"' in page


def test_conflicting_action_is_explained(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 1}}])
    token = client.get("/api/csrf").json()["csrf_token"]
    r = client.post(
        f"/actions/cancel/{work_id}",
        data={"csrf_token": token, "confirmed": "1"},
        headers=ORIGIN,
    )
    assert r.status_code == 409
    assert "already done; nothing to cancel" in r.text


def test_events_page_lists_latest_first(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 2}}])
    html = client.get("/events").text
    types = re.findall(r'<span class="ev-type">(\w+)</span>', html)
    assert types[0] == "done" and types[-1] == "enqueued"
    assert work_id in html


def test_static_assets_are_served(client: TestClient) -> None:
    css = client.get("/static/console.css")
    assert css.status_code == 200
    for state in WorkState:  # every state has its colour, light and dark
        assert css.text.count(f"--st-{state}:") == 2, state
        assert f".st-{state} {{ --c: var(--st-{state}); }}" in css.text, state
    js = client.get("/static/console.js")
    assert js.status_code == 200 and "EventSource" in js.text
    assert "cache-control" not in js.headers or js.headers["cache-control"] != "no-store"


def test_slow_event_reads_do_not_hold_the_page(
    wclient: TestClient, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # events(work_id=...) scans the namespace's stream; on a long stream it is slow. The
    # page renders without the timeline after EVENTS_BUDGET and the script loads it.
    real = RedisSwarm.events

    async def slow_events(self: RedisSwarm, **kw: Any) -> list[RuntimeEvent]:
        await asyncio.sleep(2)
        return await real(self, **kw)

    monkeypatch.setattr(RedisSwarm, "events", slow_events)
    t0 = time.monotonic()
    html = wclient.get(f"/work/{world.done}").text
    assert time.monotonic() - t0 < 1.5
    assert "Loading this item's events" in html
    assert f'data-pending="{queries.ITEM_EVENTS}"' in html
    assert 'data-state="done"' in html  # the rest of the page is there
