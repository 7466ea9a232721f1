"""The scenario list, its two sizes (``quick`` for CI, ``full`` for the runner), and the table."""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost_testkit.chaos.base import ChaosEnv, Result
from roost_testkit.chaos.children import ChildrenConfig, children_under_kills
from roost_testkit.chaos.contention import (
    EnqueueConfig,
    ResourceConfig,
    idempotent_enqueue,
    resource_contention,
)
from roost_testkit.chaos.drain import DrainConfig, InflightConfig, drain_in_flight, graceful_drain
from roost_testkit.chaos.failover import FailoverConfig, failover_soak
from roost_testkit.chaos.faults import PoisonConfig, StallConfig, poison_items, stalled_worker
from roost_testkit.chaos.lagging import LagConfig, lagging_replica
from roost_testkit.chaos.misbehave import MisbehaveConfig, redis_misbehaves
from roost_testkit.chaos.resume import ResumeConfig, resume_in_seconds
from roost_testkit.chaos.schedules import ScheduleConfig, scheduled_ticks
from roost_testkit.chaos.signals import SignalConfig, signals_under_kills
from roost_testkit.chaos.soak import AwayConfig, SoakConfig, kill_soak, redis_away


@dataclass(frozen=True)
class Scenario:
    key: str
    run: Callable[[ChaosEnv, Any], Awaitable[Result]]
    config: Any


def tier(full: bool) -> list[Scenario]:
    """The scenarios of the CI tier (``full=False``) or of the larger tier."""
    if not full:
        return [
            Scenario("kill-soak", kill_soak, SoakConfig()),
            Scenario("drain", graceful_drain, DrainConfig()),
            Scenario("drain-inflight", drain_in_flight, InflightConfig()),
            Scenario("redis-away", redis_away, AwayConfig(how="pause")),
            Scenario("misbehave", redis_misbehaves, MisbehaveConfig()),
            Scenario("stall", stalled_worker, StallConfig()),
            Scenario("resume", resume_in_seconds, ResumeConfig()),
            Scenario("poison", poison_items, PoisonConfig()),
            Scenario("resources", resource_contention, ResourceConfig()),
            Scenario("enqueue", idempotent_enqueue, EnqueueConfig()),
            Scenario("schedules", scheduled_ticks, ScheduleConfig()),
            Scenario("failover-sentinel", failover_soak, FailoverConfig(topology="sentinel")),
            Scenario("failover-cluster", failover_soak, FailoverConfig(topology="cluster")),
            Scenario(
                "failover-partitioned",
                failover_soak,
                FailoverConfig(topology="cluster", partitions=16, items=300, kills=1, reshards=1),
            ),
            Scenario("lagging-replica", lagging_replica, LagConfig()),
            Scenario("signals", signals_under_kills, SignalConfig()),
            Scenario("children", children_under_kills, ChildrenConfig()),
        ]
    return [
        Scenario(
            "kill-soak",
            kill_soak,
            SoakConfig(items=10_000, workers=4, concurrency=8, timeout=3600.0),
        ),
        Scenario("drain", graceful_drain, DrainConfig(short_items=8)),
        Scenario("drain-inflight", drain_in_flight, InflightConfig(items=8)),
        Scenario("drain-load", drain_in_flight, InflightConfig(how="load", rounds=10)),
        Scenario("redis-away", redis_away, AwayConfig(how="pause", items=400)),
        Scenario("redis-away-stop", redis_away, AwayConfig(how="stop", items=400)),
        Scenario(
            "misbehave",
            redis_misbehaves,
            MisbehaveConfig(workers=3, open_items=72, fault_seconds=6.0, settle=4.0),
        ),
        Scenario("stall", stalled_worker, StallConfig(others=6)),
        Scenario(
            "resume",
            resume_in_seconds,
            ResumeConfig(items=200, steps=10, concurrency=20, rounds=5, timeout=900.0),
        ),
        Scenario("poison", poison_items, PoisonConfig(healthy=20, workers=3)),
        Scenario("resources", resource_contention, ResourceConfig(steps=3, disk_only=40)),
        Scenario(
            "enqueue", idempotent_enqueue, EnqueueConfig(processes=20, connections=1, keys=50)
        ),
        Scenario(
            "schedules",
            scheduled_ticks,
            ScheduleConfig(schedules=20, workers=4, seconds=300.0, timeout=300.0),
        ),
        *(
            Scenario(
                f"failover-{topology}{'' if wait else '-async'}",
                failover_soak,
                FailoverConfig(
                    topology=topology,
                    items=3000,
                    steps=5,
                    concurrency=12,
                    kills=2,
                    wait_replicas=wait,
                    timeout=1800.0,
                ),
            )
            for topology in ("sentinel", "cluster")
            for wait in (1, 0)
        ),
        Scenario(
            "failover-partitioned",
            failover_soak,
            FailoverConfig(
                topology="cluster",
                partitions=16,
                items=3000,
                steps=5,
                concurrency=12,
                kills=2,
                reshards=2,
                timeout=1800.0,
            ),
        ),
        *(
            Scenario(
                f"lagging-replica{'' if wait else '-async'}",
                lagging_replica,
                LagConfig(items=600, steps=5, concurrency=12, kills=2, wait_replicas=wait),
            )
            for wait in (1, 0)
        ),
        Scenario(
            "signals",
            signals_under_kills,
            SignalConfig(items=200, signals=6, workers=4, send_over=120.0, timeout=300.0),
        ),
        Scenario(
            "children",
            children_under_kills,
            ChildrenConfig(parents=20, children=50, workers=4, kills=20, timeout=600.0),
        ),
    ]


async def run(scenario: Scenario, root: Path) -> Result:
    """Run one scenario in its own directory; a crash is a failed result, never a leak."""
    env = ChaosEnv(root / scenario.key)
    started = time.monotonic()
    try:
        result = await scenario.run(env, scenario.config)
    except Exception as exc:
        result = Result(scenario.key)
        tb = traceback.format_exc().strip().splitlines()[-6:]
        result.failures.append(f"scenario crashed: {exc!r}\n" + "\n".join(tb))
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


COLUMNS = (
    "scenario",
    "items",
    "steps committed",
    "duplicates",
    "fenced commits refused",
    "max resume delay (s)",
    "dead letters",
    "time (s)",
    "result",
)


def table(results: list[Result]) -> str:
    """A Markdown table, one row per scenario."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS)]
    for r in results:
        rows.append(
            (
                r.name,
                f"{r.items:,}",
                f"{r.commits:,}",
                str(r.duplicates),
                str(r.fenced),
                "-" if r.max_resume is None else f"{r.max_resume:.2f}",
                str(r.dead),
                f"{r.seconds:.0f}",
                "pass" if r.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            c.ljust(w) if row[1] != "---" else "-" * w for c, w in zip(row, widths, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
