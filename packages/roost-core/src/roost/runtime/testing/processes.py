"""Worker subprocesses for the conformance suite: a handle to drive one, a pool of spares.

:class:`WorkerProcess` runs ``python -m roost.runtime.testing.worker`` (see
:mod:`roost.runtime.testing.worker`) and stops it gracefully (SIGTERM), kills it (SIGKILL:
nothing is released), pauses and resumes it (SIGSTOP/SIGCONT). :class:`WorkerPool` keeps
processes started ahead with their modules imported, so a test waits for a worker's connect,
not for Python's imports. Both signal only processes they started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, cast

from roost.runtime.testing.worker import READY

__all__ = ["WorkerPool", "WorkerProcess", "process_state"]

START_TIMEOUT = 60.0
"""How long a worker may take to say ``ready``."""


def _command(store: str) -> list[str]:
    return [sys.executable, "-m", "roost.runtime.testing.worker", "--store", store]


class WorkerPool:
    """Spare ``--warm`` worker processes, one set per store factory.

    Args:
        spares: how many processes to keep ready per store factory.
    """

    def __init__(self, spares: int = 1) -> None:
        """Start nothing yet: spares are made on first use."""
        self.spares = spares
        self._ready: dict[str, list[subprocess.Popen[str]]] = {}

    def take(self, store: str) -> subprocess.Popen[str]:
        """Return a warm process for ``store`` (waiting for its orders); start spares."""
        ready = [p for p in self._ready.get(store, []) if p.poll() is None]
        proc = ready.pop(0) if ready else self._spawn(store)
        while len(ready) < self.spares:
            ready.append(self._spawn(store))
        self._ready[store] = ready
        return proc

    def close(self) -> None:
        """Kill every spare (they hold nothing) and reap it."""
        for procs in self._ready.values():
            for proc in procs:
                _close(proc.stdin)
                proc.kill()
                proc.wait(30)
                _close(proc.stdout)
        self._ready.clear()

    @staticmethod
    def _spawn(store: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*_command(store), "--warm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )


def _close(pipe: IO[str] | None) -> None:
    if pipe is not None and not pipe.closed:
        with contextlib.suppress(OSError):
            pipe.close()


def process_state(pid: int) -> str | None:
    """The one-letter state of a process (``R``, ``S``, ``T``...), from ``/proc``.

    ``None`` where there is no ``/proc`` or no such process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


async def _until_state(pid: int, *, stopped: bool) -> None:
    """Wait until a signalled process is (or is no longer) stopped; a moment without /proc."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        state = process_state(pid)
        if state is None:
            await asyncio.sleep(0.1)
            return
        if (state in ("T", "t")) == stopped:
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"process {pid} did not {'stop' if stopped else 'continue'} in 5s")


def _spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=err, text=True)


class WorkerProcess:
    """A worker subprocess; use :meth:`start`.

    Attributes:
        label: the worker's name (the engines write it in the journal and the trail).
        log: the file that receives the process's stderr.
    """

    def __init__(self, proc: subprocess.Popen[str], label: str, log: Path) -> None:
        """Wrap a started process; prefer :meth:`start`."""
        self.proc = proc
        self.label = label
        self.log = log
        self._paused = False

    @classmethod
    async def start(
        cls,
        store: str,
        engines: Sequence[str],
        *,
        concurrency: int,
        label: str,
        env: Mapping[str, str],
        log: Path,
        pool: WorkerPool | None = None,
    ) -> WorkerProcess:
        """Start a worker and wait for it to say ``ready``.

        Args:
            store: the ``--store`` factory, ``module:attribute``.
            engines: engine ids to run.
            concurrency: steps at once.
            label: the worker's name.
            env: the whole environment of the process (its ``ROOST_*`` settings).
            log: where the process's stderr goes.
            pool: take a warm process from this pool instead of starting a cold one.

        Raises:
            RuntimeError: the process exited or stayed silent instead of becoming ready.
        """
        if pool is None:
            options = ["--engines", ",".join(engines), "--concurrency", str(concurrency)]
            proc = _spawn([*_command(store), *options, "--label", label], env, log)
        else:
            proc = pool.take(store)
            orders = {
                "env": dict(env),
                "log": str(log),
                "engines": list(engines),
                "concurrency": concurrency,
                "label": label,
            }
            stdin = cast("IO[str]", proc.stdin)
            with contextlib.suppress(BrokenPipeError):  # it died: reported below
                stdin.write(json.dumps(orders) + "\n")
            _close(stdin)
        worker = cls(proc, label, log)
        stdout = cast("IO[str]", proc.stdout)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), START_TIMEOUT)
        except TimeoutError:
            await worker.kill()
            raise RuntimeError(f"worker {label} did not start in {START_TIMEOUT:.0f}s") from None
        if line.strip() != READY:
            await worker.kill()
            raise RuntimeError(f"worker {label} did not start: {worker.tail()}")
        return worker

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """True until the process has exited."""
        return self.proc.poll() is None

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait for the process to exit by itself; return its exit status.

        Raises:
            TimeoutError: it is still running after ``timeout`` seconds.
        """
        try:
            code = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"worker {self.label} still running after {timeout}s") from None
        _close(self.proc.stdout)
        return code

    async def stop(self, timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Stop gracefully (SIGTERM, as an operator would) and wait for the exit.

        Returns:
            How long the process took to exit, in seconds.

        Raises:
            AssertionError: it exited with a non-zero status.
            TimeoutError: it was still running after ``timeout`` seconds (it is then killed).
        """
        sent = time.monotonic()
        if self.alive:
            await self.resume()
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await self.wait(timeout)
        except TimeoutError:
            await self.kill()
            raise
        assert code == 0, f"worker {self.label} exited with {code}: {self.tail()}"
        return time.monotonic() - sent

    async def kill(self) -> None:
        """Kill abruptly (SIGKILL): no lease or claim is released; wait for the exit."""
        if self.alive:
            self.proc.kill()
        await asyncio.to_thread(self.proc.wait, 30)
        self._paused = False
        _close(self.proc.stdout)

    async def pause(self) -> None:
        """Freeze the process (SIGSTOP), as a long GC pause or a suspended VM would.

        Returns once the process is stopped.
        """
        if self.alive:
            self.proc.send_signal(signal.SIGSTOP)
            self._paused = True
            await _until_state(self.pid, stopped=True)

    async def resume(self) -> None:
        """Let a paused process run again (SIGCONT); returns once it runs."""
        if self._paused and self.alive:
            self.proc.send_signal(signal.SIGCONT)
            await _until_state(self.pid, stopped=False)
        self._paused = False

    def tail(self, lines: int = 20) -> str:
        """The last lines the process wrote to stderr."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""
