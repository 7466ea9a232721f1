"""A benchmark worker process, forked from a pre-imported fork server (see ``procs``).

Protocol over a ``multiprocessing`` pipe:

1. the parent forks the child with its config: ``kind`` (``roost`` or ``saq``), ``url``,
   ``concurrency``, ``env`` (ROOST_* variables for a Roost worker), ``queue`` (SAQ queue
   name) and ``count`` (count Redis commands and round trips client-side);
2. the child connects and sends ``connected``; the parent sends ``go`` (to every worker of
   a run at once, so connecting is not timed);
3. the child works until SIGTERM, then sends its counters (JSON) and exits.

Running workers in their own processes keeps the measuring process off their CPU; forking
them from a server that imported Roost and SAQ once makes starting one take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


class CommandCounter:
    """Counts commands and socket writes (round trips) this process sends to Redis.

    It reads the RESP bytes each connection sends, so it sees every command whichever
    packer built them (Roost packs with hiredis, SAQ with redis-py).
    """

    def __init__(self) -> None:
        self.commands = 0
        self.round_trips = 0
        self.by_command: Counter[str] = Counter()
        self.evalsha: Counter[str] = Counter()

    def install(self) -> None:
        """Wrap redis-py's asyncio ``send_packed_command`` (only in a counting run)."""
        from redis.asyncio.connection import AbstractConnection

        send = AbstractConnection.send_packed_command
        counter = self

        async def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.observe(command)
            await send(conn, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]

    def observe(self, packed: bytes | str | list[bytes | memoryview]) -> None:
        """Count one socket write holding one or more RESP commands."""
        if isinstance(packed, str):
            packed = packed.encode()
        data = packed if isinstance(packed, bytes) else b"".join(bytes(p) for p in packed)
        self.round_trips += 1
        pos = 0
        while pos < len(data) and data[pos : pos + 1] == b"*":
            end = data.index(b"\r\n", pos)
            argc = int(data[pos + 1 : end])
            pos = end + 2
            args: list[bytes] = []
            for _ in range(argc):
                end = data.index(b"\r\n", pos)
                size = int(data[pos + 1 : end])
                if len(args) < 2:
                    args.append(data[end + 2 : end + 2 + size])
                pos = end + 2 + size + 2
            self.commands += 1
            name = args[0].decode(errors="replace").upper() if args else "?"
            self.by_command[name] += 1
            if name in ("EVALSHA", "FCALL") and len(args) > 1:  # SAQ: EVALSHA; Roost: FCALL
                self.evalsha[args[1].decode()] += 1

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


async def chain(
    ctx: dict[str, Any], *, item: int, step: int, steps: int, state: dict[str, Any]
) -> dict[str, Any]:
    """One step of a SAQ chain: the step's state goes to the job of the next step.

    SAQ writes a job, its arguments included, to Redis when it is enqueued, so handing the
    state to the next job is how a SAQ user persists it: one write per step, which also
    schedules the next step. The key ``<item>.<step>`` makes a retried step's enqueue of
    the next one a no-op while that job is pending. The last state is the last job's result.
    """
    state = {**state, "n": int(state["n"]) + 1}
    if step < steps:
        await (
            ctx["job"]
            .get_queue()
            .enqueue(
                "chain",
                key=f"{item}.{step + 1}",
                item=item,
                step=step + 1,
                steps=steps,
                state=state,
            )
        )
    return state


async def stamp(ctx: dict[str, Any]) -> float:
    """A SAQ job that returns when it started (latency baseline)."""
    return time.time()


async def run_roost(cfg: dict[str, Any], conn: Connection) -> None:
    from benchmarks.engine import BenchEngine
    from roost.redis import RedisSwarm
    from roost.runtime import Registry, RoostSettings, get_plugin_manager

    settings = RoostSettings.from_env({**os.environ, **cfg["env"]})
    # ROOST_BENCH_PLUGINS: the installed plugins too, as ``roost worker`` loads them.
    autoload = bool(cfg["env"].get("ROOST_BENCH_PLUGINS"))
    registry = Registry.load(get_plugin_manager(autoload=autoload))
    async with RedisSwarm(settings, registry=registry) as swarm:
        observers = with_metrics(swarm, cfg) if cfg["env"].get("ROOST_BENCH_METRICS") else []
        conn.send_bytes(b"connected")
        await asyncio.to_thread(conn.recv_bytes)
        COUNTER.reset()
        await swarm.run_worker(
            [BenchEngine()], concurrency=int(cfg["concurrency"]), observers=observers
        )


def with_metrics(swarm: Any, cfg: dict[str, Any]) -> list[Any]:
    """A ``WorkerMetrics`` served on a free port and scraped every ROOST_BENCH_SCRAPE s."""
    import threading
    import urllib.request

    from benchmarks.engine import ENGINE_ID
    from roost.redis.metrics import WorkerMetrics, serve_worker_metrics, watch_queue

    metrics = WorkerMetrics(slots={ENGINE_ID: int(cfg["concurrency"])})
    server = serve_worker_metrics(metrics, 0)
    watch_queue(metrics, swarm)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    every = float(cfg["env"].get("ROOST_BENCH_SCRAPE", "1"))

    def scrape() -> None:
        while True:
            time.sleep(every)
            with urllib.request.urlopen(url, timeout=10) as reply:
                reply.read()

    threading.Thread(target=scrape, daemon=True, name="scraper").start()
    return [metrics]


async def run_saq(cfg: dict[str, Any], conn: Connection) -> None:
    import saq

    queue = saq.Queue.from_url(cfg["url"], name=cfg.get("queue", "default"))
    await queue.connect()
    worker = saq.Worker(queue, functions=[noop, chain, stamp], concurrency=int(cfg["concurrency"]))
    conn.send_bytes(b"connected")
    await asyncio.to_thread(conn.recv_bytes)
    COUNTER.reset()
    try:
        await worker.start()
    finally:
        await queue.disconnect()


COUNTER = CommandCounter()


def child(conn: Connection, cfg: dict[str, Any], log_path: str) -> None:
    """Entry point of a worker child: stdout and stderr go to ``log_path``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    if cfg.get("count"):
        COUNTER.install()
    runner = run_roost if cfg["kind"] == "roost" else run_saq
    asyncio.run(runner(cfg, conn))
    conn.send_bytes(json.dumps(COUNTER.to_dict()).encode())
