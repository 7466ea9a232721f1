"""Private servers and worker subprocesses for the benchmarks."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from roost.redis.server import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process (from /proc/<pid>/stat)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_wait_seconds(pid: int | None) -> float:
    """Seconds a live process was runnable but waiting for a CPU (/proc/<pid>/schedstat).

    On a shared machine this is the time other tenants (or our own processes) took.
    """
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e9


@contextlib.contextmanager
def private_server(root: Path, *, appendonly: bool = False) -> Iterator[ServerProcess]:
    """A fresh server on a free 127.0.0.1 port with its data under ``root``, stopped after."""
    directory = Path(tempfile.mkdtemp(prefix="redis-", dir=root))
    server = ServerProcess(directory, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=5.0)


PRELOAD = [
    "benchmarks.worker",
    "benchmarks.engine",
    "roost.runtime",
    "roost.redis",
    "roost.redis.worker",
    "saq",
    "redis.asyncio",
]
_MP = multiprocessing.get_context("forkserver")
_MP.set_forkserver_preload(PRELOAD)


def start_fork_server() -> None:
    """Start the fork server now (it imports Roost and SAQ once, for every worker)."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


class WorkerProc:
    """One worker child (see :mod:`benchmarks.worker` for the protocol)."""

    def __init__(self, log_dir: Path, label: str, cfg: dict[str, Any]) -> None:
        """Fork the child with its config; it connects at once."""
        from benchmarks.worker import child

        self.label = label
        self.log_path = log_dir / f"worker-{label}-{time.monotonic_ns()}.log"
        self.counters: dict[str, Any] = {}
        self._terminated = False
        self._conn, theirs = _MP.Pipe()
        self.proc = _MP.Process(
            target=child, args=(theirs, cfg, str(self.log_path)), name=f"bench-{label}"
        )
        self.proc.start()
        theirs.close()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError:
            return "(no log)"

    def wait_connected(self, timeout: float = 60.0) -> None:
        """Wait until the child has connected to Redis."""
        message = b""
        with contextlib.suppress(EOFError, OSError):
            if self._conn.poll(timeout):
                message = self._conn.recv_bytes()
        if message != b"connected":
            raise RuntimeError(
                f"worker {self.label} did not connect ({message!r}); {self.log_path}:\n"
                + self._log_tail()
            )

    def check(self) -> None:
        """Raise (with the end of its log) if the child has exited."""
        if not self.proc.is_alive():
            raise RuntimeError(
                f"worker {self.label} exited with {self.proc.exitcode}; {self.log_path}:\n"
                + self._log_tail()
            )

    def go(self) -> None:
        self._conn.send_bytes(b"go")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_wait(self) -> float:
        return cpu_wait_seconds(self.pid)

    def terminate(self) -> None:
        """SIGTERM, once (a second one makes a Roost worker exit at once)."""
        if not self._terminated and self.proc.is_alive():
            self._terminated = True
            os.kill(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM (graceful stop), then return the counters the worker sent."""
        self.terminate()
        with contextlib.suppress(EOFError, OSError, ValueError):
            if self._conn.poll(timeout):
                self.counters = json.loads(self._conn.recv_bytes())
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)
        self._conn.close()
        return self.counters

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self._conn.close()


CLI_BANNER = "Ctrl-C stops gracefully"
"""The last line ``roost worker`` prints before it takes work."""

ENTRY_POINTS = """[roost.engines]
bench = benchmarks.engine:build_engine
"""


def cli_plugin_path(tmp: Path) -> Path:
    """A directory holding the metadata of a distribution that registers the bench engine.

    On ``PYTHONPATH`` it makes ``roost worker`` find the engine through its entry point,
    as it finds any installed engine.
    """
    info = tmp / "cli-plugin" / "roost_bench_engine-0.dist-info"
    if not info.is_dir():
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: roost-bench-engine\nVersion: 0\n"
        )
        (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return info.parent


class CliWorkerProc:
    """A ``roost worker`` process: the CLI users run, started on ``go()``.

    It takes work as soon as it is connected, so it is started only when the run begins;
    ``go()`` returns once it has printed its banner (imports and connecting done). Its
    output, a line per step, goes to a log file as it would under a process supervisor.
    """

    def __init__(self, log_dir: Path, label: str, cfg: dict[str, Any]) -> None:
        self.label = label
        self.log_path = log_dir / f"worker-{label}-{time.monotonic_ns()}.log"
        self.cfg = cfg
        self.counters: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def wait_connected(self, timeout: float = 60.0) -> None:
        """Nothing to wait for: the process starts on ``go()``."""

    def go(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        env.update(self.cfg["env"])
        env.pop("ROOST_DISABLE_PLUGIN_AUTOLOAD", None)
        plugin = cli_plugin_path(Path(self.cfg["env"]["ROOST_HOME"]).parent)
        env["PYTHONPATH"] = os.pathsep.join([str(plugin), str(ROOT)])
        command = [sys.executable, "-m", "roost.cli", "worker", "--engines", "bench"]
        command += ["--concurrency", str(self.cfg["concurrency"])]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while CLI_BANNER not in self._log_tail():
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.label} printed no banner; {self.log_path}")
            time.sleep(0.005)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def check(self) -> None:
        """Raise (with the end of its log) if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"worker {self.label} exited with {self.proc.returncode}; {self.log_path}:\n"
                + self._log_tail()
            )

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_wait(self) -> float:
        return cpu_wait_seconds(self.pid)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM (graceful stop) and wait; a process that outstays ``timeout`` is killed."""
        self.terminate()
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.counters

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)


AnyWorker = WorkerProc | CliWorkerProc


def stop_all(procs: Sequence[AnyWorker], graceful: bool = True) -> list[dict[str, Any]]:
    """Stop workers together; return their counters.

    A graceful stop takes up to a second (a Roost worker notices SIGTERM when its blocking
    dequeue returns). Without ``graceful`` they are killed: fine once nothing more is
    measured, since every run's server is thrown away.
    """
    if not graceful:
        for proc in procs:
            proc.kill()
        return [{} for _ in procs]
    for proc in procs:
        proc.terminate()
    return [proc.stop() for proc in procs]


def spawn_workers(
    log_dir: Path, cfgs: Sequence[dict[str, Any]], label: str = "w"
) -> list[AnyWorker]:
    """Spawn one child per config at once; their imports overlap whatever runs next.

    A ``roost worker`` CLI config (``kind`` ``roost-cli``) only starts on ``go()``.
    """
    return [
        (CliWorkerProc if cfg["kind"] == "roost-cli" else WorkerProc)(log_dir, f"{label}{i}", cfg)
        for i, cfg in enumerate(cfgs)
    ]


def wait_connected(procs: Sequence[AnyWorker]) -> None:
    """Wait until every child is connected; kill them all if one fails."""
    try:
        for proc in procs:
            proc.wait_connected()
    except BaseException:
        for proc in procs:
            proc.kill()
        raise


def start_workers(
    log_dir: Path, cfgs: Sequence[dict[str, Any]], label: str = "w"
) -> list[WorkerProc]:
    """Spawn one child per config and wait until all are connected."""
    procs = [WorkerProc(log_dir, f"{label}{i}", cfg) for i, cfg in enumerate(cfgs)]
    wait_connected(procs)
    return procs


def roost_cfg(
    url: str,
    home: Path,
    namespace: str = "bench",
    concurrency: int = 10,
    count: bool = False,
    cli: bool = False,
    **env: str,
) -> dict[str, Any]:
    """The config of a Roost worker child (``cli``: a ``roost worker`` process instead).

    Settings go as ROOST_* variables.
    """
    return {
        "kind": "roost-cli" if cli else "roost",
        "url": url,
        "concurrency": concurrency,
        "count": count,
        "env": {
            "ROOST_REDIS_URL": url,
            "ROOST_NAMESPACE": namespace,
            "ROOST_HOME": str(home),
            "ROOST_DISABLE_PLUGIN_AUTOLOAD": "1",
            **env,
        },
    }


def saq_cfg(
    url: str, concurrency: int = 10, queue: str = "default", count: bool = False
) -> dict[str, Any]:
    """The config of a stock ``saq.Worker`` child."""
    return {"kind": "saq", "url": url, "concurrency": concurrency, "queue": queue, "count": count}
