"""Reading indexes page by page: items by state (newest update first), an item's events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from roost.redis.codec import event_from_entry
from roost.redis.schema import Meta
from roost.runtime.errors import BadInput, NotFound
from roost.runtime.models import RuntimeEvent, WorkMeta, WorkPage, WorkState

if TYPE_CHECKING:
    from roost.redis.store import RedisStore

__all__ = ["EVENT_SCAN_CHUNK", "item_events", "list_page", "stream_pos"]

SCAN_BUDGET = 5_000
"""With an engine filter, at most this many index entries are examined per page."""

Entry = tuple[int, str]


def _parse_cursor(cursor: str | None) -> Entry | None:
    if not cursor:
        return None
    score, sep, member = cursor.partition(":")
    if not sep or not score.isdigit() or not member:
        raise BadInput(f"invalid cursor {cursor!r}")
    return int(score), member


async def _candidates(
    store: RedisStore, states: Sequence[WorkState], after: Entry | None, count: int
) -> list[Entry]:
    """The next ``count`` entries across ``states`` in (score desc, member desc) order."""
    client = store.client
    # One order across partitions: (update time, work id), so the cursor holds for them all.
    async with client.pipeline(transaction=False) as pipe:
        for key in (keys.state(s) for keys in store.partition_keys() for s in states):
            if after is None:
                pipe.zrange(
                    key,
                    "+inf",
                    "-inf",
                    byscore=True,
                    desc=True,
                    offset=0,
                    num=count,
                    withscores=True,
                )
            else:
                # Same score as the cursor (ordered by member), then strictly older entries.
                pipe.zrange(key, after[0], after[0], byscore=True, desc=True, withscores=True)
                pipe.zrange(
                    key,
                    f"({after[0]}",
                    "-inf",
                    byscore=True,
                    desc=True,
                    offset=0,
                    num=count,
                    withscores=True,
                )
        replies: list[list[tuple[str, float]]] = await pipe.execute()
    entries: list[Entry] = []
    for reply in replies:
        for member, score in reply:
            entry = (int(score), member)
            if after is None or entry < after:
                entries.append(entry)
    entries.sort(reverse=True)
    return entries[:count]


async def list_page(
    store: RedisStore,
    states: Sequence[WorkState],
    *,
    engine: str | None,
    limit: int,
    cursor: str | None,
) -> WorkPage:
    """One page of items in ``states`` (optionally of one engine), newest update first."""
    after = _parse_cursor(cursor)
    found: list[WorkMeta] = []
    scanned = 0
    exhausted = False
    while len(found) < limit and scanned < SCAN_BUDGET:
        need = limit - len(found)
        fetch = need if engine is None else max(need * 4, 100)
        entries = await _candidates(store, states, after, fetch)
        metas = await store.metas([member for _, member in entries])
        consumed_all = True
        for i, (entry, meta) in enumerate(zip(entries, metas, strict=True)):
            after = entry
            scanned += 1
            if meta is not None and (engine is None or meta.engine == engine):
                found.append(meta)
                if len(found) == limit:
                    consumed_all = i == len(entries) - 1
                    break
        if len(entries) < fetch and consumed_all:
            exhausted = True
            break
    next_cursor = None if exhausted or after is None else f"{after[0]}:{after[1]}"
    return WorkPage(items=found, next_cursor=next_cursor)


EVENT_SCAN_CHUNK = 1000


_EVENT_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def stream_pos(entry_id: str) -> tuple[int, int]:
    """An event id (``<ms>-<seq>``, or ``<ms>``) as a pair of numbers.

    Raises:
        BadInput: ``entry_id`` is not a stream position.
    """
    match = _EVENT_ID.fullmatch(entry_id)
    if match is None or max(int(match[1]), int(match[2] or 0)) >= 2**64:
        raise BadInput(f"invalid event id {entry_id!r}: use an event's id, like 1764600000000-0")
    return int(match[1]), int(match[2] or 0)


async def item_events(
    store: RedisStore, work_id: str, after: str | None, limit: int
) -> list[RuntimeEvent]:
    """One item's events, oldest first, read from the namespace's stream.

    The scan is bounded by the item's life: its events lie between its creation and (for
    a finished item) the event that finished it, whose stream id the item keeps, so only
    that window of the stream is read. With ``after``: the first ``limit`` events after that
    position, scanning forward; without: the last ``limit`` events, scanning backward from
    the end of the window. An item finished before the id was kept is read to the stream's
    end.
    """
    keys = store.item_keys(work_id)
    first, last = await store.client.hmget(keys.meta(work_id), [Meta.CREATED, Meta.FINAL_EVENT])
    if first is None:
        raise NotFound(f"unknown work id {work_id!r}")
    low = f"{int(first)}-0"
    high = last or "+"
    found: list[RuntimeEvent] = []
    if after is not None:
        start = f"({after}" if stream_pos(after) >= stream_pos(low) else low
        while len(found) < limit:
            rows = await store.client.xrange(
                keys.events, min=start, max=high, count=EVENT_SCAN_CHUNK
            )
            found += [event_from_entry(i, f) for i, f in rows if f.get("w") == work_id]
            if len(rows) < EVENT_SCAN_CHUNK:
                break
            start = f"({rows[-1][0]}"
        return found[:limit]
    end = high
    while len(found) < limit:
        rows = await store.client.xrevrange(keys.events, max=end, min=low, count=EVENT_SCAN_CHUNK)
        found += [event_from_entry(i, f) for i, f in rows if f.get("w") == work_id]
        if len(rows) < EVENT_SCAN_CHUNK:
            break
        end = f"({rows[-1][0]}"
    found = found[:limit]
    found.reverse()
    return found
