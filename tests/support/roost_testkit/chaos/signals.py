"""Signals and budgets under worker kills: every signal received exactly once, in order, none
lost; every committed step charged exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from roost.redis import RedisSwarm
from roost_testkit.chaos.base import ChaosEnv, Result, stop_workers, until
from roost_testkit.chaos.faults import all_in
from roost_testkit.chaos.procs import Proc


@dataclass(frozen=True)
class SignalConfig:
    items: int = 24
    signals: int = 4
    """Signals sent to each item; its engine waits until it received them all."""
    workers: int = 3
    concurrency: int = 4
    step_seconds: float = 0.3
    """How long each step takes: kills and signals land while steps run, too."""
    send_over: float = 12.0
    """Signals are spread over this long (some before the first wait, some during steps)."""
    metered: int = 8
    """Items that charge their budget on every step (each step is charged once, however
    often it runs)."""
    metered_steps: int = 12
    kill_every: float = 1.5
    lease_ttl: float = 2.0
    timeout: float = 120.0
    seed: int = 23


async def send_all(swarm: RedisSwarm, ids: list[str], cfg: SignalConfig) -> dict[str, list[str]]:
    """Send each item its signals at random moments; returns the signal ids sent, in order."""
    rng = random.Random(cfg.seed + 1)
    plan = sorted(
        (rng.uniform(0, cfg.send_over), work_id) for work_id in ids for _ in range(cfg.signals)
    )
    sent: dict[str, list[str]] = {w: [] for w in ids}
    start = time.monotonic()
    for at, work_id in plan:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        seq = len(sent[work_id])
        receipt = await swarm.signal(work_id, "go", {"seq": seq}, sender="chaos")
        sent[work_id].append(receipt.signal_id)
    return sent


async def signals_under_kills(env: ChaosEnv, cfg: SignalConfig) -> Result:
    """Items wait for signals sent at random while a worker is SIGKILLed every ~1.5 s."""
    result = Result("signals under worker kills")
    rng = random.Random(cfg.seed)
    server = env.server(appendonly=True)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    extra = {"ROOST_CHAOS_SIGNALS": "1"}
    workers: list[Proc] = [
        await asyncio.to_thread(env.worker, settings, cfg.concurrency, **extra)
        for _ in range(cfg.workers)
    ]
    kills = 0
    async with env.swarm(settings) as swarm:
        ids = [
            await swarm.enqueue(
                "collector",
                {"until": cfg.signals, "names": ["go"], "sleep": cfg.step_seconds},
            )
            for _ in range(cfg.items)
        ]
        metered = [
            await swarm.enqueue(
                "metered",
                {"steps": cfg.metered_steps, "charge": 0.5, "sleep": cfg.step_seconds},
                budget=1e9,
            )
            for _ in range(cfg.metered)
        ]
        sender = asyncio.create_task(send_all(swarm, ids, cfg))
        # Kill until the signals are sent, and at least 3 times (a loaded machine starts the
        # replacements slowly), but stop killing after a while whatever happened.
        stop_killing = time.monotonic() + cfg.send_over * 4
        while (not sender.done() or kills < 3) and time.monotonic() < stop_killing:
            await asyncio.sleep(cfg.kill_every * rng.uniform(0.5, 1.5))
            live = [p for p in workers if p.alive()]
            if len(live) < 2:
                continue
            await asyncio.to_thread(env.procs.kill, rng.choice(live))
            kills += 1
            workers.append(await asyncio.to_thread(env.worker, settings, cfg.concurrency, **extra))
        sent = await sender
        done = await until(lambda: all_in(swarm, ids + metered, "done"), cfg.timeout, 0.25)
        result.check(done, "not every item received its signals and finished")
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        result.items = len(ids)
        doubled = lost = reordered = 0
        for work_id in ids:
            status = await swarm.status(work_id)
            got = [r["id"] for r in (status.snapshot.data["received"] if status.snapshot else [])]
            left = [s.id for s in await swarm.pending_signals(work_id)]
            doubled += len(got) - len(set(got))
            lost += len(set(sent[work_id]) - set(got) - set(left))
            reordered += got != sorted(got, key=lambda i: tuple(map(int, i.split("-"))))
            result.check(not left, f"{work_id}: {len(left)} signals never received")
            result.commits += status.meta.version
        charged_twice = 0
        for work_id in metered:
            budget = (await swarm.status(work_id)).meta.budget
            spent = budget.spent if budget else 0.0
            charged_twice += spent != cfg.metered_steps * 0.5
            result.check(
                budget is not None and budget.steps == cfg.metered_steps,
                f"{work_id}: {budget and budget.steps} steps counted, not {cfg.metered_steps}",
            )
        result.check(charged_twice == 0, f"{charged_twice} items were charged wrongly")
        doubled += charged_twice
        result.duplicates = doubled
        result.check(doubled == 0, f"{doubled} signals were received twice")
        result.check(lost == 0, f"{lost} signals were lost")
        result.check(reordered == 0, f"{reordered} items received signals out of order")
        retried = sum(1 for e in await swarm.events(limit=10_000) if e.type == "lease_expired")
    result.notes.update(
        worker_kills=kills,
        signals=sum(len(v) for v in sent.values()),
        metered_steps=cfg.metered * cfg.metered_steps,
        leases_expired=retried,
    )
    result.check(kills >= 3, f"only {kills} workers were killed")
    return result
