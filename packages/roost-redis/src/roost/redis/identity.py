"""A worker's identity and heartbeat: claiming an identity, beating, noticing a lapse.

A worker beats about once a second: its description (``keys.worker``), its standing in the
namespace's live-workers index and in its queue's heartbeat index (``keys.beats``, scored by
the beat's server time). The heartbeat index is how a vanished worker is found within
``ROOST_HEARTBEAT_TIMEOUT``, long before its leases expire: maintenance takes back the leases
of a worker whose last beat is older than that (:func:`roost.redis.maintenance.recover_worker`).

A worker started with a chosen identity (``ROOST_WORKER_ID``) first looks for a
predecessor with that identity. A predecessor whose beats have stopped (or, on this same
host, whose process is gone) is dead: its leases are taken back at once, instead of after
their TTL. One that still beats is alive, and the new worker refuses to start
(:class:`WorkerIdInUse`). Each run of a worker also writes a random *incarnation* under
its identity; a worker that finds another incarnation there has been replaced (it was
stalled long enough to look dead) and gives up. Whatever the timing, the lease fencing
keeps a replaced worker from committing what it held: taking back a lease deletes its
token, so the old holder's commit answers ``STALE``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from roost.redis.maintenance import Clock, recover_worker
from roost.runtime.errors import BadInput

if TYPE_CHECKING:
    from roost.redis.keys import Keys
    from roost.redis.store import RedisStore
    from roost.runtime.settings import RoostSettings

__all__ = [
    "Member",
    "WorkerIdInUse",
    "beat",
    "claim_identity",
    "heartbeat_interval",
    "unbroken_since",
]

log = logging.getLogger("roost.worker")

HEARTBEAT_INTERVAL = 1.0
"""How often a worker beats (at most: a fifth of ``ROOST_HEARTBEAT_TIMEOUT`` when shorter)."""
MISSED_BEAT_SLACK = 0.5
"""A predecessor that has not beaten for one interval and this much has missed a beat."""
POLL = 0.05


class Member(Protocol):
    """What beating reads and records of a worker (``roost.redis.worker.Worker``)."""

    store: RedisStore
    keys: Keys
    settings: RoostSettings
    clock: Clock
    incarnation: str
    """This run of the worker's identity (a restart with the same id has another)."""
    beat_done: float
    """When the last heartbeat that went through came back (monotonic)."""
    beating_since: float
    """Server ms at which this worker's current unbroken run of heartbeats began."""
    last_beat: float
    """When the last heartbeat that went through was sent (monotonic)."""

    @property
    def engines(self) -> Iterable[str]:
        """The engines the worker runs."""
        ...


class WorkerIdInUse(BadInput):
    """Another live worker has the identity this one was started with."""


def heartbeat_interval(timeout: float) -> float:
    """The beat interval for a ``ROOST_HEARTBEAT_TIMEOUT`` of ``timeout`` seconds."""
    return min(HEARTBEAT_INTERVAL, timeout / 5.0)


def _gap(worker: Member) -> float:
    """Seconds without a heartbeat going through that break a worker's unbroken run."""
    return 2 * heartbeat_interval(worker.settings.heartbeat_timeout) + 0.5


def unbroken_since(worker: Member) -> float:
    """Server ms at which the worker's current unbroken run of heartbeats began.

    ``inf`` while a gap is under way (no heartbeat has gone through for longer than two
    intervals): the run that :attr:`Member.beating_since` describes is broken even though
    no heartbeat has yet gone through to start the next one. A worker judges others by their
    silence only from a run at least ``ROOST_HEARTBEAT_TIMEOUT`` long (see
    ``maintenance.lapsed_workers``); its other loops may come back from an outage before its
    heartbeat does, and must not judge by a run the outage broke.
    """
    if time.monotonic() - worker.beat_done > _gap(worker):
        return float("inf")
    return worker.beating_since


async def beat(worker: Member, info: dict[str, Any], *, claim: bool = False) -> bool:
    """Publish one heartbeat; with ``claim``, make this run the identity's incarnation.

    Returns False (writing nothing) when another run of the same identity has claimed it
    since: this worker has been replaced.
    """
    swarm, keys = worker.store, worker.keys
    wid = swarm.worker_id
    key = keys.worker(wid)
    if not claim:
        holder: str | None = await swarm.client.hget(key, "inc")
        if holder is not None and holder != worker.incarnation:
            return False
    timeout_ms = int(worker.settings.heartbeat_timeout * 1000)
    sent = time.monotonic()
    now_ms = int(worker.clock.now_ms())
    expiry = {wid: now_ms + timeout_ms}
    body = {**info, "heartbeat": now_ms / 1000.0}
    async with swarm.client.pipeline(transaction=False) as pipe:
        pipe.hset(key, "info", json.dumps(body))
        if claim:
            # Only a claim writes the incarnation: a beat that checked it a moment before
            # a successor's claim must not write the old one back over the new.
            pipe.hset(key, "inc", worker.incarnation)
        pipe.hset(key, "beat", str(now_ms))
        pipe.pexpire(key, 2 * timeout_ms)
        pipe.zadd(keys.workers, expiry)
        pipe.zadd(keys.beats, {wid: now_ms})
        # Standing in each engine's live set is how work whose engine no live worker runs
        # is told apart from work that merely waits.
        for engine in worker.engines:
            pipe.zadd(keys.live(engine), expiry)
        pipe.sadd(keys.engines, *worker.engines)
        await pipe.execute()
    done = time.monotonic()
    # The first beat after a gap (Redis was away or slow, or the event loop was blocked)
    # starts a new unbroken run: until it is ROOST_HEARTBEAT_TIMEOUT old, this worker does
    # not judge others by their silence, which may be the same gap (see lapsed_workers).
    if claim or done - worker.beat_done > _gap(worker):
        worker.beating_since = now_ms
    worker.beat_done = done
    worker.last_beat = sent
    return True


async def claim_identity(worker: Member, info: dict[str, Any]) -> None:
    """Before taking work: take the identity over from a dead predecessor, then beat.

    With a chosen identity (``ROOST_WORKER_ID``), a predecessor that beat within the last
    interval (plus a little slack) is watched until it either beats again (it is alive:
    :class:`WorkerIdInUse`) or misses its beat (it is dead); the leases it held in this
    queue are then taken back at once, fenced, and go to the front of their engines' lists.

    Raises:
        WorkerIdInUse: a live worker has this identity.
    """
    if worker.settings.worker_id is not None:
        await _take_over(worker)
    await beat(worker, info, claim=True)


async def _take_over(worker: Member) -> None:
    swarm, keys = worker.store, worker.keys
    wid = swarm.worker_id
    key = keys.worker(wid)
    interval = heartbeat_interval(worker.settings.heartbeat_timeout)
    first, inc, raw = await swarm.client.hmget(key, ["beat", "inc", "info"])
    if first is not None and not _gone_from_this_host(raw):
        missed_at = int(first) + (interval + MISSED_BEAT_SLACK) * 1000
        while worker.clock.now_ms() < missed_at:
            await asyncio.sleep(POLL)
            now_beat, now_inc = await swarm.client.hmget(key, ["beat", "inc"])
            if now_beat is not None and (now_beat != first or now_inc != inc):
                raise WorkerIdInUse(_in_use(wid, raw, worker))
    async with swarm.client.pipeline(transaction=False) as pipe:
        pipe.execute_command("ZSCORE", keys.beats, wid)
        (score,) = await pipe.execute()
    beat_score = None if score is None else float(score)
    requeued, dead, alive = await recover_worker(swarm, keys, wid, beat_score)
    if alive:
        raise WorkerIdInUse(_in_use(wid, raw, worker))
    if requeued or dead:
        log.warning(
            "worker %s: took back %d leases of its previous run (%d dead: out of attempts)",
            wid,
            requeued + dead,
            dead,
        )


def _gone_from_this_host(raw: str | None) -> bool:
    """Whether the predecessor ran on this host under a PID that no process has now.

    Then it is dead for sure, with no need to wait for a missed beat: the common restart by
    a process supervisor on the same machine resumes at once. A predecessor elsewhere, or
    whose PID is taken (by this very process, say, in a container where both are PID 1),
    is judged by its heartbeat.
    """
    try:
        info = json.loads(raw or "{}")
        host, pid = str(info["host"]), int(info["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by another user), or cannot be told
        return False
    return False


def _in_use(wid: str, raw: str | None, worker: Member) -> str:
    where = ""
    try:
        info = json.loads(raw or "{}")
        where = f" (pid {int(info['pid'])} on {str(info['host'])[:64]}, queue {info['queue']})"
    except (ValueError, KeyError, TypeError):
        pass
    return (
        f"worker id {wid!r} is in use by a live worker{where}: stop it first, or start this "
        "one with another --worker-id / ROOST_WORKER_ID"
    )
