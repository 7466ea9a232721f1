"""The Approvals page and the item page's Approve / Reject forms: confirm first, CSRF, escaping."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from roost.redis import RedisSwarm
from roost.runtime import RoostSettings, WorkState
from roost_testkit.waiting import SignalCollector

ORIGIN = {"origin": "http://127.0.0.1:8766"}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def on_swarm(settings: RoostSettings, fn: Callable[[RedisSwarm], Any]) -> Any:
    async def main() -> Any:
        async with RedisSwarm(settings) as swarm:
            return await fn(swarm)

    return asyncio.run(main())


def awaiting(seed: Callable[..., list[str]], settings: RoostSettings, *asks: str) -> list[str]:
    async def all_awaiting(ids: list[str]) -> bool:
        async with RedisSwarm(settings) as swarm:
            metas = await swarm.metas(ids)
        return all(m is not None and m.state == WorkState.AWAITING for m in metas)

    items = [{"engine": "collector", "payload": {"approval": ask}} for ask in asks]
    return seed(items, engines=[SignalCollector()], wait_for=all_awaiting)


def test_the_page_lists_what_waits_for_a_person_oldest_first(
    client: TestClient, settings: RoostSettings, seed: Callable[..., list[str]]
) -> None:
    assert "Nothing waits for a person" in text_of(client.get("/approvals").text)
    first, second = awaiting(seed, settings, "deploy <b>now</b>?", "spend $40?")
    metas = on_swarm(settings, lambda s: s.metas([first, second]))
    oldest, newest = sorted(metas, key=lambda m: (m.updated_at, m.work_id))
    page = client.get("/approvals")
    assert page.status_code == 200
    assert page.text.index(f'data-work="{oldest.work_id}"') < page.text.index(
        f'data-work="{newest.work_id}"'
    )
    assert "deploy &lt;b&gt;now&lt;/b&gt;?" in page.text and "<b>now</b>" not in page.text
    assert 'href="/approvals" aria-current="page"' in page.text
    detail = client.get(f"/work/{first}")
    assert "Needs approval" in detail.text and f"/approvals/approve/{first}" in detail.text
    assert f"/approvals/reject/{first}" in detail.text


def test_approve_confirms_first_then_the_next_step_sees_it(
    client: TestClient,
    settings: RoostSettings,
    seed: Callable[..., list[str]],
    csrf: Callable[[TestClient], str],
) -> None:
    [work_id] = awaiting(seed, settings, "ship it?")
    token = csrf(client)
    ask = client.post(
        f"/approvals/approve/{work_id}",
        data={"csrf_token": token, "note": "fine by me"},
        headers=ORIGIN,
    )
    assert ask.status_code == 200 and f"Approve work {work_id}?" in text_of(ask.text)
    assert 'name="note" value="fine by me"' in ask.text
    assert on_swarm(settings, lambda s: s.pending_signals(work_id)) == []

    done = client.post(
        f"/approvals/approve/{work_id}",
        data={"csrf_token": token, "note": "fine by me", "confirmed": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert done.status_code == 303 and "done=approved" in done.headers["location"]
    [signal] = on_swarm(settings, lambda s: s.pending_signals(work_id))
    assert signal.payload == {"decision": "approved", "note": "fine by me"}
    assert signal.sender == "console"
    assert work_id not in client.get("/approvals").text  # no longer awaiting


def test_decisions_need_the_csrf_token_and_an_unfinished_item(
    client: TestClient,
    settings: RoostSettings,
    seed: Callable[..., list[str]],
    csrf: Callable[[TestClient], str],
) -> None:
    [work_id] = awaiting(seed, settings, "ok?")
    forged = client.post(f"/approvals/reject/{work_id}", data={"confirmed": "1"}, headers=ORIGIN)
    assert forged.status_code == 403
    token = csrf(client)
    data = {"csrf_token": token, "confirmed": "1"}
    assert client.post(f"/approvals/maybe/{work_id}", data=data, headers=ORIGIN).status_code == 404
    assert client.post("/approvals/reject/nope", data=data, headers=ORIGIN).status_code == 404
    on_swarm(settings, lambda s: s.cancel(work_id))
    refused = client.post(f"/approvals/reject/{work_id}", data=data, headers=ORIGIN)
    assert refused.status_code == 400 and "takes no more signals" in refused.text
    assert on_swarm(settings, lambda s: s.pending_signals(work_id)) == []


def test_send_a_signal_from_the_item_page(
    client: TestClient,
    settings: RoostSettings,
    enqueue: Callable[..., str],
    csrf: Callable[[TestClient], str],
) -> None:
    work_id = enqueue("collector", {"names": ["go"]})
    assert f'action="/signals/{work_id}"' in client.get(f"/work/{work_id}").text
    token = csrf(client)
    fields = {"csrf_token": token, "name": "go", "payload": '{"n": 1}'}
    ask = client.post(f"/signals/{work_id}", data=fields, headers=ORIGIN)
    assert ask.status_code == 200 and f"Send signal go to work {work_id}?" in text_of(ask.text)
    assert on_swarm(settings, lambda s: s.pending_signals(work_id)) == []
    sent = client.post(
        f"/signals/{work_id}",
        data={**fields, "confirmed": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert sent.status_code == 303 and "done=signalled" in sent.headers["location"]
    [signal] = on_swarm(settings, lambda s: s.pending_signals(work_id))
    assert (signal.name, signal.payload, signal.sender) == ("go", {"n": 1}, "console")
    for bad in ("[1]", "{nope", '{"x": NaN}'):
        refused = client.post(
            f"/signals/{work_id}",
            data={**fields, "payload": bad, "confirmed": "1"},
            headers=ORIGIN,
        )
        assert refused.status_code == 400, bad
    bad_name = client.post(
        f"/signals/{work_id}",
        data={**fields, "name": "<b>x</b>", "confirmed": "1"},
        headers=ORIGIN,
    )
    assert bad_name.status_code == 400 and "<b>x</b>" not in bad_name.text
    assert len(on_swarm(settings, lambda s: s.pending_signals(work_id))) == 1
