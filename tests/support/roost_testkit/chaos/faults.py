"""Fault scenarios on a handful of items: graceful drain, a stalled worker, poison."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from typing import Any

from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost.runtime import RuntimeEvent, WorkItem
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


def stopping_at(env: ChaosEnv, proc: Proc) -> float | None:
    """When ``proc``'s worker began to stop (its ``stopping`` record), if it did."""
    for r in read_jsonl(env.sink_log):
        if r["type"] == "stopping" and r["pid"] == proc.pid:
            return float(r["ts"])
    return None


def started_after(env: ChaosEnv, proc: Proc, at: float) -> list[dict[str, Any]]:
    """Steps ``proc`` started after ``at``."""
    return [
        r
        for r in read_jsonl(env.attempt_log)
        if r.get("phase") == "start" and r["pid"] == proc.pid and r["start"] > at
    ]


async def hung(env: ChaosEnv, proc: Proc, waited: float) -> str:
    """Describe a worker that did not exit after SIGTERM: ask it for its tasks, then kill it."""
    env.procs.send(proc, signal.SIGUSR1)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(env.procs.kill, proc)
    tasks = [
        line.strip()
        for line in env.procs.log_tail(proc, 60).splitlines()
        if line.startswith("TASK") or line.strip().startswith("File")
    ]
    return (
        f"{proc.name} still running {waited:.0f}s after SIGTERM (hung stop); its tasks: "
        + " | ".join(tasks[-12:])
    )


def poison(env: ChaosEnv, name: str) -> str:
    path = env.root / f"{name}.poison"
    path.write_text("present\n")
    return str(path)


# -- 2. graceful drain --------------------------------------------------------------------


@dataclass(frozen=True)
class DrainConfig:
    short_items: int = 4
    steps: int = 3
    step_seconds: float = 1.5
    grace: float = 4.0
    lease_ttl: float = 3.0
    timeout: float = 90.0


async def graceful_drain(env: ChaosEnv, cfg: DrainConfig) -> Result:
    """Scenario 2: SIGTERM with steps running; then a second signal exits at once."""
    result = Result("graceful drain")
    server = env.server(appendonly=False)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl, grace_period=cfg.grace)
    shorts = [
        WorkItem(
            engine="hashchain",
            payload={"steps": cfg.steps, "mode": "sleep", "seconds": cfg.step_seconds},
        )
        for _ in range(cfg.short_items)
    ]
    # Longer than the grace period, on its only allowed attempt: losing an attempt kills it.
    long_item = WorkItem(
        engine="hashchain",
        payload={"steps": 1, "mode": "sleep", "seconds": 120.0, "poison_file": poison(env, "long")},
        max_attempts=1,
    )
    ids = [i.work_id for i in shorts]
    steps = {**{w: cfg.steps for w in ids}, long_item.work_id: 1}
    result.items = len(steps)
    async with env.swarm(settings) as swarm:
        w = await asyncio.to_thread(env.worker, settings, cfg.short_items + 1)
        await swarm.enqueue_many([*shorts, long_item])
        everything_started = await until(
            lambda: _all_started(env, [*ids, long_item.work_id], w), 30.0
        )
        result.check(everything_started, "the draining worker never started all items")
        backup = await asyncio.to_thread(env.worker, settings, cfg.short_items + 1)
        # Mid-step: the short steps have ~1 s left, the long one far more than the grace.
        (env.root / "long.poison").unlink()
        await until(lambda: _mid_step(env, ids, w, cfg.step_seconds), 10.0, 0.02)
        term_at = env.procs.send(w, signal.SIGTERM)
        code = await asyncio.to_thread(env.procs.wait, w, cfg.grace + 15.0)
        exit_after = (w.ended_at or time.time()) - term_at
        result.check(code == 0, f"draining worker exited with {code}, not 0")
        result.check(
            exit_after <= cfg.grace + 2.0,
            f"draining worker took {exit_after:.2f}s to exit (grace {cfg.grace}s)",
        )
        done = await until(lambda: all_in(swarm, list(steps), "done"), cfg.timeout)
        result.check(done, "items did not all finish after the drain")
        result.notes["drain_exit_s"] = round(exit_after, 2)
        codes = await stop_workers(env, [backup], cfg.grace + 10.0)
        result.check(codes == {backup.name: 0}, f"idle worker did not exit 0: {codes}")
        # A second signal exits at once; the lease then expires and the item resumes.
        second, second_at = await _second_signal(env, swarm, settings, result, cfg)
        steps[second] = 1
        events = await audit(swarm, env, result, steps)
    _check_drain(env, result, events, w, backup, term_at, ids, long_item.work_id)
    grants = [e for e in events if e.work_id == second and e.type == "started"]
    if result.check(len(grants) == 2, f"force-stopped item leased {len(grants)} times, not twice"):
        delay = grants[1].ts - second_at
        result.resume([delay])
        result.check(
            delay <= cfg.lease_ttl + 2.0,
            f"force-stopped worker's item resumed after {delay:.2f}s (TTL + 2 s bound)",
        )
    result.items = len(steps)
    return result


def _all_started(env: ChaosEnv, ids: list[str], w: Proc) -> Any:
    async def check() -> bool:
        return all(started_on(env, i, w) for i in ids)

    return check()


def _mid_step(env: ChaosEnv, ids: list[str], w: Proc, step_seconds: float) -> Any:
    """Every short item's latest step on ``w`` started 0.3-0.9 of a step ago."""

    async def check() -> bool:
        now = time.time()
        for work_id in ids:
            runs = [r for r in attempts_of(env, work_id) if r["pid"] == w.pid]
            if not runs:
                return False
            age = now - max(r["start"] for r in runs)
            if not 0.3 * step_seconds <= age <= 0.9 * step_seconds:
                return False
        return True

    return check()


def _check_drain(
    env: ChaosEnv,
    result: Result,
    events: list[RuntimeEvent],
    w: Proc,
    backup: Proc,
    term_at: float,
    ids: list[str],
    long_id: str,
) -> None:
    starts = [r for r in read_jsonl(env.attempt_log) if r.get("phase") == "start"]
    ends = {
        (r["work_id"], r["version"], r["pid"])
        for r in read_jsonl(env.attempt_log)
        if r.get("phase") == "end"
    }
    stop_at = stopping_at(env, w) or term_at
    late = [r for r in starts if r["pid"] == w.pid and r["start"] > stop_at]
    result.check(not late, f"{len(late)} steps started on the draining worker after SIGTERM")
    commits = {(e.work_id, e.version, e.worker) for e in events if e.type in COMMITS}
    for r in starts:
        if r["pid"] != w.pid or r["work_id"] not in ids:
            continue
        key = (r["work_id"], r["version"], w.pid)
        result.check(key in ends, f"step {key[:2]} running at SIGTERM did not finish")
        result.check(
            (r["work_id"], r["version"] + 1, w.worker_id) in commits,
            f"step {key[:2]} running at SIGTERM was not committed by its worker",
        )
    mine = [e for e in events if e.work_id == long_id]
    released = [e for e in mine if e.type == "released" and e.worker == w.worker_id]
    result.check(len(released) == 1, f"long step released {len(released)} times, not once")
    grants = [e for e in mine if e.type == "started"]
    result.check(
        len(grants) == 2 and grants[1].worker == backup.worker_id,
        f"long item leased {[(g.worker, g.data) for g in grants]}",
    )
    if len(grants) == 2 and released:
        result.check(
            grants[1].data.get("attempt") == 1,
            f"the released step resumed as attempt {grants[1].data.get('attempt')}, not 1",
        )
        result.resume([grants[1].ts - released[0].ts])


async def _second_signal(
    env: ChaosEnv, swarm: RedisSwarm, settings: Any, result: Result, cfg: DrainConfig
) -> tuple[str, float]:
    item = WorkItem(
        engine="hashchain",
        payload={
            "steps": 1,
            "mode": "sleep",
            "seconds": 120.0,
            "poison_file": poison(env, "twice"),
        },
    )
    w = await asyncio.to_thread(env.worker, settings, 1)
    await swarm.enqueue_many([item])
    result.check(
        await until(lambda: _all_started(env, [item.work_id], w), 30.0), "item never started"
    )
    backup = await asyncio.to_thread(env.worker, settings, 1)
    (env.root / "twice.poison").unlink()
    env.procs.send(w, signal.SIGTERM)
    await asyncio.sleep(0.5)
    second_at = env.procs.send(w, signal.SIGTERM)
    code = await asyncio.to_thread(env.procs.wait, w, 10.0)
    took = (w.ended_at or time.time()) - second_at
    result.check(code == 128 + signal.SIGTERM, f"second SIGTERM: exit code {code}, not 143")
    result.check(took <= 1.5, f"second SIGTERM: exit took {took:.2f}s")
    resumed = await until(lambda: state_is(swarm, item.work_id, "done"), cfg.lease_ttl + 30.0)
    result.check(resumed, "the item of the force-stopped worker never finished")
    result.notes["second_signal_exit_s"] = round(took, 2)
    await stop_workers(env, [backup], cfg.grace + 10.0)
    return item.work_id, second_at


# -- 2b. drain with work in flight ----------------------------------------------------------


@dataclass(frozen=True)
class InflightConfig:
    how: str = "commits"
    """``commits``: a Redis pause holds the step commits in flight while SIGTERM arrives
    (deterministic); ``load``: SIGTERM busy workers at random moments (a race, repeated)."""
    items: int = 4
    steps: int = 4
    step_seconds: float = 0.3
    rounds: int = 5
    lease_ttl: float = 10.0
    grace: float = 5.0
    timeout: float = 120.0


async def drain_in_flight(env: ChaosEnv, cfg: InflightConfig) -> Result:
    """Scenario 2b: SIGTERM while round trips to Redis are in flight; nothing new may start.

    ``commits``: every item's step has ended and its commit (decided "continue inline on
    this lease" before the signal) is held in flight by a paused Redis when SIGTERM is
    handled; once Redis answers, the worker must hand the items back, not run their next
    steps. ``load``: many short inline steps; a worker is SIGTERMed after ~1.5 s, several
    times; no step may start after the worker began stopping.
    """
    result = Result(f"drain, {cfg.how} in flight")
    server = env.server(appendonly=False)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl, grace_period=cfg.grace)
    if cfg.how == "commits":
        n, steps_each, seconds = cfg.items, cfg.steps, cfg.step_seconds
    else:
        n, steps_each, seconds = 60, 30, 0.01
    items = [
        WorkItem(
            engine="hashchain",
            payload={"steps": steps_each, "mode": "sleep", "seconds": seconds},
        )
        for _ in range(n)
    ]
    ids = [i.work_id for i in items]
    steps = {w: steps_each for w in ids}
    result.items = len(steps)
    drained: list[tuple[Proc, float]] = []
    async with env.swarm(settings) as swarm:
        await swarm.enqueue_many(items)
        if cfg.how == "commits":
            drained.append(
                await _sigterm_with_commits_held(env, server, settings, ids, result, cfg)
            )
        else:
            for _ in range(cfg.rounds):
                w = await asyncio.to_thread(env.worker, settings, 12)
                await asyncio.sleep(1.5)
                drained.append((w, env.procs.send(w, signal.SIGTERM)))
                code = await asyncio.to_thread(env.procs.wait, w, cfg.grace + 15.0)
                if code is None:
                    result.check(False, await hung(env, w, cfg.grace + 15.0))
                else:
                    result.check(code == 0, f"{w.name} exited {code} on SIGTERM, not 0")
        finisher = await asyncio.to_thread(env.worker, settings, 12)
        done = await until(lambda: all_in(swarm, ids, "done"), cfg.timeout)
        result.check(done, "items did not all finish after the drains")
        await stop_workers(env, [finisher], cfg.grace + 10.0)
        await audit(swarm, env, result, steps)
    late_total = 0
    for w, term_at in drained:
        stop_at = stopping_at(env, w)
        if not result.check(stop_at is not None, f"{w.name} never began to stop"):
            continue
        assert stop_at is not None
        late = started_after(env, w, stop_at)
        late_total += len(late)
        result.check(
            not late,
            f"{len(late)} steps started on {w.name} after it began stopping "
            f"({stop_at - term_at:.3f}s after SIGTERM): "
            + ", ".join(
                f"{r['work_id'][:8]}@v{r['version']} +{r['start'] - stop_at:.4f}s" for r in late[:4]
            ),
        )
    result.notes["steps_started_after_stop"] = late_total
    result.notes["drained_workers"] = len(drained)
    return result


async def _sigterm_with_commits_held(
    env: ChaosEnv,
    server: ServerProcess,
    settings: Any,
    ids: list[str],
    result: Result,
    cfg: InflightConfig,
) -> tuple[Proc, float]:
    w = await asyncio.to_thread(env.worker, settings, len(ids))
    running = await until(lambda: _all_started(env, ids, w), 30.0)
    result.check(running, "the worker never started every item")
    server.pause()
    paused_at = time.time()
    try:
        await asyncio.sleep(cfg.step_seconds + 0.3)  # every step ends; its commit waits
        ends = [r for r in read_jsonl(env.attempt_log) if r.get("phase") == "end"]
        held = {r["work_id"] for r in ends if r["end"] > paused_at and r["pid"] == w.pid}
        result.check(
            held == set(ids),
            f"precondition: only {len(held)} of {len(ids)} commits were in flight at SIGTERM",
        )
        term_at = env.procs.send(w, signal.SIGTERM)
        seen = await until(lambda: _stopping(env, w), 10.0, 0.02)
        result.check(seen, "the worker did not handle SIGTERM while Redis was paused")
    finally:
        server.resume()
    code = await asyncio.to_thread(env.procs.wait, w, cfg.grace + 15.0)
    result.check(code == 0, f"draining worker exited {code}, not 0")
    return w, term_at


def _stopping(env: ChaosEnv, w: Proc) -> Any:
    async def check() -> bool:
        return stopping_at(env, w) is not None

    return check()


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

    async def run(self) -> None:
        while True:
            for p in list(self.workers):
                if not p.alive() and not p.signals:
                    self.workers.remove(p)
                    self.deaths.append((p.name, p.returncode, time.time()))
                    self.workers.append(await asyncio.to_thread(self.env.worker, self.settings, 2))
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
    workers = await env.workers(settings, cfg.workers, 2)
    dog = Watchdog(env, settings, workers, [])
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
