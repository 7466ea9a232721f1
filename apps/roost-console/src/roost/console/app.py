"""The Starlette application: :func:`create_app`, the shared :class:`Console` state, errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path
from typing import Any, cast

import jinja2
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roost.console import present
from roost.console.security import DEFAULT_HOSTS, Guard, GuardConfig
from roost.redis import RedisSwarm
from roost.runtime.errors import BadInput, ConflictError, NotFound, RoostError
from roost.runtime.settings import RoostSettings

__all__ = ["MAX_BODY_BYTES", "Console", "RedisUnavailable", "create_app"]

log = logging.getLogger("roost.console")

HERE = Path(__file__).parent
MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this size get 413 (the console only receives small forms)."""


class RedisUnavailable(RoostError):
    """The console cannot reach (or use) its Redis server; the message says why."""


class Console:
    """What every request shares: the swarm (connected on first use) and the templates.

    A :class:`RedisSwarm` passed in is used as it is and stays the caller's to close; one
    built from settings is connected on the first request (so the console starts, and
    explains the problem, even while Redis is down) and closed at shutdown.
    """

    def __init__(self, source: RedisSwarm | RoostSettings, guard: GuardConfig) -> None:
        if isinstance(source, RedisSwarm):
            self._swarm: RedisSwarm | None = source
            self._owned = False
            self.settings = source.settings
        else:
            self._swarm = None
            self._owned = True
            self.settings = source
        self.guard = guard
        self.templates = make_templates()
        self.streams = 0
        self._lock: asyncio.Lock | None = None

    @property
    def redis_label(self) -> str:
        """Where the console's Redis is, password hidden (``embedded`` before connecting)."""
        url = self._swarm.url if self._swarm is not None and self._swarm.url else None
        url = url or self.settings.redis_url
        return present.redact_url(url) if url else f"embedded ({self.settings.home})"

    async def swarm(self) -> RedisSwarm:
        """The connected swarm.

        Raises:
            RedisUnavailable: Redis cannot be reached or used; the message says why.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._swarm is None:
                self._swarm = RedisSwarm(self.settings)
            try:
                await self._swarm.connect()
            except (RoostError, OSError, RedisError) as exc:
                raise RedisUnavailable(self._redact(str(exc))) from None
        return self._swarm

    def _redact(self, message: str) -> str:
        """Hide the Redis password in a message (RedisSwarm's errors quote the full URL)."""
        for url in {self.settings.redis_url or "", self._swarm.url if self._swarm else ""}:
            if url:
                message = message.replace(url, present.redact_url(url))
        return message

    async def close(self) -> None:
        """Close the swarm if the console built it."""
        if self._owned and self._swarm is not None:
            await self._swarm.close()
            self._swarm = None

    def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        """Render a page with the context every template expects."""
        ctx: dict[str, Any] = {
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "now": time.time(),
            "settings": self.settings,
            "redis_label": self.redis_label,
            "token_mode": self.guard.token is not None,
            "page": "",
            **context,
        }
        return self.templates.TemplateResponse(request, name, ctx, status_code=status_code)


def make_templates() -> Jinja2Templates:
    """The Jinja2 environment: autoescape on for every template, strict undefined."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=present.ago,
        abs_time=present.abs_time,
        iso=present.iso,
        filesize=present.filesize,
        pretty_json=present.pretty_json,
        describe=present.describe_event,
    )
    extra: dict[str, Any] = {"bars": present.bars, "work_url": present.work_url}
    cast("dict[str, Any]", env.globals).update(extra)
    return Jinja2Templates(env=env)


def console_of(request: Request) -> Console:
    """The :class:`Console` of the app serving ``request``."""
    console: Console = request.app.state.console
    return console


# -- errors, explained in words -----------------------------------------------------------

_STATUS_TITLES = {
    400: "That request cannot be served",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible right now",
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
    return error_response(request, exc.status_code, message, "http")


async def _on_crash(request: Request, exc: Exception) -> Response:
    log.exception("console request %s %s failed", request.method, request.url.path)
    return error_response(
        request,
        500,
        f"the console hit an unexpected {type(exc).__name__}; the details are in its log",
        "internal",
    )


class CrashBarrier:
    """Turns an unexpected exception into the console's 500 page, inside the guard.

    Starlette answers an ``Exception`` handler from its outermost middleware, past the
    guard that adds the security headers; catching here keeps them on that page too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # too late for an error page: the server closes the response
            response = await _on_crash(Request(scope), exc)
            await response(scope, receive, send)


# -- the app ------------------------------------------------------------------------------


def create_app(
    source: RedisSwarm | RoostSettings,
    *,
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    port: int | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """Build the console's Starlette app.

    Args:
        source: a :class:`RedisSwarm` (yours to connect and close) or settings to build
            one from (connected on the first request, closed at shutdown).
        token: an access token; with it every route but ``/login`` and ``/static/`` needs
            it (at least 16 characters).
        allowed_hosts: host names accepted in the ``Host`` header (default ``127.0.0.1``,
            ``localhost``, ``[::1]``); write IPv6 addresses in brackets.
        port: the port the console is served on; the ``Host`` header must carry it.
            ``None`` accepts any port.
        max_body_bytes: larger request bodies get 413.

    Raises:
        ValueError: the token is too short.
    """
    from roost.console import api, pages, stream

    guard = GuardConfig(
        allowed_hosts=tuple(allowed_hosts) if allowed_hosts is not None else DEFAULT_HOSTS,
        port=port,
        token=token,
    )
    console = Console(source, guard)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            await console.close()

    routes: list[BaseRoute] = [
        *api.routes(),
        *stream.routes(),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Any] = {
        NotFound: _on_not_found,
        BadInput: _on_bad_input,
        ConflictError: _on_conflict,
        RedisUnavailable: _on_unavailable,
        RedisError: _on_unavailable,
        OSError: _on_unavailable,
        RoostError: _on_roost_error,
        HTTPException: _on_http,
    }
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, config=guard), Middleware(CrashBarrier)],
        exception_handlers=handlers,
        lifespan=lifespan,
        max_body_size=max_body_bytes,
    )
    app.state.console = console
    return app
