"""Helpers for the CLI tests (importable: conftest.py puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from roost.cli.commands import app
from roost.redis import RedisSwarm
from roost.runtime import RoostSettings, WorkStatus
from roost_testkit.http import LocalHttp, Reply


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``roost`` with this test's environment, in-process or as a real process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.procs: list[Spawned] = []

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, input: str | None = None
    ) -> Result:
        """In-process (fast): typer's CliRunner with the test environment."""
        runner = CliRunner()
        result = runner.invoke(
            app, list(args), input=input, env={**self.env, **(env or {})}, catch_exceptions=False
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    def proc(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
        unset: tuple[str, ...] = (),
    ) -> Result:
        """As a real process: ``python -m roost.cli ...`` (``unset``: variables to drop)."""
        environ = {**os.environ, **self.env, **(env or {})}
        for name in unset:
            environ.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-m", "roost.cli", *args],
            env=environ,
            cwd=cwd or self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str, env: Mapping[str, str] | None = None) -> Spawned:
        """Start ``python -m roost.cli ...`` in the background (stdout+stderr captured)."""
        proc = Spawned(
            [sys.executable, "-m", "roost.cli", *args],
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=self.cwd,
        )
        self.procs.append(proc)
        return proc

    def settings(self) -> RoostSettings:
        return RoostSettings.from_env(self.env)

    def swarm_call(self, fn: Callable[[RedisSwarm], Any]) -> Any:
        """Run ``await fn(swarm)`` on a swarm with the test's settings (for assertions)."""

        async def main() -> Any:
            async with RedisSwarm(self.settings()) as swarm:
                return await fn(swarm)

        return asyncio.run(main())

    def counts(self) -> dict[str, int]:
        return self.swarm_call(lambda s: s.counts())

    def status(self, work_id: str) -> WorkStatus:
        return self.swarm_call(lambda s: s.status(work_id))

    def wait(
        self, work_id: str, predicate: Callable[[WorkStatus], bool], timeout: float = 30
    ) -> WorkStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(work_id)
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met; last status {status.meta}")
            time.sleep(0.05)


class Target:
    """A local HTTP server: ``/`` answers 200, ``/slow`` after ``slow`` seconds."""

    def __init__(self, slow: float = 5.0) -> None:
        self.hits = 0
        self.slow = slow
        self.http = LocalHttp(self.respond)
        self.url = self.http.url()

    def respond(self, path: str) -> Reply:
        self.hits += 1
        if path == "/slow":
            time.sleep(self.slow)
        return 200, {}, b"ok"

    def close(self) -> None:
        self.http.close()


class Spawned(subprocess.Popen[str]):
    """A process whose merged output is collected line by line by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.stdout is not None
        with self.stdout:
            for line in self.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def read_until(proc: Spawned, pattern: str, timeout: float = 30) -> list[str]:
    """Wait until a line of ``proc`` contains ``pattern``; return the lines so far."""
    deadline = time.monotonic() + timeout
    while not any(pattern in line for line in proc.lines):
        if time.monotonic() > deadline or (proc.poll() is not None and not proc.reader.is_alive()):
            raise AssertionError(f"{pattern!r} not seen; got:\n{proc.output}")
        time.sleep(0.02)
    return list(proc.lines)


def start_worker(cli: Cli, *args: str, env: Mapping[str, str] | None = None) -> Spawned:
    """``roost worker`` in the background, returned once its banner is printed."""
    proc = cli.spawn("worker", *args, env=env)
    read_until(proc, "a second Ctrl-C exits at once")
    return proc


def stop(proc: Spawned, signum: int = signal.SIGINT, timeout: float = 30) -> str:
    """Signal ``proc``, wait for it, return its whole output."""
    proc.send_signal(signum)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"did not exit within {timeout}s:\n{proc.output}") from None
    proc.reader.join(10)
    return proc.output


def fake_distribution(site: Path, module_source: str, entry_points: str) -> str:
    """Write a module and its *.dist-info (with entry points) into ``site``; return its name.

    Put ``site`` on ``PYTHONPATH`` (a process) or ``sys.path`` (in-process) to install it.
    """
    module = f"fake_roost_plugin_{uuid.uuid4().hex[:12]}"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(module_source)
    dist_info = site / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(entry_points.format(module=module))
    return module
