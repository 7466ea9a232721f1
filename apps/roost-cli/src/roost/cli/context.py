"""What every command shares: global options, settings, the backend, and exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad input (a payload, an id, a setting, an engine, an
unreachable Redis URL). Failures print one line on stderr and no traceback.

The backend comes from the installed plugins by the scheme of ``ROOST_REDIS_URL``
(:meth:`roost.runtime.Registry.open_backend`); nothing here names a backend's own classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from roost.runtime.errors import BadInput, RoostError, SettingsError

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend
    from roost.runtime.plugins import Registry
    from roost.runtime.settings import RoostSettings

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_RUNTIME",
    "CliError",
    "GlobalOptions",
    "backend_of",
    "fail",
    "handle_errors",
    "ignore_further_interrupts",
    "load_registry",
    "open_backend",
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
    "ROOST_PARTITIONS": "--partitions",
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
    partitions: int | None = None
    log_level: str | None = None
    log_format: str | None = None
    verbose: bool = False

    def settings(self, **overrides: Any) -> RoostSettings:
        """Settings from the environment with these flags (and ``overrides``) on top.

        Raises:
            CliError: a variable or flag is malformed (exit 2).
        """
        from roost.runtime.settings import RoostSettings  # pydantic-settings: not for --help

        flags = {
            "redis_url": self.redis_url,
            "namespace": self.namespace,
            "queue": self.queue,
            "redis_prefix": self.prefix,
            "partitions": self.partitions,
        }
        merged: dict[str, Any] = {**flags, **overrides}
        try:
            return RoostSettings.from_env(None, **merged)
        except SettingsError as exc:
            raise self.bad_setting(exc) from None

    def bad_setting(self, exc: SettingsError) -> CliError:
        """``exc`` as exit 2, naming the flag instead of the variable when a flag gave it."""
        message = str(exc)
        var = message.split(":", 1)[0].split(" ", 1)[0]
        flag = _FLAG_OF.get(var)
        given = {
            "--redis-url": self.redis_url,
            "--namespace": self.namespace,
            "--queue": self.queue,
            "--prefix": self.prefix,
            "--partitions": self.partitions,
        }
        if flag and given.get(flag) is not None:
            message = f"{flag}{message[len(var) :]}"
        return CliError(message, EXIT_BAD_INPUT)


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options the root callback stored on the click context."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def settings_of(ctx: typer.Context, **overrides: Any) -> RoostSettings:
    """The settings for this command; a malformed one exits 2 with one line.

    ``ROOST_REDIS_URL`` is checked by the backend its scheme picks. With ``-v``, says on
    stderr which server, namespace and ``ROOST_HOME`` they point to.
    """
    with handle_errors():
        settings = options(ctx).settings(**overrides)
        backend = backend_of(settings, given=options(ctx))
    if options(ctx).verbose:
        warn(f"roost: {where(backend)}")
    return settings


def where(backend: WorkBackend) -> str:
    """Which server, namespace, queue and home a command uses, in one line."""
    settings = backend.settings
    return (
        f"redis {backend.describe()}; namespace {settings.namespace}; "
        f"queue {settings.queue}; home {settings.home}"
    )


def load_registry() -> Registry:
    """Load the installed plugins (engines, artifact stores, backends, event sinks).

    A second load in the same process costs a few milliseconds (the modules are imported).
    Only the commands that need a backend, an engine or a store load them: ``--help`` and
    the commands that need none start without importing any plugin.

    Raises:
        CliError: two plugins clash (exit 2) or a plugin fails to import (exit 1).
    """
    from roost.runtime.plugins import Registry, get_plugin_manager

    try:
        return Registry.load(get_plugin_manager())
    except BadInput as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except Exception as exc:  # a broken third-party plugin: name it, no traceback
        raise CliError(f"loading plugins failed: {type(exc).__name__}: {exc}") from None


def backend_of(
    settings: RoostSettings,
    *,
    registry: Registry | None = None,
    validate_engines: bool = False,
    given: GlobalOptions | None = None,
) -> WorkBackend:
    """The backend ``ROOST_REDIS_URL``'s scheme picks (not connected).

    Raises:
        CliError: no installed backend serves that URL, or the backend refuses it (exit 2,
            naming ``--redis-url`` when ``given`` says the flag gave it).
    """
    registry = registry or load_registry()
    try:
        return registry.open_backend(settings, validate_engines=validate_engines)
    except SettingsError as exc:
        raise (given or GlobalOptions()).bad_setting(exc) from None


@contextlib.asynccontextmanager
async def open_backend(
    settings: RoostSettings,
    *,
    registry: Registry | None = None,
    validate_engines: bool = False,
) -> AsyncGenerator[WorkBackend]:
    """Connect a backend; a server at ``ROOST_REDIS_URL`` that fails to connect is exit 2.

    With ``ROOST_REDIS_URL`` unset this starts the embedded server if it is not running; a
    failure to start or reach it is a runtime failure (exit 1). An error of the backend's
    client library while the block runs is one line naming its cause (exit 1).
    """
    backend = backend_of(settings, registry=registry, validate_engines=validate_engines)
    try:
        await backend.connect()
    except BadInput as exc:  # the namespace refuses these settings (its partitions...)
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except RoostError as exc:  # BackendUnreachable, or a server Roost cannot use
        raise CliError(str(exc), EXIT_BAD_INPUT if settings.redis_url else EXIT_RUNTIME) from None
    try:
        yield backend
    except Exception as exc:
        fault = backend.explain(exc)
        if fault is None:
            raise
        raise CliError(fault.message) from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(backend.close(), CLOSE_TIMEOUT)


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
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc}", EXIT_RUNTIME)


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
