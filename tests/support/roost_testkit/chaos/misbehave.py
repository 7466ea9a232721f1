"""Redis misbehaves under load: busy, out of memory, read-only, Roost's library deleted.

Unlike an outage (the server gone or frozen), here Redis answers, but with errors that say
nothing about the command: ``BUSY`` while another client's script or function loops,
``OOM`` at ``maxmemory`` under noeviction, ``READONLY`` (and ``UNBLOCKED`` for a blocked
read) while it is a replica, ``Function not found`` after Roost's Functions library is
deleted. Workers must ride each one out like an outage: no attempt used, no item stuck, no
worker exiting or restarted.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import redis

from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost_testkit.chaos.base import ChaosEnv, Result, audit, persist, stop_workers, until
from roost_testkit.chaos.history import COMMITS
from roost_testkit.chaos.invariants import Sampler
from roost_testkit.chaos.soak import (
    back_after,
    chain_items,
    commit_rate,
    done_count,
    no_attempts_used,
)
from roost_testkit.redis_faults import busy, out_of_memory, read_only

BUSY_THRESHOLD_MS = 200
"""``busy-reply-threshold`` during the run: after this long, a looping script makes every
other client's command answer ``BUSY`` (the default, 5 s, only stalls them)."""

WARMUP = 3.0
"""Load before the first fault: the commit rate over it is the baseline."""

SPIN_LIBRARY = """#!lua name=roostchaos
redis.register_function{function_name='spin', flags={'no-writes'},
  callback=function() while true do end end}
"""


@dataclass(frozen=True)
class MisbehaveConfig:
    steps: int = 5
    workers: int = 2
    concurrency: int = 8
    open_items: int = 48
    """Unfinished items kept in the system (more than the slots): the workers stay busy."""
    lease_ttl: float = 30.0
    fault_seconds: float = 3.0
    settle: float = 3.0
    """Load between the end of one fault and the start of the next."""
    faults: tuple[str, ...] = ("busy-script", "oom", "readonly", "library-gone", "busy-function")
    step_seconds: tuple[float, float] = (0.05, 0.15)
    delayed: float = 0.2
    recovery_bound: float = 15.0
    timeout: float = 240.0
    seed: int = 11


class Feeder:
    """Enqueues items as others finish, keeping ``open_items`` unfinished, until stopped."""

    def __init__(self, swarm: RedisSwarm, cfg: MisbehaveConfig, rng: random.Random) -> None:
        self.swarm = swarm
        self.cfg = cfg
        self.rng = rng
        self.enqueued: list[str] = []
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        cfg = self.cfg
        while not self.stopping.is_set():
            room = cfg.open_items - (len(self.enqueued) - await persist(self._done))
            if room > 0:
                batch = chain_items(room, cfg.steps, cfg.step_seconds, self.rng, cfg.delayed)
                await persist(lambda batch=batch: self.swarm.enqueue_many(batch))
                self.enqueued += [i.work_id for i in batch]
            await asyncio.sleep(0.05)

    async def _done(self) -> int:
        return await done_count(self.swarm)


def inject(url: str, fault: str, seconds: float) -> str:
    """Make the server at ``url`` misbehave for ``seconds`` (blocking); say what happened."""
    if fault in ("busy-script", "busy-function"):
        kind = "function" if fault == "busy-function" else "script"
        with busy(url, kind, BUSY_THRESHOLD_MS) as spinner:
            time.sleep(seconds)
        return f"spinner ended: {spinner.error}"
    if fault == "oom":
        with out_of_memory(url):
            time.sleep(seconds)
        return "maxmemory 1 byte, then unlimited"
    if fault == "readonly":
        with read_only(url) as port:
            time.sleep(seconds)
        return f"replica of 127.0.0.1:{port}, then primary again"
    if fault == "library-gone":
        admin = redis.Redis.from_url(url, socket_timeout=30, decode_responses=True)
        deleted = 0
        try:
            for _ in range(3):  # what FUNCTION FLUSH does to Roost, sparing the spin library
                for library in admin.execute_command("FUNCTION", "LIST"):
                    name = dict(zip(library[::2], library[1::2], strict=True))["library_name"]
                    if str(name).startswith("roost_"):
                        admin.execute_command("FUNCTION", "DELETE", name)
                        deleted += 1
                time.sleep(seconds / 3)
        finally:
            admin.close()
        return f"Roost's Functions libraries deleted x3 ({deleted} deletions)"
    raise ValueError(f"unknown fault {fault!r}")


def prepare(server: ServerProcess) -> None:
    admin = redis.Redis.from_url(server.url)
    try:
        admin.config_set("busy-reply-threshold", BUSY_THRESHOLD_MS)
        admin.execute_command("FUNCTION", "LOAD", "REPLACE", SPIN_LIBRARY)
    finally:
        admin.close()


async def redis_misbehaves(env: ChaosEnv, cfg: MisbehaveConfig) -> Result:
    """Scenario: each of ``cfg.faults`` in turn, ``cfg.fault_seconds`` long, under load."""
    result = Result("redis misbehaves")
    server = env.server(appendonly=True, appendfsync="everysec")
    prepare(server)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    workers = await env.workers(settings, cfg.workers, cfg.concurrency)
    windows: list[tuple[str, float, float]] = []
    async with env.swarm(settings) as swarm:
        feeder = Feeder(swarm, cfg, random.Random(cfg.seed))
        producer = asyncio.create_task(feeder.run())
        probe = Sampler(swarm)
        probe.start()
        await asyncio.sleep(WARMUP)
        for fault in cfg.faults:
            down_at = time.time()
            said = await asyncio.to_thread(inject, server.url, fault, cfg.fault_seconds)
            windows.append((fault, down_at, time.time()))
            result.notes[fault] = said
            exited = {p.name: p.returncode for p in workers if not p.alive()}
            result.check(not exited, f"workers exited during {fault}: {exited}")
            await asyncio.sleep(cfg.settle)  # the recovery shows before the next fault
        feeder.stopping.set()
        await producer
        steps = {work_id: cfg.steps for work_id in feeder.enqueued}
        result.items = len(steps)

        async def all_done() -> bool:
            return await done_count(swarm) >= len(steps)

        finished = await until(all_done, cfg.timeout, interval=0.25)
        result.check(finished, f"not all {len(steps)} items done after the faults")
        await probe.stop()
        probe.report(result)

        async def all_healthy() -> bool:
            infos = await swarm.workers()
            return len(infos) == len(workers) and all(i.get("healthy") for i in infos)

        healthy = await until(all_healthy, 15.0)
        result.check(healthy, f"workers still report a problem: {await swarm.workers()}")
        exited = {p.name: p.returncode for p in workers if not p.alive()}
        result.check(not exited, f"workers exited: {exited}")
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        events = await audit(swarm, env, result, steps)
    no_attempts_used(result, events, steps, "the faults")
    backs: list[float] = []
    first_down = windows[0][1] if windows else time.time()
    before = commit_rate(events, first_down - WARMUP + 1.0, first_down)
    for fault, down_at, up_at in windows:
        back = back_after(events, before, up_at)
        result.notes[f"{fault}_back_s"] = None if back is None else round(back, 2)
        committed = sum(1 for e in events if e.type in COMMITS and down_at <= e.ts < up_at)
        result.notes[f"{fault}_commits_during"] = committed
        if result.check(
            back is not None and back <= cfg.recovery_bound,
            f"after {fault}, throughput not back to half its rate within "
            f"{cfg.recovery_bound}s (back after {back}s)",
        ):
            assert back is not None
            backs.append(back)
    result.resume(backs)
    result.notes.update(
        commits_per_s_before=round(before, 1),
        fault_seconds=cfg.fault_seconds,
        lease_ttl_s=cfg.lease_ttl,
        redispatched=sum(1 for e in events if e.type == "redispatched" and e.work_id in steps),
    )
    return result
