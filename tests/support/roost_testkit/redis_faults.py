"""Make a real Redis server misbehave for a while: out of memory, read-only, busy.

Each is a context manager over the server at ``url``: the fault holds inside the block and is
lifted when it ends. They are what the supervision tests, the console's fault tests and the
"Redis misbehaves" chaos scenario inject.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from roost.redis.server import free_port

__all__ = ["Spinner", "busy", "out_of_memory", "read_only"]


@contextmanager
def out_of_memory(url: str) -> Iterator[None]:
    """``maxmemory`` far below what is used, under noeviction: every write is refused (OOM)."""
    admin = redis.Redis.from_url(url)
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    admin.config_set("maxmemory", 1)
    try:
        yield
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()


@contextmanager
def read_only(url: str) -> Iterator[int]:
    """The server becomes a replica of a primary that does not answer (a closed port).

    Yields that port. Writes get READONLY, a blocked read UNBLOCKED.
    """
    admin = redis.Redis.from_url(url)
    port = free_port()  # nothing listens there: the primary never answers
    admin.execute_command("REPLICAOF", "127.0.0.1", port)
    try:
        yield port
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        admin.close()


class Spinner:
    """Another client running a script (or a read-only function) that loops until killed."""

    def __init__(self, url: str, kind: str = "script") -> None:
        self.url = url
        self.kind = kind
        self.error: str | None = None
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            if self.kind == "function":
                client.execute_command("FCALL_RO", "spin", 0)
            else:
                client.eval("while true do end", 0)
        except redis.ResponseError as exc:
            self.error = str(exc)
        finally:
            client.close()

    def start(self) -> None:
        self._thread.start()

    def kill(self, admin: redis.Redis) -> None:
        kill = ("FUNCTION", "KILL") if self.kind == "function" else ("SCRIPT", "KILL")
        while self._thread.is_alive():
            try:
                admin.execute_command(*kill)
            except redis.ResponseError:
                time.sleep(0.02)  # not running yet
            self._thread.join(0.5)


@contextmanager
def busy(url: str, kind: str = "script", threshold_ms: int = 100) -> Iterator[Spinner]:
    """Another client's script loops past ``busy-reply-threshold``: others get BUSY.

    With ``kind="function"`` it is a function (a library with a read-only ``spin`` must be
    loaded). The block ends with the script or function killed; yields the spinner, whose
    ``error`` then says how it ended.
    """
    admin = redis.Redis.from_url(url, socket_timeout=30)
    admin.config_set("busy-reply-threshold", threshold_ms)
    spinner = Spinner(url, kind)
    spinner.start()
    time.sleep(threshold_ms / 1000 * 3)
    try:
        yield spinner
    finally:
        spinner.kill(admin)
        admin.close()
    assert spinner.error and "killed" in spinner.error.lower(), spinner.error
