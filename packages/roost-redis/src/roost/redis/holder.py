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

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from roost.redis.budgets import budget_arg
from roost.redis.children import family_for, resolve_keys, spawn_block
from roost.redis.children import wait_arg as family_wait_arg
from roost.redis.codec import error_info, read_item, read_snapshot, stored_snapshot
from roost.redis.faults import describe
from roost.redis.keys import Keys, new_token
from roost.redis.maintenance import Clock, reclaim_stranded, recover_expired
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

__all__ = ["WAIT_BASE_MS", "WAIT_CAP_MS", "RedisLeases", "describe_failure"]

log = logging.getLogger("roost.worker")

WAIT_BASE_MS = 50
"""An item whose resources are taken is looked at again after this long at first..."""
WAIT_CAP_MS = 1000
"""...doubling up to this long."""

T = TypeVar("T")

_COMMITTED = {
    "OK": CommitStatus.COMMITTED,
    "DUP": CommitStatus.REPEATED,
    "CANCELLED": CommitStatus.CANCELLED,
    "TAKEN": CommitStatus.CHILD_TAKEN,
    "RACE": CommitStatus.CHILD_RACE,
}
_FAILED = {"RETRYING": FailStatus.RETRYING, "DEAD": FailStatus.DEAD, "FAILED": FailStatus.FAILED}
_RENEWED = {"OK": RenewStatus.OK, "CANCELLED": RenewStatus.CANCELLED}


def describe_failure(exc: BaseException, attempt: int, now: float) -> tuple[str, str, str]:
    """A failed attempt as the fail script stores it: error type, message, ``ErrorInfo`` JSON."""
    info = error_info(exc, attempt, now)
    return info.type, info.message, info.model_dump_json()


def acquire_waits(reply: list[Any]) -> tuple[float | None, float | None]:
    """From an acquire reply: seconds the item sat queued, and how late it was (or None)."""
    now = float(reply[3])
    queued = float(reply[9]) if len(reply) > 9 and reply[9] else None
    due = float(reply[10]) if len(reply) > 10 and reply[10] else None
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

    async def _durable(self, held: Held, name: str, item_keys: list[str], args: list[Any]) -> Any:
        """Run a lease-holder script, waiting for its fsync and replicas when configured."""
        if self.settings.strict_durability or self.settings.wait_replicas:
            return await self.store.run_script_durable(name, item_keys, args, keys=held.route)
        return await self.store.run_script(name, item_keys, args, keys=held.route)

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
            if reply[0] == "NEEDRES":
                resources = reply[1]
                continue
            break
        else:
            return None
        if reply[0] == "WAIT":
            return float(reply[1])
        if reply[0] != "OK":
            return None
        self._clock.observe(float(reply[3]), sent_ms)
        _, epoch, lexp, _now, attempt, version, item_json, snap_json, cxl = reply[:9]
        item = read_item(work_id, item_json)
        return Acquired(
            work_id=work_id,
            token=token,
            epoch=int(epoch),
            expires_ms=float(lexp),
            attempt=int(attempt),
            version=int(version),
            item=item,
            snapshot=read_snapshot(work_id, snap_json) if snap_json else None,
            cancelled=bool(cxl),
            sent=sent,
            route=route if item.engine == route.engine else self.keys.for_engine(item.engine),
            waits=acquire_waits(reply),
        )

    async def _acquire(
        self, keys: Keys, work_id: str, dispatch: str, token: str, job_id: str, resources: str
    ) -> Any:
        names = resources.split(" ") if resources else []
        return await self.store.run_script(
            "acquire",
            [
                keys.meta(work_id),
                keys.item(work_id),
                keys.snap(work_id),
                job_id,
                *keys.res_block(names),
            ],
            [
                work_id,
                dispatch,
                token,
                self.settings.max_attempts,
                len(names),
                resources,
                WAIT_BASE_MS,
                WAIT_CAP_MS,
                self.engine_limits,
            ],
            keys=keys,
        )

    async def renew(self, held: Sequence[Held]) -> list[RenewStatus]:
        """Extend every lease of ``held`` in one script call."""
        item_keys: list[str] = []
        args: list[Any] = [len(held)]
        for h in held:
            item_keys += [self.keys.meta(h.work_id), *(self.keys.res(r) for r in h.resources)]
            args += [h.work_id, h.token, h.epoch, len(h.resources)]
        sent_ms = self._clock.local_ms()
        reply = await self.store.run_script("renew", item_keys, args)
        self._clock.observe(float(reply[0]), sent_ms)
        return [_RENEWED.get(status, RenewStatus.LOST) for status in reply[1:]]

    # -- commit ---------------------------------------------------------------------------

    async def commit(self, held: Held, commit: Commit) -> Committed:
        """Run the commit script for ``commit`` (with its children, if any)."""
        keys: Keys = held.route
        new, init, version = commit.snapshot, commit.init, commit.base
        hold = commit.next is Next.HOLD
        dispatch = new_token()
        suffix = Keys.job_suffix(held.work_id, dispatch)
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
            commit.snapshot_json,
            new.step,
            str(commit.next),
            commit.delay_ms,
            dispatch,
            suffix,
            self.settings.history,
            len(held.resources),
            commit.event_data,
            stored_snapshot(init) if init else "",
            init.step if init else "",
            int(commit.ended_ms) if commit.ended_ms is not None else "",
            "" if hold else wait_arg(new, held.consume),
            budget_arg(
                commit.item,
                commit.engine,
                held.charge,
                0 if version == 0 and init is None else 1,
            ),
        ]
        sent_ms = self._clock.local_ms()
        reply = await self._send_commit(held, item_keys, args, commit.family)
        code = str(reply[0])
        status = _COMMITTED.get(code, CommitStatus.REFUSED)
        if status is CommitStatus.COMMITTED:
            self._clock.observe(float(reply[4]), sent_ms)
            return Committed(
                status,
                event_id=str(reply[2]),
                paused=len(reply) > 6 and bool(int(reply[6])),
                woke=bool(int(reply[3])),
                due_ms=float(reply[5]) if commit.next is Next.DELAY else None,
            )
        if status in (CommitStatus.CHILD_TAKEN, CommitStatus.CHILD_RACE):
            return Committed(status, reason=str(reply[1]))
        return Committed(status, reason=code)

    async def _send_commit(
        self, held: Held, item_keys: list[str], args: list[Any], family: Family | None
    ) -> Any:
        """Run the commit script, with the children block when the step spawned or waits.

        A ``RACE`` reply (a child's idempotency key was taken between reading it and the
        commit) writes nothing: the keys are read again and the commit repeated.
        """
        if family is None or (not family.spawned and family.wait is None):
            return await self.retrying(
                lambda: self._durable(held, "commit", item_keys, args), deadline=held.deadline
            )
        keys: Keys = held.route
        reply: Any = None
        for _ in range(3):
            spawned = await self.retrying(
                functools.partial(resolve_keys, self.store, family.spawned),
                deadline=held.deadline,
            )
            more_keys, more_args = spawn_block(
                keys, held.work_id, spawned, keys.queue, family_wait_arg(family)
            )
            call_keys, call_args = item_keys + more_keys, args + more_args
            reply = await self.retrying(
                functools.partial(self._durable, held, "commit", call_keys, call_args),
                deadline=held.deadline,
            )
            if reply[0] != "RACE":
                break
        return reply

    # -- fail, release, progress ----------------------------------------------------------

    async def fail(self, held: Held, failure: Failure) -> Failed:
        """Run the fail script: a retry after ``failure.backoff_ms``, or the item's end."""
        keys: Keys = held.route
        item_keys = [keys.meta(held.work_id), *keys.res_block(held.resources)]
        args = [
            held.work_id,
            held.token,
            held.epoch,
            f"{held.token}:f",
            failure.error_json,
            failure.backoff_ms,
            "1" if failure.terminal else "0",
            len(held.resources),
            failure.data,
            failure.retry_data,
        ]
        reply = await self.retrying(
            lambda: self._durable(held, "fail", item_keys, args), deadline=held.deadline
        )
        status = _FAILED.get(str(reply[0]))
        if status is None:
            return Failed(FailStatus.REFUSED, reason=str(reply[0]))
        return Failed(
            status,
            woke=bool(int(reply[-1])),
            due_ms=float(reply[1]) if status is FailStatus.RETRYING else None,
        )

    async def release(self, held: Held, reason: str, *, deadline: float) -> Released:
        """Run the release script until Redis takes it or ``deadline`` (monotonic) passes."""
        keys: Keys = held.route
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
        reply = await self.retrying(
            lambda: self.store.run_script("release", item_keys, args, keys=keys),
            deadline=deadline,
        )
        if reply[0] in ("OK", "CANCELLED"):
            return Released(True, woke=bool(int(reply[-1])))
        return Released(False)

    async def progress(self, held: Held, report: str) -> None:
        """Save a progress report; best effort: a failure is logged, never raised."""
        try:
            await self.store.run_script(
                "progress",
                [self.keys.meta(held.work_id)],
                [held.work_id, held.token, held.epoch, report],
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
