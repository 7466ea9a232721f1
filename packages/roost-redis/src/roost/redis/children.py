"""Child work on Redis: the commit's spawn block, children's outcomes, a tree's cancel.

A step's children travel with its commit (``commit.lua``; the Lua helpers are at the end
of ``_prelude.lua``): they are created, linked to their parent and made due in the same
script that writes the step's snapshot, so they exist if and only if that commit is
accepted. Each finish path (done, failed, dead, cancelled) records the child's state with
its parent and wakes a parent that awaits enough finished children.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.codec import META_FIELDS, meta_from_hash, read_item, read_snapshot, stored_item
from roost.redis.schema import Meta
from roost.runtime.children import ChildOutcome, Family
from roost.runtime.errors import ConflictError, NotFound
from roost.runtime.models import WorkItem, WorkMeta, WorkState

if TYPE_CHECKING:
    from roost.redis.keys import Keys
    from roost.redis.store import RedisStore

__all__ = [
    "cancel_tree",
    "family_for",
    "child_ids",
    "children_of",
    "load_outcomes",
    "resolve_keys",
    "spawn_block",
]


async def child_ids(store: RedisStore, work_id: str) -> list[str]:
    """The children of ``work_id`` in spawn order (empty for an item with none)."""
    kids: dict[str, str] = await store.client.hgetall(store.keys.kids(work_id))
    if not kids:
        return []
    ids = list(kids)
    async with store.client.pipeline(transaction=False) as pipe:
        for kid in ids:
            pipe.hget(store.keys.meta(kid), Meta.PARENT_INDEX)
        order: list[str | None] = await pipe.execute()
    ranked = sorted(zip(ids, order, strict=True), key=lambda p: (int(p[1] or 0), p[0]))
    return [kid for kid, _ in ranked]


async def children_of(store: RedisStore, work_id: str) -> list[WorkMeta]:
    """The metas of ``work_id``'s children, in spawn order (purged ones left out)."""
    metas = await store.metas(await child_ids(store, work_id))
    return [m for m in metas if m is not None]


async def load_outcomes(store: RedisStore, work_id: str) -> list[ChildOutcome]:
    """Every child's outcome (state, data or its kept keys, artifact ids, last error)."""
    ids = await child_ids(store, work_id)
    if not ids:
        return []
    keys = store.keys
    async with store.client.pipeline(transaction=False) as pipe:
        for kid in ids:
            pipe.hmget(keys.meta(kid), list(META_FIELDS))
            pipe.get(keys.snap(kid))
            pipe.get(keys.item(kid))
        rows: list[Any] = await pipe.execute()
    out: list[ChildOutcome] = []
    for i, kid in enumerate(ids):
        row, snap_json, item_json = rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]
        h: dict[str, str] = {k: v for k, v in zip(META_FIELDS, row, strict=True) if v is not None}
        if not h:
            continue  # purged (a parent outlived its child's retention)
        meta = meta_from_hash(kid, h, store.settings.max_attempts)
        snap = read_snapshot(kid, snap_json, engine=meta.engine) if snap_json else None
        item = read_item(kid, item_json) if item_json else None
        data = dict(snap.data) if snap is not None else {}
        keep = item.child_of.keep if item is not None and item.child_of is not None else None
        if keep is not None:
            data = {k: data[k] for k in keep if k in data}
        out.append(
            ChildOutcome(
                work_id=kid,
                engine=meta.engine,
                state=meta.state,
                finished=meta.state.is_terminal,
                data=data,
                artifact_ids=[a.artifact_id for a in snap.artifacts] if snap else [],
                error=None if meta.state == WorkState.DONE else meta.last_error,
            )
        )
    return out


async def resolve_keys(store: RedisStore, spawned: list[WorkItem]) -> list[WorkItem]:
    """Children whose idempotency key already names an item take that item's work id."""
    keyed = [c for c in spawned if c.idempotency_key]
    if not keyed:
        return spawned
    async with store.client.pipeline(transaction=False) as pipe:
        for c in keyed:
            pipe.get(store.keys.idem(c.idempotency_key or ""))
        owners: list[str | None] = await pipe.execute()
    found = {c.work_id: o for c, o in zip(keyed, owners, strict=True) if o}
    return [
        c.model_copy(update={"work_id": found[c.work_id]}) if c.work_id in found else c
        for c in spawned
    ]


def family_for(
    store: RedisStore,
    item: WorkItem,
    *,
    stepping: bool,
    retrying: Callable[[Callable[[], Awaitable[list[ChildOutcome]]]], Awaitable[Any]],
) -> Family:
    """The children part of a step context: depth, and how to read outcomes.

    ``retrying`` runs the read through Redis outages (the worker's own retry), so an outage
    while a step reads its children's outcomes costs the step no attempt.
    """
    work_id = item.work_id

    async def load() -> list[ChildOutcome]:
        outcomes: list[ChildOutcome] = await retrying(lambda: load_outcomes(store, work_id))
        return outcomes

    return Family(
        work_id=work_id,
        depth=item.child_of.depth if item.child_of is not None else 0,
        spawning=stepping,
        load=load,
    )


def spawn_block(
    keys: Keys, spawned: Sequence[WorkItem], queue: str
) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
    """A commit's children (see commit.lua): per child its keys, and its named arguments."""
    child_keys: list[tuple[str, str, str]] = []
    args: list[dict[str, Any]] = []
    for child in spawned:
        child = child.model_copy(update={"queue": queue})
        idem = child.idempotency_key or ""
        child_keys.append((keys.meta(child.work_id), keys.item(child.work_id), keys.idem(idem)))
        args.append(
            {
                "work_id": child.work_id,
                "item_json": stored_item(child),
                "engine": child.engine,
                "resources": " ".join(child.resources),
                "priority": child.priority,
                "idem": idem,
                "imax": child.max_attempts or "",
            }
        )
    return child_keys, args


def wait_arg(family: Family) -> str:
    """The wait of a step as commit.lua takes it."""
    return "" if family.wait is None else str(family.wait)


async def cancel_tree(store: RedisStore, work_id: str) -> list[str]:
    """Cancel the unfinished children of a cancelled item, and theirs, top down.

    The parent was cancelled first, so no commit of it is accepted any more and its list of
    children is final. Returns the work ids cancelled here.
    """
    done: list[str] = []
    todo = [work_id]
    seen = {work_id}
    while todo:
        parent = todo.pop()
        kids: dict[str, str] = await store.client.hgetall(store.keys.kids(parent))
        for kid, state in kids.items():
            if kid in seen:
                continue
            seen.add(kid)
            if state == "":
                try:
                    await store.cancel_one(kid)
                    done.append(kid)
                except (ConflictError, NotFound):
                    pass  # it finished meanwhile, or it is gone
            todo.append(kid)
    return done
