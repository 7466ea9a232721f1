"""Runs of the peer programs, and of Roost the same way, for :mod:`benchmarks.peers`.

A drain run enqueues the items (DBOS: a process that takes none), starts one worker process
and times it from the first item's start to the last item's end, as the program reports
them. A crash run gives every step a duration, SIGKILLs the worker once a third of the steps
are done, starts a new one at once (same identity: DBOS's executor id; Roost's worker id),
and times until an item that was under way at the kill makes a step again.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.core import STATE_PAD
from benchmarks.peer_proto import MARK
from benchmarks.procs import ROOT, cpu_seconds, private_server, roost_cfg, spawn_workers, stop_all
from benchmarks.runs import bench_items, swarm_for
from roost.runtime import RuntimeEvent

if TYPE_CHECKING:
    from benchmarks.core import Context
    from roost.redis import RedisSwarm

RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Peer:
    """A peer system: its program, what it stores in, and whether it has a queue."""

    label: str  # as printed in the rows, e.g. "DBOS (SQLite)"
    module: str  # benchmarks.peer_*
    store: str  # "sqlite" or "postgres"
    queue: bool  # enqueue in a process of its own before the run


@dataclass
class Workload:
    items: int
    steps: int
    concurrency: int
    pause: float = 0.0  # seconds each step sleeps (crash runs)
    poll: float = 1.0  # DBOS queue polling interval
    fsync: bool = False  # the stores' own fsync per commit, instead of everysec-like

    def args(self) -> list[str]:
        out = [
            f"--items={self.items}",
            f"--steps={self.steps}",
            f"--concurrency={self.concurrency}",
            f"--pad={STATE_PAD}",
            f"--pause={self.pause}",
            f"--poll={self.poll}",
        ]
        return [*out, "--fsync"] if self.fsync else out


class PeerProc:
    """One peer program process; its report lines are read by a thread."""

    def __init__(self, peer: Peer, mode: str, url: str, args: list[str], log: Path) -> None:
        self.log = log
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", peer.module, mode, url, *args],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env=env,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self.reports.put({**json.loads(line[len(MARK) :]), "received": time.time()})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, event: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """The next report, which must be ``event``; raises if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                report = self.reports.get(timeout=0.02)
            except queue.Empty:
                if self.reports.empty():
                    self.check()
                continue
            if report.get("event") != event:
                raise RuntimeError(f"expected {event!r}, got {report}")
            return report
        raise TimeoutError(f"no {event!r} from {self.proc.args} within {timeout:g} s")

    def check(self) -> None:
        """Raise (with the end of its log) if the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.proc.args} exited with {self.proc.returncode}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL (a crash, or the end of a run: the store is thrown away)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _enqueue(peer: Peer, url: str, work: Workload, log: Path) -> None:
    if not peer.queue:
        return
    proc = PeerProc(peer, "enqueue", url, work.args(), log)
    try:
        proc.wait_for("enqueued")
        proc.proc.wait(60)
    finally:
        proc.kill()


def peer_drain(peer: Peer, url: str, work: Workload, log: Path) -> dict[str, Any]:
    """One drain run: steps, wall time and the worker's CPU."""
    _enqueue(peer, url, work, log)
    proc = PeerProc(peer, "work", url, work.args(), log)
    try:
        proc.wait_for("ready")
        cpu0 = cpu_seconds(proc.pid)
        done = proc.wait_for("done")
        cpu = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.kill()
    steps = int(done["items"]) * work.steps
    return {"steps": steps, "wall": done["last"] - done["first"], "worker_cpu": cpu}


def _progress(path: Path) -> list[tuple[int, int, float, int]]:
    """(item, step, time, pid) lines of a progress file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out: list[tuple[int, int, float, int]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.append((int(parts[0]), int(parts[1]), float(parts[2]), int(parts[3])))
    return out


def _under_way(steps_done: dict[Any, int], steps: int) -> set[Any]:
    return {item for item, done in steps_done.items() if 0 < done < steps}


def peer_crash(peer: Peer, url: str, work: Workload, log: Path) -> dict[str, float]:
    """Kill the worker a third of the way, restart it, time until killed items move again."""
    path = log.with_suffix(".progress")
    args = [*work.args(), f"--progress={path}"]
    _enqueue(peer, url, work, log)
    first = PeerProc(peer, "work", url, args, log)
    second: PeerProc | None = None
    try:
        first.wait_for("ready")
        kill_at = work.items * work.steps // 3
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(_progress(path)) < kill_at:
            first.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{peer.label} made {len(_progress(path))} steps")
            time.sleep(0.01)
        t_kill = time.time()
        first.kill()
        done: dict[int, int] = {}
        for item, step, _t, _pid in _progress(path):
            done[item] = max(done.get(item, 0), step)
        under_way = _under_way(done, work.steps)
        t_restart = time.time()
        second = PeerProc(peer, "work", url, args, log)
        while time.monotonic() < deadline:
            mine = [(item, t) for item, _s, t, pid in _progress(path) if pid == second.pid]
            resumed = [t for item, t in mine if item in under_way]
            if resumed:
                # DBOS may step recovered workflows before it reports ready.
                ready = second.wait_for("ready", timeout=30)["received"]
                return {
                    "resume": min(resumed) - t_restart,
                    "after_kill": min(resumed) - t_kill,
                    "any_step": min(t for _item, t in mine) - t_restart,
                    "ready": ready - t_restart,
                    "under_way": len(under_way),
                }
            second.check()
            time.sleep(0.01)
        raise TimeoutError(f"{peer.label}: no item under way at the kill moved again")
    finally:
        first.kill()
        if second is not None:
            second.kill()


async def roost_crash(ctx: Context, work: Workload, ttl: float) -> dict[str, float]:
    """The same crash run on Roost: ``roost worker`` processes, the second with the same id.

    Like the peers' programs, each worker is a fresh interpreter, so a restart costs the
    imports too (a library worker of this suite is forked from pre-imported modules).
    """
    payload = {"steps": work.steps, "pad": STATE_PAD, "sleep": work.pause}
    env = {"ROOST_LEASE_TTL": str(ttl), "ROOST_WORKER_ID": "bench-crash"}
    with private_server(ctx.tmp, appendonly=True) as server:
        cfg = roost_cfg(server.url, ctx.tmp / "home", concurrency=work.concurrency, cli=True, **env)
        workers = spawn_workers(ctx.log_dir, [cfg], label="peer-crash")
        try:
            async with swarm_for(server.url, ctx) as swarm:
                await swarm.enqueue_many(bench_items(work.items, payload))
                workers[0].go()
                progress = _RoostProgress(swarm)
                kill_at = work.items * work.steps // 3
                while sum(progress.steps.values()) < kill_at:
                    workers[0].check()
                    await progress.read()
                    await asyncio.sleep(0.01)
                t_kill = time.time()
                workers[0].kill()
                await progress.read()
                under_way = _under_way(progress.steps, work.steps)
                t_restart = time.time()
                workers += spawn_workers(ctx.log_dir, [cfg], label="peer-crash")
                workers[-1].go()  # returns once the worker takes work
                ready = time.time() - t_restart
                deadline = time.monotonic() + ttl * 3 + 60
                any_step: float | None = None
                while time.monotonic() < deadline:
                    for e in await progress.read():
                        any_step = any_step or e.ts
                        if e.work_id in under_way:
                            return {
                                "resume": e.ts - t_restart,
                                "after_kill": e.ts - t_kill,
                                "any_step": any_step - t_restart,
                                "ready": ready,
                                "under_way": len(under_way),
                            }
                    await asyncio.sleep(0.02)
                raise TimeoutError("Roost: no item under way at the kill moved again")
        finally:
            stop_all(workers, graceful=False)


class _RoostProgress:
    """Steps done per item, from the event stream, read on from where it left off."""

    def __init__(self, swarm: RedisSwarm) -> None:
        self.swarm = swarm
        self.steps: dict[str, int] = {}
        self.last = "0-0"

    async def read(self) -> list[RuntimeEvent]:
        """Read the new events; return the user steps among them (init commits left out)."""
        new: list[RuntimeEvent] = []
        for e in await _all_events(self.swarm, after=self.last):
            self.last = e.id
            if e.type in ("committed", "done") and e.version is not None and e.version > 1:
                self.steps[e.work_id] = max(self.steps.get(e.work_id, 0), e.version - 1)
                new.append(e)
        return new


async def _all_events(swarm: RedisSwarm, after: str = "0-0") -> list[RuntimeEvent]:
    out: list[RuntimeEvent] = []
    while True:
        page = await swarm.events(after=after, limit=10_000)
        out += page
        if len(page) < 10_000:
            return out
        after = page[-1].id
