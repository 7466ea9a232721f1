"""7. Metrics cost: steps/s of a worker serving Prometheus metrics vs the same worker without.

Both sides drain the same items (``items`` x ``steps``, concurrency 10, append-only file on)
in the same run, interleaved and repeated; the "on" worker records every step in its
``WorkerMetrics`` (a step observer: counters and histograms in memory) and serves
``/metrics`` from its thread, scraped every ``metrics_scrape`` seconds (15, a usual
Prometheus interval; ``--set metrics_scrape=1`` for a stress run) from inside the worker
process (each scrape also reads the queue's gauges: one pipelined Redis round trip). Goal:
under 3% of steps/s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.core import STATE_PAD, Row, Target, median
from benchmarks.runs import RunResult, roost_drain

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "cost"
TARGET = 0.97
"""Metrics on should cost under 3% of steps/s."""


async def run(ctx: Context) -> None:
    """Drain with and without metrics, ``ctx.repeat`` times each, in interleaved order."""
    work = {
        "items": ctx.sizes["items"],
        "steps": ctx.sizes["steps"],
        "appendonly": True,
        "concurrency": 10,
        "payload": {"pad": STATE_PAD},
    }
    scrape = str(ctx.sizes["metrics_scrape"])
    configs: dict[str, dict[str, str]] = {
        "off": {},
        "on": {"ROOST_BENCH_METRICS": "1", "ROOST_BENCH_SCRAPE": scrape},
    }
    results: dict[str, list[RunResult]] = {name: [] for name in configs}
    for rep in range(ctx.repeat):
        order = list(configs) if rep % 2 == 0 else list(reversed(configs))
        for name in order:
            results[name].append(await roost_drain(ctx, **work, **configs[name]))
    on = [r.step_rate for r in results["on"]]
    off = [r.step_rate for r in results["off"]]
    cpu = {
        name: median([r.worker_cpu / r.steps * 1000 for r in runs])
        for name, runs in results.items()
    }
    ctx.add(
        Row(
            GROUP,
            "steps/s with Prometheus metrics on, c10",
            median(on),
            "steps/s",
            median(off),
            "steps/s with metrics off, c10",
            Target("ratio", ">=", TARGET),
            f"a worker with WorkerMetrics and its /metrics server, scraped every {scrape} s "
            "from inside the worker process, against the same worker without, same run; "
            f"worker CPU per step: on {cpu['on']:.3f} ms, "
            f"off {cpu['off']:.3f} ms",
            samples=on,
            extra={
                "baseline_samples": off,
                "paired_ratios": [a / b for a, b in zip(on, off, strict=True)],
            },
        )
    )
