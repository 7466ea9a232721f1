"""Signals and approvals: sending them, and handing what arrived to the step after a wait.

A signal is appended to its item's signal stream (``Keys.sig``) by ``signal.lua``, which
also wakes the item when it awaits that name. The step after the wait receives the signals
it waited for (oldest first) in its step context; its commit deletes exactly those from the
stream (``commit.lua``), so a step that fails or loses its lease leaves them for the retry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from roost.redis.contract import Code
from roost.redis.keys import new_token
from roost.redis.schema import Meta
from roost.runtime import limits, strictjson
from roost.runtime.errors import BadInput, NotFound, SignalRefused
from roost.runtime.models import Signal, Snapshot, validate_signal_name

if TYPE_CHECKING:
    from roost.redis.aio import AsyncRedis
    from roost.redis.store import RedisStore

__all__ = [
    "SignalSent",
    "decision",
    "pending_signals",
    "read_signals",
    "send_signal",
    "wait_arg",
]

MAX_SENDER = 200
"""Characters a sender's name may take."""
MAX_NOTE = 4000
"""Characters an approval's or rejection's note may take."""


class SignalSent(BaseModel):
    """What ``signal`` did: the signal's id, and whether it woke the item."""

    work_id: str
    name: str
    signal_id: str
    woke: bool


def _check(name: str, payload: object, sender: str) -> str:
    try:
        validate_signal_name(name)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if not isinstance(payload, dict):
        raise BadInput(f"signal payload must be a JSON object, not {type(payload).__name__}")
    payload = cast("dict[str, Any]", payload)
    strictjson.check(payload)
    limits.check_signal_payload(payload, "signal payload")
    if len(sender) > MAX_SENDER:
        raise BadInput(f"sender must be at most {MAX_SENDER} characters")
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


async def send_signal(
    store: RedisStore, work_id: str, name: str, payload: dict[str, Any], sender: str
) -> SignalSent:
    """Send a signal; see :meth:`RedisSwarm.signal`."""
    body = _check(name, payload, sender)
    home = store.item_keys(work_id)
    h: dict[str, str] = await store.client.hgetall(home.meta(work_id))
    if not h:
        raise NotFound(f"unknown work id {work_id!r}")
    keys = home.for_queue(h.get(Meta.QUEUE) or store.settings.queue)
    keys = keys.for_engine(h.get(Meta.ENGINE, ""))
    reply = await store.calls.signal(
        keys,
        work_id=work_id,
        name=name,
        payload=body,
        sender=sender,
        dispatch=new_token(),
        max_pending=limits.MAX_PENDING_SIGNALS,
    )
    code = reply.code
    if code is Code.GONE:
        raise NotFound(f"unknown work id {work_id!r}")
    if code is Code.TERMINAL:
        raise SignalRefused(f"work {work_id} is {reply.state}; it takes no more signals")
    if code is Code.FULL:
        raise SignalRefused(
            f"work {work_id} holds {reply.pending} signals no step has consumed yet "
            f"(at most {limits.MAX_PENDING_SIGNALS}); try again once it has run"
        )
    return SignalSent(work_id=work_id, name=name, signal_id=reply.signal_id, woke=code is Code.WOKE)


def decision(approved: bool, note: str | None) -> dict[str, Any]:
    """The payload of an approval (``approved``) or a rejection.

    Raises:
        BadInput: the note is longer than :data:`MAX_NOTE` characters.
    """
    if note is not None and len(note) > MAX_NOTE:
        raise BadInput(f"note must be at most {MAX_NOTE} characters")
    return {"decision": "approved" if approved else "rejected", "note": note or ""}


def _parse(entry_id: str, fields: dict[str, str]) -> Signal:
    return Signal(
        id=entry_id,
        name=fields.get("n", "?"),
        payload=json.loads(fields.get("p") or "{}"),
        ts=int(fields.get("t") or 0) / 1000.0,
        sender=fields.get("s", ""),
    )


async def pending_signals(store: RedisStore, work_id: str) -> list[Signal]:
    """The signals sent to an item and not consumed yet, oldest first."""
    return await read_signals(store.client, store.item_keys(work_id).sig(work_id))


async def read_signals(client: AsyncRedis, key: str) -> list[Signal]:
    """The signals on the signal stream ``key``, oldest first."""
    rows = await client.xrange(key, "-", "+")
    return [_parse(eid, fields) for eid, fields in rows]


def wait_arg(new: Snapshot, consume: list[str]) -> str:
    """The wait argument of ``commit.lua``: '' for a plain commit."""
    if not consume and not new.waits:
        return ""
    names = new.waits_for if new.waits else []
    timeout = new.wait_timeout_seconds
    approval = new.approval_request
    return json.dumps(
        {
            "consume": consume,
            "names": names,
            "timeout_ms": -1 if timeout is None or not names else int(round(timeout * 1000)),
            "approval": approval.model_dump_json() if approval and names else "",
        }
    )
