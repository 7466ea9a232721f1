"""The work list: items newest update first, filtered, searched, paged, selected in bulk.

The list shows each item's ``updated_at`` and is ordered by it. ``WorkBackend.list_work`` pages
through the state indexes, which order an item by the time it *entered* its state; for every
state but ``running`` that is its ``updated_at``, but a running item's ``updated_at`` moves on
with each step it commits on the same lease. So running items (at most as many as the
workers' slots, read whole up to :data:`RUNNING_CAP`) are sorted here by ``updated_at`` and
merged into the index order of the rest. Beyond the cap they keep the index's order. (A
runtime index of running items by last update would make this a plain index read: a
candidate to move into the runtime.)

Cursors are ``<updated_at ms>:<work id>`` of the last item shown, the form ``list_work``
takes, so a page continues strictly after the item it ended on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from pydantic import BaseModel

from roost.runtime.errors import BadInput
from roost.runtime.models import WorkMeta, WorkState, validate_name

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend

__all__ = ["RUNNING_CAP", "SCAN_BUDGET", "Listing", "find_work", "select"]

SCAN_BUDGET = 5_000
"""A text search examines at most this many items per request (newest update first)."""

SCAN_PAGE = 1000
RUNNING_CAP = 1000
"""Running items read at once to order them by their last update."""

Key = tuple[int, str]


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


def _key(meta: WorkMeta) -> Key:
    return round(meta.updated_at * 1000), meta.work_id


def _cursor(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def _parse(cursor: str | None) -> Key | None:
    if not cursor:
        return None
    ms, sep, member = cursor.partition(":")
    if not sep or not ms.isdigit() or len(ms) > 16 or not member:
        raise BadInput(f"invalid cursor {cursor[:80]!r}")
    return int(ms), member


async def _running(backend: WorkBackend, engine: str | None) -> list[WorkMeta] | None:
    """Running items newest update first; ``None`` when there are more than the cap."""
    page = await backend.list_work(state=WorkState.RUNNING, engine=engine, limit=RUNNING_CAP)
    if page.next_cursor is not None:
        return None
    return sorted(page.items, key=_key, reverse=True)


class _Walk:
    """Items newest ``updated_at`` first, after a key.

    The state indexes' order, with the running items merged in by their last update. It
    reads at most ``calls`` pages of ``list_work``. Every item above ``position`` (where the
    index reading stopped, a cursor) has been yielded when the walk ends; ``finished`` says
    whether it reached the end of the listing.
    """

    def __init__(
        self,
        backend: WorkBackend,
        *,
        state: WorkState | None,
        engine: str | None,
        after: Key | None,
        page: int,
        calls: int,
    ) -> None:
        self.backend, self.state, self.engine = backend, state, engine
        self.after, self.page, self.calls = after, page, calls
        self.position: str | None = _cursor(after) if after else None
        self.finished = False

    async def items(self) -> AsyncGenerator[WorkMeta]:
        """Yield the items in order (see the class docstring)."""
        running: list[WorkMeta] | None = None
        if self.state in (None, WorkState.RUNNING):
            running = await _running(self.backend, self.engine)
        merged = running is not None
        after = self.after
        pending = [m for m in running or [] if after is None or _key(m) < after]
        if self.state == WorkState.RUNNING and merged:
            for meta in pending:
                yield meta
            self.finished = True
            return
        seen: set[str] = set()
        i = 0
        for _ in range(self.calls):
            got = await self.backend.list_work(
                state=self.state, engine=self.engine, limit=self.page, cursor=self.position
            )
            for meta in got.items:
                if merged and meta.state == WorkState.RUNNING:
                    continue  # comes from `pending`, in the order of its last update
                key = _key(meta)
                while i < len(pending) and _key(pending[i]) > key:
                    seen.add(pending[i].work_id)
                    yield pending[i]
                    i += 1
                if meta.work_id not in seen:
                    yield meta
            self.position = got.next_cursor
            reached = _parse(got.next_cursor)
            if reached is None:
                break
            while i < len(pending) and _key(pending[i]) > reached:
                seen.add(pending[i].work_id)
                yield pending[i]
                i += 1
        else:
            return  # out of calls: the caller continues from `position`
        for meta in pending[i:]:
            yield meta
        self.finished = True


async def find_work(
    backend: WorkBackend,
    *,
    state: WorkState | None = None,
    engine: str | None = None,
    query: str = "",
    limit: int = 50,
    cursor: str | None = None,
) -> Listing:
    """List work, most recently updated first, filtered by state, engine and text in the id.

    Without ``query`` this is one page, from one ``list_work`` read (with an engine filter
    that reads the index in stretches of up to 5,000, and a page may come back short or
    empty with a ``next_cursor`` to go on). With ``query``, a query that is the id of an item
    (matching the filters) returns that item alone, at once. Otherwise at most
    :data:`SCAN_BUDGET` items, newest update first, are examined for ids containing
    ``query`` (case-insensitive); ``next_cursor`` continues the scan further back.

    Raises:
        BadInput: a malformed cursor, or a query longer than a work id can be.
    """
    after = _parse(cursor)
    query = query.strip()
    if len(query) > 200:
        raise BadInput("search text is longer than a work id can be (200 characters)")
    if query and after is None:
        try:
            validate_name("work id", query)
        except ValueError:
            pass
        else:
            exact = (await backend.metas([query]))[0]
            if exact is not None and _matches(exact, state, engine):
                return Listing(items=[exact], query=query, scanned=0, exact=True)
    needle = query.lower()
    budget = SCAN_BUDGET if query else limit
    found: list[WorkMeta] = []
    scanned = 0
    last: Key | None = None
    stopped = False
    walk = _Walk(
        backend,
        state=state,
        engine=engine,
        after=after,
        page=SCAN_PAGE if query else limit + 1,
        calls=SCAN_BUDGET // SCAN_PAGE if query else 1,
    )
    items = walk.items()
    async for meta in items:
        if scanned >= budget or len(found) >= limit:
            stopped = True
            break
        scanned += 1
        last = _key(meta)
        if not query or (needle in meta.work_id.lower() and meta.work_id != query):
            found.append(meta)
    await items.aclose()
    if stopped and last is not None:
        next_cursor = _cursor(last)
    else:
        next_cursor = None if walk.finished else walk.position
    return Listing(
        items=found,
        next_cursor=next_cursor,
        query=query,
        scanned=scanned if query else None,
    )


def _matches(meta: WorkMeta, state: WorkState | None, engine: str | None) -> bool:
    return (state is None or meta.state == state) and (engine is None or meta.engine == engine)


async def select(
    backend: WorkBackend, *, state: WorkState, engine: str | None, cap: int
) -> tuple[list[str], bool]:
    """Ids of up to ``cap`` items in ``state`` (of ``engine``), paging through the index.

    Returns the ids and whether more items remain beyond the cap.
    """
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) <= cap:
        page = await backend.list_work(
            state=state, engine=engine, limit=min(1000, cap + 1 - len(ids)), cursor=cursor
        )
        ids += [m.work_id for m in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return ids[:cap], len(ids) > cap
