"""What each Roost script answers, typed: one dataclass per script.

A reply's fields are named as in the script's header (``REPLY CODE: fields``); the fields a
code does not carry keep their defaults. :func:`roost.redis.contract.decode` fills them.
They are plain (mutable) slotted dataclasses: one is made on every script call, and a frozen
one costs several times as much to build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.redis.contract import Code

__all__ = [
    "AcquireReply",
    "BudgetReply",
    "CommitReply",
    "CountReply",
    "DequeueReply",
    "EnqueueReply",
    "FailReply",
    "HoldReply",
    "MigrateReply",
    "PromoteReply",
    "PurgeReply",
    "ReclaimReply",
    "RecoverReply",
    "ScanReply",
    "ScheduleReply",
    "ReleaseReply",
    "RenewReply",
    "ReplayReply",
    "SignalReply",
    "StateReply",
]


@dataclass(slots=True)
class AcquireReply:
    """``acquire``: the lease granted (OK), or why not."""

    code: Code
    epoch: int = 0
    lease_expires: float = 0.0
    """When the lease expires (server ms)."""
    now: float = 0.0
    """The server's clock (ms) when the script ran."""
    attempt: int = 0
    version: int = 0
    item_json: str = ""
    snap_json: str = ""
    """The latest snapshot ('' for none yet)."""
    cancelled: bool = False
    queued_since: float | None = None
    """When the item was last queued (server ms)."""
    late_due: float | None = None
    """The due time the item was promoted from (server ms), if it was."""
    state: str = ""
    """SKIP: the state the item is in."""
    resources: str = ""
    """NEEDRES: the item's resources, space-joined."""
    delay_ms: float = 0.0
    """WAIT: when to look at the item again."""


@dataclass(slots=True)
class CommitReply:
    """``commit``: the committed version (OK), or why nothing was written."""

    code: Code
    version: int = 0
    """OK: the new version; CONFLICT: the stored one."""
    event_id: str = ""
    woken: int = 0
    """Waiters of freed resources (and parents) woken."""
    now: float = 0.0
    due_ms: float = 0.0
    """With a delay: when the next step is due (server ms)."""
    paused: bool = False
    child: str = ""
    """TAKEN: the child's work id."""
    key: str = ""
    """RACE: the idempotency key that changed hands."""


@dataclass(slots=True)
class FailReply:
    """``fail``: what became of the item, or why nothing was written."""

    code: Code
    due_ms: float = 0.0
    """RETRYING: when the next attempt is due (server ms)."""
    woken: int = 0


@dataclass(slots=True)
class ReleaseReply:
    """``release``: the item went back on the queue (OK), or why not."""

    code: Code
    woken: int = 0


@dataclass(slots=True)
class StateReply:
    """``cancel``, ``pause``, ``progress``, ``resume``, ``retry``: the code and a state."""

    code: Code
    previous: str = ""
    """OK (cancel, pause, retry): the state the item was in."""
    state: str = ""
    """TERMINAL, ALREADY, CONFLICT: the item's state; OK (resume): the state it went back to."""


@dataclass(slots=True)
class ReplayReply:
    """``replay``: the version the item runs from (OK), or why not."""

    code: Code
    version: int = 0
    state: str = ""


@dataclass(slots=True)
class SignalReply:
    """``signal``: the signal's id and whether it woke the item, or why it was refused."""

    code: Code
    signal_id: str = ""
    state: str = ""
    pending: int = 0


@dataclass(slots=True)
class BudgetReply:
    """``budget``: the limits now (-1: none), or why nothing was raised."""

    code: Code
    steps: float = -1.0
    cost: float = -1.0
    runtime_ms: float = -1.0
    state: str = ""


@dataclass(slots=True)
class RenewReply:
    """``renew``: the server's clock and a status per lease (OK, CANCELLED or LOST)."""

    now: float
    statuses: list[str] = field(default_factory=list[str])


@dataclass(slots=True)
class EnqueueReply:
    """``enqueue``: per item, its work id and 1 when created (0: an existing one)."""

    items: list[tuple[str, int]] = field(default_factory=list[tuple[str, int]])


@dataclass(slots=True)
class DequeueReply:
    """``dequeue``: the job ids taken."""

    jobs: list[str] = field(default_factory=list[str])


@dataclass(slots=True)
class CountReply:
    """``undeliver``: how many deliveries were put back."""

    count: int = 0


@dataclass(slots=True)
class HoldReply:
    """``hold``: whether the key still named its holder (it was renewed or let go)."""

    held: int = 0


@dataclass(slots=True)
class PurgeReply:
    """``purge``: how many items were deleted."""

    deleted: int = 0


@dataclass(slots=True)
class MigrateReply:
    """``migrate``: deliveries moved and dropped."""

    moved: int = 0
    dropped: int = 0


@dataclass(slots=True)
class PromoteReply:
    """``promote``: items queued, the next due time (-1: none), the server's clock."""

    queued: int = 0
    next_due: float = -1.0
    now: float = 0.0


@dataclass(slots=True)
class ReclaimReply:
    """``reclaim``: deliveries re-dispatched and cleaned up."""

    redispatched: int = 0
    cleaned: int = 0


@dataclass(slots=True)
class RecoverReply:
    """``recover``: items requeued, dead, waiters woken; ``alive``: the holder beat again."""

    requeued: int = 0
    dead: int = 0
    woken: int = 0
    alive: bool = False


@dataclass(slots=True)
class ScanReply:
    """``scan`` (schedules): the server's clock, the missed mark, the next tick, due rows."""

    now: int = 0
    missed: str = ""
    next_tick: float | None = None
    rows: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    """(name, tick) of each due schedule."""


@dataclass(slots=True)
class ScheduleReply:
    """``decide``, ``advance``, ``save``, ``edit`` (schedules): the code and its fields."""

    code: Code
    outcome: str = ""
    """DECIDED: what the tick does ('fired', 'fired-missed', 'skipped-...')."""
    mark: str = ""
    """DECIDED: the missed mark ('' unless the tick was missed)."""
    next_tick: float | None = None
    """MOVED (decide): the schedule's next tick (None: it never matches again)."""
    created: bool = False
    """OK (save): created (else replaced)."""
