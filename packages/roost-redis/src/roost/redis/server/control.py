"""Start, stop or inspect the embedded server: what both server commands do and say.

``python -m roost.redis.server start|stop|status`` (:func:`main`, for installs without the
``roost`` command) and ``roost server start|stop|status`` both call
:func:`run_server_command` and print the :class:`ServerReport` it returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Literal, get_args

from roost.redis.server.embedded import EmbeddedServer, EmbeddedStatus
from roost.redis.server.process import ServerError
from roost.runtime.errors import SettingsError
from roost.runtime.settings import RoostSettings
from roost.runtime.urls import redact_url

__all__ = ["SERVER_COMMANDS", "ServerCommand", "ServerReport", "main", "run_server_command"]

ServerCommand = Literal["start", "stop", "status"]
SERVER_COMMANDS: tuple[ServerCommand, ...] = get_args(ServerCommand)


@dataclass(frozen=True)
class ServerReport:
    """What a server command did, and the embedded server's status after it."""

    command: ServerCommand
    status: EmbeddedStatus
    redis_url: str | None = None
    """``ROOST_REDIS_URL``, redacted, when it is set: Roost then uses that server instead."""
    stopped_pid: int | None = None
    """The server ``stop`` stopped, if one ran."""

    def lines(self) -> list[str]:
        """What to tell a person: one line, and a note when ``ROOST_REDIS_URL`` is set."""
        if self.command == "stop":
            if self.stopped_pid is None:
                return ["embedded server not running"]
            return [f"embedded server stopped (pid {self.stopped_pid})"]
        if self.command == "start" and self.redis_url:
            return [f"ROOST_REDIS_URL is set: Roost uses {self.redis_url}; nothing to start"]
        lines = [f"embedded server: {self.status.describe()}"]
        if self.redis_url:
            lines.append(
                f"note: ROOST_REDIS_URL is set, so Roost uses {self.redis_url}, not this server"
            )
        return lines

    def to_dict(self) -> dict[str, object]:
        """The status as a JSON-ready dict, with ``redis_url`` (redacted, or ``None``)."""
        return {**self.status.to_dict(), "redis_url": self.redis_url}


def run_server_command(command: ServerCommand, settings: RoostSettings) -> ServerReport:
    """Run ``start``, ``stop`` or ``status`` on the embedded server of ``settings.home``.

    ``start`` starts nothing when ``ROOST_REDIS_URL`` is set; ``stop`` and ``status`` act on
    the embedded server either way.

    Raises:
        ServerError: the server cannot be found, started or reached.
    """
    server = EmbeddedServer(settings.home / "redis")
    url = redact_url(settings.redis_url) if settings.redis_url else None
    if command == "stop":
        pid = server.stop()
        return ServerReport(command, server.status(), url, stopped_pid=pid)
    if command == "start" and url is None:
        server.ensure_running()
    return ServerReport(command, server.status(), url)


def main(argv: list[str] | None = None) -> int:
    """``python -m roost.redis.server start|stop|status [--json]``.

    Reads settings from the environment (``ROOST_HOME``...) and prints what
    :meth:`ServerReport.lines` says, or with ``--json`` the status as JSON. Exit codes: 0
    ok, 1 runtime error, 2 bad settings or usage.
    """
    parser = argparse.ArgumentParser(
        prog="python -m roost.redis.server",
        description="Start, stop or inspect the embedded Redis server under ROOST_HOME.",
    )
    parser.add_argument("command", choices=SERVER_COMMANDS)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    try:
        settings = RoostSettings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = run_server_command(args.command, settings)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict()) if args.json else "\n".join(report.lines()))
    return 0
