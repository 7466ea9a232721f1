"""The TCP proxy on a plain primary and replica, and the topology fixtures' teardown."""

from __future__ import annotations

import contextlib
import gc
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from roost.redis.server import HOST, free_port, pid_alive
from roost.redis.server.nodes import wait_until
from roost.redis.server.proxy import TcpProxy
from roost.redis.testing import RedisServerFactory
from roost_testkit.inner_pytest import run_inner_tests

Pair = tuple[redis.Redis, redis.Redis, TcpProxy]


@pytest.fixture
def pair(
    redis_server_factory: RedisServerFactory, tcp_proxy_factory: Callable[[int], TcpProxy]
) -> Iterator[Pair]:
    """Clients of a primary and of its replica, whose link goes through a proxy."""
    primary = redis_server_factory(repl_diskless_sync_delay=0)
    proxy = tcp_proxy_factory(primary.port)
    replica = redis_server_factory(replicaof=f"{HOST} {proxy.port}")
    p = redis.Redis(port=primary.port, decode_responses=True, single_connection_client=True)
    r = redis.Redis(port=replica.port, decode_responses=True)
    try:
        wait_until(lambda: r.info("replication")["master_link_status"] == "up", 10, "link up")
        yield p, r, proxy
    finally:
        p.close()
        r.close()


def test_the_proxy_tells_a_replication_link_from_clients(pair: Pair) -> None:
    _, _, proxy = pair
    through = redis.Redis(port=proxy.port, decode_responses=True)
    try:
        assert through.set("via-proxy", "1") and through.get("via-proxy") == "1"
        assert proxy.connections("replication") == 1
        assert proxy.connections("clients") == 1
        proxy.pause()  # replication only: the client still gets answers
        assert through.get("via-proxy") == "1"
        proxy.resume()
    finally:
        through.close()


def test_pause_holds_the_stream_and_resume_delivers_it(pair: Pair) -> None:
    p, r, proxy = pair
    assert p.wait(1, 2000) == 1
    proxy.pause()
    p.set("held", "1")
    assert p.wait(1, 300) == 0
    assert r.get("held") is None
    proxy.resume()
    assert p.wait(1, 5000) == 1
    assert r.get("held") == "1"


def test_a_delay_makes_the_replica_lag_by_about_that_long(pair: Pair) -> None:
    p, r, proxy = pair
    proxy.set_delay(0.5)
    started = time.monotonic()
    p.set("late", "1")
    wait_until(lambda: r.get("late") == "1", 5, "the delayed write")
    assert time.monotonic() - started >= 0.45
    proxy.set_delay(0)
    p.set("prompt", "1")
    assert p.wait(1, 2000) == 1


def test_cut_breaks_the_link_and_the_replica_reconnects(pair: Pair) -> None:
    p, _, proxy = pair
    assert proxy.cut("replication") == 1
    wait_until(lambda: proxy.connections("replication") == 1, 10, "a new link")
    p.set("after-cut", "1")
    assert p.wait(1, 5000) == 1


def test_a_proxy_in_front_of_a_dead_port_drops_connections() -> None:
    with TcpProxy(free_port()) as proxy:  # nothing listens there
        with socket.create_connection((HOST, proxy.port), timeout=2) as sock:
            sock.settimeout(2)
            assert sock.recv(16) == b""  # closed at once, not left hanging
        assert proxy.connections() == 0


def test_a_proxy_closed_while_clients_keep_connecting_leaves_no_socket_open(
    redis_server_factory: RedisServerFactory,
) -> None:
    """Connections that arrive while the proxy closes are closed too, not left to the GC.

    A socket the proxy accepted but never closed is closed by the garbage collector with a
    ResourceWarning (a test failure wherever the collection happens to run).
    """
    server = redis_server_factory()
    leaked: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: leaked.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        for _ in range(3):
            proxy = TcpProxy(server.port).start()
            stop = threading.Event()

            def hammer(port: int = proxy.port, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    with contextlib.suppress(OSError):
                        with socket.create_connection((HOST, port), timeout=1) as sock:
                            sock.sendall(b"PING\r\n")

            threads = [threading.Thread(target=hammer) for _ in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(0.2)
            proxy.close()
            stop.set()
            for thread in threads:
                thread.join(5)
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not [x for x in leaked if "unclosed" in x], leaked


INNER_TESTS = """
import os
from pathlib import Path

PIDS = Path(os.environ["PIDS_FILE"])


def test_fails_with_both_topologies(redis_sentinel_factory, redis_cluster_factory):
    group = redis_sentinel_factory(sentinels=1, quorum=1)  # small ones start faster
    cluster = redis_cluster_factory(primaries=1, proxied=True)
    pids = [n.pid for n in group.nodes + group.sentinels + cluster.nodes]
    PIDS.write_text(" ".join(map(str, pids)))
    group.primary().server.pause()
    assert False, "this test fails on purpose"
"""


@pytest.mark.slow
def test_teardown_stops_every_topology_process_even_after_a_failure(tmp_path: Path) -> None:
    result, pids = run_inner_tests(tmp_path, INNER_TESTS, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout, result.stdout
    assert len(pids) == 3 + 2
    assert [pid for pid in pids if pid_alive(pid)] == []
