"""Errors explained in words: a JSON body under ``/api/``, an HTML page everywhere else."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.console.state import RedisUnavailable, console_of
from roost.runtime.errors import BadInput, ConflictError, NotFound, RoostError

__all__ = ["error_response", "handlers"]

log = logging.getLogger("roost.console")

_STATUS_TITLES = {
    400: "That request cannot be served",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible right now",
    413: "That request is too large",
    503: "Redis is not reachable",
    500: "Something went wrong",
}


def error_response(request: Request, status: int, message: str, kind: str) -> Response:
    """A JSON error under ``/api/``, an HTML page everywhere else."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "kind": kind}, status_code=status)
    console = console_of(request)
    hint = ""
    if status == 503:
        hint = (
            "Start Redis (or the embedded server), or point the console at the right one "
            "with ROOST_REDIS_URL. This page works again as soon as Redis answers."
        )
    return console.render(
        request,
        "error.html",
        {"title": _STATUS_TITLES.get(status, "Error"), "message": message, "hint": hint},
        status_code=status,
    )


async def _on_not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc), "not_found")


async def _on_bad_input(request: Request, exc: Exception) -> Response:
    return error_response(request, 400, str(exc), "bad_input")


async def _on_conflict(request: Request, exc: Exception) -> Response:
    return error_response(request, 409, str(exc), "conflict")


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    message = str(exc)
    if not isinstance(exc, RedisUnavailable):
        message = f"lost the connection to Redis at {console_of(request).redis_label}: {exc}"
    return error_response(request, 503, message, "redis_unavailable")


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


def handlers() -> dict[Any, Any]:
    """Exception handlers for :class:`~starlette.applications.Starlette`."""
    return {
        NotFound: _on_not_found,
        BadInput: _on_bad_input,
        ConflictError: _on_conflict,
        RedisUnavailable: _on_unavailable,
        RedisError: _on_unavailable,
        OSError: _on_unavailable,
        RoostError: _on_roost_error,
        HTTPException: _on_http,
        Exception: _on_crash,
    }
