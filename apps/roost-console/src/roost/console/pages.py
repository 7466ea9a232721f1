"""The HTML pages that show work, and the fragments their live regions reload.

A live region is an element with ``data-live="<fragment URL>"``: when the event stream says
something changed, the page's script fetches that URL and puts the HTML it returns in place.
Each fragment is the same template the page includes, rendered alone, so a row or a chart is
written once, in Jinja2 (autoescaped), and never rebuilt in JavaScript.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.routing import BaseRoute, Route

from roost.console import actions, forms, queries, timeline, viewer, worklist
from roost.console.params import int_param, name_param, state_param, types_param
from roost.console.present import chart
from roost.console.state import console_of
from roost.console.worklist import Listing
from roost.runtime.models import EventType, WorkState, validate_name

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["routes"]

STATE_ORDER = tuple(WorkState)
NOTICES = {
    "cancelled": "Cancelled. A running step is told to stop and its commit will be refused.",
    "retried": "Queued again with fresh attempts, from its latest snapshot.",
    "replayed": "Replaying: the chosen snapshot is now the latest version and the item is queued.",
    "replayed_new": "This is a new work item, replayed from a copy of another one.",
    "approved": "Approved: its next step sees the decision.",
    "signalled": "Signal sent: it is kept until a step that waits for it receives it.",
    "paused": "Paused: no new step runs until it is resumed (a running step may still commit).",
    "resumed": "Resumed where it was.",
    "rejected": "Rejected: its next step sees the decision.",
}
PANELS = (
    ("work", "Steps saved and items finished", (("committed", "saved"), ("done", "finished"))),
    (
        "trouble",
        "Failed attempts",
        (("retried", "retried"), ("dead", "dead"), ("failed", "failed")),
    ),
)
"""The overview's charts: id, title and (counter, label) series; the second one stacked."""
EVENT_PRESETS = (
    ("failures", ("retrying", "dead", "failed", "lease_expired")),
    ("lifecycle", ("enqueued", "done", "cancelled", "retried", "replayed")),
    ("progress", ("progress",)),
)


# -- the overview ---------------------------------------------------------------------------


def _throughput(minutes: list[queries.Minute]) -> dict[str, Any]:
    rows = [m.counts for m in minutes]
    panels: list[dict[str, Any]] = []
    for i, (panel_id, title, series) in enumerate(PANELS):
        keys = [k for k, _ in series]
        stacked = i > 0
        bars = chart(rows, keys, stacked=stacked, height=70)
        heights = [
            sum(r.get(k, 0) for k in keys) if stacked else max(r.get(k, 0) for k in keys)
            for r in rows
        ]
        peak = max(heights, default=0)
        panels.append(
            {
                "id": panel_id,
                "title": title,
                "series": series,
                "labels": dict(series),
                "bars": bars,
                "peak": peak,
            }
        )
    totals = {k: sum(r.get(k, 0) for r in rows) for k in queries.STAT_KINDS}
    return {"minutes": minutes, "panels": panels, "totals": totals}


async def _overview_context(request: Request) -> dict[str, Any]:
    """``GET /``: counts, throughput, live work, workers and the latest events."""
    ov = await queries.overview(await console_of(request).backend())
    return {
        "page": "overview",
        "ov": ov,
        "tp": _throughput(ov.throughput),
        "states": STATE_ORDER,
        "live_states": queries.LIVE_STATES,
        "live_limit": queries.LIVE_LIMIT,
        "live_items": [w for items in ov.live.values() for w in items],
    }


# -- the work list ------------------------------------------------------------------------------


async def _work_context(request: Request) -> dict[str, Any]:
    """``GET /work?state=&engine=&q=&cursor=``: the work list with filters and paging."""
    backend = await console_of(request).backend()
    state = state_param(request)
    engine = name_param(request, "engine", "engine")
    query = request.query_params.get("q", "").strip()
    limit = int_param(request, "limit", 50, 1, 500)
    cursor = request.query_params.get("cursor") or None
    listing: Listing = await worklist.find_work(
        backend, state=state, engine=engine, query=query, limit=limit, cursor=cursor
    )
    queues = sorted({m.queue for m in listing.items if m.queue})
    waiting = await queries.unserved(backend, queues, engine=engine)
    filters = {"state": state.value if state else "", "engine": engine or "", "q": query}
    keep = {k: v for k, v in filters.items() if v}
    if limit != 50:
        keep["limit"] = str(limit)
    here = {**keep, "cursor": cursor} if cursor else keep
    next_url = None
    if listing.next_cursor:
        next_url = "/work?" + urlencode({**keep, "cursor": listing.next_cursor})
    return {
        "page": "work",
        "listing": listing,
        "unserved": waiting,
        "filters": filters,
        "states": STATE_ORDER,
        "engines": queries.engines(backend),
        "first_url": "/work?" + urlencode(keep) if cursor else None,
        "next_url": next_url,
        "scan_budget": worklist.SCAN_BUDGET,
        "live_url": "/fragments/work?" + urlencode(here),
        "back_url": "/work?" + urlencode(here),
    }


# -- failed and dead ----------------------------------------------------------------------------


async def _failed_context(request: Request) -> dict[str, Any]:
    """``GET /failed?dead=&failed=``: dead and failed work, with their errors and retry."""
    backend = await console_of(request).backend()
    cursors = {k: request.query_params.get(k) or None for k in ("dead", "failed")}
    dead = await queries.state_page(backend, WorkState.DEAD, cursor=cursors["dead"])
    failed = await queries.state_page(backend, WorkState.FAILED, cursor=cursors["failed"])
    here = urlencode({k: v for k, v in cursors.items() if v})
    return {
        "page": "failed",
        "dead": dead,
        "failed": failed,
        "counts": await queries.counts(backend),
        "engines": sorted({*queries.engines(backend), *(m.engine for m in dead.items)}),
        "bulk_limit": actions.BULK_LIMIT,
        "live_url": "/fragments/failed?" + here,
        "back_url": "/failed" + (f"?{here}" if here else ""),
    }


# -- one item -----------------------------------------------------------------------------------


CHILDREN_SHOWN = 200
"""Children listed on an item's page (``roost list --parent`` lists them all)."""


async def work_detail(request: Request) -> Response:
    """``GET /work/{work_id}``: meta, snapshot, versions, artifacts, timeline, events, actions."""
    console = console_of(request)
    d = await queries.detail(await console.backend(), request.path_params["work_id"])
    meta = d.status.meta
    source = request.query_params.get("from", "")
    try:
        source = validate_name("work id", source) if source else ""
    except ValueError:
        source = ""
    resolved_event = timeline.resolved_by(meta.last_error, d.events)
    tl = timeline.build(d.events, meta, time.time()) if d.events_complete else None
    children = await (await console.backend()).children(meta.work_id) if meta.children_total else []
    return console.render(
        request,
        "work_detail.html",
        {
            "page": "work",
            "d": d,
            "meta": meta,
            "snapshot": d.status.snapshot,
            "item": d.status.item,
            "notice": NOTICES.get(request.query_params.get("done", ""), ""),
            "source": source,
            "older_versions": d.versions[1:],
            "children": children[:CHILDREN_SHOWN],
            "children_more": max(0, len(children) - CHILDREN_SHOWN),
            "history": console.settings.history,
            "event_limit": queries.ITEM_EVENTS,
            "tl": tl,
            "resolved_event": resolved_event,
            "waiting": sum(e.get(meta.engine, 0) for e in d.unserved.values()),
            "resolved": meta.last_error is not None
            and (resolved_event is not None or meta.state == WorkState.DONE),
        },
    )


async def timeline_fragment(request: Request) -> Response:
    """``GET /fragments/timeline/{work_id}``: an item's timeline (read without a time limit)."""
    console = console_of(request)
    d = await queries.detail(await console.backend(), request.path_params["work_id"], budget=None)
    tl = timeline.build(d.events, d.status.meta, time.time())
    return console.render(request, "_timeline.html", {"tl": tl})


# -- events -------------------------------------------------------------------------------------


async def events_page(request: Request) -> Response:
    """``GET /events?type=&work_id=&limit=100``: the latest events, filtered, newest first.

    Without ``type`` every type but progress is shown.
    """
    console = console_of(request)
    backend = await console.backend()
    limit = int_param(request, "limit", 100, 1, 1000)
    work_id = name_param(request, "work_id", "work id")
    chosen = types_param(request)
    all_types = [str(t) for t in EventType]
    all_types += [t for t in chosen if t not in all_types]
    default = not chosen
    found = await queries.recent_events(
        backend,
        types=chosen or None,
        exclude=queries.QUIET_TYPES if default else frozenset(),
        work_id=work_id,
        limit=limit,
    )
    return console.render(
        request,
        "events.html",
        {
            "page": "events",
            "page_events": found,
            "limit": limit,
            "work_id": work_id,
            "all_types": all_types,
            "chosen": [t for t in all_types if t not in queries.QUIET_TYPES] if default else chosen,
            "default_types": default,
            "presets": EVENT_PRESETS,
        },
    )


Context = Callable[["Request"], Awaitable[dict[str, Any]]]
"""What a page is rendered with, read for one request."""


def _rendering(template: str, context: Context) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint rendering ``template`` with ``context(request)``."""

    async def endpoint(request: Request) -> Response:
        return console_of(request).render(request, template, await context(request))

    endpoint.__doc__ = context.__doc__
    return endpoint


LIVE_PAGES = (
    ("/", "overview.html", "/fragments/overview", "_overview_live.html", _overview_context),
    ("/work", "work_list.html", "/fragments/work", "_work_page.html", _work_context),
    ("/failed", "failed.html", "/fragments/failed", "_failed_lists.html", _failed_context),
)
"""Pages with a live region: path, template, fragment path, fragment template, context."""


def routes() -> list[BaseRoute]:
    """The pages' routes (with the forms' and the artifact viewer's)."""
    live: list[BaseRoute] = []
    for path, template, fragment, part, context in LIVE_PAGES:
        live += [
            Route(path, _rendering(template, context)),
            Route(fragment, _rendering(part, context)),
        ]
    return [
        *live,
        Route("/work/{work_id:path}", work_detail),
        Route("/events", events_page),
        Route("/fragments/timeline/{work_id:path}", timeline_fragment),
        *viewer.routes(),
        *forms.routes(),
    ]
