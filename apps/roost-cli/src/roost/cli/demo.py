"""``roost demo``: a watchlist job survives the worker that runs it being killed.

Everything runs on this machine: a local HTTP target, real ``roost worker`` subprocesses, the
Redis that the other commands use (embedded by default), in a namespace of its own.

The verb and its options are :mod:`roost.cli.demo_verb`; it imports this module (and
:mod:`roost.cli.demo_approval`) only when ``roost demo`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import typer

from roost.cli.context import (
    CliError,
    GlobalOptions,
    load_registry,
    open_backend,
)
from roost.runtime import RoostSettings, WorkStatus
from roost.runtime.backends import WorkBackend

__all__ = ["DEMO_NAMESPACE", "run_demo"]

DEMO_NAMESPACE = "demo"
WAIT_LIMIT = 60.0


def say(text: str = "") -> None:
    """Print a line of the demo's story."""
    typer.echo(text)
    sys.stdout.flush()


@contextlib.contextmanager
def http_target() -> Generator[tuple[str, list[float]]]:
    """A local HTTP server on 127.0.0.1 answering 200 to every GET; yields (url, hit times)."""
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(time.time())
            body = b"hello from the roost demo target\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", hits
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class WorkerProcess:
    """A ``roost worker`` subprocess whose output is echoed with a label."""

    label: str
    proc: asyncio.subprocess.Process
    echo: asyncio.Task[None] | None = None
    lines: list[str] = field(default_factory=list[str])

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    async def pump(self) -> None:
        """Echo the worker's output lines, prefixed with its label."""
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            say(f"      worker {self.label} │ {line}")

    async def stop(self, signum: signal.Signals, grace: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit (SIGKILL after ``grace`` seconds)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.echo is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.echo, 2.0)
        return self.proc.returncode or 0


def _worker_argv(opts: GlobalOptions, namespace: str) -> list[str]:
    argv = [sys.executable, "-m", "roost.cli", "--namespace", namespace]
    for flag, value in (
        ("--redis-url", opts.redis_url),
        ("--queue", opts.queue),
        ("--prefix", opts.prefix),
    ):
        if value is not None:
            argv += [flag, value]
    return [*argv, "worker", "--engines", "watchlist", "--concurrency", "4"]


async def start_worker(
    backend: WorkBackend, opts: GlobalOptions, namespace: str, label: str
) -> WorkerProcess:
    """Start ``roost worker`` and wait until it has registered with Redis."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ROOST_NAMESPACE": namespace}
    env.setdefault("ROOST_LEASE_TTL", "5s")  # a crashed step's lease lapses soon
    env.setdefault("ROOST_GRACE_PERIOD", "10s")
    proc = await asyncio.create_subprocess_exec(
        *_worker_argv(opts, namespace),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    worker = WorkerProcess(label, proc)
    worker.echo = asyncio.create_task(worker.pump())
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        if any(w.get("pid") == proc.pid for w in await backend.workers()):
            return worker
        if proc.returncode is not None or time.monotonic() > deadline:
            await worker.stop(signal.SIGKILL)
            raise CliError(f"worker {label} did not start (exit code {proc.returncode})")
        await asyncio.sleep(0.05)


async def wait_for(
    backend: WorkBackend, work_id: str, done: Callable[[WorkStatus], bool], what: str
) -> WorkStatus:
    """Poll the item's status until ``done(status)`` is true."""
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        status = await backend.status(work_id)
        if done(status):
            return status
        if status.meta.state.is_terminal or time.monotonic() > deadline:
            raise CliError(f"the demo job never {what} (state {status.meta.state})")
        await asyncio.sleep(0.05)


def observations(status: WorkStatus) -> list[dict[str, Any]]:
    """The observations saved in the item's latest snapshot."""
    return list(status.snapshot.data.get("observations") or []) if status.snapshot else []


def progress_line(status: WorkStatus, labels: dict[str, str]) -> str:
    """``v3, 2/4 observations (by A, A)``: what Redis holds right now."""
    obs = observations(status)
    total = status.snapshot.data.get("checks_required", "?") if status.snapshot else "?"
    version = status.snapshot.version if status.snapshot else 0
    by = ", ".join(labels.get(str(o.get("worker", "")).split(":")[1:2][0], "?") for o in obs)
    return f"snapshot v{version}, {len(obs)}/{total} observations" + (f" (by {by})" if by else "")


def dumps(value: Any) -> str:
    """Indented JSON, except that each observation stays on one line."""
    rows: dict[str, str] = {}

    def inline(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, item in cast("dict[str, Any]", node).items():
            if key == "observations" and isinstance(item, list):
                marks: list[str] = []
                for obs in cast("list[Any]", item):
                    mark = f"@@{len(rows)}@@"
                    rows[mark] = json.dumps(obs)
                    marks.append(mark)
                out[key] = marks
            else:
                out[key] = inline(item)
        return out

    text = json.dumps(inline(value), indent=2)
    for mark, row in rows.items():
        text = text.replace(f'"{mark}"', row)
    return text


def abridged(status: WorkStatus) -> dict[str, Any]:
    """The seed's abridged view of ``roost status``."""
    snap = status.snapshot
    assert snap is not None
    data = snap.data
    return {
        "meta": {"state": str(status.meta.state), "step": status.meta.step},
        "snapshot": {
            "version": snap.version,
            "data": {
                "checks_completed": data.get("checks_completed"),
                "verdict": data.get("verdict"),
                "observations": [
                    {k: o.get(k) for k in ("check", "ok", "status", "url", "worker")}
                    for o in observations(status)
                ],
            },
            "artifacts": [
                {"kind": a.kind, "artifact_id": a.artifact_id, "metadata": a.metadata}
                for a in snap.artifacts
            ],
        },
    }


async def run_demo(
    settings: RoostSettings, opts: GlobalOptions, checks: int, delay: float, crash: bool
) -> None:
    """Tell the story; every process started here is stopped before returning."""
    started = time.monotonic()
    if "watchlist" not in load_registry().engines:
        raise CliError("the watchlist engine is not installed: run `uv sync` (roost-watchlist)")
    ns = settings.namespace
    cmd = f"uv run roost --namespace {ns}"
    workers: list[WorkerProcess] = []
    async with open_backend(settings) as backend:
        say("Roost demo: a watchlist job keeps going when the worker running it dies.")
        say(f"  redis      {backend.describe()}")
        say(f"  namespace  {ns} (kept apart from your own work)")
        try:
            with http_target() as (url, hits):
                say(f"\n[1/6] a local HTTP target answers at {url}")
                say("\n[2/6] starting worker A: roost worker --engines watchlist")
                workers.append(await start_worker(backend, opts, ns, "A"))
                labels = {str(workers[0].pid): "A"}
                payload = {
                    "url": url,
                    "claim": "The demo target answers HTTP requests",
                    "checks_required": checks,
                    "delay_seconds": delay,
                }
                work_id = await backend.enqueue(
                    "watchlist", payload, resources=["domain:127.0.0.1"]
                )
                say(f"\n[3/6] enqueued watchlist job {work_id}")
                say(f"      payload {json.dumps(payload)}")
                say("      resource domain:127.0.0.1 is held by the runtime during each check")
                kill_after = max(1, checks // 2)
                status = await wait_for(
                    backend,
                    work_id,
                    lambda s: len(observations(s)) >= kill_after,
                    f"reached {kill_after} observations",
                )
                say(f"      → Redis holds {progress_line(status, labels)}")
                a = workers[0]
                how = signal.SIGKILL if crash else signal.SIGTERM
                what = "a crash: no cleanup at all" if crash else "a graceful stop"
                say(f"\n[4/6] {how.name} worker A (pid {a.pid}): {what}")
                code = await a.stop(how)
                status = await backend.status(work_id)
                lease = status.meta.lease.worker_id if status.meta.lease else "none"
                say(
                    f"      worker A exited (code {code}); the job is {status.meta.state} "
                    f"(lease: {lease}); its next check waits in Redis"
                )
                say(f"      → Redis still holds {progress_line(status, labels)}")
                before = observations(status)
                await asyncio.sleep(1.0)
                say("\n[5/6] starting worker B: the same command, a new process")
                workers.append(await start_worker(backend, opts, ns, "B"))
                labels[str(workers[1].pid)] = "B"
                status = await wait_for(
                    backend, work_id, lambda s: s.meta.state == "done", "finished"
                )
                after = observations(status)
                kept = after[: len(before)] == before
                say(f"      → {progress_line(status, labels)}")
                say(
                    f"      → resumed from the last saved snapshot: observations 1-{len(before)} "
                    f"{'kept as they were' if kept else 'CHANGED'}, "
                    f"{len(after) - len(before)} more made by worker B, none repeated"
                )
                if not kept or len(after) != checks:
                    raise CliError("the job did not resume from its saved observations")
                await workers[1].stop(signal.SIGTERM)
                served = len(hits)
        finally:
            for w in workers:
                await w.stop(signal.SIGKILL, grace=0)
        say(f"\n[6/6] final status ({cmd} status {work_id}), abridged:")
        say(dumps(abridged(status)))
        artifact = status.snapshot.artifacts[-1] if status.snapshot else None
        if artifact is not None:
            say(f"\nevidence report ({cmd} artifact-show {artifact.artifact_id} --ext json):")
            report = await backend.artifacts.read(artifact.artifact_id, artifact.kind)
            say(dumps(json.loads(report)))
    repeat = "one per check, none repeated" if served == checks else f"for {checks} checks"
    say(f"\nThe HTTP target served {served} requests: {repeat}.")
    say("\nLook at it yourself:")
    say(f"  {cmd} status {work_id}")
    say(f"  {cmd} events {work_id}")
    say(f"  {cmd} ui            # then open http://127.0.0.1:8766")
    if not settings.redis_url:
        say("The embedded Redis keeps running for other roost commands in this directory;")
        say("stop it with: uv run roost server stop")
    say(f"\ndemo finished in {time.monotonic() - started:.1f}s")
