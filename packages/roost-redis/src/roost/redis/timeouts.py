"""Step timeouts: a step running longer than its limit is cancelled and its attempt fails.

The limit is the item's ``step_timeout``, else its engine's ``step_timeout`` attribute, else
none. A timed-out step is cancelled (``CancelledError`` at its next ``await``) and given
:data:`CANCEL_WAIT` to end; the attempt then fails with :class:`StepTimeout` and is retried
like any failure. A step that does not end when cancelled (it blocks in a thread or a C
call, or swallows the cancel) is reported and abandoned: the failure is recorded all the
same, which lets go of the lease and the resource claims, so the retry runs elsewhere while
the abandoned step's later result is ignored (its commit could not be accepted anyway).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from roost.runtime import limits
from roost.runtime.errors import StepTimeout

if TYPE_CHECKING:
    from roost.redis.holder import Held
    from roost.runtime.engine import Engine
    from roost.runtime.models import WorkItem

__all__ = ["CANCEL_WAIT", "step_limit", "wait_step"]

log = logging.getLogger("roost.worker")

CANCEL_WAIT = 2.0
"""How long a timed-out step has to end once cancelled before it is abandoned."""


def step_limit(engine: Engine, item: WorkItem) -> float | None:
    """The step timeout of ``item``: its own, else its engine's (an invalid one is ignored)."""
    if item.step_timeout is not None:
        return item.step_timeout
    value = getattr(engine, "step_timeout", None)
    if isinstance(value, int | float) and limits.STEP_TIMEOUT.contains(float(value)):
        return float(value)
    return None


async def wait_step(held: Held, limit: float | None) -> StepTimeout | None:
    """Wait for the step of ``held`` to end; cancel it after ``limit`` seconds.

    Returns None once the step ended by itself (or was interrupted by the runtime), or the
    :class:`StepTimeout` to fail its attempt with.
    """
    task = held.task
    assert task is not None
    if limit is None:
        await asyncio.wait({task})
        return None
    _done, pending = await asyncio.wait({task}, timeout=limit)
    if not pending or held.cancel_event.is_set():
        await asyncio.wait({task})
        return None
    shown = limits.format_seconds(limit)
    task.cancel()
    _done, pending = await asyncio.wait({task}, timeout=CANCEL_WAIT)
    if not pending:
        if not task.cancelled() and task.exception() is None:
            return None  # it returned just as it timed out: its result stands
        return StepTimeout(f"the step ran longer than its step timeout ({shown}); cancelled")
    log.error(
        "work %s: the step ran longer than its step timeout (%s) and did not stop when "
        "cancelled (a thread or a blocking call?); abandoned, and its lease let go",
        held.work_id,
        shown,
    )
    task.add_done_callback(_forget)
    return StepTimeout(
        f"the step ran longer than its step timeout ({shown}) and did not stop when "
        f"cancelled within {CANCEL_WAIT:g}s; abandoned"
    )


def _forget(task: asyncio.Task[object]) -> None:
    """Retrieve an abandoned step's outcome, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()
