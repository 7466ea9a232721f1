"""Graceful stop scenarios: SIGTERM with steps running, and with round trips in flight."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from typing import Any

from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost.redis.stopping import SAME_SIGNAL_WINDOW
from roost.runtime import RuntimeEvent, WorkItem
from roost_testkit.chaos.base import ChaosEnv, Result, audit, stop_workers, until
from roost_testkit.chaos.faults import all_in, attempts_of, poison, started_on, state_is
from roost_testkit.chaos.history import (
    COMMITS,
    read_jsonl,
)
from roost_testkit.chaos.procs import Proc


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
    # Clearly past the window in which a repeat counts as the same signal delivered twice
    # (the worker stamps each signal when its event loop gets to it, not when it was sent).
    await asyncio.sleep(SAME_SIGNAL_WINDOW + 0.5)
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
