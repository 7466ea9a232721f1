"""Child work under worker kills: every child once, every parent on exactly once with all."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from roost_testkit.chaos.base import ChaosEnv, Result, audit, stop_workers, until
from roost_testkit.chaos.faults import all_in
from roost_testkit.chaos.history import COMMITS, read_stream
from roost_testkit.chaos.invariants import Sampler
from roost_testkit.chaos.procs import Proc


@dataclass(frozen=True)
class ChildrenConfig:
    parents: int = 4
    children: int = 12
    """Children per parent (hash-chain items of ``steps`` steps each)."""
    steps: int = 2
    seconds: float = 0.3
    """How long each child's step sleeps (so that kills land mid-step)."""
    workers: int = 3
    concurrency: int = 4
    kills: int = 4
    """Spread over the run: one each time another share of the children has finished."""
    lease_ttl: float = 3.0
    timeout: float = 120.0
    seed: int = 23


async def children_under_kills(env: ChaosEnv, cfg: ChildrenConfig) -> Result:
    """Parents fan out to hash-chain children while a worker is SIGKILLed every ~1.5 s."""
    result = Result("child work under worker kills")
    rng = random.Random(cfg.seed)
    server = env.server(appendonly=True)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    fanout = {"ROOST_CHAOS_FANOUT": "1"}

    def start() -> Proc:
        return env.worker(settings, cfg.concurrency, **fanout)

    workers: list[Proc] = list(
        await asyncio.gather(*(asyncio.to_thread(start) for _ in range(cfg.workers)))
    )
    child = {"steps": cfg.steps, "mode": "sleep", "seconds": cfg.seconds}
    kills = 0
    async with env.swarm(settings) as swarm:
        parents = [
            await swarm.enqueue("fanout", {"children": cfg.children, "child_payload": child})
            for _ in range(cfg.parents)
        ]
        probe = Sampler(swarm)
        probe.start()
        total = cfg.parents * cfg.children
        deadline = time.monotonic() + cfg.timeout
        while kills < cfg.kills and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            finished = 0
            for parent in parents:
                finished += (await swarm.status(parent)).meta.children_finished
            # Kill when another share of the children has finished: every kill lands while
            # children (and so their parents) are still running, however fast they go.
            if finished < (kills + 1) * total // (cfg.kills + 1):
                continue
            live = [p for p in workers if p.alive()]
            await asyncio.to_thread(env.procs.kill, rng.choice(live))
            kills += 1
            workers.append(await asyncio.to_thread(start))
        done = await until(lambda: all_in(swarm, parents, "done"), cfg.timeout, 0.25)
        result.check(done, "not every parent finished")
        await probe.stop()
        probe.report(result)
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        kids = {p: [m.work_id for m in await swarm.children(p)] for p in parents}
        every = [k for ks in kids.values() for k in ks]
        result.items = len(parents) + len(every)
        for parent in parents:
            status = await swarm.status(parent)
            meta, snap = status.meta, status.snapshot
            result.check(
                len(kids[parent]) == cfg.children and meta.children_total == cfg.children,
                f"{parent}: {len(kids[parent])} children, {meta.children_total} counted",
            )
            result.check(
                meta.children_finished == cfg.children,
                f"{parent}: {meta.children_finished} children finished",
            )
            outcomes = snap.data.get("outcomes", {}) if snap is not None else {}
            result.check(
                list(outcomes) == kids[parent] and set(outcomes.values()) == {"done"},
                f"{parent}: its last step saw {outcomes}",
            )
            result.check(meta.version == 3, f"{parent} at v{meta.version}, expected v3")
        events = await read_stream(swarm)
        commits = Counter(
            (e.work_id, e.version) for e in events if e.type in COMMITS and e.work_id in kids
        )
        twice = {k: n for k, n in commits.items() if n != 1}
        result.check(not twice, f"parent versions committed more than once: {twice}")
        result.check(len(commits) == 3 * len(parents), f"parents committed {len(commits)} versions")
        await audit(swarm, env, result, dict.fromkeys(every, cfg.steps))
    # A killed worker's leases expire and its items are recovered: children hit mid-step.
    recovered = sum(1 for e in events if e.type == "lease_expired" and e.work_id not in kids)
    result.notes.update(
        worker_kills=kills, parents=len(parents), children=len(every), leases_recovered=recovered
    )
    result.check(kills == cfg.kills, f"only {kills} workers were killed")
    result.check(recovered > 0, "no kill hit a running step (no lease expired)")
    return result
