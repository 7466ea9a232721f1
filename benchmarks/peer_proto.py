"""What a peer program (``benchmarks.peer_*``) shares: its arguments and how it reports.

A peer program runs as ``python -m benchmarks.peer_NAME MODE URL [options]`` and imports
neither Roost nor the other peers. It writes one JSON line per report to stdout, prefixed
with :data:`MARK` (a library's own output is ignored): ``ready`` once it takes work,
``done`` with the first item's start, the last item's end (epoch seconds) and the items it
finished, once it has finished ``--items`` of them. With ``--progress PATH`` it appends
``item step time pid`` to that file after every step (crash runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

from benchmarks.core import bench_state

MARK = "@bench "


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks peer")
    parser.add_argument("mode", choices=["enqueue", "work"])
    parser.add_argument("url", help="where the peer keeps its state")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pad", type=int, default=200, help="state padding (characters)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each step sleeps")
    parser.add_argument("--poll", type=float, default=1.0, help="queue polling interval (s)")
    parser.add_argument("--fsync", action="store_true", help="keep the store's own fsyncs")
    parser.add_argument("--progress", help="append a line per step here")
    args = parser.parse_args(argv)
    args.state = lambda: bench_state(args.pad)
    return args


def report(**fields: Any) -> None:
    """Write one report line for the parent."""
    sys.stdout.write(MARK + json.dumps(fields) + "\n")
    sys.stdout.flush()


class Progress:
    """Counts items as they start and finish; logs steps in crash runs."""

    def __init__(self) -> None:
        self.first = math.inf
        self.last = 0.0
        self.done = 0
        self.total = 0
        self._fd: int | None = None
        self._pid = os.getpid()

    def open(self, args: argparse.Namespace) -> None:
        self.total = args.items
        if args.progress:
            self._fd = os.open(args.progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def started(self) -> None:
        self.first = min(self.first, time.time())

    def step(self, item: int, n: int) -> None:
        if self._fd is not None:
            os.write(self._fd, f"{item} {n} {time.time():.6f} {self._pid}\n".encode())

    def finished(self) -> None:
        self.last = max(self.last, time.time())
        self.done += 1

    def all_done(self) -> bool:
        return self.done >= self.total

    def summary(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "items": self.done}
