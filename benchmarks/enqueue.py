"""2. Enqueue throughput: ``enqueue`` one at a time and ``enqueue_many`` vs SAQ's enqueue.

No worker runs; the measuring process is the client. Single: ``n`` sequential awaits of
``RedisSwarm.enqueue`` vs ``saq.Queue.enqueue``, alternating in blocks of :data:`BLOCK`.
Batch: one ``enqueue_many`` call of ``n`` items (``WorkItem`` construction included) vs
``asyncio.gather`` of ``n`` SAQ enqueues (SAQ has no batch enqueue; its queue lets 20 run
at once).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
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


BLOCK = 50
"""Single enqueues alternate between Roost and SAQ in blocks of this many, so a shared
machine's swings in load fall on both sides alike."""


async def _timed(n: int, enqueue: Callable[[], Awaitable[object]]) -> float:
    t = time.perf_counter()
    for _ in range(n):
        await enqueue()
    return time.perf_counter() - t


async def run(ctx: Context) -> None:
    n_single, n_batch = ctx.sizes["enqueue_single"], ctx.sizes["enqueue_batch"]
    rates: dict[str, list[float]] = {k: [] for k in ("rs", "ss", "rb", "sb")}
    with private_server(ctx.tmp) as server:
        for rep in range(ctx.repeat):
            queue = saq.Queue.from_url(server.url, name=f"enq{rep}")
            try:
                async with swarm_for(server.url, ctx, namespace=f"enq{rep}") as swarm:
                    await swarm.enqueue(ENGINE_ID, {})  # load the script
                    await queue.enqueue("noop")

                    roost = functools.partial(swarm.enqueue, ENGINE_ID, {"steps": 1})
                    saq_one = functools.partial(queue.enqueue, "noop")
                    spent = {"rs": 0.0, "ss": 0.0}
                    for block in range(0, n_single, BLOCK):
                        n = min(BLOCK, n_single - block)
                        sides = [("rs", roost), ("ss", saq_one)]
                        for key, fn in sides if block // BLOCK % 2 == 0 else sides[::-1]:
                            spent[key] += await _timed(n, fn)
                    rates["rs"].append(n_single / spent["rs"])
                    rates["ss"].append(n_single / spent["ss"])
                    t = time.perf_counter()
                    items = [
                        WorkItem(engine=ENGINE_ID, payload={"steps": 1}) for _ in range(n_batch)
                    ]
                    await swarm.enqueue_many(items)
                    rates["rb"].append(n_batch / (time.perf_counter() - t))
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
            note=f"{n_single} sequential awaits each, alternating in blocks of {BLOCK}",
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
