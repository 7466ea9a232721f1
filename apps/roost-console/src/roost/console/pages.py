"""The HTML pages and the form actions behind their buttons."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.console import actions, queries, worklist
from roost.console.params import body_fields, int_param, name_param, state_param
from roost.console.present import TEXT_KINDS, work_url
from roost.console.security import RAW_CSP, local_path
from roost.console.state import console_of
from roost.runtime.errors import NotFound
from roost.runtime.models import WorkState, validate_name

STATE_ORDER = tuple(WorkState)

if TYPE_CHECKING:
    from starlette.requests import Request

    from roost.redis import RedisSwarm
    from roost.runtime.models import Artifact

__all__ = ["routes"]

INLINE_VIEW_BYTES = 1_000_000
"""Artifacts up to this size are shown in the viewer; larger ones are download-only."""

NOTICES = {
    "cancelled": "Cancelled. A running step is told to stop and its commit will be refused.",
    "retried": "Queued again with fresh attempts, from its latest snapshot.",
    "replayed": "Replaying: the chosen snapshot is now the latest version and the item is queued.",
    "replayed_new": "This is a new work item, replayed from a copy of another one.",
}


async def overview(request: Request) -> Response:
    """``GET /``: counts, throughput, live work, workers and the latest events."""
    console = console_of(request)
    ov = await queries.overview(await console.swarm())
    return console.render(
        request,
        "overview.html",
        {
            "page": "overview",
            "ov": ov,
            "states": STATE_ORDER,
            "live_states": queries.LIVE_STATES,
            "live_limit": queries.LIVE_LIMIT,
        },
    )


async def work_list(request: Request) -> Response:
    """``GET /work?state=&engine=&q=&cursor=``: the work list with filters and paging."""
    console = console_of(request)
    swarm = await console.swarm()
    state = state_param(request)
    engine = name_param(request, "engine", "engine")
    query = request.query_params.get("q", "").strip()
    limit = int_param(request, "limit", 50, 1, 500)
    cursor = request.query_params.get("cursor") or None
    listing = await worklist.find_work(
        swarm, state=state, engine=engine, query=query, limit=limit, cursor=cursor
    )
    known = queries.engines(swarm)
    filters = {"state": state.value if state else "", "engine": engine or "", "q": query}
    keep = {k: v for k, v in filters.items() if v}
    if limit != 50:
        keep["limit"] = str(limit)
    next_url = None
    if listing.next_cursor:
        next_url = "/work?" + urlencode({**keep, "cursor": listing.next_cursor})
    return console.render(
        request,
        "work_list.html",
        {
            "page": "work",
            "listing": listing,
            "filters": filters,
            "states": STATE_ORDER,
            "engines": known,
            "first_url": "/work?" + urlencode(keep) if cursor else None,
            "next_url": next_url,
            "scan_budget": worklist.SCAN_BUDGET,
        },
    )


async def work_detail(request: Request) -> Response:
    """``GET /work/{work_id}``: meta, snapshot, versions, artifacts, events and actions."""
    console = console_of(request)
    d = await queries.detail(await console.swarm(), request.path_params["work_id"])
    notice_key = request.query_params.get("done", "")
    source = request.query_params.get("from", "")
    try:
        source = validate_name("work id", source) if source else ""
    except ValueError:
        source = ""
    snapshot = d.status.snapshot
    return console.render(
        request,
        "work_detail.html",
        {
            "page": "work",
            "d": d,
            "meta": d.status.meta,
            "snapshot": snapshot,
            "item": d.status.item,
            "notice": NOTICES.get(notice_key, ""),
            "source": source,
            "older_versions": [v for v in d.versions[1:]],
            "history": console.settings.history,
            "event_limit": queries.ITEM_EVENTS,
        },
    )


async def events_page(request: Request) -> Response:
    """``GET /events?limit=100``: the latest events across the namespace, newest first."""
    console = console_of(request)
    swarm = await console.swarm()
    limit = int_param(request, "limit", 100, 1, 1000)
    found = await queries.events(swarm, limit=limit)
    return console.render(
        request,
        "events.html",
        {"page": "events", "events": list(reversed(found)), "limit": limit},
    )


async def failed_page(request: Request) -> Response:
    """``GET /failed``: dead and failed work, each with its last error and a retry button."""
    console = console_of(request)
    swarm = await console.swarm()
    dead = await queries.state_page(
        swarm, WorkState.DEAD, cursor=request.query_params.get("dead") or None
    )
    failed = await queries.state_page(
        swarm, WorkState.FAILED, cursor=request.query_params.get("failed") or None
    )
    return console.render(
        request,
        "failed.html",
        {"page": "failed", "dead": dead, "failed": failed},
    )


async def _artifact(request: Request) -> tuple[RedisSwarm, Artifact]:
    swarm = await console_of(request).swarm()
    kind = request.query_params.get("kind") or None
    return swarm, await queries.artifact(swarm, request.path_params["artifact_id"], kind)


async def artifact_view(request: Request) -> Response:
    """``GET /artifacts/{id}?kind=``: an artifact's metadata and, for JSON/text, its content."""
    console = console_of(request)
    swarm, art = await _artifact(request)
    text: str | None = None
    is_json = False
    if art.kind in TEXT_KINDS and art.size <= INLINE_VIEW_BYTES:
        raw = (await queries.artifact_content(swarm, art)).decode("utf-8", "replace")
        text = raw
        if art.kind == "json":
            try:
                text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
                is_json = True
            except ValueError:
                text = raw
    work = request.query_params.get("work", "")
    try:
        work = validate_name("work id", work) if work else ""
    except ValueError:
        work = ""
    return console.render(
        request,
        "artifact.html",
        {
            "page": "work",
            "art": art,
            "text": text,
            "is_json": is_json,
            "inline_limit": INLINE_VIEW_BYTES,
            "work": work,
        },
    )


async def artifact_raw(request: Request) -> Response:
    """``GET /artifacts/{id}/raw?kind=&download=1``: the content.

    JSON and text kinds are served inline (unless ``download=1``); every other kind is an
    attachment of type ``application/octet-stream``. Always with ``nosniff`` and a sandbox
    Content-Security-Policy.
    """
    swarm, art = await _artifact(request)
    content = await queries.artifact_content(swarm, art)
    download = request.query_params.get("download") == "1"
    inline = art.kind in TEXT_KINDS and not download
    media = TEXT_KINDS[art.kind] if inline else "application/octet-stream"
    name = f"{art.artifact_id[:16]}.{art.kind}"
    disposition = f'{"inline" if inline else "attachment"}; filename="{name}"'
    return Response(
        content,
        media_type=media,
        headers={
            "content-disposition": disposition,
            "content-security-policy": RAW_CSP,
            "x-content-type-options": "nosniff",
        },
    )


async def action(request: Request) -> Response:
    """``POST /actions/{cancel|retry|replay}/{work_id}``: the buttons' form target.

    Without ``confirmed=1`` it answers with a confirmation page (the page's script asks in
    a dialog first and sets it); with it, it acts and redirects to the item's page.
    """
    console = console_of(request)
    name: str = request.path_params["action"]
    if name not in actions.ACTIONS:
        raise NotFound(f"unknown action {name!r} (cancel, retry or replay)")
    work_id = queries.work_id(request.path_params["work_id"])
    fields = await body_fields(request)
    if fields.get("confirmed") != "1":
        status = (await queries.status(await console.swarm(), work_id)).meta
        return console.render(
            request,
            "confirm.html",
            {
                "page": "work",
                "action": name,
                "meta": status,
                "fields": {k: v for k, v in fields.items() if k in ("version", "as_new")},
            },
        )
    result = await actions.perform(await console.swarm(), name, work_id, fields)
    done = {"cancel": "cancelled", "retry": "retried", "replay": "replayed"}[name]
    if result["work_id"] != work_id:
        return RedirectResponse(
            work_url(result["work_id"], done="replayed_new", **{"from": work_id}), 303
        )
    return RedirectResponse(work_url(work_id, done=done), 303)


async def login(request: Request) -> Response:
    """``GET|POST /login``: trade the access token for a session cookie."""
    console = console_of(request)
    guard = console.guard
    nxt = local_path(request.query_params.get("next", "/"))
    if guard.token is None:
        return RedirectResponse(nxt, 303)
    error = ""
    if request.method == "POST":
        fields = await body_fields(request)
        if guard.token_matches(fields.get("token", "")):
            response = RedirectResponse(nxt, 303)
            response.set_cookie(
                guard.auth_cookie, guard.session_value(), httponly=True, samesite="strict"
            )
            return response
        error = "That is not this console's token."
    return console.render(
        request,
        "login.html",
        {"page": "login", "next": nxt, "error": error},
        status_code=401 if error else 200,
    )


async def logout(request: Request) -> Response:
    """``POST /logout``: forget the session cookie."""
    guard = console_of(request).guard
    response = RedirectResponse("/login", 303)
    response.delete_cookie(guard.auth_cookie, httponly=True, samesite="strict")
    return response


def routes() -> list[BaseRoute]:
    """The pages' routes."""
    return [
        Route("/", overview),
        Route("/work", work_list),
        Route("/work/{work_id:path}", work_detail),
        Route("/events", events_page),
        Route("/failed", failed_page),
        Route("/artifacts/{artifact_id}/raw", artifact_raw),
        Route("/artifacts/{artifact_id}", artifact_view),
        Route("/actions/{action}/{work_id:path}", action, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
