"""A private PostgreSQL server for the peers: initdb in a temp dir, a free loopback port.

Only when a ``postgres`` binary is found (on ``PATH`` or under ``/usr/lib/postgresql``); the
server is started for the run and stopped by its PID. As root, it runs as ``nobody``
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from roost.redis.server import free_port


def find_postgres() -> Path | None:
    """The directory of the newest ``postgres`` binary, or ``None``."""
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent  # initdb, pg_isready sit next to it
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def version(bindir: Path) -> str:
    out = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True)
    found = re.search(r"\d+(\.\d+)?", out.stdout)
    return found.group(0) if found else "?"


@contextlib.contextmanager
def private_postgres(bindir: Path, *, fsync: bool = False) -> Iterator[str]:
    """Start a server; yield its URL (database ``roost_bench``, created by the client).

    Without ``fsync``, ``synchronous_commit=off``: a commit returns before its WAL reaches
    the disk, which the WAL writer does within a fraction of a second, as Redis with
    ``appendfsync everysec`` does.
    """
    directory = Path(tempfile.mkdtemp(prefix="roost-bench-pg-"))
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        shutil.chown(directory, user)
    data, log = directory / "data", directory / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            user=user,
            capture_output=True,
            check=True,
        )
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "max_connections": "200",
            "synchronous_commit": "on" if fsync else "off",
        }
        command: list[str | Path] = [bindir / "postgres", "-D", data, "-p", str(port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, user=user, stdout=out, stderr=subprocess.STDOUT)
        _wait_ready(bindir, port, proc, log)
        yield f"postgresql://postgres@127.0.0.1:{port}/roost_bench"
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(bindir: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}: {log.read_text()[-2000:]}")
        ready = subprocess.run(
            [bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"postgres did not accept connections on port {port} within 30 s")
