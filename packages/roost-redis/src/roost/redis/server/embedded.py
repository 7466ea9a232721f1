"""The embedded default: one shared server per project directory.

:class:`EmbeddedServer` keeps one detached server per project directory, shared by every Roost
process that works there; :func:`redis_url_for` picks between ``ROOST_REDIS_URL`` and that
embedded server. ``python -m roost.redis.server start|stop|status`` and ``roost server``
manage it by hand (:mod:`roost.redis.server.control`). The process launcher itself
(:class:`~roost.redis.server.process.ServerProcess`) is in :mod:`roost.redis.server.process`.

This module imports only the standard library, so test plugins can load it cheaply.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from roost.redis.server.process import (
    HOST,
    PortInUse,
    ServerError,
    ServerProcess,
    is_our_server,
    pid_alive,
    probe_server,
    process_title,
    read_pid,
    shutdown_server,
    wait_gone,
)

if TYPE_CHECKING:
    from roost.runtime.settings import RoostSettings

__all__ = ["EmbeddedServer", "EmbeddedStatus", "redis_url_for"]


@dataclass(frozen=True)
class EmbeddedStatus:
    """What :meth:`EmbeddedServer.status` found.

    ``state`` is ``running`` (answers PING), ``unresponsive`` (our process exists but does
    not answer, e.g. paused) or ``stopped``.
    """

    state: Literal["running", "unresponsive", "stopped"]
    data_dir: Path
    pid: int | None = None
    port: int | None = None
    binary: str | None = None
    started_at: str | None = None

    @property
    def running(self) -> bool:
        """Whether the server answers PING."""
        return self.state == "running"

    @property
    def url(self) -> str | None:
        """The server's URL, or ``None`` when it is stopped."""
        return None if self.port is None else f"redis://{HOST}:{self.port}/0"

    def describe(self) -> str:
        """One line for humans."""
        if self.state == "stopped":
            return f"stopped (data {self.data_dir})"
        return f"{self.state}: {self.url} (pid {self.pid}, data {self.data_dir})"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the URL included)."""
        return {**asdict(self), "data_dir": str(self.data_dir), "url": self.url}


@dataclass(frozen=True)
class _Record:
    pid: int | None  # None once stopped: the port is kept so the next start can reuse it
    port: int
    binary: str
    started_at: str


class EmbeddedServer:
    """The one shared, detached server of a project directory (``{ROOST_HOME}/redis``).

    The append-only file is on (``appendfsync everysec``). Check-and-start runs under an
    exclusive ``flock`` on ``server.lock``, so processes that call :meth:`ensure_running`
    at the same moment share one server. ``server.json`` records pid, port, binary and start
    time; a record whose PID is dead, or now belongs to another program, is ignored.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        """Manage the server whose data, config, log and state live in ``directory``."""
        self._dir = Path(directory).expanduser().resolve()

    @property
    def directory(self) -> Path:
        """The directory holding the server's data, config, log, state and lock."""
        return self._dir

    @property
    def state_path(self) -> Path:
        """The JSON record of the running server."""
        return self._dir / "server.json"

    @property
    def log_path(self) -> Path:
        """The server's log."""
        return self._dir / "server.log"

    def _process(self, port: int | None) -> ServerProcess:
        return ServerProcess(self._dir, port=port, appendonly=True, detached=True)

    def ensure_running(self, timeout: float = 10.0) -> str:
        """Return the URL of the running server, starting one if there is none.

        A new server prefers the port of the previous one, so the URL usually survives a
        stop and start.

        Raises:
            ServerNotFound: no server binary is installed.
            ServerError: the server did not start, or its process exists but does not answer
                (a second server on the same data would corrupt it; stop the first).
        """
        with self._locked(timeout + 30.0):
            record, pid = self._current()
            if record is not None and pid is not None:
                if record != self._read_state():
                    self._write_state(record)  # adopted through the pid file
                return self._await_ready(pid, record.port, timeout)
            ports = [record.port, None] if record is not None else [None]
            for port in ports:
                server = self._process(port)
                try:
                    server.start(timeout)
                except PortInUse:
                    if port is None:
                        raise
                    continue
                assert server.pid is not None
                self._write_state(_Record(server.pid, server.port, str(server.binary), _now()))
                return server.url
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the recorded server (SIGTERM, SIGKILL after ``timeout``) and wait for it.

        Returns:
            The PID that was stopped, or ``None`` if no server of ours was running.
        """
        if not self.state_path.exists() and not self._process(None).pid_path.exists():
            return None
        with self._locked(timeout + 30.0):
            record, pid = self._current()
            if record is None:
                return None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    shutdown_server(record.port, pid)
                    os.kill(pid, signal.SIGTERM)
                if not wait_gone(pid, timeout):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    wait_gone(pid, 10.0)
            self._write_state(_Record(None, record.port, record.binary, record.started_at))
            return pid

    def status(self) -> EmbeddedStatus:
        """Report whether the recorded server runs and answers PING."""
        record, pid = self._current()
        if record is None or pid is None:
            return EmbeddedStatus("stopped", self._dir)
        probe = probe_server(record.port)
        ready = probe is not None and probe.pid == pid and probe.ready
        return EmbeddedStatus(
            "running" if ready else "unresponsive",
            self._dir,
            pid,
            record.port,
            record.binary,
            record.started_at,
        )

    def _current(self) -> tuple[_Record | None, int | None]:
        """The state record and the PID of our live server, if any.

        A recorded PID that is dead, or now another program's, does not count. A server that
        runs on this directory without a record (its starter died before writing one) is
        found through its pid file and title, so a second one never shares its data.
        """
        record = self._read_state()
        config = self._process(None).config_path
        if record is not None and (pid := record.pid) is not None:
            if pid_alive(pid) and is_our_server(pid, record.port, config):
                return record, pid
        pid = read_pid(self._process(None).pid_path)
        title = process_title(pid) if pid is not None and pid_alive(pid) else None
        found = re.fullmatch(rf"(.+) {re.escape(HOST)}:(\d+) {re.escape(str(config))}", title or "")
        if pid is None or found is None:
            return record, None
        return _Record(pid, int(found.group(2)), found.group(1), "unknown"), pid

    def _await_ready(self, pid: int, port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            probe = probe_server(port, min(0.5, max(0.05, deadline - time.monotonic())))
            if probe is not None and probe.pid == pid and probe.ready:
                return f"redis://{HOST}:{port}/0"
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the embedded server (pid {pid}, port {port}) runs but does "
                    f"not answer PING; stop it with `python -m roost.redis.server stop` "
                    f"(log: {self.log_path})"
                )
            time.sleep(0.05)

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Generator[None]:
        self._dir.mkdir(parents=True, exist_ok=True)
        with (self._dir / "server.lock").open("a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ServerError(f"timed out waiting for {handle.name}") from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_state(self) -> _Record | None:
        try:
            data = json.loads(self.state_path.read_text())
            pid = None if data["pid"] is None else int(data["pid"])
            record = _Record(pid, int(data["port"]), str(data["binary"]), str(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if (pid is not None and pid <= 0) or not 0 < record.port < 65536:
            return None
        return record

    def _write_state(self, record: _Record) -> None:
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
        os.replace(tmp, self.state_path)


def redis_url_for(settings: RoostSettings) -> str:
    """The Redis URL a Roost process should use.

    ``settings.redis_url`` when set (nothing is started); otherwise the embedded server
    under ``settings.home / "redis"``, started if needed.
    """
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedServer(settings.home / "redis").ensure_running()


# -- helpers ------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
