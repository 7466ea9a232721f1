"""Fixtures for console tests: real servers, items put in known states by a real worker, and
a Starlette TestClient on the console.

Tests that change work get a fresh server and namespace (``settings``, ``seed``). Tests that
only read share one seeded namespace per module (``world``, ``wclient``): a worker stops in
about a second, and most tests need the same handful of items.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns (an error under
    # filterwarnings=error) when it falls back to httpx, which is what the workspace has.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from roost.console import create_app
from roost.redis import RedisSwarm
from roost.redis.server.pool import ServerPool
from roost.runtime import (
    Engine,
    Registry,
    RoostSettings,
    Snapshot,
    WorkItem,
    get_plugin_manager,
    step_context,
)
from roost_testkit.background import Background
from roost_testkit.engines import HashChainEngine
from roost_testkit.settings import fast_settings

PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
ORIGIN = {"origin": BASE}


MARKDOWN = """# Report <em>one</em>

| check | result |
|---|---|
| dns | ok |

<script>alert('md')</script>
<img src=x onerror="alert('img')">
[run](javascript:alert('link')) [docs](https://example.com/docs)
"""


class ArtifactEngine:
    """One step that stores a JSON, a text, a binary and a Markdown artifact, then finishes."""

    engine_id = "artifacts"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, data={})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        arts = [
            await ctx.put_artifact(
                {"verdict": "<b>reachable</b>", "checks": [1, 2, 3]},
                kind="json",
                metadata={"verdict": "reachable"},
            ),
            await ctx.put_artifact("line one\n<script>alert('txt')</script>\n", kind="txt"),
            await ctx.put_artifact(b"\x89PNG\r\n\x1a\n<script>alert(1)</script>", kind="png"),
            await ctx.put_artifact(MARKDOWN, kind="md"),
        ]
        return snapshot.model_copy(
            update={
                "step": "done",
                "is_finished": True,
                "data": {"stored": len(arts)},
                "artifacts": [*snapshot.artifacts, *arts],
            }
        )


class ChattyEngine:
    """One step that reports progress three times (the runtime keeps at most two a second),
    then finishes."""

    engine_id = "chatty"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, data={})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        for i in range(3):
            if i:
                await asyncio.sleep(0.55)
            await step_context().progress((i + 1) / 3, f"part {i + 1}")
        return snapshot.model_copy(update={"step": "done", "is_finished": True})


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    """A fresh namespace on the test's private server; history on, fast retries."""
    return fast_settings(redis_url, tmp_path / "home", history=3)


async def _settle(
    settings: RoostSettings,
    items: Sequence[dict[str, Any]],
    engines: Sequence[Engine],
    wait_for: Callable[[list[str]], Any] | None,
    within: float,
) -> list[str]:
    async with RedisSwarm(settings, registry=registry()) as swarm:
        worker = RedisSwarm(settings, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker(list(engines), concurrency=4, install_signal_handlers=False)
        )
        try:
            ids = [await swarm.enqueue(**item) for item in items]
            deadline = time.monotonic() + within
            while True:
                metas = await swarm.metas(ids)
                if wait_for is not None:
                    if await wait_for(ids):
                        break
                elif all(m is not None and m.state.is_terminal for m in metas):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"items did not settle: {[m and m.state for m in metas]}")
                await asyncio.sleep(0.02)
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 30)
            await worker.close()
    return ids


Seeder = Callable[..., list[str]]


@pytest.fixture
def seed(settings: RoostSettings) -> Seeder:
    """``seed([{"engine": "hashchain", "payload": {...}}, ...])``: enqueue, run a worker until
    every item is finished (done, dead, ...), stop it, return the work ids."""

    def run(
        items: Sequence[dict[str, Any]],
        engines: Sequence[Engine] = (),
        wait_for: Callable[[list[str]], Any] | None = None,
        timeout: float = 20.0,
    ) -> list[str]:
        chosen = list(engines) or [HashChainEngine(), ArtifactEngine(), ChattyEngine()]
        return asyncio.run(_settle(settings, items, chosen, wait_for, timeout))

    return run


@pytest.fixture
def enqueue(settings: RoostSettings) -> Callable[..., str]:
    """Enqueue one item with no worker running (it stays queued)."""

    def run(engine: str = "hashchain", payload: dict[str, Any] | None = None, **kw: Any) -> str:
        async def go() -> str:
            async with RedisSwarm(settings, registry=registry()) as swarm:
                return await swarm.enqueue(engine, payload or {}, **kw)

        return asyncio.run(go())

    return run


@pytest.fixture
def client(settings: RoostSettings) -> Iterator[TestClient]:
    """A TestClient on the console (no token), as a browser on 127.0.0.1:8766 would be."""
    app = create_app(settings, port=PORT)
    with TestClient(app, base_url=BASE) as c:
        yield c


def _csrf(client: TestClient) -> str:
    token = client.get("/api/csrf").json()["csrf_token"]
    assert isinstance(token, str) and len(token) == 64
    return token


@pytest.fixture
def csrf() -> Callable[[TestClient], str]:
    """``csrf(client)``: the CSRF token for this client's cookie (fetching it sets the cookie)."""
    return _csrf


@pytest.fixture
def post() -> Callable[..., Any]:
    """``post(client, path, **kw)``: a same-origin POST with the CSRF header, as pages send."""

    def run(client: TestClient, path: str, **kw: Any) -> Any:
        headers = {**ORIGIN, "x-csrf-token": _csrf(client), **kw.pop("headers", {})}
        return client.post(path, headers=headers, **kw)

    return run


@pytest.fixture(scope="session")
def shared_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the read-only tests of the whole session (one namespace per module)."""
    pool = ServerPool(tmp_path_factory.mktemp("console-redis"))
    try:
        yield pool.make().url
    finally:
        pool.close()


DEAD = {"engine": "hashchain", "payload": {"mode": "raise", "steps": 2}, "max_attempts": 1}
SCRIPT = "<script>alert('xss')</script>"


@dataclass(frozen=True)
class World:
    """A namespace seeded once: finished, dead, artifact-making and hostile-payload items."""

    settings: RoostSettings
    done: str
    """hashchain, 3 steps: done at version 4, with versions 3, 2, 1 kept."""
    dead: str
    """hashchain whose first step raises, one attempt allowed: dead at version 1."""
    artifacts: str
    """one step that stores a json, a txt and a png artifact."""
    script: str
    """done, with ``<script>`` in its payload's keys and values."""


@pytest.fixture(scope="module")
def world(shared_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The module's shared, read-only namespace. Do not change its work in a test."""
    settings = fast_settings(shared_redis_url, tmp_path_factory.mktemp("world") / "home", history=3)
    items = [
        {"engine": "hashchain", "payload": {"steps": 3, "who": "ops"}},
        DEAD,
        {"engine": "artifacts"},
        {"engine": "hashchain", "payload": {"note": SCRIPT, SCRIPT: 1, "steps": 1}},
    ]
    engines: list[Engine] = [HashChainEngine(), ArtifactEngine()]
    ids = asyncio.run(_settle(settings, items, engines, None, 20.0))
    return World(settings, *ids)


@pytest.fixture
def wclient(world: World) -> Iterator[TestClient]:
    """A TestClient on the shared namespace (no token)."""
    with TestClient(create_app(world.settings, port=PORT), base_url=BASE) as c:
        yield c


@pytest.fixture
def background(settings: RoostSettings) -> Iterator[Background]:
    """A swarm and a hash-chain worker on a background loop, on the test's namespace."""
    bg = Background(settings, registry())
    try:
        yield bg
    finally:
        bg.close()
