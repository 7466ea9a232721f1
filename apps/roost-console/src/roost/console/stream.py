"""``GET /api/stream``: runtime events as server-sent events, for live pages and scripts.

Each event is sent as ``id: <stream position>``, ``event: runtime`` and ``data: <event JSON
with a summary line>``. A comment line is sent every :data:`HEARTBEAT_SECONDS` so a dead
connection is noticed; a stream ends after :data:`MAX_STREAM_SECONDS` (browsers reconnect
on their own and resume from ``Last-Event-ID``). When Redis goes away the stream sends an
``event: problem`` with the reason and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from roost.console.app import console_of
from roost.console.params import event_id, name_param
from roost.console.present import event_json
from roost.runtime.errors import RoostError

if TYPE_CHECKING:
    from starlette.requests import Request

    from roost.redis import RedisSwarm
    from roost.runtime.models import RuntimeEvent

__all__ = ["HEARTBEAT_SECONDS", "MAX_STREAMS", "MAX_STREAM_SECONDS", "routes"]

log = logging.getLogger("roost.console")

HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
MAX_STREAMS = 64
"""Live streams served at once; more get 503 (each holds a Redis connection)."""
_DONE = object()


async def _events(swarm: RedisSwarm, work_id: str | None, after: str | None) -> AsyncIterator[str]:
    queue: asyncio.Queue[RuntimeEvent | BaseException | object] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for ev in swarm.follow_events(work_id=work_id, after=after):
                await queue.put(ev)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError, RoostError) as exc:
            await queue.put(exc)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(_DONE)

    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_STREAM_SECONDS
    try:
        yield "retry: 2000\n: connected\n\n"
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                item = await asyncio.wait_for(queue.get(), timeout=min(HEARTBEAT_SECONDS, left))
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                problem = json.dumps({"error": f"lost the connection to Redis: {item}"})
                yield f"event: problem\ndata: {problem}\n\n"
                break
            ev: RuntimeEvent = item  # type: ignore[assignment]
            data = json.dumps(event_json(ev), separators=(",", ":"))
            yield f"id: {ev.id}\nevent: runtime\ndata: {data}\n\n"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


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
    if console.streams >= MAX_STREAMS:
        return JSONResponse(
            {"error": f"too many live streams open (at most {MAX_STREAMS})", "kind": "busy"},
            status_code=503,
        )
    swarm = await console.swarm()

    async def body() -> AsyncIterator[str]:
        console.streams += 1
        try:
            async for chunk in _events(swarm, work_id, after):
                yield chunk
        finally:
            console.streams -= 1

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def routes() -> list[BaseRoute]:
    """The live stream's route."""
    return [Route("/api/stream", stream)]
