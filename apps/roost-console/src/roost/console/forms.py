"""What the buttons post to: the operator actions (one item or many) and the login form.

A form without ``confirmed=1`` gets a confirmation page (the page's script asks in a dialog
first and sets it), so nothing changes on a single click even without JavaScript. Every
``POST`` has passed the guard's Origin and CSRF checks before it gets here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.console import actions, queries, worklist
from roost.console.params import body_fields, body_pairs
from roost.console.present import work_url
from roost.console.security import local_path
from roost.console.state import console_of
from roost.runtime.errors import BadInput, NotFound

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["routes"]


async def action(request: Request) -> Response:
    """``POST /actions/{cancel|retry|replay|pause|resume}/{work_id}``: one item's buttons.

    Without ``confirmed=1`` it answers with a confirmation page; with it, it acts and
    redirects to the item's page.
    """
    console = console_of(request)
    name: str = request.path_params["action"]
    if name not in actions.ACTIONS:
        raise NotFound(f"unknown action {name!r} (cancel, retry, replay, pause or resume)")
    work_id = queries.work_id(request.path_params["work_id"])
    fields = await body_fields(request)
    backend = await console.backend()
    if fields.get("confirmed") != "1":
        status = (await queries.status(backend, work_id)).meta
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
    result = await actions.perform(backend, name, work_id, fields)
    done = {
        "cancel": "cancelled",
        "retry": "retried",
        "replay": "replayed",
        "pause": "paused",
        "resume": "resumed",
    }[name]
    if result["work_id"] != work_id:
        return RedirectResponse(
            work_url(result["work_id"], done="replayed_new", **{"from": work_id}), 303
        )
    return RedirectResponse(work_url(work_id, done=done), 303)


async def bulk(request: Request) -> Response:
    """``POST /actions/bulk``: retry or cancel the selected items, or every item of a state.

    Fields: ``action`` (retry, cancel), ``work_id`` (repeated) or ``state`` and ``engine``,
    ``back`` (the page to return to). Unconfirmed, it shows which items it would take;
    confirmed, it acts and shows each item's result.
    """
    console = console_of(request)
    pairs = await body_pairs(request)
    fields = dict(pairs)
    name = fields.get("action", "")
    if name not in actions.BULK_ACTIONS:
        raise BadInput(f"unknown bulk action {name!r} (cancel or retry)")
    back = local_path(fields.get("back", "/work"))
    backend = await console.backend()
    if fields.get("confirmed") == "1":
        report = await actions.bulk_from_fields(backend, name, pairs)
        return console.render(
            request,
            "bulk_result.html",
            {"page": "work", "report": report, "back": back, "bulk_limit": actions.BULK_LIMIT},
        )
    ids = list(dict.fromkeys(v for k, v in pairs if k == "work_id" and v))
    scope = None if ids else actions.scope_of(fields)
    more = False
    if scope is not None:
        ids, more = await worklist.select(
            backend, state=scope[0], engine=scope[1], cap=actions.BULK_LIMIT
        )
    if not ids:
        raise BadInput("no work items were selected" if scope is None else "nothing matches")
    return console.render(
        request,
        "bulk_confirm.html",
        {
            "page": "work",
            "action": name,
            "ids": ids,
            "count": len(ids),
            "more": more,
            "state": scope[0].value if scope else "",
            "engine": scope[1] if scope else "",
            "back": back,
        },
    )


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
    """The forms' routes."""
    return [
        Route("/actions/bulk", bulk, methods=["POST"]),
        Route("/actions/{action}/{work_id:path}", action, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
