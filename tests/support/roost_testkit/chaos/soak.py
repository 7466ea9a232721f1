"""Load scenarios: the kill soak (workers and Redis SIGKILLed) and Redis going away."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost.runtime import RuntimeEvent, WorkItem
from roost_testkit.chaos.base import (
    ChaosEnv,
    Result,
    audit,
    persist,
    stop_workers,
    until,
)
from roost_testkit.chaos.history import (
    COMMITS,
    Kill,
    leases_held_by,
    resumes,
    write_jsonl,
)
from roost_testkit.chaos.invariants import Sampler
from roost_testkit.chaos.procs import Proc


def chain_items(
    n: int,
    steps: int,
    seconds: tuple[float, float],
    rng: random.Random,
    delayed: float = 0.0,
) -> list[WorkItem]:
    """``n`` hash-chain items whose steps each sleep (asynchronously) a random while.

    A ``delayed`` fraction of them waits 0.3 s between steps (``next_step_delay_seconds``):
    their continuations go through the due index and the promoter, and must survive the
    same crashes.
    """
    items: list[WorkItem] = []
    for _ in range(n):
        payload: dict[str, object] = {
            "steps": steps,
            "mode": "sleep",
            "seconds": round(rng.uniform(*seconds), 3),
        }
        if rng.random() < delayed:
            payload["delay"] = 0.3
        items.append(WorkItem(engine="hashchain", payload=payload))
    return items


async def done_count(swarm: RedisSwarm) -> int:
    """Items done, in every partition."""
    return sum([int(await swarm.client.zcard(k.state("done"))) for k in swarm.partition_keys()])


# -- 1. kill soak -------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakConfig:
    items: int = 500
    steps: int = 5
    workers: int = 3
    concurrency: int = 12
    lease_ttl: float = 3.0
    kill_every: float = 2.0
    step_seconds: tuple[float, float] = (0.05, 0.25)
    redis_crash_at: float = 0.4
    """Fraction of items done when Redis is SIGKILLed (once)."""
    delayed: float = 0.2
    """Fraction of items with a 0.3 s delay between steps (durable continuations)."""
    max_attempts: int = 10
    timeout: float = 420.0
    seed: int = 6


@dataclass
class SoakState:
    workers: list[Proc]
    kills: list[Kill] = field(default_factory=list[Kill])
    done: int = 0
    last_kill: float = 0.0
    redis: dict[str, float] = field(default_factory=dict[str, float])
    spawn_errors: list[str] = field(default_factory=list[str])
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; return True at once if the soak is stopping."""
        try:
            await asyncio.wait_for(self.stop.wait(), max(seconds, 0.0))
        except TimeoutError:
            return False
        return True


async def feed(swarm: RedisSwarm, items: list[WorkItem], open_items: int) -> None:
    """Enqueue ``items`` keeping at most ``open_items`` of them unfinished at any time.

    That keeps the workers below saturation (``open_items`` is half their slots), so a
    slot is free when a killed worker's items come back: "resumed within lease TTL + 2 s"
    then measures recovery, not waiting for a slot (a recovered item goes to the front of
    the queue, but a full worker finishes its running steps first).
    Re-sending a batch after an outage is safe: an existing work id is returned, not created
    again.
    """
    i = 0
    while i < len(items):
        done = await persist(lambda: done_count(swarm))
        room = open_items - (i - done)
        if room > 0:
            batch = items[i : i + room]
            await persist(lambda batch=batch: swarm.enqueue_many(batch))
            i += len(batch)
        await asyncio.sleep(0.05)


async def crash_redis(swarm: RedisSwarm, server: ServerProcess, state: SoakState) -> None:
    """SIGKILL Redis and start it again on the same port and data directory."""
    rows = await swarm.client.xrevrange(swarm.keys.events, count=1)
    last = rows[0][0] if rows else None
    state.redis["killed_at"] = time.time()
    await asyncio.to_thread(server.kill)
    await asyncio.to_thread(server.start, 60.0)
    state.redis["back_at"] = time.time()
    if last is not None:
        found = await persist(lambda: swarm.client.xrange(swarm.keys.events, min=last, max=last))
        state.redis["last_event_survived"] = float(bool(found))


async def chaos_loop(
    env: ChaosEnv,
    swarm: RedisSwarm,
    server: ServerProcess,
    settings_env: dict[str, str],
    cfg: SoakConfig,
    state: SoakState,
    rng: random.Random,
) -> None:
    ttl = cfg.lease_ttl
    respawns: set[asyncio.Task[None]] = set()

    async def respawn() -> None:
        try:
            proc = await asyncio.to_thread(env.procs.start_worker, settings_env, cfg.concurrency)
            state.workers.append(proc)
        except Exception as exc:  # reported, and the soak goes on with fewer workers
            state.spawn_errors.append(str(exc)[:300])

    try:
        while not await state.pause(cfg.kill_every * rng.uniform(0.75, 1.25)):
            if "killed_at" not in state.redis and state.done >= cfg.redis_crash_at * cfg.items:
                # Let the last worker kill's items resume first: the two faults do not mix.
                if await state.pause(state.last_kill + ttl + 2.0 - time.time()):
                    break
                await crash_redis(swarm, server, state)
                await state.pause(ttl + 1.0)
                continue
            ready = [p for p in state.workers if p.alive() and p.worker_id]
            if len(ready) < 2:
                continue
            victim = rng.choice(ready)
            at = await asyncio.to_thread(env.procs.kill, victim)
            state.last_kill = at
            held = await persist(lambda v=victim: leases_held_by(swarm, v.worker_id))
            state.kills.append(Kill(at, victim.worker_id, held))
            kill = {"ts": at, "worker": victim.worker_id, "held": held}
            write_jsonl(env.root / "kills.jsonl", [json.dumps(kill)], append=True)
            respawns.add(asyncio.create_task(respawn()))
    finally:
        # Never leave a kill or a restart half done: the caller stops the workers next.
        await asyncio.gather(*respawns, return_exceptions=True)


def crashed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def kill_soak(env: ChaosEnv, cfg: SoakConfig) -> Result:
    """Scenario 1: SIGKILL a random worker every ~2 s, and Redis once, under load."""
    result = Result("kill soak", items=cfg.items)
    rng = random.Random(cfg.seed)
    server = env.server(appendonly=True, appendfsync="everysec")
    settings = env.settings(server, lease_ttl=cfg.lease_ttl, max_attempts=cfg.max_attempts)
    wenv = env.env(settings)
    items = chain_items(cfg.items, cfg.steps, cfg.step_seconds, rng, cfg.delayed)
    steps = {i.work_id: cfg.steps for i in items}
    state = SoakState(workers=await env.workers(settings, cfg.workers, cfg.concurrency))
    async with env.swarm(settings) as swarm:
        probe = Sampler(swarm)
        probe.start()
        open_items = cfg.workers * cfg.concurrency // 2
        producer = asyncio.create_task(feed(swarm, items, open_items))
        chaos = asyncio.create_task(chaos_loop(env, swarm, server, wenv, cfg, state, rng))

        async def all_done() -> bool:
            if crashed(chaos) or crashed(producer):
                return True  # stop waiting: the helper's error is reported below
            state.done = await done_count(swarm)
            return state.done >= cfg.items

        finished = await until(all_done, cfg.timeout, interval=0.25)
        state.stop.set()
        producer.cancel()
        await asyncio.gather(chaos, producer, return_exceptions=True)
        for task in (chaos, producer):
            if crashed(task):
                result.check(False, f"scenario helper crashed: {task.exception()!r}")
        result.check(finished, f"only {state.done} of {cfg.items} items done in {cfg.timeout}s")
        await probe.stop()
        probe.report(result)
        codes = await stop_workers(env, state.workers, settings.grace_period + 10)
        result.check(
            all(c == 0 for c in codes.values()), f"workers did not exit 0 on SIGTERM: {codes}"
        )
        events = await audit(swarm, env, result, steps, lost_acks_ok=True)
    found, problems = resumes(events, state.kills)
    result.absorb(problems)
    result.resume([r.resumed for r in found])
    bound = cfg.lease_ttl + 2.0
    late = [r for r in found if r.resumed > bound]
    result.check(
        not late,
        f"{len(late)} items resumed later than TTL + 2 s = {bound}s: "
        + ", ".join(
            f"{r.work_id} (kill {r.kill.ts:.2f}: requeued +{r.requeued}, leased +{r.resumed:.2f})"
            for r in late[:3]
        ),
    )
    requeue = [r.requeued for r in found if r.requeued is not None]
    result.check(bool(state.kills), "no worker was killed")
    result.check("back_at" in state.redis, "Redis was never crashed")
    result.check(not state.spawn_errors, f"worker restarts failed: {state.spawn_errors[:2]}")
    result.notes.update(
        worker_kills=len(state.kills),
        in_flight_at_kills=sum(len(k.held) for k in state.kills),
        max_requeue_s=round(max(requeue), 2) if requeue else None,
        redis_down_s=round(state.redis.get("back_at", 0) - state.redis.get("killed_at", 0), 2),
        last_acked_event_survived_redis_kill=bool(state.redis.get("last_event_survived", 1.0)),
        first_commit_after_redis_restart_s=first_commit_after(events, state.redis.get("back_at")),
    )
    return result


def first_commit_after(events: list[RuntimeEvent], at: float | None) -> float | None:
    if at is None:
        return None
    for e in events:
        if e.type in COMMITS and e.ts >= at:
            return round(e.ts - at, 3)
    return None


# -- 3. Redis away ------------------------------------------------------------------------


@dataclass(frozen=True)
class AwayConfig:
    how: str = "pause"
    """``pause`` (SIGSTOP: connections hang) or ``stop`` (shut down: connections refused)."""
    items: int = 200
    steps: int = 5
    workers: int = 2
    concurrency: int = 8
    lease_ttl: float = 30.0
    outage: float = 10.0
    at_fraction: float = 0.25
    step_seconds: tuple[float, float] = (0.15, 0.25)
    recovery_bound: float = 15.0
    timeout: float = 240.0
    seed: int = 3


def commit_rate(events: list[RuntimeEvent], start: float, end: float) -> float:
    n = sum(1 for e in events if e.type in COMMITS and start <= e.ts < end)
    return n / max(end - start, 1e-9)


def back_after(events: list[RuntimeEvent], before: float, up_at: float) -> float | None:
    """Seconds from ``up_at`` until commits run at half the rate ``before`` (None: never)."""
    t = up_at
    while t < up_at + 60.0:
        if commit_rate(events, t, t + 1.0) >= 0.5 * before:
            return t + 1.0 - up_at
        t += 0.25
    return None


def no_attempts_used(
    result: Result, events: list[RuntimeEvent], steps: dict[str, int], cause: str
) -> None:
    """Every lease grant of the items was a first attempt; nothing expired or failed."""
    mine = [e for e in events if e.work_id in steps]
    extra = [e for e in mine if e.type == "started" and e.data.get("attempt", 1) != 1]
    result.check(not extra, f"{len(extra)} attempts beyond the first were used")
    for kind in ("lease_expired", "retrying", "dead", "failed"):
        n = sum(1 for e in mine if e.type == kind)
        result.check(n == 0, f"{n} {kind} events caused by {cause}")


async def redis_away(env: ChaosEnv, cfg: AwayConfig) -> Result:
    """Scenario 3: Redis unreachable for ``cfg.outage`` seconds in the middle of a run."""
    result = Result(f"redis away ({cfg.how})", items=cfg.items)
    rng = random.Random(cfg.seed)
    server = env.server(appendonly=True, appendfsync="everysec")
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    items = chain_items(cfg.items, cfg.steps, cfg.step_seconds, rng)
    steps = {i.work_id: cfg.steps for i in items}
    commits_total = cfg.items * (cfg.steps + 1)
    workers = await env.workers(settings, cfg.workers, cfg.concurrency)
    async with env.swarm(settings) as swarm:
        await swarm.enqueue_many(items)
        started = time.time()
        probe = Sampler(swarm)
        probe.start()

        async def far_enough() -> bool:
            stats = await swarm.stats(60)
            n = sum(v.get("committed", 0) for v in stats.values())
            return n >= cfg.at_fraction * commits_total

        result.check(await until(far_enough, cfg.timeout / 2, 0.1), "the run never got going")
        down_at = time.time()
        if cfg.how == "pause":
            server.pause()
            await asyncio.sleep(cfg.outage)
            server.resume()
        else:
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(cfg.outage)
            await asyncio.to_thread(server.start, 60.0)
        up_at = time.time()
        exited = {p.name: p.returncode for p in workers if not p.alive()}
        result.check(not exited, f"workers exited during the outage: {exited}")

        async def all_done() -> bool:
            return await done_count(swarm) >= cfg.items

        finished = await until(all_done, cfg.timeout, interval=0.25)
        result.check(finished, f"not all {cfg.items} items done after the outage")
        await probe.stop()
        probe.report(result)
        exited = {p.name: p.returncode for p in workers if not p.alive()}
        result.check(not exited, f"workers exited: {exited}")
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        events = await audit(swarm, env, result, steps)
    no_attempts_used(result, events, steps, "the outage")
    before = commit_rate(events, max(started, down_at - 5.0), down_at)
    back = back_after(events, before, up_at)
    result.check(
        back is not None and back <= cfg.recovery_bound,
        f"throughput not back to half its pre-outage rate within {cfg.recovery_bound}s "
        f"(back after {back}s)",
    )
    result.max_resume = back
    result.notes.update(
        outage_s=round(up_at - down_at, 2),
        commits_per_s_before=round(before, 1),
        throughput_back_s=None if back is None else round(back, 2),
        lease_ttl_s=cfg.lease_ttl,
    )
    return result
