"""Operations too long to live in ``RedisSwarm`` itself: enqueueing a batch, replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.keys import Keys, new_token
from roost.runtime.errors import BadInput, ConflictError, NotFound, UnknownEngine
from roost.runtime.models import Snapshot, WorkItem, WorkStatus
from roost.runtime.observe import enqueue_headers

if TYPE_CHECKING:
    from roost.redis.swarm import RedisSwarm

__all__ = ["ENQUEUE_CHUNK", "enqueue_items", "replay"]

ENQUEUE_CHUNK = 200
"""Items per ``enqueue`` script call: bounds how long one call blocks the server."""


async def replay(
    swarm: RedisSwarm, work_id: str, *, version: int | None = None, as_new: bool = False
) -> str:
    """Run an item again from a snapshot; see :meth:`RedisSwarm.replay`."""
    current = await swarm.status(work_id)
    source = await _replay_source(swarm, work_id, current, version)
    if as_new:
        assert current.item is not None
        item = current.item.model_copy(
            update={
                "work_id": WorkItem(engine=current.meta.engine).work_id,
                "idempotency_key": None,
            }
        )
        seed = None
        if source is not None:
            seed = source.model_copy(
                update={
                    "work_id": item.work_id,
                    "version": 1,
                    "is_finished": False,
                    "next_step_delay_seconds": 0.0,
                }
            )
        return (await swarm.enqueue_many([item], seeds=[seed]))[0]
    if not current.meta.state.is_terminal or current.meta.lease is not None:
        raise ConflictError(
            f"work {work_id} is {current.meta.state}; replay in place needs a finished "
            "item (or use as_new)"
        )
    keys = swarm.keys.for_queue(current.meta.queue or swarm.settings.queue)
    keys = keys.for_engine(current.meta.engine)
    snap_json = ""
    if source is not None:
        snap_json = source.model_copy(
            update={
                "version": current.meta.version + 1,
                "is_finished": False,
                "next_step_delay_seconds": 0.0,
            }
        ).model_dump_json()
    dispatch = new_token()
    suffix = Keys.job_suffix(work_id, dispatch)
    reply = await swarm.run_script(
        "replay",
        [keys.meta(work_id), keys.snap(work_id), keys.hist(work_id), keys.job(suffix)],
        [
            work_id,
            current.meta.version,
            snap_json,
            dispatch,
            suffix,
            swarm.settings.history,
            "latest" if version is None else version,
        ],
        keys=keys,
    )
    if reply[0] != "OK":
        raise ConflictError(f"work {work_id} changed while replaying; try again")
    return work_id


async def _replay_source(
    swarm: RedisSwarm, work_id: str, current: WorkStatus, version: int | None
) -> Snapshot | None:
    if version == 0:
        return None
    if version is None or version == current.meta.version:
        if current.snapshot is None:
            return None
        return current.snapshot
    for snap in await swarm.snapshot_versions(work_id):
        if snap.version == version:
            return snap
    raise NotFound(
        f"work {work_id} has no kept snapshot version {version} "
        f"(ROOST_HISTORY={swarm.settings.history} keeps that many earlier versions)"
    )


async def enqueue_items(
    swarm: RedisSwarm,
    items: Sequence[WorkItem],
    delay_ms: int,
    seeds: Sequence[Snapshot | None] | None,
) -> list[str]:
    """Create work items, ENQUEUE_CHUNK per script call; see :meth:`RedisSwarm.enqueue_many`."""
    # Check and serialize everything before the first write: bad input writes nothing.
    prepared: list[tuple[WorkItem, str, str]] = []
    headers = enqueue_headers(swarm.registry.observers)
    for offset, item in enumerate(items):
        if swarm.validate_engines and item.engine not in swarm.registry.engines:
            known = ", ".join(sorted(swarm.registry.engines)) or "none"
            raise UnknownEngine(f"unknown engine {item.engine!r} (installed: {known})")
        update: dict[str, Any] = {"queue": swarm.settings.queue}
        if headers:
            update["headers"] = {**headers, **item.headers}
        item = item.model_copy(update=update)
        try:
            item_json = item.model_dump_json()
        except (TypeError, ValueError) as exc:
            raise BadInput(f"payload is not JSON-serializable: {exc}") from None
        seed = seeds[offset] if seeds else None
        if seed is not None and (seed.work_id, seed.engine) != (item.work_id, item.engine):
            raise BadInput(f"seed snapshot {offset} does not belong to its item")
        prepared.append((item, item_json, seed.model_dump_json() if seed else ""))
    # One script call per engine (and chunk): each pushes on its engine's delivery list.
    by_engine: dict[str, list[int]] = {}
    for offset, (item, _, _) in enumerate(prepared):
        by_engine.setdefault(item.engine, []).append(offset)
    ids = [""] * len(prepared)
    for engine, offsets in by_engine.items():
        for start in range(0, len(offsets), ENQUEUE_CHUNK):
            chunk = offsets[start : start + ENQUEUE_CHUNK]
            reply = await _enqueue_chunk(swarm, engine, [prepared[i] for i in chunk], delay_ms)
            for i, work_id in zip(chunk, reply, strict=True):
                ids[i] = work_id
    return ids


async def _enqueue_chunk(
    swarm: RedisSwarm, engine: str, prepared: list[tuple[WorkItem, str, str]], delay_ms: int
) -> list[str]:
    """Run the enqueue script for items of one engine; returns their work ids in order."""
    keys = swarm.keys.for_engine(engine)
    item_keys: list[str] = []
    args: list[Any] = [swarm.settings.queue]
    for item, item_json, seed_json in prepared:
        dispatch = new_token()
        suffix = Keys.job_suffix(item.work_id, dispatch)
        idem = item.idempotency_key or ""
        item_keys += [
            keys.meta(item.work_id),
            keys.item(item.work_id),
            keys.snap(item.work_id),
            keys.idem(idem),
            keys.job(suffix),
        ]
        args += [
            item.work_id,
            item_json,
            item.engine,
            " ".join(item.resources),
            item.priority,
            delay_ms,
            idem,
            dispatch,
            suffix,
            seed_json,
            item.max_attempts or "",
        ]
    # Acknowledged like a commit: fsynced under strict durability, on the replicas with
    # ROOST_WAIT_REPLICAS.
    reply = await swarm.run_script_durable("enqueue", item_keys, args, keys=keys)
    return [str(reply[i]) for i in range(0, len(reply), 2)]
