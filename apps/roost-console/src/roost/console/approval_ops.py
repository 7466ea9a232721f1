"""The Approvals page's reads and writes (a gateway: the only module here that calls the backend).

A decision is the ``approval`` signal (docs/signals.md), sent as ``console``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from roost.runtime import strictjson
from roost.runtime.errors import BadInput, NotFound
from roost.runtime.models import WorkMeta, WorkState

if TYPE_CHECKING:
    from roost.runtime.backends import WorkBackend

__all__ = ["PAGE_LIMIT", "SENDER", "decide", "send_signal", "waiting_for_people"]

SENDER = "console"
"""Who the console's decisions are from, as the next step sees it."""
PAGE_LIMIT = 1000
"""Awaiting items one page reads (the page says when there are more)."""


async def waiting_for_people(backend: WorkBackend) -> tuple[list[WorkMeta], bool]:
    """Items that need approval, oldest wait first, and whether more were left unread."""
    page = await backend.list_work(state=WorkState.AWAITING, limit=PAGE_LIMIT)
    found = [m for m in page.items if m.needs_approval]
    found.sort(key=lambda m: (m.updated_at, m.work_id))
    return found, page.next_cursor is not None


async def decide(backend: WorkBackend, action: str, work_id: str, note: str) -> None:
    """Approve or reject (``action``) what an item asks, with an optional note.

    Raises:
        NotFound: an unknown action or work id.
        SignalRefused: the item is finished or cancelled.
    """
    if action == "approve":
        await backend.approve(work_id, note=note or None, sender=SENDER)
    elif action == "reject":
        await backend.reject(work_id, note=note or None, sender=SENDER)
    else:
        raise NotFound(f"unknown action {action!r} (approve or reject)")


async def send_signal(backend: WorkBackend, work_id: str, name: str, payload: str) -> bool:
    """Send signal ``name`` with ``payload`` (JSON object text, empty for ``{}``).

    Returns whether it woke the item.

    Raises:
        BadInput: the payload is not a JSON object, or the name is invalid.
        NotFound, SignalRefused: see :meth:`WorkBackend.signal`.
    """
    value = strictjson.loads(payload or "{}", where="payload")
    if not isinstance(value, dict):
        raise BadInput("payload must be a JSON object")
    body = cast("dict[str, Any]", value)
    return (await backend.signal(work_id, name, body, sender=SENDER)).woke
