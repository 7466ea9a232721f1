"""Async store contracts that backends implement.

:class:`ArtifactStore` is implemented by the built-in file store and by plugins (by URL
scheme). :class:`WorkStore` is the core of the operator API
(:class:`roost.runtime.backends.WorkBackend` adds the rest) that the conformance suite drives.
:data:`EventSink` receives runtime events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from roost.runtime.models import (
        Artifact,
        RuntimeEvent,
        WorkItem,
        WorkMeta,
        WorkPage,
        WorkState,
        WorkStatus,
    )

__all__ = ["ArtifactStore", "ArtifactStoreFactory", "EventSink", "WorkStore"]


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
"""``async sink(event)``: receives each runtime event the process emits, after it is stored.

A sink that raises is logged and skipped; it never fails a step.
"""


@runtime_checkable
class WorkStore(Protocol):
    """The operator API over durable work that every backend offers."""

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
