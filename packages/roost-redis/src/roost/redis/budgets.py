"""Budgets: a step count, a wall-clock runtime and a cost meter per item.

Limits come from the item (``max_steps``, ``max_runtime``, ``budget``), else from its
engine's attributes of the same names; an operator raises them (``budget.lua``: the meta's
``bsteps``, ``bcost``, ``bruntime`` then win). Spending is committed with the step that spent
it (``commit.lua``): a retried step is not charged twice. An item over a limit after a step
pauses as "budget exceeded" (reason ``budget``) instead of going on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from roost.redis.schema import Meta
from roost.runtime import limits
from roost.runtime.models import Budget, WorkItem

if TYPE_CHECKING:
    from roost.runtime.engine import Engine

__all__ = ["budget_arg", "budget_of", "item_limits"]


def _number(value: object, allowed: limits.Range) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if allowed.contains(float(value)) else None
    return None


def item_limits(item: WorkItem, engine: Engine | None) -> tuple[float, float, float]:
    """(steps, cost, runtime ms) of ``item``, its own else its engine's; -1 for none."""
    steps = (
        item.max_steps
        if item.max_steps is not None
        else _number(getattr(engine, "max_steps", None), limits.MAX_STEPS)
    )
    cost = (
        item.budget
        if item.budget is not None
        else _number(getattr(engine, "budget", None), limits.BUDGET)
    )
    runtime = (
        item.max_runtime
        if item.max_runtime is not None
        else _number(getattr(engine, "max_runtime", None), limits.MAX_RUNTIME)
    )
    return (
        -1 if steps is None else float(steps),
        -1 if cost is None else float(cost),
        -1 if runtime is None else round(runtime * 1000),
    )


def budget_arg(item: WorkItem, engine: Engine | None, charged: float, count: int) -> str:
    """The budget argument of ``commit.lua``: '' when the item has no budget and no charge."""
    steps, cost, runtime_ms = item_limits(item, engine)
    if steps < 0 and cost < 0 and runtime_ms < 0 and not charged:
        return ""
    return json.dumps(
        {"charge": charged, "count": count, "steps": steps, "cost": cost, "runtime_ms": runtime_ms}
    )


def budget_of(h: dict[str, str], item: WorkItem | None) -> Budget | None:
    """An item's budgets and spending from its meta hash (and its own limits, if known)."""
    own = item_limits(item, None) if item is not None else (-1.0, -1.0, -1.0)
    fields = (Meta.BUDGET_STEPS, Meta.BUDGET_COST, Meta.BUDGET_RUNTIME)
    raised = [float(h[f]) if h.get(f) else None for f in fields]
    steps, cost, runtime_ms = (
        r if r is not None else (o if o >= 0 else None) for r, o in zip(raised, own, strict=True)
    )
    if (
        steps is None
        and cost is None
        and runtime_ms is None
        and not h.get(Meta.SPENT)
        and not h.get(Meta.STEPS_TAKEN)
    ):
        return None
    return Budget(
        max_steps=None if steps is None else int(steps),
        budget=cost,
        max_runtime=None if runtime_ms is None else runtime_ms / 1000.0,
        steps=int(h.get(Meta.STEPS_TAKEN) or 0),
        spent=float(h.get(Meta.SPENT) or 0.0),
        exceeded=h.get(Meta.BUDGET_OVER) or None,
    )
