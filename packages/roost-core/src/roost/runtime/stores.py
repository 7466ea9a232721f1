"""Async store contracts that backends implement.

:class:`ArtifactStore` is implemented by the built-in file store and by plugins (by URL
scheme). :class:`WorkStore` is the core of the operator API that a backend's facade implements
(and declares; :class:`roost.runtime.backends.WorkBackend` adds the rest) and that the
conformance suite drives. :data:`EventSink` receives runtime events. :class:`LeaseStore` is
what the step runner (:class:`roost.runtime.runner.Runner`) asks of a backend: leases and
every write made under one, with the typed replies defined here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from roost.runtime.errors import RoostError

if TYPE_CHECKING:
    from roost.runtime.children import Family
    from roost.runtime.engine import Engine
    from roost.runtime.models import (
        Artifact,
        RuntimeEvent,
        Signal,
        Snapshot,
        WorkItem,
        WorkMeta,
        WorkPage,
        WorkState,
        WorkStatus,
    )
    from roost.runtime.observe import StepRecord

__all__ = [
    "Acquired",
    "ArtifactStore",
    "ArtifactStoreFactory",
    "Commit",
    "CommitStatus",
    "Committed",
    "EventSink",
    "FailStatus",
    "Failed",
    "Failure",
    "Held",
    "LeaseStore",
    "Next",
    "Recovered",
    "Released",
    "RenewStatus",
    "ServerClock",
    "StoreUnavailable",
    "WorkStore",
]


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed storage for what engines produce.

    The artifact id is the SHA-256 of the content (64 lowercase hex characters); ``kind`` is
    a short file extension (``json``, ``txt``, ``png``...). Writing the same content twice
    yields the same id and leaves one copy. Implementations validate ids and kinds before
    touching storage and raise :class:`roost.runtime.errors.BadInput` for invalid ones and
    :class:`roost.runtime.errors.NotFound` for missing artifacts. The conformance suite in
    :mod:`roost.runtime.testing.artifact_conformance` states the contract as tests.
    """

    url: str
    """Where the store lives, as a URL (``file:///abs/path`` for the file store)."""

    async def put(
        self, content: bytes, *, kind: str, metadata: Mapping[str, Any] | None = None
    ) -> Artifact:
        """Store ``content`` under its SHA-256 with ``kind`` and ``metadata``."""
        ...

    async def stat(self, artifact_id: str, kind: str | None = None) -> Artifact:
        """Return the artifact's description; ``kind=None`` finds the only stored kind."""
        ...

    async def read(self, artifact_id: str, kind: str | None = None) -> bytes:
        """Return the artifact's content."""
        ...

    async def exists(self, artifact_id: str, kind: str) -> bool:
        """Return whether the artifact is stored under that kind."""
        ...


ArtifactStoreFactory = Callable[[str], ArtifactStore]
"""``factory(url) -> ArtifactStore``, registered per URL scheme."""

EventSink = Callable[["RuntimeEvent"], Awaitable[None]]
"""``async sink(event)``: receives the runtime events the backend stored, in stream order.

A fleet's workers deliver each stored event (whichever process stored it) to the sinks of
one of them, at least once (see :class:`roost.runtime.observe.EventPump`). A sink that
raises is logged and skipped; it never fails a step.
"""


@runtime_checkable
class WorkStore(Protocol):
    """The operator API over durable work that every backend offers (its facade declares it)."""

    async def enqueue(
        self,
        engine: str,
        payload: Mapping[str, Any] | None = None,
        *,
        resources: Sequence[str] = (),
        idempotency_key: str | None = None,
        delay_seconds: float = 0.0,
        priority: int = 0,
        max_attempts: int | None = None,
        step_timeout: float | None = None,
        max_steps: int | None = None,
        max_runtime: float | None = None,
        budget: float | None = None,
    ) -> str:
        """Create a work item and return its work id (the same id for the same key)."""
        ...

    async def enqueue_many(
        self, items: Sequence[WorkItem], *, delay_seconds: float = 0.0
    ) -> list[str]:
        """Create many work items in few round trips; return their ids in order."""
        ...

    async def status(self, work_id: str) -> WorkStatus:
        """Return the item's meta, latest snapshot and work item."""
        ...

    async def list_work(
        self,
        *,
        state: WorkState | None = None,
        engine: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkPage:
        """List items, most recently updated first, filtered by state and engine."""
        ...

    async def events(
        self, *, work_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[RuntimeEvent]:
        """Return events after position ``after`` (oldest first), all or one item's."""
        ...

    def follow_events(
        self, *, work_id: str | None = None, after: str | None = None
    ) -> AsyncIterator[RuntimeEvent]:
        """Yield events as they are stored, starting after ``after`` (default: now)."""
        ...

    async def cancel(self, work_id: str) -> WorkMeta:
        """Cancel an unfinished item; a running step's commit will be refused."""
        ...

    async def retry(self, work_id: str) -> WorkMeta:
        """Queue a failed or dead item again with fresh attempts."""
        ...

    async def replay(
        self, work_id: str, *, version: int | None = None, as_new: bool = False
    ) -> str:
        """Run an item again from its latest (or a kept earlier) snapshot; return the id."""
        ...

    async def dead_letters(self, *, limit: int = 50, cursor: str | None = None) -> WorkPage:
        """List dead items, most recent first."""
        ...


# -- the lease store: what the step runner asks of a backend ------------------------------


class StoreUnavailable(RoostError):
    """The backend could not serve a call (an outage) before the caller's deadline."""


class Next(StrEnum):
    """What follows a committed step."""

    DONE = "done"
    """The snapshot is finished: the item is done."""
    AWAIT_SIGNALS = "await_signals"
    """The snapshot waits for signals: the item parks until they arrive (or time out)."""
    AWAIT = "await"
    """The step waits for its children: the item parks until they finish."""
    DELAY = "delay"
    """The snapshot asks for a delay: the item is due again after it."""
    INLINE = "inline"
    """The next step runs at once on the same lease (``ROOST_INLINE_STEPS``)."""
    QUEUE = "queue"
    """The item goes back to its engine's queue for the next step."""
    HOLD = "hold"
    """The lease and claims are kept whatever the snapshot says (an init kept for a retry)."""


class RenewStatus(StrEnum):
    """The state of one lease after a renewal."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    """Renewed, but the item was cancelled: its step is told to stop."""
    LOST = "LOST"
    """The lease is no longer this worker's."""


class CommitStatus(StrEnum):
    """How a commit was answered."""

    COMMITTED = "OK"
    REPEATED = "DUP"
    """The same commit was applied before (its reply was lost): nothing applied twice."""
    CANCELLED = "CANCELLED"
    """The item was cancelled: the commit is refused."""
    CHILD_TAKEN = "TAKEN"
    """A child the step spawned belongs to another parent or has children of its own."""
    CHILD_RACE = "RACE"
    """A child's idempotency key kept changing owner."""
    REFUSED = "REFUSED"
    """The lease lapsed or the item changed (``Committed.reason`` says how)."""


class FailStatus(StrEnum):
    """How a failed attempt was recorded."""

    RETRYING = "RETRYING"
    DEAD = "DEAD"
    """Out of attempts."""
    FAILED = "FAILED"
    """A terminal error: no retry."""
    REFUSED = "REFUSED"
    """The lease lapsed or the item changed (``Failed.reason`` says how)."""


@dataclass(frozen=True, slots=True)
class Acquired:
    """A lease taken on an item, with what its first step needs."""

    work_id: str
    token: str
    epoch: int
    expires_ms: float
    """When the lease expires (the backend's clock, ms)."""
    attempt: int
    version: int
    item: WorkItem
    snapshot: Snapshot | None
    """The latest committed snapshot (None before ``init_snapshot``)."""
    cancelled: bool
    """The item was cancelled while queued: it is released at once."""
    sent: float
    """When the acquire was sent (monotonic): the lease runs from then."""
    route: Any
    """The backend's handle on the item's delivery (where a release or continuation goes)."""
    waits: tuple[float | None, float | None] = (None, None)
    """How long the item sat queued, and how late it started after its due time (s)."""


@dataclass(frozen=True, slots=True)
class Commit:
    """A step's result to commit on top of committed version ``base``."""

    item: WorkItem
    snapshot: Snapshot
    snapshot_json: str
    base: int
    next: Next
    delay_ms: int
    event_data: str
    """The JSON data of the step's ``committed``/``done`` event."""
    init: Snapshot | None = None
    """An init snapshot not committed yet: it goes first, as version ``base + 1``."""
    ended_ms: float | None = None
    """When the step returned (the backend's clock): a delay runs from then."""
    family: Family | None = None
    """The step's children (spawned, waited for), if it has any to write."""
    engine: Engine | None = None

    @property
    def final(self) -> int:
        """The version this commit ends on."""
        return self.base + (2 if self.init is not None else 1)


@dataclass(frozen=True, slots=True)
class Committed:
    """The reply to a :class:`Commit`."""

    status: CommitStatus
    reason: str = ""
    """The backend's code of a refusal, or the child a ``CHILD_*`` status is about."""
    event_id: str = ""
    """The stored event of the commit (``COMMITTED`` only)."""
    paused: bool = False
    """The commit parked the item (paused, or over a budget): no inline step follows."""
    woke: bool = False
    """The commit made due work that waited on this item (its resources, say) due now."""
    due_ms: float | None = None
    """When the item is due again (backend ms), after a delay."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt to record."""

    item: WorkItem
    error_json: str
    """The error's description (``ErrorInfo`` as JSON)."""
    backoff_ms: int
    terminal: bool
    data: str
    """The event data of a ``dead`` or ``failed`` end."""
    retry_data: str
    """The event data of a retry (it names the delay)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The reply to a :class:`Failure`."""

    status: FailStatus
    reason: str = ""
    woke: bool = False
    """Due work that waited on this item (its resources, say) is due now."""
    due_ms: float | None = None
    """When a retry is due (backend ms)."""


@dataclass(frozen=True, slots=True)
class Released:
    """The reply to a release: whether the item went back (or its cancel was recorded)."""

    released: bool
    woke: bool = False
    """Due work that waited on this item (its resources, say) is due now."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a recovery pass did."""

    requeued: int = 0
    dead: int = 0
    redispatched: int = 0


class ServerClock(Protocol):
    """The backend's clock as this process estimates it (ms)."""

    def now_ms(self) -> float:
        """Best estimate of the backend's clock now."""
        ...

    def server_ms(self, local_ms: float) -> float:
        """The backend's clock at ``local_ms`` (a :func:`time.monotonic` reading in ms)."""
        ...


@dataclass
class Held:
    """An item this worker holds the lease of."""

    work_id: str
    token: str
    epoch: int
    engine: str
    resources: list[str]
    deadline: float
    """Local monotonic time after which the lease must be assumed lost."""
    route: Any
    """The backend's handle on the item's delivery (see :attr:`Acquired.route`)."""
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[tuple[Snapshot, str, float]] | None = None
    lost: bool = False
    cancelled: bool = False
    last_progress: float = 0.0
    records: list[StepRecord] = field(default_factory=list["StepRecord"])
    """Observed step attempts whose outcome is not known yet (none without observers)."""
    waits: tuple[float | None, float | None] = (None, None)
    """How long the item waited queued, and how late it started after its due time (s)."""
    consume: list[str] = field(default_factory=list[str])
    """Ids of the signals the running step received: its commit consumes them."""
    charge: float = 0.0
    """What the running step charged (``StepContext.charge``): committed with it."""

    def interrupt(self) -> None:
        """Tell the running step to stop (it is cancelled)."""
        self.cancel_event.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()


@runtime_checkable
class LeaseStore(Protocol):
    """What a backend does for the :class:`Runner`: the lease and every write under it.

    Every call under a lease names it (token and epoch), and the backend refuses a lapsed
    or foreign one. Commit, fail and release may be sent twice (a reply lost to a broken
    connection): the backend applies them once. A call that cannot be served before the
    lease's deadline raises :class:`StoreUnavailable`.
    """

    @property
    def clock(self) -> ServerClock:
        """The backend's clock, kept in step by the replies that carry it."""
        ...

    async def acquire(self, route: Any, delivery: str, token: str) -> Acquired | float | None:
        """Lease a delivered item under ``token``.

        Returns the lease, or the wait (ms) after which the item is due again (its
        resources are taken), or None when there is nothing to run (the item moved on).
        """
        ...

    async def renew(self, held: Sequence[Held]) -> list[RenewStatus]:
        """Extend the leases of ``held`` in one call; one status each."""
        ...

    async def commit(self, held: Held, commit: Commit) -> Committed:
        """Store a step's snapshot (and what follows it) if ``held`` still holds the lease."""
        ...

    async def fail(self, held: Held, failure: Failure) -> Failed:
        """Record a failed attempt: a retry after the backoff, or the item's end."""
        ...

    async def release(self, held: Held, reason: str, *, deadline: float) -> Released:
        """Give the item back to the front of its queue without using an attempt."""
        ...

    async def progress(self, held: Held, report: str) -> None:
        """Save a step's progress report (JSON) on its item."""
        ...

    async def recover(self) -> Recovered:
        """Hand on the items whose lease expired or whose worker is gone."""
        ...

    async def signals(self, held: Held) -> list[Signal]:
        """The signals sent to the held item that no commit consumed yet, oldest first."""
        ...

    def family(self, item: WorkItem, *, stepping: bool) -> Family:
        """The children part of the step context of ``item``."""
        ...
