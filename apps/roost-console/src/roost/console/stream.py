"""``GET /api/stream``: runtime events as server-sent events, for live pages and scripts.

Each event is sent as ``id: <stream position>``, ``event: runtime`` and ``data: <event JSON
with a summary line>``. A comment line is sent every :data:`HEARTBEAT_SECONDS` so a dead
connection is noticed; a stream ends after :data:`MAX_STREAM_SECONDS` (browsers reconnect
on their own and resume from ``Last-Event-ID``). When Redis goes away the stream sends an
``event: problem`` with the reason and ends.

Every stream is fed by the console's one reader (:class:`~roost.console.hub.EventHub`). A
stream that resumes (``after`` or ``Last-Event-ID``) first reads what it missed, page by
page, then joins the live feed without a gap or a repeat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from roost.console import queries
from roost.console.hub import HubBusy, Subscription, position, publish
from roost.console.params import event_id, name_param
from roost.console.present import redis_problem
from roost.console.state import console_of
from roost.runtime.errors import NotFound, RoostError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from roost.runtime.backends import WorkBackend

__all__ = ["HEARTBEAT_SECONDS", "MAX_STREAM_SECONDS", "routes"]

HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
BACKLOG_PAGE = 500


def _problem(message: str) -> str:
    return f"event: problem\ndata: {json.dumps({'error': message})}\n\n"


async def _backlog(
    backend: WorkBackend, work_id: str | None, after: str
) -> AsyncIterator[tuple[str, str]]:
    """``(id, data)`` of the events stored after ``after`` (of ``work_id``), oldest first."""
    while True:
        try:
            page = await queries.events(backend, work_id=work_id, after=after, limit=BACKLOG_PAGE)
        except NotFound:
            return  # no such item (yet): nothing to catch up on
        for ev in page:
            yield ev.id, publish(ev).data
        if len(page) < BACKLOG_PAGE:
            return
        after = page[-1].id


async def _events(
    backend: WorkBackend, sub: Subscription, work_id: str | None, after: str | None
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_STREAM_SECONDS
    yield "retry: 2000\n: connected\n\n"
    sent = position(after) if after else (0, 0)
    if after is not None:
        try:
            async for eid, data in _backlog(backend, work_id, after):
                sent = position(eid)
                yield f"id: {eid}\nevent: runtime\ndata: {data}\n\n"
        except (*backend.fault_types, RoostError) as exc:
            yield _problem(redis_problem(exc, backend)[1])
            return
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            item = await sub.next(min(HEARTBEAT_SECONDS, left))
        except EOFError as end:
            if not sub.lagging:
                yield _problem(str(end))
            return
        if item is None:
            yield ": ping\n\n"
            continue
        if position(item.event.id) <= sent:
            continue  # already sent from the backlog
        yield f"id: {item.event.id}\nevent: runtime\ndata: {item.data}\n\n"


async def stream(request: Request) -> Response:
    """``GET /api/stream?work_id=&after=``: follow runtime events (server-sent events).

    ``after`` (or the ``Last-Event-ID`` header a reconnecting browser sends) resumes after
    that position; without either the stream starts with the next event.
    """
    console = console_of(request)
    work_id = name_param(request, "work_id", "work id")
    after = event_id(request.headers.get("last-event-id"), "Last-Event-ID") or event_id(
        request.query_params.get("after")
    )
    backend = await console.backend()
    try:
        sub = await console.hub.subscribe(backend, work_id)
    except HubBusy as exc:
        return JSONResponse({"error": str(exc), "kind": "busy"}, status_code=503)

    return _Stream(
        _events(backend, sub, work_id, after),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        done=lambda: console.hub.unsubscribe(sub),
    )


class _Stream(StreamingResponse):
    """A streaming response that always calls ``done`` when it ends, however it ends.

    (A client that leaves before the body starts never runs the body's ``finally``.)
    """

    def __init__(self, content: AsyncIterator[str], *, done: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._done()


def routes() -> list[BaseRoute]:
    """The live stream's route."""
    return [Route("/api/stream", stream)]
