"""Many browsers following the live stream at once (run by hand, not in CI).

Usage::

    uv run python apps/roost-console/bench/streams.py [--clients 200] [--items 500]

Starts a private server and the console (in a thread), opens ``--clients`` event streams,
enqueues ``--items`` items in one batch (one ``enqueued`` event each) and reports how long
until every stream had every event, and how many Redis connections were blocked reading the
event stream meanwhile (the console holds one, whatever the number of streams).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import redis

from roost.console import serve_in_thread
from roost.redis import RedisSwarm
from roost.redis.server import ServerProcess
from roost.runtime import RoostSettings, WorkItem


async def follow(base: str, expect: int, ready: asyncio.Event, opened: list[int]) -> float:
    """Open a stream, say so, and return when it has seen ``expect`` events."""
    async with (
        httpx.AsyncClient(timeout=120) as client,
        client.stream("GET", f"{base}/api/stream") as response,
    ):
        seen = 0
        async for line in response.aiter_lines():
            if line == ": connected":
                opened.append(1)
                await ready.wait()
            elif line.startswith("event: runtime"):
                seen += 1
                if seen == expect:
                    return time.perf_counter()
    raise AssertionError("the stream ended early")


def xreaders(url: str) -> int:
    """Connections of the server whose last command is XREAD."""
    with redis.Redis.from_url(url) as r:
        return sum(1 for c in r.client_list() if c.get("cmd") == "xread")


async def run(base: str, url: str, settings: RoostSettings, clients: int, items: int) -> None:
    """Open the streams, enqueue the items, report."""
    ready = asyncio.Event()
    opened: list[int] = []
    tasks = [asyncio.create_task(follow(base, items, ready, opened)) for _ in range(clients)]
    while len(opened) < clients:  # noqa: ASYNC110 (counting streams other tasks open)
        await asyncio.sleep(0.05)
    print(f"{clients} streams open; Redis connections in XREAD: {xreaders(url)}", flush=True)
    ready.set()
    async with RedisSwarm(settings) as swarm:
        t0 = time.perf_counter()
        await swarm.enqueue_many([WorkItem(engine="hashchain") for _ in range(items)])
    done = await asyncio.gather(*tasks)
    print(
        f"{items} events to each of {clients} streams: all delivered "
        f"{max(done) - t0:.2f} s after the enqueue started "
        f"({clients * items / (max(done) - t0):,.0f} events/s written to clients)"
    )


def main() -> None:
    """Parse the arguments, start a server and the console, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--items", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "redis").start()
        try:
            settings = RoostSettings.from_env({}, redis_url=server.url, home=Path(tmp) / "home")
            with serve_in_thread(settings) as base:
                asyncio.run(run(base, server.url, settings, args.clients, args.items))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
