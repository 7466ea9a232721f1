"""``RedisStore``: one namespace on Redis, connected; the layer every other one builds on.

It resolves and checks the server (starting the embedded one when no URL is set), runs
Roost's scripts with the namespace blocks prepended, and answers the reads the operations,
the worker and the operator facade (:class:`roost.redis.swarm.RedisSwarm`) share: an item's
status and meta, its kept snapshots. It imports nothing above it in ``roost.redis``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from roost.redis.budgets import budget_of
from roost.redis.calls import ScriptCalls
from roost.redis.codec import META_FIELDS, meta_from_hash, read_item, read_snapshot
from roost.redis.connection import ServerInfo, check_server, make_client, redact_url
from roost.redis.contract import Code
from roost.redis.faults import describe as describe_redis_error
from roost.redis.faults import error_code, is_unreachable
from roost.redis.keys import STATE_ORDER, Keys
from roost.redis.placement import Placer, partition_of
from roost.redis.schema import Meta
from roost.redis.scripts import WAIT_TIMEOUT_MS, Scripts
from roost.redis.topology import explain_failure, is_topology_url
from roost.runtime.errors import (
    ConflictError,
    NotFound,
    RedisUnreachable,
    RoostError,
    SettingsError,
)
from roost.runtime.models import Snapshot, WorkMeta, WorkStatus
from roost.runtime.plugins import Registry
from roost.runtime.settings import MAX_PARTITIONS, RoostSettings

if TYPE_CHECKING:
    from roost.redis.aio import AsyncRedis
    from roost.runtime.stores import ArtifactStore

__all__ = ["PARTS", "EmbeddedServerFailed", "RedisStore"]

PARTS = "partitions"
"""The field of the namespace's record (``Keys.conf``) holding its number of partitions."""


class EmbeddedServerFailed(RoostError):
    """The embedded Redis (``ROOST_REDIS_URL`` unset) could not be started or reused."""


class RedisStore:
    """One queue of a namespace on Redis: the connection, the scripts and the shared reads.

    :class:`roost.redis.swarm.RedisSwarm` is the operator API built on it; the worker and
    the modules of ``roost.redis`` take a store.
    """

    def __init__(
        self,
        settings: RoostSettings | None = None,
        *,
        url: str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
        namespace: str | None = None,
        registry: Registry | None = None,
        validate_engines: bool = False,
    ) -> None:
        """Configure (but do not connect).

        Args:
            settings: defaults to ``RoostSettings.from_env()``.
            url: Redis URL (overrides ``ROOST_REDIS_URL``).
            queue: queue name (overrides ``ROOST_QUEUE``).
            prefix: key prefix (overrides ``ROOST_REDIS_PREFIX``).
            namespace: namespace (overrides ``ROOST_NAMESPACE``).
            registry: engines, artifact stores and event sinks; default: installed plugins.
            validate_engines: make ``enqueue`` refuse engines the registry does not know.
        """
        base = settings or RoostSettings.from_env()
        overrides = {
            "redis_url": url,
            "queue": queue,
            "redis_prefix": prefix,
            "namespace": namespace,
        }
        update = {k: v for k, v in overrides.items() if v is not None}
        if update:
            base = RoostSettings.from_env({}, **{**base.model_dump(), **update})
        self.settings = base
        self.keys = Keys(base.redis_prefix, base.namespace, base.queue)
        self.partitions = base.partitions or 1
        """The namespace's number of partitions: as recorded once connected (see
        :meth:`settle_partitions`), else as asked."""
        self._settled = False
        self._placer: Placer | None = None
        self._registry = registry
        self.validate_engines = validate_engines
        self.worker_id = ""
        self._client: AsyncRedis | None = None
        self._blocking: AsyncRedis | None = None
        self._scripts: Scripts | None = None
        self._calls: ScriptCalls | None = None
        self._artifacts: ArtifactStore | None = None
        self.url = ""
        self.server: ServerInfo | None = None

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Resolve the Redis URL (starting the embedded server if needed) and check it.

        Raises:
            RoostError: the server is unreachable or unsuitable (message says why).
        """
        if self._client is not None:
            return
        from roost.redis.server import ServerError, redis_url_for

        try:
            self.url = await asyncio.to_thread(redis_url_for, self.settings)
        except ServerError as exc:
            raise EmbeddedServerFailed(f"cannot start the embedded Redis: {exc}") from None
        client = make_client(self.url, home_key=self.keys.base)
        try:
            self.server = await check_server(
                client, url=self.url, strict=self.settings.strict_durability
            )
        except Exception as exc:
            await client.aclose()
            if isinstance(exc, RoostError):
                raise
            url = redact_url(self.url)
            if is_topology_url(self.url):
                why = await explain_failure(self.url, exc)
                if why is not None:
                    raise RedisUnreachable(f"cannot reach Redis at {url}: {why}") from None
            if is_unreachable(exc) and error_code(exc) is None:
                raise RedisUnreachable(f"cannot reach Redis at {url}: {exc}") from None
            raise RoostError(f"cannot use Redis at {url}: {describe_redis_error(exc)}") from None
        try:
            self.partitions = self._checked_partitions(await client.hget(self.keys.conf, PARTS))
        except Exception:
            await client.aclose()
            raise
        self._client = client
        self._blocking = make_client(self.url, blocking=True, home_key=self.keys.base)
        self._scripts = Scripts(client)

    def _checked_partitions(self, stored: str | None) -> int:
        """The number of partitions to use, given the namespace's record (None: none yet).

        Raises:
            SettingsError: the record differs from ``ROOST_PARTITIONS``, or is not a
                number of partitions (one line, naming the variable).
        """
        wanted = self.settings.partitions
        if stored is None:
            return wanted or 1
        ns = self.settings.namespace
        found = int(stored) if stored.isdigit() else 0
        if not 1 <= found <= MAX_PARTITIONS or found & (found - 1):
            raise SettingsError(f"ROOST_PARTITIONS: namespace {ns!r} records {stored!r} partitions")
        if wanted is not None and wanted != found:
            raise SettingsError(
                f"ROOST_PARTITIONS: namespace {ns!r} has {found} partition"
                f"{'s' if found > 1 else ''}, not {wanted} (fixed when it was created)"
            )
        return found

    async def settle_partitions(self) -> int:
        """Record the namespace's number of partitions unless it has one; return it.

        Called before the first write of work (an enqueue, a worker starting): the first
        writer's ``ROOST_PARTITIONS`` (or 1) is recorded, atomically (``HSETNX``), and every
        later process uses it or, if it asks for another, is refused. A namespace that holds
        work from before the record existed has one partition.

        Raises:
            SettingsError: the namespace has another number than ``ROOST_PARTITIONS``.
        """
        if self._settled:
            return self.partitions
        stored = await self.client.hget(self.keys.conf, PARTS)  # a read: no write once set
        if stored is None:
            wanted = self.settings.partitions or 1
            states = [self.keys.state(s) for s in STATE_ORDER]
            if wanted > 1 and await self.client.exists(*states):  # work of an earlier version
                wanted = 1
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hsetnx(self.keys.conf, PARTS, wanted)
                pipe.hget(self.keys.conf, PARTS)
                _, stored = await pipe.execute()
        self.partitions = self._checked_partitions(stored)
        self._settled = True
        return self.partitions

    async def close(self) -> None:
        """Close the connections."""
        for c in (self._client, self._blocking):
            if c is not None:
                await c.aclose()
        self._client = self._blocking = None
        self._scripts = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def client(self) -> AsyncRedis:
        """The connected client (raises if :meth:`connect` was not awaited)."""
        if self._client is None:
            raise RoostError("RedisSwarm is not connected: use 'async with RedisSwarm()'")
        return self._client

    @property
    def blocking_client(self) -> AsyncRedis:
        """The client for blocking reads."""
        if self._blocking is None:
            raise RoostError("RedisSwarm is not connected: use 'async with RedisSwarm()'")
        return self._blocking

    @property
    def registry(self) -> Registry:
        """Engines, artifact stores and event sinks (loaded from plugins on first use)."""
        if self._registry is None:
            self._registry = Registry.load()
        return self._registry

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store at ``ROOST_ARTIFACT_ROOT``."""
        if self._artifacts is None:
            self._artifacts = self.registry.artifact_store(self.settings.artifact_url)
        return self._artifacts

    @property
    def calls(self) -> ScriptCalls:
        """Roost's scripts as typed methods (see :mod:`roost.redis.calls`)."""
        if self._calls is None:
            self._calls = ScriptCalls(self)
        return self._calls

    async def fcall(
        self, name: str, keys: list[str], args: list[Any], *, route: Keys, durable: bool
    ) -> Any:
        """Run a Roost script with its full KEYS and ARGV (see :class:`ScriptCalls`).

        ``durable``: then wait for what acknowledges a commit: the append-only file's fsync
        (``WAITAOF``) under strict durability and ``ROOST_WAIT_REPLICAS`` replicas
        (``WAIT``), both on the connection of the call.
        """
        if self._scripts is None:
            raise RoostError("RedisSwarm is not connected: use 'async with RedisSwarm()'")
        replicas = self.settings.wait_replicas
        fsync = self.settings.strict_durability
        if not durable or not (fsync or replicas):
            return await self._scripts(name, keys, args)
        return await self._scripts.acked(
            name,
            keys,
            args,
            fsync=fsync,
            replicas=replicas,
            probe_key=route.ack if replicas else None,
            wait_ms=min(WAIT_TIMEOUT_MS, int(self.settings.lease_ttl * 250)),
        )

    async def fcall_many(
        self, name: str, calls: list[tuple[list[str], list[Any], Keys]], *, durable: bool
    ) -> list[Any]:
        """Run a Roost script once per call (keys, args, route), pipelined per primary.

        ``durable``: as :meth:`fcall`; each primary's waits follow its calls.
        """
        if self._scripts is None:
            raise RoostError("RedisSwarm is not connected: use 'async with RedisSwarm()'")
        replicas = self.settings.wait_replicas if durable else 0
        fsync = self.settings.strict_durability and durable
        return await self._scripts.many(
            name,
            [(keys, args, route.ack if replicas else None) for keys, args, route in calls],
            fsync=fsync,
            replicas=replicas,
            wait_ms=min(WAIT_TIMEOUT_MS, int(self.settings.lease_ttl * 250)),
        )

    # -- reading ------------------------------------------------------------------------------

    @property
    def placer(self) -> Placer:
        """Chooses new items' partitions (one per store: it spreads items in turn)."""
        if self._placer is None or self._placer.partitions != self.partitions:
            self._placer = Placer(self.partitions)
        return self._placer

    def partition_keys(self) -> list[Keys]:
        """This queue's keys in every partition of the namespace, partition 0 first."""
        return [self.keys.for_partition(k) for k in range(self.partitions)]

    def item_keys(self, work_id: str) -> Keys:
        """The keys of the partition ``work_id`` lives in (its id says which: no lookup)."""
        if self.partitions == 1:
            return self.keys
        return self.keys.for_partition(partition_of(work_id, self.partitions))

    async def status(self, work_id: str) -> WorkStatus:
        """Return the item's meta, latest snapshot and work item.

        Raises:
            NotFound: no such work id (it may have passed its retention time).
        """
        keys = self.item_keys(work_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.meta(work_id))
            pipe.get(keys.item(work_id))
            pipe.get(keys.snap(work_id))
            pipe.xlen(keys.sig(work_id))
            h, item_json, snap_json, pending = await pipe.execute()
        if not h:
            raise NotFound(f"unknown work id {work_id!r}")
        meta = meta_from_hash(work_id, h, self.settings.max_attempts)
        meta.pending_signals = int(pending)
        item = read_item(work_id, item_json) if item_json else None
        meta.budget = budget_of(h, item)
        return WorkStatus(
            meta=meta,
            snapshot=read_snapshot(work_id, snap_json, engine=meta.engine) if snap_json else None,
            item=item,
        )

    async def metas(self, work_ids: Sequence[str]) -> list[WorkMeta | None]:
        """Meta of many items in one round trip (``None`` for unknown ids)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for work_id in work_ids:
                pipe.hmget(self.item_keys(work_id).meta(work_id), list(META_FIELDS))
            rows: list[list[str | None]] = await pipe.execute()
        out: list[WorkMeta | None] = []
        for work_id, row in zip(work_ids, rows, strict=True):
            h: dict[str, str] = {
                k: v for k, v in zip(META_FIELDS, row, strict=True) if v is not None
            }
            out.append(meta_from_hash(work_id, h, self.settings.max_attempts) if h else None)
        return out

    async def snapshot_versions(self, work_id: str) -> list[Snapshot]:
        """The latest snapshot and the earlier versions kept (``ROOST_HISTORY``), newest first."""
        keys = self.item_keys(work_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.meta(work_id), Meta.ENGINE)
            pipe.get(keys.snap(work_id))
            pipe.lrange(keys.hist(work_id), 0, -1)
            engine, latest, older = await pipe.execute()
        snaps = ([latest] if latest else []) + list(older)
        return [read_snapshot(work_id, s, engine=engine or "") for s in snaps]

    async def workers(self) -> list[dict[str, Any]]:
        """Live workers, as their heartbeats describe them.

        Each: ``worker_id``, ``queue``, ``engines``, ``slots`` (per engine), ``concurrency``,
        ``pid``, ``host``, ``started`` (epoch seconds), ``running`` (items held), ``steps``
        (committed), ``libraries`` (the Functions libraries its version calls), ``healthy``
        (every loop's last pass went through) and, when not, ``problem`` (one line: which
        loop fails, for how long, and why); ``heartbeat`` is when the worker last reported
        (server clock, epoch seconds) and ``heartbeat_age`` how long ago that was.
        """
        seconds, micros = await self.client.time()
        now_ms = int(seconds) * 1000
        ids = await self.client.zrange(self.keys.workers, now_ms, "+inf", byscore=True)
        async with self.client.pipeline(transaction=False) as pipe:
            for wid in ids:
                pipe.hgetall(self.keys.worker(wid))
            rows = await pipe.execute()
        out: list[dict[str, Any]] = []
        for wid, h in zip(ids, rows, strict=True):
            if h:
                info: dict[str, Any] = json.loads(h.get("info", "{}"))
                if isinstance(info.get("heartbeat"), int | float):
                    info["heartbeat_age"] = round(seconds + micros / 1e6 - info["heartbeat"], 3)
                out.append({"worker_id": wid, **info})
        return out

    async def _keys_of(self, work_id: str) -> tuple[Keys, dict[str, str]]:
        keys = self.item_keys(work_id)
        h: dict[str, str] = await self.client.hgetall(keys.meta(work_id))
        if not h:
            raise NotFound(f"unknown work id {work_id!r}")
        return keys.for_queue(h.get(Meta.QUEUE) or self.settings.queue), h

    async def cancel_one(self, work_id: str) -> WorkMeta:
        """Cancel one unfinished item, leaving its children be (see :meth:`cancel`)."""
        keys, _ = await self._keys_of(work_id)
        reply = await self.calls.cancel(keys, work_id=work_id)
        if reply.code is Code.GONE:
            raise NotFound(f"unknown work id {work_id!r}")
        if reply.code is Code.TERMINAL:
            raise ConflictError(f"work {work_id} is already {reply.state}; nothing to cancel")
        return (await self.status(work_id)).meta
