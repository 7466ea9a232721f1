"""Private servers and worker subprocesses for the benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

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


class WorkerProc:
    """One ``python -m benchmarks.worker`` child (see that module for the protocol)."""

    def __init__(self, log_dir: Path, label: str, cfg: dict[str, Any]) -> None:
        """Spawn the child and hand it its config (it reads it once it has started)."""
        self.label = label
        self.log_path = log_dir / f"worker-{label}-{time.monotonic_ns()}.log"
        self._log: IO[str] = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.counters: dict[str, Any] = {}
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send(json.dumps(cfg))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # end of output

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _expect(self, word: str, timeout: float) -> None:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = "(nothing)"
        if line != word:
            raise RuntimeError(
                f"worker {self.label} said {line!r}, expected {word!r}; see {self.log_path}:\n"
                + self.log_path.read_text()[-2000:]
            )

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait_connected(self, timeout: float = 60.0) -> None:
        """Wait until the child has imported what it needs and connected."""
        self._expect("ready", timeout)
        self._expect("connected", timeout)

    def check(self) -> None:
        """Raise (with the end of its log) if the child has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"worker {self.label} exited with {self.proc.returncode}; {self.log_path}:\n"
                + self.log_path.read_text()[-3000:]
            )

    def go(self) -> None:
        self._send("go")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM (graceful stop), then return the counters the worker printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        lines: list[str] = []
        with contextlib.suppress(queue.Empty):
            while True:
                lines.append(self._lines.get(timeout=2.0))
                if lines[-1] == "":
                    break
        for line in reversed(lines):
            with contextlib.suppress(ValueError):
                self.counters = json.loads(line)
                break
        return self.counters

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._log.close()


def spawn_workers(
    log_dir: Path, cfgs: Sequence[dict[str, Any]], label: str = "w"
) -> list[WorkerProc]:
    """Spawn one child per config at once; their imports overlap whatever runs next."""
    return [WorkerProc(log_dir, f"{label}{i}", cfg) for i, cfg in enumerate(cfgs)]


def wait_connected(procs: Sequence[WorkerProc]) -> None:
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
    procs = spawn_workers(log_dir, cfgs, label)
    wait_connected(procs)
    return procs


def roost_cfg(
    url: str,
    home: Path,
    namespace: str = "bench",
    concurrency: int = 10,
    count: bool = False,
    **env: str,
) -> dict[str, Any]:
    """The config of a Roost worker child: settings as ROOST_* variables."""
    return {
        "kind": "roost",
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
