"""The Redis backend as a Roost plugin: the backend of ``redis://`` URLs and the default.

The ``roost`` entry point ``redis`` names this module; its ``roost_register_backends`` hook
registers :data:`FACTORY` under every scheme of :data:`REDIS_SCHEMES` and as the default
(``ROOST_REDIS_URL`` unset: the embedded server under ``ROOST_HOME``). The CLI and the
console reach Redis only through that hook, as a :class:`roost.runtime.backends.WorkBackend`:
:class:`RedisBackend`, which is :class:`~roost.redis.RedisSwarm` plus what the apps ask of
any backend (which server it is, what its errors mean, its embedded server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from roost.redis.faults import describe as describe_error
from roost.redis.faults import is_outage, is_unreachable
from roost.redis.server import EmbeddedServer, ServerError
from roost.redis.server.control import ServerReport, run_server_command
from roost.redis.swarm import RedisSwarm
from roost.runtime.backends import (
    DEFAULT_SCHEME,
    BackendFactory,
    Fault,
    ServerCommand,
    WorkBackend,
)
from roost.runtime.errors import BadInput, RoostError
from roost.runtime.hookspecs import hookimpl
from roost.runtime.plugins import Registry
from roost.runtime.settings import RoostSettings
from roost.runtime.urls import redact_url

__all__ = [
    "FACTORY",
    "HOST_LIST_SCHEMES",
    "REDIS_SCHEMES",
    "RedisBackend",
    "RedisBackends",
    "roost_register_backends",
    "swarm_of",
    "url_problem",
]

HOST_LIST_SCHEMES = ("redis+sentinel", "redis+cluster")
"""Schemes whose URL takes a host list (``HOST[:PORT],...``)."""
REDIS_SCHEMES = ("redis", "rediss", "unix", *HOST_LIST_SCHEMES)
"""Every scheme the Redis backend serves, in the order error messages list them."""

_HOST = re.compile(r"(?:\[[^\[\]/]+\]|[^\[\]:/]+)(?::(?P<port>[^:]*))?")


def url_problem(url: str) -> str | None:
    """What no Redis client could use in ``url``, in a few words, or ``None``.

    ``redis+sentinel://`` and ``redis+cluster://`` take a host list (``HOST[:PORT],...``);
    their paths and options are checked where they are parsed (:mod:`roost.redis.topology`).
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in REDIS_SCHEMES:
        names = [f"{name}://" for name in REDIS_SCHEMES]
        return f"must start with {', '.join(names[:-1])} or {names[-1]}"
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    hosts, path = rest[:end].rpartition("@")[2], rest[end:]
    if scheme == "unix":
        return None if path.partition("?")[0].partition("#")[0] else "names no socket path"
    if not hosts:
        return "names no host"
    entries = hosts.split(",")
    if len(entries) > 1 and scheme not in HOST_LIST_SCHEMES:
        lists = " and ".join(f"{name}://" for name in HOST_LIST_SCHEMES)
        return f"names several hosts; only {lists} take a host list"
    for entry in entries:
        problem = _host_problem(entry)
        if problem and "@" in path:  # the host part may be the end of a password
            problem += "; percent-encode '/', '?', '#' and '@' in a user name or password"
        if problem:
            return problem
    return None


def _host_problem(entry: str) -> str | None:
    """What is wrong with one ``HOST[:PORT]`` of a URL, or ``None``."""
    if not entry:
        return "has an empty entry in its host list (two commas?)"
    found = _HOST.fullmatch(entry)
    if found is None:
        if entry.startswith(":") and entry.count(":") == 1:
            return "has an empty host"
        return "has a host it cannot read (IPv6 goes in [brackets])"
    port = found["port"]
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "has a bad port (use 1-65535)"
    return None


class RedisBackend(RedisSwarm):
    """:class:`~roost.redis.RedisSwarm` as a :class:`~roost.runtime.backends.WorkBackend`."""

    def engine_ids(self) -> list[str]:
        """The ids of the engines its registry holds, sorted."""
        return sorted(self.registry.engines)

    async def ping(self) -> None:
        """Check that Redis answers (a ``RedisError`` or ``OSError`` when it does not)."""
        await self.client.ping()

    @property
    def embedded(self) -> EmbeddedServer:
        """The embedded server of ``ROOST_HOME`` (used when ``ROOST_REDIS_URL`` is unset)."""
        return EmbeddedServer(self.settings.home / "redis")

    def describe(self) -> str:
        """``URL (ROOST_REDIS_URL)``, or ``embedded at URL (data in DIR; ...)``."""
        if self.settings.redis_url:
            return f"{redact_url(self.url or self.settings.redis_url)} (ROOST_REDIS_URL)"
        url = self.url
        if not url:
            status = self.embedded.status()
            url = status.url if status.running and status.url else "not running yet"
        directory = self.embedded.directory
        return f"embedded at {url} (data in {directory}; stop it with `roost server stop`)"

    def server_running(self) -> bool:
        """True with ``ROOST_REDIS_URL`` set; else whether the embedded server runs."""
        return bool(self.settings.redis_url) or self.embedded.status().running

    def manage_server(self, command: ServerCommand) -> ServerReport:
        """``start``, ``stop`` or ``status`` of the embedded server (``roost server``).

        Raises:
            RoostError: the server cannot be found, started or reached.
        """
        try:
            return run_server_command(command, self.settings)
        except ServerError as exc:
            raise RoostError(str(exc)) from None

    @property
    def fault_types(self) -> tuple[type[BaseException], ...]:
        """redis-py's errors, and ``OSError`` (a socket that failed under it)."""
        return (RedisError, OSError)

    def explain(self, exc: BaseException) -> Fault | None:
        """The cause in one line (BUSY, OOM, READONLY, refused...), and whether it passes."""
        if not isinstance(exc, self.fault_types):
            return None
        return Fault(describe_error(exc), is_outage(exc), is_unreachable(exc))


class RedisBackends:
    """The :class:`~roost.runtime.backends.BackendFactory` of the Redis backend."""

    def url_problem(self, url: str) -> str | None:
        """See :func:`url_problem`."""
        return url_problem(url)

    def open(
        self, settings: RoostSettings, *, registry: Any = None, validate_engines: bool = False
    ) -> RedisBackend:
        """A :class:`RedisBackend` for ``settings`` (not connected yet)."""
        loaded = registry if isinstance(registry, Registry) else None
        return RedisBackend(settings, registry=loaded, validate_engines=validate_engines)


FACTORY: BackendFactory = RedisBackends()
"""The factory registered under each of :data:`REDIS_SCHEMES` and as the default."""

_KEEPS_THE_PROTOCOL: type[WorkBackend] = RedisBackend
"""Pyright checks here that :class:`RedisBackend` satisfies the protocol structurally."""


@hookimpl
def roost_register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Register Redis for its URL schemes and as the default backend."""
    for scheme in (DEFAULT_SCHEME, *REDIS_SCHEMES):
        register(scheme, FACTORY)


def swarm_of(backend: object) -> RedisSwarm:
    """``backend`` as the :class:`~roost.redis.RedisSwarm` it is, for Redis-only features.

    Schedules and the Prometheus readers of :mod:`roost.redis.metrics` exist on the Redis
    backend only; the apps reach them through this.

    Raises:
        BadInput: ``backend`` is another backend's.
    """
    if not isinstance(backend, RedisSwarm):
        raise BadInput(f"this needs the Redis backend, not {type(backend).__name__}")
    return backend
