"""Real Redis-compatible servers on 127.0.0.1: the embedded default and test topologies.

The runtime imports only what this package re-exports: the launcher
(:class:`ServerProcess`) and the embedded default (:class:`EmbeddedServer`,
:func:`redis_url_for`); those import only the standard library, so the test plugin loads
them cheaply. Beside them:

- :mod:`roost.redis.server.control`: ``start``, ``stop`` and ``status`` of the embedded
  server, behind both ``python -m roost.redis.server`` and ``roost server``;
- :mod:`roost.redis.server.pool`: private servers for tests, all stopped at the end;
- :mod:`roost.redis.server.sentinel`, :mod:`roost.redis.server.cluster`: replicated test
  topologies, their nodes (:mod:`roost.redis.server.nodes`) optionally behind pausable
  proxies (:mod:`roost.redis.server.proxy`).
"""

from roost.redis.server.embedded import EmbeddedServer, EmbeddedStatus, redis_url_for
from roost.redis.server.process import (
    HOST,
    AppendFsync,
    ConfigValue,
    PortInUse,
    ServerError,
    ServerNotFound,
    ServerProcess,
    ServerStartError,
    find_server_binary,
    free_port,
    pid_alive,
)

__all__ = [
    "HOST",
    "AppendFsync",
    "ConfigValue",
    "EmbeddedServer",
    "EmbeddedStatus",
    "PortInUse",
    "ServerError",
    "ServerNotFound",
    "ServerProcess",
    "ServerStartError",
    "find_server_binary",
    "free_port",
    "pid_alive",
    "redis_url_for",
]
