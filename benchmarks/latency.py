"""3. Latency: enqueue to step start on an idle worker; step end to next step start.

Enqueue to start: ``n`` items of zero steps are enqueued one at a time, each after the
previous one is done plus a random 5-15 ms pause, so the worker is idle (blocked in its
dequeue) every time. Latency = the engine's ``init_snapshot`` start (wall clock, in the
snapshot) minus the time just before ``enqueue`` was called. Baseline: a stock
``saq.Worker`` on the same server, a job returning its own start time.

Continuation: items of ``k`` zero-delay steps run one at a time; each gap is the next call's
start minus the previous call's end, so it contains the commit of the previous step. With
``ROOST_INLINE_STEPS`` at its default the next step runs on the same lease; with
``ROOST_INLINE_STEPS=0`` it goes back through the queue (dequeue + acquire).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

import saq

from benchmarks.core import Row, Target, median, percentile
from benchmarks.engine import ENGINE_ID
from benchmarks.procs import private_server, roost_cfg, saq_cfg, start_workers, stop_all
from benchmarks.runs import swarm_for
from roost.redis import RedisSwarm
from roost.runtime import WorkState

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "latency"
P50 = Target("value", "<=", 3.0)
P99 = Target("value", "<=", 15.0)


class Waiter:
    """Waits for items to finish by reading the event stream from where it left off."""

    def __init__(self, swarm: RedisSwarm) -> None:
        self.swarm = swarm
        self.last = "0-0"

    async def start(self) -> None:
        rows = await self.swarm.client.xrevrange(self.swarm.keys.events, count=1)
        self.last = rows[0][0] if rows else "0-0"

    async def done(self, work_id: str, within: float = 10.0) -> list[list[float]]:
        """Block until ``work_id`` is done; return its call times (from the snapshot)."""
        swarm = self.swarm
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            reply = await swarm.blocking_client.xread(
                {swarm.keys.events: self.last}, count=100, block=1000
            )
            for _stream, rows in reply or []:
                for entry_id, fields in rows:
                    self.last = entry_id
                    if fields.get("w") == work_id and fields.get("t") in ("done", "failed"):
                        status = await swarm.status(work_id)
                        assert status.meta.state == WorkState.DONE, status.meta
                        assert status.snapshot is not None
                        return status.snapshot.data["t"]
        raise TimeoutError(f"item {work_id} did not finish")


async def _pause() -> None:
    await asyncio.sleep(random.uniform(0.005, 0.015))


async def enqueue_to_start(swarm: RedisSwarm, n: int) -> list[float]:
    out: list[float] = []
    waiter = Waiter(swarm)
    await waiter.start()
    for _ in range(n):
        t0 = time.time()
        work_id = await swarm.enqueue(ENGINE_ID, {"steps": 0, "record": True})
        times = await waiter.done(work_id)
        out.append((times[0][0] - t0) * 1000.0)
        await _pause()
    return out


async def _saq_result(queue: saq.Queue, key: str, within: float = 10.0) -> float:
    """Poll the job record every ms (``Job.refresh(until_complete=...)`` subscribes only
    after reading the job, so a job finishing in between is noticed only at its timeout)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job = await queue.job(key)
        if job is not None and job.status == "complete":
            return float(job.result)
        await asyncio.sleep(0.001)
    raise TimeoutError(f"SAQ job {key} did not complete")


async def saq_enqueue_to_start(url: str, n: int) -> list[float]:
    queue = saq.Queue.from_url(url)
    out: list[float] = []
    try:
        for _ in range(n):
            t0 = time.time()
            job = await queue.enqueue("stamp")
            assert job is not None
            out.append((await _saq_result(queue, job.key) - t0) * 1000.0)
            await _pause()
    finally:
        await queue.disconnect()
    return out


async def continuation_gaps(swarm: RedisSwarm, items: int, steps: int) -> list[float]:
    gaps: list[float] = []
    waiter = Waiter(swarm)
    await waiter.start()
    for _ in range(items):
        work_id = await swarm.enqueue(ENGINE_ID, {"steps": steps, "record": True})
        times = await waiter.done(work_id)
        gaps += [(b[0] - a[1]) * 1000.0 for a, b in zip(times, times[1:], strict=False)]
        await _pause()
    return gaps


async def run(ctx: Context) -> None:
    n = ctx.sizes["latency_n"]
    steps = ctx.sizes["continuation_steps"]
    items = max(1, n // steps)
    home = ctx.tmp / "home"
    with private_server(ctx.tmp) as server:
        workers = start_workers(
            ctx.log_dir,
            [
                roost_cfg(server.url, home, namespace="lat"),
                roost_cfg(server.url, home, namespace="lat0", ROOST_INLINE_STEPS="0"),
                saq_cfg(server.url),
            ],
            label="lat",
        )
        try:
            for w in workers:
                w.go()
            await asyncio.sleep(0.5)
            saq_ms = await saq_enqueue_to_start(server.url, n)
            async with swarm_for(server.url, ctx, namespace="lat") as swarm:
                await swarm.enqueue(ENGINE_ID, {"steps": 0})  # warm-up: scripts load
                await asyncio.sleep(0.2)
                start_ms = await enqueue_to_start(swarm, n)
                inline_ms = await continuation_gaps(swarm, items, steps)
            async with swarm_for(server.url, ctx, namespace="lat0") as swarm:
                await swarm.enqueue(ENGINE_ID, {"steps": 0})
                await asyncio.sleep(0.2)
                queued_ms = await continuation_gaps(swarm, items, steps)
        finally:
            stop_all(workers, graceful=False)
    base50, base99 = percentile(saq_ms, 50), percentile(saq_ms, 99)
    base = "SAQ enqueue to job start"
    series = [
        ("enqueue to step start", start_ms, f"{n} paced enqueues, idle worker"),
        (
            "step end to next step start, inline",
            inline_ms,
            f"{items} items x {steps} zero-delay steps, ROOST_INLINE_STEPS=16 (default); "
            "includes the commit",
        ),
        (
            "step end to next step start, ROOST_INLINE_STEPS=0",
            queued_ms,
            f"{items} items x {steps} steps; every continuation goes through the queue; "
            "includes the commit",
        ),
    ]
    for name, values, note in series:
        for p, base_value, target in ((50, base50, P50), (99, base99, P99)):
            ctx.add(
                Row(
                    GROUP,
                    f"{name}, p{p}",
                    percentile(values, p),
                    "ms",
                    base_value,
                    f"{base}, p{p}",
                    target,
                    note,
                    extra={"n": len(values), "median": median(values), "max": max(values)},
                )
            )
