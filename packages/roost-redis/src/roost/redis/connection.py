"""Redis clients for Roost, and the start-up check of the server they talk to."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roost.redis.aio import AsyncRedis, typed
from roost.redis.topology import (
    SentinelUrl,
    cluster_client,
    is_topology_url,
    parse_topology_url,
    sentinel_client,
)
from roost.runtime.errors import RoostError
from roost.runtime.urls import redact_url

__all__ = [
    "BLOCK_SECONDS",
    "INFRA_ERRORS",
    "ServerInfo",
    "check_server",
    "make_client",
    "redact_url",
]

log = logging.getLogger("roost.redis")

BLOCK_SECONDS = 1.0
"""How long a blocking read (BLMOVE, XREAD) waits server-side before returning empty."""

INFRA_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
"""Errors that mean "Redis is unreachable" (one kind of outage: see roost.redis.faults)."""

COMMAND_TIMEOUT = 5.0
"""Socket timeout of ordinary commands: a hung server is noticed after this long."""


class _HiredisPacking:
    """Pack commands with hiredis's C packer instead of redis-py's Python one.

    redis-py's asyncio connection encodes every argument in Python; a Roost script call has
    about forty arguments, and packing them was the largest single cost of a step. hiredis
    (already installed for parsing replies) packs the same bytes about ten times faster.
    Anything it does not take (memoryviews, odd types) goes to redis-py's packer.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str) and " " in first:
            args = (*first.split(), *args[1:])  # "CONFIG GET" is sent as two words
        try:
            return [cast(bytes, hiredis.pack_command(args))]
        except TypeError:
            fallback: Any = super().pack_command(*args)  # type: ignore[misc]
            return cast(list[bytes], fallback)


class FastConnection(_HiredisPacking, Connection):
    """TCP connection with C command packing."""


class FastSSLConnection(_HiredisPacking, SSLConnection):
    """TLS connection with C command packing."""


class FastUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    """Unix socket connection with C command packing."""


class _ClosedUnderUs:
    """Raise a connection closed between its connect and its write as a dropped connection.

    redis-py can close a connection that another task just took: the Sentinel pool closes
    its idle connections from inside another connection's connect when the sentinels name
    a new primary, and the cluster client closes a node's connections when it reloads the
    slot map. The write then fails with ``AttributeError`` (no writer). It is raised as a
    ``ConnectionError``, so the client's retry and Roost's outage handling take it.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except AttributeError as exc:
            await cast(Connection, self).disconnect()
            raise RedisConnectionError(f"connection closed while sending: {exc}") from exc


class FastSentinelConnection(_ClosedUnderUs, _HiredisPacking, SentinelManagedConnection):
    """Connection to the primary a group of sentinels names, with C command packing."""


class FastClusterConnection(_ClosedUnderUs, FastConnection):
    """Connection to a cluster node, with C command packing."""


_CONNECTION_CLASSES: dict[str, type[Connection] | type[UnixDomainSocketConnection]] = {
    "redis": FastConnection,
    "rediss": FastSSLConnection,
    "unix": FastUnixConnection,
}


def make_client(url: str, *, blocking: bool = False, home_key: str | None = None) -> AsyncRedis:
    """Build a client for ``url``.

    ``redis://``, ``rediss://`` and ``unix://`` reach one server; ``redis+sentinel://`` the
    primary its sentinels name and ``redis+cluster://`` a cluster (see
    :mod:`roost.redis.topology`). On a cluster, ``home_key`` (any key of the namespace:
    they all share one hash tag) sends the node-level commands (``TIME``, ``INFO``,
    ``CONFIG GET``, ``WAIT``, ``WAITAOF``, ``FUNCTION LOAD``) to the primary of its slot.

    Replies are decoded as UTF-8. A command that fails on a broken connection is retried
    once on a fresh one; every Roost script tolerates running twice (a lost reply), so
    that retry is safe. The blocking client serves BLMOVE and XREAD BLOCK: its socket
    timeout is well above the server-side block time, so an idle wait never times out
    client-side (redis-py 8's default 5 s timeout under a forever-blocking BLMOVE is what
    strands SAQ jobs; Roost blocks for at most ``BLOCK_SECONDS`` and loops).

    Raises:
        SettingsError: a ``redis+sentinel://`` or ``redis+cluster://`` URL is malformed.
    """
    timeout = BLOCK_SECONDS + 10.0 if blocking else COMMAND_TIMEOUT
    scheme = url.split("://", 1)[0].lower()
    if is_topology_url(url):
        target = parse_topology_url(url)
        if isinstance(target, SentinelUrl):
            client: Any = sentinel_client(
                target,
                socket_timeout=timeout,
                socket_connect_timeout=COMMAND_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
                connection_class=FastSentinelConnection,
            )
        else:  # redis-py's own retries: MOVED, TRYAGAIN, a reload after a failover
            client = cluster_client(
                target,
                home_key=home_key,
                socket_timeout=timeout,
                socket_connect_timeout=COMMAND_TIMEOUT,
                connection_class=FastClusterConnection,
            )
        return typed(cast(Redis, client))
    return typed(
        Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
            connection_class=_CONNECTION_CLASSES.get(scheme, FastConnection),
        )
    )


@dataclass(frozen=True)
class ServerInfo:
    """What the start-up check learned about the server."""

    version: tuple[int, ...]
    aof: bool
    rdb: bool
    has_waitaof: bool


async def check_server(client: AsyncRedis, *, url: str, strict: bool) -> ServerInfo:
    """Check that the server can hold Roost's guarantees.

    Refuses a replica (it refuses writes, or would drop them at its next sync: Roost needs
    the primary), a ``maxmemory-policy`` other than ``noeviction`` (an evicted lease, index
    or snapshot silently breaks them) and, with strict durability, a server without an
    append-only file or without WAITAOF (Redis 7.2+). Warns when persistence is off.

    Raises:
        RoostError: the server cannot be used as configured.
    """
    url = redact_url(url)
    info = await client.info()
    version = tuple(int(p) for p in str(info.get("redis_version", "0")).split(".") if p.isdigit())
    if "sentinel" in (info.get("redis_mode"), info.get("server_mode")):
        raise RoostError(
            f"{url} is a Sentinel, not a data server: use "
            "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE"
        )
    if str(info.get("cluster_enabled", "0")) == "1" and not isinstance(client, RedisCluster):
        raise RoostError(
            f"Redis at {url} is a Cluster node, which answers MOVED for most keys: use "
            "redis+cluster://HOST:PORT[,HOST:PORT...]"
        )
    if str(info.get("role", "master")) != "master":
        primary = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
        raise RoostError(
            f"Redis at {url} is a replica (of {primary}), which refuses or loses writes; "
            "point ROOST_REDIS_URL at the primary"
        )
    try:
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy", "")
        save = (await client.config_get("save")).get("save", "")
    except ResponseError:
        log.warning("cannot read the server's config (CONFIG is disabled); assuming noeviction")
        policy, save = "noeviction", ""
    if policy != "noeviction":
        raise RoostError(
            f"Redis at {url} has maxmemory-policy {policy}; Roost needs noeviction "
            "(an evicted lease or snapshot breaks its guarantees): "
            "CONFIG SET maxmemory-policy noeviction"
        )
    aof = str(info.get("aof_enabled", "0")) == "1"
    rdb = bool(save.strip())
    has_waitaof = version >= (7, 2)
    if not aof and not rdb:
        log.warning(
            "Redis at %s keeps nothing on disk (no append-only file, no RDB saves): "
            "a server restart loses all work",
            url,
        )
    if strict and not (aof and has_waitaof):
        raise RoostError(
            f"ROOST_STRICT_DURABILITY needs a server with appendonly yes and WAITAOF "
            f"(Redis 7.2+); {url} has appendonly={'yes' if aof else 'no'}, "
            f"version {'.'.join(map(str, version))}"
        )
    return ServerInfo(version=version, aof=aof, rdb=rdb, has_waitaof=has_waitaof)
