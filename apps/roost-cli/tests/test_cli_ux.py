"""The operator's CLI: version, help, colour and tables, times, --wait, --type, bulk retry,
where the data lives (-v, the project root)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from cli_support import Cli, read_until, start_worker, stop
from test_cli_readme import commands

from roost.cli import render
from roost.runtime import RuntimeEvent, WorkItem, WorkState

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.stdout == f"roost {version('roost-cli')}\n"


def test_shell_completion_is_on(cli: Cli) -> None:
    # The installed command, with typer's shell detection off so that the shell is the one
    # named here, not whichever process happens to have started the tests.
    roost = Path(sys.executable).with_name("roost")
    env = {**os.environ, **cli.env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = subprocess.run(
        [str(roost), "--show-completion", "bash"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "_roost_completion()" in done.stdout
    assert "_ROOST_COMPLETE=complete_bash" in done.stdout


@pytest.mark.parametrize("name", ["roost", *sorted(commands())])
def test_help_has_no_bool_metavars_and_no_seed(cli: Cli, name: str) -> None:
    result = cli(*name.split()[1:], "--help")
    assert result.code == 0
    assert "<bool>" not in result.stdout
    assert "seed" not in result.stdout.lower()


def test_status_help_says_json_is_the_default_in_plain_words(cli: Cli) -> None:
    text = " ".join(cli("status", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "status prints JSON unless you ask for --human" in text


def test_tables_are_plain_when_piped_and_rich_on_a_terminal(cli: Cli) -> None:
    items = [WorkItem(engine="watchlist", payload={"url": "http://127.0.0.1:1/"})]
    cli.swarm_call(lambda s: s.enqueue_many(items, delay_seconds=3600))
    piped = cli("list")
    assert not ANSI.search(piped.stdout)
    assert piped.stdout.splitlines()[0].split() == [
        "WORK",
        "ID",
        "ENGINE",
        "STATE",
        "STEP",
        "VER",
        "ATT",
        "UPDATED",
    ]
    tty = cli("list", env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert ANSI.search(tty.stdout)
    assert "\x1b[34mscheduled" in tty.stdout  # the state in its colour
    assert "─" in tty.stdout  # a rich table rule
    plain_tty = cli("list", env={"TTY_COMPATIBLE": "1", "COLUMNS": "160", "NO_COLOR": "1"})
    assert not ANSI.search(plain_tty.stdout.replace("\x1b[1m", "").replace("\x1b[0m", ""))
    assert "scheduled" in plain_tty.stdout


def test_human_output_shows_times_not_epoch_numbers() -> None:
    now = time.time()
    event = RuntimeEvent(
        type="progress",
        work_id="w",
        data={"ts": now - 65, "due": (now + 35) * 1000, "checked_at": now - 5, "count": 3},
    )
    details = render.event_details(event)
    assert str(int(now - 65)) not in details and "ts=" in details
    # A time on another day than now shows its date too (a run near midnight).
    assert re.search(r"ts=(\S+ )?\S+ \(1m ago\)", details), details
    assert re.search(r"due=(\S+ )?\S+ \(in 3\ds\)", details), details
    assert "count=3" in details
    assert render.show_value("created_at", now - 3600, now=now).endswith("(1h ago)")
    assert render.show_value("version", 1_800_000_000, now=now) == "1800000000"


def test_events_follow_columns_do_not_drift(cli: Cli) -> None:
    cli.swarm_call(
        lambda s: s.enqueue_many([WorkItem(work_id="short", engine="watchlist")], delay_seconds=60)
    )
    follower = cli.spawn("events", "--follow")
    read_until(follower, "following new events")
    ids = ["x" * 40, "y"]
    for work_id in ids:
        item = WorkItem(work_id=work_id, engine="watchlist")
        cli.swarm_call(lambda s, item=item: s.enqueue_many([item], delay_seconds=60))
    for work_id in ids:
        read_until(follower, work_id)
    cli("cancel", "short")
    read_until(follower, "cancelled")
    out = stop(follower)
    lines = [line for line in out.splitlines() if line and not line.startswith("following")]
    header = lines[0]
    starts = {name: header.index(name) for name in ("TYPE", "WORK ID", "VER")}
    for line in lines[1:]:
        assert line[starts["TYPE"] - 2 : starts["TYPE"]] == "  ", line
        for name in ("TYPE", "WORK ID"):
            assert line[starts[name]] != " " and line[starts[name] - 1] == " ", (name, line)
    # A 40-character id pushes only its own line; the next lines are back in place.
    assert lines[-1][starts["VER"]] != " " and "cancelled" in lines[-1]


def test_events_type_filters(cli: Cli, failing_engine: dict[str, str]) -> None:
    worker = start_worker(cli, env={**failing_engine, "ROOST_MAX_ATTEMPTS": "2"})
    failing = cli("enqueue", "--engine", "fails").stdout.strip()
    fine = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "ok"}').stdout.strip()
    cli.wait(failing, lambda s: s.meta.state == WorkState.DEAD)
    cli.wait(fine, lambda s: s.meta.state == WorkState.DONE)
    stop(worker)
    dead = [
        json.loads(line) for line in cli("events", "--type", "dead", "--json").stdout.splitlines()
    ]
    assert [(e["type"], e["work_id"]) for e in dead] == [("dead", failing)]
    both = cli("events", "--type", "retrying", "--type", "done", "--json").stdout.splitlines()
    assert [json.loads(line)["type"] for line in both] == ["retrying", "done"]
    one = cli("events", fine, "--type", "committed,done", "--json").stdout.splitlines()
    assert [json.loads(line)["type"] for line in one] == ["committed", "done"]
    first = json.loads(cli("events", "--json", "--limit", "1", "--after", "0-0").stdout)
    after = cli("events", "--type", "done", "--after", first["id"], "--json").stdout.splitlines()
    assert [json.loads(line)["work_id"] for line in after] == [fine]
    human = cli("events", "--type", "dead").stdout
    assert "dead" in human and "retry in" not in human  # a dead item is not retried


def test_enqueue_wait(cli: Cli, failing_engine: dict[str, str]) -> None:
    worker = start_worker(cli, env={**failing_engine, "ROOST_MAX_ATTEMPTS": "1"})
    done = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "ok"}', "--wait")
    assert done.code == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["meta"]["state"] == "done" and set(status) == {"meta", "snapshot", "item"}
    assert done.stderr.startswith("enqueued ")
    dead = cli("enqueue", "--engine", "fails", "--wait")
    assert dead.code == 1
    assert json.loads(dead.stdout)["meta"]["state"] == "dead"
    last = dead.stderr.splitlines()[-1]
    assert re.fullmatch(r"error: work \w+ ended dead: ValueError: boom on attempt 1", last)
    stop(worker)
    started = time.monotonic()
    waiting = cli("enqueue", "--engine", "fails", "--wait", "--wait-timeout", "500ms")
    assert waiting.code == 1
    assert time.monotonic() - started < 10
    assert json.loads(waiting.stdout)["meta"]["state"] == "queued"
    assert "is still queued after 500ms; it goes on" in waiting.stderr.splitlines()[-1]


def test_retry_all_dead(cli: Cli, failing_engine: dict[str, str]) -> None:
    worker = start_worker(cli, env={**failing_engine, "ROOST_MAX_ATTEMPTS": "1"})
    fails = [cli("enqueue", "--engine", "fails").stdout.strip() for _ in range(3)]
    for work_id in fails:
        cli.wait(work_id, lambda s: s.meta.state == WorkState.DEAD)
    stop(worker)
    other = cli("retry", "--all-dead", "--engine", "watchlist")
    assert other.code == 0 and other.stdout.strip() == "retried 0 dead items of engine watchlist"
    result = cli("retry", "--all-dead", "--engine", "fails", "--json")
    assert result.code == 0
    body = json.loads(result.stdout)
    assert sorted(body["retried"]) == sorted(fails) and body["skipped"] == []
    assert all(cli.status(w).meta.state == WorkState.QUEUED for w in fails)
    assert cli("dead").stdout.strip() == "no dead letters"
    assert cli("retry", "--all-dead").stdout.strip() == "retried 0 dead items"


def test_v_says_which_server_namespace_and_home(cli: Cli) -> None:
    result = cli("list", "-v", env={"ROOST_REDIS_URL": cli.env["ROOST_REDIS_URL"]})
    assert result.code == 0
    settings = cli.settings()
    assert result.stderr.splitlines()[0] == (
        f"roost: redis {settings.redis_url} (ROOST_REDIS_URL); namespace "
        f"{settings.namespace}; queue roost; home {settings.home}"
    )
    assert "roost: redis" not in cli("list").stderr  # only when asked


def test_passwords_are_not_shown(cli: Cli) -> None:
    url = cli.env["ROOST_REDIS_URL"].replace("redis://", "redis://user:hunter2@")
    result = cli("-v", "engines", env={"ROOST_REDIS_URL": url})
    assert "hunter2" not in result.stderr + result.stdout
    assert "redis://***@" in result.stderr


def test_every_directory_of_a_project_uses_its_root_home(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "plugins" / "mine").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["plugins/*"]\n')
    for cwd in (root, root / "plugins", root / "plugins" / "mine"):
        result = cli.proc("-v", "server", "status", "--json", cwd=cwd, unset=("ROOST_HOME",))
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["data_dir"] == str(root / ".roost" / "redis")
        assert result.stderr.splitlines()[0].endswith(f"home {root / '.roost'}")
