"""The item page's Pause / Resume buttons: confirm first, then act; shown only where they apply."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

ORIGIN = {"origin": "http://127.0.0.1:8766"}


def test_pause_then_resume_a_queued_item(
    client: TestClient, enqueue: Callable[..., str], csrf: Callable[[TestClient], str]
) -> None:
    work_id = enqueue("hashchain", {"steps": 1})
    page = client.get(f"/work/{work_id}").text
    assert f'action="/actions/pause/{work_id}"' in page
    token = csrf(client)
    ask = client.post(f"/actions/pause/{work_id}", data={"csrf_token": token}, headers=ORIGIN)
    assert ask.status_code == 200 and "No new step runs until it is resumed" in ask.text
    assert client.get(f"/api/work/{work_id}").json()["meta"]["state"] == "queued"
    done = client.post(
        f"/actions/pause/{work_id}",
        data={"csrf_token": token, "confirmed": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert done.status_code == 303 and "done=paused" in done.headers["location"]
    meta = client.get(f"/api/work/{work_id}").json()["meta"]
    assert meta["state"] == "paused" and meta["paused_reason"] == "operator"
    page = client.get(done.headers["location"]).text
    assert "Paused: no new step runs" in page
    again = client.post(f"/api/resume/{work_id}", headers={**ORIGIN, "x-csrf-token": token})
    assert again.status_code == 200, again.text
    assert again.json()["meta"]["state"] == "queued"
    refused = client.post(f"/api/resume/{work_id}", headers={**ORIGIN, "x-csrf-token": token})
    assert refused.status_code == 409 and "not paused" in refused.text
