"""Creating work items: checks, serialization and the ``enqueue`` script, in chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from roost.redis.codec import stored_item, stored_snapshot
from roost.redis.keys import Keys, new_token
from roost.redis.placement import work_id_in
from roost.runtime.errors import BadInput, UnknownEngine
from roost.runtime.models import Snapshot, WorkItem
from roost.runtime.observe import enqueue_headers

if TYPE_CHECKING:
    from roost.redis.calls import ScriptCalls
    from roost.redis.placement import Placer
    from roost.runtime.plugins import Registry
    from roost.runtime.settings import RoostSettings

__all__ = ["ENQUEUE_CHUNK", "Enqueuer", "enqueue_items"]

ENQUEUE_CHUNK = 200
"""Items per ``enqueue`` script call: bounds how long one call blocks the server."""


class Enqueuer(Protocol):
    """What enqueueing needs of a :class:`~roost.redis.store.RedisSwarm`."""

    settings: RoostSettings
    keys: Keys
    partitions: int
    validate_engines: bool

    @property
    def registry(self) -> Registry:
        """Engines (checked with ``validate_engines``) and observers (trace headers)."""
        ...

    @property
    def calls(self) -> ScriptCalls:
        """Roost's scripts (``enqueue`` is acknowledged like a commit)."""
        ...

    async def settle_partitions(self) -> int:
        """Record the namespace's number of partitions unless it has one; return it."""
        ...

    @property
    def placer(self) -> Placer:
        """Chooses new items' partitions (see :mod:`roost.redis.placement`)."""
        ...


async def enqueue_items(
    store: Enqueuer,
    items: Sequence[WorkItem],
    delay_ms: int,
    seeds: Sequence[Snapshot | None] | None,
    *,
    partition: int | None = None,
) -> list[str]:
    """Create work items, ENQUEUE_CHUNK per script call; see :meth:`RedisSwarm.enqueue_many`.

    ``partition``: put every item there (ids Roost chooses), whatever its key or resources.
    """
    # Check and serialize everything before the first write: bad input writes nothing.
    prepared: list[tuple[WorkItem, str, str]] = []
    headers = enqueue_headers(store.registry.observers)
    queue = store.settings.queue
    partitions = store.partitions
    placed: list[int] = []
    for offset, given in enumerate(items):
        item, where = _place(store, given, seeded=bool(seeds and seeds[offset]), to=partition)
        placed.append(where)
        if store.validate_engines and item.engine not in store.registry.engines:
            known = ", ".join(sorted(store.registry.engines)) or "none"
            raise UnknownEngine(f"unknown engine {item.engine!r} (installed: {known})")
        if headers:
            item = item.model_copy(update={"queue": queue, "headers": {**headers, **item.headers}})
        elif item.queue != queue:  # a copy only when the stored item differs from the caller's
            item = item.model_copy(update={"queue": queue})
        try:
            item_json = stored_item(item)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"payload is not JSON-serializable: {exc}") from None
        seed = seeds[offset] if seeds else None
        if seed is not None and (seed.work_id, seed.engine) != (item.work_id, item.engine):
            raise BadInput(f"seed snapshot {offset} does not belong to its item")
        prepared.append((item, item_json, stored_snapshot(seed) if seed else ""))
    if await store.settle_partitions() != partitions:  # another first writer's number won
        return await enqueue_items(store, items, delay_ms, seeds, partition=partition)
    return await _write(store, prepared, placed, delay_ms)


async def _write(
    store: Enqueuer, prepared: list[tuple[WorkItem, str, str]], placed: list[int], delay_ms: int
) -> list[str]:
    """Run the enqueue script for the prepared items; returns their ids, in order."""
    # One script call per partition and engine (and chunk): each pushes on its engine's
    # delivery list in that partition. With one call, as before; with several, the calls
    # to one primary go in one pipeline, and the primaries are sent to at once.
    groups: dict[tuple[int, str], list[int]] = {}
    for offset, (item, _, _) in enumerate(prepared):
        groups.setdefault((placed[offset], item.engine), []).append(offset)
    chunks: list[tuple[Keys, list[int]]] = []
    for (where, engine), offsets in groups.items():
        keys = store.keys.for_partition(where).for_engine(engine)
        for start in range(0, len(offsets), ENQUEUE_CHUNK):
            chunks.append((keys, offsets[start : start + ENQUEUE_CHUNK]))
    calls = [
        (keys, _script_items([prepared[i] for i in chunk], delay_ms)) for keys, chunk in chunks
    ]
    queue = store.settings.queue
    if len(calls) == 1:
        replies = [await store.calls.enqueue(calls[0][0], queue=queue, items=calls[0][1])]
    else:
        replies = await store.calls.enqueue_many(calls, queue=queue)
    ids = [""] * len(prepared)
    for (_, chunk), reply in zip(chunks, replies, strict=True):
        for i, (work_id, _created) in zip(chunk, reply.items, strict=True):
            ids[i] = str(work_id)
    return ids


def _place(
    store: Enqueuer, item: WorkItem, *, seeded: bool, to: int | None
) -> tuple[WorkItem, int]:
    """The item's partition, and the item with an id naming it unless the caller chose one.

    An id the caller set (or that a seed snapshot names) stays, in the partition it names.
    ``to``: the partition the caller puts the item in (with an id Roost chooses).
    """
    chosen = seeded or "work_id" in item.model_fields_set
    if to is not None and not chosen:
        partition = to
    else:
        partition = store.placer.place(
            work_id=item.work_id if chosen else None,
            idempotency_key=item.idempotency_key,
            resources=item.resources,
        )
    if not chosen and store.partitions > 1:
        item = item.model_copy(update={"work_id": work_id_in(partition, store.partitions)})
    return item, partition


def _script_items(prepared: list[tuple[WorkItem, str, str]], delay_ms: int) -> list[dict[str, Any]]:
    """The enqueue script's arguments for items of one partition and engine.

    The call is acknowledged like a commit: fsynced under strict durability, on the replicas
    with ROOST_WAIT_REPLICAS.
    """
    return [
        {
            "work_id": item.work_id,
            "item_json": item_json,
            "engine": item.engine,
            "resources": " ".join(item.resources),
            "priority": item.priority,
            "delay_ms": delay_ms,
            "idem": item.idempotency_key or "",
            "dispatch": new_token(),
            "seed": seed_json,
            "imax": item.max_attempts or "",
        }
        for item, item_json, seed_json in prepared
    ]
