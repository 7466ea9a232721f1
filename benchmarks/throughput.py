"""1. Step throughput (Roost steps/s vs SAQ chained jobs) and 6. CPU per 1,000 steps.

Both sides do the same work on the same kind of server (``appendonly yes``, ``appendfsync
everysec``): ``items`` items of ``steps`` steps, each step persisting a ~220-byte state.
Roost's engine keeps the state in its snapshot, committed after every step; on SAQ each step
is a job that hands the state to the next step's job (``benchmarks.worker.chain``). Only user
steps count: Roost's init commit is not a step.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from benchmarks.core import STATE_PAD, Row, Target, bench_state, median
from benchmarks.runs import RunResult, roost_drain, saq_drain
from roost.runtime import Registry, get_plugin_manager

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "throughput"
CLI_TARGET = 0.97
"""The ``roost worker`` CLI should cost under 3% of the library worker's rate."""


def _configs(ctx: Context) -> dict[str, dict[str, Any]]:
    work = {"items": ctx.sizes["items"], "steps": ctx.sizes["steps"], "appendonly": True}
    roost = {"kind": "roost", **work, "payload": {"pad": STATE_PAD}}
    saq = {"kind": "saq", **work}
    c_hi = ctx.sizes["concurrency_high"]
    out: dict[str, dict[str, Any]] = {
        "saq c10": {**saq, "concurrency": 10},
        "roost c10": {**roost, "concurrency": 10},
        "roost 2x c10": {**roost, "concurrency": 10, "procs": 2},
        f"roost c{c_hi}": {**roost, "concurrency": c_hi},
        f"roost cli c{c_hi}": {**roost, "concurrency": c_hi, "cli": True},
        # The CLI's baseline: a library worker with the plugins the CLI loads (installed
        # observers such as roost-otel's tracer), so the pair differs by the CLI alone.
        f"roost c{c_hi} plugins": {**roost, "concurrency": c_hi, "ROOST_BENCH_PLUGINS": "1"},
    }
    if not ctx.quick:
        out["saq 2x c10"] = {**saq, "concurrency": 10, "procs": 2}
        out[f"saq c{c_hi}"] = {**saq, "concurrency": c_hi}
        out["roost c10 inline=0"] = {**roost, "concurrency": 10, "ROOST_INLINE_STEPS": "0"}
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
        return [r.step_rate for r in results[name]]

    def rate(name: str) -> float:
        return median(rates(name))

    def paired(name: str, base: str) -> list[float]:
        return [a / b for a, b in zip(rates(name), rates(base), strict=True)]

    items, steps = ctx.sizes["items"], ctx.sizes["steps"]
    c_hi = ctx.sizes["concurrency_high"]
    note = (
        f"{items} items x {steps} steps = {items * steps} user steps (init not counted), "
        f"a {len(json.dumps(bench_state()))}-byte state saved every step; both servers "
        "appendonly yes, appendfsync everysec; SAQ: one job per step, handing the state "
        "to the next step's job"
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
                f"SAQ chained jobs steps/s, 1 process, {label}",
                Target("ratio", ">=", 1.0),
                note,
                samples=rates(roost),
                extra={
                    "baseline_samples": rates(saq),
                    "paired_ratios": paired(roost, saq),
                    "runs": _dump(results[roost]),
                    "baseline_runs": _dump(results[saq]),
                },
            )
        )
    cli, lib, bare = f"roost cli c{c_hi}", f"roost c{c_hi} plugins", f"roost c{c_hi}"
    ctx.add(
        Row(
            GROUP,
            f"steps/s, roost worker CLI, 1 process, c{c_hi}",
            rate(cli),
            "steps/s",
            rate(lib),
            f"Roost run_worker steps/s, same plugins, 1 process, c{c_hi}",
            Target("ratio", ">=", CLI_TARGET),
            "the `roost worker` process (its output to a file, as under a supervisor) "
            "against a library worker with the same installed plugins "
            f"({_plugins()}) in the same run; without plugins: "
            f"{rate(bare):.0f} steps/s ({rate(cli) / rate(bare):.2f}x); "
            + _cpu_per_step(results, cli, lib, bare),
            samples=rates(cli),
            extra={
                "baseline_samples": rates(lib),
                "paired_ratios": paired(cli, lib),
                "paired_ratios_no_plugins": paired(cli, bare),
                "runs": _dump(results[cli]),
                "baseline_runs": _dump(results[lib]),
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
                "paired_ratios": paired("roost 2x c10", "roost c10"),
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
                "SAQ chained jobs steps/s, 1 process, c10",
                None,
                "every step goes back through the queue, like a SAQ chain (no target)",
                samples=rates("roost c10 inline=0"),
                extra={"runs": _dump(results["roost c10 inline=0"])},
            )
        )
    for who, cpu_of in (("worker", "worker_cpu"), ("server", "server_cpu")):
        roost_cpu = median([getattr(r, cpu_of) / r.steps * 1000 for r in results["roost c10"]])
        saq_cpu = median([getattr(r, cpu_of) / r.steps * 1000 for r in results["saq c10"]])
        ctx.add(
            Row(
                "cost",
                f"{who} CPU per 1,000 steps (c10)",
                roost_cpu,
                "CPU s",
                saq_cpu,
                f"{who} CPU per 1,000 SAQ chained steps (c10)",
                None,
                "user+system from /proc/<pid>/stat over the throughput runs (user steps; "
                "append-only file on)",
            )
        )


def _plugins() -> str:
    """The installed plugins' observers and event sinks, as both sides of the pair load them."""
    registry = Registry.load(get_plugin_manager(autoload=True))
    names = [type(p).__name__ for p in (*registry.observers, *registry.event_sinks)]
    return ", ".join(names) or "none"


def _cpu_per_step(results: dict[str, list[RunResult]], *names: str) -> str:
    """Worker CPU per step of each named config, for a row's note."""
    parts = [
        f"{name}: {median([r.worker_cpu / r.steps * 1000 for r in results[name]]):.3f} ms"
        for name in names
    ]
    return "worker CPU per step " + ", ".join(parts)


def _ceiling(runs: list[RunResult], one: float) -> str:
    """What two cores allow: every step costs worker + server CPU, measured in the c10 run."""
    per_step = median([(r.worker_cpu + r.server_cpu) / r.steps for r in runs])
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
    return f"SAQ chained, 2 processes: {two:.0f} steps/s ({two / one:.2f}x SAQ 1 process)"


def _dump(runs: list[RunResult]) -> list[dict[str, Any]]:
    return [
        {
            "rate": r.step_rate,
            "steps": r.steps,
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
