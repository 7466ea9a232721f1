"""Every numeric range Roost accepts, written once.

Numbers are checked before anything is written: a setting out of range stops the process
at start (:class:`~roost.runtime.errors.SettingsError`), a flag out of range is bad input
(exit 2), and an engine that returns an out-of-range value breaks the contract
(:class:`~roost.runtime.errors.EngineContractError`, the item fails at once). The bounds
are generous; they exist so that no value can overflow a timestamp, a backend's argument
or number later, after part of an operation was written. :data:`DOCUMENTED` lists them
with where each applies (the README's table is checked against it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from roost.runtime.errors import BadInput

__all__ = [
    "ATTEMPTS",
    "MAX_PENDING_SIGNALS",
    "MAX_SIGNAL_PAYLOAD",
    "MAX_WAIT_SIGNALS",
    "CHILDREN_PER_STEP",
    "CHILD_DEPTH",
    "CONCURRENCY",
    "DAY",
    "DELAY",
    "DOCUMENTED",
    "EVENTS_MAXLEN",
    "GRACE_PERIOD",
    "HISTORY",
    "INLINE_STEPS",
    "LEASE_TTL",
    "PRIORITY",
    "RETENTION",
    "RETRY_DELAY",
    "SCHEDULE_EVERY",
    "BUDGET",
    "MAX_STEPS",
    "MAX_RUNTIME",
    "SETTING_RANGES",
    "STEP_TIMEOUT",
    "STUCK_AFTER",
    "Range",
    "check_signal_payload",
    "format_seconds",
]

DAY = 86400.0


def format_seconds(seconds: float) -> str:
    """``365d``, ``1h``, ``30s``, ``1ms``: a duration in its largest whole unit."""
    if seconds == 0:
        return "0"
    if not math.isfinite(seconds) or seconds > 1e12:
        return f"{seconds:g}s"
    for size, unit in ((DAY, "d"), (3600.0, "h"), (60.0, "m"), (1.0, "s"), (0.001, "ms")):
        if seconds >= size and math.isclose(seconds / size, round(seconds / size)):
            return f"{round(seconds / size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Range:
    """An inclusive range of allowed values.

    Attributes:
        low: the smallest allowed value.
        high: the largest allowed value.
        seconds: the values are durations in seconds (messages show ``365d``, ``1ms``).
    """

    low: float
    high: float
    seconds: bool = False

    def describe(self) -> str:
        """``between 0 and 365d``: the range in words, for messages and docs."""
        show = format_seconds if self.seconds else _number
        return f"between {show(self.low)} and {show(self.high)}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number inside the range."""
        if isinstance(value, int):  # exact: an int too large for a float is simply too large
            return self.low <= value <= self.high
        return math.isfinite(value) and self.low <= value <= self.high

    def check(self, value: float, name: str) -> float:
        """Return ``value`` if it is inside the range.

        Args:
            value: the number to check.
            name: what it is, for the message (``--delay``, ``ROOST_LEASE_TTL``, ...).

        Raises:
            BadInput: out of range, infinite or NaN (a ``ValueError``, so pydantic validators
                may let it through as a validation error).
        """
        if not self.contains(value):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            shown = shown if len(shown) <= 24 else f"{shown[:21]}..."
            unit = " seconds" if self.seconds else ""
            raise BadInput(f"{name} must be {self.describe()}, not {shown}{unit}")
        return value


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


DELAY = Range(0.0, 365 * DAY, seconds=True)
"""A delayed start or continuation."""
LEASE_TTL = Range(1.0, DAY, seconds=True)
RETRY_DELAY = Range(0.001, 365 * DAY, seconds=True)
"""The backoff base and its cap."""
RETENTION = Range(1.0, 3650 * DAY, seconds=True)
GRACE_PERIOD = Range(0.001, DAY, seconds=True)
STUCK_AFTER = Range(1.0, 7 * DAY, seconds=True)
"""How long a worker's loops may fail before it exits for its supervisor to restart it."""
HEARTBEAT_TIMEOUT = Range(1.0, DAY, seconds=True)
"""How long a worker's heartbeat may be silent before its leases are taken back."""
EVENTS_MAXLEN = Range(1, 1_000_000_000)
HISTORY = Range(0, 1000)
WAIT_REPLICAS = Range(0, 16)
INLINE_STEPS = Range(0, 10_000)
ATTEMPTS = Range(1, 1000)
PRIORITY = Range(-1_000_000, 1_000_000)
CONCURRENCY = Range(1, 10_000)
STEP_TIMEOUT = Range(0.001, DAY, seconds=True)
"""How long one step may run before it is cancelled (an item's or an engine's)."""
MAX_STEPS = Range(1, 1_000_000_000)
"""An item's step budget (steps committed before it pauses as "budget exceeded")."""
MAX_RUNTIME = Range(1.0, 3650 * DAY, seconds=True)
"""An item's wall-clock budget, from its creation (judged by the server's clock)."""
BUDGET = Range(0.0, 1e15)
"""An item's cost budget (what its engine charges: tokens, dollars...)."""
SCHEDULE_EVERY = Range(1.0, 365 * DAY, seconds=True)
"""The interval of a schedule that runs every so often."""
CHILDREN_PER_STEP = Range(0, 1000)
"""Children one step may spawn (they are created by one atomic commit)."""
CHILD_DEPTH = Range(1, 16)
"""How deep children may nest: a child of a top-level item is at depth 1."""

MAX_SIGNAL_PAYLOAD = 65536
"""Bytes of JSON a signal's payload (or an approval's details or note) may take."""
MAX_PENDING_SIGNALS = 1000
"""Signals an item may hold unconsumed; more are refused until a step consumes some."""
MAX_WAIT_SIGNALS = 32
"""Signal names one wait may list."""


def check_signal_payload(value: object, name: str) -> int:
    """Return the size of ``value`` as compact JSON, if at most :data:`MAX_SIGNAL_PAYLOAD`.

    Raises:
        BadInput: the JSON form is larger (or ``value`` is not JSON).
    """
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{name} is not JSON: {exc}") from None
    if size > MAX_SIGNAL_PAYLOAD:
        raise BadInput(f"{name} must be at most {MAX_SIGNAL_PAYLOAD:,} bytes of JSON, not {size:,}")
    return size


DOCUMENTED: list[tuple[str, Range, str]] = [
    ("delay", DELAY, "`enqueue --delay`, `Snapshot.next_step_delay_seconds`"),
    ("lease TTL", LEASE_TTL, "`ROOST_LEASE_TTL`"),
    ("retry delay and its cap", RETRY_DELAY, "`ROOST_RETRY_DELAY`, `ROOST_RETRY_MAX_DELAY`"),
    ("retention", RETENTION, "`ROOST_RETENTION`"),
    ("grace period", GRACE_PERIOD, "`ROOST_GRACE_PERIOD`"),
    ("stuck worker exit", STUCK_AFTER, "`ROOST_STUCK_AFTER`"),
    ("heartbeat timeout", HEARTBEAT_TIMEOUT, "`ROOST_HEARTBEAT_TIMEOUT`"),
    ("event stream length", EVENTS_MAXLEN, "`ROOST_EVENTS_MAXLEN`"),
    ("history", HISTORY, "`ROOST_HISTORY`"),
    ("inline steps", INLINE_STEPS, "`ROOST_INLINE_STEPS`"),
    (
        "attempts",
        ATTEMPTS,
        "`ROOST_MAX_ATTEMPTS`, `enqueue --max-attempts`, `WorkItem.max_attempts`, "
        "an engine's `max_attempts`",
    ),
    ("priority", PRIORITY, "`enqueue --priority`, `WorkItem.priority`"),
    ("concurrency", CONCURRENCY, "`worker --concurrency`"),
    (
        "step timeout",
        STEP_TIMEOUT,
        "`enqueue --step-timeout`, `WorkItem.step_timeout`, an engine's `step_timeout`",
    ),
    ("schedule interval", SCHEDULE_EVERY, "`schedule add --every`"),
    ("step budget", MAX_STEPS, "`enqueue --max-steps`, `WorkItem.max_steps`"),
    ("runtime budget", MAX_RUNTIME, "`enqueue --max-runtime`, `WorkItem.max_runtime`"),
    ("cost budget", BUDGET, "`enqueue --budget`, `WorkItem.budget`, `StepContext.charge`"),
    ("children per step", CHILDREN_PER_STEP, "`StepContext.spawn` (one step's commit)"),
    ("child depth", CHILD_DEPTH, "`StepContext.spawn` (children of children ...)"),
]
"""(what, range, where it applies): the README's table of limits."""

SETTING_RANGES: dict[str, Range] = {
    "lease_ttl": LEASE_TTL,
    "max_attempts": ATTEMPTS,
    "retry_delay": RETRY_DELAY,
    "retry_max_delay": RETRY_DELAY,
    "retention": RETENTION,
    "events_maxlen": EVENTS_MAXLEN,
    "history": HISTORY,
    "wait_replicas": WAIT_REPLICAS,
    "grace_period": GRACE_PERIOD,
    "inline_steps": INLINE_STEPS,
    "stuck_after": STUCK_AFTER,
    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
}
"""``RoostSettings`` field -> its range."""
