"""A swarm, and a worker when started, on an event loop in a background thread.

For synchronous tests (a Starlette TestClient, a Playwright page) that enqueue and watch work
while it runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from roost.redis import RedisSwarm
from roost.runtime import Engine, Registry, RoostSettings, WorkMeta, WorkStatus
from roost_testkit.engines import HashChainEngine

T = TypeVar("T")


class Background:
    """``engines`` are what :meth:`start_worker` runs (the hash-chain engine by default)."""

    def __init__(
        self,
        settings: RoostSettings,
        registry: Registry,
        engines: Sequence[Engine] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.engines = list(engines) if engines is not None else [HashChainEngine()]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.swarm = RedisSwarm(settings, registry=registry)
        self.call(self.swarm.connect())
        self._worker: RedisSwarm | None = None
        self._task: Future[None] | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_worker(self, concurrency: int = 4) -> None:
        worker = RedisSwarm(self.settings, registry=self.registry)
        self.call(worker.connect())
        self._worker = worker
        self._task = asyncio.run_coroutine_threadsafe(
            worker.run_worker(self.engines, concurrency=concurrency, install_signal_handlers=False),
            self.loop,
        )

    def stop_worker(self) -> None:
        if self._worker is None or self._task is None:
            return
        self.loop.call_soon_threadsafe(self._worker.stop_worker)
        self._task.result(30)
        self.call(self._worker.close())
        self._worker = self._task = None

    def enqueue(self, payload: dict[str, Any], engine: str = "hashchain", **kw: Any) -> str:
        return self.call(self.swarm.enqueue(engine, payload, **kw))

    def status(self, work_id: str) -> WorkStatus:
        return self.call(self.swarm.status(work_id))

    def meta(self, work_id: str) -> WorkMeta:
        return self.status(work_id).meta

    def state(self, work_id: str) -> str:
        return str(self.meta(work_id).state)

    def wait_state(self, work_id: str, state: str, timeout: float = 20.0) -> WorkMeta:
        return self.wait(work_id, lambda m: m.state == state, timeout)

    def wait(
        self, work_id: str, check: Callable[[WorkMeta], bool], timeout: float = 20.0
    ) -> WorkMeta:
        """Poll the item's meta until ``check`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            meta = self.meta(work_id)
            if check(meta):
                return meta
            assert time.monotonic() < deadline, f"{work_id} stayed {meta.state}"
            time.sleep(0.02)

    def close(self) -> None:
        try:
            self.stop_worker()
            self.call(self.swarm.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
