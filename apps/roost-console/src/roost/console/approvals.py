"""Approvals: the page of everything waiting for a person, and the Approve / Reject forms.

The forms work like the item's other buttons: without ``confirmed=1`` they answer with a
confirmation page (the page's script asks in a dialog first and sets it), and every ``POST``
has passed the guard's Origin and CSRF checks before it gets here. A decision is the
``approval`` signal (see docs/signals.md); the item's next step reads it and the note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.console import approval_ops, queries
from roost.console.params import body_fields
from roost.console.present import work_url
from roost.console.state import console_of
from roost.runtime.errors import NotFound

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["DECISIONS", "routes"]

DECISIONS = {
    "approve": ("approved", "Approve"),
    "reject": ("rejected", "Reject"),
}
"""Action -> (what the notice says was done, the button's label)."""


async def approvals_page(request: Request) -> Response:
    """``GET /approvals``: everything waiting for a person, oldest first."""
    console = console_of(request)
    found, more = await approval_ops.waiting_for_people(await console.backend())
    return console.render(
        request, "approvals.html", {"page": "approvals", "waiting": found, "more": more}
    )


async def decide(request: Request) -> Response:
    """``POST /approvals/{approve|reject}/{work_id}`` (field ``note``): confirm, then send."""
    console = console_of(request)
    action: str = request.path_params["action"]
    if action not in DECISIONS:
        raise NotFound(f"unknown action {action!r} (approve or reject)")
    work_id = queries.work_id(request.path_params["work_id"])
    fields = await body_fields(request)
    note = fields.get("note", "")
    backend = await console.backend()
    if fields.get("confirmed") != "1":
        meta = (await queries.status(backend, work_id)).meta
        return console.render(
            request,
            "approval_confirm.html",
            {"page": "approvals", "action": action, "meta": meta, "note": note},
        )
    await approval_ops.decide(backend, action, work_id, note)
    return RedirectResponse(work_url(work_id, done=DECISIONS[action][0]), 303)


async def signal(request: Request) -> Response:
    """``POST /signals/{work_id}`` (fields ``name``, ``payload``): confirm, then send."""
    console = console_of(request)
    work_id = queries.work_id(request.path_params["work_id"])
    fields = await body_fields(request)
    name, payload = fields.get("name", ""), fields.get("payload", "")
    backend = await console.backend()
    if fields.get("confirmed") != "1":
        meta = (await queries.status(backend, work_id)).meta
        return console.render(
            request,
            "signal_confirm.html",
            {"page": "work", "meta": meta, "name": name, "payload": payload},
        )
    await approval_ops.send_signal(backend, work_id, name, payload)
    return RedirectResponse(work_url(work_id, done="signalled"), 303)


def routes() -> list[BaseRoute]:
    """The Approvals page's routes, and the item page's signal form."""
    return [
        Route("/approvals", approvals_page),
        Route("/signals/{work_id:path}", signal, methods=["POST"]),
        Route("/approvals/{action}/{work_id:path}", decide, methods=["POST"]),
    ]
