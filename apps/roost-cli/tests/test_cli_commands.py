"""The seed's commands against a private Redis, with a real `roost worker` process."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from cli_support import Cli, Target, read_until, start_worker, stop

from roost.redis.server import EmbeddedServer
from roost.runtime import WorkItem, WorkState
from roost.runtime.workspace import workspace_name

WORK_ID = re.compile(r"[0-9a-f]{32}")


def payload(target: Target, checks: int = 3, delay: float = 0.2) -> str:
    return json.dumps(
        {
            "url": target.url,
            "claim": "it answers",
            "checks_required": checks,
            "delay_seconds": delay,
        }
    )


def enqueue(cli: Cli, *args: str) -> str:
    result = cli("enqueue", "--engine", "watchlist", *args)
    assert result.code == 0, result
    assert WORK_ID.fullmatch(result.stdout.strip()), result.stdout
    assert result.stdout == result.stdout.strip() + "\n"  # only the id
    return result.stdout.strip()


def test_seed_flow_enqueue_worker_status_events_artifact(cli: Cli, target: Target) -> None:
    worker = start_worker(cli, "--engines", "watchlist")
    work_id = enqueue(cli, "--resource", "domain:127.0.0.1", "--payload", payload(target))
    lines = read_until(worker, "done")
    step_lines = [line for line in lines if work_id in line]
    assert [line.split()[1] for line in step_lines] == ["committed"] * 3 + ["done"]
    assert [line.split()[3] for line in step_lines] == ["v1", "v2", "v3", "v4"]

    result = cli("status", work_id)
    assert result.code == 0
    status = json.loads(result.stdout)
    assert set(status) == {"meta", "snapshot", "item"}
    assert status["meta"]["state"] == "done" and status["meta"]["step"] == "done"
    assert status["meta"]["resources"] == ["domain:127.0.0.1"]
    snap = status["snapshot"]
    assert snap["version"] == 4
    assert snap["data"]["checks_completed"] == 3 and snap["data"]["verdict"] == "reachable"
    obs = snap["data"]["observations"]
    assert [o["ok"] for o in obs] == [True] * 3 and obs[0]["status"] == 200
    [artifact] = snap["artifacts"]
    assert artifact["kind"] == "json"
    assert artifact["metadata"] == {"verdict": "reachable", "checks_completed": 3}
    assert status["item"]["payload"]["url"] == target.url
    assert target.hits == 3

    shown = cli("artifact-show", artifact["artifact_id"], "--ext", "json")
    assert shown.code == 0
    report = json.loads(shown.stdout)
    assert report["verdict"] == "reachable" and report["observations"] == obs
    assert cli("artifact-show", artifact["artifact_id"]).stdout == shown.stdout
    info = json.loads(cli("artifact-show", artifact["artifact_id"], "--info").stdout)
    assert info["metadata"] == artifact["metadata"] and info["size"] > 0

    events = cli("events", work_id, "--json")
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types[0] == "enqueued" and types[-1] == "done"
    assert types.count("committed") == 3
    table = cli("events")
    assert table.code == 0
    assert table.stdout.splitlines()[0].split() == [
        "TIME",
        "TYPE",
        "WORK",
        "ID",
        "VER",
        "STEP",
        "WORKER",
        "DETAILS",
    ]
    assert any(work_id in line and " done " in line for line in table.stdout.splitlines())

    out = stop(worker)
    assert worker.returncode == 0
    assert "worker stopped" in out and "4 steps committed" in out
    assert "Traceback" not in out


def test_human_forms(cli: Cli, target: Target) -> None:
    worker = start_worker(cli)
    work_id = enqueue(cli, "--payload", payload(target, checks=1))
    cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)

    tree = cli("status", work_id, "--human")
    assert tree.code == 0
    assert tree.stdout.splitlines()[0] == f"{work_id}  watchlist  done"
    assert re.search(r"updated\s+\d\d:\d\d:\d\d \((\d+s ago|now)\)", tree.stdout)
    assert "snapshot    v2  step done  finished" in tree.stdout
    assert "verdict: reachable" in tree.stdout and "artifact    " in tree.stdout

    listing = cli("list")
    head, row = listing.stdout.splitlines()[:2]
    assert head.split() == ["WORK", "ID", "ENGINE", "STATE", "STEP", "VER", "ATT", "UPDATED"]
    assert row.split()[:6] == [work_id, "watchlist", "done", "done", "2", "0/3"]
    assert json.loads(cli("list", "--json").stdout)["items"][0]["work_id"] == work_id
    assert cli("list", "--state", "queued").stdout.strip() == "no work items in state queued"
    assert cli("list", "--engine", "other").stdout.strip() == "no work items"

    engines = cli("engines")
    assert engines.code == 0
    assert re.search(
        r"^watchlist\s+roost_watchlist\.engine\.build_engine\s+ok$", engines.stdout, re.M
    )
    assert "live workers (namespace" in engines.stdout
    listed = json.loads(cli("engines", "--json").stdout)
    assert {
        "engine": "watchlist",
        "source": "roost_watchlist.engine.build_engine",
        "status": "ok",
        "error": None,
    } in listed["engines"]
    assert listed["broken_plugins"] == []
    [live] = listed["workers"]
    assert live["pid"] == worker.pid and live["engines"] == ["watchlist", "watchlist-fanout"]

    path = cli("workspace-path", work_id)
    assert path.code == 0
    assert path.stdout.strip() == str(cli.settings().workspaces / work_id)
    described = json.loads(cli("workspace-path", work_id, "--json").stdout)
    assert described == {"work_id": work_id, "path": path.stdout.strip(), "exists": False}
    stop(worker)


def test_list_pages_with_a_cursor(cli: Cli) -> None:
    ids = [
        enqueue(cli, "--payload", '{"url": "http://127.0.0.1:1/"}', "--delay", "1h")
        for _ in range(3)
    ]
    first = cli("list", "--limit", "2")
    assert len(first.stdout.splitlines()) == 3  # header + 2
    match = re.search(r"--cursor (\S+)", first.stderr)
    assert match
    second = cli("list", "--limit", "2", "--cursor", match.group(1))
    shown = {line.split()[0] for line in (first.stdout + second.stdout).splitlines()[1:]}
    assert set(ids) <= shown
    scheduled = json.loads(cli("list", "--state", "scheduled", "--json").stdout)
    assert {m["work_id"] for m in scheduled["items"]} == set(ids)


def test_enqueue_options(cli: Cli) -> None:
    body = '{"url": "http://127.0.0.1:1/"}'
    first = enqueue(cli, "--payload", body, "--idempotency-key", "k1", "--delay", "1h")
    again = enqueue(cli, "--payload", body, "--idempotency-key", "k1", "--delay", "1h")
    assert again == first
    work_id = enqueue(
        cli,
        "--payload",
        body,
        "--priority",
        "5",
        "--max-attempts",
        "7",
        "--delay",
        "90s",
        "--resource",
        "b",
        "--resource",
        "a",
    )
    status = cli.status(work_id)
    meta = status.meta
    assert meta.priority == 5
    assert status.item is not None and status.item.max_attempts == 7
    assert meta.resources == ["a", "b"] and meta.state == WorkState.SCHEDULED
    assert meta.due_at is not None and 80 < meta.due_at - time.time() < 95


def test_payload_from_a_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "payload.json"
    path.write_text('{"url": "http://127.0.0.1:1/", "checks_required": 2}')
    work_id = enqueue(cli, "--payload", f"@{path}", "--delay", "1h")
    item = cli.status(work_id).item
    assert item is not None and item.payload["checks_required"] == 2


def test_cancel_retry_replay_and_dead(
    cli: Cli, target: Target, failing_engine: dict[str, str]
) -> None:
    waiting = enqueue(cli, "--payload", payload(target), "--delay", "1h")
    cancelled = cli("cancel", waiting)
    assert cancelled.code == 0 and cancelled.stdout.startswith(f"{waiting}: cancelled")

    worker = start_worker(cli, env={**failing_engine, "ROOST_MAX_ATTEMPTS": "1"})
    broken = cli("enqueue", "--engine", "fails").stdout.strip()
    cli.wait(broken, lambda s: s.meta.state == WorkState.DEAD)
    dead = cli("dead")
    assert dead.code == 0
    row = next(line for line in dead.stdout.splitlines() if broken in line)
    assert "ValueError: boom on attempt 1" in row
    assert json.loads(cli("dead", "--json").stdout)["items"][0]["work_id"] == broken
    retried = json.loads(cli("retry", broken, "--json").stdout)
    assert retried["work_id"] == broken and retried["state"] in ("queued", "running", "dead")
    cli.wait(broken, lambda s: s.meta.state == WorkState.DEAD)

    done = enqueue(cli, "--payload", payload(target, checks=1))
    cli.wait(done, lambda s: s.meta.state == WorkState.DONE)
    copy = cli("replay", done, "--as-new", "--version", "0")
    assert copy.code == 0
    new_id = copy.stdout.strip()
    assert WORK_ID.fullmatch(new_id) and new_id != done
    final = cli.wait(new_id, lambda s: s.meta.state == WorkState.DONE)
    assert final.snapshot is not None and final.snapshot.data["checks_completed"] == 1
    again = cli("replay", done, "--version", "0")
    assert again.stdout.strip() == done
    final = cli.wait(done, lambda s: s.meta.state == WorkState.DONE and s.meta.version > 2)
    assert final.snapshot is not None and final.snapshot.data["checks_completed"] == 1
    stop(worker)


def test_events_follow_tails_and_ctrl_c_exits_0(cli: Cli, target: Target) -> None:
    follower = cli.spawn("events", "--follow", "--json")
    time.sleep(2.5)  # let it start following (it prints nothing while there are no events)
    work_id = enqueue(cli, "--payload", payload(target, checks=1), "--delay", "1h")
    lines = read_until(follower, '"enqueued"')
    event = json.loads(lines[-1])
    assert event["type"] == "enqueued" and event["work_id"] == work_id
    cli("cancel", work_id)
    lines = read_until(follower, '"cancelled"')
    out = stop(follower, signal.SIGINT)
    assert follower.returncode == 0
    assert "Traceback" not in out and "Aborted" not in out


def test_events_follow_exits_0_when_uv_run_echoes_the_interrupt(cli: Cli) -> None:
    follower = cli.spawn("events", "--follow")
    read_until(follower, "following new events; Ctrl-C to stop")
    follower.send_signal(signal.SIGINT)
    time.sleep(0.2)
    if follower.poll() is None:
        follower.send_signal(signal.SIGINT)
    assert follower.wait(30) == 0


def test_server_commands_on_the_embedded_default(cli: Cli, roost_home: Path) -> None:
    env = {"ROOST_REDIS_URL": "", "ROOST_HOME": str(roost_home)}
    assert "stopped" in cli("server", "status", env=env).stdout
    started = cli("server", "start", env=env)
    assert started.code == 0 and "running: redis://127.0.0.1:" in started.stdout
    status = json.loads(cli("server", "status", "--json", env=env).stdout)
    assert status["state"] == "running" and status["url"].startswith("redis://127.0.0.1:")
    assert cli("list", env=env).code == 0  # the CLI uses it
    stopped = cli("server", "stop", env=env)
    assert stopped.code == 0 and f"stopped (pid {status['pid']})" in stopped.stdout
    assert "stopped" in cli("server", "status", env=env).stdout
    assert cli("server", "stop", env=env).stdout.strip() == "embedded server not running"


def test_server_status_names_roost_redis_url(cli: Cli) -> None:
    result = cli("server", "status")
    assert "ROOST_REDIS_URL is set" in result.stdout


def test_server_commands_never_show_the_redis_password(cli: Cli) -> None:
    env = {"ROOST_REDIS_URL": "redis://user:hunter2@127.0.0.1:1/0"}
    start = cli("server", "start", env=env)
    assert (
        start.stdout
        == "ROOST_REDIS_URL is set: Roost uses redis://***@127.0.0.1:1/0; nothing to start\n"
    )
    status = cli("server", "status", env=env)
    assert "Roost uses redis://***@127.0.0.1:1/0, not this server" in status.stdout
    as_json = cli("server", "status", "--json", env=env)
    assert json.loads(as_json.stdout)["redis_url"] == "redis://***@127.0.0.1:1/0"
    for result in (start, status, as_json):
        assert result.code == 0 and "hunter2" not in result.stdout + result.stderr


def test_ui_without_the_console_says_how_to_install(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "roost.console", None)  # makes the import fail
    result = cli("ui")
    assert result.code == 1
    assert "uv sync" in result.stderr and "pip install 'roost-cli[console]'" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_ui_refuses_a_public_host_without_token(cli: Cli) -> None:
    result = cli("ui", "--host", "0.0.0.0")
    assert result.code == 2 and "refusing to serve the console on 0.0.0.0" in result.stderr


def test_ui_serves_the_console(cli: Cli) -> None:
    proc = cli.spawn("ui", "--port", "0")
    lines = read_until(proc, "Roost console on http://127.0.0.1:")
    url = re.search(r"(http://127\.0\.0\.1:\d+/)", lines[-1])
    assert url
    import urllib.request

    with urllib.request.urlopen(url.group(1) + "api/health", timeout=10) as response:
        assert response.status == 200
    stop(proc, signal.SIGINT)
    assert proc.returncode == 0


def test_engines_does_not_start_the_embedded_server(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    env = {"ROOST_REDIS_URL": "", "ROOST_HOME": str(home)}
    result = cli("engines", env=env)
    assert result.code == 0
    assert "live workers: unknown (the embedded Redis is not running)" in result.stdout
    body = json.loads(cli("engines", "--json", env=env).stdout)
    assert body["workers"] is None and body["redis"] is None
    assert EmbeddedServer(home / "redis").status().state == "stopped"


def test_engines_with_an_unreachable_url_still_lists_engines(cli: Cli) -> None:
    result = cli("engines", "--json", env={"ROOST_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.code == 0
    body = json.loads(result.stdout)
    assert body["workers"] is None and "cannot reach Redis" in body["note"]
    assert [e["engine"] for e in body["engines"]] == ["watchlist", "watchlist-fanout"]


@pytest.mark.parametrize("work_id", ["A:B/C", "x/../../../escaped", "Upper.Case@host"])
def test_workspace_path_of_an_odd_id_is_one_directory_under_the_root(
    cli: Cli, work_id: str
) -> None:
    cli.swarm_call(lambda s: s.enqueue_many([WorkItem(work_id=work_id, engine="watchlist")]))
    result = cli("workspace-path", work_id)
    assert result.code == 0, result.stderr
    path = Path(result.stdout.strip())
    root = cli.settings().workspaces
    assert path.parent == root
    assert path.name == workspace_name(work_id) and "/" not in path.name
    assert json.loads(cli("workspace-path", work_id, "--json").stdout)["path"] == str(path)


def test_status_human_shows_an_error_a_later_attempt_got_past_as_past(
    cli: Cli, failing_engine: dict[str, str]
) -> None:
    worker = start_worker(cli, env=failing_engine)
    work_id = cli("enqueue", "--engine", "fails", "--payload", '{"mode": "once"}').stdout.strip()
    cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    stop(worker)
    tree = cli("status", work_id, "--human").stdout
    [line] = [line for line in tree.splitlines() if "error" in line]
    assert line.split()[:2] == ["past", "error"]
    assert "ValueError: boom on attempt 1 (attempt 1," in line
    assert line.endswith("a later attempt succeeded)")
    raw = json.loads(cli("status", work_id).stdout)
    assert raw["meta"]["last_error"]["type"] == "ValueError"  # the JSON keeps it as it was
