"""Everything the console reads, shaped for pages and the API.

Every read of the console goes through this module (actions through :mod:`.actions`), as a
composition of :class:`~roost.runtime.backends.WorkBackend`'s public API; nothing here
touches Redis keys. Where the backend lacks a read the console needs, it is built here and
its docstring says so: those are the candidates to move into the runtime. The work list's
order is in :mod:`.worklist`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from roost.console import worklist
from roost.runtime.artifacts import validate_artifact_id, validate_kind
from roost.runtime.errors import NotFound, SettingsError
from roost.runtime.models import (
    Artifact,
    RuntimeEvent,
    Snapshot,
    WorkMeta,
    WorkPage,
    WorkState,
    WorkStatus,
    validate_name,
)

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend

__all__ = [
    "EVENT_SCAN",
    "ITEM_EVENTS",
    "QUIET_TYPES",
    "LIVE_LIMIT",
    "LIVE_STATES",
    "STAT_KINDS",
    "Detail",
    "EventsPage",
    "Fleet",
    "Minute",
    "Overview",
    "Owner",
    "Unserved",
    "artifact",
    "artifact_content",
    "artifact_owner",
    "children",
    "counts",
    "detail",
    "engines",
    "events",
    "fleet",
    "follow",
    "last_event_id",
    "overview",
    "ping",
    "recent_events",
    "state_page",
    "status",
    "throughput",
    "unserved",
    "unserved_for",
    "versions",
    "work_id",
]

LIVE_STATES: tuple[WorkState, ...] = tuple(s for s in reversed(WorkState) if not s.is_terminal)
"""The unfinished states the overview lists, closest to done first (running ... queued)."""

LIVE_LIMIT = 20
"""How many items of each live state the overview lists."""

ITEM_EVENTS = 500
"""How many of an item's most recent events the detail page reads (timeline and list)."""

EVENTS_BUDGET = 0.25
"""Seconds the detail page waits for an item's events before it renders without them.

``WorkBackend.events(work_id=...)`` scans the namespace's event stream from the item's
creation on, so for an old item in a busy namespace it takes long (about 1 s per 100,000
later events). The page then loads the timeline from the API after it has rendered."""

EVENT_SCAN = 10_000
"""At most this many of the latest events are read to find the ones a filter asks for (first
ten times as many as asked for, then this many if that did not find enough)."""

QUIET_TYPES = frozenset({"progress"})
"""Event types lists leave out unless asked for: they would drown the rest."""

STAT_KINDS = ("enqueued", "committed", "done", "retried", "dead", "failed", "cancelled")


def work_id(raw: str) -> str:
    """A work id from a URL; a malformed one is reported as not found.

    Raises:
        NotFound: ``raw`` cannot be a work id.
    """
    try:
        return validate_name("work id", raw)
    except ValueError:
        raise NotFound(f"no work item has the id {raw!r}") from None


# -- counters, workers and the work none of them takes ---------------------------------------


class Minute(BaseModel):
    """Counters of one minute (``start`` is its first second, epoch seconds)."""

    start: float
    counts: dict[str, int]


async def counts(backend: WorkBackend) -> dict[str, int]:
    """Items per state."""
    return await backend.counts()


async def throughput(backend: WorkBackend, minutes: int = 15) -> list[Minute]:
    """Counters of the last ``minutes`` minutes of the server's clock, oldest first."""
    raw = await backend.stats(minutes=minutes)
    return [
        Minute(start=float(start), counts={k: raw[start].get(k, 0) for k in STAT_KINDS})
        for start in sorted(raw)
    ]


async def ping(backend: WorkBackend) -> None:
    """Check that Redis answers."""
    await backend.ping()


Unserved = dict[str, dict[str, int]]
"""``{queue: {engine: deliveries queued}}``: engines with queued work and no live worker of
their queue running them (the shape ``roost workers --json`` prints)."""


async def _unserved_in(backend: WorkBackend, queue: str) -> dict[str, int]:
    try:
        return await backend.unserved_engines(queue)
    except SettingsError:  # not a queue name (a hostile heartbeat or item): nothing to say
        return {}


def _queues(workers_: Iterable[dict[str, Any]], items: Iterable[WorkMeta]) -> list[str]:
    """The queues named by workers' heartbeats and by items."""
    named = {str(w["queue"]) for w in workers_ if w.get("queue")}
    return sorted(named | {m.queue for m in items if m.queue})


async def unserved(
    backend: WorkBackend, queues: Iterable[str] = (), *, engine: str | None = None
) -> Unserved:
    """Engines with queued work and no live worker, in the backend's queue and ``queues``.

    With ``engine``, that engine only. A few reads per queue, whatever the amount of work.
    Redis keeps no list of a namespace's queues, so pages name the queues they know of:
    their workers' and their items'.
    """
    names = list(dict.fromkeys((backend.settings.queue, *queues)))
    found = await asyncio.gather(*(_unserved_in(backend, q) for q in names))
    out: Unserved = {}
    for queue, engines in zip(names, found, strict=True):
        chosen = {e: n for e, n in engines.items() if engine is None or e == engine}
        if chosen:
            out[queue] = chosen
    return out


async def unserved_for(backend: WorkBackend, items: Iterable[WorkMeta]) -> Unserved:
    """Like :func:`unserved`, for the engines of the queued ones among ``items`` only."""
    default = backend.settings.queue
    wanted = {(m.queue or default, m.engine) for m in items if m.state == WorkState.QUEUED}
    if not wanted:
        return {}
    found = await unserved(backend, sorted({q for q, _ in wanted}))
    out: Unserved = {}
    for queue, engines in found.items():
        for engine, n in engines.items():
            if (queue, engine) in wanted:
                out.setdefault(queue, {})[engine] = n
    return out


class Fleet(BaseModel):
    """The live workers, and the engines with queued work none of them runs.

    Each worker as its heartbeat describes it: engines with their ``slots``,
    ``healthy``/``problem``, ``heartbeat_age``... (see ``WorkBackend.workers``).
    """

    workers: list[dict[str, Any]]
    unserved: Unserved


async def fleet(backend: WorkBackend) -> Fleet:
    """Live workers, and the work of engines no live worker runs (in the workers' queues)."""
    live = await backend.workers()
    return Fleet(workers=live, unserved=await unserved(backend, _queues(live, ())))


def engines(backend: WorkBackend) -> list[str]:
    """Names of the engines installed here (empty when a plugin cannot be loaded)."""
    try:
        return backend.engine_ids()
    except Exception:  # a broken plugin must not break a page that offers engine names
        return []


# -- the overview --------------------------------------------------------------------------


class Overview(BaseModel):
    """Everything the overview page shows, as ``GET /api/overview`` returns it."""

    now: float
    counts: dict[str, int]
    throughput: list[Minute]
    live: dict[str, list[WorkMeta]]
    workers: list[dict[str, Any]]
    events: list[RuntimeEvent]
    latest_event: str | None = None
    unserved: Unserved = {}


async def overview(backend: WorkBackend, *, minutes: int = 15, events: int = 12) -> Overview:
    """Everything the overview shows, in one round of reads.

    That is counts, throughput, live work, workers, the latest events and the engines no live
    worker runs (a second round when workers or items use other queues than the backend's).
    """
    live_pages = asyncio.gather(
        *(worklist.find_work(backend, state=s, limit=LIVE_LIMIT) for s in LIVE_STATES)
    )
    counts_, minutes_, workers_, recent, pages, waiting = await asyncio.gather(
        backend.counts(),
        throughput(backend, minutes),
        backend.workers(),
        recent_events(backend, exclude=QUIET_TYPES, limit=events),
        live_pages,
        unserved(backend),
    )
    live = {str(s): p.items for s, p in zip(LIVE_STATES, pages, strict=True)}
    others = _queues(workers_, live[WorkState.QUEUED.value])
    if set(others) - {backend.settings.queue}:
        waiting = await unserved(backend, others)
    return Overview(
        now=time.time(),
        counts=counts_,
        throughput=minutes_,
        live=live,
        workers=workers_,
        events=recent.events,
        latest_event=recent.latest,
        unserved=waiting,
    )


# -- one item ------------------------------------------------------------------------------


async def status(backend: WorkBackend, work_id_: str) -> WorkStatus:
    """Meta, latest snapshot and work item of one item.

    Raises:
        NotFound: no such work id (a malformed id is not found either).
    """
    return await backend.status(work_id(work_id_))


async def children(backend: WorkBackend, work_id_: str) -> list[WorkMeta]:
    """An item's children (each one's meta), in spawn order."""
    return await backend.children(work_id_)


async def versions(backend: WorkBackend, work_id_: str) -> list[Snapshot]:
    """The latest snapshot and the kept earlier ones, newest first.

    Raises:
        NotFound: no such work id.
    """
    await status(backend, work_id_)
    return await backend.snapshot_versions(work_id_)


class Detail(BaseModel):
    """A work item as the detail page shows it.

    ``events_complete`` is false when reading the item's events took longer than
    :data:`EVENTS_BUDGET`; ``events`` is then empty and the page loads them separately.
    """

    status: WorkStatus
    versions: list[Snapshot]
    events: list[RuntimeEvent]
    events_complete: bool = True
    unserved: Unserved = {}


async def detail(
    backend: WorkBackend, work_id_: str, *, budget: float | None = EVENTS_BUDGET
) -> Detail:
    """Status, kept snapshot versions and recent events of one item.

    The events are waited for at most ``budget`` seconds (``None``: as long as they take).

    Raises:
        NotFound: no such work id (bad ids are reported as not found too).
    """
    wid = work_id(work_id_)
    reading = asyncio.ensure_future(backend.events(work_id=wid, limit=ITEM_EVENTS))
    try:
        status_ = await backend.status(wid)
        versions_, waiting = await asyncio.gather(
            backend.snapshot_versions(wid), unserved_for(backend, [status_.meta])
        )
        await asyncio.wait({reading}, timeout=budget)
    finally:
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        elif not reading.cancelled():
            reading.exception()  # mark it retrieved; a failure is raised below
    if reading.cancelled():
        return Detail(
            status=status_, versions=versions_, events=[], events_complete=False, unserved=waiting
        )
    return Detail(status=status_, versions=versions_, events=reading.result(), unserved=waiting)


# -- events ---------------------------------------------------------------------------------


async def events(
    backend: WorkBackend, *, work_id: str | None = None, after: str | None = None, limit: int = 100
) -> list[RuntimeEvent]:
    """Events, oldest first (one item's with ``work_id``; after a position with ``after``)."""
    return await backend.events(work_id=work_id, after=after, limit=limit)


async def last_event_id(backend: WorkBackend) -> str:
    """The position of the newest stored event (``0-0`` for an empty stream)."""
    latest = await backend.events(limit=1)
    return latest[-1].id if latest else "0-0"


def follow(backend: WorkBackend, after: str) -> AsyncIterator[RuntimeEvent]:
    """Every event stored after position ``after``, as it is stored (one blocking reader)."""
    return backend.follow_events(after=after)


class EventsPage(BaseModel):
    """A filtered list of events, newest first.

    ``scanned`` is how many of the latest events were read to find them; ``complete`` says
    whether that reached the start of the stream (or of the item's life), i.e. whether older
    matching events can exist. ``latest`` is the position of the newest event read (a live
    page follows the stream from there).
    """

    events: list[RuntimeEvent]
    scanned: int
    complete: bool
    latest: str | None = None


async def recent_events(
    backend: WorkBackend,
    *,
    types: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    work_id: str | None = None,
    limit: int = 100,
) -> EventsPage:
    """The latest ``limit`` events of the given types (any), not of ``exclude``, newest first.

    A bounded scan: at most the latest :data:`EVENT_SCAN` events are read and filtered here.
    ``WorkBackend.events`` filters by item but not by type and reads no further back than its
    ``limit``; ``events(types=..., before=...)`` in the runtime would make this an exact
    backward scan (a candidate to move there).
    """
    wanted = None if types is None else frozenset(types)
    unwanted = frozenset(exclude)
    found: list[RuntimeEvent] = []
    read: list[RuntimeEvent] = []
    for window in sorted({min(max(limit * 10, 100), EVENT_SCAN), EVENT_SCAN}):
        read = await backend.events(work_id=work_id, limit=window)
        found = [e for e in read if (wanted is None or e.type in wanted) and e.type not in unwanted]
        if len(found) >= limit or len(read) < window:
            break
    found.reverse()
    return EventsPage(
        events=found[:limit],
        scanned=len(read),
        complete=len(read) < EVENT_SCAN,
        latest=read[-1].id if read else None,
    )


# -- lists by state ---------------------------------------------------------------------------


async def state_page(
    backend: WorkBackend, state: WorkState, *, limit: int = 50, cursor: str | None = None
) -> WorkPage:
    """One page of the items in ``state``, most recent first."""
    return await backend.list_work(state=state, limit=limit, cursor=cursor)


# -- artifacts ---------------------------------------------------------------------------------


async def artifact(backend: WorkBackend, artifact_id: str, kind: str | None = None) -> Artifact:
    """An artifact's description, its id and kind validated before the store is asked.

    Raises:
        BadInput: a malformed id or kind.
        NotFound: no such artifact.
    """
    validate_artifact_id(artifact_id)
    if kind is not None:
        validate_kind(kind)
    return await backend.artifacts.stat(artifact_id, kind)


async def artifact_content(backend: WorkBackend, art: Artifact) -> bytes:
    """The content of an artifact described by :func:`artifact`."""
    return await backend.artifacts.read(art.artifact_id, art.kind)


class Owner(BaseModel):
    """The work item an artifact belongs to, as found in the item's snapshots."""

    work_id: str
    version: int
    step: str
    latest: bool


async def artifact_owner(backend: WorkBackend, artifact_id: str, candidate: str) -> Owner | None:
    """Whether ``candidate`` (a work id) produced the artifact: its snapshots list it.

    Artifacts are content-addressed and record no work item, and no event names them, so the
    console checks a claimed owner (from the link it followed, or the artifact's own
    ``work_id`` metadata) against that item's latest and kept snapshots. An artifact ->
    item reference (in the artifact record or the commit event) would belong in the runtime.
    """
    try:
        snaps = await versions(backend, candidate)
    except NotFound:
        return None
    for i, snap in enumerate(snaps):
        if any(a.artifact_id == artifact_id for a in snap.artifacts):
            return Owner(work_id=candidate, version=snap.version, step=snap.step, latest=i == 0)
    return None
