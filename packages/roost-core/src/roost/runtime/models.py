"""The wire format: work items, snapshots, leases, artifacts and runtime events.

Every model here is a pydantic model serialized as JSON. Field names follow the public
contract (``work_id``, ``engine``, ``payload``, ``resources``, ``priority``,
``idempotency_key``; ``step``, ``data``, ``version``, ``is_finished``,
``next_step_delay_seconds``, ``artifacts``).
"""

from __future__ import annotations

import os
import re
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from roost.runtime import limits, strictjson
from roost.runtime.errors import BadInput

__all__ = [
    "APPROVAL_SIGNAL",
    "ApprovalRequest",
    "Artifact",
    "Budget",
    "ChildOf",
    "ErrorInfo",
    "EventType",
    "Lease",
    "LeaseInfo",
    "Progress",
    "RuntimeEvent",
    "Signal",
    "Snapshot",
    "WorkItem",
    "WorkMeta",
    "WorkPage",
    "WorkState",
    "WorkStatus",
    "new_work_id",
    "validate_name",
    "validate_signal_name",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}")


def validate_name(kind: str, value: str) -> str:
    """Check an engine id, resource or work id: printable, no spaces, at most 200 chars.

    Args:
        kind: what the value is, for the error message ("engine", "resource", ...).
        value: the value to check.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: the value is empty or has characters outside ``[A-Za-z0-9_.:@/-]``.
    """
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"invalid {kind} {value!r}: use 1-200 characters from A-Z a-z 0-9 _ . : @ / -, "
            "starting with a letter or digit"
        )
    return value


def validate_signal_name(value: str) -> str:
    """Check a signal name: 1-100 characters from ``[A-Za-z0-9_.:@/-]``.

    Raises:
        ValueError: the name is empty, too long or has other characters.
    """
    if not _NAME.fullmatch(value) or len(value) > 100:
        raise ValueError(
            f"invalid signal name {value!r}: use 1-100 characters from A-Z a-z 0-9 _ . : @ / -, "
            "starting with a letter or digit"
        )
    return value


APPROVAL_SIGNAL = "approval"
"""The signal an approval or a rejection is sent as (``roost approve``, ``roost reject``)."""


def _invalid(exc: BadInput) -> PydanticCustomError:
    """A validation error whose message is ``exc``'s alone (no "Value error, " before it)."""
    return PydanticCustomError("roost_invalid", "{message}", {"message": str(exc)})


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_work_id() -> str:
    """Return a fresh work id (32 lowercase hex characters).

    It is ``uuid.uuid4().hex``: 122 random bits with the version (4) and variant (RFC 4122)
    bits set, made without building a ``UUID`` (a third of the cost; every enqueue makes
    two, one more when the stored JSON is compared with the defaults).
    """
    bits = int.from_bytes(os.urandom(16), "big")
    return f"{bits & _UUID4_CLEAR | _UUID4_SET:032x}"


class WorkState(StrEnum):
    """Where a work item is in its life: always exactly one of these.

    The last four (``done``, ``failed``, ``dead``, ``cancelled``) are finished
    (:attr:`is_terminal`): no worker picks the item up again without an operator.
    """

    QUEUED = "queued"
    """Waiting for a worker that runs its engine."""
    SCHEDULED = "scheduled"
    """Waiting for a delayed continuation (``next_step_delay_seconds``)."""
    RETRYING = "retrying"
    """A step failed; waiting for its backoff before the next attempt."""
    WAITING = "waiting"
    """A resource it needs is held by another item."""
    AWAITING = "awaiting"
    """Waiting, without a lease, for signals, an approval or its children."""
    PAUSED = "paused"
    """Paused by an operator or a budget: runs no new step until resumed."""
    RUNNING = "running"
    """Leased to a worker."""
    DONE = "done"
    """The engine finished it."""
    FAILED = "failed"
    """It cannot run: the engine broke its contract or raised ``PermanentError``."""
    DEAD = "dead"
    """A step failed on every allowed attempt."""
    CANCELLED = "cancelled"
    """An operator cancelled it."""

    @property
    def is_terminal(self) -> bool:
        """True for states that no worker will pick up again without an operator."""
        return self in _TERMINAL

    @property
    def is_failure(self) -> bool:
        """True for ``failed`` and ``dead``: it ended unfinished, and a retry takes it back."""
        return self in _FAILURES


_TERMINAL = frozenset({WorkState.DONE, WorkState.FAILED, WorkState.DEAD, WorkState.CANCELLED})
_FAILURES = frozenset({WorkState.FAILED, WorkState.DEAD})


class Artifact(BaseModel):
    """A content-addressed output an engine produced.

    ``artifact_id`` is the SHA-256 of the content (64 lowercase hex characters); ``kind``
    is the file extension the content was stored under (``json``, ``txt``, ``png``, ...).
    """

    artifact_id: str
    kind: str
    size: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict[str, Any])
    created_at: float = 0.0
    uri: str | None = None


class ChildOf(BaseModel):
    """Where a child work item comes from: its parent, its depth, what the parent keeps.

    ``depth`` is 1 for a child of a top-level item, 2 for a grandchild, ...
    (at most :data:`roost.runtime.limits.CHILD_DEPTH`); ``keep`` names the keys of the
    child's final ``data`` its parent receives (``None``: all of them).
    """

    parent_id: str
    depth: int = 1
    keep: list[str] | None = None


class WorkItem(BaseModel):
    """A durable unit of work: which engine runs it, with what payload and resources.

    ``payload`` is strict JSON (RFC 8259: no NaN or Infinity, valid Unicode);
    ``priority`` and ``max_attempts`` are range-checked (:mod:`roost.runtime.limits`).
    """

    work_id: str = Field(default_factory=new_work_id)
    engine: str
    payload: dict[str, Any] = Field(default_factory=dict[str, Any])
    resources: list[str] = Field(default_factory=list[str])
    priority: int = 0
    idempotency_key: str | None = None
    max_attempts: int | None = None
    queue: str | None = None
    created_at: float = Field(default_factory=time.time)
    headers: dict[str, str] = Field(default_factory=dict[str, str])
    """Metadata carried with the item, set when it is enqueued: the enqueuing process's trace
    context (``traceparent``...) from its observers, so the item's steps join that trace."""
    step_timeout: float | None = None
    """Seconds one step may run before it is cancelled (``StepTimeout``); None: the engine's."""
    max_steps: int | None = None
    """Budget: steps committed before the item pauses as "budget exceeded"."""
    max_runtime: float | None = None
    """Budget: seconds from its creation after which it pauses as "budget exceeded"."""
    budget: float | None = None
    """Budget: what its steps may charge (``StepContext.charge``) before it pauses."""
    child_of: ChildOf | None = None
    """Set on a child work item (spawned by a step of its parent)."""

    @field_validator("engine")
    @classmethod
    def _engine_name(cls, value: str) -> str:
        return validate_name("engine", value)

    @field_validator("work_id")
    @classmethod
    def _work_id(cls, value: str) -> str:
        return validate_name("work id", value)

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            strictjson.check(value)
        except BadInput as exc:
            raise _invalid(exc) from None
        return value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: int) -> int:
        try:
            return int(limits.PRIORITY.check(value, "priority"))
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("max_attempts")
    @classmethod
    def _max_attempts(cls, value: int | None) -> int | None:
        try:
            return None if value is None else int(limits.ATTEMPTS.check(value, "max_attempts"))
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("step_timeout")
    @classmethod
    def _step_timeout(cls, value: float | None) -> float | None:
        try:
            return None if value is None else limits.STEP_TIMEOUT.check(value, "step_timeout")
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("max_steps")
    @classmethod
    def _max_steps(cls, value: int | None) -> int | None:
        try:
            return None if value is None else int(limits.MAX_STEPS.check(value, "max_steps"))
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("max_runtime")
    @classmethod
    def _max_runtime(cls, value: float | None) -> float | None:
        try:
            return None if value is None else limits.MAX_RUNTIME.check(value, "max_runtime")
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: float | None) -> float | None:
        try:
            return None if value is None else limits.BUDGET.check(value, "budget")
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: list[str]) -> list[str]:
        for resource in value:
            validate_name("resource", resource)
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate resources in {value!r}")
        return sorted(value)

    @field_validator("idempotency_key")
    @classmethod
    def _idempotency_key(cls, value: str | None) -> str | None:
        if value is not None and not 0 < len(value) <= 200:
            raise ValueError("idempotency_key must have 1-200 characters")
        return value


class ApprovalRequest(BaseModel):
    """What an engine asks a person to approve: a message and optional details.

    ``details`` is small strict JSON (a plan, a diff, a cost) shown by ``roost status``
    and the console.
    """

    message: str = Field(min_length=1, max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict[str, Any])

    @field_validator("details")
    @classmethod
    def _details(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            strictjson.check(value)
            limits.check_signal_payload(value, "approval details")
        except BadInput as exc:
            raise _invalid(exc) from None
        return value


class Signal(BaseModel):
    """A signal sent to a work item: its name, payload, when (server clock) and by whom.

    ``id`` is its position in the item's signal stream (it orders the item's signals).
    """

    id: str = ""
    name: str
    payload: dict[str, Any] = Field(default_factory=dict[str, Any])
    ts: float = 0.0
    sender: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_signal_name(value)


class Snapshot(BaseModel):
    """Replayable engine state after a step.

    The runtime sets ``version``: the snapshot written by ``init_snapshot`` is version 1 and
    each committed step adds exactly one. An engine sets ``step``, ``data``,
    ``is_finished``, ``next_step_delay_seconds`` (a float, 0 to 365 days; 0 continues at
    once) and appends to ``artifacts``.
    """

    work_id: str
    engine: str
    step: str = "start"
    data: dict[str, Any] = Field(default_factory=dict[str, Any])
    version: int = 0
    is_finished: bool = False
    next_step_delay_seconds: float = 0.0
    wait_for_signals: list[str] = Field(default_factory=list[str])
    """Wait, without a lease, until one of these signals arrives (see ``docs/signals.md``)."""
    wait_timeout_seconds: float | None = None
    """With a wait: run the next step after this long even if nothing arrived."""
    approval_request: ApprovalRequest | None = None
    """Wait for a person to approve or reject (the ``approval`` signal)."""
    artifacts: list[Artifact] = Field(default_factory=list[Artifact])

    @field_validator("next_step_delay_seconds")
    @classmethod
    def _delay(cls, value: float) -> float:
        try:
            return limits.DELAY.check(value, "next_step_delay_seconds")
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("wait_timeout_seconds")
    @classmethod
    def _wait_timeout(cls, value: float | None) -> float | None:
        try:
            return None if value is None else limits.DELAY.check(value, "wait_timeout_seconds")
        except BadInput as exc:
            raise _invalid(exc) from None

    @field_validator("wait_for_signals")
    @classmethod
    def _signal_names(cls, value: list[str]) -> list[str]:
        if len(value) > limits.MAX_WAIT_SIGNALS:
            raise ValueError(f"wait_for_signals names at most {limits.MAX_WAIT_SIGNALS} signals")
        for name in value:
            validate_signal_name(name)
        return list(dict.fromkeys(value))

    @property
    def waits_for(self) -> list[str]:
        """The signals this snapshot waits for (``approval`` for an approval request)."""
        names = list(self.wait_for_signals)
        if self.approval_request is not None and APPROVAL_SIGNAL not in names:
            names.append(APPROVAL_SIGNAL)
        return names

    @property
    def waits(self) -> bool:
        """Whether the item waits for a signal or an approval after this snapshot."""
        return not self.is_finished and bool(self.wait_for_signals or self.approval_request)

    def without_wait(self) -> Snapshot:
        """A copy with the wait fields cleared (what the step after the wait starts from)."""
        return self.model_copy(
            update={"wait_for_signals": [], "wait_timeout_seconds": None, "approval_request": None}
        )


class Lease(BaseModel):
    """Time-bound ownership of a work item by one worker.

    ``token`` is unique to one acquisition; ``epoch`` grows by one on every acquisition of
    the item and fences commits from earlier holders. ``expires_at`` is judged by the backend
    server's clock (epoch seconds).
    """

    model_config = ConfigDict(frozen=True)

    work_id: str
    worker_id: str
    token: str
    epoch: int
    expires_at: float


class EventType(StrEnum):
    """The kinds of runtime events: exactly the types the backend stores in its event stream.

    Each event is written by the same atomic write as the change it records, whichever
    process made it (a worker, the CLI, the console, recovery), and event sinks receive
    exactly these (see :class:`roost.runtime.observe.EventPump`). ``data`` holds the fields
    listed with each type. What only a worker knows and changes nothing stored (a commit its
    lease no longer allowed, a lease it lost) is no event: it is a log line and a
    :class:`roost.runtime.observe.StepObserver` call.
    """

    ENQUEUED = "enqueued"
    """A new item was stored (``engine``, ``queue``, ``delay_ms``; ``parent`` for a child)."""
    STARTED = "started"
    """A worker took the item's lease to run its next step (``attempt``)."""
    WAITING = "waiting"
    """The item could not start: a resource it claims is held (``held_by``)."""
    COMMITTED = "committed"
    """A step's snapshot was stored (``next``: ``inline``, ``queue``, ``delay`` with
    ``delay`` seconds, ``hold``, ``await_signals``, ``await``)."""
    DONE = "done"
    """The last step's snapshot was stored: the item is finished (``next``)."""
    RETRYING = "retrying"
    """A step raised; the item runs again after ``delay`` seconds (``error``, ``message``,
    ``attempt``)."""
    FAILED = "failed"
    """A step raised a permanent error or broke the engine contract (``error``,
    ``message``, ``attempt``)."""
    DEAD = "dead"
    """The item used up its attempts (``error``, ``message``, ``attempt`` after a failed
    step; ``worker``, ``attempt`` after its worker died; or ``reason``)."""
    LEASE_EXPIRED = "lease_expired"
    """Recovery found the item's lease lapsed (its worker died or stalled) and queued it
    again; the attempt counts (``worker``, ``attempt``; ``reason`` when the worker was
    found gone before its lease lapsed)."""
    RELEASED = "released"
    """A worker gave the item back without using an attempt (``reason``)."""
    REDISPATCHED = "redispatched"
    """A delivery taken by a worker that never acquired it was put back (``reason``)."""
    CANCELLED = "cancelled"
    """An operator cancelled the item (``previous`` state)."""
    RETRIED = "retried"
    """An operator retried a failed or dead item (``previous`` state)."""
    REPLAYED = "replayed"
    """An operator replayed the item from an earlier version (``from_version``)."""
    PROGRESS = "progress"
    """A running step reported progress (``fraction``, ``message``, ``data``)."""
    SIGNALLED = "signalled"
    """A signal was sent to the item (``name``, ``sender``...)."""
    PAUSED = "paused"
    """The item was paused by an operator or its budget (``reason``, ``previous``)."""
    RESUMED = "resumed"
    """The item was resumed (``state`` it went back to)."""
    CHILDREN_READY = "children_ready"
    """The children a parent waits for have finished (``finished``)."""
    BUDGET_RAISED = "budget_raised"
    """An operator raised the item's budget (``steps``, ...)."""


class RuntimeEvent(BaseModel):
    """One entry of the event stream.

    ``id`` is the stream position (empty until stored); ``ts`` is epoch seconds.
    """

    id: str = ""
    type: str
    work_id: str
    ts: float = Field(default_factory=time.time)
    step: str | None = None
    version: int | None = None
    worker: str | None = None
    data: dict[str, Any] = Field(default_factory=dict[str, Any])


class ErrorInfo(BaseModel):
    """The last error of a work item: exception type, message and a traceback excerpt."""

    type: str
    message: str
    traceback: str = ""
    attempt: int = 0
    ts: float = 0.0


class LeaseInfo(BaseModel):
    """Who holds a work item right now (the token stays private to the holder)."""

    worker_id: str
    epoch: int
    expires_at: float


class Progress(BaseModel):
    """The last progress a running step reported."""

    fraction: float | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict[str, Any])
    ts: float = 0.0


class Budget(BaseModel):
    """An item's budgets and what it spent (``None``: no limit of that kind).

    ``exceeded`` names the limit that paused it (``steps``, ``cost`` or ``runtime``).
    """

    max_steps: int | None = None
    max_runtime: float | None = None
    budget: float | None = None
    steps: int = 0
    spent: float = 0.0
    exceeded: str | None = None


class WorkMeta(BaseModel):
    """The runtime's view of a work item (the ``meta`` part of ``roost status``)."""

    work_id: str
    engine: str
    state: WorkState
    step: str | None = None
    version: int = 0
    attempts: int = 0
    max_attempts: int = 0
    priority: int = 0
    queue: str = ""
    resources: list[str] = Field(default_factory=list[str])
    idempotency_key: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    due_at: float | None = None
    lease: LeaseInfo | None = None
    last_error: ErrorInfo | None = None
    progress: Progress | None = None
    cancel_requested: bool = False
    waiting_for: list[str] = Field(default_factory=list[str])
    """While ``awaiting``: the signals it waits for."""
    approval: ApprovalRequest | None = None
    """While ``awaiting`` an approval: what it asks (the item "needs approval")."""
    pending_signals: int = 0
    """Signals sent and not yet consumed by a step."""
    budget: Budget | None = None
    """Its budgets and spending, once a step committed under a budget or a charge."""
    paused_reason: str | None = None
    """Why it is ``paused`` (``operator`` or ``budget``); while ``running``: a pause asked
    for, which takes effect when the step commits."""

    @property
    def needs_approval(self) -> bool:
        """Whether the item waits for a person to approve or reject it."""
        return self.state == WorkState.AWAITING and self.approval is not None

    @property
    def display_state(self) -> str:
        """The state as ``roost list`` shows it (``needs approval``, ``budget exceeded``)."""
        if self.needs_approval:
            return "needs approval"
        if self.state == WorkState.PAUSED and self.paused_reason == "budget":
            return "budget exceeded"
        return str(self.state)

    parent_id: str | None = None
    """The parent of a child work item."""
    children_total: int = 0
    """How many children its steps spawned."""
    children_finished: int = 0
    """How many of them finished (done, failed, dead or cancelled)."""
    children_wait: int | None = None
    """While ``awaiting`` its children: how many must have finished before it goes on."""

    @property
    def error_is_past(self) -> bool:
        """Whether ``last_error`` is from an earlier attempt that a later one got past.

        The error stays on the item after a retry succeeds. It is current while the step it
        came from is still being tried (``retrying``, or back in the queue or running with
        the attempts it used), and the cause of a ``failed`` or ``dead`` item; it is past
        once the item is ``done``, or once a commit has reset ``attempts`` below it.
        """
        err = self.last_error
        if err is None:
            return False
        if self.state == WorkState.DONE:
            return True
        if self.state in (WorkState.RETRYING, WorkState.FAILED, WorkState.DEAD):
            return False
        used = self.attempts - (1 if self.state == WorkState.RUNNING else 0)
        return used < err.attempt


class WorkStatus(BaseModel):
    """What ``roost status`` prints: the runtime meta, the latest snapshot, the item."""

    meta: WorkMeta
    snapshot: Snapshot | None = None
    item: WorkItem | None = None


class WorkPage(BaseModel):
    """One page of a listing; pass ``next_cursor`` back to get the next page."""

    items: list[WorkMeta]
    next_cursor: str | None = None
