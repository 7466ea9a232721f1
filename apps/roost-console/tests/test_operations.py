"""What an operator of many items uses, without a browser: the timeline, past errors, event
filters, bulk actions as forms, live fragments, artifact owners, Markdown, charts, workers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from roost.console.present import chart, describe_event, duration, markdown
from roost.console.state import make_templates
from roost.runtime import RuntimeEvent

BASE = "http://127.0.0.1:8766"
ORIGIN = {"origin": BASE}
DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}
FLAKY = {"engine": "hashchain", "payload": {"mode": "raise", "fail_times": 1, "steps": 2}}
Seeder = Callable[..., list[str]]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _rows(html: str) -> list[tuple[str, str]]:
    """(kind, status) of each timeline row."""
    return re.findall(r'<tr class="span [^"]*" data-kind="(\w+)" data-status="(\w+)">', html)


# -- the timeline and past errors ---------------------------------------------------------------


def test_the_timeline_shows_attempts_retries_and_waits(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([FLAKY])
    html = client.get(f"/work/{work_id}").text
    rows = _rows(html)
    assert rows == [
        ("wait", "info"),  # queued
        ("step", "failed"),  # from v0: init saved, then the step raised
        ("wait", "info"),  # retry backoff
        ("step", "ok"),  # saved v2
        ("step", "failed"),  # from v2, inline
        ("wait", "info"),  # retry backoff
        ("step", "ok"),  # finished at v3
    ]
    page = text_of(html)
    assert "4 step attempts, 2 of them failed or lost" in page
    assert "initial snapshot saved as v1 (start)" in page
    assert page.count("retry backoff of") == 2
    assert "failed: RuntimeError: step from version 1 failed on purpose" in page
    assert "finished at v3 (s2)" in page
    workers = re.findall(r'<td class="opt mono small nowrap">([^<]+)</td>', html)
    assert len(workers) == 4 and all(w.count(":") == 2 for w in workers)


def test_an_earlier_error_is_shown_as_past(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([FLAKY])
    meta = client.get(f"/api/work/{work_id}").json()["meta"]
    assert meta["state"] == "done" and meta["last_error"]["attempt"] == 1  # still recorded
    html = client.get(f"/work/{work_id}").text
    card = re.search(r'<section class="([^"]*)" id="last-error"[^>]*>', html)
    assert card and card.group(1) == "card error-card past"
    assert re.search(r'<p class="past-note" id="err-past">A later attempt succeeded', html)
    assert "Earlier error" in text_of(html)


def test_a_dead_item_is_never_said_to_retry(wclient: TestClient, world: Any) -> None:
    html = wclient.get(f"/work/{world.dead}").text
    page = text_of(html)
    assert "dead after attempt 1, no attempts left: RuntimeError" in page
    assert "retry in" not in page and "retry backoff" not in page
    assert "Last error" in page and "Earlier error" not in page
    # the event's data is the failed attempt's, delay included; the delay is never shown
    ev = RuntimeEvent(
        type="dead",
        work_id="w",
        data={"error": "OSError", "message": "boom", "attempt": 3, "delay": 0.4},
    )
    assert describe_event(ev) == "dead after attempt 3, no attempts left: OSError: boom"


def test_the_timeline_fragment(client: TestClient, seed: Seeder) -> None:
    (work_id,) = seed([{"engine": "hashchain", "payload": {"steps": 2}}])
    r = client.get(f"/fragments/timeline/{work_id}")
    assert r.status_code == 200 and "<html" not in r.text
    assert _rows(r.text)[-1] == ("step", "ok") and "finished at v3" in r.text
    assert client.get("/fragments/timeline/no-such-item").status_code == 404


# -- events --------------------------------------------------------------------------------------


def test_progress_does_not_drown_the_events_page(client: TestClient, seed: Seeder) -> None:
    chatty, dead = seed([{"engine": "chatty"}, DEAD])
    default = client.get("/events").text
    types = re.findall(r'<span class="ev-type">(\w+)</span>', default)
    assert "progress" not in types and "done" in types and "dead" in types
    assert 'data-skip="progress"' in default
    progress = client.get("/events?type=progress").text
    assert re.findall(r'<span class="ev-type">(\w+)</span>', progress) == ["progress"] * 3
    one = client.get(f"/events?type=dead&type=retrying&work_id={dead}").text
    assert re.findall(r'<span class="ev-type">(\w+)</span>', one) == ["dead"]
    assert chatty not in re.sub(r'value="[^"]*"', "", one)
    assert client.get("/events?type=Bad-Type").status_code == 400
    api = client.get("/api/events?type=progress&limit=2").json()["events"]
    assert [e["type"] for e in api] == ["progress"] * 2
    assert [e["data"]["message"] for e in api] == ["part 2", "part 3"]  # the latest, oldest first


def test_the_overview_leaves_progress_out_of_recent_events(
    client: TestClient, seed: Seeder
) -> None:
    seed([{"engine": "chatty"}])
    events = client.get("/api/overview").json()["events"]
    assert events and all(e["type"] != "progress" for e in events)


# -- fragments -----------------------------------------------------------------------------------


def test_fragments_are_the_pages_live_parts(
    client: TestClient, seed: Seeder, enqueue: Callable[..., str]
) -> None:
    (dead,) = seed([DEAD])
    queued = enqueue()
    work = client.get("/fragments/work?state=queued")
    assert work.status_code == 200 and "<html" not in work.text
    assert f'<tr data-work="{queued}">' in work.text and dead not in work.text
    failed = client.get("/fragments/failed").text
    assert f'<tr data-work="{dead}">' in failed and queued not in failed
    overview = client.get("/fragments/overview").text
    assert 'data-count="dead"' in overview and "<html" not in overview
    page = client.get("/work?state=queued").text
    assert 'data-live="/fragments/work?state=queued"' in page
    assert client.get("/fragments/work?state=bogus").status_code == 400


# -- bulk actions as forms -------------------------------------------------------------------------


def _token(client: TestClient) -> str:
    return client.get("/api/csrf").json()["csrf_token"]


def test_bulk_form_confirms_then_reports_each_item(client: TestClient, seed: Seeder) -> None:
    a, b, done = seed([DEAD, DEAD, {"engine": "hashchain", "payload": {"steps": 1}}])
    fields = [("csrf_token", _token(client)), ("action", "retry"), ("back", "/failed")]
    fields += [("work_id", w) for w in (a, b, done)]
    ask = client.post("/actions/bulk", data=dict(fields[:3]), headers=ORIGIN)
    assert ask.status_code == 400 and "no work items were selected" in ask.text
    ctype = {"content-type": "application/x-www-form-urlencoded", **ORIGIN}
    body = "&".join(f"{k}={v}" for k, v in fields)
    confirm = client.post("/actions/bulk", content=body, headers=ctype)
    assert confirm.status_code == 200
    assert "Retry 3 items?" in text_of(confirm.text)
    assert (
        confirm.text.count('name="work_id"') == 3 and 'name="confirmed" value="1"' in confirm.text
    )
    assert client.get("/api/counts").json()["dead"] == 2  # nothing changed yet

    result = client.post("/actions/bulk", content=body + "&confirmed=1", headers=ctype)
    assert result.status_code == 200
    page = text_of(result.text)
    assert "Retried 2 of 3" in page and "1 could not be retried" in page
    assert re.search(rf'<tr data-work="{done}" data-ok="no">', result.text)
    assert "only failed or dead work can be retried" in page
    assert 'href="/failed"' in result.text  # back where it came from
    assert client.get("/api/counts").json()["dead"] == 0


def test_retry_all_dead_of_an_engine_as_a_form(client: TestClient, seed: Seeder) -> None:
    seed([DEAD, DEAD])
    data = {"csrf_token": _token(client), "action": "retry", "state": "dead", "engine": "hashchain"}
    confirm = client.post("/actions/bulk", data=data, headers=ORIGIN)
    assert "Retry 2 items (dead, engine hashchain)?" in text_of(confirm.text)
    done = client.post("/actions/bulk", data={**data, "confirmed": "1"}, headers=ORIGIN)
    assert "Retried 2 of 2" in text_of(done.text)
    none = client.post("/actions/bulk", data={**data, "engine": "other"}, headers=ORIGIN)
    assert none.status_code == 400
    offsite = client.post(
        "/actions/bulk", data={**data, "confirmed": "1", "back": "//evil.example"}, headers=ORIGIN
    )
    assert 'href="//evil.example"' not in offsite.text


def test_bulk_forms_need_the_csrf_token(client: TestClient, seed: Seeder) -> None:
    (dead,) = seed([DEAD])
    r = client.post(
        "/actions/bulk",
        data={"action": "retry", "work_id": dead, "confirmed": "1"},
        headers=ORIGIN,
    )
    assert r.status_code == 403
    assert client.get(f"/api/work/{dead}").json()["meta"]["state"] == "dead"


# -- artifacts -----------------------------------------------------------------------------------


def _artifacts(client: TestClient, work_id: str) -> dict[str, str]:
    snap = client.get(f"/api/work/{work_id}").json()["snapshot"]
    return {a["kind"]: a["artifact_id"] for a in snap["artifacts"]}


def test_an_artifact_links_back_to_the_item_that_lists_it(wclient: TestClient, world: Any) -> None:
    art = _artifacts(wclient, world.artifacts)["json"]
    own = wclient.get(f"/artifacts/{art}?work={world.artifacts}").text
    assert "Produced by work" in text_of(own)
    assert f'href="/work/{world.artifacts}"' in own
    claimed = wclient.get(f"/artifacts/{art}?work={world.done}").text
    assert "does not list this artifact" in text_of(claimed)
    assert f'href="/work/{world.done}"' not in claimed  # a claim is not a link
    bare = wclient.get(f"/artifacts/{art}").text
    assert "do not record the item that made them" in text_of(bare)


def test_markdown_artifacts_are_rendered_safely(wclient: TestClient, world: Any) -> None:
    art = _artifacts(wclient, world.artifacts)["md"]
    html = wclient.get(f"/artifacts/{art}?kind=md").text
    rendered = re.search(r'<div class="markdown" id="markdown">(.*?)</div>', html, re.S)
    assert rendered
    body = rendered.group(1)
    assert "<h1>Report &lt;em&gt;one&lt;/em&gt;</h1>" in body
    assert "<table>" in body and "<td>dns</td>" in body
    assert (
        "<script" not in body
        and "<img" not in body
        and "onerror=" not in body.replace("onerror=&quot;", "")
    )
    assert "javascript:" not in re.sub(r">[^<]*<", "><", body)  # only as text, never a link
    assert '<a href="https://example.com/docs">docs</a>' in body
    raw = wclient.get(f"/artifacts/{art}/raw?kind=md")
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"


def test_markdown_rendering_escapes_html() -> None:
    out = str(markdown('<b onclick="x">hi</b>\n\n[a](vbscript:x) ![i](data:text/html;base64,x)'))
    assert "<b" not in out and "&lt;b onclick=&quot;x&quot;&gt;" in out
    assert "href=" not in out and "src=" not in out


# -- charts and workers ----------------------------------------------------------------------------


def test_the_overview_charts_more_than_one_series(client: TestClient, seed: Seeder) -> None:
    seed([{"engine": "hashchain", "payload": {"steps": 2}}, DEAD, FLAKY])
    html = client.get("/").text
    series = set(re.findall(r'class="bar s-(\w+)" data-series', html))
    assert {"committed", "done", "retried", "dead"} <= series
    assert 'id="chart-work"' in html and 'id="chart-trouble"' in html


def test_chart_geometry() -> None:
    rows = [{"a": 4, "b": 2}, {"a": 0, "b": 0}, {"a": 1, "b": 3}]
    side = chart(rows, ["a", "b"], width=300, height=50, gap=0)
    assert [(b["slot"], b["series"]) for b in side] == [(0, "a"), (0, "b"), (2, "a"), (2, "b")]
    assert side[0]["h"] == 48 and side[0]["w"] == 50  # the tallest bar fills the height
    stacked = chart(rows, ["a", "b"], stacked=True, width=300, height=50, gap=0)
    first, second = stacked[0], stacked[1]
    assert first["h"] + second["h"] == 48 and second["y"] + second["h"] == first["y"]


def test_worker_health_is_shown_when_heartbeats_carry_it() -> None:
    env = make_templates().env
    tpl = env.from_string('{% import "_macros.html" as m %}{{ m.health(w) }}')
    assert "healthy" in tpl.render(w={"worker_id": "a", "healthy": True})
    sick = tpl.render(w={"worker_id": "a", "healthy": False, "problem": "Redis <busy>"})
    assert "problem" in sick and "Redis &lt;busy&gt;" in sick
    assert "—" in tpl.render(w={"worker_id": "a"})


def test_durations_read_well() -> None:
    assert [duration(x) for x in (0.0042, 3.25, 125, 7300, 90000)] == [
        "4 ms",
        "3.2 s",
        "2 min 5 s",
        "2 h 1 min",
        "1 d 1 h",
    ]
