r"""A worker process running the conformance suite's engines, and a handle to drive it.

The process side::

    python -m roost.runtime.testing.worker --store roost.redis:RedisSwarm \\
        --engines conformance,conformance-other --concurrency 4 --label w0

``--store`` names a zero-argument callable (``module:attribute``, or ``/path/file.py:attribute``)
that returns the backend's operator API, configured from the environment (``ROOST_*``
variables) as ``roost worker`` would be. It must be an async context manager with
``run_worker(engines, *, concurrency)``. The process prints ``ready`` on stdout once the store
is open, then runs the worker with :class:`~roost.runtime.testing.chain_engine.ChainEngine`
engines until it is stopped (SIGTERM/SIGINT, handled by ``run_worker``).

The test side: :class:`WorkerProcess` starts that process and stops it gracefully (SIGTERM),
kills it (SIGKILL: nothing is released), pauses and resumes it (SIGSTOP/SIGCONT). It signals
only the process it started, by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self, cast

from roost.runtime.engine import Engine
from roost.runtime.errors import BadInput
from roost.runtime.testing.chain_engine import CHAIN, build_engines

__all__ = ["WorkerHost", "WorkerProcess", "load_callable", "main"]

READY = "ready"
START_TIMEOUT = 60.0


class WorkerHost(Protocol):
    """What ``--store`` must return: an async context manager that can run a worker."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> object: ...

    async def run_worker(self, engines: Sequence[Engine], *, concurrency: int) -> None:
        """Run a worker until it is stopped."""
        ...


def load_callable(spec: str) -> Callable[[], Any]:
    """Load ``module:attribute`` or ``/path/to/file.py:attribute``.

    Raises:
        BadInput: the spec is malformed or names nothing callable.
    """
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise BadInput(f"--store must be module:attribute, not {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        loader = importlib.util.spec_from_file_location(path.stem, path)
        if loader is None or loader.loader is None:
            raise BadInput(f"cannot load {target}")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    found = getattr(module, attribute, None)
    if not callable(found):
        raise BadInput(f"{spec} is not callable")
    return cast("Callable[[], Any]", found)


async def _serve(store: WorkerHost, engines: Sequence[Engine], concurrency: int) -> None:
    async with store:
        print(READY, flush=True)
        await store.run_worker(engines, concurrency=concurrency)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line (see the module docstring) and run the worker."""
    parser = argparse.ArgumentParser(prog="python -m roost.runtime.testing.worker")
    parser.add_argument("--store", required=True, help="module:attribute of the store factory")
    parser.add_argument("--engines", default=CHAIN, help="comma-separated engine ids")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--label", default="", help="the worker's name in the journal")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    try:
        engines = build_engines(args.engines.split(","), label=args.label)
        store = cast("WorkerHost", load_callable(args.store)())
    except BadInput as exc:
        parser.exit(2, f"worker: {exc}\n")
    asyncio.run(_serve(store, engines, args.concurrency))


def _spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=err, text=True)


class WorkerProcess:
    """A worker subprocess (see the module docstring); use :meth:`start`.

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
    ) -> WorkerProcess:
        """Start ``python -m roost.runtime.testing.worker`` and wait for it to say ``ready``.

        Args:
            store: the ``--store`` factory, ``module:attribute``.
            engines: engine ids to run.
            concurrency: steps at once.
            label: the worker's name.
            env: the whole environment of the process (its ``ROOST_*`` settings).
            log: where the process's stderr goes.

        Raises:
            RuntimeError: the process exited or stayed silent instead of becoming ready.
        """
        argv = [
            sys.executable,
            "-m",
            "roost.runtime.testing.worker",
            "--store",
            store,
            "--engines",
            ",".join(engines),
            "--concurrency",
            str(concurrency),
            "--label",
            label,
        ]
        worker = cls(_spawn(argv, env, log), label, log)
        proc = worker.proc
        stdout = cast("IO[str]", proc.stdout)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), START_TIMEOUT)
        except TimeoutError:
            await worker.kill()
            raise RuntimeError(
                f"worker {label} did not start within {START_TIMEOUT:.0f}s"
            ) from None
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

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited (negative: killed by that signal)."""
        return self.proc.poll()

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait for the process to exit by itself; return its exit status.

        Raises:
            TimeoutError: it is still running after ``timeout`` seconds.
        """
        try:
            code = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"worker {self.label} still running after {timeout}s") from None
        self._close_pipe()
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
        self._close_pipe()

    async def pause(self) -> None:
        """Freeze the process (SIGSTOP), as a long GC pause or a suspended VM would."""
        if self.alive:
            self.proc.send_signal(signal.SIGSTOP)
            self._paused = True

    async def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        if self._paused and self.alive:
            self.proc.send_signal(signal.SIGCONT)
        self._paused = False

    def tail(self, lines: int = 20) -> str:
        """The last lines the process wrote to stderr."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def _close_pipe(self) -> None:
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


if __name__ == "__main__":
    main()
