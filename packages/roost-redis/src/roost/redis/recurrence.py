"""When a schedule's ticks fall: every so often, or by a cron expression in a timezone.

Ticks are instants in epoch milliseconds. An interval schedule ticks at the multiples of its
interval since the Unix epoch (``every 1h`` on the hour, UTC; ``every 1d`` at 00:00 UTC), so
every worker computes the same ticks with no shared state. A cron schedule ticks when its
expression matches the wall clock of its timezone (UTC unless given); expressions are
evaluated by `cronsim <https://pypi.org/project/cronsim/>`_, which follows Debian's cron,
daylight saving time included: a job whose time is skipped when the clocks go forward runs
right after the change, and one whose time comes twice when they go back runs once. Jobs
that run more often than hourly (``*/15 * * * *``) keep running every 15 minutes of real
time across the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from roost.runtime.errors import BadInput
from roost.runtime.limits import SCHEDULE_EVERY, format_seconds
from roost.runtime.settings import parse_duration

__all__ = ["MAX_CRON_LENGTH", "Recurrence"]

MAX_CRON_LENGTH = 200
MAX_TIMEZONE_LENGTH = 64
_LOOKAHEAD = 5
"""Matches a cron expression may yield at or before the instant asked about (see
:meth:`Recurrence.next_after`) before it is taken for broken."""


def _zone(name: str) -> ZoneInfo:
    if not 0 < len(name) <= MAX_TIMEZONE_LENGTH or not name.isprintable():
        raise BadInput(f"timezone must be an IANA name such as Europe/Berlin, not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(
            f"unknown timezone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None


@dataclass(frozen=True)
class Recurrence:
    """A schedule's rhythm: exactly one of ``cron`` and ``every_ms``.

    Build it with :meth:`parse` (which checks everything); ``timezone`` applies to ``cron``.
    """

    cron: str | None = None
    every_ms: int | None = None
    timezone: str = "UTC"

    @classmethod
    def parse(
        cls, *, cron: str | None = None, every: str | float | None = None, timezone: str | None
    ) -> Recurrence:
        """Check and build a recurrence.

        Args:
            cron: a cron expression: five fields (minute hour day-of-month month
                day-of-week, as Debian's cron), or six with seconds first.
            every: an interval: seconds, or a duration such as ``30s``, ``5m``, ``1h``, ``1d``
                (1 s to 365 days).
            timezone: an IANA timezone for ``cron`` (default UTC).

        Raises:
            BadInput: neither or both of ``cron`` and ``every``, a malformed expression or
                duration, an interval out of range, an unknown timezone, a timezone with
                ``every``, or an expression that never matches.
        """
        if (cron is None) == (every is None):
            raise BadInput("give exactly one of cron and every")
        if every is not None:
            if timezone is not None:
                raise BadInput("a timezone applies to cron schedules only")
            try:
                seconds = parse_duration(every) if isinstance(every, str) else float(every)
            except ValueError as exc:
                raise BadInput(f"every: {exc}") from None
            SCHEDULE_EVERY.check(seconds, "every")
            every_ms = round(seconds * 1000)
            if not math.isclose(every_ms / 1000, seconds, abs_tol=1e-9):
                raise BadInput(f"every must be a whole number of milliseconds, not {seconds}")
            return cls(every_ms=every_ms)
        assert cron is not None
        expr = " ".join(cron.split())
        if not 0 < len(expr) <= MAX_CRON_LENGTH or not expr.isprintable():
            raise BadInput(f"cron expression must have 1-{MAX_CRON_LENGTH} printable characters")
        recurrence = cls(cron=expr, timezone=timezone or "UTC")
        zone = _zone(recurrence.timezone)
        try:
            it = CronSim(expr, datetime.now(zone))
            next(it)
        except CronSimError as exc:
            raise BadInput(f"cron expression {expr!r}: {exc}") from None
        except StopIteration:
            raise BadInput(f"cron expression {expr!r} never matches") from None
        except Exception as exc:  # the parser's own errors on input it did not foresee
            raise BadInput(f"cron expression {expr!r}: {type(exc).__name__}: {exc}") from None
        return recurrence

    def next_after(self, ms: int) -> int | None:
        """The first tick strictly after ``ms`` (epoch ms), or None if there is none."""
        if self.every_ms is not None:
            return (ms // self.every_ms + 1) * self.every_ms
        assert self.cron is not None
        start = datetime.fromtimestamp(ms / 1000.0, _zone(self.timezone))
        it = CronSim(self.cron, start)
        for _ in range(_LOOKAHEAD):
            try:
                tick = round(next(it).timestamp() * 1000)
            except StopIteration:
                return None
            # cronsim starts from the whole second before ``ms``; with its daylight saving
            # handling a match can map back to an instant already past: take the next one.
            if tick > ms:
                return tick
        return None

    def describe(self) -> str:
        """``every 30s`` or ``cron 0 9 * * 1-5 (Europe/Berlin)``."""
        if self.every_ms is not None:
            return f"every {format_seconds(self.every_ms / 1000)}"
        return f"cron {self.cron} ({self.timezone})"
