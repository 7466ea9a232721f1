"""9. CLI start-up: CPU seconds of ``roost --help`` and ``roost status ID``, each a new process.

A command's time is mostly imports. Each command runs ``startup_runs`` times in a fresh
interpreter (``python -m roost.cli``, stdout a pipe), taking turns with its baseline; the row
is the median CPU (user + system) of the process, its wall time in the note. Baselines, same
run: for ``--help``, the help of a one-command typer app (typer and rich draw both); for
``status``, plain redis-py in a new interpreter making the same connection and the same
status read (one pipeline: the item's meta hash, item, snapshot and signal count), printed
as JSON. The item is a queued watchlist item on a private server.

Byte code is cached in a directory of the run (``PYTHONPYCACHEPREFIX``) and one untimed run
of each command fills it, as an installed package's would be: with
``PYTHONDONTWRITEBYTECODE`` set, every import would compile its source again and the figures
would be about twice as large on both sides.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from benchmarks.core import Row, median
from benchmarks.procs import private_server
from benchmarks.runs import swarm_for

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "startup"

TYPER_HELP = """
import typer

app = typer.Typer()


@app.command()
def status(work_id: str) -> None:
    '''Show a work item.'''


@app.command()
def other() -> None:
    '''Another command, so that the app is a group like roost.'''


app()
"""

REDIS_STATUS = """
import json, sys
import redis

url, meta, item, snap, sig = sys.argv[1:]
client = redis.Redis.from_url(url, decode_responses=True)
with client.pipeline(transaction=False) as pipe:
    pipe.hgetall(meta)
    pipe.get(item)
    pipe.get(snap)
    pipe.xlen(sig)
    h, item_json, snap_json, pending = pipe.execute()
client.close()
print(json.dumps({"meta": h, "item": json.loads(item_json), "pending": pending}, indent=2))
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one run of ``argv``; it must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[1:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall


def compare(
    runs: int, argv: list[str], baseline: list[str], env: dict[str, str]
) -> dict[str, list[float]]:
    """``runs`` runs of each, taking turns, after one untimed run each; CPU and wall samples."""
    timed(argv, env)
    timed(baseline, env)
    out: dict[str, list[float]] = {"cpu": [], "wall": [], "base_cpu": [], "base_wall": []}
    for rep in range(runs):
        pair = [("", argv), ("base_", baseline)]
        for prefix, command in pair if rep % 2 == 0 else reversed(pair):
            cpu, wall = timed(command, env)
            out[prefix + "cpu"].append(cpu)
            out[prefix + "wall"].append(wall)
    return out


def add_row(ctx: Context, name: str, samples: dict[str, list[float]], baseline: str) -> None:
    ctx.add(
        Row(
            GROUP,
            name,
            median(samples["cpu"]),
            "CPU s",
            median(samples["base_cpu"]),
            baseline,
            note=f"a new process each time, median of {len(samples['cpu'])}; wall "
            f"{median(samples['wall']):.2f} s against {median(samples['base_wall']):.2f} s",
            samples=samples["cpu"],
            extra={"baseline_samples": samples["base_cpu"], "wall": samples["wall"]},
        )
    )


async def run(ctx: Context) -> None:
    """Time ``roost --help`` and ``roost status ID`` against their baselines."""
    runs = int(ctx.sizes["startup_runs"])
    py = sys.executable
    with private_server(ctx.tmp) as server:
        env = {
            **os.environ,
            "ROOST_REDIS_URL": server.url,
            "ROOST_NAMESPACE": "startup",
            "ROOST_HOME": str(ctx.tmp / "home"),
            "COLUMNS": "100",
            "PYTHONPYCACHEPREFIX": str(ctx.tmp / "pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        async with swarm_for(server.url, ctx, "startup") as swarm:
            work_id = await swarm.enqueue("watchlist", {"url": "http://127.0.0.1:9/"})
            keys = swarm.keys
            status_keys = [keys.meta(work_id), keys.item(work_id), keys.snap(work_id)]
            status_keys.append(keys.sig(work_id))
        help_samples = compare(
            runs, [py, "-m", "roost.cli", "--help"], [py, "-c", TYPER_HELP, "--help"], env
        )
        add_row(ctx, "roost --help", help_samples, "a one-command typer app's --help")
        status_samples = compare(
            runs,
            [py, "-m", "roost.cli", "status", work_id],
            [py, "-c", REDIS_STATUS, server.url, *status_keys],
            env,
        )
        add_row(ctx, "roost status ID", status_samples, "redis-py: the same status read")
