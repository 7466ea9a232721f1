"""The worker's printer on its own: summaries at high rates, failures with their traceback."""

from __future__ import annotations

import io
import json
import logging

from roost.cli.logs import JsonFormatter, TextFormatter
from roost.cli.printer import StepPrinter
from roost.runtime import RuntimeEvent


def committed(i: int) -> RuntimeEvent:
    return RuntimeEvent(type="committed", work_id=f"w{i}", version=2, step="s", worker="k")


def failure_record(work_id: str, attempt: int) -> logging.LogRecord:
    """The record the runtime logs for a failed attempt: the exception as an extra field."""
    try:
        raise ValueError(f"boom {attempt}")
    except ValueError as caught:
        exc = caught
    return logging.makeLogRecord(
        {
            "name": "roost.worker",
            "msg": "work %s attempt %d failed",
            "args": (work_id, attempt),
            "exception": exc,
            "event": "step_failed",
            "work_id": work_id,
            "engine": "e",
            "attempt": attempt,
            "worker": "k",
            "error": "ValueError",
        }
    )


async def test_past_the_rate_the_rest_is_one_summary_line() -> None:
    out = io.StringIO()
    printer = StepPrinter(out=out, rate=3)
    for i in range(10):
        await printer(committed(i))
    await printer(RuntimeEvent(type="started", work_id="w0"))  # never printed
    printer.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines[:3]] == ["w0", "w1", "w2"]
    assert len(lines) == 4
    assert "... 7 more events in " in lines[3] and "(7 committed)" in lines[3]
    assert printer.steps == 10


async def test_verbose_prints_every_step() -> None:
    out = io.StringIO()
    printer = StepPrinter(out=out, rate=3, verbose=True)
    for i in range(10):
        await printer(committed(i))
    printer.close()
    assert len(out.getvalue().splitlines()) == 10


async def test_a_failure_is_one_line_with_its_outcome_and_traceback() -> None:
    out = io.StringIO()
    printer = StepPrinter(out=out, traceback_lines=None)
    assert printer.filter(failure_record("w1", 2)) is False  # taken off the log
    assert printer.filter(logging.makeLogRecord({"msg": "other"})) is True
    data = {"error": "ValueError", "message": "boom 2", "attempt": 2, "delay": 1.5}
    await printer(RuntimeEvent(type="retrying", work_id="w1", data=data))
    printer.close()
    lines = out.getvalue().splitlines()
    assert "retrying    w1  attempt 2 failed: ValueError: boom 2  (retry in 1.5s)" in lines[0]
    assert lines[1] == "    Traceback (most recent call last):"
    assert lines[-1] == "    ValueError: boom 2"
    assert printer.failures == {}


async def test_a_failure_whose_outcome_never_comes_is_printed_alone() -> None:
    out = io.StringIO()
    printer = StepPrinter(out=out, orphan_after=0.0)
    printer.filter(failure_record("w9", 1))
    printer.flush()
    first = out.getvalue().splitlines()[0]
    assert first.split()[1:3] == ["step_failed", "w9"]
    assert first.endswith("attempt 1 failed: ValueError: boom 1 (its outcome was not recorded)")


async def test_json_lines() -> None:
    out = io.StringIO()
    printer = StepPrinter(out=out, fmt="json", rate=1)
    printer.filter(failure_record("w1", 1))
    data = {"error": "ValueError", "message": "boom 1", "attempt": 1}
    await printer(RuntimeEvent(type="dead", work_id="w1", worker="k", data=data))
    for i in range(3):
        await printer(committed(i))
    printer.close()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["event"] == "dead" and records[0]["engine"] == "e"
    assert records[0]["traceback"].endswith("ValueError: boom 1")
    assert records[1]["event"] == "committed" and records[1]["version"] == 2
    assert records[-1]["event"] == "summary" and records[-1]["steps"] == 2


def test_the_log_formatters_show_an_exception_given_as_an_extra_field() -> None:
    record = failure_record("w1", 3)
    text = TextFormatter().format(record).splitlines()
    assert text[0].endswith("  work w1 attempt 3 failed")
    assert text[-1] == "    ValueError: boom 3"
    fields = json.loads(JsonFormatter().format(record))
    assert fields["traceback"].endswith("ValueError: boom 3") and "exception" not in fields
    assert fields["work_id"] == "w1" and fields["attempt"] == 3 and fields["engine"] == "e"
