"""Fault scenarios on a handful of items: a stalled worker, poison; helpers for the drains."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from roost.redis import RedisSwarm
from roost.runtime import WorkItem
from roost_testkit.chaos.base import ChaosEnv, Result, audit, stop_workers, until
from roost_testkit.chaos.history import (
    COMMITS,
    read_jsonl,
)
from roost_testkit.chaos.procs import Proc


def attempts_of(env: ChaosEnv, work_id: str, phase: str = "start") -> list[dict[str, Any]]:
    return [
        r
        for r in read_jsonl(env.attempt_log)
        if r["work_id"] == work_id and r.get("phase") == phase
    ]


def started_on(env: ChaosEnv, work_id: str, proc: Proc, version: int | None = None) -> bool:
    return any(
        r["pid"] == proc.pid and (version is None or r["version"] == version)
        for r in attempts_of(env, work_id)
    )


async def state_is(swarm: RedisSwarm, work_id: str, *states: str) -> bool:
    return (await swarm.status(work_id)).meta.state in states


async def all_in(swarm: RedisSwarm, ids: list[str], *states: str) -> bool:
    metas = await swarm.metas(ids)
    return all(m is not None and m.state in states for m in metas)


def poison(env: ChaosEnv, name: str) -> str:
    path = env.root / f"{name}.poison"
    path.write_text("present\n")
    return str(path)


# -- 4. stalled worker --------------------------------------------------------------------


@dataclass(frozen=True)
class StallConfig:
    lease_ttl: float = 2.0
    stall: float = 8.0
    others: int = 3
    timeout: float = 60.0


async def stalled_worker(env: ChaosEnv, cfg: StallConfig) -> Result:
    """Scenario 4: a step blocks its worker's event loop past the lease TTL."""
    result = Result("stalled worker")
    server = env.server(appendonly=False)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    stalled = WorkItem(
        engine="hashchain",
        payload={"steps": 3, "modes": {"2": "block"}, "seconds": cfg.stall, "fail_times": 1},
    )
    # In flight on the same worker while its loop is blocked: they lose their leases too.
    others = [
        WorkItem(engine="hashchain", payload={"steps": 4, "mode": "sleep", "seconds": 1.0})
        for _ in range(cfg.others)
    ]
    steps = {stalled.work_id: 3, **{o.work_id: 4 for o in others}}
    result.items = len(steps)
    sid = stalled.work_id
    async with env.swarm(settings) as swarm:
        pair = await env.workers(settings, 2, cfg.others + 1)
        await swarm.enqueue_many([stalled, *others])
        blocked = await until(lambda: _stalling(env, sid), 30.0)
        result.check(blocked, "the stalling step never started")
        stall = [r for r in attempts_of(env, sid) if r["version"] == 2][0]
        stall_at = stall["start"]
        # a: the worker whose loop is blocked; b: the other one, which must take over.
        a, b = sorted(pair, key=lambda p: p.pid != stall["pid"])
        took_over = await until(lambda: state_is(swarm, sid, "done"), cfg.timeout)
        result.check(took_over, "nobody finished the stalled worker's item")
        before = await swarm.status(sid)
        n_before = len(await swarm.events(work_id=sid))
        refused = await until(lambda: _refused(env, sid, a), cfg.stall + 20.0)
        result.check(refused, "the stalled worker's late commit was not refused")
        await asyncio.sleep(0.5)
        after = await swarm.status(sid)
        result.check(
            after.model_dump() == before.model_dump(),
            "the refused late commit changed the item",
        )
        late = [e for e in (await swarm.events(work_id=sid))[n_before:]]
        result.check(not late, f"events after the refusal: {[e.type for e in late]}")
        result.check(a.alive(), "the stalled worker died")
        # The stalled worker is healthy again: alone, it runs new work.
        await stop_workers(env, [b], settings.grace_period + 10)
        fresh = await swarm.enqueue("hashchain", {"steps": 2})
        steps[fresh] = 2
        ran = await until(lambda: state_is(swarm, fresh, "done"), 30.0)
        result.check(ran, "the stalled worker did not run new work afterwards")
        done = await until(lambda: all_in(swarm, list(steps), "done"), cfg.timeout)
        result.check(done, "not every item finished")
        events = await audit(swarm, env, result, steps)
        await stop_workers(env, [a], settings.grace_period + 10)
    mine = [e for e in events if e.work_id == sid]
    grants = [e for e in mine if e.type == "started"]
    commit3 = [e for e in mine if e.type in COMMITS and e.version == 3]
    result.check(
        len(commit3) == 1 and commit3[0].worker == b.worker_id,
        f"version 3 committed by {[e.worker for e in commit3]}, expected the new holder",
    )
    runs = sorted(attempts_of(env, sid), key=lambda r: r["start"])
    v2 = [r for r in runs if r["version"] == 2]
    result.check(
        len(v2) == 2 and v2[0]["pid"] == a.pid and v2[1]["pid"] == b.pid,
        f"step from v2 ran on {[r['pid'] for r in v2]}",
    )
    if len(v2) == 2:
        result.check(v2[0]["epoch"] < v2[1]["epoch"], f"epochs {v2[0]['epoch']} {v2[1]['epoch']}")
    takeover = [g for g in grants if g.worker == b.worker_id]
    if takeover:
        delay = takeover[0].ts - stall_at
        result.resume([delay])
        result.check(
            delay <= cfg.lease_ttl + 2.0, f"takeover {delay:.2f}s after the stall (TTL + 2 s)"
        )
    if fresh_commits := [e for e in events if e.work_id == fresh and e.type in COMMITS]:
        result.check(
            all(e.worker == a.worker_id for e in fresh_commits),
            "new work after the stall was not run by the stalled worker",
        )
    result.check(result.fenced >= 1, "no fenced commit was counted")
    result.notes["fenced_including_other_items"] = result.fenced
    return result


def _stalling(env: ChaosEnv, work_id: str) -> Any:
    async def check() -> bool:
        return any(r["version"] == 2 for r in attempts_of(env, work_id))

    return check()


def _refused(env: ChaosEnv, work_id: str, proc: Proc) -> Any:
    async def check() -> bool:
        return any(
            r["type"] == "stale_commit" and r["work_id"] == work_id and r["pid"] == proc.pid
            for r in read_jsonl(env.sink_log)
        )

    return check()


# -- 5. poison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PoisonConfig:
    raise_attempts: int = 4
    exit_attempts: int = 3
    healthy: int = 6
    workers: int = 2
    lease_ttl: float = 2.0
    timeout: float = 120.0


@dataclass
class Watchdog:
    """Restarts workers that die on their own; counts the deaths."""

    env: ChaosEnv
    settings: Any
    workers: list[Proc]
    deaths: list[tuple[str, int | None, float]]
    concurrency: int = 1

    async def run(self) -> None:
        while True:
            for p in list(self.workers):
                if not p.alive() and not p.signals:
                    self.workers.remove(p)
                    self.deaths.append((p.name, p.returncode, time.time()))
                    self.workers.append(
                        await asyncio.to_thread(self.env.worker, self.settings, self.concurrency)
                    )
            await asyncio.sleep(0.1)


async def poison_items(env: ChaosEnv, cfg: PoisonConfig) -> Result:
    """Scenario 5: a step that raises and a step that kills its worker; then retry."""
    result = Result("poison")
    server = env.server(appendonly=False)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    raiser = WorkItem(
        engine="hashchain",
        payload={"steps": 3, "mode": "raise", "poison_file": poison(env, "raise")},
        max_attempts=cfg.raise_attempts,
    )
    killer = WorkItem(
        engine="hashchain",
        payload={"steps": 3, "modes": {"2": "exit"}, "poison_file": poison(env, "exit")},
        max_attempts=cfg.exit_attempts,
    )
    healthy = [
        WorkItem(
            engine="hashchain",
            payload={"steps": 3, "mode": "sleep", "seconds": 0.2},
            max_attempts=10,
        )
        for _ in range(cfg.healthy)
    ]
    rid, kid = raiser.work_id, killer.work_id
    steps = {rid: 3, kid: 3, **{h.work_id: 3 for h in healthy}}
    result.items = len(steps)
    # One slot per worker: the step that exits kills its worker and so costs an attempt to
    # every item that worker held (a lost worker counts as an attempt: that is what stops a
    # poison item from killing workers forever). With two slots the raising item could share
    # the killed worker and go dead from that loss, one RuntimeError short of its attempts.
    workers = await env.workers(settings, cfg.workers, 1)
    dog = Watchdog(env, settings, workers, [], concurrency=1)
    watch = asyncio.create_task(dog.run())
    try:
        async with env.swarm(settings) as swarm:
            await swarm.enqueue_many([raiser, killer, *healthy])
            began = time.time()
            ok = await until(lambda: all_in(swarm, [rid, kid], "dead"), cfg.timeout)
            result.notes["both_dead_after_s"] = round(time.time() - began, 1)
            result.check(ok, "the poison items did not both go dead")
            ok = await until(
                lambda: all_in(swarm, [h.work_id for h in healthy], "done"), cfg.timeout
            )
            result.check(ok, "healthy items did not finish next to the poison")
            deaths = len(dog.deaths)
            await asyncio.sleep(2 * cfg.lease_ttl + 1.0)
            result.check(len(dog.deaths) == deaths, "workers kept dying after the item went dead")
            result.check(
                deaths == cfg.exit_attempts,
                f"{deaths} worker deaths for a step allowed {cfg.exit_attempts} attempts",
            )
            codes = {d[1] for d in dog.deaths}
            result.check(codes <= {3}, f"workers died with codes {codes}, not the step's 3")
            r_meta = (await swarm.status(rid)).meta
            k_meta = (await swarm.status(kid)).meta
            _check_dead(env, result, rid, r_meta, cfg.raise_attempts, 1, "RuntimeError")
            _check_dead(env, result, kid, k_meta, cfg.exit_attempts, 2, "WorkerLost")
            # The operator fixes the cause and retries: each runs again, once.
            retry_at = time.time()
            for path in ("raise", "exit"):
                (env.root / f"{path}.poison").unlink()
            await swarm.retry(rid)
            await swarm.retry(kid)
            ok = await until(lambda: all_in(swarm, [rid, kid], "done"), cfg.timeout)
            result.check(ok, "retried items did not finish")
            result.notes["retried_done_after_s"] = round(time.time() - retry_at, 1)
            result.check(len(dog.deaths) == deaths, "a worker died after the retry")
            events = await audit(swarm, env, result, steps)
            result.check(result.dead == 2, f"{result.dead} dead letters, expected 2")
            for work_id, first in ((rid, 1), (kid, 2)):
                again = [r for r in attempts_of(env, work_id) if r["start"] >= retry_at]
                versions = sorted(r["version"] for r in again)
                result.check(
                    versions == list(range(first, 4)) and all(r["attempt"] == 1 for r in again),
                    f"after retry {work_id} ran {[(r['version'], r['attempt']) for r in again]}",
                )
                retried = [e for e in events if e.work_id == work_id and e.type == "retried"]
                result.check(len(retried) == 1, f"{len(retried)} retried events for {work_id}")
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    await stop_workers(env, dog.workers, settings.grace_period + 10)
    result.notes.update(worker_deaths=len(dog.deaths), dead_letters_before_retry=2)
    return result


def _check_dead(
    env: ChaosEnv, result: Result, work_id: str, meta: Any, attempts: int, version: int, error: str
) -> None:
    runs = attempts_of(env, work_id)
    at = [r["attempt"] for r in runs if r["version"] == version]
    result.check(
        sorted(at) == list(range(1, attempts + 1)),
        f"{work_id} ran attempts {at} before going dead, expected 1..{attempts}",
    )
    result.check(meta.state == "dead", f"{work_id} is {meta.state}")
    result.check(meta.attempts == attempts, f"{work_id} meta shows {meta.attempts} attempts")
    result.check(meta.version == version, f"failed attempts moved {work_id} to v{meta.version}")
    err = meta.last_error.type if meta.last_error else None
    result.check(err == error, f"{work_id} last error {err}, expected {error}")
