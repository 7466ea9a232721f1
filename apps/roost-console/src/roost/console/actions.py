"""What the console changes: cancel, retry, replay, pause, resume of one item; bulk cancel/retry.

Bulk actions are the backend's one-item actions applied to each item in turn (a few at a time),
each with its own result: one item that cannot be retried does not stop the others. ``WorkBackend``
has no bulk operation; ``retry_many``/``cancel_many`` (one round trip per batch) would belong
in the runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from roost.console import queries, worklist
from roost.console.params import parse_state, replay_args
from roost.console.present import ACTION_STATES, redis_problem
from roost.runtime.errors import BadInput, ConflictError, NotFound
from roost.runtime.models import WorkMeta, WorkState, validate_name

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend

__all__ = [
    "ACTIONS",
    "BULK_ACTIONS",
    "BULK_LIMIT",
    "BulkReport",
    "ItemResult",
    "bulk",
    "bulk_from_fields",
    "bulk_in_state",
    "perform",
    "scope_of",
]

ACTIONS = ("cancel", "retry", "replay", "pause", "resume")
BULK_ACTIONS = ("cancel", "retry")
BULK_LIMIT = 1000
"""Items one bulk request acts on; the report says when more matched."""
BULK_CONCURRENCY = 16


async def _act(backend: WorkBackend, action: str, work_id: str) -> WorkMeta:
    if action == "cancel":
        return await backend.cancel(work_id)
    if action == "retry":
        return await backend.retry(work_id)
    if action == "pause":
        return await backend.pause(work_id)
    if action == "resume":
        return await backend.resume(work_id)
    raise BadInput(f"unknown action {action!r} (cancel, retry, replay, pause or resume)")


async def perform(
    backend: WorkBackend, action: str, work_id: str, fields: dict[str, str]
) -> dict[str, Any]:
    """Run an operator action; return ``{"work_id", "action", "meta"}`` of the resulting item.

    Raises:
        NotFound: unknown work id, snapshot version or action.
        ConflictError: the item is not in a state that allows the action.
        BadInput: malformed replay arguments.
    """
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r} (cancel, retry, replay, pause or resume)")
    work_id = queries.work_id(work_id)
    if action == "replay":
        args = replay_args(fields)
        work_id = await backend.replay(work_id, version=args.version, as_new=args.as_new)
        meta = (await backend.status(work_id)).meta
    else:
        meta = await _act(backend, action, work_id)
    return {"work_id": work_id, "action": action, "meta": meta.model_dump(mode="json")}


class ItemResult(BaseModel):
    """What a bulk action did to one item: its new state, or why it did nothing."""

    work_id: str
    ok: bool
    state: str | None = None
    error: str | None = None
    kind: str | None = None


class BulkReport(BaseModel):
    """The result of a bulk action, one entry per item in the order asked.

    ``more`` is true when more items matched than one request acts on (:data:`BULK_LIMIT`).
    """

    action: str
    results: list[ItemResult]
    more: bool = False

    @property
    def succeeded(self) -> int:
        """How many items the action changed."""
        return sum(r.ok for r in self.results)


async def _one(
    backend: WorkBackend, action: str, work_id: str, gate: asyncio.Semaphore
) -> ItemResult:
    async with gate:
        try:
            meta = await _act(backend, action, queries.work_id(work_id))
        except NotFound as exc:
            return ItemResult(work_id=work_id, ok=False, error=str(exc), kind="not_found")
        except ConflictError as exc:
            return ItemResult(work_id=work_id, ok=False, error=str(exc), kind="conflict")
        except BadInput as exc:
            return ItemResult(work_id=work_id, ok=False, error=str(exc), kind="bad_input")
        except backend.fault_types as exc:
            kind, message = redis_problem(exc, backend)
            return ItemResult(work_id=work_id, ok=False, error=message, kind=kind)
    return ItemResult(work_id=work_id, ok=True, state=str(meta.state))


async def bulk(backend: WorkBackend, action: str, work_ids: Iterable[str]) -> BulkReport:
    """Cancel or retry each item; duplicates are acted on once.

    Raises:
        BadInput: an action other than cancel or retry, no items, or more than
            :data:`BULK_LIMIT`.
    """
    if action not in BULK_ACTIONS:
        raise BadInput(f"unknown bulk action {action!r} (cancel or retry)")
    ids = list(dict.fromkeys(w.strip() for w in work_ids if w.strip()))
    if not ids:
        raise BadInput("no work items were selected")
    if len(ids) > BULK_LIMIT:
        raise BadInput(f"at most {BULK_LIMIT} items at once, not {len(ids)}")
    gate = asyncio.Semaphore(BULK_CONCURRENCY)
    results = await asyncio.gather(*(_one(backend, action, w, gate) for w in ids))
    return BulkReport(action=action, results=list(results))


async def bulk_in_state(
    backend: WorkBackend, action: str, state: WorkState, engine: str | None
) -> BulkReport:
    """Act on every item in ``state`` (of ``engine``), up to :data:`BULK_LIMIT` of them.

    Retry takes dead or failed items, cancel unfinished ones. The items are listed first
    (paging through the state's index), then acted on one by one.

    Raises:
        BadInput: an action that does not apply to ``state``, or nothing in that state.
    """
    if action == "retry" and state not in ACTION_STATES["retry"]:
        raise BadInput("retry applies to dead or failed work")
    if action == "cancel" and state not in ACTION_STATES["cancel"]:
        raise BadInput(f"{state} work cannot be cancelled")
    ids, more = await worklist.select(backend, state=state, engine=engine, cap=BULK_LIMIT)
    of_engine = f" of engine {engine}" if engine else ""
    if not ids:
        raise BadInput(f"there is no {state} work{of_engine}")
    report = await bulk(backend, action, ids)
    report.more = more
    return report


async def bulk_from_fields(
    backend: WorkBackend, action: str, pairs: list[tuple[str, str]]
) -> BulkReport:
    """Run a bulk action described by form or JSON fields.

    The items are named by ``work_ids`` (or ``work_id``) fields, or chosen by ``state`` and
    an optional ``engine``.

    Raises:
        BadInput: neither items nor a state, a bad state or engine name, or a bad action.
    """
    ids = [v for k, v in pairs if k in ("work_ids", "work_id")]
    if ids:
        return await bulk(backend, action, ids)
    scope = scope_of(dict(pairs))
    if scope is None:
        raise BadInput("say which items: work_ids, or a state (and an engine)")
    return await bulk_in_state(backend, action, *scope)


def scope_of(fields: dict[str, str]) -> tuple[WorkState, str | None] | None:
    """The ``state`` and ``engine`` fields of a bulk action by state (``None``: no state).

    Raises:
        BadInput: an unknown state or a malformed engine name.
    """
    state = parse_state(fields.get("state", ""))
    if state is None:
        return None
    engine = fields.get("engine", "").strip() or None
    if engine is not None:
        try:
            validate_name("engine", engine)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    return state, engine
