"""Roost's Lua as a Redis Functions library, and the calls into it.

Every ``lua/NAME.lua`` file (``_prelude.lua`` aside) becomes the function ``NAME`` of one
library: its body inside ``function(KEYS, ARGV) ... end``, so a script reads its keys and
arguments just as under ``EVAL``. The prelude runs once, when the library is loaded (its
tables and helpers are not made again on every call); every call starts with the prelude's
``begin(KEYS, ARGV, ...)``, made by :func:`begin_call` from the namespace keys and arguments
the script's header (see :mod:`roost.redis.contract`) says it takes. A new file needs no
registration: the library is built from the files there are. The library's name (and so
every function's) carries a hash of its source, so workers of two versions can share a
server during an upgrade, each calling its own.

A Functions library, unlike the script cache, is replicated to replicas and kept in the
append-only file: a replica promoted by a failover, or a restarted node, already has it.
A node that lacks it (it joined empty, lost its data, or ``FUNCTION FLUSH`` ran) answers
``Function not found``; the call then loads the library on that very node (``FUNCTION LOAD
REPLACE``) and is repeated at once, so callers never see that error unless the library keeps
being removed under them.

Redis 7.0+ and Valkey have Functions; Roost needs them (there is no ``EVALSHA`` fallback).

Every upgrade that changes the Lua leaves the previous version's libraries on the server.
:func:`prune_libraries` deletes them once no live worker of the namespace announces them (a
worker does it when it starts); a process of another version that still calls one finds it
missing and loads it again, as above, so deleting one is never more than a reload.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from roost.redis.contract import NAMESPACE_ARGS, NAMESPACE_KEYS, ContractError, Slot, parse_header
from roost.redis.faults import is_missing_function
from roost.redis.keys import STATE_ORDER
from roost.redis.topology import ClusterClient

if TYPE_CHECKING:
    from roost.redis.aio import AsyncRedis

__all__ = [
    "LIBRARIES",
    "LIBRARY",
    "SCHEDULE_LIBRARY",
    "SCRIPT_NAMES",
    "Library",
    "NotReplicated",
    "Scripts",
    "build_library",
    "library_names",
    "prune_libraries",
]

log = logging.getLogger("roost.redis")

WAITAOF_TIMEOUT_MS = 5000
WAIT_TIMEOUT_MS = 5000
"""How long a commit waits for its replicas (``ROOST_WAIT_REPLICAS``) before it is retried."""
LOAD_TRIES = 3
"""How many times a call loads the library again when the server keeps lacking it."""

_LUA = files("roost.redis").joinpath("lua")
_PRELUDE = "_prelude.lua"
_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Library:
    """A Functions library built from a directory of scripts."""

    name: str
    code: str
    functions: dict[str, str]
    """Script name (the file's stem) to the function's name on the server."""


def _scripts_in(directory: Traversable) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".lua") and not entry.name.startswith("_"):
            found[entry.name.removesuffix(".lua")] = entry.read_text()
    return found


def build_library(
    directory: Traversable,
    label: str,
    *,
    prelude: str = "",
    setup: str | Callable[[str, str], str] = "",
) -> Library:
    """One function per ``*.lua`` file of ``directory``, each seeing ``prelude``'s locals.

    Args:
        directory: where the scripts are.
        label: the library's name before its hash (letters, digits, ``_``).
        prelude: Lua run once when the library is loaded, before its functions: its locals
            (constants, helpers) are visible to every function.
        setup: Lua run at the start of every call (it may read KEYS and ARGV), or a function
            of a script's name and source that returns that script's.
    """
    sources = _scripts_in(directory)
    setups = {
        name: setup(name, body) if callable(setup) else setup for name, body in sources.items()
    }
    digest = hashlib.sha1(prelude.encode())
    for name, body in sources.items():
        digest.update(f"\0{name}\0{setups[name]}\0{body}".encode())
    library = f"{label}_{digest.hexdigest()[:12]}"
    parts = [f"#!lua name={library}", prelude]
    functions: dict[str, str] = {}
    for name, body in sources.items():
        stem = name if _NAME.fullmatch(name) else re.sub(r"[^A-Za-z0-9_]", "_", name)
        function = f"{library}_{stem}"
        functions[name] = function
        parts.append(
            f"redis.register_function('{function}', function(KEYS, ARGV)\n"
            f"{setups[name]}\n{body}\nend)"
        )
    return Library(name=library, code="\n".join(parts) + "\n", functions=functions)


def _positions(
    slots: tuple[Slot, ...], order: tuple[str, ...], name: str
) -> tuple[int, dict[str, int]]:
    """How many namespace values lead ``slots``, and the position (1-based) of each one."""
    at: dict[str, int] = {}
    pos = 1
    for slot in slots:
        if not slot.namespace:
            break
        if slot.name not in order or any(order.index(slot.name) <= order.index(n) for n in at):
            raise ContractError(
                f"{name}.lua: namespace slot @{slot.name} unknown or out of order "
                f"(they come first, in the order {' '.join(order)})"
            )
        at[slot.name] = pos
        pos += len(STATE_ORDER) if slot.name == "states" else 1
    if any(s.namespace for s in slots[len(at) :]):
        raise ContractError(f"{name}.lua: namespace slots come before the script's own")
    return pos - 1, at


def begin_call(name: str, source: str) -> str:
    """The Lua that starts a call of script ``name``: ``begin()`` with its header's layout.

    Each namespace slot the header lists is passed by its position in KEYS or ARGV (``nil``
    for one it does not take), so the prelude's helpers find them whatever the script takes.
    """
    contract = parse_header(name, source)
    nk, keys = _positions(contract.keys, NAMESPACE_KEYS, name)
    na, args = _positions(contract.args, NAMESPACE_ARGS, name)
    at = [str(keys.get(n, "nil")) for n in NAMESPACE_KEYS]
    at += [str(args.get(n, "nil")) for n in NAMESPACE_ARGS]
    return f"begin(KEYS, ARGV, {nk}, {na}, {', '.join(at)})"


def _roost_library() -> Library:
    prelude = _LUA.joinpath(_PRELUDE).read_text()
    return build_library(_LUA, "roost", prelude=prelude, setup=begin_call)


LIBRARY = _roost_library()
SCHEDULE_LIBRARY = build_library(_LUA.joinpath("schedules"), "roost_sched")
"""The schedule scripts (``lua/schedules``): no prelude, their own KEYS layout."""
SCRIPT_NAMES = tuple(LIBRARY.functions)
"""Every script there is (discovered from the ``lua`` directory)."""
LIBRARIES = (LIBRARY.name, SCHEDULE_LIBRARY.name)
"""The libraries of this version of Roost (what a worker's heartbeat announces)."""
_VERSIONED = re.compile(r"roost(?:_sched)?_[0-9a-f]{12}")
"""The name of a library some version of Roost loaded (a user's own never matches)."""


class NotReplicated(ResponseError):
    """Fewer replicas than ``ROOST_WAIT_REPLICAS`` confirmed a write in time (an outage).

    Its message starts with ``NOREPLICAS``, the code Redis itself uses when too few
    replicas are connected, so it is classified like that: back off, try again.
    """


class Scripts:
    """Roost's functions, called through one client.

    ``scripts(name, keys, args)`` runs one; ``scripts.acked(...)`` runs one and waits for
    its fsync and/or its replicas on the same connection.
    """

    def __init__(self, client: AsyncRedis, library: Library = LIBRARY) -> None:
        self._client = client
        self._library = library

    def sha(self, name: str) -> str:
        """The name the server knows script ``name`` by (its function's name)."""
        return self._library.functions[name]

    async def load(self, key: str | None = None) -> None:
        """Load the library on the node that serves the namespace (replacing any copy).

        ``key``: on a cluster, load it on the primary of that key's slot instead (a
        partition of the namespace may live on another primary than its home).
        """
        client: Any = self._client
        if key is not None and isinstance(client, ClusterClient):
            await client.execute_command(
                "FUNCTION LOAD", "REPLACE", self._library.code, target_nodes=client.node_of(key)
            )
            return
        await self._client.execute_command("FUNCTION LOAD", "REPLACE", self._library.code)

    async def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` with ``keys`` and ``args`` (both already including the block)."""
        function = self._library.functions[name]
        for _ in range(LOAD_TRIES - 1):
            try:
                return await self._client.execute_command(
                    "FCALL", function, len(keys), *keys, *args
                )
            except ResponseError as exc:
                if not is_missing_function(exc):
                    raise
            await self.load(keys[0] if keys else None)
        return await self._client.execute_command("FCALL", function, len(keys), *keys, *args)

    async def durable(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script, then wait until its writes are fsynced to the append-only file."""
        return await self.acked(name, keys, args, fsync=True)

    async def acked(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        *,
        fsync: bool = False,
        replicas: int = 0,
        probe_key: str | None = None,
        wait_ms: int = WAIT_TIMEOUT_MS,
    ) -> Any:
        """Run a script, then wait on the same connection for its fsync and/or replicas.

        ``WAIT`` and ``WAITAOF`` count the writes of their own connection, so the call and
        its waits travel together (one pipeline; on a cluster, one connection to the slot's
        primary). ``probe_key`` (a key of the script's slot) is written just before the
        waits, so they cover the script's writes even when a repeated call wrote nothing
        (its first run's reply was lost): the waits then cover everything the node had.

        Raises:
            NotReplicated: fewer than ``replicas`` replicas confirmed within ``wait_ms``
                (at most ``WAIT_TIMEOUT_MS``); the write stands on the primary but is not
                acknowledged (the caller retries, as for any outage).
        """
        function = self._library.functions[name]
        commands: list[tuple[Any, ...]] = [
            ("FCALL", function, len(keys), *keys, *args),
            *_wait_commands(probe_key, fsync, replicas, wait_ms),
        ]
        for _ in range(LOAD_TRIES):
            replies = await self._together(commands, keys[0] if keys else None)
            result = replies[0]
            if is_missing_function(result):
                await self.load(keys[0] if keys else None)
                continue
            if isinstance(result, Exception):
                raise result
            await self._check_waits(name, replies[1:], fsync, replicas, probe_key, wait_ms)
            return result
        raise ResponseError(f"Function not found: {function} could not be loaded")

    async def many(
        self,
        name: str,
        calls: list[tuple[list[str], list[Any], str | None]],
        *,
        fsync: bool = False,
        replicas: int = 0,
        wait_ms: int = WAIT_TIMEOUT_MS,
    ) -> list[Any]:
        """Run script ``name`` once per call, those of one primary in one pipeline.

        ``calls``: each call's keys, args and probe key (see :meth:`acked`; None without
        ``replicas``). The calls whose keys a primary holds go on one connection to it,
        followed by its waits (one ``WAIT``/``WAITAOF`` covers every write of the
        connection); the primaries are sent to at once. A call the server did not run (its
        primary lacks the library, or the slot moved) is run again on its own, as
        :meth:`acked` runs it; any other error reply is raised. Returns the replies in order.

        Raises:
            NotReplicated: as :meth:`acked`, for any primary's waits.
        """
        client: Any = self._client
        by_node: dict[str, list[int]] = {}
        for i, (keys, _args, _probe) in enumerate(calls):
            node = client.node_of(keys[0]).name if isinstance(client, ClusterClient) else ""
            by_node.setdefault(node, []).append(i)
        function = self._library.functions[name]
        replies: list[Any] = [None] * len(calls)

        async def send(indexes: list[int]) -> None:
            commands: list[tuple[Any, ...]] = [
                ("FCALL", function, len(calls[i][0]), *calls[i][0], *calls[i][1]) for i in indexes
            ]
            probe = calls[indexes[0]][2] if replicas else None
            waits = _wait_commands(probe, fsync, replicas, wait_ms)
            got = await self._together([*commands, *waits], calls[indexes[0]][0][0])
            again: list[int] = []
            for i, reply in zip(indexes, got, strict=False):
                if isinstance(reply, Exception):
                    if not (is_missing_function(reply) or _not_run(reply)):
                        raise reply
                    again.append(i)
                replies[i] = reply
            for i in again:  # each on its own: loads the library, follows the slot
                keys, args, probe_key = calls[i]
                if fsync or replicas:
                    replies[i] = await self.acked(
                        name,
                        keys,
                        args,
                        fsync=fsync,
                        replicas=replicas,
                        probe_key=probe_key,
                        wait_ms=wait_ms,
                    )
                else:
                    replies[i] = await self(name, keys, args)
            await self._check_waits(name, got[len(commands) :], fsync, replicas, probe, wait_ms)

        await asyncio.gather(*(send(indexes) for indexes in by_node.values()))
        return replies

    async def _check_waits(
        self,
        name: str,
        waits: list[Any],
        fsync: bool,
        replicas: int,
        probe: str | None,
        wait_ms: int,
    ) -> None:
        """Raise for a wait that failed or fell short (the replies of :func:`_wait_commands`)."""
        for reply in waits:
            if isinstance(reply, Exception):
                raise reply
        waits = waits[1:] if probe is not None else waits
        if replicas and int(waits[0]) < replicas:
            await self._forget_primary()
            raise NotReplicated(
                f"NOREPLICAS {name}: {waits[0]} of {replicas} replicas confirmed the "
                f"write within {wait_ms} ms"
            )
        if fsync and int(waits[-1][0]) < 1:
            log.error(
                "%s: the append-only file did not confirm an fsync within %d ms (%s)",
                name,
                WAITAOF_TIMEOUT_MS,
                waits[-1],
            )

    async def _forget_primary(self) -> None:
        """After a shortfall of replicas, let a Sentinel client ask who the primary is.

        A Sentinel client's connections keep talking to the node they reached: after a
        manual failover the old primary accepts writes (that no replica confirms, and that
        the next resync drops) until the sentinels demote it, about 10 s later. Closing the
        pooled connections (those in use once released) makes new ones ask the sentinels.
        """
        pool: Any = getattr(self._client, "connection_pool", None)
        if pool is not None and hasattr(pool, "sentinel_manager"):
            await pool.disconnect(inuse_connections=False)
            await pool.update_active_connections_for_reconnect()  # closed when released

    async def _together(self, commands: list[tuple[Any, ...]], key: str | None) -> list[Any]:
        client: Any = self._client
        if isinstance(client, ClusterClient):
            return await client.on_home_connection(*commands, key=key)
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)


def _primaries(client: AsyncRedis, keys: Sequence[str]) -> list[Any]:
    """The cluster primaries of the home slot and of ``keys``' slots ([None] elsewhere)."""
    if not isinstance(client, ClusterClient):
        return [None]
    found = {node.name: node for node in [client.home_node(), *map(client.node_of, keys)]}
    return list(found.values())


def _wait_commands(
    probe: str | None, fsync: bool, replicas: int, wait_ms: int
) -> list[tuple[Any, ...]]:
    """What follows a write on its connection: the probe, then ``WAIT`` and ``WAITAOF``."""
    waits: list[tuple[Any, ...]] = []
    if probe is not None:
        waits.append(("SET", probe, "1", "PX", 60_000))
    if replicas:
        waits.append(("WAIT", replicas, wait_ms))
    if fsync:
        waits.append(("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS))
    return waits


def _not_run(reply: Exception) -> bool:
    """Whether an error reply says the command never ran there (the slot is elsewhere)."""
    return isinstance(reply, MovedError | AskError | ClusterDownError | TryAgainError)


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def library_names(client: AsyncRedis, node: Any = None) -> list[str]:
    """The Functions libraries on the node that serves the namespace (or on cluster ``node``)."""
    target: dict[str, Any] = {} if node is None else {"target_nodes": node}
    reply: Any = await client.execute_command("FUNCTION LIST", "LIBRARYNAME", "roost_*", **target)
    if isinstance(reply, dict):  # one node's reply, keyed by the node
        none: list[Any] = []
        reply = next(iter(cast(dict[Any, Any], reply).values()), none)
    names: list[str] = []
    for entry in reply:
        fields = cast(dict[Any, Any], entry) if isinstance(entry, dict) else _pairs(entry)
        name: Any = fields.get("library_name", fields.get(b"library_name"))
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return names


async def prune_libraries(
    client: AsyncRedis,
    workers: Callable[[], Awaitable[list[dict[str, Any]]]],
    own: str | None,
    *,
    keys: Sequence[str] = (),
) -> list[str]:
    """Delete Roost's libraries of other versions from the nodes that serve the namespace.

    On a cluster, from the namespace's home primary and from the primary of each of
    ``keys`` (a key of each partition: they may live on other primaries); elsewhere, from
    the one node.

    Only when every other live worker of the namespace runs this version: ``workers()``
    lists them as their heartbeats describe them (``libraries``: what each one calls; a
    worker too old to say is taken to call others), ``own`` is the caller's worker id.
    Libraries that are not Roost's are never touched. Housekeeping: a Redis error is logged
    and nothing more happens. Returns the names deleted.
    """
    try:
        others = [w.get("libraries") for w in await workers() if w.get("worker_id") != own]
        if not all(
            isinstance(a, list) and set(cast(list[str], a)) == set(LIBRARIES) for a in others
        ):
            return []
        stale: list[str] = []
        for node in _primaries(client, keys):
            target: dict[str, Any] = {} if node is None else {"target_nodes": node}
            for name in await library_names(client, node):
                if _VERSIONED.fullmatch(name) and name not in LIBRARIES:
                    await client.execute_command("FUNCTION DELETE", name, **target)
                    stale += [] if name in stale else [name]
    except RedisError as exc:
        log.warning("could not delete the libraries of other Roost versions: %s", exc)
        return []
    if stale:
        log.info("deleted the Functions libraries of other Roost versions: %s", stale)
    return stale
