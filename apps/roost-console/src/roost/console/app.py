"""The Starlette application: :func:`create_app`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from roost.console import api, approvals, errors, pages, schedules, stream
from roost.console.security import DEFAULT_HOSTS, Guard, GuardConfig, SecureHeaders
from roost.console.state import HERE, Console

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from roost.runtime.backends import WorkBackend
    from roost.runtime.settings import RoostSettings

__all__ = ["MAX_BODY_BYTES", "ConsoleApp", "create_app"]

MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this size get 413 (the console only receives small forms)."""


class ConsoleApp(Starlette):
    """Starlette, with :class:`~roost.console.security.SecureHeaders` outside everything.

    Starlette's own outermost layers (the 500 handler, the body size limit) answer past
    any middleware; wrapping the whole stack puts the security headers on those answers too.
    """

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, wrapped in :class:`SecureHeaders`."""
        return SecureHeaders(super().build_middleware_stack())


def create_app(
    source: WorkBackend | RoostSettings,
    *,
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    port: int | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ConsoleApp:
    """Build the console's Starlette app.

    Args:
        source: a :class:`WorkBackend` (yours to connect and close) or settings to build
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
        *schedules.routes(),
        *approvals.routes(),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = ConsoleApp(
        routes=routes,
        middleware=[Middleware(Guard, config=guard)],
        exception_handlers=errors.handlers(console.work_backend.fault_types),
        lifespan=lifespan,
        max_body_size=max_body_bytes,
    )
    app.state.console = console
    return app
