"""Fixtures for runtime tests: swarms on a private server, workers in the background."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from roost.redis import RedisSwarm
from roost.runtime import Engine, Registry, RoostSettings, get_plugin_manager


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> RoostSettings:
    """Settings for a fresh namespace on the test's private server (short lease)."""
    return RoostSettings.from_env(
        {},
        redis_url=redis_url,
        home=tmp_path / "home",
        namespace=f"t{uuid.uuid4().hex[:8]}",
        lease_ttl=3.0,
        retry_delay=0.05,
        retry_max_delay=0.2,
        grace_period=5.0,
    )


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


@pytest.fixture
async def swarm(settings: RoostSettings) -> AsyncIterator[RedisSwarm]:
    async with RedisSwarm(settings, registry=registry()) as s:
        yield s


WorkerFactory = Callable[..., contextlib.AbstractAsyncContextManager[RedisSwarm]]


@pytest.fixture
def running_worker(settings: RoostSettings) -> WorkerFactory:
    """``async with running_worker([engine], concurrency=4, **overrides) as w:``.

    ``engines`` may also map engines to their slots, as ``run_worker`` takes them.
    """

    @contextlib.asynccontextmanager
    async def run(
        engines: Sequence[Engine] | Mapping[Engine, int],
        concurrency: int = 4,
        sinks: Sequence[Any] = (),
        observers: Sequence[Any] = (),
        **overrides: Any,
    ) -> AsyncIterator[RedisSwarm]:
        s = settings.model_copy(update=overrides) if overrides else settings
        worker = RedisSwarm(s, registry=registry())
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker(
                engines,
                concurrency=concurrency,
                install_signal_handlers=False,
                sinks=sinks,
                observers=observers,
            )
        )
        try:
            yield worker
        finally:
            worker.stop_worker()
            try:
                await asyncio.wait_for(asyncio.shield(task), 30)
            except TimeoutError:
                for t in asyncio.all_tasks():
                    t.print_stack(file=sys.stderr)
                raise
            finally:
                await worker.close()

    return run


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float = 20.0,  # noqa: ASYNC109
    interval: float = 0.02,
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    return wait_until


@pytest.fixture
def spawn_worker(
    settings: RoostSettings, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``roost_testkit.worker_main`` in a subprocess with this test's settings."""
    procs: list[subprocess.Popen[str]] = []
    logs: list[Any] = []

    def spawn(
        concurrency: int = 4,
        env: dict[str, str] | None = None,
        engines: str = "hashchain",
        **overrides: Any,
    ) -> subprocess.Popen[str]:
        s = settings.model_copy(update=overrides)
        full = {
            **os.environ,
            "ROOST_REDIS_URL": s.redis_url or "",
            "ROOST_NAMESPACE": s.namespace,
            "ROOST_HOME": str(s.home),
            "ROOST_LEASE_TTL": str(s.lease_ttl),
            "ROOST_RETRY_DELAY": str(s.retry_delay),
            "ROOST_RETRY_MAX_DELAY": str(s.retry_max_delay),
            "ROOST_GRACE_PERIOD": str(s.grace_period),
            "ROOST_MAX_ATTEMPTS": str(s.max_attempts),
            "ROOST_INLINE_STEPS": str(s.inline_steps),
            "ROOST_RETENTION": str(s.retention),
            **(env or {}),
        }
        stderr = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115
        logs.append(stderr)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roost_testkit.worker_main",
                "--concurrency",
                str(concurrency),
                "--engines",
                engines,
            ],
            env=full,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"worker did not start: {line!r}"
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    for handle in logs:
        handle.close()
