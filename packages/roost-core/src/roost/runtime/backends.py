"""Work backends: the operator API the CLI and the console drive, chosen by URL scheme.

A backend plugin registers a :class:`BackendFactory` per URL scheme with the
``roost_register_backends`` hook; :meth:`roost.runtime.Registry.open_backend` picks the
factory for ``ROOST_REDIS_URL``'s scheme (or the one registered under
:data:`DEFAULT_SCHEME` when no URL is set) and returns a :class:`WorkBackend`. The apps see
only these protocols, never a backend's own classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from roost.runtime.stores import WorkStore

if TYPE_CHECKING:
    from roost.runtime.children import ChildOutcome
    from roost.runtime.engine import Engine
    from roost.runtime.models import (
        Budget,
        Signal,
        Snapshot,
        WorkMeta,
    )
    from roost.runtime.observe import StepObserver
    from roost.runtime.settings import RoostSettings
    from roost.runtime.stores import ArtifactStore, EventSink

__all__ = [
    "DEFAULT_SCHEME",
    "BackendFactory",
    "Fault",
    "ServerCommand",
    "ServerReport",
    "SignalReceipt",
    "WorkBackend",
]

DEFAULT_SCHEME = ""
"""The scheme a backend registers under to be the default: used when no URL is set."""

ServerCommand = Literal["start", "stop", "status"]
"""What ``roost server`` asks of a backend's own server."""


@dataclass(frozen=True)
class Fault:
    """What an error of a backend's client library means, in one line.

    Attributes:
        message: the cause, on one line, credentials hidden.
        outage: the backend cannot serve right now (unreachable, busy, out of memory...);
            it passes, so callers wait and retry rather than fail.
        unreachable: no server answered at all.
    """

    message: str
    outage: bool
    unreachable: bool


class SignalReceipt(Protocol):
    """What sending a signal did."""

    @property
    def work_id(self) -> str:
        """The item the signal went to."""
        ...

    @property
    def name(self) -> str:
        """The signal's name."""
        ...

    @property
    def signal_id(self) -> str:
        """The signal's id, unique in the item."""
        ...

    @property
    def woke(self) -> bool:
        """Whether the item was waiting for it (and now runs)."""
        ...


class ServerReport(Protocol):
    """What a ``roost server`` command did, for a person or as JSON."""

    def lines(self) -> list[str]:
        """What to print, a line each."""
        ...

    def to_dict(self) -> dict[str, object]:
        """The status as a JSON-ready dict."""
        ...


@runtime_checkable
class WorkBackend(WorkStore, Protocol):
    """The operator API over durable work: what the CLI and the console use.

    It is :class:`~roost.runtime.stores.WorkStore` (status, listing, events, cancel, retry,
    replay...) plus connecting, workers, signals, budgets and what to say about faults.

    Build one with :meth:`roost.runtime.Registry.open_backend`; use it as an async context
    manager (or :meth:`connect` and :meth:`close`). Each backend's test suite checks that
    its class satisfies it.
    """

    settings: RoostSettings
    """The settings it was built with."""
    url: str
    """The server's URL once connected (credentials included: show it redacted)."""

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (starting an embedded server if it is the default); idempotent.

        Raises:
            BackendUnreachable: no server answered.
            RoostError: the server answered but cannot be used; the message says why.
        """
        ...

    async def close(self) -> None:
        """Close the connections."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None:
        """Check that the server answers (an error of its client library when not)."""
        ...

    def describe(self) -> str:
        """Which server this is, in a few words, credentials hidden (for ``-v`` and banners)."""
        ...

    def server_running(self) -> bool:
        """Whether its server runs, found out without starting one (true for a URL)."""
        ...

    def manage_server(self, command: ServerCommand) -> ServerReport:
        """Start, stop or inspect the embedded server of ``settings.home``.

        Raises:
            RoostError: the backend has no embedded server, or it cannot be started.
        """
        ...

    @property
    def fault_types(self) -> tuple[type[BaseException], ...]:
        """The exceptions of its client library that :meth:`explain` explains."""
        ...

    def explain(self, exc: BaseException) -> Fault | None:
        """What ``exc`` means, if it is one of :attr:`fault_types`; else ``None``."""
        ...

    def engine_ids(self) -> list[str]:
        """The ids of the engines installed (registered by plugins), sorted.

        Raises:
            BadInput: two plugins clash.
        """
        ...

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store at ``ROOST_ARTIFACT_ROOT``."""
        ...

    # -- work ---------------------------------------------------------------------------

    async def metas(self, work_ids: Sequence[str]) -> list[WorkMeta | None]:
        """Meta of many items (``None`` for unknown ids)."""
        ...

    async def counts(self) -> dict[str, int]:
        """Number of items per state, and the deliveries queued and in flight."""
        ...

    async def unserved_engines(self, queue: str | None = None) -> dict[str, int]:
        """Engines with queued work in ``queue`` and no live worker: ``{engine: queued}``."""
        ...

    async def stats(self, minutes: int = 15) -> dict[int, dict[str, int]]:
        """Per-minute event counters of the last ``minutes`` minutes, oldest first."""
        ...

    async def workers(self) -> list[dict[str, Any]]:
        """Live workers, as their heartbeats describe them."""
        ...

    async def children(self, work_id: str) -> list[WorkMeta]:
        """The metas of an item's children, in the order its steps spawned them."""
        ...

    async def child_outcomes(self, work_id: str) -> list[ChildOutcome]:
        """What the item's next step would receive from ``StepContext.children()``."""
        ...

    async def snapshot_versions(self, work_id: str) -> list[Snapshot]:
        """The latest snapshot and the earlier versions kept, newest first."""
        ...

    async def pending_signals(self, work_id: str) -> list[Signal]:
        """The signals no step has consumed yet, oldest first."""
        ...

    # -- operating ----------------------------------------------------------------------

    async def pause(self, work_id: str) -> WorkMeta:
        """Pause an unfinished item: it runs no new step until resumed."""
        ...

    async def resume(self, work_id: str) -> WorkMeta:
        """Resume a paused item where it was."""
        ...

    async def raise_budget(
        self, work_id: str, *, steps: int = 0, cost: float = 0.0, runtime: float = 0.0
    ) -> Budget:
        """Raise an unfinished item's budgets."""
        ...

    async def signal(
        self,
        work_id: str,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        sender: str = "api",
    ) -> SignalReceipt:
        """Send a signal to an unfinished item."""
        ...

    async def approve(
        self, work_id: str, *, note: str | None = None, sender: str = "api"
    ) -> SignalReceipt:
        """Approve what the item asks."""
        ...

    async def reject(
        self, work_id: str, *, note: str | None = None, sender: str = "api"
    ) -> SignalReceipt:
        """Reject what the item asks."""
        ...

    # -- workers ------------------------------------------------------------------------

    async def run_worker(
        self,
        engines: Sequence[str | Engine] | Mapping[str, int] | Mapping[Engine, int] | None = None,
        *,
        concurrency: int = 10,
        install_signal_handlers: bool = True,
        sinks: Sequence[EventSink] = (),
        observers: Sequence[StepObserver] = (),
    ) -> None:
        """Run a worker until it is stopped (a signal, or :meth:`stop_worker`)."""
        ...

    def stop_worker(self) -> None:
        """Ask the running worker to stop gracefully."""
        ...


class BackendFactory(Protocol):
    """What a backend plugin registers per URL scheme."""

    def url_problem(self, url: str) -> str | None:
        """What is wrong with ``url`` for this backend (its scheme is one it registered).

        Returns ``None`` for a URL it can use, else a few words that follow the redacted URL
        in the error (``"names no host"``).
        """
        ...

    def open(
        self, settings: RoostSettings, *, registry: Any = None, validate_engines: bool = False
    ) -> WorkBackend:
        """A backend for ``settings``, not connected yet.

        Args:
            settings: the settings; ``redis_url`` has a scheme this factory registered, or
                is unset when it registered :data:`DEFAULT_SCHEME`.
            registry: the :class:`roost.runtime.Registry` its workers and checks use
                (``None``: load the installed plugins when needed).
            validate_engines: make ``enqueue`` refuse engines the registry does not know.
        """
        ...
