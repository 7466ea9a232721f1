"""The fixture family never leaks a server: run a real pytest session and look for survivors."""

from __future__ import annotations

from pathlib import Path

from roost.redis.server import pid_alive
from roost_testkit.inner_pytest import run_inner_tests

INNER_TESTS = """
import os
from pathlib import Path

import redis

from roost.redis.server import EmbeddedServer, redis_url_for
from roost.runtime import RoostSettings

PIDS = Path(os.environ["PIDS_FILE"])


def record(*pids):
    with PIDS.open("a") as out:
        out.write(" ".join(str(pid) for pid in pids) + "\\n")


def test_fails_with_a_paused_server(redis_server_factory):
    plain = redis_server_factory()
    paused = redis_server_factory(appendonly=True)
    paused.pause()
    record(plain.pid, paused.pid)
    assert False, "this test fails on purpose"


def test_passes(redis_server, redis_url, roost_home):
    assert redis.Redis.from_url(redis_url).ping()
    url = redis_url_for(RoostSettings.from_env())
    assert redis.Redis.from_url(url).ping()
    status = EmbeddedServer(roost_home / "redis").status()
    assert status.running and status.url == url
    record(redis_server.pid, status.pid)
"""


def test_teardown_stops_every_server_even_after_a_failure(tmp_path: Path) -> None:
    result, pids = run_inner_tests(tmp_path, INNER_TESTS, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout, result.stdout
    assert len(pids) == 4
    assert [pid for pid in pids if pid_alive(pid)] == []
