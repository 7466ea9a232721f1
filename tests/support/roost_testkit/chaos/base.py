"""What every scenario shares: its environment (servers, processes, files) and its result."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from roost.redis import RedisSwarm
from roost.redis.faults import is_outage
from roost.redis.server import AppendFsync, ServerProcess
from roost.redis.server.pool import ServerPool
from roost.runtime import Registry, RoostSettings, RuntimeEvent, get_plugin_manager
from roost_testkit.chaos.history import (
    COMMITS,
    Problems,
    audit_commits,
    audit_items,
    count_types,
    read_jsonl,
    read_stream,
    write_jsonl,
)
from roost_testkit.chaos.procs import Proc, ProcessGroup, worker_env

T = TypeVar("T")

BIG_STREAM = 10_000_000
"""Event stream cap for the suite: the audits read the whole history of a run."""


@dataclass
class Result:
    """One scenario's figures and verdict (``failures`` empty = pass)."""

    name: str
    items: int = 0
    commits: int = 0
    duplicates: int = 0
    fenced: int = 0
    max_resume: float | None = None
    dead: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list[str])
    notes: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def passed(self) -> bool:
        return not self.failures

    def check(self, ok: bool, message: str) -> bool:
        """Record ``message`` as a failure unless ``ok``; return ``ok``."""
        if not ok:
            self.failures.append(message)
        return ok

    def absorb(self, problems: Problems) -> None:
        self.failures += problems.summary()

    def resume(self, delays: list[float]) -> None:
        if delays:
            worst = max(delays)
            self.max_resume = worst if self.max_resume is None else max(self.max_resume, worst)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "items": self.items,
            "steps_committed": self.commits,
            "duplicates": self.duplicates,
            "fenced_refused": self.fenced,
            "max_resume_s": None if self.max_resume is None else round(self.max_resume, 3),
            "dead_letters": self.dead,
            "seconds": round(self.seconds, 1),
            "passed": self.passed,
            "failures": self.failures,
            "notes": self.notes,
        }


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))


class ChaosEnv:
    """Private servers, processes and files of one scenario run, all cleaned up on close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.servers = ServerPool(root / "redis")
        self.procs = ProcessGroup(root / "logs")

    def server(
        self, *, appendonly: bool = True, appendfsync: AppendFsync = "everysec"
    ) -> ServerProcess:
        return self.servers.make(appendonly=appendonly, appendfsync=appendfsync)

    def settings(self, server: ServerProcess | str, **overrides: Any) -> RoostSettings:
        """Settings for a scenario on ``server`` (or any Redis URL: Sentinel, Cluster...)."""
        values: dict[str, Any] = {
            "redis_url": server if isinstance(server, str) else server.url,
            "home": self.root / "home",
            "namespace": f"chaos{uuid.uuid4().hex[:6]}",
            "lease_ttl": 3.0,
            "retry_delay": 0.05,
            "retry_max_delay": 0.5,
            "grace_period": 10.0,
            "events_maxlen": BIG_STREAM,
        }
        values.update(overrides)
        return RoostSettings.from_env({}, **values)

    @property
    def attempt_log(self) -> Path:
        return self.root / "attempts.jsonl"

    @property
    def sink_log(self) -> Path:
        return self.root / "sink.jsonl"

    def env(self, settings: RoostSettings, **extra: str) -> dict[str, str]:
        """Worker environment: settings, plus the attempt log and the sink log."""
        return worker_env(
            settings,
            ROOST_TEST_LOG=str(self.attempt_log),
            ROOST_CHAOS_EVENTS=str(self.sink_log),
            **extra,
        )

    def worker(self, settings: RoostSettings, concurrency: int, **extra: str) -> Proc:
        return self.procs.start_worker(self.env(settings, **extra), concurrency)

    async def workers(self, settings: RoostSettings, n: int, concurrency: int) -> list[Proc]:
        """Start ``n`` workers at once (their imports overlap) and wait until all are ready."""
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(self.worker, settings, concurrency) for _ in range(n))
            )
        )

    @contextlib.asynccontextmanager
    async def swarm(self, settings: RoostSettings) -> AsyncIterator[RedisSwarm]:
        async with RedisSwarm(settings, registry=registry()) as swarm:
            yield swarm

    def close(self) -> None:
        try:
            self.procs.close()
        finally:
            try:
                self.servers.close()
            finally:
                reap_strays(self.root)


def reap_strays(root: Path) -> list[int]:
    """SIGKILL processes whose command line names a path under ``root``; return their PIDs.

    A safety net for servers a failed start left behind: a server's process title carries
    its config file, which lives under the scenario's own directory, so nothing else matches.
    """
    marker = str(root.resolve())
    killed: list[int] = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        if marker in cmdline and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


async def until(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.05,
) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False).

    A Redis outage (unreachable, busy, read-only...) while polling counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return True
        except Exception as exc:
            if not is_outage(exc):
                raise
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


async def persist(call: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:  # noqa: ASYNC109
    """Run ``call()`` until it gets through to Redis (the driver rides out outages too)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def stop_workers(
    env: ChaosEnv,
    procs: list[Proc],
    timeout: float,  # noqa: ASYNC109 (a wait on processes, per process)
) -> dict[str, int | None]:
    """SIGTERM every live worker of ``procs`` at once; return their exit codes by name."""
    live = [p for p in procs if p.alive()]
    for p in live:
        env.procs.send(p, signal.SIGTERM)
    codes = await asyncio.gather(*(asyncio.to_thread(env.procs.wait, p, timeout) for p in live))
    return {p.name: c for p, c in zip(live, codes, strict=True)}


CRASH_MARKERS = ("Traceback", "step handler crashed", "was never retrieved")


def worker_crashes(env: ChaosEnv) -> list[str]:
    """Lines of the processes' stderr logs that show an unexpected exception."""
    out: list[str] = []
    for path in sorted(env.procs.log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(m in line for m in CRASH_MARKERS):
                out.append(f"{path.name}: {line[:200]}")
    return out


async def audit(
    swarm: RedisSwarm,
    env: ChaosEnv,
    result: Result,
    steps: dict[str, int],
    *,
    lost_acks_ok: bool = False,
) -> list[RuntimeEvent]:
    """The end-of-run checks every scenario shares; call once, at the end. Returns the stream.

    ``steps`` maps each work id to its number of steps: every one must be done at version
    steps + 1 with the right hash chain, and its commits must pass :func:`audit_commits`.
    Also: every commit a worker was told was accepted is in the stream (unless
    ``lost_acks_ok``: a Redis SIGKILL may lose the last acknowledged writes), and no
    process logged an unexpected exception.
    """
    events = await read_stream(swarm)
    write_jsonl(env.root / "stream.jsonl", (e.model_dump_json() for e in events))
    attempts = read_jsonl(env.attempt_log)
    sink = read_jsonl(env.sink_log)
    checked = audit_commits(events, attempts, {w: n + 1 for w, n in steps.items()})
    result.commits = checked.commits
    result.duplicates = checked.duplicates
    result.fenced = count_types(sink, "stale_commit")
    result.dead = sum(1 for e in events if e.type == "dead" and e.work_id in steps)
    result.absorb(checked.problems)
    result.absorb(await audit_items(swarm, steps))
    stored = {(e.work_id, e.version) for e in events if e.type in COMMITS}
    acked = [r for r in sink if r["type"] == "committed"]
    lost = [r for r in acked if (r["work_id"], r["version"]) not in stored]
    if not lost_acks_ok:
        result.check(not lost, f"{len(lost)} acknowledged commits are not in the stream")
    crashes = worker_crashes(env)
    result.check(not crashes, f"unexpected exceptions in process logs: {crashes[:3]}")
    ends = Counter((r["work_id"], r["version"]) for r in attempts if r.get("phase") == "end")
    result.notes.update(
        step_runs=sum(ends.values()),
        steps_run_again=sum(n - 1 for n in ends.values() if n > 1),
        holders_checked=checked.holders_checked,
        acked_commits_lost=len(lost),
    )
    return events
