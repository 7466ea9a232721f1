"""The step context: what a running step can reach besides its two arguments.

Inside ``Engine.step`` (and ``init_snapshot``) call :func:`step_context` to get the
artifact store, the item's workspace directory, progress reporting and cancellation::

    from roost.runtime import step_context

    async def step(self, snapshot, item):
        ctx = step_context()
        artifact = await ctx.put_artifact({"verdict": "ok"}, kind="json")
        ...
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.runtime.children import Family
from roost.runtime.errors import BadInput
from roost.runtime.models import APPROVAL_SIGNAL, Signal
from roost.runtime.workspace import workspace_dir

if TYPE_CHECKING:
    from roost.runtime.children import ChildOutcome, WaitFor
    from roost.runtime.models import Artifact, Lease
    from roost.runtime.stores import ArtifactStore

__all__ = ["ProgressReporter", "StepContext", "step_context", "use_step_context"]

ProgressReporter = Callable[[float | None, str | None, dict[str, Any]], Awaitable[None]]
"""``report(fraction, message, data)``: how a runner publishes a step's progress."""


async def _no_progress(fraction: float | None, message: str | None, data: dict[str, Any]) -> None:
    return None


@dataclass
class StepContext:
    """Everything a running step may use besides its snapshot and work item.

    Attributes:
        work_id: the item being stepped.
        version: the version of the snapshot the step starts from (0 for ``init_snapshot``).
        attempt: 1 for the first attempt of this step, 2 for the first retry, ...
        worker_id: the worker running the step.
        artifacts: the artifact store (content-addressed; see :meth:`put_artifact`).
        workspace_root: parent of per-item workspace directories.
        lease: the lease the step runs under (``None`` in the in-memory harness).
        signals: what arrived for the wait the previous step asked for (oldest first); they
            are consumed by this step's commit (a failed attempt leaves them for the retry).
        wait_timed_out: the previous step waited with a timeout and none of its signals
            arrived in time.
        family: the children this step spawns and waits for (see :meth:`spawn`).
    """

    work_id: str
    version: int
    attempt: int
    worker_id: str
    artifacts: ArtifactStore
    workspace_root: Path
    lease: Lease | None = None
    report: ProgressReporter = _no_progress
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    signals: list[Signal] = field(default_factory=list[Signal])
    wait_timed_out: bool = False
    charged: float = 0.0
    """What this step charged so far (:meth:`charge`); committed with the step."""

    def charge(self, amount: float) -> None:
        """Charge ``amount`` (tokens, dollars...) to the item's cost budget.

        The charge is committed with the step: a step that fails or is retried is not
        charged twice. When the item's spending reaches its ``budget``, it pauses as
        "budget exceeded" after this step.

        Raises:
            ValueError: ``amount`` is negative, infinite or NaN.
        """
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"charge must be a finite amount >= 0, not {amount!r}")
        self.charged += float(amount)

    @property
    def approval(self) -> Signal | None:
        """The decision on the approval the previous step asked for, or None (timed out).

        Its payload holds ``decision`` (``"approved"`` or ``"rejected"``) and ``note``.
        """
        found = [s for s in self.signals if s.name == APPROVAL_SIGNAL]
        return found[-1] if found else None

    @property
    def approved(self) -> bool:
        """True when the approval the previous step asked for was given."""
        decision = self.approval
        return decision is not None and decision.payload.get("decision") == "approved"

    family: Family = field(default_factory=Family)

    @property
    def workspace(self) -> Path:
        """This item's scratch directory, created on first use. It outlives the step.

        One directory directly under ``workspace_root`` per work id, whatever characters
        the id holds (see :func:`roost.runtime.workspace.workspace_name`).
        """
        path = workspace_dir(self.workspace_root, self.work_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def cancelled(self) -> bool:
        """True once an operator cancelled the item or the lease was lost.

        A long step should check it between units of work and return early; its commit
        will be refused anyway.
        """
        return self.cancel_event.is_set()

    async def progress(
        self, fraction: float | None = None, message: str | None = None, **data: Any
    ) -> None:
        """Publish progress of the running step (shown by ``roost status`` and the console).

        Args:
            fraction: completion between 0 and 1, if known.
            message: a short human-readable line.
            **data: small JSON-serializable extras.
        """
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        await self.report(fraction, message, data)

    async def put_artifact(
        self,
        content: bytes | str | dict[str, Any] | list[Any],
        *,
        kind: str,
        metadata: dict[str, Any] | None = None,
    ) -> Artifact:
        """Store ``content`` in the artifact store and return its :class:`Artifact`.

        ``dict`` and ``list`` content is written as indented JSON, ``str`` as UTF-8. Add the
        returned artifact to ``snapshot.artifacts`` so it shows in the item's status.

        Raises:
            BadInput: ``dict``/``list`` content that is not JSON (NaN, objects, ...), or what
                the store refuses (an invalid kind, metadata that is not JSON).
        """
        if isinstance(content, dict | list):
            try:
                text = json.dumps(content, indent=2, sort_keys=True, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"artifact content is not JSON: {exc}") from None
            data = text.encode()
        elif isinstance(content, str):
            data = content.encode()
        else:
            data = content
        return await self.artifacts.put(data, kind=kind, metadata=metadata)

    def spawn(
        self,
        engine: str,
        payload: Mapping[str, Any] | None = None,
        *,
        resources: Sequence[str] = (),
        idempotency_key: str | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        keep: Sequence[str] | None = None,
    ) -> str:
        """Spawn a child work item with this step's commit; return its work id.

        Nothing is written now: the child is created by the commit of this step, so it
        exists if and only if that commit is accepted (a step that raises, or whose lease
        lapsed, spawns nothing). The child runs in this item's queue. With an
        ``idempotency_key`` that already names an item, that item becomes the child
        (unless it is another parent's or has children of its own: the step then fails).

        Args:
            engine: the child's engine.
            payload: the child's payload (a JSON object).
            resources: resources the child holds during its steps.
            idempotency_key: the same key always yields the same child.
            priority: the child's priority.
            max_attempts: the child's attempts per step.
            keep: the keys of the child's final ``data`` this item receives (default all).

        Raises:
            EngineContractError: too many children in one step, too deep, an invalid
                name or payload, or called from ``init_snapshot``; the step fails.
        """
        return self.family.spawn(
            engine,
            payload,
            resources=resources,
            idempotency_key=idempotency_key,
            priority=priority,
            max_attempts=max_attempts,
            keep=keep,
        )

    def wait_for_children(self, what: WaitFor = "all") -> None:
        """End this step by waiting for children, without holding a lease.

        After the commit the item is ``awaiting`` until enough of its children (all those
        spawned so far, this step's included) have finished: ``"all"``, ``"any"`` (one)
        or a number. Then its next step runs and reads the outcomes with
        :meth:`children`. A child that ends dead, failed or cancelled counts as finished:
        the parent decides what to do about it. If enough have already finished, the next
        step follows at once. A finished snapshot (``is_finished``) does not wait.
        """
        self.family.wait_for(what)

    async def children(self) -> list[ChildOutcome]:
        """The outcomes of every child this item spawned (in earlier steps), in spawn order."""
        return await self.family.load()


_current: ContextVar[StepContext] = ContextVar("roost_step_context")


def step_context() -> StepContext:
    """Return the context of the step running in this task.

    Raises:
        RuntimeError: called outside ``init_snapshot``/``step``.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "step_context() is only available inside Engine.init_snapshot or Engine.step"
        ) from None


@contextmanager
def use_step_context(ctx: StepContext) -> Generator[StepContext]:
    """Make ``ctx`` the current step context for the duration of the block (for runners)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
