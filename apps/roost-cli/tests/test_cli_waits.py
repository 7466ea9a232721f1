"""``roost signal``, ``approve`` and ``reject`` against a real server and a real worker."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, fake_distribution, start_worker

from roost.runtime import WorkState

COLLECTOR = """
from roost_testkit.waiting import MeteredEngine, SignalCollector


def build(**kwargs):
    return SignalCollector()


def build_metered(**kwargs):
    return MeteredEngine()
"""


@pytest.fixture
def collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    site = tmp_path / "collector-site"
    fake_distribution(
        site,
        COLLECTOR,
        "[roost.engines]\ncollector = {module}:build\nmetered = {module}:build_metered\n",
    )
    monkeypatch.syspath_prepend(str(site))
    yield {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def enqueue(cli: Cli, payload: dict) -> str:
    result = cli("enqueue", "--engine", "collector", "--payload", json.dumps(payload))
    assert result.code == 0, result
    return result.stdout.strip()


def test_approve_and_reject_from_the_cli(cli: Cli, collector: dict[str, str]) -> None:
    start_worker(cli, "--engines", "collector", env=collector)
    yes = enqueue(cli, {"approval": "deploy plan A?"})
    no = enqueue(cli, {"approval": "spend $40?"})
    for work_id in (yes, no):
        cli.wait(work_id, lambda s: s.meta.state == WorkState.AWAITING)

    listed = cli("list").stdout
    assert {line.split()[0] for line in listed.splitlines() if "needs approval" in line} == {
        yes,
        no,
    }
    status = cli("status", yes, "--human")
    assert status.code == 0
    assert status.stdout.splitlines()[0].endswith("needs approval")
    assert "approval    deploy plan A?" in status.stdout
    assert "round: 1" in status.stdout  # the details are shown
    as_json = json.loads(cli("status", yes).stdout)
    assert as_json["meta"]["approval"]["message"] == "deploy plan A?"

    approved = cli("approve", yes, "--note", "go ahead")
    assert approved.code == 0 and approved.stdout == f"{yes}: approved (woke it)\n"
    rejected = cli("reject", no, "--note", "too much")
    assert rejected.code == 0 and "rejected" in rejected.stdout

    done = cli.wait(yes, lambda s: s.meta.state == WorkState.DONE)
    assert done.snapshot is not None
    [decision] = done.snapshot.data["decisions"]
    assert decision["decision"] == "approved" and decision["note"] == "go ahead"
    assert decision["sender"].startswith("cli:")
    done = cli.wait(no, lambda s: s.meta.state == WorkState.DONE)
    assert done.snapshot is not None
    assert done.snapshot.data["decisions"][0]["decision"] == "rejected"
    assert "needs approval" not in cli("list").stdout


def test_signal_from_the_cli_with_a_payload(cli: Cli, collector: dict[str, str]) -> None:
    work_id = enqueue(cli, {"names": ["webhook"]})
    sent = cli("signal", work_id, "webhook", "--payload", '{"status": 200}')
    assert sent.code == 0 and sent.stdout == (
        f"{work_id}: signal webhook sent (kept until a step receives it)\n"
    )
    assert "signals     1 kept for a later step" in cli("status", work_id, "--human").stdout
    start_worker(cli, "--engines", "collector", env=collector)
    done = cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    assert done.snapshot is not None
    assert [r["payload"] for r in done.snapshot.data["received"]] == [{"status": 200}]


def test_bad_signals_are_refused_with_one_line(cli: Cli, collector: dict[str, str]) -> None:
    work_id = enqueue(cli, {})
    assert cli("cancel", work_id).code == 0
    cases = [
        (("signal", "no-such-item", "go"), "error: unknown work id 'no-such-item'"),
        (("signal", work_id, "go"), f"error: work {work_id} is cancelled; it takes no more"),
        (("approve", work_id), f"error: work {work_id} is cancelled"),
        (("reject", work_id, "--note", "x" * 5000), "error: note must be at most 4000"),
        (("signal", work_id, "bad name"), "error: invalid signal name 'bad name'"),
        (("signal", work_id, "go", "--payload", "[1]"), "error: --payload must be a JSON object"),
        (("signal", work_id, "go", "--payload", '{"x": NaN}'), "error: --payload"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2, (args, result)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    pending = json.loads(cli("status", work_id).stdout)["meta"]["pending_signals"]
    assert pending == 0


def test_enqueue_takes_a_step_timeout(cli: Cli, collector: dict[str, str]) -> None:
    work_id = cli("enqueue", "--engine", "collector", "--step-timeout", "5m").stdout.strip()
    assert json.loads(cli("status", work_id).stdout)["item"]["step_timeout"] == 300.0
    for bad, message in (
        ("0", "error: --step-timeout must be between 1ms and 1d, not 0 seconds"),
        ("2d", "error: --step-timeout must be between 1ms and 1d"),
        ("soon", "error: --step-timeout: "),
    ):
        result = cli("enqueue", "--engine", "collector", "--step-timeout", bad)
        assert result.code == 2 and result.stderr.startswith(message), result
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    listed = json.loads(cli("list", "--json").stdout)["items"]
    assert [m["work_id"] for m in listed] == [work_id]  # bad input wrote nothing


def test_pause_and_resume_from_the_cli(cli: Cli, collector: dict[str, str]) -> None:
    work_id = enqueue(cli, {"names": ["go"]})
    paused = cli("pause", work_id)
    assert paused.code == 0 and paused.stdout.startswith(f"{work_id}: paused")
    assert "paused      by operator" in cli("status", work_id, "--human").stdout
    again = cli("pause", work_id)
    assert again.code == 1 and again.stderr == f"error: work {work_id} is already paused\n"
    start_worker(cli, "--engines", "collector", env=collector)
    assert cli("signal", work_id, "go").code == 0  # kept while paused
    resumed = cli("resume", work_id)
    assert resumed.code == 0 and resumed.stdout.startswith(f"{work_id}: resumed")
    cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    missing = cli("resume", "no-such-item")
    assert missing.code == 2 and missing.stderr.startswith("error: unknown work id")


def test_a_budget_from_the_cli(cli: Cli, collector: dict[str, str]) -> None:
    made = cli(
        "enqueue", "--engine", "metered", "--payload", '{"steps": 4, "charge": 2}', "--budget", "3"
    )
    work_id = made.stdout.strip()
    start_worker(cli, "--engines", "metered", env=collector)
    cli.wait(work_id, lambda s: s.meta.state == WorkState.PAUSED)
    assert any(
        line.startswith(work_id) and "budget exceeded" in line
        for line in cli("list").stdout.splitlines()
    )
    shown = cli("budget", work_id)
    assert shown.code == 0
    assert shown.stdout == f"{work_id}: budget exceeded; steps 2, spent 4/3; exceeded: cost\n"
    human = cli("status", work_id, "--human").stdout
    assert "budget      steps 2, spent 4/3; exceeded: cost" in human
    raised = cli("budget", work_id, "--add", "10", "--resume")
    assert raised.code == 0 and "/13" in raised.stdout  # it may have run a step already
    done = cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    assert done.meta.budget is not None and done.meta.budget.spent == 8.0
    for args, message in (
        (("budget", work_id, "--resume"), "error: --resume goes with --add"),
        (("budget", work_id, "--add-runtime", "soon"), "error: --add-runtime: "),
        (("enqueue", "--engine", "metered", "--max-steps", "0"), "error: "),
        (("enqueue", "--engine", "metered", "--max-runtime", "0s"), "error: --max-runtime must"),
        (("budget", "no-such-item", "--add", "1"), "error: unknown work id"),
    ):
        result = cli(*args)
        assert result.code == 2 and result.stderr.startswith(message), (args, result)
