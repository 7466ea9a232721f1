"""Pause and resume: an operator (or a budget) stops an item from running new steps.

``pause.lua`` parks an item that holds no lease at once; a running item is marked and the
commit of its step parks it instead of going on (``commit.lua``, and ``fail.lua`` or
``release.lua`` when the step fails or is given back). ``resume.lua`` puts it back where it
was: queued, scheduled or retrying with its due time, or awaiting its signals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.redis.contract import Code
from roost.redis.keys import Keys, new_token
from roost.redis.schema import Meta
from roost.runtime.errors import ConflictError, NotFound

if TYPE_CHECKING:
    from roost.redis.store import RedisStore
    from roost.runtime.models import WorkMeta

__all__ = ["pause", "resume"]


async def _route(store: RedisStore, work_id: str) -> Keys:
    home = store.item_keys(work_id)
    h: dict[str, str] = await store.client.hgetall(home.meta(work_id))
    if not h:
        raise NotFound(f"unknown work id {work_id!r}")
    keys = home.for_queue(h.get(Meta.QUEUE) or store.settings.queue)
    return keys.for_engine(h.get(Meta.ENGINE, ""))


async def pause(store: RedisStore, work_id: str, reason: str = "operator") -> WorkMeta:
    """Pause an item; see :meth:`RedisSwarm.pause`."""
    keys = await _route(store, work_id)
    reply = await store.calls.pause(keys, work_id=work_id, reason=reason)
    if reply.code is Code.GONE:
        raise NotFound(f"unknown work id {work_id!r}")
    if reply.code is Code.TERMINAL:
        raise ConflictError(f"work {work_id} is already {reply.state}; nothing to pause")
    if reply.code is Code.ALREADY:
        raise ConflictError(f"work {work_id} is already paused")
    return (await store.status(work_id)).meta


async def resume(store: RedisStore, work_id: str) -> WorkMeta:
    """Resume a paused item; see :meth:`RedisSwarm.resume`."""
    keys = await _route(store, work_id)
    reply = await store.calls.resume(keys, work_id=work_id, dispatch=new_token())
    if reply.code is Code.GONE:
        raise NotFound(f"unknown work id {work_id!r}")
    if reply.code is Code.CONFLICT:
        raise ConflictError(f"work {work_id} is {reply.state}, not paused; nothing to resume")
    return (await store.status(work_id)).meta
