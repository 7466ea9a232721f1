"""Child work: what a step spawns, what it waits for, what its next step receives.

A step spawns children through its :class:`~roost.runtime.context.StepContext`
(``ctx.spawn(...)``) and may end by waiting for them (``ctx.wait_for_children(...)``).
Nothing is written while the step runs: the children are created by the step's commit, so
they exist if and only if that commit is accepted. A later step reads each child's
outcome with ``await ctx.children()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from roost.runtime import limits
from roost.runtime.errors import EngineContractError
from roost.runtime.models import ChildOf, ErrorInfo, WorkItem, WorkState

__all__ = ["ChildOutcome", "Family", "WaitFor", "no_children"]

WaitFor = int | Literal["all", "any"]
"""What a parent waits for: ``"all"`` its children, ``"any"`` one of them, or a number.

Counts are of finished children (done, failed, dead or cancelled) among all the children
the item spawned so far: ``"any"`` is 1, ``"all"`` is how many there are, and a number
larger than that is clamped to it.
"""


class ChildOutcome(BaseModel):
    """What a parent learns about one child.

    Attributes:
        work_id: the child's work id.
        engine: the child's engine.
        state: the child's state now (``done``, ``dead``, ... once finished).
        finished: whether the child has finished.
        data: the child's latest snapshot data, or the keys of it the parent declared
            (``keep``); empty before the child's first step.
        artifact_ids: ids of the artifacts in the child's latest snapshot.
        error: the child's last error, if it has one (a ``dead`` child always does).
    """

    work_id: str
    engine: str
    state: WorkState
    finished: bool
    data: dict[str, Any] = Field(default_factory=dict[str, Any])
    artifact_ids: list[str] = Field(default_factory=list[str])
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        """True once the child is ``done``."""
        return self.state == WorkState.DONE


async def no_children() -> list[ChildOutcome]:
    """The children loader of a context that has none (the in-memory harness)."""
    return []


@dataclass
class Family:
    """A step's children: the ones it spawns and what it waits for (kept by the runtime).

    Attributes:
        work_id: the item whose step this is.
        depth: its own depth (0 for a top-level item).
        spawning: whether the step may spawn (not in ``init_snapshot``).
        spawned: the children the step spawned, in order (created by its commit).
        wait: what the step waits for when it ends, or None.
        load: reads the outcomes of the item's children (set by the runtime).
        name: gives each child its work id (set by the backend), or None.
    """

    work_id: str = ""
    depth: int = 0
    spawning: bool = True
    spawned: list[WorkItem] = field(default_factory=list[WorkItem])
    wait: WaitFor | None = None
    load: Callable[[], Awaitable[list[ChildOutcome]]] = no_children
    name: Callable[[WorkItem], str] | None = None
    """Gives a new child its work id (set by a backend whose ids say where items live);
    raises :class:`EngineContractError` for a child it cannot place. None: a random id."""

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
        """Add a child to this step's commit; see :meth:`StepContext.spawn`."""
        if not self.spawning:
            raise EngineContractError("children are spawned by step(), not init_snapshot()")
        if len(self.spawned) >= limits.CHILDREN_PER_STEP.high:
            raise EngineContractError(
                f"a step may spawn at most {int(limits.CHILDREN_PER_STEP.high)} children"
            )
        depth = self.depth + 1
        if depth > limits.CHILD_DEPTH.high:
            raise EngineContractError(
                f"children nest at most {int(limits.CHILD_DEPTH.high)} deep; "
                f"{self.work_id} is at depth {self.depth}"
            )
        try:
            item = WorkItem(
                engine=engine,
                payload=dict(payload or {}),
                resources=list(resources),
                idempotency_key=idempotency_key,
                priority=priority,
                max_attempts=max_attempts,
                child_of=ChildOf(
                    parent_id=self.work_id,
                    depth=depth,
                    keep=None if keep is None else [str(k) for k in keep],
                ),
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise EngineContractError(f"invalid child {where}: {err['msg']}") from None
        keys = [c.idempotency_key for c in self.spawned if c.idempotency_key]
        if item.idempotency_key is not None and item.idempotency_key in keys:
            raise EngineContractError(
                f"two children of one step share idempotency key {item.idempotency_key!r}"
            )
        if self.name is not None:
            item = item.model_copy(update={"work_id": self.name(item)})
        self.spawned.append(item)
        return item.work_id

    def wait_for(self, what: WaitFor) -> None:
        """Make the step end by waiting; see :meth:`StepContext.wait_for_children`."""
        valid = what in ("all", "any") if isinstance(what, str) else what >= 1
        if isinstance(what, bool) or not valid:
            raise EngineContractError(
                f"wait for 'all', 'any' or a number of children >= 1, not {what!r}"
            )
        self.wait = what
