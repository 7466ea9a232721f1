"""Pytest fixtures for real Redis-compatible servers on free ports (one family for all tests).

Load it with ``pytest_plugins = ["roost.redis.testing"]`` in the root ``conftest.py``.

- ``redis_server_factory``: ``make(appendonly=False, appendfsync="everysec", **config)``
  starts a private :class:`~roost.redis.server.ServerProcess` in its own directory under
  ``tmp_path`` (a :class:`~roost.redis.server.pool.ServerPool`); every server it started is
  stopped at teardown, paused or not, pass or fail.
- ``redis_server``: one fresh server for the test; ``redis_url``: its URL.
- ``roost_home``: a fresh ``ROOST_HOME`` (and no ``ROOST_REDIS_URL``) for code that uses the
  embedded default; the embedded server started there is stopped at teardown.
- ``redis_sentinel_factory``: ``make(**options)`` starts a
  :class:`~roost.redis.server.sentinel.SentinelGroup` (a primary, a replica, three
  sentinels; options as its constructor's); ``redis_sentinel``: one started group.
- ``redis_cluster_factory``: ``make(**options)`` starts a
  :class:`~roost.redis.server.cluster.ClusterGroup` (three primaries, three replicas);
  ``redis_cluster``: one started cluster.
- ``tcp_proxy_factory``: ``make(target_port)`` starts a
  :class:`~roost.redis.server.proxy.TcpProxy` in front of a port.

:class:`RedisConformanceBackend` runs :mod:`roost.runtime.testing.backend_conformance` on a
server: give it the server's URL in a subclass's ``backend`` fixture.

Every group, proxy and server a fixture started is stopped at teardown, pass or fail.

No test should rely on a server on port 6379. Set ``ROOST_TEST_SERVER_BINARY`` to run the
tests against another server binary (e.g. ``/usr/bin/redis-server``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from roost.redis.server import AppendFsync, ConfigValue, EmbeddedServer, ServerProcess
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.nodes import NodeGroup, close_all
from roost.redis.server.pool import ServerPool, configured_binary
from roost.redis.server.proxy import TcpProxy
from roost.redis.server.sentinel import SentinelGroup
from roost.redis.swarm import RedisSwarm
from roost.runtime.plugins import DISABLE_AUTOLOAD_ENV, Registry, get_plugin_manager
from roost.runtime.settings import ENV_VARS, RoostSettings
from roost.runtime.testing.backend_conformance import ConformanceBackend
from roost.runtime.testing.processes import WorkerPool, WorkerProcess

__all__ = [
    "RedisConformanceBackend",
    "RedisServerFactory",
    "redis_cluster",
    "redis_cluster_factory",
    "redis_sentinel",
    "redis_sentinel_factory",
    "redis_server",
    "redis_server_factory",
    "redis_url",
    "roost_home",
    "tcp_proxy_factory",
]


_Group = TypeVar("_Group", bound=NodeGroup)


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


def _groups(root: Path, kind: Callable[..., _Group]) -> Iterator[Callable[..., _Group]]:
    """Yield a factory of started groups under ``root``; close them all at the end."""
    groups: list[_Group] = []

    def make(**options: Any) -> _Group:
        group = kind(root / f"group-{len(groups)}", binary=configured_binary(), **options)
        groups.append(group)  # before start: a half-started group is closed too
        return group.start()

    try:
        yield make
    finally:
        close_all(reversed(groups))


@pytest.fixture
def redis_sentinel_factory(tmp_path: Path) -> Iterator[Callable[..., SentinelGroup]]:
    """A factory of Sentinel groups (``make(proxied=True, replicas=2)``), closed at teardown."""
    yield from _groups(tmp_path / "sentinel", SentinelGroup)


@pytest.fixture
def redis_sentinel(redis_sentinel_factory: Callable[..., SentinelGroup]) -> SentinelGroup:
    """A started Sentinel group: one primary, one replica, three sentinels."""
    return redis_sentinel_factory()


@pytest.fixture
def redis_cluster_factory(tmp_path: Path) -> Iterator[Callable[..., ClusterGroup]]:
    """A factory of clusters (``make(proxied=True, node_timeout_ms=2000)``), closed at teardown."""
    yield from _groups(tmp_path / "cluster", ClusterGroup)


@pytest.fixture
def redis_cluster(redis_cluster_factory: Callable[..., ClusterGroup]) -> ClusterGroup:
    """A started cluster: three primaries, each with one replica."""
    return redis_cluster_factory()


@pytest.fixture
def tcp_proxy_factory() -> Iterator[Callable[[int], TcpProxy]]:
    """A factory of started proxies in front of a loopback port, closed at teardown."""
    proxies: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        proxies.append(proxy)
        return proxy.start()

    try:
        yield make
    finally:
        close_all(proxies)


class RedisConformanceBackend(ConformanceBackend):
    """Roost on Redis, for the backend conformance suite: one fresh namespace per instance.

    Stores are :class:`RedisSwarm` objects; workers are
    :class:`~roost.runtime.testing.processes.WorkerProcess` subprocesses running
    ``RedisSwarm().run_worker`` configured by ``ROOST_*`` variables, as ``roost worker`` is.

    Args:
        url: the server (or Sentinel, Cluster... URL) to run on.
        root: a directory of the test's own (``ROOST_HOME`` and worker logs go there).
        pool: warm worker processes to start workers from (the suite's ``worker_pool``).
    """

    store_factory = "roost.redis:RedisSwarm"
    """What the worker processes run (``--store`` of ``roost.runtime.testing.worker``)."""

    def __init__(self, url: str, root: Path, pool: WorkerPool | None = None) -> None:
        """Use a new namespace on ``url``."""
        self.root = root
        self.pool = pool
        self.settings = RoostSettings.from_env(
            {}, redis_url=url, home=root / "home", namespace=f"c{uuid.uuid4().hex[:8]}"
        )

    def open_store(self) -> RedisSwarm:
        """A swarm on the namespace (connects on ``async with``)."""
        return RedisSwarm(self.settings, registry=Registry.load(get_plugin_manager(autoload=False)))

    async def start_worker(
        self, engines: Sequence[str], *, concurrency: int, label: str, **settings: Any
    ) -> WorkerProcess:
        """Start a worker process with the namespace's settings and ``settings``."""
        merged = RoostSettings.from_env({}, **{**self.settings.model_dump(), **settings})
        env = {k: v for k, v in os.environ.items() if k not in _ROOST_VARIABLES}
        env.update(_environment(merged))
        env[DISABLE_AUTOLOAD_ENV] = "1"
        return await WorkerProcess.start(
            self.store_factory,
            engines,
            concurrency=concurrency,
            label=label,
            env=env,
            log=self.root / f"worker-{label}.log",
            pool=self.pool,
        )


_ROOST_VARIABLES = frozenset(ENV_VARS.values())


def _environment(settings: RoostSettings) -> dict[str, str]:
    """``settings`` as the ``ROOST_*`` variables that read back to them."""
    out: dict[str, str] = {}
    for field, var in ENV_VARS.items():
        value = getattr(settings, field)
        if value is None:
            continue
        out[var] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out
