"""`roost worker --metrics-port`: Prometheus metrics scraped from a real worker during a run."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from cli_support import Cli, Target, start_worker, stop
from prometheus_client.parser import text_string_to_metric_families

from roost.runtime import WorkState

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        body = reply.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def steps(got: Samples, engine: str, outcome: str) -> float:
    return got.get(("roost_steps_total", (("engine", engine), ("outcome", outcome))), 0.0)


def listed_counts(cli: Cli) -> Counter[str]:
    result = cli("list", "--json", "--limit", "1000")
    assert result.code == 0, result.stderr
    return Counter(item["state"] for item in json.loads(result.stdout)["items"])


def test_scraped_worker_shows_counters_moving_and_gauges_matching_list(
    cli: Cli, target: Target, failing_engine: dict[str, str]
) -> None:
    port = free_port()
    body = {"url": target.url, "checks_required": 6, "delay_seconds": 0.2}
    ids = [
        cli("enqueue", "--engine", "watchlist", "--payload", json.dumps(body)).stdout.strip()
        for _ in range(3)
    ]
    flaky = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "once"}').stdout.strip()
    dead = cli(
        "enqueue", "--engine", "fails", "--payload", '{"mode": "always"}', "--max-attempts", "2"
    ).stdout.strip()
    later = cli("enqueue", "--engine", "watchlist", "--delay", "10m", "--payload", "{}")
    assert later.code == 0
    proc = start_worker(
        cli, "--engines", "watchlist=4,fails=2", "--metrics-port", str(port), env=failing_engine
    )
    assert f"metrics      http://127.0.0.1:{port}/metrics" in proc.output

    # While the watchlist items run (one check every 0.2 s), the counters move.
    deadline = time.monotonic() + 30
    first = scrape(port)
    while steps(first, "watchlist", "committed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        first = scrape(port)
    assert first[("roost_live_workers", (("queue", "roost"),))] == 1
    assert first[("roost_worker_slots", (("engine", "watchlist"),))] == 4
    while time.monotonic() < deadline:
        second = scrape(port)
        if steps(second, "watchlist", "committed") > steps(first, "watchlist", "committed"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the committed counter did not move")

    for work_id in ids:
        cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    cli.wait(flaky, lambda s: s.meta.state == WorkState.DONE)
    cli.wait(dead, lambda s: s.meta.state == WorkState.DEAD)
    got = scrape(port)
    # Init + 6 checks per watchlist item (the init is committed with the first check).
    assert steps(got, "watchlist", "committed") == 3 * 7
    assert steps(got, "fails", "committed") == 2 + 1  # two inits, the flaky item's retry
    assert steps(got, "fails", "retried") == 2  # each failing item's first attempt
    assert steps(got, "fails", "dead") == 1
    assert got[("roost_step_duration_seconds_count", (("engine", "watchlist"),))] == 3 * 7
    latency = got[("roost_step_queue_latency_seconds_count", (("engine", "watchlist"),))]
    assert latency >= 3  # every lease taken off the queue (delays add more)
    assert got[("roost_step_lateness_seconds_count", (("engine", "fails"),))] == 2
    assert got[("roost_lease_renewals_total", ())] >= 0
    assert got[("roost_worker_steps_running", (("engine", "watchlist"),))] == 0

    # The queue's gauges match what `roost list` shows, state by state.
    listed = listed_counts(cli)
    assert listed == Counter({"done": 4, "dead": 1, "scheduled": 1})
    for state in ("queued", "scheduled", "running", "retrying", "waiting", "done", "dead"):
        gauge = got[("roost_work_items", (("queue", "roost"), ("state", state)))]
        assert gauge == listed[state], state
    assert got[("roost_oldest_queued_age_seconds", (("queue", "roost"),))] == 0
    assert got[("roost_redis_up", ())] == 1
    assert got[("roost_engine_live_workers", (("engine", "watchlist"), ("queue", "roost")))] == 1
    for key in got:  # bounded labels: no work id anywhere
        assert not any(w in str(key) for w in [*ids, flaky, dead])
    stop(proc)
    assert proc.returncode == 0


def test_metrics_port_in_use_is_one_line_and_exit_2(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.proc("worker", "--engines", "watchlist", "--metrics-port", str(port))
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --metrics-port: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert "Traceback" not in result.stderr + result.stdout
    assert cli.swarm_call(lambda s: s.workers()) == []  # it never registered


def test_metrics_port_out_of_range_is_bad_input(cli: Cli) -> None:
    result = cli("worker", "--metrics-port", "70000")
    assert result.code == 2
    assert result.stderr.startswith("error: Invalid value for '--metrics-port'")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_scrape_while_redis_is_down_says_so_and_keeps_the_counters(
    cli: Cli, target: Target, redis_server: Any
) -> None:
    port = free_port()
    body = {"url": target.url, "checks_required": 1}
    work_id = cli("enqueue", "--engine", "watchlist", "--payload", json.dumps(body)).stdout.strip()
    proc = start_worker(cli, "--engines", "watchlist", "--metrics-port", str(port))
    cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    before = scrape(port)
    assert before[("roost_redis_up", ())] == 1
    assert steps(before, "watchlist", "committed") == 2
    redis_server.stop()
    started = time.monotonic()
    during = scrape(port)
    assert time.monotonic() - started < 10  # bounded by the scrape's own timeout
    assert during[("roost_redis_up", ())] == 0
    assert ("roost_work_items", (("queue", "roost"), ("state", "done"))) not in during
    assert steps(during, "watchlist", "committed") == 2  # the worker's own counters stay
    stop(proc)
