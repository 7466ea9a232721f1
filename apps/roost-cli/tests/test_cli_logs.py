"""--log-level and --log-format (and ROOST_LOG_*) on every verb; JSON logs parse line by line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cli_support import Cli, read_until, start_worker, stop

from roost.cli.logs import JsonFormatter, TextFormatter, format_traceback
from roost.runtime import WorkState


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--log-level", "debug"),
        ("--log-level", "DEBUG", "list"),
        ("list", "--log-format", "json"),
        ("--log-format", "json", "--log-level", "info", "list", "-v"),
        ("engines", "--log-level", "warning", "--log-format", "text"),
        ("server", "status", "--log-level", "error"),
        ("events", "--log-format", "json", "--json"),
    ],
)
def test_log_options_are_accepted_before_and_after_the_verb(
    cli: Cli, args: tuple[str, ...]
) -> None:
    result = cli(*args)
    assert result.code == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("list", "--log-level", "loud"), {}, "'loud' is not one of debug, info, warning"),
        (("--log-format", "xml", "list"), {}, "'xml' is not one of text, json"),
        (("list",), {"ROOST_LOG_LEVEL": "loud"}, "ROOST_LOG_LEVEL: 'loud' is not one of"),
        (("list",), {"ROOST_LOG_FORMAT": "xml"}, "ROOST_LOG_FORMAT: 'xml' is not one of"),
    ],
)
def test_bad_log_options_exit_2_with_one_line(
    cli: Cli, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = cli(*args, env=env)
    assert result.code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line


def test_log_level_from_the_environment_and_the_flag(cli: Cli) -> None:
    quiet = start_worker(cli, env={"ROOST_LOG_LEVEL": "warning"})
    out = stop(quiet)
    assert "keeps nothing on disk" in out  # a warning: shown
    assert not [line for line in out.splitlines() if line.endswith(" stopping")], out  # info
    chatty = start_worker(cli, "--log-level", "info")
    out = stop(chatty)
    assert [line for line in out.splitlines() if line.endswith(" stopping")], out


def test_worker_json_output_parses_line_by_line(cli: Cli, failing_engine: dict[str, str]) -> None:
    env = {**failing_engine, "ROOST_MAX_ATTEMPTS": "2", "ROOST_LOG_FORMAT": "json"}
    proc = cli.spawn("worker", env=env)
    read_until(proc, '"event":"worker_started"')
    failing = cli("enqueue", "--engine", "fails").stdout.strip()
    fine = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "ok"}').stdout.strip()
    cli.wait(failing, lambda s: s.meta.state == WorkState.DEAD)
    cli.wait(fine, lambda s: s.meta.state == WorkState.DONE)
    read_until(proc, f'"event":"done","work_id":"{fine}"')
    stop(proc)
    records = parse_lines(proc.output)  # stdout and stderr, merged: every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    [started] = [r for r in records if r.get("event") == "worker_started"]
    assert started["namespace"] == cli.settings().namespace and "fails" in started["engines"]
    failures = [r for r in records if r.get("work_id") == failing and "traceback" in r]
    assert [r["event"] for r in failures] == ["retrying", "dead"]  # one record per failure
    for attempt, record in enumerate(failures, 1):
        assert record["level"] == "warning"
        assert record["engine"] == "fails" and record["attempt"] == attempt
        assert record["worker"] and record["error"] == "ValueError"
        assert record["traceback"].startswith("Traceback (most recent call last):")
        assert record["traceback"].endswith(f"ValueError: boom on attempt {attempt}")
    steps = [r for r in records if r.get("work_id") == fine]
    assert [r["event"] for r in steps] == ["committed", "done"]
    assert [r["version"] for r in steps] == [1, 2] and all(r["worker"] for r in steps)
    assert any(r["logger"] == "roost.worker" and "stopping" in r["message"] for r in records)
    assert records[-1]["event"] == "worker_stopped" and records[-1]["steps"] == 3


def test_json_formatter_carries_extra_fields_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        record = logging.makeLogRecord(
            {
                "name": "roost.worker",
                "levelno": logging.WARNING,
                "levelname": "WARNING",
                "msg": "work %s failed",
                "args": ("w1",),
                "exc_info": (type(exc), exc, exc.__traceback__),
                "work_id": "w1",
                "engine": "e",
                "version": 3,
                "attempt": 2,
                "worker": "host:1:abc",
            }
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["message"] == "work w1 failed" and fields["level"] == "warning"
    assert {k: fields[k] for k in ("work_id", "engine", "version", "attempt", "worker")} == {
        "work_id": "w1",
        "engine": "e",
        "version": 3,
        "attempt": 2,
        "worker": "host:1:abc",
    }
    assert fields["traceback"].endswith("ValueError: boom")
    assert fields["ts"].endswith("+00:00")
    text = TextFormatter().format(record)
    assert text.splitlines()[0].endswith("  work w1 failed")
    assert text.splitlines()[-1] == "    ValueError: boom"


def deep(n: int) -> None:
    if n:
        deep(n - 1)
    raise RuntimeError("deep")


def test_tracebacks_are_cut_at_a_frame() -> None:
    with pytest.raises(RuntimeError) as info:
        deep(10)
    short = format_traceback(info.value, 8).splitlines()
    whole = format_traceback(info.value, None).splitlines()
    assert whole[0] == "Traceback (most recent call last):"
    assert short[0].startswith("... ") and short[0].endswith(" earlier lines (--full-tracebacks)")
    assert short[1].lstrip().startswith("File ")
    assert short[-1] == "RuntimeError: deep"
    assert len(short) <= 9
