"""Console latency with many work items (run by hand, not in CI).

Usage::

    uv run python apps/roost-console/bench/latency.py [--items 100000] [--done 3000]

Starts a private server, enqueues ``--items`` items (``hashchain``, no worker: they stay
queued), lets a worker finish ``--done`` more, serves the console in a thread and times its
pages and API routes over HTTP (median and worst of five requests each).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from roost.console import serve_in_thread
from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost.runtime import Registry, RoostSettings, WorkItem, get_plugin_manager

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
from roost_testkit.engines import HashChainEngine  # noqa: E402


async def fill(settings: RoostSettings, items: int, done: int) -> tuple[list[str], list[str]]:
    """Enqueue ``items`` queued items, then run ``done`` one-step items to completion."""
    registry = Registry.load(get_plugin_manager(autoload=False))
    async with RedisSwarm(settings, registry=registry) as swarm:
        t0 = time.perf_counter()
        ids: list[str] = []
        for start in range(0, items, 5000):
            batch = [
                WorkItem(engine="hashchain", payload={"steps": 1})
                for _ in range(min(5000, items - start))
            ]
            ids += await swarm.enqueue_many(batch)
        print(f"enqueued {len(ids)} items in {time.perf_counter() - t0:.1f} s", flush=True)
        worker = RedisSwarm(settings.model_copy(update={"queue": "fast"}), registry=registry)
        await worker.connect()
        fast = RedisSwarm(settings.model_copy(update={"queue": "fast"}), registry=registry)
        await fast.connect()
        t0 = time.perf_counter()
        task = asyncio.create_task(
            worker.run_worker([HashChainEngine()], concurrency=20, install_signal_handlers=False)
        )
        finished = await fast.enqueue_many(
            [WorkItem(engine="hashchain", payload={"steps": 1}) for _ in range(done)]
        )
        while (await swarm.counts())["done"] < done:  # noqa: ASYNC110 (polling Redis)
            await asyncio.sleep(0.2)
        print(f"ran {done} items in {time.perf_counter() - t0:.1f} s", flush=True)
        worker.stop_worker()
        await task
        await worker.close()
        await fast.close()
        return ids, finished


async def direct(settings: RoostSettings, items: dict[str, str]) -> None:
    """Time the swarm calls behind the detail page, without the console."""
    async with RedisSwarm(settings) as swarm:
        for name, work_id in items.items():
            for label, call in (
                ("status", lambda w=work_id: swarm.status(w)),
                ("snapshot_versions", lambda w=work_id: swarm.snapshot_versions(w)),
                ("events(work_id)", lambda w=work_id: swarm.events(work_id=w, limit=200)),
            ):
                t0 = time.perf_counter()
                await call()
                ms = (time.perf_counter() - t0) * 1000
                print(f"  swarm.{label} of the {name} item: {ms:.1f} ms")


def timed(client: httpx.Client, path: str, runs: int = 5) -> tuple[float, float, int]:
    """Median and worst time (ms) of ``runs`` GETs, and the response size."""
    times: list[float] = []
    size = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        size = len(r.content)
    return statistics.median(times), max(times), size


def main() -> None:
    """Fill a namespace, then time the console's routes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--done", type=int, default=3_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="console-bench-"))
    server = ServerProcess(root / "redis").start()
    try:
        settings = RoostSettings.from_env(
            {}, redis_url=server.url, home=root / "home", namespace="bench", history=2
        )
        ids, finished = asyncio.run(fill(settings, args.items, args.done))
        with serve_in_thread(settings) as url, httpx.Client(base_url=url, timeout=60) as c:
            cursor = None
            for _ in range(20):  # walk 20 pages deep for a deep cursor
                page = c.get("/api/work", params={"cursor": cursor} if cursor else {}).json()
                cursor = page["next_cursor"]
            oldest, newest_done = ids[0], finished[-1]
            routes = {
                "overview page": "/",
                "overview API": "/api/overview",
                "work list page 1": "/work",
                "work list API page 1": "/api/work",
                "work list API page 21 (cursor)": f"/api/work?cursor={cursor}",
                "state=queued": "/api/work?state=queued",
                "engine=hashchain": "/api/work?engine=hashchain",
                "engine=absent (bounded scan)": "/api/work?engine=absent",
                "search exact id": f"/api/work?q={oldest}",
                "search substring (5,000 scanned)": f"/api/work?q={oldest[3:11]}",
                "detail of a recent item": f"/work/{newest_done}",
                "detail of the oldest item": f"/work/{oldest}",
                "item events API (oldest)": f"/api/events?work_id={oldest}",
                "recent events page": "/events",
                "failed & dead page": "/failed",
            }
            asyncio.run(direct(settings, {"recent": newest_done, "oldest": oldest}))
            counts = c.get("/api/counts").json()
            print(f"\ncounts: {counts}\n")
            print(f"{'route':40} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
            for name, path in routes.items():
                med, worst, size = timed(c, path)
                print(f"{name:40} {med:10.1f} {worst:8.1f} {size:9d}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
