"""Errors explained in words: a JSON body under ``/api/``, an HTML page everywhere else."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.console.present import redis_problem
from roost.console.state import RedisUnavailable, console_of
from roost.runtime.errors import BadInput, ConflictError, NotFound, RoostError

__all__ = ["REFUSING", "UNREACHABLE", "error_response", "handlers"]

log = logging.getLogger("roost.console")

_STATUS_TITLES = {
    400: "That request cannot be served",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible right now",
    413: "That request is too large",
    503: "Not available right now",
    500: "Something went wrong",
}

UNREACHABLE = (
    "Redis is not reachable",
    "Start Redis (or the embedded server), or point the console at the right one with "
    "ROOST_REDIS_URL. This page works again as soon as Redis answers.",
)
REFUSING = (
    "Redis cannot serve the console right now",
    "Redis answers, but refuses this for the reason above until it is resolved (memory "
    "freed, the primary back, the script finished...). The console needs no restart: this "
    "page works again as soon as Redis serves again.",
)
"""Title and hint of the page for a Redis that does not answer, and for one that refuses."""


def error_response(
    request: Request,
    status: int,
    message: str,
    kind: str,
    *,
    title: str | None = None,
    hint: str = "",
) -> Response:
    """A JSON error under ``/api/``, an HTML page everywhere else."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "kind": kind}, status_code=status)
    return console_of(request).render(
        request,
        "error.html",
        {"title": title or _STATUS_TITLES.get(status, "Error"), "message": message, "hint": hint},
        status_code=status,
    )


async def _on_not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc), "not_found")


async def _on_bad_input(request: Request, exc: Exception) -> Response:
    return error_response(request, 400, str(exc), "bad_input")


async def _on_conflict(request: Request, exc: Exception) -> Response:
    return error_response(request, 409, str(exc), "conflict")


async def _on_redis(request: Request, exc: Exception) -> Response:
    """Redis failed: 503 (``redis_unavailable``) while it cannot serve, 500 when a call failed.

    The message names the cause (unreachable, OOM, READONLY, BUSY...) and where Redis is.
    """
    console = console_of(request)
    if isinstance(exc, RedisUnavailable):
        title, hint = UNREACHABLE if exc.unreachable else REFUSING
        return error_response(request, 503, str(exc), "redis_unavailable", title=title, hint=hint)
    kind, message = redis_problem(exc, console.work_backend)
    message = console.redact(f"{message} (Redis at {console.redis_label})")
    if kind != "redis_unavailable":
        return error_response(request, 500, message, kind, title="Redis refused this request")
    fault = console.work_backend.explain(exc)
    title, hint = UNREACHABLE if fault is not None and fault.unreachable else REFUSING
    return error_response(request, 503, message, kind, title=title, hint=hint)


async def _on_roost_error(request: Request, exc: Exception) -> Response:
    return error_response(request, 500, str(exc), "error")


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404:
        message = f"there is no page at {request.url.path}"
    elif exc.status_code == 413:
        message = "the request body is larger than the console accepts"
    return error_response(request, exc.status_code, message, "http")


async def _on_crash(request: Request, exc: Exception) -> Response:
    """The 500 page. The server logs the exception (with its traceback) after it is sent."""
    try:
        return error_response(
            request,
            500,
            f"the console hit an unexpected {type(exc).__name__}; the details are in its log",
            "internal",
        )
    except Exception:  # the page itself cannot be rendered: say it in plain text
        log.exception("the console's error page failed")
        return Response("Internal Server Error", 500, media_type="text/plain")


def handlers(fault_types: tuple[type[BaseException], ...]) -> dict[Any, Any]:
    """Exception handlers for :class:`~starlette.applications.Starlette`.

    ``fault_types``: the errors of the backend's client library (its ``fault_types``).
    """
    return {
        NotFound: _on_not_found,
        BadInput: _on_bad_input,
        ConflictError: _on_conflict,
        RedisUnavailable: _on_redis,
        **dict.fromkeys(fault_types, _on_redis),
        OSError: _on_redis,
        RoostError: _on_roost_error,
        HTTPException: _on_http,
        Exception: _on_crash,
    }
