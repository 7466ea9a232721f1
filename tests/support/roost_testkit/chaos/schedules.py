"""Schedules under worker kills: every tick exactly one item, none lost, none doubled."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from roost.redis import RedisSwarm
from roost.redis.schedule_data import tick_key
from roost_testkit.chaos.base import ChaosEnv, Result, audit, persist, stop_workers, until
from roost_testkit.chaos.faults import all_in
from roost_testkit.chaos.procs import Proc


@dataclass(frozen=True)
class ScheduleConfig:
    schedules: int = 6
    """1 s schedules ticking at once: each tick pass has more to do while a worker dies."""
    workers: int = 3
    concurrency: int = 4
    seconds: float = 24.0
    """How long the schedules tick while workers are killed."""
    kill_every: float = 1.5
    lease_ttl: float = 3.0
    timeout: float = 120.0
    seed: int = 17


async def server_ms(swarm: RedisSwarm) -> int:
    seconds, micros = await swarm.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def ticks_made(swarm: RedisSwarm, names: list[str]) -> dict[str, dict[int, list[str]]]:
    """Per schedule, tick (ms) -> the work ids whose idempotency key names that tick."""
    prefixes = {tick_key(n, 0)[:-1]: n for n in names}
    out: dict[str, dict[int, list[str]]] = {n: {} for n in names}
    cursor = None
    while True:
        page = await swarm.list_work(limit=1000, cursor=cursor)
        for meta in page.items:
            key = meta.idempotency_key or ""
            prefix, _, tick = key.rpartition(":")
            if prefix + ":" in prefixes:
                out[prefixes[prefix + ":"]].setdefault(int(tick), []).append(meta.work_id)
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


async def scheduled_ticks(env: ChaosEnv, cfg: ScheduleConfig) -> Result:
    """1 s schedules tick while a worker is SIGKILLed every ~1.5 s (and replaced)."""
    result = Result("schedules under worker kills")
    rng = random.Random(cfg.seed)
    server = env.server(appendonly=True)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    workers: list[Proc] = await env.workers(settings, cfg.workers, cfg.concurrency)
    names = [f"tick-{i}" for i in range(cfg.schedules)]
    kills = 0
    async with env.swarm(settings) as swarm:
        for name in names:
            await swarm.schedules.add(
                name, "hashchain", {"steps": 1, "mode": "sleep", "seconds": 0.05}, every="1s"
            )
        started = await server_ms(swarm)
        deadline = time.monotonic() + cfg.seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(cfg.kill_every * rng.uniform(0.5, 1.5))
            live = [p for p in workers if p.alive()]
            if len(live) < 2:
                continue
            await asyncio.to_thread(env.procs.kill, rng.choice(live))
            kills += 1
            # A replacement starts at once; meanwhile the others keep the ticks coming.
            workers.append(await asyncio.to_thread(env.worker, settings, cfg.concurrency))
        for name in names:
            await persist(lambda name=name: swarm.schedules.pause(name))
        paused = await server_ms(swarm)
        made = await ticks_made(swarm, names)
        ids = [w for ticks in made.values() for ws in ticks.values() for w in ws]
        done = await until(lambda: all_in(swarm, ids, "done"), cfg.timeout, 0.25)
        result.check(done, "not every scheduled item finished")
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        result.items = len(ids)
        clock = await swarm.client.hgetall(swarm.schedules.keys.clock(settings.queue))
        for name in names:
            ticks = sorted(made[name])
            doubled = {t: ws for t, ws in made[name].items() if len(ws) != 1}
            result.check(not doubled, f"{name}: ticks with several items: {doubled}")
            result.check(bool(ticks), f"{name}: no tick made an item")
            if not ticks:
                continue
            lost = sorted(set(range(ticks[0], ticks[-1] + 1000, 1000)) - set(ticks))
            result.check(not lost, f"{name}: ticks with no item: {lost[:5]}")
            result.check(
                ticks[0] <= started + 2000 and ticks[-1] >= paused - 2000,
                f"{name}: ticks {ticks[0]}..{ticks[-1]} do not cover {started}..{paused}",
            )
            schedule = await swarm.schedules.get(name)
            result.check(
                schedule.fired == len(ticks) and schedule.skipped == 0,
                f"{name}: fired {schedule.fired}, skipped {schedule.skipped}, {len(ticks)} items",
            )
        result.check(
            int(clock.get("missed", 0)) <= started,
            "ticks were marked missed while workers ran",
        )
        await audit(swarm, env, result, dict.fromkeys(ids, 1))
        metas = [m for m in await swarm.metas(ids) if m is not None]
    lateness = sorted(
        m.created_at - int((m.idempotency_key or "0").rsplit(":", 1)[1]) / 1000 for m in metas
    )
    result.notes.update(
        worker_kills=kills,
        ticks=len(ids),
        schedules=cfg.schedules,
        median_lateness_s=round(lateness[len(lateness) // 2], 3) if lateness else None,
        max_lateness_s=round(lateness[-1], 3) if lateness else None,
    )
    result.check(kills >= 3, f"only {kills} workers were killed")
    return result
