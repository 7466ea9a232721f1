"""What every request shares: :class:`Console` (the backend, the live-event hub, the templates)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jinja2
from starlette.templating import Jinja2Templates

from roost.console import present
from roost.console.hub import EventHub
from roost.redis.metrics import QueueReader
from roost.redis.plugin import swarm_of
from roost.runtime.backends import WorkBackend
from roost.runtime.errors import BackendUnreachable, RoostError
from roost.runtime.plugins import Registry
from roost.runtime.settings import RoostSettings
from roost.runtime.urls import redact_url

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from roost.console.security import GuardConfig

__all__ = ["HERE", "Console", "RedisUnavailable", "console_of", "make_templates"]

HERE = Path(__file__).parent


class RedisUnavailable(RoostError):
    """The console cannot reach (or use) its Redis server; the message says why.

    ``unreachable`` is true when no server answered at all (rather than one that cannot be
    used: a replica, a server refusing the connection's commands...).
    """

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class Console:
    """What every request shares: the backend (connected on first use), the hub, the templates.

    A :class:`WorkBackend` passed in is used as it is and stays the caller's to close; one
    built from settings (by the installed backend plugin for ``ROOST_REDIS_URL``'s scheme)
    is connected on the first request (so the console starts, and explains the problem,
    even while Redis is down) and closed at shutdown.

    Raises:
        SettingsError: no installed backend serves ``ROOST_REDIS_URL``.
    """

    def __init__(self, source: WorkBackend | RoostSettings, guard: GuardConfig) -> None:
        if isinstance(source, RoostSettings):
            self.work_backend = Registry.load().open_backend(source)
            self._owned = True
        else:
            self.work_backend = source
            self._owned = False
        self.settings = self.work_backend.settings
        self.guard = guard
        self.templates = make_templates()
        self.hub = EventHub()
        self._lock: asyncio.Lock | None = None
        self._queue_reader: QueueReader | None = None

    @property
    def redis_label(self) -> str:
        """Where the console's Redis is, password hidden (``embedded`` before connecting)."""
        url = self.work_backend.url or self.settings.redis_url
        return redact_url(url) if url else f"embedded ({self.settings.home})"

    async def queue_reader(self) -> QueueReader:
        """The reader of the queue's gauges for ``/metrics`` (it remembers the engines)."""
        if self._queue_reader is None:
            self._queue_reader = QueueReader(swarm_of(await self.backend()))
        return self._queue_reader

    async def backend(self) -> WorkBackend:
        """The connected backend.

        Raises:
            RedisUnavailable: Redis cannot be reached or used; the message says why.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        backend = self.work_backend
        async with self._lock:
            try:
                await backend.connect()
            except BackendUnreachable as exc:
                raise RedisUnavailable(self.redact(str(exc)), unreachable=True) from None
            except RoostError as exc:  # the embedded server failed, or a server it cannot use
                unreachable = not self.settings.redis_url
                raise RedisUnavailable(self.redact(str(exc)), unreachable=unreachable) from None
            except backend.fault_types as exc:
                fault = backend.explain(exc)
                assert fault is not None  # a fault type always has an explanation
                raise RedisUnavailable(
                    self.redact(fault.message), unreachable=fault.unreachable
                ) from None
        return backend

    def redact(self, message: str) -> str:
        """Hide the Redis password in a message (WorkBackend's errors quote the full URL)."""
        for url in {self.settings.redis_url or "", self.work_backend.url}:
            if url:
                message = message.replace(url, redact_url(url))
        return message

    async def close(self) -> None:
        """Stop the hub; close the backend if the console built it."""
        await self.hub.close()
        if self._owned:
            await self.work_backend.close()

    def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        """Render a page (or a fragment of one) with the context every template expects."""
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
        duration=present.duration,
        pretty_json=present.pretty_json,
        describe=present.describe_event,
    )
    extra: dict[str, Any] = {"work_url": present.work_url, "action_states": present.ACTION_STATES}
    cast("dict[str, Any]", env.globals).update(extra)
    return Jinja2Templates(env=env)


def console_of(request: Request) -> Console:
    """The :class:`Console` of the app serving ``request``."""
    console: Console = request.app.state.console
    return console
