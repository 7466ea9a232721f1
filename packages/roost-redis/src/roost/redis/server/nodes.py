"""The parts the replicated test topologies share: nodes, how they run, polling.

A :class:`Node` is one server process of a Sentinel group or a Cluster (a data node or a
sentinel), optionally behind a :class:`~roost.redis.server.proxy.TcpProxy`. Its admin client
talks to the process directly (never through the proxy), never retries, and is closed with
the node. :func:`launch_node` starts one on a free port. :class:`NodeGroup` is the base of
both topologies: where the nodes live, how their data nodes run (:class:`NodeOptions`:
proxied or not, append-only file, binary, extra config), start and close.
:func:`wait_until` polls a condition and fails with a message that says what was awaited
and what was last seen.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, Self, TypedDict, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from roost.redis.server.process import (
    HOST,
    ConfigValue,
    PortInUse,
    ServerError,
    ServerProcess,
    find_server_binary,
    free_port,
)
from roost.redis.server.proxy import TcpProxy

__all__ = [
    "REPLICATION_DEFAULTS",
    "Address",
    "Node",
    "NodeGroup",
    "NodeOptions",
    "TopologyTimeout",
    "close_all",
    "launch_node",
    "resolve_binary",
    "wait_until",
]

Address = tuple[str, int]
_T = TypeVar("_T")
_ADMIN_TIMEOUT = 5.0
_POLL = 0.05
_PORT_ATTEMPTS = 5
# Replication settings every topology node gets: a replica's first full sync starts at once
# (the default waits 5 s for more replicas to arrive).
REPLICATION_DEFAULTS: dict[str, ConfigValue] = {"repl-diskless-sync-delay": 0}


class TopologyTimeout(ServerError):
    """A topology did not reach the awaited state in time; the message says what it saw."""


def resolve_binary(binary: str | Path | None) -> Path:
    """The server binary to launch: ``binary`` if given, else :func:`find_server_binary`."""
    return Path(binary) if binary is not None else find_server_binary()


def wait_until(
    check: Callable[[], _T | None],
    timeout: float,
    what: str,
    seen: Callable[[], object] | None = None,
) -> _T:
    """Call ``check`` until it returns something other than ``None``/``False``; return it.

    Errors from Redis or the network while polling count as "not yet".

    Args:
        check: the condition; its truthy result is returned.
        timeout: seconds before giving up.
        what: the awaited state, for the error message ("a new primary").
        seen: called once on timeout to describe the last state for the message.

    Raises:
        TopologyTimeout: the condition did not hold within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result is not None and result is not False:
                return result
        except (redis.RedisError, OSError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            detail = ""
            if seen is not None:
                with contextlib.suppress(Exception):
                    detail = f"; last seen: {seen()}"
            if last_error is not None:
                detail += f"; last error: {last_error!r}"
            raise TopologyTimeout(f"no {what} within {timeout:g}s{detail}")
        time.sleep(_POLL)


class Node:
    """One server of a topology: its process, an optional proxy, and an admin client.

    Attributes:
        name: ``node-0``, ``sentinel-2``...: also the name of its data directory.
        proxy: the proxy in front of it, or ``None``.
    """

    def __init__(self, name: str, server: ServerProcess, proxy: TcpProxy | None = None) -> None:
        """Wrap a (not necessarily started) server and its proxy."""
        self.name = name
        self.proxy = proxy
        self._server = server
        self._client: redis.Redis | None = None

    def __repr__(self) -> str:
        state = "up" if self.alive else "down"
        return f"Node({self.name}, port={self._server.port}, {state})"

    @property
    def server(self) -> ServerProcess:
        """The server process (a restart may replace it; the port and directory stay)."""
        return self._server

    @property
    def port(self) -> int:
        """The server's own port."""
        return self._server.port

    @property
    def address(self) -> Address:
        """Where the others reach this node: its proxy's port if it has one."""
        return (HOST, self.proxy.port if self.proxy is not None else self._server.port)

    @property
    def data_dir(self) -> Path:
        """The server's directory (config, log, append-only files)."""
        return self._server.data_dir

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._server.pid

    @property
    def alive(self) -> bool:
        """Whether the process exists (a paused process counts)."""
        return self._server.is_running()

    def replace(self, server: ServerProcess) -> None:
        """Use ``server`` from now on (same directory and port; the old one must be down)."""
        if self._server.is_running():
            raise ServerError(f"{self.name} is still running")
        self._server = server

    def client(self) -> redis.Redis:
        """The admin client: direct to the process, no retries, replies decoded."""
        if self._client is None:
            self._client = redis.Redis(
                host=HOST,
                port=self._server.port,
                decode_responses=True,
                socket_timeout=_ADMIN_TIMEOUT,
                socket_connect_timeout=_ADMIN_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    def command(self, *args: Any) -> Any:
        """Run one command on this node and return redis-py's parsed reply."""
        return cast(Any, self.client().execute_command(*args))

    def info(self, section: str) -> dict[str, Any]:
        """``INFO section`` as a dict."""
        reply: Any = self.client().info(section)
        return cast(dict[str, Any], reply)

    def libraries(self) -> set[str]:
        """The names of the Functions libraries loaded on this node (``FUNCTION LIST``)."""
        return {
            str(dict(zip(entry[::2], entry[1::2], strict=True))["library_name"])
            for entry in self.command("FUNCTION", "LIST")
        }

    def role(self) -> str:
        """``master`` or ``slave`` (``INFO replication``'s ``role``)."""
        return str(self.info("replication")["role"])

    def kill(self) -> None:
        """SIGKILL the server (no save, no AOF flush beyond what was fsynced)."""
        self._server.kill()
        self._drop_client()

    def close(self) -> None:
        """SIGKILL the server (its data is not needed any more), stop the proxy and client."""
        try:
            self.kill()
        finally:
            if self.proxy is not None:
                self.proxy.close()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class _Closable(Protocol):
    def close(self) -> None: ...


def close_all(items: Iterable[_Closable]) -> None:
    """Close every item in turn; raise the first failure after trying them all."""
    failures: list[Exception] = []
    for item in items:
        try:
            item.close()
        except Exception as exc:  # keep closing the others
            failures.append(exc)
    if failures:
        raise failures[0]


def launch_node(
    name: str, make: Callable[[int, int], ServerProcess], *, proxied: bool, timeout: float = 10.0
) -> Node:
    """Start a node on a free port, behind a new proxy if ``proxied``.

    Args:
        name: the node's name.
        make: builds the server from its port and the port it must announce (the proxy's
            when proxied, else its own); called again with a new port if the first is taken.
        proxied: put a :class:`TcpProxy` in front of it.
        timeout: seconds to wait for the server to answer.
    """
    proxy = TcpProxy(0).start() if proxied else None
    try:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = free_port()
            if proxy is not None:
                proxy.target_port = port
            server = make(port, proxy.port if proxy is not None else port)
            try:
                return Node(name, server.start(timeout), proxy)
            except PortInUse:
                if attempt == _PORT_ATTEMPTS:
                    raise
        raise ServerError(f"{name}: no free port")  # not reached: the last attempt raised
    except BaseException:
        if proxy is not None:
            proxy.close()
        raise


class NodeOptions(TypedDict, total=False):
    """How a topology runs its data nodes (the keyword arguments of :class:`NodeGroup`)."""

    proxied: bool
    appendonly: bool
    binary: str | os.PathLike[str] | None
    config: Mapping[str, ConfigValue] | None


class NodeGroup(ABC):
    """Data nodes on 127.0.0.1 that run alike: what the topology fixtures share.

    Subclasses build the topology in :meth:`_build` and name their nodes ``node-0``,
    ``node-1``... (also their directories under ``root``).

    Attributes:
        root: the directory holding one directory per node.
        nodes: the data nodes, in the order they were started.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        proxied: bool = False,
        appendonly: bool = True,
        binary: str | os.PathLike[str] | None = None,
        config: Mapping[str, ConfigValue] | None = None,
    ) -> None:
        """Describe the group; nothing runs until :meth:`start`.

        Args:
            root: directory for the nodes' directories (created).
            proxied: put each data node behind its own TCP proxy, known by its port.
            appendonly: the data nodes' append-only file (on: a restarted node keeps its data).
            binary: the server binary; default: the one the single-server fixtures use.
            config: extra directives for every data node.
        """
        self.root = Path(root).absolute()
        self.nodes: list[Node] = []
        self._proxied = proxied
        self._appendonly = appendonly
        self._binary = Path(binary) if binary is not None else None
        self._config = dict(config or {})

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, timeout: float = 30.0) -> Self:
        """Start and build the topology; return once it is stable (see the subclass)."""
        self._binary = resolve_binary(self._binary)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._build(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """SIGKILL every node and stop every proxy; raise the first failure after all."""
        nodes, self.nodes = self.nodes, []
        close_all(reversed(nodes))

    @property
    def binary(self) -> Path | None:
        """The server binary (resolved at :meth:`start`)."""
        return self._binary

    @abstractmethod
    def _build(self, timeout: float) -> None:
        """Start the nodes and wait until the topology is stable."""

    def _launch(self, directives: Callable[[str, int], dict[str, ConfigValue]]) -> Node:
        """Start the next data node; ``directives(name, announced_port)`` gives its own."""
        name = f"node-{len(self.nodes)}"
        node = launch_node(
            name,
            lambda port, announced: self._data_server(name, port, directives(name, announced)),
            proxied=self._proxied,
        )
        self.nodes.append(node)
        return node

    def _data_server(self, name: str, port: int, own: dict[str, ConfigValue]) -> ServerProcess:
        """The server of data node ``name``.

        Its config: the replication defaults, then its ``own`` directives, then the group's
        ``config``.
        """
        return ServerProcess(
            self.root / name,
            port=port,
            appendonly=self._appendonly,
            config={**REPLICATION_DEFAULTS, **own, **self._config},
            binary=self._binary,
        )

    @staticmethod
    def _live(nodes: list[Node]) -> list[Node]:
        return [node for node in nodes if node.alive]
