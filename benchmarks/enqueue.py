"""2. Enqueue throughput: ``enqueue`` one at a time and ``enqueue_many`` vs SAQ's enqueue.

No worker runs; the measuring process is the client. Single: ``n`` sequential awaits of
``RedisSwarm.enqueue`` vs ``saq.Queue.enqueue``. Batch: one ``enqueue_many`` call of ``n``
items (``WorkItem`` construction included) vs ``asyncio.gather`` of ``n`` SAQ enqueues
(SAQ has no batch enqueue; its queue lets 20 run at once).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import saq

from benchmarks.core import Row, median
from benchmarks.engine import ENGINE_ID
from benchmarks.procs import private_server
from benchmarks.runs import swarm_for
from roost.runtime import WorkItem

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "enqueue"


async def run(ctx: Context) -> None:
    n_single, n_batch = ctx.sizes["enqueue_single"], ctx.sizes["enqueue_batch"]
    rates: dict[str, list[float]] = {k: [] for k in ("rs", "ss", "rb", "sb")}
    with private_server(ctx.tmp) as server:
        for rep in range(ctx.repeat):
            async with swarm_for(server.url, ctx, namespace=f"enq{rep}") as swarm:
                await swarm.enqueue(ENGINE_ID, {})  # load the script
                t = time.perf_counter()
                for _ in range(n_single):
                    await swarm.enqueue(ENGINE_ID, {"steps": 1})
                rates["rs"].append(n_single / (time.perf_counter() - t))
                t = time.perf_counter()
                items = [WorkItem(engine=ENGINE_ID, payload={"steps": 1}) for _ in range(n_batch)]
                await swarm.enqueue_many(items)
                rates["rb"].append(n_batch / (time.perf_counter() - t))
            queue = saq.Queue.from_url(server.url, name=f"enq{rep}")
            try:
                await queue.enqueue("noop")
                t = time.perf_counter()
                for _ in range(n_single):
                    await queue.enqueue("noop")
                rates["ss"].append(n_single / (time.perf_counter() - t))
                t = time.perf_counter()
                await asyncio.gather(*(queue.enqueue("noop") for _ in range(n_batch)))
                rates["sb"].append(n_batch / (time.perf_counter() - t))
            finally:
                await queue.disconnect()
    ctx.add(
        Row(
            GROUP,
            "enqueue, one at a time",
            median(rates["rs"]),
            "items/s",
            median(rates["ss"]),
            "SAQ queue.enqueue, one at a time",
            note=f"{n_single} sequential awaits",
            samples=rates["rs"],
            extra={"baseline_samples": rates["ss"]},
        )
    )
    ctx.add(
        Row(
            GROUP,
            "enqueue_many, one call",
            median(rates["rb"]),
            "items/s",
            median(rates["sb"]),
            "SAQ enqueue x n under asyncio.gather",
            note=f"{n_batch} items",
            samples=rates["rb"],
            extra={"baseline_samples": rates["sb"]},
        )
    )
