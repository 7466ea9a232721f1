"""The engine contract: two async methods, built by a factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from roost.runtime.models import Snapshot, WorkItem

__all__ = ["Engine", "EngineFactory"]


@runtime_checkable
class Engine(Protocol):
    """What a user brings: domain-specific state transitions.

    Roost calls ``init_snapshot`` once for a new work item and then ``step`` until a
    snapshot says ``is_finished``. Execution is at-least-once: ``step`` may run more than
    once from the same snapshot (after a crash, a lost lease or a failure), so it must be
    safe to retry. Roost saves the returned snapshot atomically; an engine never writes
    to the backend itself. What else a step needs (artifact store, workspace directory,
    progress reporting, cancellation) comes from :func:`roost.runtime.step_context`.
    """

    engine_id: str

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Return the first snapshot of a new work item (Roost stores it as version 1)."""
        ...

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """Advance by one step and return the new snapshot (do not mutate the argument)."""
        ...


EngineFactory = Callable[..., Engine]
"""A callable ``build_engine(**kwargs) -> Engine``, as exposed through entry points."""
