"""The embedded default: one detached, shared, append-only server per ROOST_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from roost.redis.server import (
    EmbeddedServer,
    ServerError,
    free_port,
    pid_alive,
    redis_url_for,
)
from roost.redis.server.control import main
from roost.runtime import RoostSettings

SHARE = """
import os, sys, time
from pathlib import Path
import redis
from roost.redis.server import redis_url_for
from roost.runtime import RoostSettings

me, other, sync = sys.argv[1], sys.argv[2], Path(sys.argv[3])
(sync / f"ready-{me}").touch()
while not (sync / "go").exists():
    time.sleep(0.005)
url = redis_url_for(RoostSettings.from_env())
r = redis.Redis.from_url(url)
r.set(me, os.getpid())
deadline = time.monotonic() + 10
while (seen := r.get(other)) is None:
    assert time.monotonic() < deadline, "never saw the other process's write"
    time.sleep(0.01)
print(url, seen.decode())
"""


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env["ROOST_HOME"] = str(home)
    env.update(extra)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    try:
        yield home
    finally:
        EmbeddedServer(home / "redis").stop()


@pytest.fixture
def embedded(home: Path) -> EmbeddedServer:
    return EmbeddedServer(home / "redis")


def test_two_processes_at_once_share_one_detached_server(home: Path, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARE, me, other, str(sync)],
            env=clean_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    deadline = time.monotonic() + 30
    while not all((sync / f"ready-{name}").exists() for name in "ab"):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (sync / "go").touch()
    outputs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    (url_a, seen_by_a), (url_b, seen_by_b) = (out.split() for out, _ in outputs)
    assert url_a == url_b
    assert seen_by_a == str(procs[1].pid) and seen_by_b == str(procs[0].pid)

    # Both starters have exited; the server outlives them, with the AOF on, under ROOST_HOME.
    status = EmbeddedServer(home / "redis").status()
    assert status.running and status.url == url_a
    assert status.data_dir == (home / "redis").resolve()
    with redis.Redis.from_url(url_a) as r:
        assert r.config_get("appendonly") == {"appendonly": "yes"}
        assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert r.config_get("dir") == {"dir": str(status.data_dir)}
    log = (home / "redis" / "server.log").read_text()
    assert log.count("Ready to accept connections") == 1  # one server was started, not two

    assert status.pid is not None
    assert EmbeddedServer(home / "redis").stop() == status.pid
    assert not pid_alive(status.pid)
    assert EmbeddedServer(home / "redis").status().state == "stopped"


def test_restart_keeps_data_and_prefers_the_same_port(embedded: EmbeddedServer) -> None:
    url = embedded.ensure_running()
    assert embedded.ensure_running() == url  # reused, not restarted
    with redis.Redis.from_url(url) as r:
        r.set("survives", "a restart")
    first_pid = embedded.status().pid
    assert embedded.stop() == first_pid
    assert embedded.stop() is None  # nothing left to stop
    assert embedded.ensure_running() == url
    assert embedded.status().pid != first_pid
    with redis.Redis.from_url(url) as r:
        assert r.get("survives") == b"a restart"


def write_state(embedded: EmbeddedServer, pid: int, port: int) -> None:
    embedded.directory.mkdir(parents=True, exist_ok=True)
    state = {"pid": pid, "port": port, "binary": "valkey-server", "started_at": "then"}
    embedded.state_path.write_text(json.dumps(state))


def test_a_state_file_with_a_dead_pid_is_recovered_from(embedded: EmbeddedServer) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_state(embedded, dead.pid, free_port())
    assert embedded.status().state == "stopped"
    url = embedded.ensure_running()
    with redis.Redis.from_url(url) as r:
        assert r.ping()
    assert embedded.status().pid not in (None, dead.pid)


def test_a_reused_pid_is_neither_trusted_nor_killed(embedded: EmbeddedServer) -> None:
    # The recorded PID now belongs to this very pytest process, which answers no PING.
    write_state(embedded, os.getpid(), free_port())
    assert embedded.status().state == "stopped"
    assert embedded.stop() is None  # and we are still alive
    write_state(embedded, os.getpid(), free_port())
    url = embedded.ensure_running()
    with redis.Redis.from_url(url) as r:
        assert r.ping()
    assert embedded.status().pid != os.getpid()


def test_a_server_without_a_record_is_adopted_not_duplicated(embedded: EmbeddedServer) -> None:
    url = embedded.ensure_running()
    pid = embedded.status().pid
    embedded.state_path.unlink()  # as if its starter died before writing the record
    assert embedded.status().pid == pid
    assert embedded.ensure_running() == url
    assert embedded.log_path.read_text().count("Ready to accept connections") == 1
    assert embedded.stop() == pid
    assert pid is not None and not pid_alive(pid)


def test_garbage_state_file_is_ignored(embedded: EmbeddedServer) -> None:
    embedded.directory.mkdir(parents=True)
    embedded.state_path.write_text("{not json")
    assert embedded.status().state == "stopped"
    assert redis.Redis.from_url(embedded.ensure_running()).ping()


def test_a_paused_server_is_reported_not_duplicated(embedded: EmbeddedServer) -> None:
    embedded.ensure_running()
    pid = embedded.status().pid
    assert pid is not None
    os.kill(pid, 19)  # SIGSTOP
    try:
        assert embedded.status().state == "unresponsive"
        with pytest.raises(ServerError, match="roost.redis.server stop"):
            embedded.ensure_running(timeout=0.3)
    finally:
        assert embedded.stop() == pid  # resumes it, then stops it
    assert not pid_alive(pid)


def test_redis_url_for_prefers_the_configured_url(tmp_path: Path) -> None:
    settings = RoostSettings(redis_url="redis://127.0.0.1:1/0", home=tmp_path / "home")
    assert redis_url_for(settings) == "redis://127.0.0.1:1/0"
    assert not (tmp_path / "home").exists()  # nothing was started


def test_redis_url_for_starts_the_embedded_server(home: Path) -> None:
    settings = RoostSettings.from_env({"ROOST_HOME": str(home)})
    url = redis_url_for(settings)
    assert url == EmbeddedServer(home / "redis").status().url


def run_cli(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "roost.redis.server", *args],
        env=clean_env(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_module_cli_start_status_stop_and_bad_settings(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each `python -m` costs over a second of imports here, so two run side by side and the
    # other verbs go through main() in this process.
    bad = run_cli(home, "status", ROOST_LEASE_TTL="-1")
    for name in [k for k in os.environ if k.startswith("ROOST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROOST_HOME", str(home))
    assert main(["start"]) == 0
    started = capsys.readouterr().out
    assert started.startswith("embedded server: running: redis://127.0.0.1:")
    assert started.count("\n") == 1
    assert main(["status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "running" and info["url"] in started

    stopped = run_cli(home, "stop")
    out, err = stopped.communicate(timeout=30)
    assert stopped.returncode == 0, err
    assert out == f"embedded server stopped (pid {info['pid']})\n"
    assert not pid_alive(info["pid"])
    assert main(["status"]) == 0
    assert capsys.readouterr().out.startswith("embedded server: stopped (data ")

    out, err = bad.communicate(timeout=30)
    assert bad.returncode == 2
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: ROOST_LEASE_TTL") and "Traceback" not in err
