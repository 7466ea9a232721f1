"""1. Step throughput (Roost commits/s vs raw SAQ jobs/s) and 6. CPU per 1,000 steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.core import Row, Target, median
from benchmarks.runs import RunResult, roost_drain, saq_drain

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "throughput"


def _configs(ctx: Context) -> dict[str, dict[str, Any]]:
    items, steps = ctx.sizes["items"], ctx.sizes["steps"]
    jobs = items * steps // 2  # SAQ's rate is steady well before; keeps the run short
    c_hi = ctx.sizes["concurrency_high"]
    out: dict[str, dict[str, Any]] = {
        "saq c10": {"kind": "saq", "jobs": jobs, "concurrency": 10},
        "roost c10": {"kind": "roost", "items": items, "steps": steps, "concurrency": 10},
        "roost 2x c10": {
            "kind": "roost",
            "items": items,
            "steps": steps,
            "concurrency": 10,
            "procs": 2,
        },
    }
    if not ctx.quick:
        out["saq 2x c10"] = {"kind": "saq", "jobs": jobs, "concurrency": 10, "procs": 2}
        out[f"saq c{c_hi}"] = {"kind": "saq", "jobs": jobs, "concurrency": c_hi}
        out[f"roost c{c_hi}"] = {
            "kind": "roost",
            "items": items,
            "steps": steps,
            "concurrency": c_hi,
        }
        out["roost c10 inline=0"] = {
            "kind": "roost",
            "items": items,
            "steps": steps,
            "concurrency": 10,
            "ROOST_INLINE_STEPS": "0",
        }
    return out


async def _run(ctx: Context, cfg: dict[str, Any]) -> RunResult:
    cfg = dict(cfg)
    if cfg.pop("kind") == "saq":
        return await saq_drain(ctx, **cfg)
    return await roost_drain(ctx, **cfg)


async def run(ctx: Context) -> None:
    """Drain runs, repeated ``ctx.repeat`` times in interleaved order; medians reported."""
    configs = _configs(ctx)
    results: dict[str, list[RunResult]] = {name: [] for name in configs}
    for rep in range(ctx.repeat):
        order = list(configs) if rep % 2 == 0 else list(reversed(configs))
        for name in order:
            results[name].append(await _run(ctx, configs[name]))

    def rates(name: str) -> list[float]:
        return [r.rate for r in results[name]]

    def rate(name: str) -> float:
        return median(rates(name))

    c_hi = ctx.sizes["concurrency_high"]
    note = (
        f"{ctx.sizes['items']} items x {ctx.sizes['steps']} steps = "
        f"{ctx.sizes['items'] * (ctx.sizes['steps'] + 1)} commits (init counts); "
        f"SAQ: {ctx.sizes['items'] * ctx.sizes['steps'] // 2} no-op jobs"
    )
    pairs = [("c10", "roost c10", "saq c10")]
    if not ctx.quick:
        pairs.append((f"c{c_hi}", f"roost c{c_hi}", f"saq c{c_hi}"))
    for label, roost, saq in pairs:
        ctx.add(
            Row(
                GROUP,
                f"steps/s, 1 process, {label}",
                rate(roost),
                "steps/s",
                rate(saq),
                f"raw SAQ jobs/s, 1 process, {label}",
                Target("ratio", ">=", 1.0),
                note,
                samples=rates(roost),
                extra={
                    "baseline_samples": rates(saq),
                    "paired_ratios": [a / b for a, b in zip(rates(roost), rates(saq), strict=True)],
                    "runs": _dump(results[roost]),
                    "baseline_runs": _dump(results[saq]),
                },
            )
        )
    ctx.add(
        Row(
            GROUP,
            "steps/s, 2 processes, c10 each",
            rate("roost 2x c10"),
            "steps/s",
            rate("roost c10"),
            "Roost steps/s, 1 process, c10",
            Target("ratio", ">=", 1.6),
            _ceiling(results["roost c10"], rate("roost c10"))
            + _cores(results["roost c10"], results["roost 2x c10"])
            + _saq_two(results, rate),
            samples=rates("roost 2x c10"),
            extra={
                "paired_ratios": [
                    a / b for a, b in zip(rates("roost 2x c10"), rates("roost c10"), strict=True)
                ],
                "runs": _dump(results["roost 2x c10"]),
            },
        )
    )
    if "roost c10 inline=0" in results:
        ctx.add(
            Row(
                GROUP,
                "steps/s, 1 process, c10, ROOST_INLINE_STEPS=0",
                rate("roost c10 inline=0"),
                "steps/s",
                rate("saq c10"),
                "raw SAQ jobs/s, 1 process, c10",
                None,
                "every step goes back through the queue (no target: informational)",
                samples=rates("roost c10 inline=0"),
                extra={"runs": _dump(results["roost c10 inline=0"])},
            )
        )
    for who, cpu_of in (("worker", "worker_cpu"), ("server", "server_cpu")):
        roost_cpu = median([getattr(r, cpu_of) / r.units * 1000 for r in results["roost c10"]])
        saq_cpu = median([getattr(r, cpu_of) / r.units * 1000 for r in results["saq c10"]])
        ctx.add(
            Row(
                "cost",
                f"{who} CPU per 1,000 steps (c10)",
                roost_cpu,
                "CPU s",
                saq_cpu,
                f"{who} CPU per 1,000 raw SAQ jobs (c10)",
                None,
                "user+system from /proc/<pid>/stat over the drain run",
            )
        )


def _ceiling(runs: list[RunResult], one: float) -> str:
    """What two cores allow: every step costs worker + server CPU, measured in the c10 run."""
    per_step = median([(r.worker_cpu + r.server_cpu) / r.units for r in runs])
    if not per_step or not one:
        return ""
    ceiling = 2.0 / per_step
    return (
        f"CPU ceiling on 2 cores: 2 / {per_step * 1000:.2f} ms (worker + server per step) = "
        f"{ceiling:.0f} steps/s = {ceiling / one:.2f}x one process; "
    )


def _cores(one: list[RunResult], two: list[RunResult]) -> str:
    """How much CPU the runs got: a shared machine's other tenants show up here."""

    def part(runs: list[RunResult]) -> str:
        cores = median([r.cores_used for r in runs])
        waited = median([r.cpu_wait / r.wall for r in runs])
        return f"{cores:.2f} cores used, {waited:.2f} s/s waiting for a CPU"

    return f"1 process: {part(one)}; 2 processes: {part(two)}; "


def _saq_two(results: dict[str, list[RunResult]], rate: Any) -> str:
    if not results.get("saq 2x c10"):
        return ""
    two, one = rate("saq 2x c10"), rate("saq c10")
    return f"raw SAQ 2 processes: {two:.0f} jobs/s ({two / one:.2f}x SAQ 1 process)"


def _dump(runs: list[RunResult]) -> list[dict[str, Any]]:
    return [
        {
            "rate": r.rate,
            "units": r.units,
            "wall": r.wall,
            "worker_cpu": r.worker_cpu,
            "server_cpu": r.server_cpu,
            "cores_used": r.cores_used,
            "cpu_wait": r.cpu_wait,
            **r.extra,
        }
        for r in runs
    ]
