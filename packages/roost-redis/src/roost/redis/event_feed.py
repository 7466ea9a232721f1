"""The namespace's event stream, read for the event sinks of a fleet of workers.

Every runtime event is an entry of the namespace's stream (``{prefix}:{ns}:events``),
appended by the script that made the change it records, whichever process ran it. A
worker with event sinks reads that stream through :class:`RedisEventFeed` and its
:class:`roost.runtime.observe.EventPump` hands each entry to the sinks. How a fleet
delivers each event once, in stream order:

- **One consumer group per namespace** (``roost-sinks``) on the stream keeps the position
  delivered so far and the entries read but not yet acknowledged (its pending list). It is
  created at the stream's start when the first worker with sinks runs, so the events still
  in the stream (an enqueue from the CLI before any worker ran, say) are delivered too.
- **One deliverer at a time.** The worker holding ``{prefix}:{ns}:events:pump`` (a key
  with a TTL of ``ROOST_LEASE_TTL``, renewed while it delivers) reads the group with
  XREADGROUP; the others stand by and try to take the key about once a second. With a
  single reader, sinks see the events in stream order, so an item's events come in the
  order they happened.
- **Consumers come and go.** Each worker delivers as a consumer named after its worker id;
  when one takes over it deletes the consumers that hold no entries and have been idle
  for longer than the TTL.
- **Acknowledged after every sink took it.** XACK follows the delivery of a batch to every
  sink. A worker that dies (or stalls past the TTL) mid-batch leaves its entries pending;
  the worker that takes over first claims every pending entry (XAUTOCLAIM), delivers those
  in stream order, and only then reads new ones. Delivery is therefore *at least once*: a
  batch cut short is delivered again, in full, by the next deliverer.
- **Trimming is counted.** The stream is capped (``ROOST_EVENTS_MAXLEN``, trimmed
  approximately by XADD). Entries trimmed before the group read them, and pending entries
  trimmed before they were acknowledged, are reported as lost (logged and counted by the
  pump), from the group's read counter (Redis 7.0+ keeps it).

Every key here is the namespace's, in its hash slot, so the reads work on Redis Cluster; the
commands go through the store's clients (the blocking one for XREADGROUP BLOCK), and every
Redis error reaches the worker's supervised ``sinks`` loop, which rides out outages (BUSY,
READONLY, unreachable...) like the other loops.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import ResponseError

from roost.redis.codec import event_from_entry
from roost.redis.connection import BLOCK_SECONDS
from roost.runtime.observe import EventBatch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from roost.redis.keys import Keys
    from roost.redis.store import RedisStore
    from roost.runtime.models import RuntimeEvent

__all__ = ["GROUP", "RedisEventFeed"]

GROUP = "roost-sinks"
"""The consumer group of the event sinks on a namespace's event stream."""

BATCH = 100
"""Entries read (and acknowledged) at a time."""
STANDBY_POLL = 1.0
"""How often (seconds) a worker that does not deliver tries to take over."""


class RedisEventFeed:
    """Reads a namespace's event stream for this worker's sinks (see the module's notes)."""

    def __init__(
        self, store: RedisStore, consumer: str, *, batch: int = BATCH, keys: Keys | None = None
    ) -> None:
        """Read ``store``'s namespace stream as ``consumer`` (the worker's id).

        ``keys``: read that partition's stream (default: the home partition's).
        """
        self.store = store
        self.consumer = consumer
        self.batch = batch
        self.keys = keys or store.keys
        self.stream = self.keys.events
        self.lock = self.keys.events_pump
        self.ttl_ms = max(int(store.settings.lease_ttl * 1000), 1000)
        self.leading = False
        """Whether this worker is the namespace's deliverer now."""
        self.renewed = 0.0
        """When (monotonic) the deliverer key was last taken or renewed."""
        self.claimed = False
        """Whether the pending entries were taken over since this worker began to deliver."""
        self.group_ready = False

    @property
    def _client(self) -> Any:
        return cast(Any, self.store.client)

    # -- the deliverer key -------------------------------------------------------------------

    async def _lead(self) -> bool:
        """Take or renew the deliverer key; whether this worker delivers now."""
        now = time.monotonic()
        if self.leading and now - self.renewed < self.ttl_ms / 3000.0:
            return True
        if self.leading:
            self.leading = await self._if_mine(renew=True)
            if not self.leading:
                self.claimed = False
        else:
            took = await self._client.set(self.lock, self.consumer, nx=True, px=self.ttl_ms)
            self.leading = bool(took)
            self.claimed = False
        if self.leading:
            self.renewed = now
        return self.leading

    async def _if_mine(self, *, renew: bool) -> bool:
        """Renew (or delete) the deliverer key if this worker holds it, in one script.

        The check and the renewal are one step on the server: a worker that stalled past
        the key's TTL finds its successor's key and leaves it alone.
        """
        reply = await self.store.calls.hold(
            self.keys, key=self.lock, holder=self.consumer, ttl_ms=self.ttl_ms if renew else 0
        )
        return bool(reply.held)

    # -- reading ------------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        """Create the group at the stream's start (the events still kept are delivered)."""
        info: dict[str, Any] | None = None
        try:
            info = await self._client.xinfo_stream(self.stream)
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
        removed = int(info["entries-added"]) - int(info["length"]) if info else 0
        try:
            await self._client.xgroup_create(
                self.stream, GROUP, id="0", mkstream=True, entries_read=removed
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.group_ready = True

    async def read(self) -> EventBatch:
        """The next events to deliver, or a wait when another worker delivers."""
        if not await self._lead():
            return EventBatch(wait=STANDBY_POLL)
        try:
            if not self.group_ready:
                await self._ensure_group()
            if not self.claimed:
                batch = await self._claim()
                self.claimed = True
                if batch.events or batch.lost:
                    return batch
            return await self._read_new()
        except ResponseError as exc:
            self.claimed = False
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc).lower():
                raise
            # The stream (and its group) was deleted: make them again at the next read.
            self.group_ready = False
            return EventBatch()
        except Exception:
            # A reply lost on the way may have left entries pending on this consumer:
            # take them over before reading on.
            self.claimed = False
            raise

    async def _claim(self) -> EventBatch:
        """Every pending entry of the group (a deliverer that died left them), oldest first."""
        start = "0-0"
        rows: list[tuple[str, dict[str, str]]] = []
        lost = 0
        while True:
            reply = await self._client.xautoclaim(
                self.stream, GROUP, self.consumer, 0, start_id=start, count=self.batch
            )
            start = reply[0]
            rows += [(i, f) for i, f in reply[1] if f is not None]
            lost += len(reply[2]) if len(reply) > 2 else 0
            if start == "0-0":
                break
        rows.sort(key=lambda row: _id_key(row[0]))
        await self._forget_consumers()
        return EventBatch(events=_events(rows), lost=lost)

    async def _forget_consumers(self) -> None:
        """Delete the group's consumers that hold nothing and were idle past the TTL.

        Every worker that ever delivered is a consumer (named after its worker id, new at
        each start unless ``ROOST_WORKER_ID`` is set); once their entries are claimed they
        hold none, and without this the group would keep them all.
        """
        consumers = await self._client.xinfo_consumers(self.stream, GROUP)
        for consumer in consumers:
            name = consumer.get("name")
            if (
                name != self.consumer
                and not consumer.get("pending")
                and int(consumer.get("idle") or 0) > self.ttl_ms
            ):
                await self._client.xgroup_delconsumer(self.stream, GROUP, name)

    async def _read_new(self) -> EventBatch:
        """New entries; how many were trimmed unread before them; waits when there are none.

        The group's read counter (``entries-read``: the number of the last entry it read,
        counting every entry ever added) is read before and after the read, in one pipeline
        on one connection; only the deliverer moves it, so what it moved by beyond the
        entries returned is the number skipped because they were trimmed.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xinfo_groups(self.stream)
            pipe.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=self.batch)
            pipe.xinfo_groups(self.stream)
            before, reply, after = await pipe.execute()
        rows = _rows(reply)
        if rows:
            lost = 0
            first, last = _entries_read(before), _entries_read(after)
            if first is not None and last is not None:
                lost = max(0, last - first - len(rows))
            return EventBatch(events=_events(rows), lost=lost)
        reply = await cast(Any, self.store.blocking_client).xreadgroup(
            GROUP,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=int(BLOCK_SECONDS * 1000),
        )
        return EventBatch(events=_events(_rows(reply)))

    async def ack(self, event_ids: Sequence[str]) -> None:
        """Every sink took these entries: acknowledge them in the group."""
        if event_ids:
            await self._client.xack(self.stream, GROUP, *event_ids)

    async def close(self) -> None:
        """Give up the deliverer key, so that another worker takes over at once."""
        if self.leading:
            self.leading = False
            await self._if_mine(renew=False)


def _entries_read(groups: list[dict[str, Any]]) -> int | None:
    """The group's read counter in an XINFO GROUPS reply (None when Redis cannot tell)."""
    for group in groups:
        if group.get("name") == GROUP:
            value = group.get("entries-read")
            return int(value) if value is not None else None
    return None


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _rows(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREADGROUP reply (``[[stream, [(id, fields), ...]]]``)."""
    out: list[tuple[str, dict[str, str]]] = []
    streams = cast("list[tuple[str, list[tuple[str, dict[str, str] | None]]]]", reply or [])
    for _stream, entries in streams:
        out += [(i, f) for i, f in entries if f is not None]
    return out


def _events(rows: list[tuple[str, dict[str, str]]]) -> list[RuntimeEvent]:
    return [event_from_entry(i, f) for i, f in rows]
