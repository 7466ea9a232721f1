"""``roost schedule``: add, list, pause, resume, run-now, remove; bad input writes nothing."""

from __future__ import annotations

import json
import time

import pytest
from cli_support import Cli, Target, start_worker, stop

ADD = ("schedule", "add", "watch", "--engine", "watchlist")


def schedules(cli: Cli) -> list[dict[str, object]]:
    result = cli("schedule", "list", "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_add_list_pause_resume_run_now_remove(cli: Cli) -> None:
    added = cli(*ADD, "--payload", '{"url": "http://127.0.0.1:1/"}', "--every", "5m")
    assert added.code == 0, added.stderr
    assert added.stdout.startswith("schedule watch (every 5m, queue roost): next run ")
    cron = cli(
        "schedule", "add", "nine", "--engine", "watchlist", "--cron", "0 9 * * 1-5",
        "--timezone", "Europe/Berlin", "--missed", "skip", "--skip-if-running", "--json",
    )  # fmt: skip
    assert cron.code == 0, cron.stderr
    body = json.loads(cron.stdout)
    assert body["timezone"] == "Europe/Berlin" and body["missed"] == "skip"
    assert body["skip_if_running"] is True

    table = cli("schedule", "list")
    assert table.code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "WHEN", "ENGINE"]
    assert any(line.startswith("watch ") and "every 5m" in line for line in lines)
    assert any("cron 0 9 * * 1-5 (Europe/Berlin)" in line for line in lines)

    assert cli("schedule", "pause", "watch").stdout.strip().endswith(": paused")
    work_id = cli("schedule", "run-now", "watch").stdout.strip()
    assert len(work_id) == 32
    found = {s["name"]: s for s in schedules(cli)}
    assert found["watch"]["paused"] is True and found["watch"]["last_work_id"] == work_id
    assert found["watch"]["last_state"] == "queued" and found["watch"]["next_run"] is None
    assert "next run" in cli("schedule", "resume", "watch").stdout

    again = cli(*ADD, "--every", "1m")
    assert again.code == 1 and "schedule watch exists" in again.stderr
    replaced = cli(*ADD, "--every", "1m", "--replace", "--json")
    assert replaced.code == 0 and json.loads(replaced.stdout)["every"] == 60.0

    assert cli("schedule", "remove", "watch").stdout.strip() == "schedule watch removed"
    assert [s["name"] for s in schedules(cli)] == ["nine"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*ADD,), "give exactly one of --cron and --every"),
        ((*ADD, "--every", "1m", "--cron", "* * * * *"), "give exactly one"),
        ((*ADD, "--every", "0.5s"), "every must be between 1s and 365d"),
        ((*ADD, "--every", "later"), "not a duration"),
        ((*ADD, "--cron", "61 * * * *"), "cron expression '61 * * * *': Bad minute"),
        ((*ADD, "--cron", "* * * * *", "--timezone", "Mars/Base"), "unknown timezone"),
        ((*ADD, "--every", "1m", "--timezone", "UTC"), "--timezone applies to --cron only"),
        ((*ADD, "--every", "1m", "--missed", "sometimes"), "--missed must be run-once or skip"),
        ((*ADD, "--every", "1m", "--payload", "[1]"), "must be a JSON object"),
        ((*ADD, "--every", "1m", "--resource", "a b"), "invalid resource"),
        (("schedule", "add", "bad name", "--engine", "watchlist", "--every", "1m"), "invalid"),
        (("schedule", "add", "x", "--engine", "nope", "--every", "1m"), "unknown engine 'nope'"),
        (("schedule", "pause", "missing"), "unknown schedule 'missing'"),
        (("schedule", "resume", "missing"), "unknown schedule 'missing'"),
        (("schedule", "remove", "missing"), "unknown schedule 'missing'"),
        (("schedule", "run-now", "missing"), "unknown schedule 'missing'"),
        (("schedule", "pause", "no/../way?"), "invalid schedule name"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli: Cli, args: tuple[str, ...], message: str):
    result = cli(*args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert schedules(cli) == []
    assert cli.counts()["queued"] == 0


@pytest.mark.slow
def test_the_watchlist_runs_as_a_schedule(cli: Cli, target: Target) -> None:
    """The README's subsection: a watchlist check every few seconds on a running worker."""
    payload = json.dumps({"url": target.url, "checks_required": 1, "delay_seconds": 0})
    added = cli(*ADD, "--resource", "domain:127.0.0.1", "--payload", payload, "--every", "2s")
    assert added.code == 0, added.stderr
    worker = start_worker(cli, "--engines", "watchlist")
    deadline = time.monotonic() + 30
    found: dict[str, object] = {}
    while time.monotonic() < deadline:
        found = schedules(cli)[0]
        if int(str(found["fired"])) >= 2 and found["last_state"] == "done":
            break
        time.sleep(0.2)
    output = stop(worker)
    assert int(str(found["fired"])) >= 2, (found, output)
    assert found["last_state"] == "done"
    status = cli.status(str(found["last_work_id"]))
    assert status.snapshot is not None and status.snapshot.data["verdict"] == "reachable"
    assert target.hits >= 2
