"""`roost worker`: its banner, one line per step, and how it stops on signals."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
from cli_support import Cli, Target, read_until, start_worker, stop

from roost.cli.worker import parse_engines
from roost.runtime import WorkItem, WorkState


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
    assert "engines      watchlist (3 slots)" in out
    assert "grace period 10s" in out
    assert proc.returncode == 0


def test_one_line_per_step(cli: Cli, target: Target) -> None:
    proc = start_worker(cli)
    body = {"url": target.url, "checks_required": 2, "delay_seconds": 0.1}
    good = cli("enqueue", "--engine", "watchlist", "--payload", json.dumps(body)).stdout.strip()
    lines = read_until(proc, f"done        {good}")
    mine = [line for line in lines if good in line]
    assert len(mine) == 3  # init, two checks (the last one is "done")
    assert "next step in 0.1s" in mine[1]
    out = stop(proc)
    assert out.splitlines()[-1].endswith("3 steps committed")


def failure_lines(out: str, work_id: str) -> list[str]:
    return [line for line in out.splitlines() if work_id in line and " failed: " in line]


def test_one_line_per_failure_with_the_end_of_its_traceback(
    cli: Cli, failing_engine: dict[str, str]
) -> None:
    proc = start_worker(cli, env={**failing_engine, "ROOST_MAX_ATTEMPTS": "2"})
    work_id = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "always"}').stdout.strip()
    read_until(proc, f"dead        {work_id}")
    out = stop(proc)
    lines = out.splitlines()
    first, second = failure_lines(out, work_id)  # one line per failed attempt, not two
    assert first.split()[1:3] == ["retrying", work_id]
    assert "attempt 1 failed: ValueError: boom on attempt 1  (retry in 0.0" in first
    assert second.split()[1:3] == ["dead", work_id]
    assert "attempt 2 failed: ValueError: boom on attempt 2" in second
    trace = lines[lines.index(first) + 1 : lines.index(second)]
    assert trace[0].startswith("    ... ") and trace[0].endswith(
        "earlier lines (--full-tracebacks)"
    )
    assert trace[1].startswith('      File "') and all(t.startswith("    ") for t in trace)
    assert trace[-2].strip() == 'raise ValueError(f"boom on attempt {attempt}")'
    assert trace[-1] == "    ValueError: boom on attempt 1"
    assert 8 <= len(trace) <= 10
    assert "Traceback (most recent call last)" not in out
    assert f"work {work_id} attempt" not in out  # the runtime's own line is not printed too


def test_full_tracebacks(cli: Cli, failing_engine: dict[str, str]) -> None:
    proc = start_worker(cli, "--full-tracebacks", env={**failing_engine, "ROOST_MAX_ATTEMPTS": "1"})
    work_id = cli("enqueue", "--engine", "fails").stdout.strip()
    read_until(proc, f"dead        {work_id}")
    out = stop(proc)
    [line] = failure_lines(out, work_id)
    lines = out.splitlines()
    assert lines[lines.index(line) + 1] == "    Traceback (most recent call last):"
    assert "more lines (--full-tracebacks)" not in out


def test_an_invalid_watchlist_payload_fails_at_once(cli: Cli) -> None:
    proc = start_worker(cli, env={"ROOST_MAX_ATTEMPTS": "3"})
    bad = cli("enqueue", "--engine", "watchlist", "--payload", '{"url": "ftp://x"}').stdout.strip()
    read_until(proc, f"failed      {bad}")
    out = stop(proc)
    [line] = failure_lines(out, bad)
    assert "attempt 1 failed: PermanentError: watchlist payload: url 'ftp://x'" in line
    meta = cli.status(bad).meta
    assert meta.state == WorkState.FAILED and meta.attempts == 1
    assert "retrying" not in out


def test_high_rates_print_a_summary_line_and_v_prints_every_step(
    cli: Cli, failing_engine: dict[str, str]
) -> None:
    items = [WorkItem(engine="fails", payload={"mode": "ok"}) for _ in range(300)]
    cli.swarm_call(lambda s: s.enqueue_many(items))
    proc = start_worker(cli, "--concurrency", "20", env=failing_engine)
    cli.wait(items[-1].work_id, lambda s: s.meta.state == WorkState.DONE)
    cli.swarm_call(lambda s: s.counts())
    out = stop(proc)
    step_lines = [
        line for line in out.splitlines() if line.split()[1:2] in (["committed"], ["done"])
    ]
    summaries = [line for line in out.splitlines() if " more events in " in line]
    assert summaries, out
    hidden = sum(
        int(re.search(r"\.\.\. ([\d,]+) more events", s).group(1).replace(",", ""))  # type: ignore[union-attr]
        for s in summaries
    )
    assert len(step_lines) + hidden == 600  # init + step of 300 items, each counted once
    assert len(step_lines) < 600
    assert "-v prints every step" in summaries[0]

    items = [WorkItem(engine="fails", payload={"mode": "ok"}) for _ in range(300)]
    cli.swarm_call(lambda s: s.enqueue_many(items))
    proc = start_worker(cli, "-v", "--concurrency", "20", env=failing_engine)
    cli.wait(items[-1].work_id, lambda s: s.meta.state == WorkState.DONE)
    out = stop(proc)
    ids = {i.work_id for i in items}
    verbose_lines = [
        line for line in out.splitlines() if line.split()[2:3] and line.split()[2] in ids
    ]
    assert len(verbose_lines) == 600
    assert " more events in " not in out


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
    assert result.stderr.strip() == (
        "error: unknown engine 'nope' (installed: watchlist, watchlist-fanout)"
    )


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


def test_a_second_worker_with_a_live_workers_id_exits_2_with_one_line(cli: Cli) -> None:
    first = start_worker(cli, "--engines", "watchlist", "--worker-id", "web-1")
    assert "worker id    web-1" in first.output
    result = cli.proc("worker", "--engines", "watchlist", "--worker-id", "web-1")
    assert result.code == 2, result
    # (The test server keeps nothing on disk: the worker's warning about that comes first.)
    [line] = [x for x in result.stderr.splitlines() if "keeps nothing on disk" not in x]
    assert line.startswith("error: worker id 'web-1' is in use by a live worker (pid ")
    assert "Traceback" not in result.stderr
    assert first.poll() is None
    assert stop(first) and first.returncode == 0
