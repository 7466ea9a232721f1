"""5. Scale: recovery pass, list and status with 1k / 10k / 100k finished items present.

The first ``sizes[0]`` finished items go through the real API: ``enqueue_many`` and a real
worker run them (90% to ``done``, 10% to ``failed`` through a contract error). The rest are
copies of one real done item and one real failed item made by ``benchmarks/clone.lua``:
the same meta hash, item and snapshot JSON (work id replaced), state index entry and events
(the stream keeps its cap). The worker is stopped before timing, so nothing else runs.

Each operation is timed from the measuring process (round trip and parsing included),
``scale_reps`` times per size, the operations taking turns; the row is the median.
Baseline: the same operation at the smallest size, so the ratio shows growth. A full
``SCAN`` of the item keys at the largest size is shown for scale (a SCAN-based recovery
pass costs at least that).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.core import Row, Target, median, percentile
from benchmarks.procs import private_server, roost_cfg, start_workers
from benchmarks.runs import bench_items, data_memory, poll_until, swarm_for
from roost.redis import RedisSwarm
from roost.redis.maintenance import Clock, reclaim_stranded, recover_expired
from roost.runtime import WorkState

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "scale"
CLONE_BATCH = 5000
CLONE_LUA = (Path(__file__).parent / "clone.lua").read_text()


async def _prefill_real(swarm: RedisSwarm, ctx: Context, url: str, n: int) -> None:
    failed = max(1, n // 10)
    worker = start_workers(ctx.log_dir, [roost_cfg(url, ctx.tmp / "home", concurrency=50)])[0]
    try:
        worker.go()
        items = bench_items(n - failed, {"steps": 0, "pad": 60}) + bench_items(
            failed, {"steps": 0, "fail": True}
        )
        await swarm.enqueue_many(items)
        done, fail = swarm.keys.state("done"), swarm.keys.state("failed")

        async def finished() -> bool:
            return int(await swarm.client.zcard(done)) + int(await swarm.client.zcard(fail)) >= n

        await poll_until(finished, workers=[worker])
    finally:
        worker.kill()


async def _template(swarm: RedisSwarm, state: str) -> tuple[str, list[list[str]]]:
    """A real item in ``state`` and its events (as flat field lists, work id blanked)."""
    template: str = (await swarm.client.zrange(swarm.keys.state(state), 0, 0))[0]
    events = [
        [x for kv in fields.items() for x in (kv[0], "" if kv[0] == "w" else kv[1])]
        for _id, fields in await swarm.client.xrange(swarm.keys.events)
        if fields.get("w") == template
    ]
    return template, events


async def _clone(
    swarm: RedisSwarm, state: str, template: tuple[str, list[list[str]]], first: int, count: int
) -> None:
    script = swarm.client.register_script(CLONE_LUA)
    work_id, events = template
    args = [swarm.keys.base, work_id, state]
    for start in range(first, first + count, CLONE_BATCH):
        n = min(CLONE_BATCH, first + count - start)
        extra = [start, n, swarm.settings.events_maxlen, json.dumps(events)]
        await script(keys=[], args=[*args, *extra])


async def _time_all(
    ops: dict[str, Callable[[], Awaitable[Any]]], reps: int
) -> dict[str, list[float]]:
    """Time every op ``reps`` times, round-robin (a burst of load hits all of them alike)."""
    out: dict[str, list[float]] = {name: [] for name in ops}
    for op in ops.values():
        await op()
    for _ in range(reps):
        for name, op in ops.items():
            t = time.perf_counter()
            await op()
            out[name].append((time.perf_counter() - t) * 1000.0)
    return out


async def _scan_all(swarm: RedisSwarm) -> int:
    n = 0
    async for _key in swarm.client.scan_iter(match=swarm.keys.base + "w:*", count=1000):
        n += 1
    return n


async def run(ctx: Context) -> None:
    sizes: list[int] = ctx.sizes["scale_sizes"]
    reps = ctx.sizes["scale_reps"]
    clock = Clock()
    timings: dict[str, dict[int, list[float]]] = {}
    memory: dict[int, int] = {}
    scan_ms = 0.0
    with private_server(ctx.tmp) as server:
        async with swarm_for(server.url, ctx) as swarm:
            await _prefill_real(swarm, ctx, server.url, sizes[0])
            present = sizes[0]
            templates = {s: await _template(swarm, s) for s in ("done", "failed")}
            sample = (await swarm.client.zrange(swarm.keys.state("done"), 0, 0))[0]
            ops: dict[str, Callable[[], Awaitable[Any]]] = {
                "recovery pass (recover_expired)": lambda: recover_expired(
                    swarm, swarm.keys, clock
                ),
                "stranded-delivery pass (reclaim_stranded)": lambda: reclaim_stranded(
                    swarm, swarm.keys
                ),
                "list_work(state=failed, limit=50)": lambda: swarm.list_work(
                    state=WorkState.FAILED, limit=50
                ),
                "list_work(all states, limit=50)": lambda: swarm.list_work(limit=50),
                "status(work_id)": lambda: swarm.status(sample),
                "counts()": swarm.counts,
            }
            for size in sizes:
                if size > present:
                    failed_now = await swarm.client.zcard(swarm.keys.state("failed"))
                    add_failed = size // 10 - int(failed_now)
                    await _clone(swarm, "failed", templates["failed"], present, add_failed)
                    await _clone(
                        swarm,
                        "done",
                        templates["done"],
                        present + add_failed,
                        size - present - add_failed,
                    )
                    present = size
                counts = await swarm.counts()
                assert counts["done"] + counts["failed"] == size, counts
                memory[size] = data_memory(await swarm.client.info("memory"))
                await asyncio.sleep(ctx.sizes["scale_settle"])
                for name, values in (await _time_all(ops, reps)).items():
                    timings.setdefault(name, {})[size] = values
            t = time.perf_counter()
            scanned = await _scan_all(swarm)
            scan_ms = (time.perf_counter() - t) * 1000.0
    first = sizes[0]
    for name, by_size in timings.items():
        base = median(by_size[first])
        # Flat: at most twice the smallest size's time, give or take 1 ms of noise.
        target = Target("ratio", "<=", 2.0, also_value_max=10.0, slack=1.0)
        if "all states" in name or "stranded" in name:
            target = None
        for size, values in by_size.items():
            ctx.add(
                Row(
                    GROUP,
                    f"{name}, {size:,} finished",
                    median(values),
                    "ms",
                    base,
                    f"same at {first:,} finished",
                    target,
                    f"median of {len(values)}",
                    samples=values,
                    extra={"p90": percentile(values, 90), "max": max(values)},
                )
            )
    last = sizes[-1]
    ctx.add(
        Row(
            GROUP,
            f"full SCAN of item keys, {last:,} finished",
            scan_ms,
            "ms",
            note=f"{scanned:,} keys; what a SCAN-based recovery pass would cost at least",
        )
    )
    if len(sizes) > 1:
        per_item = (memory[last] - memory[first]) / (last - first)
        ctx.add(
            Row(
                GROUP,
                "memory per cloned finished item",
                per_item,
                "bytes",
                note=f"used_memory growth {first:,} -> {last:,}, events capped; "
                "see cost/memory for the real-API figure",
            )
        )
