#!/usr/bin/env python
"""Count instructions per enqueue and per step under valgrind (a busy machine does not move them).

    uv run python scripts/instructions.py server        # Valkey: per enqueue (and SAQ's), per step
    uv run python scripts/instructions.py enqueue       # the enqueuing Python process, per enqueue
    uv run python scripts/instructions.py enqueue --saq # the same for SAQ's queue.enqueue
    uv run python scripts/instructions.py steps         # a worker's Python process, per step
    uv run python scripts/instructions.py steps --inline

``server`` runs the bundled server under ``valgrind --tool=callgrind`` and dumps its counts
around 500 enqueues (Roost's, then SAQ's) and around a queue-mode drain of 100 items of 5
steps by a benchmark worker child (``ROOST_INLINE_STEPS=0``, concurrency 10); it prints the
total and the part under ``fcallCommand`` (``evalShaCommand`` for SAQ). ``enqueue`` and
``steps`` run a Python process under callgrind twice, with a long and a short workload, and
print the difference per unit, so start-up and imports cancel out. Needs valgrind on PATH;
servers are private, on 127.0.0.1. Takes 2-4 minutes per command.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from roost.redis import RedisSwarm

N_ENQUEUE = 500
DRAIN_ITEMS, STEPS = 100, 5


def _callgrind(args: list[str], out: str = "/dev/null") -> int:
    """Instructions valgrind counted for ``args`` (a Python process of this environment)."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def per_unit(inner: list[str], long: int, short: int) -> float:
    """(instructions of ``inner`` at ``long`` units - at ``short``) / (long - short)."""
    me = [sys.executable, __file__, *inner]
    return (_callgrind([*me, str(long)]) - _callgrind([*me, str(short)])) / (long - short)


# -- the workloads (run under valgrind) -------------------------------------------------------


async def _enqueues(n: int, saq_side: bool) -> None:
    import saq

    from benchmarks.core import Context
    from benchmarks.engine import ENGINE_ID
    from benchmarks.procs import private_server
    from benchmarks.runs import swarm_for

    tmp = Path(tempfile.mkdtemp())
    ctx = Context(quick=False, tmp=tmp, repeat=1, sizes={})
    with private_server(tmp) as server:
        queue = saq.Queue.from_url(server.url, name="i")
        try:
            async with swarm_for(server.url, ctx, namespace="i") as swarm:
                await swarm.enqueue(ENGINE_ID, {})
                await queue.enqueue("noop")
                one = (
                    functools.partial(queue.enqueue, "noop")
                    if saq_side
                    else functools.partial(swarm.enqueue, ENGINE_ID, {"steps": 1})
                )
                for _ in range(n):
                    await one()
        finally:
            await queue.disconnect()
    shutil.rmtree(tmp, ignore_errors=True)


async def _until_done(swarm: RedisSwarm, n: int, within: float = 600.0) -> None:
    """Poll until ``n`` items of ``swarm`` are done."""
    for _ in range(int(within / 0.2)):
        if (await swarm.counts()).get("done", 0) >= n:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{n} items were not done within {within} s")


async def _steps(items: int, inline: bool) -> None:
    from benchmarks.core import Context
    from benchmarks.engine import ENGINE_ID, BenchEngine
    from benchmarks.procs import private_server
    from benchmarks.runs import swarm_for
    from roost.runtime import WorkItem

    tmp = Path(tempfile.mkdtemp())
    ctx = Context(quick=False, tmp=tmp, repeat=1, sizes={})
    with private_server(tmp) as server:
        over = {} if inline else {"inline_steps": 0}
        async with swarm_for(server.url, ctx, namespace="i", **over) as swarm:
            work = [WorkItem(engine=ENGINE_ID, payload={"steps": STEPS}) for _ in range(items)]
            await swarm.enqueue_many(work)
            task = asyncio.create_task(swarm.run_worker([BenchEngine()], concurrency=1))
            await _until_done(swarm, items)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    shutil.rmtree(tmp, ignore_errors=True)


# -- the server under callgrind ---------------------------------------------------------------


def _annotate(dump: Path, functions: tuple[str, ...]) -> dict[str, int]:
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        count = line.strip().split(" ", 1)[0].replace(",", "")
        if not count.isdigit():
            continue
        if "PROGRAM TOTALS" in line:
            found["total"] = int(count)
        for name in functions:
            if re.search(rf":{name} \[", line) and name not in found:
                found[name] = int(count)
    return found


def _server_under_callgrind(tmp: Path, out: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The bundled server under callgrind on a free port of 127.0.0.1, its data in ``tmp``."""
    from roost.redis.server import find_server_binary

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", find_server_binary()]
        + ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


async def _server() -> None:
    import redis.asyncio as aioredis
    import saq

    from benchmarks.core import Context
    from benchmarks.engine import ENGINE_ID
    from benchmarks.procs import roost_cfg, start_workers, stop_all
    from benchmarks.runs import swarm_for
    from roost.runtime import WorkItem

    tmp = Path(tempfile.mkdtemp())
    out = tmp / "cg.out"
    server, port = _server_under_callgrind(tmp, out)
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.from_url(url, decode_responses=True)
    ctx = Context(quick=False, tmp=tmp, repeat=1, sizes={})
    dumps: list[tuple[str, int, tuple[str, ...]]] = []

    def dump(label: str, units: int, functions: tuple[str, ...]) -> None:
        control = ["callgrind_control", f"--dump={label}", str(server.pid)]
        subprocess.run(control, check=True, capture_output=True)
        dumps.append((label, units, functions))

    def zero() -> None:
        subprocess.run(
            ["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True
        )

    workers = []
    try:
        for _ in range(600):
            try:
                await client.ping()
                break
            except Exception:
                await asyncio.sleep(0.1)
        cfg = roost_cfg(url, tmp / "home", namespace="q", concurrency=10, ROOST_INLINE_STEPS="0")
        workers = start_workers(ctx.log_dir, [cfg], label="instr")
        for w in workers:
            w.go()
        async with swarm_for(url, ctx, namespace="e") as swarm:
            for _ in range(20):
                await swarm.enqueue(ENGINE_ID, {"steps": 1})
            zero()
            for _ in range(N_ENQUEUE):
                await swarm.enqueue(ENGINE_ID, {"steps": 1})
            dump("enqueue", N_ENQUEUE, ("fcallCommand",))
        queue = saq.Queue.from_url(url, name="s")
        try:
            for _ in range(20):
                await queue.enqueue("noop")
            zero()
            for _ in range(N_ENQUEUE):
                await queue.enqueue("noop")
            dump("saq-enqueue", N_ENQUEUE, ("evalShaCommand",))
        finally:
            await queue.disconnect()
        async with swarm_for(url, ctx, namespace="q") as swarm:
            await swarm.enqueue(ENGINE_ID, {"steps": 0})
            await asyncio.sleep(3)
            zero()
            items = [WorkItem(engine=ENGINE_ID, payload={"steps": STEPS}) for _ in range(100)]
            await swarm.enqueue_many(items)
            await _until_done(swarm, DRAIN_ITEMS + 1)
            dump("queue-mode-steps", DRAIN_ITEMS * STEPS, ("fcallCommand",))
    finally:
        stop_all(workers, graceful=False)
        await client.aclose()
        server.terminate()
        server.wait(timeout=120)
    for index, (label, units, functions) in enumerate(dumps, start=1):
        counts = _annotate(Path(f"{out}.{index}"), functions)
        parts = ", ".join(f"{n} {counts.get(n, 0) / units:,.0f}" for n in functions)
        print(f"server, per {label} unit ({units}): total {counts['total'] / units:,.0f}, {parts}")
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("server", help="the server's instructions per enqueue and per step")
    enqueue = sub.add_parser("enqueue", help="the client's instructions per enqueue")
    enqueue.add_argument("--saq", action="store_true", help="SAQ's queue.enqueue instead")
    steps = sub.add_parser("steps", help="a worker's instructions per step")
    steps.add_argument("--inline", action="store_true", help="inline continuations (default)")
    inner = sub.add_parser("_enqueues")
    inner.add_argument("mode", choices=["roost", "saq"])
    inner.add_argument("n", type=int)
    inner_steps = sub.add_parser("_steps")
    inner_steps.add_argument("mode", choices=["queue", "inline"])
    inner_steps.add_argument("n", type=int)
    args = parser.parse_args()
    if args.command in ("server", "enqueue", "steps") and shutil.which("valgrind") is None:
        print("valgrind is not on PATH", file=sys.stderr)
        return 2
    if args.command == "_enqueues":
        asyncio.run(_enqueues(args.n, args.mode == "saq"))
    elif args.command == "_steps":
        asyncio.run(_steps(args.n, args.mode == "inline"))
    elif args.command == "server":
        asyncio.run(_server())
    elif args.command == "enqueue":
        mode = "saq" if args.saq else "roost"
        print(f"client, per {mode} enqueue: {per_unit(['_enqueues', mode], 1200, 200):,.0f}")
    else:
        mode = "inline" if args.inline else "queue"
        print(f"worker, per {mode}-mode step: {per_unit(['_steps', mode], 120, 20) / STEPS:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
