"""4. Delay precision: how late delayed continuations start.

``items`` items each take ``delays_per_item`` delayed steps, every delay drawn uniformly
from 0.2-5 s (fixed seed), all enqueued at once on one worker (concurrency 50). Lateness =
the next call's start minus (the previous call's end + the delay): a delay runs from the
end of the step that asked for it, so the commit that scheduled it counts only where it
took longer than the delay (how long after the step's end the commit ran is in the JSON).
Baseline: SAQ jobs scheduled 1-3 whole seconds ahead (SAQ takes integer seconds; its
scheduler ticks once a second), lateness = job start minus the scheduled time.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
import saq

from benchmarks.core import Row, Target, median, percentile
from benchmarks.procs import (
    WorkerProc,
    private_server,
    roost_cfg,
    saq_cfg,
    start_workers,
    stop_all,
)
from benchmarks.runs import bench_items, poll_until, swarm_for

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "delay"


async def roost_lateness(
    ctx: Context, url: str, workers: list[WorkerProc]
) -> tuple[list[float], list[float]]:
    """Lateness from the step's end, and when the commit ran after the step's end, in ms."""
    items, per_item = ctx.sizes["delay_items"], ctx.sizes["delays_per_item"]
    lo, hi = ctx.sizes["delay_range"]
    rng = random.Random(7)
    async with swarm_for(url, ctx, namespace="delay") as swarm:
        plans = [[rng.uniform(lo, hi) for _ in range(per_item)] for _ in range(items)]
        work = [
            bench_items(1, {"steps": per_item, "record": True, "delays": plan})[0] for plan in plans
        ]
        # Items arrive spread over a second, not as one burst of first commits.
        groups = 20
        for g in range(groups):
            await swarm.enqueue_many(work[g::groups])
            await asyncio.sleep(ctx.sizes["delay_stagger"] / groups)
        done_key = swarm.keys.state("done")

        async def finished() -> bool:
            return int(await swarm.client.zcard(done_key)) >= items

        await poll_until(finished, within=hi * per_item + 60, workers=workers)
        late: list[float] = []
        commit_lag: list[float] = []
        for item, plan in zip(work, plans, strict=True):
            status = await swarm.status(item.work_id)
            assert status.snapshot is not None
            times = status.snapshot.data["t"]
            commits = {
                e.version: e.ts
                for e in await swarm.events(work_id=item.work_id)
                if e.type in ("committed", "done")
            }
            for k, delay in enumerate(plan):
                late.append((times[k + 1][0] - times[k][1] - delay) * 1000.0)
                commit_lag.append((commits[k + 1] - times[k][1]) * 1000.0)
    return late, commit_lag


async def saq_lateness(url: str, jobs: int, ahead: tuple[int, int]) -> list[float]:
    queue = saq.Queue.from_url(url, name="delay")
    client = aioredis.Redis.from_url(url)
    rng = random.Random(7)
    try:
        now = int(time.time())
        planned = []
        for _ in range(jobs):
            at = now + rng.randint(*ahead)
            job = await queue.enqueue("stamp", scheduled=at)
            assert job is not None
            planned.append((job.key, at))
        incomplete = queue.namespace("incomplete")  # type: ignore[attr-defined]

        async def finished() -> bool:
            return int(await client.zcard(incomplete)) == 0

        await poll_until(finished, within=30)
        done = await queue.jobs(key for key, _ in planned)
        return [
            (float(job.result) - at) * 1000.0
            for job, (_, at) in zip(done, planned, strict=True)
            if job is not None
        ]
    finally:
        await queue.disconnect()
        await client.aclose()


async def run(ctx: Context) -> None:
    with private_server(ctx.tmp) as server:
        workers = start_workers(
            ctx.log_dir,
            [
                roost_cfg(server.url, ctx.tmp / "home", namespace="delay", concurrency=50),
                {**saq_cfg(server.url, queue="delay")},
            ],
            label="delay",
        )
        try:
            for w in workers:
                w.go()
            await asyncio.sleep(0.3)
            roost, commit_lag = await roost_lateness(ctx, server.url, workers)
            saq_late = await saq_lateness(
                server.url, ctx.sizes["delay_saq_jobs"], tuple(ctx.sizes["delay_saq_ahead"])
            )
        finally:
            stop_all(workers, graceful=False)
    lo, hi = ctx.sizes["delay_range"]
    note = (
        f"{ctx.sizes['delay_items']} items x {ctx.sizes['delays_per_item']} delays of "
        f"{lo:g}-{hi:g} s, concurrency 50; from the step's end"
    )
    for p, target in ((50, None), (99, Target("value", "<=", 50.0))):
        ctx.add(
            Row(
                GROUP,
                f"delayed continuation lateness, p{p}",
                percentile(roost, p),
                "ms",
                percentile(saq_late, p),
                f"SAQ scheduled job lateness, p{p}",
                target,
                note,
                extra={
                    "n": len(roost),
                    "min": min(roost),
                    "max": max(roost),
                    "median": median(roost),
                    "baseline_n": len(saq_late),
                    f"commit_after_step_end_p{p}": percentile(commit_lag, p),
                },
            )
        )
