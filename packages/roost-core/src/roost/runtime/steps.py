"""One step attempt: calling the engine under its step context, its timeout, what escapes it.

:class:`roost.runtime.runner.Runner` starts each attempt as a task running
:func:`call_step`, waits for it with :func:`wait_step` (which cancels it after
:func:`step_limit`), and fails the attempt with whatever it raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from roost.runtime import limits
from roost.runtime.context import StepContext, use_step_context
from roost.runtime.contract import accept
from roost.runtime.errors import StepTimeout

if TYPE_CHECKING:
    from roost.runtime.engine import Engine
    from roost.runtime.models import Snapshot, WorkItem
    from roost.runtime.stores import Held

__all__ = ["CANCEL_WAIT", "StepEscaped", "call_step", "step_limit", "wait_step"]

log = logging.getLogger("roost.worker")

CANCEL_WAIT = 2.0
"""How long a timed-out step has to end once cancelled before it is abandoned."""


class StepEscaped(Exception):  # noqa: N818 (it carries, it is not an error of its own)
    """Carries a ``BaseException`` an engine raised (``SystemExit``, ``KeyboardInterrupt``...).

    Raised out of the step's task in its place, so that it fails that attempt only: it never
    reaches the event loop (where ``SystemExit`` and ``KeyboardInterrupt`` end the process) and
    is never taken for the runtime's own cancel.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__qualname__}: {original}")
        self.original = original


async def call_step(
    ctx: StepContext, engine: Engine, item: WorkItem, snap: Snapshot | None, version: int
) -> tuple[Snapshot, str, float]:
    """Run init_snapshot or step under the step context; check the result as ``version``.

    Returns the accepted snapshot (a fresh copy), the JSON text to commit and the
    time the engine returned (monotonic ms). Whatever the engine raises fails this
    attempt only: a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``,
    ``GeneratorExit``, a ``CancelledError`` the runtime did not ask for) comes out as
    :class:`StepEscaped`; only the runtime's own cancel comes out as a cancel.
    """
    with use_step_context(ctx):
        try:
            if snap is None:
                result: object = await engine.init_snapshot(item)
            else:
                result = await engine.step(snap, item)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise StepEscaped(exc) from exc
        except Exception:
            raise
        except BaseException as exc:
            raise StepEscaped(exc) from exc
        ended = time.monotonic() * 1000.0
        return (*accept(result, item, version=version, previous=snap), ended)


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
