"""`roost worker`: its banner, one line per step, and how it stops on signals."""

from __future__ import annotations

import json
import signal
import time

import pytest
from cli_support import Cli, Target, read_until, start_worker, stop

from roost.cli.worker import parse_engines
from roost.runtime import WorkState


def slow_item(cli: Cli, target: Target) -> str:
    body = {"url": target.url + "slow", "checks_required": 1, "timeout_seconds": 20}
    result = cli("enqueue", "--engine", "watchlist", "--payload", json.dumps(body))
    assert result.code == 0
    work_id = result.stdout.strip()
    # Leased and running its first check (the init snapshot is committed with that check).
    cli.wait(work_id, lambda s: s.meta.state == WorkState.RUNNING and s.meta.lease is not None)
    time.sleep(0.3)  # the fetch is under way (the target answers after 5 s)
    return work_id


def test_banner_says_which_redis_namespace_queue_engines(cli: Cli) -> None:
    proc = start_worker(cli, "--engines", "watchlist", "--concurrency", "3")
    out = stop(proc)
    settings = cli.settings()
    assert f"redis        {settings.redis_url} (ROOST_REDIS_URL)" in out
    assert f"namespace    {settings.namespace}   queue roost" in out
    assert "engines      watchlist" in out
    assert "concurrency  3   grace period 10s" in out
    assert proc.returncode == 0


def test_one_line_per_step_and_failures(cli: Cli, target: Target) -> None:
    proc = start_worker(cli, env={"ROOST_MAX_ATTEMPTS": "1"})
    body = {"url": target.url, "checks_required": 2, "delay_seconds": 0.1}
    good = cli("enqueue", "--engine", "watchlist", "--payload", json.dumps(body)).stdout.strip()
    lines = read_until(proc, f"done        {good}")
    mine = [line for line in lines if good in line]
    assert len(mine) == 3  # init, two checks (the last one is "done")
    assert "next step in 0.1s" in mine[1]
    bad = cli("enqueue", "--engine", "watchlist", "--payload", '{"url": "ftp://x"}').stdout.strip()
    read_until(proc, f"dead        {bad}")
    [dead] = [line for line in proc.lines if f"dead        {bad}" in line]
    assert "attempt 1 failed: BadInput: watchlist payload: url 'ftp://x'" in dead
    out = stop(proc)
    assert "2 steps committed" in out.splitlines()[-1] or "3 steps committed" in out


def test_ctrl_c_lets_the_running_step_finish(cli: Cli, target: Target) -> None:
    proc = start_worker(cli)
    work_id = slow_item(cli, target)
    started = time.monotonic()
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, out
    assert time.monotonic() - started > 1.5  # it waited for the step
    assert "SIGINT: stopping; running steps get 10s to finish" in out
    assert f"done        {work_id}" in out
    assert "Traceback" not in out
    assert cli.status(work_id).meta.state == WorkState.DONE


def test_sigterm_is_graceful_too(cli: Cli, target: Target) -> None:
    proc = start_worker(cli)
    work_id = slow_item(cli, target)
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0 and "SIGTERM: stopping" in out
    assert cli.status(work_id).meta.state == WorkState.DONE


def test_second_ctrl_c_exits_at_once(cli: Cli, target: Target) -> None:
    proc = start_worker(cli)
    work_id = slow_item(cli, target)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.5)  # well past SAME_SIGNAL_WINDOW, even on a loaded machine
    started = time.monotonic()
    out = stop(proc, signal.SIGINT)
    assert time.monotonic() - started < 1.0, out
    assert proc.returncode == 130
    assert "second interrupt: exiting now" in out and "Traceback" not in out
    assert cli.status(work_id).meta.state == WorkState.RUNNING  # its lease will expire


def test_an_echoed_signal_is_not_a_second_ctrl_c(cli: Cli, target: Target) -> None:
    """`uv run` forwards the terminal's SIGINT ~200 ms after the child got it."""
    proc = start_worker(cli)
    work_id = slow_item(cli, target)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, out
    assert "second interrupt" not in out
    assert cli.status(work_id).meta.state == WorkState.DONE


def test_unknown_engine_exits_2_before_connecting(cli: Cli) -> None:
    result = cli(
        "worker", "--engines", "watchlist,nope", env={"ROOST_REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    assert result.code == 2
    assert result.stderr.strip() == "error: unknown engine 'nope' (installed: watchlist)"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, None),
        ([], None),
        (["watchlist"], {"watchlist": 10}),
        (["a,b", "c", "a"], {"a": 10, "b": 10, "c": 10}),
        ([" a , ,b "], {"a": 10, "b": 10}),
        (["watchlist=4,my-engine=1"], {"watchlist": 4, "my-engine": 1}),
        (["a=2", "b", "a = 3"], {"a": 3, "b": 10}),
    ],
)
def test_parse_engines(values: list[str] | None, expected: dict[str, int] | None) -> None:
    assert parse_engines(values, 10) == expected


@pytest.mark.parametrize("value", ["a=0", "a=x", "a=", "=3", "a=-1", "a=1.5"])
def test_malformed_engine_slots_exit_2_with_one_line(cli: Cli, value: str) -> None:
    result = cli("worker", "--engines", value, env={"ROOST_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.code == 2
    assert result.stderr.strip() == (
        f"error: --engines: {value!r} is not ENGINE or ENGINE=SLOTS "
        "(SLOTS a whole number of at least 1)"
    )
    assert result.stdout == ""
