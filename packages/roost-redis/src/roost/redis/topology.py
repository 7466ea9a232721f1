"""Connection URLs for replicated Redis (Sentinel and Cluster), and redis-py's clients for them.

Grammar (``[]`` optional, ``...`` repeats; every part is percent-decoded)::

    redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB][?OPTIONS]
    redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/][?OPTIONS]

- ``HOST`` is a name, an IPv4 address or a bracketed IPv6 address; ``PORT`` is 1-65535,
  by default 26379 for a sentinel and 6379 for a cluster node. Sentinel URLs list sentinels;
  cluster URLs list seed nodes (any live one is enough; the client learns the rest).
- ``USER``/``PASSWORD`` authenticate to the data nodes (the primary, the cluster nodes).
- ``SERVICE`` is the name the sentinels monitor the primary under; ``DB`` is 0 or more
  (default 0). A cluster has only database 0: its path is empty, ``/`` or ``/0``.
- ``OPTIONS`` (``name=value`` joined by ``&``), Sentinel only: ``sentinel_username`` and
  ``sentinel_password`` authenticate to the sentinels themselves;
  ``min_other_sentinels`` (0 or more, default 0) ignores a sentinel that sees fewer peers.

A malformed URL raises :class:`~roost.runtime.errors.SettingsError` with one line naming
the problem (never the password): no host, an empty host, a bad or out-of-range port, an
unclosed ``[``, a user without a password, no service, a bad db, a path after the db, a
cluster path other than db 0, an unknown or repeated option, an option without a value, a
bad ``min_other_sentinels``, a ``#`` fragment.

What redis-py (7.x) does on failover, and what is left to Roost
---------------------------------------------------------------

Sentinel (:func:`sentinel_client`, redis-py's ``Sentinel(...).master_for(service)``):

- Every new connection asks the sentinels for the primary (the first sentinel that names
  one that is up; if none does, ``MasterNotFoundError``, a ``ConnectionError``: so from
  about ``down-after-milliseconds`` after a primary dies until the switch).
- ``READONLY`` (the primary was demoted) closes the connection and becomes a
  ``ConnectionError``; ``LOADING`` is a ``ConnectionError`` too. The client's ``Retry``
  (``retry=``: redis-py's default is 3 retries with jittered exponential backoff; Roost's
  ``make_client`` uses 1, at once) retries them on a new connection, so a command or a
  whole pipeline can run twice when its reply was lost.
- Not handled: a connection keeps talking to its node until that fails. After ``SENTINEL
  FAILOVER`` the old primary, still up, accepts writes for the ~10 s until the sentinels
  demote it, and its full resync then drops them (measured: 76 of 206 acknowledged writes
  lost, none of those a replica had acknowledged with ``WAIT``). A ``BLMOVE`` or ``XREAD
  BLOCK`` waiting on a primary that is demoted fails with ``UNBLOCKED force unblock from
  blocking operation`` (a plain ``ResponseError``). ``SCRIPT LOAD`` is not replicated:
  ``NOSCRIPT`` on the new primary (redis-py's ``Script`` reloads and retries once).

Cluster (:func:`cluster_client`, a :class:`ClusterClient`, redis-py's ``RedisCluster``):

- ``MOVED`` patches the slot map (every 5th reloads it) and retries; ``ASK`` retries on the
  named node after ``ASKING``; ``TRYAGAIN`` retries 16 times (50 ms apart after the 8th),
  then raises ``ClusterError("TTL exhausted.")``.
- ``CLUSTERDOWN`` and an uncovered slot close every connection, sleep 0.25 s, reload the
  slot map and retry 3 times (``retry=``), then raise.
- ``ConnectionError``/``TimeoutError`` (a dead primary) mark the slot map stale and retry 3
  times at once: until a replica takes over (``cluster-node-timeout`` plus an election) the
  surviving nodes still name the dead primary, so the error reaches the caller within
  milliseconds. ``LOADING`` and ``MASTERDOWN`` are raised without a retry.
- ``TIME``, ``INFO``, ``CONFIG GET``, ``WAIT`` and ``WAITAOF`` go to one "default" primary,
  not to the node of a key; ``FUNCTION LOAD`` goes to every primary the slot map names
  (one reply per node); ``FCALL`` goes to the node of its keys (all in one slot).
  ``pipe.evalsha`` is refused in a cluster pipeline (``pipe.fcall`` is not).
- A write sent with its ``WAIT`` on one connection (:meth:`ClusterClient.on_home_connection`)
  bypasses that routing: it follows ``ASK``, ``TRYAGAIN`` and ``MOVED`` itself, so a script
  call with ``ROOST_WAIT_REPLICAS`` rides a live reshard (before, the partitioned failover
  soak saw a step's call fail on ``ASK`` and the item wait for its lease to expire).
- Mended here (see :class:`ClusterClient`): plain redis-py wedges ``FCALL`` and ``XREAD``
  for good when the node it asks for their keys dies; leaks connections at every reload of
  the slot map; and after a failover still counts the demoted primary among the primaries
  (``FUNCTION LOAD`` then fails on it with ``READONLY``, and the default node may be it).

Roost's runtime therefore has to:

- treat ``ConnectionError``, ``TimeoutError``, ``ClusterDownError``, ``TryAgainError``,
  ``ClusterError``, ``MasterDownError``, ``ReadOnlyError``, ``BusyLoadingError``,
  ``UNBLOCKED`` and a missing script or function library as an outage: back off, retry,
  never use an attempt, never end a loop; and make every write safe to run twice;
- send node-level commands (clock, eviction and persistence checks) to the node that owns
  the namespace's slot, and ``WAIT``/``WAITAOF`` on the very connection of the commit (a
  Sentinel client's non-transactional pipeline does that; on a cluster it takes a
  connection of its own to the slot's primary);
- keep its library on every node. A Functions library (``FUNCTION LOAD``) is replicated and
  kept in the append-only file: a promoted replica and a restarted node have it (the
  Sentinel and Cluster fixture tests check this on both fixtures). A node that joins
  empty, or an empty primary, does not: ``FCALL`` then fails with ``Function not found``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, NodesManager, PipelineCommand, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.cluster import PRIMARY
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roost.runtime.errors import SettingsError

__all__ = [
    "CLUSTER_SCHEME",
    "SENTINEL_SCHEME",
    "ClusterClient",
    "NODE_COMMANDS",
    "ClusterUrl",
    "SentinelRedis",
    "SentinelUrl",
    "cluster_client",
    "is_topology_url",
    "parse_topology_url",
    "sentinel_client",
    "topology_client",
]

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
_DEFAULT_PORT = {SENTINEL_SCHEME: 26379, CLUSTER_SCHEME: 6379}
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password", "min_other_sentinels")
_FUNCTION_CALLS = ("FCALL", "FCALL_RO")
REDIRECTS = 16
"""How often a write sent with its wait follows ``ASK``/``MOVED``/``TRYAGAIN`` mid-reshard."""
REDIRECT_PAUSE = 0.05
"""Seconds before the same write goes again after ``TRYAGAIN``."""
NODE_COMMANDS = frozenset(
    {
        "TIME",
        "INFO",
        "CONFIG GET",
        "WAIT",
        "WAITAOF",
        "FUNCTION LOAD",
        "FUNCTION LIST",
        "FUNCTION DELETE",
    }
)
"""Commands about a node, not a key: a :class:`ClusterClient` sends them to its home slot."""
_HOST = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<name>[^\[\]:]*))(?::(?P<port>[^:]*))?$")

Address = tuple[str, int]


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[Address, ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    min_other_sentinels: int = 0


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL."""

    nodes: tuple[Address, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_topology_url(url: str) -> bool:
    """Whether ``url`` uses one of this module's schemes."""
    scheme = url.partition("://")[0].lower()
    return scheme in (SENTINEL_SCHEME, CLUSTER_SCHEME)


def parse_topology_url(url: str) -> SentinelUrl | ClusterUrl:
    """Parse a ``redis+sentinel://`` or ``redis+cluster://`` URL (grammar in the module doc).

    Raises:
        SettingsError: the URL is malformed; the message names the problem, not the password.
    """
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORT:
        found = repr(scheme) if sep else "no scheme"
        raise SettingsError(f"not a {SENTINEL_SCHEME}:// or {CLUSTER_SCHEME}:// URL: {found}")
    where = f"{scheme} URL"
    if "#" in rest:
        raise SettingsError(f"{where}: has a '#' fragment; remove it")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, (path, _, query) = rest[:end], rest[end:].partition("?")
    userinfo, at, hostlist = netloc.rpartition("@")
    username, password = _credentials(where, userinfo) if at else (None, None)
    if not hostlist:
        raise SettingsError(f"{where}: names no host")
    hosts = tuple(_address(where, item, _DEFAULT_PORT[scheme]) for item in hostlist.split(","))
    options = _options(where, query)
    if scheme == CLUSTER_SCHEME:
        if path not in ("", "/", "/0"):
            raise SettingsError(f"{where}: a cluster has only db 0; drop the path {path!r}")
        if options:
            raise SettingsError(f"{where}: unknown option {next(iter(options))!r} (none exist)")
        return ClusterUrl(nodes=hosts, username=username, password=password)
    service, db = _service_and_db(where, path)
    unknown = sorted(set(options) - set(_SENTINEL_OPTIONS))
    if unknown:
        raise SettingsError(
            f"{where}: unknown option {unknown[0]!r} (supported: {', '.join(_SENTINEL_OPTIONS)})"
        )
    minimum = options.get("min_other_sentinels", "0")
    if not (minimum.isascii() and minimum.isdigit()):
        raise SettingsError(f"{where}: min_other_sentinels must be 0 or more, not {minimum!r}")
    return SentinelUrl(
        sentinels=hosts,
        service=service,
        db=db,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        min_other_sentinels=int(minimum),
    )


def _credentials(where: str, userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise SettingsError(f"{where}: names a user but no password (use USER:PASSWORD@)")
    return (unquote(user) or None), unquote(password)


def _address(where: str, item: str, default_port: int) -> Address:
    if not item:
        raise SettingsError(f"{where}: an empty entry in the host list (two commas?)")
    match = _HOST.match(item)
    if match is None:
        raise SettingsError(f"{where}: cannot read host {item!r} (IPv6 goes in [brackets])")
    host = unquote(match["v6"] if match["v6"] is not None else match["name"] or "")
    if not host:
        raise SettingsError(f"{where}: empty host in {item!r}")
    port = match["port"]
    if port is None:
        return host, default_port
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise SettingsError(f"{where}: bad port in {item!r} (use 1-65535)")
    return host, int(port)


def _options(where: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in options:
            raise SettingsError(f"{where}: option {name!r} is given twice")
        if not value:
            raise SettingsError(f"{where}: option {name!r} has no value")
        options[name] = value
    return options


def _service_and_db(where: str, path: str) -> tuple[str, int]:
    segments = path.split("/")[1:] if path else []
    if not segments or not segments[0]:
        raise SettingsError(f"{where}: names no service (…/SERVICE after the sentinels)")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1]):
        raise SettingsError(f"{where}: the path is /SERVICE or /SERVICE/DB, not {path!r}")
    db = segments[1] if len(segments) == 2 else "0"
    if not (db.isascii() and db.isdigit()):
        raise SettingsError(f"{where}: db must be a whole number 0 or more, not {db!r}")
    return unquote(segments[0]), int(db)


FOLLOW_SECONDS = 1.0
"""How often a Sentinel client asks the sentinels who the primary is (see SentinelRedis)."""


class SentinelRedis(Redis):
    """A client of the primary a group of sentinels names; closing it closes those links too.

    redis-py asks the sentinels only when it opens a connection, and its pooled connections
    keep talking to the node they reached. After ``SENTINEL FAILOVER`` the old primary goes
    on accepting writes until the sentinels demote it, some 10 s later, and its resync then
    drops them. So, at most every :data:`FOLLOW_SECONDS`, a command first asks the sentinels
    (one round trip to one of them); when they name another primary, the idle connections are
    closed and the busy ones are closed when released, so that the next ones go to the new
    primary.
    """

    _follow_at: float = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run a command (after asking the sentinels, once a second, who the primary is)."""
        now = time.monotonic()
        if now >= self._follow_at:
            self._follow_at = now + FOLLOW_SECONDS
            await self._follow_primary()
        return await cast(Any, super()).execute_command(*args, **options)

    async def _follow_primary(self) -> None:
        pool: Any = self.connection_pool
        before = pool.master_address
        try:
            now_named = await pool.get_master_address()  # closes idle connections on a change
        except RedisError:  # no sentinel answers: the command itself will tell
            return
        if before is not None and now_named != before:
            await pool.update_active_connections_for_reconnect()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the client; with its pool, close its connections to the sentinels."""
        await super().aclose(close_connection_pool)
        if close_connection_pool or (
            close_connection_pool is None and self.auto_close_connection_pool
        ):
            manager: Any = getattr(self.connection_pool, "sentinel_manager", None)
            for sentinel in list(getattr(manager, "sentinels", ())):
                await cast(Redis, sentinel).aclose()


def sentinel_client(target: SentinelUrl, **connection: Any) -> SentinelRedis:
    """redis-py's client of the primary the sentinels name (replies decoded).

    Args:
        target: the parsed URL.
        **connection: more keyword arguments for the connections (``socket_timeout``,
            ``retry``...); ``retry`` and the ``socket_*`` ones apply to the sentinels too.
    """
    sentinel_kwargs: dict[str, Any] = {
        key: value
        for key, value in connection.items()
        if key.startswith("socket_") or key == "retry"
    }
    if target.sentinel_password is not None:
        sentinel_kwargs["username"] = target.sentinel_username
        sentinel_kwargs["password"] = target.sentinel_password
    manager = Sentinel(
        list(target.sentinels),
        min_other_sentinels=target.min_other_sentinels,
        sentinel_kwargs=sentinel_kwargs,
    )
    client: Any = manager.master_for(
        target.service,
        redis_class=SentinelRedis,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
        **connection,
    )
    return cast(SentinelRedis, client)


class _SharedNodes(NodesManager):
    """redis-py's node registry, routing through the node objects it keeps and closes.

    redis-py 7 builds new node objects at every reload of the slot map (after a failover,
    every 5th ``MOVED``, ``CLUSTERDOWN``, a connection error) and routes commands through
    them, while the registry that ``aclose`` closes keeps the old objects: the connections
    of the new ones are never closed (``ResourceWarning`` when they are collected). Here the
    slot map is pointed back at the kept objects, in the same step (no other task runs in
    between), and the kept objects learn their current role (so the default node, which
    also serves ``INFO``, ``TIME`` and ``WAIT``, is a primary).
    """

    __slots__ = ()

    async def initialize(self) -> None:
        await super().initialize()
        seen: set[int] = set()
        for nodes in self.slots_cache.values():
            if id(nodes) in seen:  # one list is shared by every slot of a range
                continue
            seen.add(id(nodes))
            for index, node in enumerate(nodes):
                kept = self.nodes_cache.get(node.name)
                if kept is not None and kept is not node:
                    kept.server_type = node.server_type  # a replica may have been promoted
                    nodes[index] = kept
        primaries = self.get_nodes_by_server_type(PRIMARY)
        if primaries:
            self.default_node = primaries[0]


class ClusterClient(RedisCluster):
    """redis-py's cluster client, mended where a failover would wedge or leak it.

    - redis-py finds the keys of ``FCALL``, ``XREAD`` and other commands whose keys move by
      asking one node (``COMMAND GETKEYS``, a round trip per call). When that node dies, the
      error comes from outside the code that marks the slot map stale, so every such command
      fails with ``ConnectionError`` for as long as the client lives. Here ``FCALL`` and
      ``FCALL_RO`` read their keys from their arguments (no round trip), and a failure to
      ask that node marks the slot map stale, so the next retry asks a live one.
    - Reloading the slot map leaked the connections of the nodes it routed through and kept
      the roles nodes had before a failover (see ``_SharedNodes``); and ``aclose`` closed
      nothing while a reload was pending. Here ``aclose`` always closes every node.
    """

    def __init__(self, *args: Any, home_key: str | None = None, **kwargs: Any) -> None:
        """Take :class:`redis.asyncio.cluster.RedisCluster`'s arguments.

        Args:
            *args: as redis-py's.
            home_key: a key whose slot's primary serves :data:`NODE_COMMANDS` (``TIME``,
                ``INFO``, ``CONFIG GET``, ``WAIT``, ``WAITAOF``, ``FUNCTION LOAD``...); by
                default redis-py's default node does.
            connection_class: the class of the connections to every node.
            **kwargs: as redis-py's.
        """
        connection_class = kwargs.pop("connection_class", None)
        super().__init__(*args, **kwargs)
        self.nodes_manager.__class__ = _SharedNodes
        self.home_key = home_key
        if connection_class is not None:  # redis-py's constructor has no such argument
            self.connection_kwargs["connection_class"] = connection_class
            for node in self.nodes_manager.startup_nodes.values():
                node.connection_class = connection_class

    def home_node(self) -> ClusterNode:
        """The primary of the home key's slot, as the slot map last read says."""
        if self.home_key is None:
            return self.get_default_node()
        return self.nodes_manager.get_node_from_slot(self.keyslot(self.home_key))

    def node_of(self, key: str) -> ClusterNode:
        """The primary of ``key``'s slot, as the slot map last read says."""
        return self.nodes_manager.get_node_from_slot(self.keyslot(key))

    async def on_home_connection(
        self, *commands: tuple[Any, ...], key: str | None = None
    ) -> list[Any]:
        """Send ``commands`` on one connection to the home slot's primary; replies in order.

        ``key``: to the primary of that key's slot instead (a partition's, say).

        ``WAIT`` and ``WAITAOF`` count the writes of their own connection, so a write and
        its wait must travel together; a cluster pipeline may split or redirect them. A
        reply that is an error is returned, not raised; a connection that fails marks the
        slot map stale (the caller retries after the failover).

        The first command is the keyed one (the rest are waits): when the slot is moving and
        it is refused before running (``ASK``: its keys have moved, ``TRYAGAIN``: some have,
        ``MOVED``: the move ended), every command goes again, together, where the refusal
        points (``ASKING`` before the first only), up to ``REDIRECTS`` times; then the
        refusal is returned. A later keyed command whose key is still on the source is
        refused by the target with ``MOVED`` (nothing written, no copy split across the two
        nodes): its error is returned and the caller retries.
        """
        if self._initialize:
            await self.initialize()
        node = self.home_node() if key is None else self.node_of(key)
        asking = False
        stack: list[PipelineCommand] = []
        for attempt in range(REDIRECTS + 1):
            stack = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
            sent = [PipelineCommand(-1, "ASKING"), *stack] if asking else stack
            try:
                await node.execute_pipeline(sent)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self._initialize = True
                raise
            first = stack[0].result if stack else None
            if attempt == REDIRECTS or not isinstance(first, AskError | TryAgainError | MovedError):
                break
            if isinstance(first, AskError):
                redirect: Any = first
                asked = self.nodes_manager.get_node(str(redirect.host), int(redirect.port))
                if asked is None:
                    break
                node, asking = asked, True
            elif isinstance(first, MovedError):
                await self.initialize()
                node = self.home_node() if key is None else self.node_of(key)
                asking = False
            else:  # TRYAGAIN: a multi-key call while its keys are half moved
                await asyncio.sleep(REDIRECT_PAUSE)
        for cmd in stack:
            if isinstance(cmd.result, MovedError | AskError | ClusterDownError):
                self._initialize = True  # the slot moved: learn where before the retry
        return [cmd.result for cmd in stack]

    async def _determine_nodes(
        self, command: str, *args: Any, node_flag: str | None = None, **kwargs: Any
    ) -> list[ClusterNode]:
        if self.home_key is not None and not node_flag and command.upper() in NODE_COMMANDS:
            return [self.home_node()]
        nodes: Any = await super()._determine_nodes(command, *args, node_flag=node_flag, **kwargs)
        return cast(list[ClusterNode], nodes)

    async def aclose(self) -> None:
        """Close every connection to every node, even while a reload is pending."""
        await super().aclose()
        await self.nodes_manager.aclose()
        await self.nodes_manager.aclose("startup_nodes")

    async def _determine_slot(self, command: str, *args: Any) -> int:
        if command.upper() in _FUNCTION_CALLS and len(args) >= 2 and int(args[1]) > 0:
            slots = {self.keyslot(key) for key in args[2 : 2 + int(args[1])]}
            if len(slots) != 1:
                raise RedisClusterException(f"{command} - all keys must map to the same key slot")
            return slots.pop()
        try:
            return await super()._determine_slot(command, *args)
        except (RedisConnectionError, RedisTimeoutError):
            self._initialize = True
            raise


def cluster_client(
    target: ClusterUrl, *, home_key: str | None = None, **connection: Any
) -> ClusterClient:
    """A :class:`ClusterClient` seeded with the URL's nodes (replies decoded).

    Args:
        target: the parsed URL.
        home_key: see :class:`ClusterClient`.
        **connection: more keyword arguments for :class:`redis.asyncio.cluster.RedisCluster`.
    """
    return ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        home_key=home_key,
        username=target.username,
        password=target.password,
        decode_responses=True,
        **connection,
    )


def topology_client(url: str, **connection: Any) -> SentinelRedis | ClusterClient:
    """Parse ``url`` and build its client (see :func:`sentinel_client`, :func:`cluster_client`).

    Raises:
        SettingsError: the URL is malformed.
    """
    target = parse_topology_url(url)
    if isinstance(target, SentinelUrl):
        return sentinel_client(target, **connection)
    return cluster_client(target, **connection)


def _where(addresses: tuple[Address, ...]) -> str:
    return ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)


async def explain_failure(url: str, exc: BaseException) -> str | None:
    """One line saying why a client of ``url`` could not reach its data, or None.

    For a Sentinel URL it asks each sentinel (briefly) which primary it names for the
    service: none reachable, none monitoring the service, or a primary that is down. For a
    Cluster URL it reads redis-py's start-up error: no seed node reachable, or a seed node
    that is not a cluster node.
    """
    target = parse_topology_url(url)
    if isinstance(target, ClusterUrl):
        text = str(exc)
        seeds = _where(target.nodes)
        if "Cluster mode is not enabled" in text:
            return (
                f"a seed node of {CLUSTER_SCHEME}://{seeds} is not in cluster mode "
                "(a single server takes redis://)"
            )
        if "cannot be connected" in text or isinstance(exc, RedisConnectionError):
            return f"no seed node of the cluster is reachable (tried {seeds})"
        return None
    return await _explain_sentinels(target)


async def _explain_sentinels(target: SentinelUrl) -> str:
    named: list[str] = []
    reached = 0
    for host, port in target.sentinels:
        client: Any = Redis(
            host=host,
            port=port,
            username=target.sentinel_username,
            password=target.sentinel_password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        try:
            reply: Any = await client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", target.service
            )
        except (RedisConnectionError, RedisTimeoutError, OSError):
            continue
        except Exception:  # an answer that is an error still means reached
            reached += 1
            continue
        finally:
            await client.aclose()
        reached += 1
        if reply:
            named.append(f"{reply[0]}:{reply[1]}")
    sentinels = _where(target.sentinels)
    if not reached:
        return f"no sentinel is reachable (tried {sentinels})"
    if not named:
        return f"the sentinels at {sentinels} monitor no service named {target.service!r}"
    return (
        f"the sentinels name {named[0]} as the primary of {target.service!r}, but it cannot "
        "be used now (down, or a failover is under way)"
    )
