"""`roost demo`: the resume story, end to end, in its own namespace."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from cli_support import Cli

from roost.redis import RedisSwarm
from roost.runtime import NotFound


@pytest.mark.slow
def test_demo_kills_a_worker_and_the_work_resumes(cli: Cli) -> None:
    started = time.monotonic()
    result = cli.proc("demo", "--checks", "2", "--delay", "0.5", timeout=110)
    took = time.monotonic() - started
    out = result.stdout
    assert result.code == 0, out + result.stderr
    assert "namespace  demo (kept apart from your own work)" in out
    assert "[4/6] SIGKILL worker A" in out
    assert "observations 1-1 kept as they were, 1 more made by worker B, none repeated" in out
    assert "The HTTP target served 2 requests: one per check, none repeated." in out
    found = re.search(r"enqueued watchlist job ([0-9a-f]{32})", out)
    assert found
    work_id = found.group(1)
    assert f"uv run roost --namespace demo status {work_id}" in out
    report = out[out.index("evidence report") :]
    body = json.loads(report[report.index("{") : report.index("\n}\n") + 2])
    assert body["verdict"] == "reachable" and body["checks_completed"] == 2
    assert body["work_id"] == work_id
    assert took < 60, f"the demo took {took:.1f}s"

    async def lookup() -> tuple[str, bool]:
        demo = cli.settings().model_copy(update={"namespace": "demo"})
        async with RedisSwarm(demo) as swarm:
            state = (await swarm.status(work_id)).meta.state
        async with RedisSwarm(cli.settings()) as swarm:  # the test's own namespace
            try:
                await swarm.status(work_id)
            except NotFound:
                return str(state), False
        return str(state), True

    assert asyncio.run(lookup()) == ("done", False)


@pytest.mark.slow
def test_demo_graceful_variant(cli: Cli) -> None:
    result = cli.proc("demo", "--checks", "2", "--delay", "0.2", "--graceful", timeout=110)
    assert result.code == 0, result.stdout + result.stderr
    assert "[4/6] SIGTERM worker A" in result.stdout and "a graceful stop" in result.stdout
    assert "worker A exited (code 0)" in result.stdout
    assert sum(cli.counts().values()) == 0  # nothing in the test's own namespace


def test_demo_respects_an_explicit_namespace(cli: Cli) -> None:
    result = cli("--namespace", "bad name", "demo")
    assert result.code == 2 and result.stderr.startswith("error: --namespace")


def test_the_approval_demo_waits_for_a_person_then_applies(cli: Cli) -> None:
    result = cli.proc("demo", "approval", timeout=110)
    out = result.stdout
    assert result.code == 0, out + result.stderr
    assert "needs approval" in out and "lease    none (waiting is a state, not a lease)" in out
    applied = json.loads(out[out.index("[4/4]") :].splitlines()[1])
    assert applied["decision"] == {"decision": "approved", "note": "go ahead"}
    assert applied["applied"] == applied["plan"] and len(applied["plan"]) == 3
    wrong = cli("demo", "nope")
    assert wrong.code == 2 and wrong.stderr == "error: unknown demo 'nope' (resume or approval)\n"
