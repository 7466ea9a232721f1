"""Command line: ``uv run python -m benchmarks [NAMES] [--quick] [--json PATH] ...``."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import (
    cost,
    crash,
    delay,
    enqueue,
    latency,
    memory,
    metrics,
    peers,
    profile,
    scale,
    startup,
    throughput,
)
from benchmarks.core import Context
from benchmarks.procs import ROOT, start_fork_server
from benchmarks.report import markdown_table

BENCHMARKS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "enqueue": enqueue.run,
    "throughput": throughput.run,
    "latency": latency.run,
    "delay": delay.run,
    "scale": scale.run,
    "cost": cost.run,
    "memory": memory.run,
    "metrics": metrics.run,
    "crash": crash.run,
    "peers": peers.run,
    "startup": startup.run,
    "profile": profile.run,
}
DEFAULT = [
    "enqueue",
    "throughput",
    "latency",
    "delay",
    "scale",
    "cost",
    "memory",
    "metrics",
    "crash",
    "peers",
    "startup",
]
"""What runs without names: every benchmark but ``profile`` (``peers`` only if installed)."""

FULL: dict[str, Any] = {
    "items": 2000,
    "steps": 5,
    "concurrency_high": 50,
    "enqueue_single": 2000,
    "enqueue_batch": 10000,
    "latency_n": 500,
    "continuation_steps": 10,
    "delay_items": 200,
    "delays_per_item": 2,
    "delay_range": [0.2, 5.0],
    "delay_saq_jobs": 50,
    "delay_saq_ahead": [1, 3],
    "delay_stagger": 1.0,
    "scale_sizes": [1000, 10000, 100000],
    "scale_reps": 30,
    "scale_settle": 1.0,
    "cost_items": 500,
    "memory_items": 2000,
    "memory_running": 100,
    "memory_warmup": 200,
    "memory_steps": 3,
    "memory_pad": 184,
    "memory_progress": False,
    "metrics_scrape": 15.0,
    "crash_ttl": 5.0,
    "crash_trials": 3,
    "kill_after": 0.1,
    "profile_concurrency": 10,
    "peer_dbos_poll": 0.1,
    "peer_fsync": False,
    "peer_crash_items": 200,
    "peer_crash_pause": 0.1,
    "peer_crash_trials": 3,
    "startup_runs": 5,
}

QUICK: dict[str, Any] = {
    **FULL,
    "items": 100,
    "steps": 2,
    "enqueue_single": 100,
    "enqueue_batch": 300,
    "latency_n": 20,
    "continuation_steps": 5,
    "delay_items": 10,
    "delays_per_item": 1,
    "delay_range": [0.2, 0.4],
    "delay_saq_jobs": 3,
    "delay_saq_ahead": [1, 1],
    "delay_stagger": 0.1,
    "scale_sizes": [500, 2000],
    "scale_reps": 5,
    "scale_settle": 0.1,
    "cost_items": 50,
    "memory_items": 100,
    "memory_running": 20,
    "memory_warmup": 20,
    "crash_ttl": 1.0,
    "crash_trials": 1,
    "kill_after": 0.1,
    "peer_crash_items": 60,
    "peer_crash_trials": 1,
    "startup_runs": 1,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Roost's benchmark suite: each figure next to a same-run baseline.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all but profile)",
    )
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    parser.add_argument(
        "--repeat", type=int, help="runs of each throughput/enqueue config (default 3; quick 1)"
    )
    parser.add_argument("--items", type=int, help="throughput items (default 2000)")
    parser.add_argument("--steps", type=int, help="steps per item (default 5)")
    parser.add_argument(
        "--scale-sizes", help="comma-separated finished-item counts (default 1000,10000,100000)"
    )
    parser.add_argument("--latency-n", type=int, help="paced enqueues (default 500)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override any size, e.g. --set crash_ttl=2 (see --list)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="where `profile` writes its files (default: a temp dir)"
    )
    parser.add_argument("--list", action="store_true", help="list benchmarks and sizes, exit")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    return parser.parse_args(argv)


def sizes_for(args: argparse.Namespace) -> dict[str, Any]:
    sizes = dict(QUICK if args.quick else FULL)
    if args.items:
        sizes["items"] = args.items
    if args.steps:
        sizes["steps"] = args.steps
    if args.latency_n:
        sizes["latency_n"] = args.latency_n
    if args.scale_sizes:
        sizes["scale_sizes"] = [int(s) for s in args.scale_sizes.split(",")]
    if args.profile_dir:
        sizes["profile_dir"] = str(args.profile_dir.resolve())
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in sizes:
            raise SystemExit(f"--set {item!r}: expected KEY=JSON with KEY in {sorted(sizes)}")
        sizes[key] = json.loads(value)
    return sizes


def selected(args: argparse.Namespace) -> list[str]:
    names = args.names or list(DEFAULT)
    skip = {s for s in args.skip.split(",") if s}
    unknown = [n for n in [*names, *skip] if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return [n for n in names if n not in skip]


def machine(loadavg_start: tuple[float, float, float]) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "packages"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = dirty = ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg_start,
        "git_commit": commit,
        "runtime_uncommitted_changes": bool(dirty),
        "versions": {p: version(p) for p in ("saq", "redis", "pydantic", "hiredis")},
    }


async def run_all(ctx: Context, names: list[str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            await BENCHMARKS[name](ctx)
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr, flush=True)
        print(f"# {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_for(args)
    if args.list:
        for name, fn in BENCHMARKS.items():
            doc = (sys.modules[fn.__module__].__doc__ or "").strip().splitlines()[0]
            print(f"{name:11} {doc}")
        print(json.dumps(sizes, indent=2))
        return 0
    names = selected(args)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("roost.redis").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="roost-bench-"))
    repeat = args.repeat or (1 if args.quick else 3)
    ctx = Context(quick=args.quick, tmp=tmp, repeat=repeat, sizes=sizes)
    started = time.monotonic()
    load = os.getloadavg()
    start_fork_server()
    try:
        errors = asyncio.run(run_all(ctx, names))
    finally:
        if args.keep:
            print(f"# kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    given = argv if argv is not None else sys.argv[1:]
    command = "uv run python -m benchmarks " + shlex.join(given)
    table = markdown_table(ctx.rows)
    if ctx.rows:
        print(table)
    if ctx.profile:
        print("\nprofile of the worker:\n" + json.dumps(ctx.profile, indent=2))
    print(f"\n{command.strip()}  # {elapsed:.0f} s", flush=True)
    result = {
        "command": command.strip(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": elapsed,
        "quick": args.quick,
        "repeat": repeat,
        "benchmarks": names,
        "sizes": sizes,
        "machine": {**machine(load), "loadavg_end": os.getloadavg()},
        "rows": [row.to_dict() for row in ctx.rows],
        "profile": ctx.profile,
        "errors": errors,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 1 if errors else 0
