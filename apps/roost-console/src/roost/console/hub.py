"""One reader of the event stream for every live page: :class:`EventHub`.

However many browsers follow ``/api/stream``, the console holds **one** blocking read of the
namespace's event stream. The hub starts it with the first subscriber and stops it when the
last one leaves; each event is encoded once and handed to every subscriber whose filter it
passes. A subscriber that falls :data:`BUFFER` events behind is ended (its browser reconnects
and catches up from ``Last-Event-ID``), so one slow client never holds the others or grows
memory. At most :data:`MAX_SUBSCRIBERS` streams are served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from roost.console import queries
from roost.console.present import event_json, redis_problem
from roost.runtime.errors import RoostError

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend
    from roost.runtime.models import RuntimeEvent

__all__ = [
    "BUFFER",
    "MAX_SUBSCRIBERS",
    "EventHub",
    "HubBusy",
    "Published",
    "Subscription",
    "position",
]

log = logging.getLogger("roost.console")

MAX_SUBSCRIBERS = 256
"""Live streams served at once; more get 503."""
BUFFER = 1000
"""Events a subscriber may fall behind before its stream is ended."""


class HubBusy(RoostError):
    """The hub serves :data:`MAX_SUBSCRIBERS` streams already."""


class Published(NamedTuple):
    """An event as the hub hands it out: the event and its JSON (with the summary line)."""

    event: RuntimeEvent
    data: str


def publish(ev: RuntimeEvent) -> Published:
    """Encode an event once, for every stream that sends it."""
    return Published(ev, json.dumps(event_json(ev), separators=(",", ":")))


def position(event_id: str) -> tuple[int, int]:
    """A stream position (``"1700000000000-3"``) as a comparable pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """One stream's view of the hub: the events for it, in order, until it ends.

    ``ended`` says why it ended (``None`` while it runs): it fell behind, or the reader lost
    Redis (the message then says so).
    """

    def __init__(self, work_id: str | None) -> None:
        self.work_id = work_id
        self.ended: str | None = None
        self.lagging = False
        self._items: deque[Published] = deque()
        self._wake = asyncio.Event()

    def offer(self, item: Published) -> None:
        """Queue an event if it passes this subscription's filter (called by the hub)."""
        if self.ended is not None:
            return
        if self.work_id is not None and item.event.work_id != self.work_id:
            return
        if len(self._items) >= BUFFER:
            self.lagging = True
            self.end("fell behind the event stream")
            return
        self._items.append(item)
        self._wake.set()

    def end(self, reason: str) -> None:
        """End the subscription (the stream sends what it has queued, then stops)."""
        if self.ended is None:
            self.ended = reason
        self._wake.set()

    async def next(self, wait: float) -> Published | None:
        """The next event; ``None`` after ``wait`` seconds without one.

        Raises:
            EOFError: the subscription ended and every queued event was taken.
        """
        while not self._items:
            if self.ended is not None:
                raise EOFError(self.ended)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                return None
        return self._items.popleft()


class EventHub:
    """The shared reader (see the module docstring)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    @property
    def subscribers(self) -> int:
        """How many streams the hub serves now."""
        return len(self._subs)

    async def subscribe(self, backend: WorkBackend, work_id: str | None = None) -> Subscription:
        """Add a subscriber; it receives every event stored from the moment this returns.

        Raises:
            HubBusy: :data:`MAX_SUBSCRIBERS` streams are served already.
            RoostError, or one of the backend's ``fault_types``: the reader could not start
                (Redis is down).
        """
        if len(self._subs) >= MAX_SUBSCRIBERS:
            raise HubBusy(f"too many live streams open (at most {MAX_SUBSCRIBERS})")
        sub = Subscription(work_id)
        self._subs.add(sub)
        try:
            if self._task is None or self._task.done():
                start = await queries.last_event_id(backend)
                if self._task is None or self._task.done():
                    self._task = asyncio.create_task(self._read(backend, start))
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscriber; the reader stops with the last one."""
        self._subs.discard(sub)
        if not self._subs and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _read(self, backend: WorkBackend, start: str) -> None:
        try:
            async for ev in queries.follow(backend, start):
                item = publish(ev)
                for sub in tuple(self._subs):
                    sub.offer(item)
        except (*backend.fault_types, RoostError) as exc:
            reason = redis_problem(exc, backend)[1]
            for sub in tuple(self._subs):
                sub.end(reason)
        except Exception:
            log.exception("the console's event reader failed")
            for sub in tuple(self._subs):
                sub.end("the console's event reader failed; see its log")

    async def close(self) -> None:
        """Stop the reader and end every subscription."""
        for sub in tuple(self._subs):
            sub.end("the console is shutting down")
        self._subs.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
