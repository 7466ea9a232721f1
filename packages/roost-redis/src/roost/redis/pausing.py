"""Pause and resume: an operator (or a budget) stops an item from running new steps.

``pause.lua`` parks an item that holds no lease at once; a running item is marked and the
commit of its step parks it instead of going on (``commit.lua``, and ``fail.lua`` or
``release.lua`` when the step fails or is given back). ``resume.lua`` puts it back where it
was: queued, scheduled or retrying with its due time, or awaiting its signals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.keys import Keys, new_token
from roost.runtime.errors import ConflictError, NotFound

if TYPE_CHECKING:
    from roost.redis.store import RedisStore
    from roost.runtime.models import WorkMeta

__all__ = ["pause", "resume"]


async def _route(store: RedisStore, work_id: str) -> Keys:
    h: dict[str, str] = await store.client.hgetall(store.keys.meta(work_id))
    if not h:
        raise NotFound(f"unknown work id {work_id!r}")
    keys = store.keys.for_queue(h.get("queue") or store.settings.queue)
    return keys.for_engine(h.get("engine", ""))


async def pause(store: RedisStore, work_id: str, reason: str = "operator") -> WorkMeta:
    """Pause an item; see :meth:`RedisSwarm.pause`."""
    keys = await _route(store, work_id)
    reply = await store.run_script("pause", [keys.meta(work_id)], [work_id, reason], keys=keys)
    if reply[0] == "GONE":
        raise NotFound(f"unknown work id {work_id!r}")
    if reply[0] == "TERMINAL":
        raise ConflictError(f"work {work_id} is already {reply[1]}; nothing to pause")
    if reply[0] == "ALREADY":
        raise ConflictError(f"work {work_id} is already paused")
    return (await store.status(work_id)).meta


async def resume(store: RedisStore, work_id: str) -> WorkMeta:
    """Resume a paused item; see :meth:`RedisSwarm.resume`."""
    keys = await _route(store, work_id)
    dispatch = new_token()
    suffix = Keys.job_suffix(work_id, dispatch)
    reply = await store.run_script(
        "resume",
        [keys.meta(work_id), keys.sig(work_id), keys.job(suffix)],
        [work_id, dispatch, suffix],
        keys=keys,
    )
    if reply[0] == "GONE":
        raise NotFound(f"unknown work id {work_id!r}")
    if reply[0] == "CONFLICT":
        raise ConflictError(f"work {work_id} is {reply[1]}, not paused; nothing to resume")
    return (await store.status(work_id)).meta
