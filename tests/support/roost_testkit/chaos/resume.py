"""Resume in seconds: a SIGKILLed worker's items move again long before their leases expire.

Two halves, each on its own server with a generous lease TTL (30 s, the default), so that
nothing here can be an expiry:

- **restart**: the only worker, started with ``ROOST_WORKER_ID``, is SIGKILLed mid-step
  and a new process with the same identity starts at once. It must take the dead one's
  leases back: every item that was in flight is leased again within ``restart_bound``
  seconds of the new worker's start (when its worker loop began, which its heartbeat
  publishes, by its estimate of the server's clock); the figure from the process's start,
  an interpreter's start included, is in the notes.
- **vanish**: two workers with their own identities; one is SIGKILLed and never comes back.
  With the default ``ROOST_HEARTBEAT_TIMEOUT``, the other must find it by its silent
  heartbeat and lease its items again within ``vanish_bound`` seconds of the kill. A new
  worker replaces the dead one, and the next kill waits until the dead one's items run
  again, so every kill leaves a fleet that was running.

Every moment is Redis's: the kill and the process start are stamped with the server's
``TIME`` just before the signal and just before the start, the resumes are the stream ids
(server time) of the items' next lease grants. The usual audit then checks that every step
was committed exactly once, by the lease holder of the moment.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass

from roost.redis import RedisSwarm
from roost.runtime import RuntimeEvent
from roost_testkit.chaos.base import ChaosEnv, Result, audit, stop_workers, until
from roost_testkit.chaos.faults import all_in
from roost_testkit.chaos.history import COMMITS, Kill, by_item, leases_held_by, resumes
from roost_testkit.chaos.procs import Proc
from roost_testkit.chaos.soak import chain_items


@dataclass(frozen=True)
class ResumeConfig:
    items: int = 16
    steps: int = 6
    concurrency: int = 8
    step_seconds: tuple[float, float] = (0.2, 0.6)
    lease_ttl: float = 30.0
    rounds: int = 2
    """Kills per half."""
    restart_bound: float = 2.0
    """Seconds from the restarted worker's start (its worker loop's) until every item it
    lost is leased again."""
    vanish_bound: float = 10.0
    """Seconds from the kill until every item of a worker that never comes back is leased again."""
    timeout: float = 180.0


async def server_now(swarm: RedisSwarm) -> float:
    seconds, micros = await swarm.client.time()
    return seconds + micros / 1e6


async def _holding(swarm: RedisSwarm, worker_id: str, at_least: int) -> bool:
    return len(await leases_held_by(swarm, worker_id)) >= at_least


async def _taken_back(swarm: RedisSwarm, held: list[str], after: float) -> bool:
    for work_id in held:
        events = [e for e in await swarm.events(work_id=work_id) if e.ts >= after - 0.002]
        if not any(e.type == "started" or e.type in COMMITS for e in events):
            return False
    return True


def _regrants(events: list[RuntimeEvent], held: list[str], after: float) -> dict[str, float]:
    """When each item of ``held`` was leased again after ``after`` (server seconds)."""
    grouped = by_item(events, set(held))
    out: dict[str, float] = {}
    for work_id in held:
        for e in grouped.get(work_id, []):
            if e.ts < after - 0.002:
                continue
            if e.type in COMMITS:
                break  # its last commit landed just after the kill: it was not in flight
            if e.type == "started":
                out[work_id] = e.ts
                break
    return out


async def restart_same_id(env: ChaosEnv, cfg: ResumeConfig, result: Result) -> None:
    server = env.server()
    settings = env.settings(server, lease_ttl=cfg.lease_ttl, max_attempts=cfg.rounds + 3)
    items = chain_items(cfg.items, cfg.steps, cfg.step_seconds, random.Random(20))
    steps = {i.work_id: cfg.steps for i in items}
    identity = "resume-restart"
    kills: list[tuple[float, float, float, list[str]]] = []
    async with env.swarm(settings) as swarm:
        proc = env.worker(settings, cfg.concurrency, ROOST_WORKER_ID=identity)
        await swarm.enqueue_many(items)
        for _ in range(cfg.rounds):
            busy = await until(functools.partial(_holding, swarm, identity, 2), 30.0)
            if not result.check(busy, "the worker never held two leases"):
                return
            held = await leases_held_by(swarm, identity)
            killed_at = await server_now(swarm)
            env.procs.kill(proc)
            started_at = await server_now(swarm)
            proc = env.worker(settings, cfg.concurrency, ROOST_WORKER_ID=identity)
            # The next kill only once the new worker has taken everything back (the dead
            # one's leases carry the same identity).
            back = await until(functools.partial(_taken_back, swarm, held, killed_at), 60.0)
            if not result.check(back, "restart: the new worker did not take the leases back"):
                return
            # When its worker loop started, by its estimate of the server's clock (from
            # TIME), as its heartbeat publishes it.
            info = json.loads(await swarm.client.hget(swarm.keys.worker(identity), "info") or "{}")
            kills.append((killed_at, started_at, float(info["started"]), held))
        done = await until(lambda: all_in(swarm, list(steps), "done"), cfg.timeout)
        result.check(done, "restart: not every item finished")
        events = await audit(swarm, env, result, steps)
        await stop_workers(env, [proc], settings.grace_period + 10)
    from_start: list[float] = []
    from_loop: list[float] = []
    for killed_at, started_at, loop_at, held in kills:
        again = _regrants(events, held, killed_at)
        lost = [w for w in held if w not in again and not _committed_after(events, w, killed_at)]
        result.check(not lost, f"restart: never leased again: {lost[:3]}")
        from_start += [ts - started_at for ts in again.values()]
        from_loop += [ts - loop_at for ts in again.values()]
        result.notes.setdefault("rounds", []).append(
            {
                "held": len(held),
                "process_start_to_loop_s": round(loop_at - started_at, 3),
                "regrants_from_start_s": sorted(round(ts - started_at, 3) for ts in again.values()),
            }
        )
    result.check(bool(from_loop), "restart: no killed item was in flight")
    if from_loop:
        worst = max(from_loop)
        result.notes["resume_s"] = round(worst, 3)
        result.notes["resume_from_process_start_s"] = round(max(from_start), 3)
        result.resume([worst])
        result.check(
            worst <= cfg.restart_bound,
            f"restart: items leased again {worst:.2f}s after the new worker started "
            f"(bound {cfg.restart_bound}s, lease TTL {cfg.lease_ttl}s)",
        )
        # From the process's start (an interpreter's start and imports included, which a
        # loaded machine stretches): long before the leases could expire.
        slowest = max(from_start)
        result.check(
            slowest < cfg.lease_ttl / 2,
            f"restart: items leased again {slowest:.2f}s after the new process started",
        )
    result.items += len(steps)
    taken = [e for e in events if e.type == "lease_expired"]
    result.check(
        all(e.data.get("reason") == "worker gone" for e in taken),
        "restart: a lease was recovered by expiry, not taken back",
    )


def _committed_after(events: list[RuntimeEvent], work_id: str, ts: float) -> bool:
    return any(e.work_id == work_id and e.type in COMMITS and e.ts >= ts for e in events)


async def vanish(env: ChaosEnv, cfg: ResumeConfig, result: Result) -> None:
    server = env.server()
    settings = env.settings(server, lease_ttl=cfg.lease_ttl, max_attempts=cfg.rounds + 3)
    items = chain_items(cfg.items, cfg.steps, cfg.step_seconds, random.Random(21))
    steps = {i.work_id: cfg.steps for i in items}
    kills: list[Kill] = []
    procs: list[Proc] = await env.workers(settings, 2, cfg.concurrency)
    async with env.swarm(settings) as swarm:
        await swarm.enqueue_many(items)
        for _ in range(cfg.rounds):
            victim = procs[0]
            busy = await until(functools.partial(_holding, swarm, victim.worker_id, 1), 30.0)
            if not result.check(busy, "vanish: the victim never held a lease"):
                return
            held = await leases_held_by(swarm, victim.worker_id)
            killed_at = await server_now(swarm)
            env.procs.kill(victim)
            kills.append(Kill(killed_at, victim.worker_id, held))
            # The next victim: a new worker (a new identity), so one is always left.
            procs = [procs[1], env.worker(settings, cfg.concurrency)]
            # The next kill only once the dead one's items run again (as in the restart
            # half): each kill is one worker vanishing from a running fleet. Killing every
            # worker within seconds of its start is a crash loop, where no survivor has
            # beaten for ROOST_HEARTBEAT_TIMEOUT (I1) and none may judge the others yet.
            back = await until(functools.partial(_taken_back, swarm, held, killed_at), 60.0)
            if not result.check(back, "vanish: the killed worker's items never ran again"):
                return
        done = await until(lambda: all_in(swarm, list(steps), "done"), cfg.timeout)
        result.check(done, "vanish: not every item finished")
        events = await audit(swarm, env, result, steps)
        await stop_workers(env, procs, settings.grace_period + 10)
    found, problems = resumes(events, kills)
    result.absorb(problems)
    delays = [r.resumed for r in found]
    result.check(bool(delays), "vanish: no killed item was in flight")
    if delays:
        worst = max(delays)
        result.notes["resume_s"] = round(worst, 3)
        # Finding the dead worker (its items requeued) apart from a free slot taking them.
        requeued = [r.requeued for r in found if r.requeued is not None]
        result.notes["requeued_s"] = round(max(requeued), 3) if requeued else None
        result.resume([worst])
        result.check(
            worst <= cfg.vanish_bound,
            f"vanish: items leased again {worst:.2f}s after the kill "
            f"(bound {cfg.vanish_bound}s, lease TTL {cfg.lease_ttl}s)",
        )
    result.items += len(steps)


async def resume_in_seconds(env: ChaosEnv, cfg: ResumeConfig) -> Result:
    """Scenario: SIGKILLed workers, restarted with their identity or never coming back.

    Each half runs in its own environment (server, processes, logs): the audits read whole
    logs.
    """
    result = Result("resume in seconds")
    for name, half in (("restart", restart_same_id), ("vanish", vanish)):
        sub = ChaosEnv(env.root / name)
        part = Result(name)
        try:
            await half(sub, cfg, part)
        finally:
            sub.close()
        result.items += part.items
        result.commits += part.commits
        result.duplicates += part.duplicates
        result.fenced += part.fenced
        result.dead += part.dead
        result.failures += part.failures
        if part.max_resume is not None:
            result.resume([part.max_resume])
        result.notes.update({f"{name}_{k}": v for k, v in part.notes.items()})
    return result
