"""A Redis that misbehaves: the one line the CLI prints names the real cause."""

from __future__ import annotations

import threading
import time

import redis
from cli_support import Cli

from roost.redis.server import free_port

ENQUEUE = ("enqueue", "--engine", "watchlist", "--payload", '{"url": "http://127.0.0.1:1/"}')


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_full_redis_is_named_not_a_lost_connection(cli: Cli) -> None:
    admin = redis.Redis.from_url(cli.env["ROOST_REDIS_URL"])
    admin.config_set("maxmemory", 1)
    try:
        result = cli(*ENQUEUE)
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    assert result.code == 1
    line = one_error_line(result.stderr)
    assert "out of memory" in line and "(OOM" in line, line
    assert "lost the connection" not in line
    assert sum(cli.counts().values()) == 0


def test_a_busy_redis_is_named(cli: Cli) -> None:
    url = cli.env["ROOST_REDIS_URL"]
    admin = redis.Redis.from_url(url)
    admin.config_set("busy-reply-threshold", 100)
    spinner = threading.Thread(target=_spin, args=(url,))
    spinner.start()
    time.sleep(0.3)
    try:
        result = cli("list")
    finally:
        while spinner.is_alive():
            try:
                admin.execute_command("SCRIPT", "KILL")
            except redis.ResponseError:
                time.sleep(0.05)
            spinner.join(0.5)
        admin.close()
    assert result.code in (1, 2)  # mid-command (1) or while connecting (2): either way named
    line = one_error_line(result.stderr)
    assert "busy running a script" in line and "(BUSY)" in line, line


def _spin(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.eval("while true do end", 0)
    except redis.ResponseError:
        pass
    finally:
        client.close()


def test_a_replica_is_refused_with_one_line(cli: Cli) -> None:
    admin = redis.Redis.from_url(cli.env["ROOST_REDIS_URL"])
    admin.execute_command("REPLICAOF", "127.0.0.1", free_port())
    try:
        for args in (("list",), ENQUEUE, ("status", "abc"), ("worker", "--engines", "watchlist")):
            result = cli(*args)
            assert result.code == 2, (args, result.stderr)
            line = one_error_line(result.stderr)
            assert "is a replica" in line and "ROOST_REDIS_URL" in line, line
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        admin.close()


def test_a_malformed_event_position_is_bad_input(cli: Cli) -> None:
    for after in ("garbage", "12-ab", "-5", "99999999999999999999999-0"):
        result = cli("events", "--after", after)
        assert result.code == 2, (after, result.stderr)
        line = one_error_line(result.stderr)
        assert "invalid event id" in line and "lost the connection" not in line, line
