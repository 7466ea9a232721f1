"""The observability page and the Grafana dashboard name exactly the metrics Roost exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from roost.redis.metrics import QueueReading, WorkerMetrics, reading_metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "observability" / "grafana-dashboard.json"
PAGE = ROOT / "docs" / "observability.md"


def exported() -> dict[str, set[str]]:
    """Every metric family Roost exports, with the sample names Prometheus sees."""
    families: dict[str, set[str]] = {}
    for family in WorkerMetrics(CollectorRegistry(), slots={"e": 1}).registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        families[name] = {name} | {s.name for s in family.samples}
    reading = QueueReading("q", {"queued": 1}, 0.0, 1, 0, {"e": (1, 0, 1)})
    for family in reading_metrics(reading):
        families[family.name] = {family.name}
    return families


def test_the_page_documents_every_metric_and_no_other() -> None:
    families = exported()
    text = PAGE.read_text()
    documented = set(re.findall(r"^\| `(roost_[a-z_]+)` \|", text, re.M))
    assert documented == set(families)


def test_the_dashboard_uses_only_exported_metrics_and_covers_the_issue() -> None:
    samples = set().union(*exported().values())
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(roost_[a-z_]+)", e)}
    assert used <= samples, used - samples
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in (
        "Steps committed by engine",
        "Failed attempts by engine and outcome",
        "Dead letters by engine (per hour)",
        "Step duration",
        "Enqueue to start",
        "Items by state",
        "Oldest queued item age",
        "Workers",
    ):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # Fleet gauges come from every worker and the console: the dashboard never sums them.
    for e in exprs:
        for gauge in ("roost_work_items", "roost_live_workers", "roost_oldest_queued_age"):
            assert f"sum({gauge}" not in e and f"sum by (state) ({gauge}" not in e
