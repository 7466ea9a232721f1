"""Real subprocesses for the chaos suite: workers and clients, cleaned up by PID."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from roost.runtime import RoostSettings

SUPPORT = str(Path(__file__).resolve().parents[2])
"""``tests/support``: put on the PYTHONPATH of every process started here."""


def worker_env(settings: RoostSettings, **extra: str) -> dict[str, str]:
    """The environment of a worker or client process running with ``settings``.

    Inherited ``ROOST_*`` variables are dropped first, so nothing leaks in from the caller.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    paths = [SUPPORT, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    s = settings
    env.update(
        {
            "ROOST_REDIS_URL": s.redis_url or "",
            "ROOST_QUEUE": s.queue,
            "ROOST_REDIS_PREFIX": s.redis_prefix,
            "ROOST_NAMESPACE": s.namespace,
            "ROOST_HOME": str(s.home),
            "ROOST_LEASE_TTL": str(s.lease_ttl),
            "ROOST_MAX_ATTEMPTS": str(s.max_attempts),
            "ROOST_RETRY_DELAY": str(s.retry_delay),
            "ROOST_RETRY_MAX_DELAY": str(s.retry_max_delay),
            "ROOST_EVENTS_MAXLEN": str(s.events_maxlen),
            "ROOST_STRICT_DURABILITY": "1" if s.strict_durability else "0",
            "ROOST_WAIT_REPLICAS": str(s.wait_replicas),
            "ROOST_GRACE_PERIOD": str(s.grace_period),
            "ROOST_INLINE_STEPS": str(s.inline_steps),
            "ROOST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
    )
    if s.partitions is not None:
        env["ROOST_PARTITIONS"] = str(s.partitions)
    env.update(extra)
    return env


@dataclass
class Proc:
    """One started process."""

    name: str
    popen: subprocess.Popen[str]
    started_at: float
    worker_id: str = ""
    ended_at: float | None = None
    signals: list[int] = field(default_factory=list[int])

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()


class ProcessGroup:
    """Starts processes (stderr to ``log_dir/<name>.log``) and kills leftovers on close.

    Thread-safe: the soak restarts workers from a thread while the loop keeps running.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self._lock = threading.Lock()
        self._count = 0

    def start(
        self, argv: list[str], env: dict[str, str], name: str, *, stdin: bool = False
    ) -> Proc:
        """Start ``argv`` (stdout piped, stderr to a log file)."""
        with self._lock:
            self._count += 1
            name = f"{name}-{self._count}"
        with open(self.log_dir / f"{name}.log", "w") as log:
            popen = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        proc = Proc(name=name, popen=popen, started_at=time.time())
        with self._lock:
            self.procs.append(proc)
        return proc

    def start_worker(
        self, env: dict[str, str], concurrency: int, *, name: str = "worker", timeout: float = 60.0
    ) -> Proc:
        """Start a chaos worker and wait for its ``ready <worker id>`` line."""
        argv = [sys.executable, "-m", "roost_testkit.chaos.worker", "--concurrency"]
        proc = self.start([*argv, str(concurrency)], env, name)
        line = self.readline(proc, timeout)
        if not line.startswith("ready "):
            self.kill(proc)
            raise RuntimeError(f"{proc.name} did not start: {line!r}\n{self.log_tail(proc)}")
        proc.worker_id = line.split(" ", 1)[1].strip()
        return proc

    def readline(self, proc: Proc, timeout: float) -> str:
        """One line of ``proc``'s stdout, or '' when it ends or ``timeout`` passes first."""
        stdout = proc.popen.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        return stdout.readline() if ready else ""

    def log_tail(self, proc: Proc, lines: int = 15) -> str:
        path = self.log_dir / f"{proc.name}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def send(self, proc: Proc, signum: int) -> float:
        """Send ``signum`` to ``proc`` (if alive); return the time it was sent."""
        at = time.time()
        if proc.alive():
            proc.signals.append(signum)
            os.kill(proc.pid, signum)
        return at

    def kill(self, proc: Proc) -> float:
        """SIGKILL ``proc`` and reap it; return when the signal was sent."""
        at = self.send(proc, signal.SIGKILL)
        self.wait(proc, 10.0)
        return at

    def wait(self, proc: Proc, timeout: float) -> int | None:
        """Wait up to ``timeout`` for ``proc`` to exit; its return code, or None."""
        try:
            code = proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if proc.ended_at is None:
            proc.ended_at = time.time()
        return code

    def alive(self, prefix: str = "") -> list[Proc]:
        with self._lock:
            return [p for p in self.procs if p.alive() and p.name.startswith(prefix)]

    def close(self) -> None:
        """SIGKILL every process still running (by PID), reap all, close their pipes."""
        with self._lock:
            procs = list(self.procs)
        for proc in procs:
            if proc.popen.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in procs:
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for pipe in (proc.popen.stdin, proc.popen.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
