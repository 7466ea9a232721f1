"""What a lease holder writes back: commits, failed attempts, releases and progress.

Every call names the lease (token and epoch) it was made under, and the scripts refuse a
lapsed or foreign lease with ``STALE``. Commit, fail and release also carry an op id, so a
repeat of the same call (its reply lost to a broken connection) answers ``DUP`` instead of
applying twice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roost.redis.budgets import budget_arg
from roost.redis.children import resolve_keys, spawn_block
from roost.redis.children import wait_arg as family_wait_arg
from roost.redis.codec import error_info
from roost.redis.faults import describe
from roost.redis.keys import Keys, new_token
from roost.redis.signals import wait_arg
from roost.redis.supervise import RedisUnavailable
from roost.runtime.errors import EngineContractError
from roost.runtime.models import Snapshot, WorkItem

if TYPE_CHECKING:
    from roost.redis.worker import Worker
    from roost.runtime.children import Family
    from roost.runtime.context import StepContext
    from roost.runtime.observe import Outcome, StepRecord

__all__ = ["Held", "commit", "fail", "interrupted", "progress", "release"]

log = logging.getLogger("roost.worker")

PROGRESS_MIN_INTERVAL = 0.5


@dataclass
class Held:
    """An item this worker holds the lease of."""

    work_id: str
    token: str
    epoch: int
    resources: list[str]
    deadline: float
    """Local monotonic time after which the lease must be assumed lost."""
    keys: Keys
    """The route of the item's engine: a continuation or release is queued on its list."""
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[tuple[Snapshot, str, float]] | None = None
    lost: bool = False
    cancelled: bool = False
    last_progress: float = 0.0
    records: list[StepRecord] = field(default_factory=list["StepRecord"])
    """Observed step attempts whose outcome is not known yet (none without observers)."""
    waits: tuple[float | None, float | None] = (None, None)
    """How long the item waited queued, and how late it started after its due time (s)."""
    consume: list[str] = field(default_factory=list[str])
    """Ids of the signals the running step received: its commit consumes them."""
    charge: float = 0.0
    """What the running step charged (``StepContext.charge``): committed with it."""

    def interrupt(self) -> None:
        """Tell the running step to stop (it is cancelled)."""
        self.cancel_event.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()


_EVENT_DATA = {o: json.dumps({"next": o}) for o in ("done", "inline", "hold", "queue")}
"""The event data of a commit with no delay, by outcome: the same text every step."""


def _outcome(worker: Worker, new: Snapshot, item: WorkItem, inline: int) -> tuple[str, int]:
    """What follows a committed step, and the delay in ms for ``delay``."""
    if new.is_finished:
        return "done", 0
    if new.waits:
        return "await_signals", 0
    delay_ms = int(round(new.next_step_delay_seconds * 1000))
    if delay_ms > 0:
        return "delay", delay_ms
    if not worker.stopping and inline < worker.settings.inline_steps and not item.resources:
        return "inline", 0
    return "queue", 0


async def commit(
    worker: Worker,
    held: Held,
    item: WorkItem,
    new: Snapshot | None,
    snap_json: str,
    version: int,
    inline: int,
    *,
    init: Snapshot | None = None,
    hold: bool = False,
    ended: float | None = None,
    ctx: StepContext | None = None,
) -> Snapshot | None:
    """Commit ``new`` on top of committed ``version``; ``init`` goes first if given.

    With ``hold``, the lease (and any resource claims) are kept whatever ``new`` says.
    ``ended`` is when the step returned (``Clock.local_ms``): a delay it asks for runs
    from then, so a commit held up by a busy worker or a slow Redis does not add to it.
    ``ctx`` is the step's context: the children it spawned are created by this commit,
    and a wait for them parks the item (``awaiting``).
    Returns the snapshot to continue with on the same lease, or None.
    """
    assert new is not None
    outcome, delay_ms = ("hold", 0) if hold else _outcome(worker, new, item, inline)
    family = ctx.family if ctx is not None and not hold else None
    if family is not None and family.wait is not None and not new.is_finished:
        outcome, delay_ms = "await", 0
    keys = held.keys
    dispatch = new_token()
    suffix = Keys.job_suffix(held.work_id, dispatch)
    event_data: dict[str, Any] = (
        {"next": outcome, "delay": delay_ms / 1000.0} if delay_ms else {"next": outcome}
    )
    data = _EVENT_DATA.get(outcome) if not delay_ms else None
    if data is None:
        data = json.dumps(event_data)
    item_keys = [
        keys.meta(held.work_id),
        keys.snap(held.work_id),
        keys.hist(held.work_id),
        keys.job(suffix),
        *keys.res_block(held.resources),
        keys.sig(held.work_id),
    ]
    args = [
        held.work_id,
        held.token,
        held.epoch,
        f"{held.token}:{version}",
        version,
        snap_json,
        new.step,
        outcome,
        delay_ms,
        dispatch,
        suffix,
        worker.settings.history,
        len(held.resources),
        data,
        init.model_dump_json() if init else "",
        init.step if init else "",
        int(worker.clock.server_ms(ended)) if ended is not None else "",
        "" if hold else wait_arg(new, held.consume),
        budget_arg(
            item,
            worker.engines.get(item.engine),
            held.charge,
            0 if version == 0 and init is None else 1,
        ),
    ]
    final = version + (2 if init else 1)
    sent_ms = worker.clock.local_ms()
    try:
        reply = await _send_commit(worker, held, item_keys, args, family)
    except RedisUnavailable as exc:
        log.error(
            "commit of %s v%d failed: Redis could not take it before the lease lapsed (%s)",
            held.work_id,
            final,
            exc,
        )
        worker.observers.steps_ended(held.records, "refused", "redis unavailable")
        return None
    code = reply[0]
    if code in ("TAKEN", "RACE") and ctx is not None:
        why = (
            f"child {reply[1]} belongs to another parent or has children of its own"
            if code == "TAKEN"
            else (f"child idempotency key {reply[1]!r} keeps changing owner")
        )
        await fail(worker, held, item, EngineContractError(why), ctx.attempt, terminal=True)
        return None
    if code in ("OK", "DUP"):
        worker.observers.steps_ended(held.records, "committed", outcome, upto=final)
        held.consume = []
        held.charge = 0.0
        worker.steps_committed += final - version
        etype = "done" if outcome == "done" else "committed"
        eid = str(reply[2]) if code == "OK" else ""
        if init:
            worker.event("committed", held.work_id, init.step, version + 1, {"next": "inline"})
        worker.event(etype, held.work_id, new.step, final, event_data, eid)
        if code == "OK":
            worker.clock.observe(float(reply[4]), sent_ms)
            if int(reply[3]):
                worker.wake.set()
            if outcome == "delay":
                worker.wake_at(float(reply[5]))
        paused = code == "OK" and len(reply) > 6 and int(reply[6])
        if outcome in ("inline", "hold") and not held.cancel_event.is_set() and not paused:
            return new  # parsed from the committed text: it shares nothing with the engine
        return None
    worker.observers.steps_ended(held.records, "refused", code.lower())
    if code == "CANCELLED":
        log.info("work %s was cancelled; its commit was refused", held.work_id)
    else:
        log.warning("commit of %s v%d refused: %s", held.work_id, final, code)
        worker.event("stale_commit", held.work_id, new.step, final, {"reason": code})
    return None


async def _send_commit(
    worker: Worker, held: Held, item_keys: list[str], args: list[Any], family: Family | None
) -> Any:
    """Run the commit script, with the children block when the step spawned or waits.

    A ``RACE`` reply (a child's idempotency key was taken between reading it and the
    commit) writes nothing: the keys are read again and the commit repeated.
    """
    if family is None or (not family.spawned and family.wait is None):
        return await worker.retrying(
            lambda: _durable(worker, held, "commit", item_keys, args), deadline=held.deadline
        )
    reply: Any = None
    for _ in range(3):
        spawned = await worker.retrying(
            functools.partial(resolve_keys, worker.store, family.spawned), deadline=held.deadline
        )
        more_keys, more_args = spawn_block(
            held.keys, held.work_id, spawned, held.keys.queue, family_wait_arg(family)
        )
        call_keys, call_args = item_keys + more_keys, args + more_args
        reply = await worker.retrying(
            functools.partial(_durable, worker, held, "commit", call_keys, call_args),
            deadline=held.deadline,
        )
        if reply[0] != "RACE":
            break
    return reply


async def _durable(
    worker: Worker, held: Held, name: str, item_keys: list[str], args: list[Any]
) -> Any:
    """Run a lease-holder script, waiting for its fsync and replicas when configured."""
    if worker.settings.strict_durability or worker.settings.wait_replicas:
        return await worker.store.run_script_durable(name, item_keys, args, keys=held.keys)
    return await worker.store.run_script(name, item_keys, args, keys=held.keys)


async def fail(
    worker: Worker, held: Held, item: WorkItem, exc: BaseException, attempt: int, *, terminal: bool
) -> None:
    """Record a failed attempt: retry after a backoff with jitter, or fail/dead the item.

    The event of a retry says when it comes (``delay``); a ``dead`` or ``failed`` event has
    no delay: nothing follows it.
    """
    info = error_info(exc, attempt, worker.clock.now_ms() / 1000.0)
    s = worker.settings
    delay = min(s.retry_delay * 2 ** (attempt - 1), s.retry_max_delay)
    backoff_ms = int((delay / 2 + random.uniform(0, delay / 2)) * 1000)
    final = {"error": info.type, "message": info.message[:200], "attempt": attempt}
    data = json.dumps(final)
    retry_data = json.dumps({**final, "delay": backoff_ms / 1000.0})
    keys = held.keys
    item_keys = [keys.meta(held.work_id), *keys.res_block(held.resources)]
    args = [
        held.work_id,
        held.token,
        held.epoch,
        f"{held.token}:f",
        info.model_dump_json(),
        backoff_ms,
        "1" if terminal else "0",
        len(held.resources),
        data,
        retry_data,
    ]
    log.warning(
        "work %s attempt %d failed: %s: %s",
        held.work_id,
        attempt,
        info.type,
        info.message[:200],
        extra={
            "event": "step_failed",
            "work_id": held.work_id,
            "engine": item.engine,
            "attempt": attempt,
            "worker": worker.store.worker_id,
            "error": info.type,
            "exception": exc,
        },
    )
    try:
        reply = await worker.retrying(
            lambda: _durable(worker, held, "fail", item_keys, args), deadline=held.deadline
        )
    except RedisUnavailable:
        worker.observers.steps_ended(held.records, "refused", "redis unavailable")
        return
    kinds = {"RETRYING": "retrying", "DEAD": "dead", "FAILED": "failed"}
    observed: dict[str, Outcome] = {"RETRYING": "retried", "DEAD": "dead", "FAILED": "failed"}
    if reply[0] in observed:
        worker.observers.steps_ended(held.records, observed[reply[0]], info.type)
    else:
        worker.observers.steps_ended(held.records, "refused", str(reply[0]).lower())
    if reply[0] in kinds:
        body = retry_data if reply[0] == "RETRYING" else data
        worker.event(kinds[reply[0]], held.work_id, None, None, json.loads(body))
        if int(reply[-1]):
            worker.wake.set()
        if reply[0] == "RETRYING":
            worker.wake_at(float(reply[1]))


async def interrupted(worker: Worker, held: Held) -> None:
    """A step that was cut short: its lease was lost, it was cancelled, or the worker stops."""
    why = "lease lost" if held.lost else "cancelled" if held.cancelled else "worker stopping"
    worker.observers.steps_ended(held.records, "interrupted", why)
    if held.lost:
        log.warning("lease of %s lost; its step was abandoned", held.work_id)
        worker.event("lease_lost", held.work_id, None, None, {})
    elif held.cancelled:
        await release(worker, held, "cancelled")
    else:
        await release(worker, held, "worker stopping")


async def release(
    worker: Worker, held: Held, reason: str, *, deadline: float | None = None
) -> None:
    """Give the item back to the queue's front without using an attempt.

    Tried until Redis takes it, the lease lapses or ``deadline`` (monotonic) passes; then the
    item is left to its lease, which recovery hands on when it expires.
    """
    keys = held.keys
    dispatch = new_token()
    suffix = Keys.job_suffix(held.work_id, dispatch)
    item_keys = [keys.meta(held.work_id), keys.job(suffix), *keys.res_block(held.resources)]
    args = [
        held.work_id,
        held.token,
        held.epoch,
        f"{held.token}:r",
        dispatch,
        suffix,
        len(held.resources),
        reason,
    ]
    try:
        reply = await worker.retrying(
            lambda: worker.store.run_script("release", item_keys, args, keys=keys),
            deadline=held.deadline if deadline is None else min(deadline, held.deadline),
        )
    except RedisUnavailable:
        return
    if reply[0] in ("OK", "CANCELLED"):
        worker.event("released", held.work_id, None, None, {"reason": reason})
        if int(reply[-1]):
            worker.wake.set()


async def progress(
    worker: Worker, held: Held, fraction: float | None, message: str | None, data: dict[str, Any]
) -> None:
    """Save a step's progress report (at most every PROGRESS_MIN_INTERVAL, and the last)."""
    now = time.monotonic()
    if now - held.last_progress < PROGRESS_MIN_INTERVAL and fraction != 1.0:
        return
    held.last_progress = now
    ts = worker.clock.now_ms() / 1000.0
    body = json.dumps({"fraction": fraction, "message": message, "data": data, "ts": ts})
    try:
        await worker.store.run_script(
            "progress",
            [worker.keys.meta(held.work_id)],
            [held.work_id, held.token, held.epoch, body],
        )
    except Exception as exc:  # progress is best effort: it never fails the step reporting it
        log.warning("progress of %s not saved: %s", held.work_id, describe(exc))
