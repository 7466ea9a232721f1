"""Mixed fleets on the console: work whose engine no live worker runs, and workers' slots.

A real worker runs the hash-chain engine only; an item of the artifacts engine stays queued
and every page that shows it says so, until a worker for that engine starts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from roost.console.state import make_templates
from roost.runtime import RoostSettings
from roost_testkit.background import Background

from .conftest import ArtifactEngine, registry  # noqa: TID252

NOTICE = "No live worker runs engine"


def text_of(html: str) -> str:
    """The page's text as a browser runs it together: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


@pytest.fixture
def artifacts_worker(settings: RoostSettings) -> Iterator[Background]:
    """A second worker, running the artifacts engine only, once started."""
    bg = Background(settings, registry(), [ArtifactEngine()])
    try:
        yield bg
    finally:
        bg.close()


@pytest.fixture
def stranded(client: TestClient, background: Background) -> dict[str, str]:
    """A hash-chain worker is live; one hash-chain item runs and one artifacts item waits."""
    background.start_worker(concurrency=3)
    until(lambda: client.get("/api/workers").json()["workers"])
    served = background.enqueue({"steps": 1})
    waiting = background.enqueue({}, engine="artifacts")
    background.wait_state(served, "done")
    return {"served": served, "waiting": waiting, "queue": background.settings.queue}


def test_the_json_api_names_the_engine_no_worker_runs(
    client: TestClient, stranded: dict[str, str]
) -> None:
    queue, waiting, served = stranded["queue"], stranded["waiting"], stranded["served"]
    assert client.get("/api/overview").json()["unserved"] == {queue: {"artifacts": 1}}
    fleet = client.get("/api/workers").json()
    assert fleet["unserved"] == {queue: {"artifacts": 1}}
    (worker,) = fleet["workers"]
    assert worker["slots"] == {"hashchain": 3} and worker["healthy"] is True
    item = client.get(f"/api/work/{waiting}").json()
    assert item["meta"]["state"] == "queued"
    assert item["unserved"] == {queue: {"artifacts": 1}}
    assert client.get(f"/api/work/{served}").json()["unserved"] == {}


def test_pages_say_which_engine_no_worker_runs(
    client: TestClient, stranded: dict[str, str]
) -> None:
    line = f"{NOTICE} artifacts: 1 queued, waiting for one."
    overview = client.get("/").text
    assert line in text_of(overview)
    assert 'href="/work?state=queued&amp;engine=artifacts"' in overview
    assert line in text_of(client.get("/fragments/overview").text)  # the live region too
    assert line in text_of(client.get("/work").text)
    assert line in text_of(client.get("/fragments/work").text)
    assert NOTICE not in client.get("/work?engine=hashchain").text  # a filter on another engine

    item = client.get(f"/work/{stranded['waiting']}").text
    notice = re.search(r'<section class="alert" id="item-unserved"[^>]*>', item)
    assert notice is not None and "hidden" not in notice.group(0)
    assert line in text_of(item)
    done = client.get(f"/work/{stranded['served']}").text
    notice = re.search(r'<section class="alert" id="item-unserved"[^>]*>', done)
    assert notice is not None and "hidden" in notice.group(0)


def test_the_workers_panel_shows_slots_and_heartbeats(
    client: TestClient, stranded: dict[str, str]
) -> None:
    html = client.get("/fragments/overview").text
    row = re.search(r'<tr data-worker="[^"]+">(.*?)</tr>', html, re.DOTALL)
    assert row is not None
    cells = text_of(row.group(1))
    assert "hashchain=3" in cells and "healthy" in cells
    assert re.search(r"\d+ ms ago|\d+\.\d s ago", cells), cells  # the heartbeat's age


def test_the_notice_goes_once_a_worker_for_the_engine_starts(
    client: TestClient, stranded: dict[str, str], artifacts_worker: Background
) -> None:
    artifacts_worker.start_worker()
    artifacts_worker.wait_state(stranded["waiting"], "done")
    assert client.get("/api/overview").json()["unserved"] == {}
    assert NOTICE not in client.get("/").text
    assert NOTICE not in client.get("/work").text
    assert client.get(f"/api/work/{stranded['waiting']}").json()["unserved"] == {}


def test_work_of_another_queue_is_reported_under_its_queue(
    client: TestClient, settings: RoostSettings, enqueue: Callable[..., str]
) -> None:
    other = settings.model_copy(update={"queue": "gpu"})
    bg = Background(other, registry())
    try:
        work_id = bg.enqueue({}, engine="render")
    finally:
        bg.close()
    overview = client.get("/").text
    assert f"{NOTICE} render (queue gpu): 1 queued, waiting for one." in text_of(overview)
    assert client.get("/api/overview").json()["unserved"] == {"gpu": {"render": 1}}
    assert client.get(f"/api/work/{work_id}").json()["unserved"] == {"gpu": {"render": 1}}
    page = text_of(client.get(f"/work/{work_id}").text)
    assert "roost worker --engines render --queue gpu" in page


def test_an_unhealthy_worker_is_marked_with_its_problem() -> None:
    tpl = make_templates().env.get_template("_overview_live.html")
    sick = {
        "worker_id": "host:1:abc",
        "queue": "default",
        "engines": ["a", "b"],
        "slots": {"a": 4, "b": 1},
        "running": 0,
        "concurrency": 5,
        "healthy": False,
        "problem": "maintenance failing for 12 s: <Redis is out of memory>",
        "heartbeat_age": 0.8,
    }
    ov = {"unserved": {}, "counts": {}, "workers": [sick], "live": {}}
    html = tpl.render(
        ov=ov,
        tp={"totals": {"committed": 0, "done": 0, "dead": 0}, "minutes": [], "panels": []},
        states=[],
        live_states=[],
        live_items=[],
        live_limit=20,
        settings=RoostSettings.from_env({}),
        now=time.time(),
        csrf_token="",
        action_states={},
    )
    row = re.search(r'<tr data-worker="host:1:abc" class="unhealthy">(.*?)</tr>', html, re.DOTALL)
    assert row is not None
    assert "a=4" in text_of(row.group(1)) and "b=1" in text_of(row.group(1))
    assert "maintenance failing for 12 s: &lt;Redis is out of memory&gt;" in row.group(1)
    assert "800 ms ago" in row.group(1)
