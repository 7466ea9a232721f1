"""Child work in the CLI: `roost status` shows the tree, `roost list --parent` its children."""

from __future__ import annotations

import json

from cli_support import Cli, Target, start_worker, stop

from roost.runtime import WorkState


def test_status_shows_children_and_list_parent_lists_them(cli: Cli, target: Target) -> None:
    urls = [target.url, target.url + "a", target.url + "b"]
    parent = cli(
        "enqueue", "--engine", "watchlist-fanout", "--payload", json.dumps({"urls": urls})
    ).stdout.strip()
    worker = start_worker(cli)
    final = cli.wait(parent, lambda s: s.meta.state == WorkState.DONE)
    stop(worker)
    assert final.snapshot is not None
    assert final.snapshot.data["summary"]["verdicts"] == {"reachable": 3}

    human = cli("status", parent, "--human")
    assert human.code == 0
    assert "children    3/3 finished" in human.stdout
    body = json.loads(cli("status", parent).stdout)
    kids = [c["work_id"] for c in body["children"]]
    assert len(kids) == 3 and all(c["state"] == "done" for c in body["children"])
    assert all(c["parent_id"] == parent for c in body["children"])
    for kid in kids:
        assert f"    {kid}  watchlist  done" in human.stdout
        child = cli("status", kid, "--human").stdout
        assert f"  parent      {parent}" in child

    listed = cli("list", "--parent", parent)
    assert listed.code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == kids
    page = json.loads(cli("list", "--parent", parent, "--limit", "2", "--json").stdout)
    assert [m["work_id"] for m in page["items"]] == kids[:2]
    rest = json.loads(
        cli("list", "--parent", parent, "--cursor", page["next_cursor"], "--json").stdout
    )
    assert [m["work_id"] for m in rest["items"]] == kids[2:]
    assert "no work items" in cli("list", "--parent", parent, "--state", "dead").stdout


def test_list_parent_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    for args in (
        ("list", "--parent", "no such id!"),
        ("list", "--parent", "f" * 32),
        ("list", "--parent", "f" * 32, "--cursor", "x"),
    ):
        result = cli(*args)
        assert result.code == 2, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert result.stdout == ""
