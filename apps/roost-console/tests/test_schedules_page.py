"""The Schedules page: next runs, last item and its state; pause/resume/run-now confirm first."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from roost.redis import RedisSwarm
from roost.runtime import RoostSettings

ORIGIN = {"origin": "http://127.0.0.1:8766"}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def on_swarm(settings: RoostSettings, fn: Callable[[RedisSwarm], Any]) -> Any:
    async def main() -> Any:
        async with RedisSwarm(settings) as swarm:
            return await fn(swarm)

    return asyncio.run(main())


def test_the_page_lists_schedules_with_next_run_and_last_item(
    client: TestClient, settings: RoostSettings
) -> None:
    assert "No schedules" in text_of(client.get("/schedules").text)
    on_swarm(settings, lambda s: s.schedules.add("hourly", "hashchain", every="1h"))
    on_swarm(settings, lambda s: s.schedules.add("daily", "hashchain", cron="0 9 * * *"))
    work_id = on_swarm(settings, lambda s: s.schedules.run_now("hourly"))
    page = client.get("/schedules")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "every 1h" in text and "cron 0 9 * * * (UTC)" in text
    assert f'href="/work/{work_id}"' in page.text and 'data-state="queued"' in page.text
    assert "run-now" in text
    assert 'href="/schedules" aria-current="page"' in page.text


def test_pause_confirms_first_then_acts(
    client: TestClient, settings: RoostSettings, csrf: Callable[[TestClient], str]
) -> None:
    on_swarm(settings, lambda s: s.schedules.add("job", "hashchain", every="1m"))
    token = csrf(client)
    ask = client.post("/schedules/pause/job", data={"csrf_token": token}, headers=ORIGIN)
    assert ask.status_code == 200 and "Pause schedule job?" in text_of(ask.text)
    assert 'name="confirmed" value="1"' in ask.text
    assert not on_swarm(settings, lambda s: s.schedules.get("job")).paused

    done = client.post(
        "/schedules/pause/job",
        data={"csrf_token": token, "confirmed": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/schedules?done=paused&name=job"
    assert on_swarm(settings, lambda s: s.schedules.get("job")).paused
    assert "job: Paused" in text_of(client.get(done.headers["location"]).text)

    client.post(
        "/schedules/resume/job", data={"csrf_token": token, "confirmed": "1"}, headers=ORIGIN
    )
    assert not on_swarm(settings, lambda s: s.schedules.get("job")).paused
    client.post(
        "/schedules/run-now/job", data={"csrf_token": token, "confirmed": "1"}, headers=ORIGIN
    )
    assert on_swarm(settings, lambda s: s.schedules.get("job")).last_outcome == "run-now"


def test_actions_need_the_csrf_token_and_a_known_schedule(
    client: TestClient, settings: RoostSettings, csrf: Callable[[TestClient], str]
) -> None:
    on_swarm(settings, lambda s: s.schedules.add("job", "hashchain", every="1m"))
    forged = client.post("/schedules/pause/job", data={"confirmed": "1"}, headers=ORIGIN)
    assert forged.status_code == 403
    assert not on_swarm(settings, lambda s: s.schedules.get("job")).paused
    token = csrf(client)
    data = {"csrf_token": token, "confirmed": "1"}
    assert client.post("/schedules/pause/nope", data=data, headers=ORIGIN).status_code == 404
    assert client.post("/schedules/delete/job", data=data, headers=ORIGIN).status_code == 404
    bad = client.post("/schedules/pause/%3Cscript%3E", data=data, headers=ORIGIN)
    assert bad.status_code == 400 and "<script>" not in bad.text
