"""`roost workers`, and the notes on queued work whose engine no live worker runs."""

from __future__ import annotations

import json
import time
from typing import Any

from cli_support import Cli, Target, start_worker, stop

from roost.cli.fleet import HEADERS
from roost.runtime import WorkState

NOTE = "no live worker runs engine watchlist (queue roost): 1 queued, waiting for one"


def _after_a_beat_with_nothing_running(cli: Cli) -> dict[str, Any]:
    """``workers --json`` once a heartbeat (every second) has been sent since the item ended."""
    deadline = time.monotonic() + 10
    while True:
        body = json.loads(cli("workers", "--json").stdout)
        if all(w["running"] == 0 for w in body["workers"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_work_no_live_worker_runs_is_reported_until_a_worker_for_it_starts(
    cli: Cli, target: Target
) -> None:
    result = cli("workers")
    assert result.code == 0 and result.stdout.startswith("no live workers (namespace t")
    body = json.dumps({"url": target.url, "checks_required": 1})
    work_id = cli("enqueue", "--engine", "watchlist", "--payload", body).stdout.strip()

    status = cli("status", work_id)
    assert status.code == 0 and status.stderr.strip() == NOTE
    assert json.loads(status.stdout)["meta"]["state"] == "queued"  # stdout stays JSON
    listing = cli("list")
    assert listing.code == 0 and NOTE in listing.stderr.splitlines()
    assert json.loads(cli("list", "--json").stdout)["items"][0]["work_id"] == work_id
    result = cli("workers")
    assert result.code == 0 and result.stdout.splitlines()[-1] == NOTE
    assert json.loads(cli("workers", "--json").stdout) == {
        "workers": [],
        "unserved": {"roost": {"watchlist": 1}},
    }

    worker = start_worker(cli, "--engines", "watchlist=2")
    cli.wait(work_id, lambda s: s.meta.state == WorkState.DONE)
    body = _after_a_beat_with_nothing_running(cli)
    assert body["unserved"] == {}
    [live] = body["workers"]
    assert live["pid"] == worker.pid and live["queue"] == "roost"
    assert (live["engines"], live["slots"], live["concurrency"]) == (
        ["watchlist"],
        {"watchlist": 2},
        2,
    )
    assert 0 <= live["heartbeat_age"] < 15
    table = cli("workers").stdout.splitlines()
    assert table[0].split() == list(HEADERS)
    row = table[1].split()
    assert row[0] == live["worker_id"] and row[1].endswith(f"/{worker.pid}")
    assert row[2:5] == ["roost", "watchlist=2", "0/2"] and row[-1] == "healthy"
    assert len(table) == 2  # nothing waits for a worker any more
    assert cli("status", work_id).stderr == ""
    stop(worker)
