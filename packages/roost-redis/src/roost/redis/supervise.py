"""Supervision of a worker's loops: a failure is logged once, backed off and outlived.

Every background loop of a worker (lease renewal, promotion, maintenance, heartbeat, event
sinks), its dispatcher and its step handlers report each pass to a :class:`Loop`. A pass that
raises is never the end of the loop: the error is classified (an outage of Redis, or an
unexpected failure), logged once per kind with its traceback when unexpected, and the pass is
tried again after an exponential backoff. The worker's :class:`Health` says which loops fail
and since when; the heartbeat publishes it, and a worker whose loops have failed for longer
than ``ROOST_STUCK_AFTER`` gives up (exits non-zero) so that its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import NoScriptError

from roost.redis.faults import describe, error_code, is_missing_function, is_outage
from roost.runtime.errors import RoostError
from roost.runtime.stores import StoreUnavailable

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_MIN",
    "OUTAGE_BACKOFF_MAX",
    "Health",
    "Loop",
    "RedisUnavailable",
    "WorkerStuck",
    "raise_if_cancelling",
    "retry_outages",
    "supervise",
    "watch",
]

log = logging.getLogger("roost.worker")

BACKOFF_MIN = 0.05
BACKOFF_MAX = 5.0
OUTAGE_BACKOFF_MAX = 1.0
"""The longest wait between passes failing on an outage: when it ends, every loop is back
within a second. (Faults in a row once kept the promoter away for 27 s at 5 s steps, and the
delayed items it owns with it.)"""
RELOG_AFTER = 300.0
"""A kind of failure seen again after this long without it is logged again."""
RETRY_MAX = 2.0
"""A call that holds a lease retries more often: its lease keeps running meanwhile."""
T = TypeVar("T")


class RedisUnavailable(StoreUnavailable):
    """Redis could not serve a call (an outage) before the caller's deadline."""


class WorkerStuck(RoostError):
    """The worker made no progress for ``ROOST_STUCK_AFTER`` and stopped (exit non-zero)."""


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that arrived disguised as a timeout.

    On Python 3.11, a cancel that lands while redis-py waits inside ``asyncio.wait_for`` or
    ``asyncio.timeout`` can come out as ``TimeoutError``, which a loop would take for an
    outage; a stopping worker then waited forever for that loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _kind(exc: BaseException) -> str:
    return f"{type(exc).__name__}:{error_code(exc) or ''}"


class Loop:
    """The health of one supervised loop: whether its last pass failed, since when, and why."""

    def __init__(self, name: str, health: Health) -> None:
        self.name = name
        self._health = health
        self.failing_since: float | None = None
        """Monotonic time of the first failure of the current streak (None: healthy)."""
        self.problem: str | None = None
        self.failures = 0
        self._backoff = BACKOFF_MIN
        self.max_backoff = BACKOFF_MAX
        """The longest wait between failed passes (the heartbeat keeps it short)."""
        self._logged: dict[str, float] = {}
        """Kinds of unexpected failure, with when they last happened (logged once each)."""
        self._said = False
        self.retrying = 0
        """Calls of this loop retrying through an outage now (:func:`retry_outages`)."""

    def ok(self) -> None:
        """Record a pass that went through."""
        if self.failing_since is None:
            return
        if self._said:
            log.warning(
                "%s: working again after %.1fs (%d failed passes)",
                self.name,
                time.monotonic() - self.failing_since,
                self.failures,
            )
        self.clear()

    def failed(self, exc: BaseException) -> float:
        """Record a failed pass, log it (see :meth:`report`), and return how long to back off.

        A missing script or function library is retried at once: it is loaded again.
        """
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            self._health.changed.set()
        self.failures += 1
        self.problem = describe(exc)
        self.report(exc)
        if isinstance(exc, NoScriptError) or is_missing_function(exc):
            return 0.0
        cap = min(self.max_backoff, OUTAGE_BACKOFF_MAX) if is_outage(exc) else self.max_backoff
        delay = min(self._backoff, cap)
        self._backoff = min(self._backoff * 2, self.max_backoff)
        return delay

    def report(self, exc: BaseException) -> None:
        """Log a failure, without recording a failed pass.

        An outage is a warning, once per streak of failed passes. Anything else is an error
        with its traceback, logged again only after RELOG_AFTER without it, so a loop that
        fails now and then on the same cause says so once.
        """
        if is_outage(exc):
            if self.failures <= 1:
                self._said = True
                log.warning("%s: %s; retrying", self.name, describe(exc))
            return
        kind, now = _kind(exc), time.monotonic()
        if now - self._logged.get(kind, -RELOG_AFTER) >= RELOG_AFTER:
            self._said = True
            log.error("%s failed: %s", self.name, describe(exc), exc_info=exc)
        self._logged[kind] = now

    def clear(self) -> None:
        """Forget the current streak without a word (nothing is retrying any more)."""
        if self.failing_since is not None:
            self.failing_since = self.problem = None
            self.failures = 0
            self._backoff = BACKOFF_MIN
            self._said = False
            self._health.changed.set()

    async def backoff(self, exc: BaseException) -> None:
        """:meth:`failed`, then sleep for the backoff (a cancel is never taken for a failure)."""
        raise_if_cancelling()
        await asyncio.sleep(self.failed(exc))


class Health:
    """The loops of one worker, and whether any of them has been failing."""

    def __init__(self) -> None:
        self.loops: dict[str, Loop] = {}
        self.changed = asyncio.Event()
        """Set when a loop starts or stops failing (the heartbeat publishes it early)."""

    def loop(self, name: str) -> Loop:
        """The loop called ``name`` (created on first use)."""
        if name not in self.loops:
            self.loops[name] = Loop(name, self)
        return self.loops[name]

    def failing(self) -> list[Loop]:
        """The loops whose last pass failed, longest failing first."""
        bad = [loop for loop in self.loops.values() if loop.failing_since is not None]
        return sorted(bad, key=lambda loop: loop.failing_since or 0.0)

    def problem(self) -> str | None:
        """One line about the loop failing longest, or None when healthy."""
        bad = self.failing()
        if not bad:
            return None
        first = bad[0]
        since = time.monotonic() - (first.failing_since or 0.0)
        more = f" (and {len(bad) - 1} more loops)" if len(bad) > 1 else ""
        return f"{first.name} failing for {since:.0f}s: {first.problem}{more}"

    def stuck_for(self) -> float:
        """How long the loop failing longest has been failing (0 when healthy)."""
        bad = self.failing()
        return time.monotonic() - (bad[0].failing_since or 0.0) if bad else 0.0


async def supervise(
    loop: Loop, body: Callable[[], Awaitable[float | None]], running: Callable[[], bool]
) -> None:
    """Run passes of ``body`` while ``running()``; a pass that raises is retried after a backoff.

    ``body`` returns how long to wait before the next pass, or None to end the loop.
    """
    while running():
        try:
            delay = await body()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await loop.backoff(exc)
            continue
        loop.ok()
        if delay is None:
            return
        if delay > 0:
            await asyncio.sleep(delay)


async def retry_outages(
    loop: Loop,
    call: Callable[[], Awaitable[T]],
    *,
    deadline: float | None,
    giving_up: Callable[[], bool],
) -> T:
    """Run ``call()`` until Redis serves it; only outages are retried, each after a backoff.

    Raises:
        RedisUnavailable: an outage lasted past ``deadline`` (monotonic), or ``giving_up()``
            became true while Redis was unavailable.
    """
    backoff = BACKOFF_MIN
    failing = False
    try:
        while True:
            try:
                result = await call()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                raise_if_cancelling()
                if (deadline is not None and time.monotonic() > deadline) or giving_up():
                    raise RedisUnavailable(describe(exc)) from exc
                if not failing:
                    failing = True
                    loop.retrying += 1
                # The loop records and logs it; this call keeps its own, shorter backoff.
                if loop.failed(exc) > 0:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_MAX)
                continue
            loop.ok()
            return result
    finally:
        if failing:
            loop.retrying -= 1
            if not loop.retrying:
                loop.clear()  # the calls that failed gave up: no pass is failing now


async def watch(health: Health, limit: float, give_up: Callable[[str], None]) -> None:
    """Call ``give_up(reason)`` once some loop has been failing for longer than ``limit``.

    It never talks to Redis, so nothing it depends on can fail with the loops it watches.
    """
    while True:
        await asyncio.sleep(min(1.0, limit / 4))
        stuck = health.stuck_for()
        if stuck > limit:
            reason = f"no progress for {stuck:.0f}s (ROOST_STUCK_AFTER={limit:g}s)"
            give_up(f"{reason}: {health.problem()}")
            return
