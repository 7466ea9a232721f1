"""The Schedules page: each schedule's next run, last run, last item and its state.

Pause, resume and run-now are forms like the work item's buttons: without ``confirmed=1``
they answer with a confirmation page (the page's script asks in a dialog first and sets
it), and every ``POST`` has passed the guard's Origin and CSRF checks before it gets here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.console import schedule_ops
from roost.console.params import body_fields
from roost.console.state import console_of
from roost.runtime.errors import NotFound

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["ACTIONS", "routes"]

ACTIONS = {
    "pause": ("paused", "Pause schedule {name}? Its ticks stop until it is resumed."),
    "resume": (
        "resumed",
        "Resume schedule {name}? It ticks again from its next tick; ticks in the pause are "
        "not made up.",
    ),
    "run-now": (
        "ran",
        "Run schedule {name} now? One item is enqueued at once, outside its ticks.",
    ),
}
"""Action -> (what the notice says was done, the confirmation's question)."""
NOTICES = {
    "paused": "Paused: no more ticks until it is resumed.",
    "resumed": "Resumed: it ticks again from its next tick.",
    "ran": "Enqueued an item now, outside the schedule's ticks.",
}


async def schedules_page(request: Request) -> Response:
    """``GET /schedules``: every schedule with its next run, last run and last item."""
    console = console_of(request)
    backend = await console.backend()
    found = await schedule_ops.list_all(backend)
    done = request.query_params.get("done", "")
    return console.render(
        request,
        "schedules.html",
        {
            "page": "schedules",
            "schedules": found,
            "actions": ACTIONS,
            "notice": NOTICES.get(done, ""),
            "notice_name": request.query_params.get("name", "") if done in NOTICES else "",
        },
    )


async def schedule_action(request: Request) -> Response:
    """``POST /schedules/{pause|resume|run-now}/{name}``: confirm, then act and go back."""
    console = console_of(request)
    action: str = request.path_params["action"]
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r} (pause, resume or run-now)")
    name: str = request.path_params["name"]
    fields = await body_fields(request)
    backend = await console.backend()
    schedule = await schedule_ops.get(backend, name)
    done, question = ACTIONS[action]
    if fields.get("confirmed") != "1":
        return console.render(
            request,
            "schedule_confirm.html",
            {
                "page": "schedules",
                "action": action,
                "schedule": schedule,
                "question": question.format(name=name),
            },
        )
    await schedule_ops.act(backend, action, name)
    return RedirectResponse("/schedules?" + urlencode({"done": done, "name": name}), 303)


def routes() -> list[BaseRoute]:
    """The Schedules page's routes."""
    return [
        Route("/schedules", schedules_page),
        Route("/schedules/{action}/{name:path}", schedule_action, methods=["POST"]),
    ]
