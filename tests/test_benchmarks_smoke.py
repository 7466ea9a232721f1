"""The benchmark suite runs end to end in its quick mode and reports well-formed results.

Only the shape of the results is checked, never a speed: regressions are caught by rerunning
the suite (see docs/performance.md), not by timed tests.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "enqueue",
    "throughput",
    "latency",
    "delay",
    "scale",
    "cost",
    "memory",
    "crash",
    "startup",
}
BENCHMARKS = [
    "enqueue",
    "throughput",
    "latency",
    "delay",
    "scale",
    "cost",
    "memory",
    "metrics",
    "crash",
    "peers",
    "startup",
]
"""The default set; ``profile`` (py-spy) and ``spread`` (a cluster) run only when named."""
INSTALL_PEERS = "uv run --group bench-peers python -m benchmarks peers"
PEER_ROWS = {
    "DBOS (SQLite) steps/s, 1 process, c50",
    "LangGraph (SQLite checkpointer) steps/s, 1 process, c50",
    "DBOS (SQLite) crash resume (restart -> killed items step again)",
    "LangGraph (SQLite checkpointer) crash resume (restart -> killed items step again)",
}
ROW_KEYS = {"group", "name", "value", "unit", "baseline", "baseline_name", "ratio", "target"}
EXPECTED = {
    "steps/s, 1 process, c10",
    "steps/s, roost worker CLI, 1 process, c50",
    "steps/s, 2 processes, c10 each",
    "enqueue, one at a time",
    "enqueue_many, one call",
    "enqueue to step start, p50",
    "enqueue to step start, p99",
    "step end to next step start, inline, p50",
    "step end to next step start, ROOST_INLINE_STEPS=0, p99",
    "delayed continuation lateness, p99",
    "recovery pass (recover_expired), 1,000 finished",
    "list_work(state=failed, limit=50), 1,000 finished",
    "status(work_id), 1,000 finished",
    "round trips per step",
    "commands inside scripts per step",
    "Redis memory per finished item",
    "worker CPU per 1,000 steps (c10)",
    "steps/s with Prometheus metrics on, c10",
    "crash resume (SIGKILL -> step committed elsewhere)",
    "crash resume, restart with the same ROOST_WORKER_ID (restart -> step committed)",
    "crash resume, no restart (SIGKILL -> step committed elsewhere, defaults)",
    "roost --help",
    "roost status ID",
}
# Smaller still than --quick, so the whole suite runs in well under 30 s.
TINY = [
    "items=60",
    "cost_items=30",
    "scale_sizes=[500,1000]",
    "scale_reps=3",
    "delay_range=[0.2,0.3]",
    "delay_saq_jobs=1",
    "latency_n=10",
    "memory_items=50",
]


def peers_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("dbos", "langgraph"))


def check_rows(rows: list[dict[str, object]]) -> None:
    names = {row["name"] for row in rows}
    assert len(names) == len(rows), "row names are unique"
    for row in rows:
        assert ROW_KEYS <= set(row), row
        value = row["value"]
        assert isinstance(value, int | float) and math.isfinite(value), row
        if row["baseline"]:
            assert row["ratio"] == pytest.approx(value / row["baseline"]), row
        else:
            assert row["ratio"] is None, row
        if row["target"] is None:
            assert row["met"] is None, row
        else:
            assert isinstance(row["met"], bool), row


def run_suite(*args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_list_names_every_benchmark() -> None:
    proc = run_suite("--list", timeout=30)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line[:1].isalpha()]
    assert listed == [*BENCHMARKS, "profile", "spread"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_run_writes_a_table_and_well_formed_json(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    sets = [arg for item in TINY for arg in ("--set", item)]
    # The peers have a test of their own: with the peer set installed they take a minute.
    proc = run_suite("--quick", "--skip", "peers", "--json", str(out), "--markdown", str(md), *sets)
    assert proc.returncode == 0, proc.stderr[-4000:]

    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert result["quick"] is True
    assert result["benchmarks"] == [name for name in BENCHMARKS if name != "peers"]
    assert result["command"].startswith("uv run python -m benchmarks --quick")
    assert result["machine"]["cpus"] >= 1
    rows = result["rows"]
    assert {row["group"] for row in rows} == GROUPS
    names = {row["name"] for row in rows}
    assert EXPECTED <= names, EXPECTED - names
    check_rows(rows)
    for name in (
        "steps/s, 1 process, c10",
        "steps/s, roost worker CLI, 1 process, c50",
        "enqueue to step start, p50",
    ):
        row = next(r for r in rows if r["name"] == name)
        assert row["value"] > 0 and row["baseline"] > 0
    steps = next(r for r in rows if r["name"] == "steps/s, 1 process, c10")
    assert steps["baseline_name"].startswith("SAQ chained jobs")
    (roost_run,) = steps["extra"]["runs"]
    (saq_run,) = steps["extra"]["baseline_runs"]
    # User steps only on both sides: Roost's init commits are left out of its count.
    assert roost_run["steps"] == 60 * 2 == roost_run["units"] - 60
    assert saq_run["jobs"] == 60 * 2

    table = md.read_text().splitlines()
    assert table[0].startswith("| group | measurement | value | unit | baseline")
    assert len(table) == len(rows) + 2
    assert table[0] in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_peers_run_when_installed_else_say_how(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    sets = ["--set", "items=20", "--set", "peer_crash_items=30"]
    proc = run_suite("peers", "--quick", "--json", str(out), *sets, timeout=140)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    rows = result["rows"]
    if not peers_installed():
        skipped = [line for line in proc.stderr.splitlines() if "peers: skipped" in line]
        assert len(skipped) == 1 and INSTALL_PEERS in skipped[0], proc.stderr
        assert rows == []
        return
    assert {row["group"] for row in rows} == {"peers"}
    names = {row["name"] for row in rows}
    assert PEER_ROWS <= names, PEER_ROWS - names
    check_rows(rows)
    for row in rows:
        assert row["value"] > 0 and row["baseline"] > 0, row
        assert row["baseline_name"].startswith("Roost"), row


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_spread_reports_each_primarys_share(tmp_path: Path) -> None:
    out = tmp_path / "spread.json"
    proc = run_suite("spread", "--quick", "--json", str(out), "--set", "spread_items=40")
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    rows = result["rows"]
    check_rows(rows)
    shares = [
        r["value"] for r in rows if "share of script calls" in r["name"] and "P=16" in r["name"]
    ]
    assert len(shares) == 3 and sum(shares) == pytest.approx(100.0, abs=0.5)
    assert all(0 < share < 100 for share in shares)  # every primary took some of the load
    single = next(r for r in rows if r["name"].startswith("P=1: share"))
    assert single["value"] == pytest.approx(100.0)
    ceilings = [r for r in rows if "projected ceiling" in r["name"]]
    assert [r["value"] for r in ceilings] == sorted(r["value"] for r in ceilings)
