"""What every command shares: global options, settings, the swarm, and exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad input (a payload, an id, a setting, an engine, an
unreachable Redis URL). Failures print one line on stderr and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import typer
from redis.exceptions import RedisError

from roost.redis import EmbeddedServerFailed, RedisSwarm, describe_redis_error
from roost.redis.server import EmbeddedServer, ServerError
from roost.runtime import (
    BadInput,
    Registry,
    RoostError,
    RoostSettings,
    SettingsError,
    get_plugin_manager,
)
from roost.runtime.urls import redact_url

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_RUNTIME",
    "CliError",
    "GlobalOptions",
    "describe_redis",
    "fail",
    "handle_errors",
    "ignore_further_interrupts",
    "load_registry",
    "open_swarm",
    "options",
    "run",
    "settings_of",
    "until_interrupted",
    "where",
    "warn",
]

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2

T = TypeVar("T")

_FLAG_OF = {
    "ROOST_REDIS_URL": "--redis-url",
    "ROOST_NAMESPACE": "--namespace",
    "ROOST_QUEUE": "--queue",
    "ROOST_REDIS_PREFIX": "--prefix",
}


class CliError(Exception):
    """A failure the CLI reports as one line with a chosen exit code."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    """Print a line on stderr (progress notes, hints)."""
    typer.echo(message, err=True)


def fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    """Print ``error: <first line of message>`` on stderr and exit with ``code``."""
    lines = str(message).strip().splitlines() or ["failed"]
    warn(f"error: {lines[0]}")
    raise typer.Exit(code)


@dataclass(frozen=True)
class GlobalOptions:
    """Flags given before the command; each overrides its ``ROOST_*`` variable."""

    redis_url: str | None = None
    namespace: str | None = None
    queue: str | None = None
    prefix: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    verbose: bool = False

    def settings(self, **overrides: Any) -> RoostSettings:
        """Settings from the environment with these flags (and ``overrides``) on top.

        Raises:
            CliError: a variable or flag is malformed (exit 2).
        """
        flags = {
            "redis_url": self.redis_url,
            "namespace": self.namespace,
            "queue": self.queue,
            "redis_prefix": self.prefix,
        }
        merged: dict[str, Any] = {**flags, **overrides}
        try:
            return RoostSettings.from_env(None, **merged)
        except SettingsError as exc:
            message = str(exc)
            var = message.split(":", 1)[0]
            flag = _FLAG_OF.get(var)
            given = {
                "--redis-url": self.redis_url,
                "--namespace": self.namespace,
                "--queue": self.queue,
                "--prefix": self.prefix,
            }
            if flag and given.get(flag) is not None:
                message = f"{flag}{message[len(var) :]}"
            raise CliError(message, EXIT_BAD_INPUT) from None


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options the root callback stored on the click context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def settings_of(ctx: typer.Context, **overrides: Any) -> RoostSettings:
    """The settings for this command; a malformed one exits 2 with one line.

    With ``-v``, says on stderr which server, namespace and ``ROOST_HOME`` they point to.
    """
    with handle_errors():
        settings = options(ctx).settings(**overrides)
    if options(ctx).verbose:
        warn(f"roost: {where(settings)}")
    return settings


def where(settings: RoostSettings) -> str:
    """Which server, namespace, queue and home a command uses, in one line."""
    if settings.redis_url:
        server = describe_redis(settings, settings.redis_url)
    else:
        embedded = EmbeddedServer(settings.home / "redis").status()
        url = embedded.url if embedded.running and embedded.url else "not running yet"
        server = describe_redis(settings, url)
    return (
        f"redis {server}; namespace {settings.namespace}; queue {settings.queue}; "
        f"home {settings.home}"
    )


def load_registry() -> Registry:
    """Load the installed plugins (engines, artifact stores, event sinks).

    Raises:
        CliError: two plugins clash (exit 2) or a plugin fails to import (exit 1).
    """
    try:
        return Registry.load(get_plugin_manager())
    except BadInput as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except Exception as exc:  # a broken third-party plugin: name it, no traceback
        raise CliError(f"loading plugins failed: {type(exc).__name__}: {exc}") from None


@contextlib.asynccontextmanager
async def open_swarm(
    settings: RoostSettings,
    *,
    registry: Registry | None = None,
    validate_engines: bool = False,
) -> AsyncGenerator[RedisSwarm]:
    """Connect a swarm; a Redis that cannot be reached or used is bad input (exit 2).

    With ``ROOST_REDIS_URL`` unset this starts the embedded server if it is not running; a
    failure to start it is a runtime failure (exit 1).
    """
    swarm = RedisSwarm(settings, registry=registry, validate_engines=validate_engines)
    try:
        await swarm.connect()
    except EmbeddedServerFailed as exc:
        raise CliError(str(exc)) from None
    except RoostError as exc:  # RedisUnreachable, or a server Roost cannot use
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    try:
        yield swarm
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(swarm.close(), CLOSE_TIMEOUT)


@contextlib.contextmanager
def handle_errors() -> Generator[None]:
    """Turn Roost's exceptions into one line on stderr and an exit code."""
    try:
        yield
    except CliError as exc:
        fail(str(exc), exc.code)
    except BadInput as exc:  # NotFound, UnknownEngine, SettingsError included
        fail(str(exc), EXIT_BAD_INPUT)
    except RoostError as exc:  # ConflictError, StaleLease, ...
        fail(str(exc), EXIT_RUNTIME)
    except ServerError as exc:
        fail(str(exc), EXIT_RUNTIME)
    except (RedisError, OSError) as exc:
        fail(describe_redis_error(exc), EXIT_RUNTIME)


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` in a fresh event loop, mapping failures to exit codes."""
    with handle_errors():
        return asyncio.run(main())
    raise AssertionError("unreachable")  # pragma: no cover


CLOSE_TIMEOUT = 3.0
"""How long a command stopped by Ctrl-C waits for its connections to close."""


async def until_interrupted(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (a tail that never ends by itself) until Ctrl-C or SIGTERM, then return.

    The signals are taken by the event loop for the whole command, so an interrupt, whenever
    it comes (mid-read, mid-print, or echoed again by ``uv run``), only sets a flag: the tail
    is cancelled and given ``CLOSE_TIMEOUT`` to unwind, and the command exits 0 instead of
    depending on where a ``KeyboardInterrupt`` would have landed.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tail = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({tail, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)  # the command is ending: no second ending
        if not tail.done():
            tail.cancel()
            await asyncio.wait({tail}, timeout=CLOSE_TIMEOUT)
    if tail.done() and not tail.cancelled():
        tail.result()  # what the tail raised, if it ended by itself


def ignore_further_interrupts() -> None:
    """Ignore SIGINT from now on: the command is finishing because of one.

    ``uv run`` forwards the terminal's SIGINT to its child again ~200 ms later when stdin is
    not a terminal; arriving during interpreter shutdown, that echo would end the process
    with status 130 instead of the quiet exit 0 of an interrupted ``--follow``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def describe_redis(settings: RoostSettings, url: str) -> str:
    """Say which Redis a process uses: the embedded one (and where) or ROOST_REDIS_URL."""
    if settings.redis_url:
        return f"{redact_url(url)} (ROOST_REDIS_URL)"
    directory = EmbeddedServer(settings.home / "redis").directory
    return f"embedded at {url} (data in {directory}; stop it with `roost server stop`)"
