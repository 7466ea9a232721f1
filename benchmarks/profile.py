"""Profile: where a Roost worker's time goes during a throughput drain (not in the default set).

Runs one drain (``items`` x ``steps``, concurrency ``profile_concurrency``) with py-spy
sampling the worker process at 250 Hz (``py-spy`` on PATH, else ``uvx py-spy``; it is never
a project dependency) and the server logging every command's time. Writes the collapsed stacks
(``worker.collapsed``: load it in speedscope, or flamegraph.pl) and ``summary.json`` to
``--profile-dir``, and prints the time per category, the top functions and the server time
per script. py-spy slows the worker a little; use the throughput rows for speed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.runs import roost_drain

if TYPE_CHECKING:
    from benchmarks.core import Context
    from benchmarks.procs import WorkerProc

ROOST_FILE = re.compile(
    r"\((redis/(worker|swarm|scripts|keys|upkeep|maintenance|codec|listing|connection)\.py"
    r"|runtime/)"
)
CATEGORIES: list[tuple[str, Any]] = [
    ("socket write (send syscall, loopback TCP)", lambda f: "_SelectorSocketTransport.write" in f),
    (
        "socket read + hiredis reply parsing",
        lambda f: "_parsers/hiredis" in f or "_read_ready" in f or "StreamReader" in f,
    ),
    ("event loop idle (epoll wait)", lambda f: "selectors.py" in f),
    ("command packing", lambda f: "pack_command" in f),
    (
        "pydantic, contract checks, json",
        lambda f: "pydantic" in f or "contract.py" in f or "json/" in f or "models.py" in f,
    ),
    ("engine (no-op)", lambda f: "benchmarks/engine.py" in f),
    ("roost runtime code", lambda f: ROOST_FILE.search(f) is not None),
    ("redis-py client (pool, retry, execute, timeouts)", lambda f: "redis/" in f),
    ("asyncio (tasks, handles, timers, wait_for)", lambda f: "asyncio/" in f),
]


def py_spy() -> list[str]:
    if shutil.which("py-spy"):
        return ["py-spy"]
    if shutil.which("uvx"):
        return ["uvx", "py-spy"]
    raise RuntimeError("py-spy not found: run with uvx available, or `pipx install py-spy`")


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` at 250 Hz into collapsed stacks at ``out`` until SIGINT."""
    return subprocess.Popen(
        [*py_spy(), "record", "-p", str(pid), "-r", "250", "-f", "raw", "--nonblocking"]
        + ["-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def classify(frames: list[str]) -> str:
    """The category of a sample: the first rule that matches, from the leaf upward."""
    for frame in reversed(frames):
        for name, rule in CATEGORIES:
            if rule(frame):
                return name
    return "other"


def summarize(collapsed: Path, top: int = 25) -> dict[str, Any]:
    categories: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        categories[classify(frames)] += n
        leaves[frames[-1]] += n
    return {
        "samples": total,
        "categories": {k: round(100 * v / total, 1) for k, v in categories.most_common()},
        "top_self": {k: round(100 * v / total, 1) for k, v in leaves.most_common(top)},
    }


async def run(ctx: Context) -> None:
    out_dir: Path = ctx.sizes.get("profile_dir") or ctx.tmp / "profile"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    collapsed = out_dir / "worker.collapsed"
    spy: list[subprocess.Popen[bytes]] = []

    async def attach(workers: list[WorkerProc]) -> None:
        spy.append(start_py_spy(workers[0].pid, collapsed))
        await asyncio.sleep(2.0)  # let py-spy start sampling

    items, steps = ctx.sizes["items"], ctx.sizes["steps"]
    concurrency = int(ctx.sizes.get("profile_concurrency", 10))
    result = await roost_drain(
        ctx, items=items, steps=steps, concurrency=concurrency, slowlog=True, on_start=attach
    )
    for proc in spy:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    summary = summarize(collapsed)
    slowlog: dict[str, dict[str, float]] = result.extra["slowlog"]
    summary["server_us_per_step_by_script"] = {
        name.removeprefix("script "): round(v["usec"] / result.units, 1)
        for name, v in sorted(slowlog.items(), key=lambda kv: -kv[1]["usec"])
        if name.startswith("script ")
    }
    summary["concurrency"] = concurrency
    summary["steps_per_s_under_profiler"] = round(result.rate, 1)
    summary["worker_cpu_ms_per_step"] = round(result.worker_cpu / result.units * 1000, 3)
    summary["server_cpu_ms_per_step"] = round(result.server_cpu / result.units * 1000, 3)
    summary["files"] = {"collapsed": str(collapsed)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    ctx.profile = summary
