"""The lease store on Redis: what :class:`roost.runtime.runner.Runner` asks of a backend.

:class:`RedisLeases` implements :class:`roost.runtime.runner.LeaseStore` with Roost's
scripts: acquire, renew, commit, fail, release, progress and recover. Every call under a
lease names it (token and epoch), and the scripts refuse a lapsed or foreign lease with
``STALE``. Commit, fail and release also carry an op id, so a repeat of the same call (its
reply lost to a broken connection) answers ``DUP`` instead of applying twice. Calls that
must go through (acquire, commit, fail, release, reading signals) are retried through Redis
outages until the lease's local deadline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from roost.redis.budgets import budget_arg
from roost.redis.children import family_for, resolve_keys, spawn_block
from roost.redis.children import wait_arg as family_wait_arg
from roost.redis.codec import (
    error_info,
    read_item,
    read_snapshot,
    stored_snapshot,
    stored_snapshot_text,
)
from roost.redis.contract import Code
from roost.redis.faults import describe
from roost.redis.keys import Keys, new_token
from roost.redis.maintenance import Clock, reclaim_stranded, recover_expired
from roost.redis.replies import AcquireReply, CommitReply
from roost.redis.signals import read_signals, wait_arg
from roost.redis.supervise import retry_outages
from roost.runtime.models import Signal, WorkItem
from roost.runtime.stores import (
    Acquired,
    Commit,
    CommitStatus,
    Committed,
    Failed,
    FailStatus,
    Failure,
    Held,
    LeaseStore,
    Next,
    Recovered,
    Released,
    RenewStatus,
)

if TYPE_CHECKING:
    from roost.redis.store import RedisStore
    from roost.redis.supervise import Health
    from roost.runtime.children import Family

__all__ = ["RENEW_BATCH", "WAIT_BASE_MS", "WAIT_CAP_MS", "RedisLeases", "describe_failure"]

log = logging.getLogger("roost.worker")

RENEW_BATCH = 100
"""The most leases one renewal call extends."""
WAIT_BASE_MS = 50
"""An item whose resources are taken is looked at again after this long at first..."""
WAIT_CAP_MS = 1000
"""...doubling up to this long."""

T = TypeVar("T")

_COMMITTED = {
    Code.OK: CommitStatus.COMMITTED,
    Code.DUP: CommitStatus.REPEATED,
    Code.CANCELLED: CommitStatus.CANCELLED,
    Code.TAKEN: CommitStatus.CHILD_TAKEN,
    Code.RACE: CommitStatus.CHILD_RACE,
}
_FAILED = {
    Code.RETRYING: FailStatus.RETRYING,
    Code.DEAD: FailStatus.DEAD,
    Code.FAILED: FailStatus.FAILED,
}
_RENEWED = {Code.OK: RenewStatus.OK, Code.CANCELLED: RenewStatus.CANCELLED}


def describe_failure(exc: BaseException, attempt: int, now: float) -> tuple[str, str, str]:
    """A failed attempt as the fail script stores it: error type, message, ``ErrorInfo`` JSON."""
    info = error_info(exc, attempt, now)
    return info.type, info.message, info.model_dump_json()


def acquire_waits(reply: AcquireReply) -> tuple[float | None, float | None]:
    """From an acquire reply: seconds the item sat queued, and how late it was (or None)."""
    now, queued, due = reply.now, reply.queued_since, reply.late_due
    return (
        None if queued is None else max(now - queued, 0.0) / 1000.0,
        None if due is None else max(now - due, 0.0) / 1000.0,
    )


class RedisLeases(LeaseStore):
    """The leases of one worker's queue on Redis (a :class:`roost.runtime.runner.LeaseStore`)."""

    def __init__(
        self,
        store: RedisStore,
        *,
        health: Health,
        engine_limits: str,
        stopping: Callable[[], bool],
    ) -> None:
        """Take the leases of ``store``'s queue.

        Args:
            store: the connected namespace.
            health: where calls retried through an outage report it (the ``steps`` loop).
            engine_limits: ``engine=max_attempts`` pairs for the acquire script.
            stopping: whether the worker stops (a call without a deadline then gives up).
        """
        self.store = store
        self.keys = store.keys
        self.settings = store.settings
        self.health = health
        self.engine_limits = engine_limits
        self.stopping = stopping
        self._clock = Clock()

    @property
    def clock(self) -> Clock:
        """The server's clock, as the replies that carry its ``TIME`` put it."""
        return self._clock

    async def retrying(
        self, call: Callable[[], Awaitable[T]], *, deadline: float | None = None
    ) -> T:
        """Run ``call()`` until Redis serves it (scripts tolerate a repeat); outages only.

        Raises:
            RedisUnavailable: the outage outlasted ``deadline`` (monotonic) or, without one,
                the worker began to stop.
        """
        return await retry_outages(
            self.health.loop("steps"),
            call,
            deadline=deadline,
            giving_up=lambda: deadline is None and self.stopping(),
        )

    # -- acquire and renew ----------------------------------------------------------------

    async def acquire(self, route: Keys, delivery: str, token: str) -> Acquired | float | None:
        """Lease the item of job ``delivery`` from ``route``'s list (see the protocol)."""
        parsed = route.parse_job(delivery)
        if parsed is None:
            log.warning("ignoring a foreign job on the queue: %s", delivery)
            return None
        work_id, dispatch = parsed
        resources = ""
        for _ in range(3):
            sent = time.monotonic()
            sent_ms = self._clock.local_ms()
            reply = await self.retrying(
                functools.partial(
                    self._acquire, route, work_id, dispatch, token, delivery, resources
                ),
            )
            if reply.code is Code.NEEDRES:
                resources = reply.resources
                continue
            break
        else:
            return None
        if reply.code is Code.WAIT:
            return reply.delay_ms
        if reply.code is not Code.OK:
            return None
        self._clock.observe(reply.now, sent_ms)
        item = read_item(work_id, reply.item_json)
        snap_json = reply.snap_json
        return Acquired(
            work_id=work_id,
            token=token,
            epoch=reply.epoch,
            expires_ms=reply.lease_expires,
            attempt=reply.attempt,
            version=reply.version,
            item=item,
            snapshot=read_snapshot(work_id, snap_json, engine=item.engine) if snap_json else None,
            cancelled=reply.cancelled,
            sent=sent,
            route=route if item.engine == route.engine else self.keys.for_engine(item.engine),
            waits=acquire_waits(reply),
        )

    async def _acquire(
        self, keys: Keys, work_id: str, dispatch: str, token: str, job_id: str, resources: str
    ) -> AcquireReply:
        return await self.store.calls.acquire(
            keys,
            work_id=work_id,
            dispatch=dispatch,
            token=token,
            job=job_id,
            resources=resources.split(" ") if resources else [],
            max_attempts=self.settings.max_attempts,
            wait_base_ms=WAIT_BASE_MS,
            wait_cap_ms=WAIT_CAP_MS,
            engine_limits=self.engine_limits,
        )

    async def renew(self, held: Sequence[Held]) -> list[RenewStatus]:
        """Extend every lease of ``held``: one script call per :data:`RENEW_BATCH` leases.

        The calls go out together; each one keeps the server busy for a bounded time (one
        call renewing 1,000 leases held Redis for about 12 ms).
        """
        if not held:
            return []
        sent_ms = self._clock.local_ms()
        replies = await asyncio.gather(
            *(
                self.store.calls.renew(
                    self.keys, [(h.work_id, h.token, h.epoch, h.resources) for h in chunk]
                )
                for chunk in (held[i : i + RENEW_BATCH] for i in range(0, len(held), RENEW_BATCH))
            )
        )
        self._clock.observe(replies[0].now, sent_ms)
        return [
            _RENEWED.get(Code(status), RenewStatus.LOST)
            for reply in replies
            for status in reply.statuses
        ]

    # -- commit ---------------------------------------------------------------------------

    async def commit(self, held: Held, commit: Commit) -> Committed:
        """Run the commit script for ``commit`` (with its children, if any)."""
        new, init, version = commit.snapshot, commit.init, commit.base
        hold = commit.next is Next.HOLD
        call = functools.partial(
            self.store.calls.commit,
            held.route,
            work_id=held.work_id,
            token=held.token,
            epoch=held.epoch,
            op=f"{held.token}:{version}",
            resources=held.resources,
            expected_version=version,
            snapshot_json=stored_snapshot_text(held.work_id, commit.snapshot_json),
            step=new.step,
            outcome=str(commit.next),
            delay_ms=commit.delay_ms,
            dispatch=new_token(),
            history=self.settings.history,
            event_data=commit.event_data,
            init_json=stored_snapshot(init) if init else "",
            init_step=init.step if init else "",
            ended_ms=int(commit.ended_ms) if commit.ended_ms is not None else None,
            wait="" if hold else wait_arg(new, held.consume),
            budget=budget_arg(
                commit.item,
                commit.engine,
                held.charge,
                0 if version == 0 and init is None else 1,
            ),
            durable=self._durable,
        )
        sent_ms = self._clock.local_ms()
        reply = await self._send_commit(held, call, commit.family)
        status = _COMMITTED.get(reply.code, CommitStatus.REFUSED)
        if status is CommitStatus.COMMITTED:
            self._clock.observe(reply.now, sent_ms)
            return Committed(
                status,
                event_id=reply.event_id,
                paused=reply.paused,
                woke=bool(reply.woken),
                due_ms=reply.due_ms if commit.next is Next.DELAY else None,
            )
        if status is CommitStatus.CHILD_TAKEN:
            return Committed(status, reason=reply.child)
        if status is CommitStatus.CHILD_RACE:
            return Committed(status, reason=reply.key)
        return Committed(status, reason=str(reply.code))

    @property
    def _durable(self) -> bool:
        """Whether lease-holder writes wait for their fsync and replicas (when configured)."""
        return self.settings.strict_durability or bool(self.settings.wait_replicas)

    async def _send_commit(
        self,
        held: Held,
        call: Callable[..., Awaitable[CommitReply]],
        family: Family | None,
    ) -> CommitReply:
        """Run the commit script, with the children block when the step spawned or waits.

        A ``RACE`` reply (a child's idempotency key was taken between reading it and the
        commit) writes nothing: the keys are read again and the commit repeated.
        """
        if family is None or (not family.spawned and family.wait is None):
            return await self.retrying(call, deadline=held.deadline)
        keys: Keys = held.route
        reply: CommitReply | None = None
        for _ in range(3):
            spawned = await self.retrying(
                functools.partial(resolve_keys, self.store, family.spawned),
                deadline=held.deadline,
            )
            children, children_args = spawn_block(keys, spawned, keys.queue)
            reply = await self.retrying(
                functools.partial(
                    call,
                    children=children,
                    children_args=children_args,
                    kids_wait=family_wait_arg(family),
                ),
                deadline=held.deadline,
            )
            if reply.code is not Code.RACE:
                break
        assert reply is not None
        return reply

    # -- fail, release, progress ----------------------------------------------------------

    async def fail(self, held: Held, failure: Failure) -> Failed:
        """Run the fail script: a retry after ``failure.backoff_ms``, or the item's end."""
        call = functools.partial(
            self.store.calls.fail,
            held.route,
            work_id=held.work_id,
            token=held.token,
            epoch=held.epoch,
            op=f"{held.token}:f",
            resources=held.resources,
            error_json=failure.error_json,
            backoff_ms=failure.backoff_ms,
            terminal=failure.terminal,
            data=failure.data,
            retry_data=failure.retry_data,
            durable=self._durable,
        )
        reply = await self.retrying(call, deadline=held.deadline)
        status = _FAILED.get(reply.code)
        if status is None:
            return Failed(FailStatus.REFUSED, reason=str(reply.code))
        return Failed(
            status,
            woke=bool(reply.woken),
            due_ms=reply.due_ms if status is FailStatus.RETRYING else None,
        )

    async def release(self, held: Held, reason: str, *, deadline: float) -> Released:
        """Run the release script until Redis takes it or ``deadline`` (monotonic) passes."""
        call = functools.partial(
            self.store.calls.release,
            held.route,
            work_id=held.work_id,
            token=held.token,
            epoch=held.epoch,
            op=f"{held.token}:r",
            resources=held.resources,
            dispatch=new_token(),
            reason=reason,
        )
        reply = await self.retrying(call, deadline=deadline)
        if reply.code in (Code.OK, Code.CANCELLED):
            return Released(True, woke=bool(reply.woken))
        return Released(False)

    async def progress(self, held: Held, report: str) -> None:
        """Save a progress report; best effort: a failure is logged, never raised."""
        try:
            await self.store.calls.progress(
                self.keys,
                work_id=held.work_id,
                token=held.token,
                epoch=held.epoch,
                report=report,
            )
        except Exception as exc:  # progress is best effort: it never fails the step reporting it
            log.warning("progress of %s not saved: %s", held.work_id, describe(exc))

    # -- what a step reads ----------------------------------------------------------------

    async def signals(self, held: Held) -> list[Signal]:
        """The held item's unconsumed signals, read through outages until its deadline."""
        keys: Keys = held.route
        return await self.retrying(
            functools.partial(read_signals, self.store.client, keys.sig(held.work_id)),
            deadline=held.deadline,
        )

    def family(self, item: WorkItem, *, stepping: bool) -> Family:
        """The children part of a step context (outcomes read through outages)."""
        return family_for(self.store, item, stepping=stepping, retrying=self.retrying)

    # -- recovery -------------------------------------------------------------------------

    async def recover(self) -> Recovered:
        """Hand on expired leases, and re-dispatch deliveries no worker acknowledged."""
        requeued, dead = await recover_expired(self.store, self.keys, self._clock)
        redispatched, _ = await reclaim_stranded(self.store, self.keys)
        return Recovered(requeued, dead, redispatched)
