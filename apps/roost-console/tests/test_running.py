"""A running item on the console (lease, progress, cancel), and serve() as the CLI runs it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from roost.runtime import (
    Registry,
    RoostSettings,
    Snapshot,
    WorkItem,
    get_plugin_manager,
    step_context,
)
from roost_testkit.background import Background

BASE = "http://127.0.0.1:8766"


class ProgressEngine:
    """Reports progress, then waits until cancelled (or 20 s)."""

    engine_id = "progress"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, data={})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        await ctx.progress(0.4, "fetched 4 of 10 <pages>")
        for _ in range(400):
            if ctx.cancelled:
                break
            await asyncio.sleep(0.05)
        return snapshot.model_copy(update={"is_finished": True, "step": "done"})


@pytest.fixture
def running(settings: RoostSettings) -> Iterator[str]:
    """An item of ProgressEngine, running (with its progress saved) on a background worker."""
    registry = Registry.load(get_plugin_manager(autoload=False))
    bg = Background(settings, registry, [ProgressEngine()])
    try:
        bg.start_worker()
        work_id = bg.enqueue({}, engine="progress")
        bg.wait(work_id, lambda m: m.progress is not None, timeout=25)
        yield work_id
    finally:
        bg.close()


def test_running_item_shows_lease_and_progress(client: TestClient, running: str) -> None:
    html = client.get(f"/work/{running}").text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert 'data-state="running"' in html
    assert re.search(r"Lease \S+:\d+:\w+ · epoch 1 · expires in \d+ s", text)
    assert '<progress max="1" value="0.4"></progress> 40%' in html
    assert "fetched 4 of 10 &lt;pages&gt;" in html
    assert "Attempts 1 of 3" in text
    live = client.get("/api/overview").json()["live"]["running"]
    assert [w["work_id"] for w in live] == [running]
    assert live[0]["progress"]["fraction"] == 0.4


def test_cancel_a_running_item(client: TestClient, running: str, post: Any) -> None:
    r = post(client, f"/api/cancel/{running}")
    assert r.status_code == 200
    assert r.json()["meta"]["state"] == "cancelled"


def test_serve_runs_until_interrupted(settings: RoostSettings) -> None:
    env = {
        **os.environ,
        "ROOST_REDIS_URL": settings.redis_url or "",
        "ROOST_NAMESPACE": settings.namespace,
        "ROOST_HOME": str(settings.home),
    }
    code = (
        "from roost.console import serve\n"
        "from roost.runtime import RoostSettings\n"
        "serve(RoostSettings.from_env(), port=0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = re.search(r"Roost console on (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        r = httpx.get(url.group(1) + "api/health", timeout=10)
        assert r.json()["namespace"] == settings.namespace
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_serve_reports_a_port_in_use(settings: RoostSettings) -> None:
    from roost.console import serve
    from roost.console.server import bind_socket
    from roost.runtime import RoostError

    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(RoostError, match="cannot listen"):
            serve(settings, port=taken.getsockname()[1])
    finally:
        taken.close()
