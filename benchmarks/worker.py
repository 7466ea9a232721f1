"""A benchmark worker process: ``python -m benchmarks.worker`` (driven by the parent).

Protocol on stdin/stdout, one line each:

1. the child prints ``ready`` at once;
2. the parent sends one JSON line: ``kind`` (``roost`` or ``saq``), ``url``, ``concurrency``,
   ``env`` (ROOST_* variables for a Roost worker), ``queue`` (SAQ queue name) and ``count``
   (count Redis commands and round trips client-side);
3. the child imports what its kind needs, connects and prints ``connected``; the parent
   sends ``go`` (to every worker of a run at once, so imports and connects are not timed);
4. the child works until SIGTERM, then prints one JSON line of counters and exits.

Running workers in their own processes keeps the measuring process off their CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any


class CommandCounter:
    """Counts commands and socket writes (round trips) this process sends to Redis."""

    def __init__(self) -> None:
        self.commands = 0
        self.round_trips = 0
        self.by_command: Counter[str] = Counter()
        self.evalsha: Counter[str] = Counter()

    def install(self) -> None:
        """Wrap redis-py's asyncio connection methods (only in a counting run)."""
        from redis.asyncio.connection import AbstractConnection

        pack = AbstractConnection.pack_command
        send = AbstractConnection.send_packed_command
        counter = self

        def pack_command(conn: Any, *args: Any) -> list[bytes]:
            counter.commands += 1
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            counter.by_command[name.upper()] += 1
            if name.upper() == "EVALSHA":
                counter.evalsha[str(args[1])] += 1
            return pack(conn, *args)

        async def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.round_trips += 1
            await send(conn, command, check_health)

        AbstractConnection.pack_command = pack_command  # type: ignore[method-assign]
        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]

    def reset(self) -> None:
        """Forget what connecting cost."""
        self.__init__()

    def to_dict(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "round_trips": self.round_trips,
            "by_command": dict(self.by_command),
            "evalsha": dict(self.evalsha),
        }


async def noop(ctx: dict[str, Any]) -> None:
    """The raw SAQ baseline job: does nothing."""


async def stamp(ctx: dict[str, Any]) -> float:
    """A SAQ job that returns when it started (latency baseline)."""
    return time.time()


def _line() -> str:
    return sys.stdin.readline().strip()


async def run_roost(cfg: dict[str, Any]) -> None:
    from benchmarks.engine import BenchEngine
    from roost.redis import RedisSwarm
    from roost.runtime import Registry, RoostSettings, get_plugin_manager

    settings = RoostSettings.from_env({**os.environ, **cfg["env"]})
    registry = Registry.load(get_plugin_manager(autoload=False))
    async with RedisSwarm(settings, registry=registry) as swarm:
        print("connected", flush=True)
        await asyncio.to_thread(_line)
        COUNTER.reset()
        await swarm.run_worker([BenchEngine()], concurrency=int(cfg["concurrency"]))


async def run_saq(cfg: dict[str, Any]) -> None:
    import saq

    queue = saq.Queue.from_url(cfg["url"], name=cfg.get("queue", "default"))
    await queue.connect()
    worker = saq.Worker(queue, functions=[noop, stamp], concurrency=int(cfg["concurrency"]))
    print("connected", flush=True)
    await asyncio.to_thread(_line)
    COUNTER.reset()
    try:
        await worker.start()
    finally:
        await queue.disconnect()


COUNTER = CommandCounter()


def main() -> None:
    print("ready", flush=True)
    cfg: dict[str, Any] = json.loads(_line())
    if cfg.get("count"):
        COUNTER.install()
    runner = run_roost if cfg["kind"] == "roost" else run_saq
    asyncio.run(runner(cfg))
    print(json.dumps(COUNTER.to_dict()), flush=True)


if __name__ == "__main__":
    main()
