"""What every scenario shares: its environment (servers, processes, files) and its result."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roost.redis import RedisSwarm
from roost.redis.server import AppendFsync, ServerProcess
from roost.redis.testing import ServerPool
from roost.runtime import Registry, RoostSettings, get_plugin_manager
from roost_testkit.chaos.history import Problems
from roost_testkit.chaos.procs import Proc, ProcessGroup, worker_env

T = TypeVar("T")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
BIG_STREAM = 10_000_000
"""Event stream cap for the suite: the audits read the whole history of a run."""


@dataclass
class Result:
    """One scenario's figures and verdict (``failures`` empty = pass)."""

    name: str
    items: int = 0
    commits: int = 0
    duplicates: int = 0
    fenced: int = 0
    max_resume: float | None = None
    dead: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list[str])
    notes: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def passed(self) -> bool:
        return not self.failures

    def check(self, ok: bool, message: str) -> bool:
        """Record ``message`` as a failure unless ``ok``; return ``ok``."""
        if not ok:
            self.failures.append(message)
        return ok

    def absorb(self, problems: Problems) -> None:
        self.failures += problems.summary()

    def resume(self, delays: list[float]) -> None:
        if delays:
            worst = max(delays)
            self.max_resume = worst if self.max_resume is None else max(self.max_resume, worst)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "items": self.items,
            "steps_committed": self.commits,
            "duplicates": self.duplicates,
            "fenced_refused": self.fenced,
            "max_resume_s": None if self.max_resume is None else round(self.max_resume, 3),
            "dead_letters": self.dead,
            "seconds": round(self.seconds, 1),
            "passed": self.passed,
            "failures": self.failures,
            "notes": self.notes,
        }


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


class ChaosEnv:
    """Private servers, processes and files of one scenario run, all cleaned up on close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.servers = ServerPool(root / "redis")
        self.procs = ProcessGroup(root / "logs")

    def server(
        self, *, appendonly: bool = True, appendfsync: AppendFsync = "everysec"
    ) -> ServerProcess:
        return self.servers.make(appendonly=appendonly, appendfsync=appendfsync)

    def settings(self, server: ServerProcess, **overrides: Any) -> RoostSettings:
        values: dict[str, Any] = {
            "redis_url": server.url,
            "home": self.root / "home",
            "namespace": f"chaos{uuid.uuid4().hex[:6]}",
            "lease_ttl": 3.0,
            "retry_delay": 0.05,
            "retry_max_delay": 0.5,
            "grace_period": 10.0,
            "events_maxlen": BIG_STREAM,
        }
        values.update(overrides)
        return RoostSettings.from_env({}, **values)

    @property
    def attempt_log(self) -> Path:
        return self.root / "attempts.jsonl"

    @property
    def sink_log(self) -> Path:
        return self.root / "sink.jsonl"

    def env(self, settings: RoostSettings, **extra: str) -> dict[str, str]:
        """Worker environment: settings, plus the attempt log and the sink log."""
        return worker_env(
            settings,
            ROOST_TEST_LOG=str(self.attempt_log),
            ROOST_CHAOS_EVENTS=str(self.sink_log),
            **extra,
        )

    def worker(self, settings: RoostSettings, concurrency: int, **extra: str) -> Proc:
        return self.procs.start_worker(self.env(settings, **extra), concurrency)

    async def workers(self, settings: RoostSettings, n: int, concurrency: int) -> list[Proc]:
        """Start ``n`` workers at once (their imports overlap) and wait until all are ready."""
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(self.worker, settings, concurrency) for _ in range(n))
            )
        )

    @contextlib.asynccontextmanager
    async def swarm(self, settings: RoostSettings) -> AsyncIterator[RedisSwarm]:
        async with RedisSwarm(settings, registry=registry()) as swarm:
            yield swarm

    def close(self) -> None:
        try:
            self.procs.close()
        finally:
            self.servers.close()


async def until(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.05,
) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False).

    A Redis outage while polling counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return True
        except REDIS_DOWN:
            pass
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


async def persist(call: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:  # noqa: ASYNC109
    """Run ``call()`` until it gets through to Redis (the driver rides out outages too)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except REDIS_DOWN:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def stop_workers(
    env: ChaosEnv,
    procs: list[Proc],
    timeout: float,  # noqa: ASYNC109 (a wait on processes, per process)
) -> dict[str, int | None]:
    """SIGTERM every live worker of ``procs`` at once; return their exit codes by name."""
    live = [p for p in procs if p.alive()]
    for p in live:
        env.procs.send(p, signal.SIGTERM)
    codes = await asyncio.gather(*(asyncio.to_thread(env.procs.wait, p, timeout) for p in live))
    return {p.name: c for p, c in zip(live, codes, strict=True)}
