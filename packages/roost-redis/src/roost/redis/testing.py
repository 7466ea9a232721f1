"""Pytest fixtures for real Redis-compatible servers on free ports (one family for all tests).

Load it with ``pytest_plugins = ["roost.redis.testing"]`` in the root ``conftest.py``.

- ``redis_server_factory``: ``make(appendonly=False, appendfsync="everysec", **config)``
  starts a private :class:`~roost.redis.server.ServerProcess` in its own directory under
  ``tmp_path``; every server it started is stopped at teardown, paused or not, pass or fail.
- ``redis_server``: one fresh server for the test; ``redis_url``: its URL.
- ``roost_home``: a fresh ``ROOST_HOME`` (and no ``ROOST_REDIS_URL``) for code that uses the
  embedded default; the embedded server started there is stopped at teardown.

No test should rely on a server on port 6379. Set ``ROOST_TEST_SERVER_BINARY`` to run the
tests against another server binary (e.g. ``/usr/bin/redis-server``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from roost.redis.server import AppendFsync, ConfigValue, EmbeddedServer, ServerProcess

__all__ = [
    "SERVER_BINARY_ENV",
    "RedisServerFactory",
    "ServerPool",
    "redis_server",
    "redis_server_factory",
    "redis_url",
    "roost_home",
]


SERVER_BINARY_ENV = "ROOST_TEST_SERVER_BINARY"
"""Environment variable naming the server binary test fixtures launch."""


class RedisServerFactory(Protocol):
    """The callable ``redis_server_factory`` yields."""

    def __call__(
        self,
        appendonly: bool = False,
        appendfsync: AppendFsync = "everysec",
        **config: ConfigValue,
    ) -> ServerProcess:
        """Start a private server and return it (already answering PING)."""
        ...


class ServerPool:
    """Starts servers in subdirectories of ``root`` and stops all of them on :meth:`close`."""

    def __init__(self, root: Path) -> None:
        """Keep servers under ``root`` (created on demand)."""
        self._root = root
        self._servers: list[ServerProcess] = []

    @property
    def servers(self) -> list[ServerProcess]:
        """The servers started so far (including stopped ones)."""
        return list(self._servers)

    def make(
        self,
        appendonly: bool = False,
        appendfsync: AppendFsync = "everysec",
        **config: ConfigValue,
    ) -> ServerProcess:
        """Start a server on a free port in a new subdirectory and return it.

        Args:
            appendonly: turn the append-only file on.
            appendfsync: ``always``, ``everysec`` or ``no``.
            **config: extra directives, e.g. ``maxmemory_policy="allkeys-lru"``.
        """
        binary = os.environ.get(SERVER_BINARY_ENV)
        server = ServerProcess(
            self._root / f"server-{len(self._servers)}",
            appendonly=appendonly,
            appendfsync=appendfsync,
            config=config,
            binary=Path(binary) if binary else None,
        )
        self._servers.append(server)  # before start: a half-started server is cleaned too
        return server.start()

    def close(self) -> None:
        """Stop every server (resuming paused ones first); SIGKILL those that resist."""
        failures: list[Exception] = []
        while self._servers:
            server = self._servers.pop()
            try:
                server.stop(timeout=5.0)
            except Exception as exc:  # keep stopping the others
                failures.append(exc)
                with contextlib.suppress(Exception):
                    server.kill()
        if failures:
            raise failures[0]


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """A factory of private servers, all stopped at teardown.

    Use it as ``server = redis_server_factory(appendonly=True)``.
    """
    pool = ServerPool(tmp_path / "redis")
    try:
        yield pool.make
    finally:
        pool.close()


@pytest.fixture
def redis_server(redis_server_factory: RedisServerFactory) -> ServerProcess:
    """One fresh server for this test, append-only file off."""
    return redis_server_factory()


@pytest.fixture
def redis_url(redis_server: ServerProcess) -> str:
    """The URL of this test's fresh server (``redis://127.0.0.1:PORT/0``)."""
    return redis_server.url


@pytest.fixture
def roost_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``ROOST_HOME`` with ``ROOST_REDIS_URL`` unset (the embedded default).

    The embedded server that code under test starts there is stopped at teardown.
    """
    home = tmp_path / "roost-home"
    monkeypatch.setenv("ROOST_HOME", str(home))
    monkeypatch.delenv("ROOST_REDIS_URL", raising=False)
    try:
        yield home
    finally:
        EmbeddedServer(home / "redis").stop()
