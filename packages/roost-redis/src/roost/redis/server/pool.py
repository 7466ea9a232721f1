"""Private servers for tests: started in directories of their own, all stopped at the end.

:class:`ServerPool` backs the ``redis_server_factory`` fixture (:mod:`roost.redis.testing`)
and the suites that manage servers themselves (chaos, benchmarks). Set
``ROOST_TEST_SERVER_BINARY`` to launch another server binary (e.g. ``/usr/bin/redis-server``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from roost.redis.server.process import AppendFsync, ConfigValue, ServerProcess

__all__ = ["SERVER_BINARY_ENV", "ServerPool", "configured_binary"]

SERVER_BINARY_ENV = "ROOST_TEST_SERVER_BINARY"
"""Environment variable naming the server binary test fixtures launch."""


def configured_binary() -> Path | None:
    """The binary ``ROOST_TEST_SERVER_BINARY`` names, or ``None`` for the default one."""
    binary = os.environ.get(SERVER_BINARY_ENV)
    return Path(binary) if binary else None


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
        server = ServerProcess(
            self._root / f"server-{len(self._servers)}",
            appendonly=appendonly,
            appendfsync=appendfsync,
            config=config,
            binary=configured_binary(),
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
