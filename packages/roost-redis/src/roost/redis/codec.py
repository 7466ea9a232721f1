"""Translate between Redis replies and Roost's models."""

from __future__ import annotations

import json
import traceback
from typing import Any

from pydantic_core import to_json

from roost.redis.budgets import budget_of
from roost.redis.schema import STATUS_FIELDS, Meta
from roost.runtime.models import (
    ApprovalRequest,
    ErrorInfo,
    LeaseInfo,
    Progress,
    RuntimeEvent,
    Snapshot,
    WorkItem,
    WorkMeta,
    WorkState,
)

__all__ = [
    "META_FIELDS",
    "error_info",
    "event_from_entry",
    "meta_from_hash",
    "ms_to_s",
    "read_item",
    "read_snapshot",
    "stored_item",
    "stored_snapshot",
    "stored_snapshot_text",
]

META_FIELDS = STATUS_FIELDS
"""The meta hash fields a status read needs (HMGET order)."""

TRACEBACK_LINES = 30


_ID_OPEN = '{"work_id":'
_ENGINE_OPEN = '{"engine":'
_NO_ID = {"work_id"}


def stored_item(item: WorkItem) -> str:
    """An item as Redis keeps it: its JSON without its work id and the fields at defaults.

    A finished item is kept for the retention period, so every byte counts: the key holds
    the work id, and the fields left out read back as their defaults. Read it back with
    :func:`read_item`, which puts the work id back (and takes the full form earlier versions
    wrote too).
    """
    return item.model_dump_json(exclude_defaults=True, exclude=_NO_ID)


def stored_snapshot(snapshot: Snapshot) -> str:
    """A snapshot as Redis keeps it, like :func:`stored_item`; see :func:`read_snapshot`.

    Its engine is still written: workers of the version before, which run beside this one
    during a rolling deploy, read it from the JSON. A snapshot's engine is always its
    item's (the step contract and enqueue's seed check see to it), which the item and the
    meta hash hold, and :func:`read_snapshot` takes JSON without it, so that a later version
    can leave it out.
    """
    return snapshot.model_dump_json(exclude_defaults=True, exclude=_NO_ID)


def stored_snapshot_text(work_id: str, text: str) -> str:
    """Snapshot JSON as the step contract wrote it (``snapshot_to_json``), as Redis keeps it.

    The contract's JSON opens with the work id; it is cut off here (a string slice: the
    text is not parsed again), giving what :func:`stored_snapshot` gives. Text that does
    not open with this work id is kept whole, which :func:`read_snapshot` reads as well.
    """
    prefix = f"{_ID_OPEN}{to_json(work_id).decode()}"
    if not text.startswith(prefix):
        return text
    rest = text[len(prefix) :]
    if rest.startswith(","):
        return "{" + rest[1:]
    return "{" + rest if rest.startswith("}") else text


def _whole(text: str, work_id: str, engine: str | None = None) -> str:
    """Stored JSON with its work id (and engine, when given) put back when it has none.

    Every form written opens with the work id when it has one, and then the engine, as the
    models order their fields; a form without them opens with another field.
    """
    if text.startswith(_ID_OPEN):
        return text
    head = f"{_ID_OPEN}{json.dumps(work_id)}"
    if engine is not None and not text.startswith(_ENGINE_OPEN):
        head = f'{head},"engine":{json.dumps(engine)}'
    rest = text[1:]
    comma = "" if rest.lstrip().startswith("}") else ","
    return f"{head}{comma}{rest}"


def read_item(work_id: str, text: str) -> WorkItem:
    """The item stored under ``work_id`` (with or without its work id in the JSON).

    Raises:
        pydantic.ValidationError: the text is not an item.
    """
    return WorkItem.model_validate_json(_whole(text, work_id))


def read_snapshot(work_id: str, text: str, *, engine: str) -> Snapshot:
    """A snapshot stored under ``work_id`` (latest or kept) of an item of ``engine``.

    It takes every form written: with or without the work id and the engine in the JSON.

    Raises:
        pydantic.ValidationError: the text is not a snapshot.
    """
    return Snapshot.model_validate_json(_whole(text, work_id, engine))


def ms_to_s(value: str | int | float | None) -> float | None:
    """Milliseconds (as Redis returns them) to epoch seconds."""
    return None if value is None or value == "" else int(float(value)) / 1000.0


def _int(value: str | None, default: int = 0) -> int:
    return default if value is None or value == "" else int(value)


def meta_from_hash(work_id: str, h: dict[str, str], default_max_attempts: int) -> WorkMeta:
    """Build a :class:`WorkMeta` from the item's meta hash."""
    lease = None
    if h.get(Meta.LEASE_WORKER) and h.get(Meta.LEASE_EXPIRES):
        lease = LeaseInfo(
            worker_id=h[Meta.LEASE_WORKER],
            epoch=_int(h.get(Meta.LEASE_EPOCH)),
            expires_at=ms_to_s(h[Meta.LEASE_EXPIRES]) or 0.0,
        )
    err = ErrorInfo.model_validate_json(h[Meta.ERROR]) if h.get(Meta.ERROR) else None
    prog = Progress.model_validate_json(h[Meta.PROGRESS]) if h.get(Meta.PROGRESS) else None
    state = WorkState(h.get(Meta.STATE, "queued"))
    # What it awaits, while it does (a paused item keeps the wait it will go back to).
    awaits = state in (WorkState.AWAITING, WorkState.PAUSED)
    appr = h.get(Meta.APPROVAL) if awaits else None
    return WorkMeta(
        work_id=work_id,
        engine=h.get(Meta.ENGINE, ""),
        state=state,
        step=h.get(Meta.STEP) or None,
        version=_int(h.get(Meta.VERSION)),
        attempts=_int(h.get(Meta.ATTEMPTS)),
        # Known once an attempt started; before that, the item's own limit if it set one.
        max_attempts=_int(
            h.get(Meta.MAX_ATTEMPTS) or h.get(Meta.ITEM_MAX_ATTEMPTS), default_max_attempts
        ),
        priority=_int(h.get(Meta.PRIORITY)),
        queue=h.get(Meta.QUEUE, ""),
        resources=h[Meta.RESOURCES].split(" ") if h.get(Meta.RESOURCES) else [],
        idempotency_key=h.get(Meta.IDEMPOTENCY_KEY) or None,
        created_at=ms_to_s(h.get(Meta.CREATED)) or 0.0,
        updated_at=ms_to_s(h.get(Meta.UPDATED)) or 0.0,
        # A finished item's last change is its finish (older versions also kept 'finished').
        finished_at=ms_to_s(h.get(Meta.UPDATED)) if state.is_terminal else None,
        due_at=ms_to_s(h.get(Meta.DUE)),
        lease=lease,
        last_error=err,
        progress=prog,
        cancel_requested=bool(h.get(Meta.CANCEL_REQUESTED)),
        waiting_for=h[Meta.WAIT_SIGNALS].split(" ") if awaits and h.get(Meta.WAIT_SIGNALS) else [],
        approval=ApprovalRequest.model_validate_json(appr) if appr else None,
        paused_reason=h.get(Meta.PAUSE) if state in (WorkState.PAUSED, WorkState.RUNNING) else None,
        budget=budget_of(h, None),
        parent_id=h.get(Meta.PARENT_ID) or None,
        children_total=_int(h.get(Meta.KIDS_SPAWNED)),
        children_finished=_int(h.get(Meta.KIDS_FINISHED)),
        children_wait=_int(h[Meta.KIDS_WAIT]) if h.get(Meta.KIDS_WAIT) else None,
    )


def event_from_entry(entry_id: str, fields: dict[str, str]) -> RuntimeEvent:
    """Build a :class:`RuntimeEvent` from a stream entry (its id carries the time)."""
    data: dict[str, Any] = json.loads(fields["d"]) if fields.get("d") else {}
    return RuntimeEvent(
        id=entry_id,
        type=fields.get("t", "?"),
        work_id=fields.get("w", ""),
        ts=int(entry_id.split("-", 1)[0]) / 1000.0,
        step=fields.get("s") or None,
        version=int(fields["v"]) if fields.get("v") else None,
        worker=fields.get("k") or None,
        data=data,
    )


def error_info(exc: BaseException, attempt: int, now: float) -> ErrorInfo:
    """Describe a step's exception: type, message and the last lines of its traceback."""
    lines = traceback.format_exception(exc)
    text = "".join(lines)
    excerpt = "\n".join(text.rstrip().splitlines()[-TRACEBACK_LINES:])
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc)[:2000],
        traceback=excerpt,
        attempt=attempt,
        ts=now,
    )
