"""The watchlist engine, run with roost-core's in-memory harness against local HTTP servers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from roost.runtime import PermanentError, Registry, get_plugin_manager
from roost.runtime.testing import EngineRunner
from roost_testkit.http import LocalHttp, Reply
from roost_watchlist import WatchlistEngine, build_engine, verdict_of


class Target:
    """A local HTTP server: /ok answers 200, /fail 500, /alternate 200 then 500..., /slow waits."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.http = LocalHttp(self.respond)

    def respond(self, path: str) -> Reply:
        with self.lock:
            self.hits.append(path)
            n = sum(1 for p in self.hits if p == path)
        if path == "/slow":
            time.sleep(1.0)
        status = {"/ok": 200, "/fail": 500, "/redirect": 302}.get(path, 404)
        if path == "/alternate":
            status = 200 if n % 2 == 1 else 503
        if path == "/slow":
            status = 200
        return status, {"Location": "/ok"} if status == 302 else {}, b"ok"

    def url(self, path: str) -> str:
        return self.http.url(path)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def refused_url() -> str:
    """A URL on a port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def payload(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "claim": "the target answers", "delay_seconds": 2.5, **extra}


async def test_reachable_target_gives_a_report_after_three_checks(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(payload(target.url("/ok")))
        final = result.final
        assert final.is_finished and final.step == "done"
        assert final.version == 4  # init = v1, then one step per check
        assert [s.version for s in result.snapshots] == [1, 2, 3, 4]
        assert result.delays == [0.0, 2.5, 2.5]  # first check at once, then delay_seconds
        data = final.data
        assert data["checks_completed"] == 3 and data["verdict"] == "reachable"
        obs = data["observations"]
        assert [o["check"] for o in obs] == [1, 2, 3]
        assert all(o["ok"] and o["status"] == 200 and "error" not in o for o in obs)
        assert all(o["url"] == target.url("/ok") and o["elapsed_ms"] >= 0 for o in obs)
        assert len({o["time"] for o in obs}) == 3
        assert target.hits == ["/ok"] * 3  # one fetch per step, none at init
        [artifact] = final.artifacts
        assert artifact.kind == "json"
        assert artifact.metadata == {"verdict": "reachable", "checks_completed": 3}
        report = json.loads(await result.read_artifact(artifact))
    assert report["claim"] == "the target answers"
    assert report["verdict"] == "reachable"
    assert report["observations"] == obs
    assert report["checks"]["ok"] == 3 and report["checks"]["failed"] == 0
    assert report["work_id"] == result.item.work_id


async def test_refused_connection_is_an_observation_and_unreachable() -> None:
    url = refused_url()
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(payload(url, checks_required=2))
    data = result.final.data
    assert data["verdict"] == "unreachable"
    assert [o["ok"] for o in data["observations"]] == [False, False]
    assert all(o["status"] is None for o in data["observations"])
    assert all("ConnectError" in o["error"] for o in data["observations"])
    assert result.final.artifacts[0].metadata["verdict"] == "unreachable"


async def test_http_errors_count_as_failed_checks(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(payload(target.url("/fail"), checks_required=1))
    [obs] = result.final.data["observations"]
    assert obs["ok"] is False and obs["status"] == 500
    assert obs["error"].startswith("HTTP 500")
    assert result.final.data["verdict"] == "unreachable"


async def test_alternating_server_is_flaky(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(payload(target.url("/alternate"), checks_required=4))
        report = json.loads(await result.read_artifact(result.final.artifacts[0]))
    obs = result.final.data["observations"]
    assert [o["status"] for o in obs] == [200, 503, 200, 503]
    assert result.final.data["verdict"] == "flaky"
    assert report["checks"] == {
        "required": 4,
        "completed": 4,
        "ok": 2,
        "failed": 2,
        "delay_seconds": 2.5,
    }


async def test_redirects_are_followed(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(payload(target.url("/redirect"), checks_required=1))
    assert result.final.data["observations"][0]["status"] == 200
    assert target.hits == ["/redirect", "/ok"]


async def test_a_timeout_is_a_failed_observation_not_a_step_failure(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run(
            payload(target.url("/slow"), checks_required=1, timeout_seconds=0.2)
        )
    [obs] = result.final.data["observations"]
    assert obs["ok"] is False and "Timeout" in obs["error"]
    assert obs["elapsed_ms"] < 900


async def test_engine_timeout_is_the_default(target: Target) -> None:
    async with EngineRunner(WatchlistEngine(timeout=0.2)) as runner:
        result = await runner.run(payload(target.url("/slow"), checks_required=1))
    assert result.final.data["timeout_seconds"] == 0.2
    assert result.final.data["observations"][0]["ok"] is False


async def test_step_is_retry_safe_from_the_same_snapshot(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        item = runner.work_item(payload(target.url("/ok")))
        first = await runner.init(item)
        second = await runner.step(first, item)
        once = await runner.step(second, item)
        again = await runner.step(second, item, attempt=2)  # a retry after a lost commit
    for snap in (once, again):
        assert snap.version == 3
        assert snap.data["checks_completed"] == 2
        assert [o["check"] for o in snap.data["observations"]] == [1, 2]
        assert snap.data["observations"][0] == second.data["observations"][0]
    assert second.data["observations"] == second.data["observations"][:1]


async def test_final_step_retried_writes_one_report_per_run(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        item = runner.work_item(payload(target.url("/ok"), checks_required=1))
        first = await runner.init(item)
        done_once = await runner.step(first, item)
        done_again = await runner.step(first, item, attempt=2)
    assert len(done_once.artifacts) == 1 and len(done_again.artifacts) == 1
    assert done_once.data["checks_completed"] == done_again.data["checks_completed"] == 1


async def test_defaults_match_the_seed(target: Target) -> None:
    async with EngineRunner(build_engine()) as runner:
        snap = await runner.init(runner.work_item({"url": target.url("/ok")}))
    assert snap.data["checks_required"] == 3
    assert snap.data["delay_seconds"] == 5.0
    assert snap.data["claim"] == f"{target.url('/ok')} is reachable"
    assert snap.data["observations"] == [] and snap.data["verdict"] is None
    assert snap.next_step_delay_seconds == 0.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({}, "url is required"),
        ({"url": "ftp://example.com"}, "http:// or https://"),
        ({"url": "http://"}, "http:// or https://"),
        ({"url": "http://x", "checks_required": 0}, "checks_required must be 1-1000"),
        ({"url": "http://x", "checks_required": "3"}, "checks_required must be an integer"),
        ({"url": "http://x", "checks_required": True}, "checks_required must be an integer"),
        ({"url": "http://x", "delay_seconds": -1}, "delay_seconds must be a finite number"),
        ({"url": "http://x", "delay_seconds": "5"}, "delay_seconds must be a number"),
        ({"url": "http://x", "delay_seconds": 1e306}, "delay_seconds must be between 0 and 365d"),
        ({"url": "http://x", "timeout_seconds": 0}, "timeout_seconds must be greater than 0"),
        ({"url": "http://x", "claim": ""}, "claim must be a non-empty string"),
        ({"url": "http://x", "check_required": 3}, "unknown field(s) check_required"),
    ],
)
async def test_bad_payload_fails_clearly_at_init(bad: dict[str, Any], message: str) -> None:
    async with EngineRunner(build_engine()) as runner:
        with pytest.raises(PermanentError, match="watchlist payload") as info:
            await runner.init(runner.work_item(bad))
    assert message in str(info.value)


def test_verdicts() -> None:
    assert verdict_of([{"ok": True}, {"ok": True}]) == "reachable"
    assert verdict_of([{"ok": False}, {"ok": False}]) == "unreachable"
    assert verdict_of([{"ok": True}, {"ok": False}]) == "flaky"
    assert verdict_of([]) == "unreachable"


def test_registered_through_the_roost_entry_point() -> None:
    registry = Registry.load(get_plugin_manager())
    assert "watchlist" in registry.engines
    engine = registry.build_engine("watchlist")
    assert isinstance(engine, WatchlistEngine) and engine.engine_id == "watchlist"


def test_not_registered_without_autoload() -> None:
    registry = Registry.load(get_plugin_manager(autoload=False))
    assert "watchlist" not in registry.engines
