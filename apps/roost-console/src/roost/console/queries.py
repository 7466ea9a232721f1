"""What the console reads from a :class:`~roost.redis.RedisSwarm`, shaped for pages and the API.

Everything here is a thin composition of the swarm's public API; nothing touches Redis keys
directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from roost.runtime.errors import BadInput, NotFound
from roost.runtime.models import (
    RuntimeEvent,
    Snapshot,
    WorkMeta,
    WorkState,
    WorkStatus,
    validate_name,
)

if TYPE_CHECKING:
    from roost.redis import RedisSwarm

__all__ = [
    "ITEM_EVENTS",
    "LIVE_LIMIT",
    "LIVE_STATES",
    "SCAN_BUDGET",
    "Detail",
    "Listing",
    "Minute",
    "Overview",
    "detail",
    "find_work",
    "overview",
    "throughput",
]

LIVE_STATES: tuple[WorkState, ...] = (
    WorkState.RUNNING,
    WorkState.WAITING,
    WorkState.RETRYING,
    WorkState.SCHEDULED,
    WorkState.QUEUED,
)
"""The unfinished states the overview lists, in the order it shows them."""

LIVE_LIMIT = 20
"""How many items of each live state the overview lists."""

SCAN_BUDGET = 5_000
"""A text search examines at most this many items per request (newest update first)."""

SCAN_PAGE = 1000
ITEM_EVENTS = 200
"""How many of an item's most recent events the detail page shows."""

EVENTS_BUDGET = 0.25
"""Seconds the detail page waits for an item's events before it renders without them.

``RedisSwarm.events(work_id=...)`` scans the namespace's event stream from the item's
creation on, so for an old item in a busy namespace it takes long (about 1 s per 100,000
later events). The page then loads the timeline from the API after it has rendered."""

STAT_KINDS = ("enqueued", "committed", "done", "retried", "dead", "failed", "cancelled")


class Minute(BaseModel):
    """Counters of one minute (``start`` is its first second, epoch seconds)."""

    start: float
    counts: dict[str, int]


class Overview(BaseModel):
    """Everything the overview page shows, as ``GET /api/overview`` returns it."""

    now: float
    counts: dict[str, int]
    throughput: list[Minute]
    live: dict[str, list[WorkMeta]]
    workers: list[dict[str, Any]]
    events: list[RuntimeEvent]


class Listing(BaseModel):
    """One page of the work list.

    ``next_cursor`` continues the listing (or the search). With a text search, ``scanned``
    says how many items this page examined; a page may hold no matches and still have a
    ``next_cursor`` (the search goes on further back).
    """

    items: list[WorkMeta]
    next_cursor: str | None = None
    query: str = ""
    scanned: int | None = None
    exact: bool = False


class Detail(BaseModel):
    """A work item as the detail page shows it.

    ``events_complete`` is false when reading the item's events took longer than
    :data:`EVENTS_BUDGET`; ``events`` is then empty and the page loads them separately.
    """

    status: WorkStatus
    versions: list[Snapshot]
    events: list[RuntimeEvent]
    events_complete: bool = True


async def throughput(
    swarm: RedisSwarm, minutes: int = 15, now: float | None = None
) -> list[Minute]:
    """Counters of the last ``minutes`` wall-clock minutes, oldest first, zeros filled in."""
    now = time.time() if now is None else now
    current = int(now // 60) * 60
    raw = await swarm.stats(minutes=minutes)
    out: list[Minute] = []
    for i in range(minutes - 1, -1, -1):
        start = current - 60 * i
        counts = {k: 0 for k in STAT_KINDS}
        counts.update(raw.get(start, {}))
        out.append(Minute(start=float(start), counts=counts))
    return out


async def overview(swarm: RedisSwarm, *, minutes: int = 15, events: int = 12) -> Overview:
    """Counts, throughput, live work, workers and the latest events, in one round of reads."""
    now = time.time()
    live_pages = asyncio.gather(*(swarm.list_work(state=s, limit=LIVE_LIMIT) for s in LIVE_STATES))
    counts, minutes_, workers, recent, pages = await asyncio.gather(
        swarm.counts(),
        throughput(swarm, minutes, now),
        swarm.workers(),
        swarm.events(limit=events),
        live_pages,
    )
    return Overview(
        now=now,
        counts=counts,
        throughput=minutes_,
        live={str(s): p.items for s, p in zip(LIVE_STATES, pages, strict=True)},
        workers=workers,
        events=list(reversed(recent)),
    )


def _matches(meta: WorkMeta, state: WorkState | None, engine: str | None) -> bool:
    return (state is None or meta.state == state) and (engine is None or meta.engine == engine)


async def find_work(
    swarm: RedisSwarm,
    *,
    state: WorkState | None = None,
    engine: str | None = None,
    query: str = "",
    limit: int = 50,
    cursor: str | None = None,
) -> Listing:
    """List work, most recently updated first, filtered by state, engine and text in the id.

    Without ``query`` this is one :meth:`RedisSwarm.list_work` page (index reads). With it,
    a query that is the id of an item (matching the filters) returns that item alone, at
    once. Otherwise at most :data:`SCAN_BUDGET` items, newest update first, are examined for
    ids containing ``query`` (case-insensitive); ``next_cursor`` continues the scan further
    back.
    """
    query = query.strip()
    if not query:
        page = await swarm.list_work(state=state, engine=engine, limit=limit, cursor=cursor)
        return Listing(items=page.items, next_cursor=page.next_cursor)
    if len(query) > 200:
        raise BadInput("search text is longer than a work id can be (200 characters)")
    found: list[WorkMeta] = []
    if cursor is None:
        try:
            validate_name("work id", query)
        except ValueError:
            pass
        else:
            exact = (await swarm.metas([query]))[0]
            if exact is not None and _matches(exact, state, engine):
                return Listing(items=[exact], query=query, scanned=0, exact=True)
    needle = query.lower()
    scanned = 0
    next_cursor = cursor
    for _ in range(SCAN_BUDGET // SCAN_PAGE):
        if scanned >= SCAN_BUDGET or len(found) >= limit:
            break
        page = await swarm.list_work(
            state=state, engine=engine, limit=SCAN_PAGE, cursor=next_cursor
        )
        scanned += len(page.items)
        found += [m for m in page.items if needle in m.work_id.lower() and m.work_id != query]
        next_cursor = page.next_cursor
        if next_cursor is None:
            break
    return Listing(items=found, next_cursor=next_cursor, query=query, scanned=scanned)


async def detail(swarm: RedisSwarm, work_id: str) -> Detail:
    """Status, kept snapshot versions and recent events of one item.

    Raises:
        NotFound: no such work id (bad ids are reported as not found too).
    """
    try:
        validate_name("work id", work_id)
    except ValueError:
        raise NotFound(f"no work item has the id {work_id!r}") from None
    reading = asyncio.ensure_future(swarm.events(work_id=work_id, limit=ITEM_EVENTS))
    try:
        status = await swarm.status(work_id)
        versions = await swarm.snapshot_versions(work_id)
        await asyncio.wait({reading}, timeout=EVENTS_BUDGET)
    finally:
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        elif not reading.cancelled():
            reading.exception()  # mark it retrieved; a failure is raised below
    if reading.cancelled():
        return Detail(status=status, versions=versions, events=[], events_complete=False)
    return Detail(status=status, versions=versions, events=reading.result())
