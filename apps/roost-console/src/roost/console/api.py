"""The JSON API under ``/api/`` (what pages and scripts use), and ``/metrics``.

Reads are ``GET``; the operator actions are ``POST`` and need the CSRF token and a
same-origin ``Origin`` (see :mod:`roost.console.security`). Errors are JSON objects
``{"error": "<what went wrong, in words>", "kind": "<not_found|bad_input|conflict|...>"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from roost.console import actions, queries, worklist
from roost.console.params import (
    body_pairs,
    event_id,
    int_param,
    name_param,
    state_param,
    types_param,
)
from roost.console.present import event_json
from roost.console.state import console_of
from roost.redis.metrics import METRICS_CONTENT_TYPE, queue_metrics_text
from roost.runtime.errors import BadInput
from roost.runtime.models import WorkState

if TYPE_CHECKING:
    from pydantic import BaseModel
    from starlette.requests import Request

__all__ = ["routes"]


def _json(model: BaseModel | dict[str, Any], status_code: int = 200) -> JSONResponse:
    content = model if isinstance(model, dict) else model.model_dump(mode="json")
    return JSONResponse(content, status_code=status_code)


async def overview(request: Request) -> JSONResponse:
    """``GET /api/overview?minutes=15``: counts, throughput, live work, workers, events."""
    backend = await console_of(request).backend()
    minutes = int_param(request, "minutes", 15, 1, 120)
    ov = await queries.overview(backend, minutes=minutes)
    data = ov.model_dump(mode="json")
    data["events"] = [event_json(e) for e in ov.events]
    return _json(data)


async def counts(request: Request) -> JSONResponse:
    """``GET /api/counts``: items per state."""
    return _json(await queries.counts(await console_of(request).backend()))


async def stats(request: Request) -> JSONResponse:
    """``GET /api/stats?minutes=15``: per-minute counters, oldest first, zeros filled in."""
    backend = await console_of(request).backend()
    minutes = int_param(request, "minutes", 15, 1, 120)
    rows = await queries.throughput(backend, minutes)
    return _json({"minutes": [m.model_dump(mode="json") for m in rows]})


async def workers(request: Request) -> JSONResponse:
    """``GET /api/workers``: live workers, and the engines with queued work none of them runs."""
    return _json(await queries.fleet(await console_of(request).backend()))


async def work_list(request: Request) -> JSONResponse:
    """``GET /api/work?state=&engine=&q=&limit=50&cursor=``: one page of the work list."""
    backend = await console_of(request).backend()
    listing = await worklist.find_work(
        backend,
        state=state_param(request),
        engine=name_param(request, "engine", "engine"),
        query=request.query_params.get("q", ""),
        limit=int_param(request, "limit", 50, 1, 500),
        cursor=request.query_params.get("cursor") or None,
    )
    return _json(listing)


async def work_status(request: Request) -> JSONResponse:
    """``GET /api/work/{work_id}``: meta, latest snapshot, the work item and ``unserved``.

    ``unserved`` names the item's queue and engine when the item is queued and no live
    worker runs that engine (``{}`` otherwise). An item that spawned children adds
    ``children``: each child's meta, in spawn order.
    """
    backend = await console_of(request).backend()
    status = await queries.status(backend, request.path_params["work_id"])
    data = status.model_dump(mode="json")
    data["unserved"] = await queries.unserved_for(backend, [status.meta])
    if status.meta.children_total:
        children = await queries.children(backend, status.meta.work_id)
        data["children"] = [c.model_dump(mode="json") for c in children]
    return _json(data)


async def versions(request: Request) -> JSONResponse:
    """``GET /api/versions/{work_id}``: the latest snapshot and the kept earlier ones."""
    backend = await console_of(request).backend()
    snaps = await queries.versions(backend, request.path_params["work_id"])
    return _json({"versions": [s.model_dump(mode="json") for s in snaps]})


async def events(request: Request) -> JSONResponse:
    """``GET /api/events?work_id=&type=&after=&limit=100``: events, oldest first.

    With ``type`` (repeatable) the latest matching events are searched for (a bounded scan,
    see :func:`queries.recent_events`); ``after`` then is not allowed.
    """
    backend = await console_of(request).backend()
    work_id = name_param(request, "work_id", "work id")
    after = event_id(request.query_params.get("after"))
    limit = int_param(request, "limit", 100, 1, 1000)
    types = types_param(request)
    if types:
        if after is not None:
            raise BadInput("type and after cannot be used together")
        page = await queries.recent_events(backend, types=types, work_id=work_id, limit=limit)
        found = list(reversed(page.events))
    else:
        found = await queries.events(backend, work_id=work_id, after=after, limit=limit)
    return _json({"events": [event_json(e) for e in found]})


async def _state_page(request: Request, state: WorkState) -> JSONResponse:
    backend = await console_of(request).backend()
    page = await queries.state_page(
        backend,
        state,
        limit=int_param(request, "limit", 50, 1, 500),
        cursor=request.query_params.get("cursor") or None,
    )
    return _json(page)


async def dead(request: Request) -> JSONResponse:
    """``GET /api/dead?limit=&cursor=``: dead items, most recent first."""
    return await _state_page(request, WorkState.DEAD)


async def failed(request: Request) -> JSONResponse:
    """``GET /api/failed?limit=&cursor=``: failed items, most recent first."""
    return await _state_page(request, WorkState.FAILED)


async def artifact(request: Request) -> JSONResponse:
    """``GET /api/artifacts/{artifact_id}?kind=``: an artifact's description."""
    backend = await console_of(request).backend()
    kind = request.query_params.get("kind") or None
    return _json(await queries.artifact(backend, request.path_params["artifact_id"], kind))


async def csrf(request: Request) -> JSONResponse:
    """``GET /api/csrf``: the CSRF token that goes with this client's ``roost_csrf`` cookie."""
    return _json({"csrf_token": request.state.csrf_token})


async def health(request: Request) -> JSONResponse:
    """``GET /api/health``: whether Redis answers, and which namespace the console shows."""
    console = console_of(request)
    await queries.ping(await console.backend())
    s = console.settings
    return _json(
        {
            "ok": True,
            "redis": console.redis_label,
            "prefix": s.redis_prefix,
            "namespace": s.namespace,
            "queue": s.queue,
        }
    )


async def act(request: Request) -> JSONResponse:
    """``POST /api/{cancel|retry|replay|pause|resume}/{work_id}``.

    Replay takes ``version`` and ``as_new``.
    """
    backend = await console_of(request).backend()
    action = request.url.path.split("/")[2]
    fields = dict(await body_pairs(request))
    result = await actions.perform(backend, action, request.path_params["work_id"], fields)
    return _json(result)


async def bulk(request: Request) -> JSONResponse:
    """``POST /api/bulk/{cancel|retry}``: act on many items, one result per item.

    The body names the items, ``{"work_ids": [...]}``, or a state (and engine) to act on
    every item in it, ``{"state": "dead", "engine": "watchlist"}`` (up to
    :data:`~roost.console.actions.BULK_LIMIT`; ``more`` says when more remain). Answers
    ``{"action", "results": [{"work_id", "ok", "state", "error", "kind"}], "more"}``.
    """
    backend = await console_of(request).backend()
    action: str = request.path_params["action"]
    report = await actions.bulk_from_fields(backend, action, await body_pairs(request))
    return _json(report)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: the queue's gauges for Prometheus (one pipelined Redis read).

    Items per state, deliveries and live workers per engine, oldest queued age, live
    workers and slots in use; ``roost_redis_up 0`` while Redis cannot be read.
    """
    body = await queue_metrics_text(console_of(request).queue_reader())
    return Response(body, media_type=METRICS_CONTENT_TYPE)


def routes() -> list[BaseRoute]:
    """The API's routes (the live stream is in :mod:`roost.console.stream`)."""
    return [
        Route("/api/health", health),
        Route("/metrics", metrics),
        Route("/api/overview", overview),
        Route("/api/counts", counts),
        Route("/api/stats", stats),
        Route("/api/workers", workers),
        Route("/api/work", work_list),
        Route("/api/work/{work_id:path}", work_status),
        Route("/api/versions/{work_id:path}", versions),
        Route("/api/events", events),
        Route("/api/dead", dead),
        Route("/api/failed", failed),
        Route("/api/artifacts/{artifact_id}", artifact),
        Route("/api/csrf", csrf),
        Route("/api/cancel/{work_id:path}", act, methods=["POST"]),
        Route("/api/retry/{work_id:path}", act, methods=["POST"]),
        Route("/api/replay/{work_id:path}", act, methods=["POST"]),
        Route("/api/pause/{work_id:path}", act, methods=["POST"]),
        Route("/api/resume/{work_id:path}", act, methods=["POST"]),
        Route("/api/bulk/{action}", bulk, methods=["POST"]),
    ]
