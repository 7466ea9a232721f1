"""Load spread of a partitioned namespace over a cluster's primaries (issue 15).

On a local 3-primary cluster (no replicas), ``items`` items of ``steps`` steps each run to
done on two worker processes, once in a namespace of one partition (the baseline: one
primary serves every commit) and once in a namespace of ``partitions`` partitions. For each
primary: its share of Roost's script calls (``FCALL`` in ``INFO commandstats``) and of the
run's Redis CPU (``used_cpu_sys + used_cpu_user``), and the server CPU per commit. From the
busiest primary's CPU per commit: the projected ceiling of commits/s for 3, 6 and 12
primaries (one core per primary, load spread as measured), next to one server's.

Run it by name: ``uv run python -m benchmarks spread`` (not in the default set: it starts
a cluster). The machine's other load shows in the CPU numbers; compare within one run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.core import Row
from benchmarks.procs import roost_cfg, start_workers, stop_all
from benchmarks.runs import bench_items, poll_until, swarm_for
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.pool import configured_binary

if TYPE_CHECKING:
    from benchmarks.core import Context
    from roost.redis.server.nodes import Node

GROUP = "spread"
PARTITIONS = 16


def _usage(node: Node) -> tuple[int, float]:
    """(FCALL calls, CPU seconds) of one node so far."""
    stats = node.info("commandstats")
    fcall = stats.get("cmdstat_fcall", {})
    calls = int(fcall.get("calls", 0)) if isinstance(fcall, dict) else 0
    cpu = node.info("cpu")
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


async def _run(
    ctx: Context, group: ClusterGroup, namespace: str, partitions: int
) -> list[tuple[int, float]]:
    """Run the items to done; per primary, the (FCALL calls, CPU seconds) it spent."""
    items, steps = ctx.sizes["spread_items"], ctx.sizes["spread_steps"]
    env = {"ROOST_PARTITIONS": str(partitions), "ROOST_INLINE_STEPS": "0"}
    cfgs = [
        roost_cfg(group.url, ctx.tmp / "home", namespace=namespace, concurrency=20, **env)
        for _ in range(2)
    ]
    primaries = group.primaries()
    async with swarm_for(group.url, ctx, namespace=namespace, partitions=partitions) as swarm:
        await swarm.enqueue_many(bench_items(1, {"steps": 0}))  # records P; loads the library
        workers = start_workers(ctx.log_dir, cfgs, label=f"spread-{partitions}-")
        try:
            before = [_usage(n) for n in primaries]
            for worker in workers:
                worker.go()
            await swarm.enqueue_many(bench_items(items, {"steps": steps}))

            async def finished() -> bool:
                return (await swarm.counts())["done"] >= items + 1

            await poll_until(finished, workers=workers)
            after = [_usage(n) for n in primaries]
        finally:
            stop_all(workers)
    return [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)]


async def run(ctx: Context) -> None:
    group = ClusterGroup(ctx.tmp / "spread-cluster", replicas=0, binary=configured_binary())
    group.start()
    try:
        single = await _run(ctx, group, "spread1", 1)
        spread = await _run(ctx, group, "spread16", PARTITIONS)
    finally:
        group.close()
    commits = ctx.sizes["spread_items"] * ctx.sizes["spread_steps"]
    one_cpu = max(cpu for _, cpu in single)  # the namespace's primary
    one_ceiling = commits / one_cpu if one_cpu else 0.0
    calls = sum(c for c, _ in spread) or 1
    cpu = sum(s for _, s in spread) or 1e-9
    per_primary: dict[str, Any] = {}
    for i, (c, s) in enumerate(spread):
        per_primary[f"primary {i}"] = {
            "fcall_share": round(c / calls, 3),
            "cpu_share": round(s / cpu, 3),
            "cpu_us_per_commit": round(s / commits * 1e6, 1),
        }
        ctx.add(
            Row(
                GROUP,
                f"P={PARTITIONS}: primary {i} share of script calls",
                c / calls * 100.0,
                "%",
                note="issue 15 goal: each primary 20-45%",
                extra=per_primary[f"primary {i}"],
            )
        )
    busiest = max(s for _, s in spread) / commits  # CPU seconds per commit, busiest primary
    share = max(s for _, s in spread) / cpu
    for n in (3, 6, 12):
        # The busiest primary saturates first: it takes `share` of the load with 3 primaries,
        # and (load spread as evenly) 3/n of that with n.
        ceiling = 1.0 / (busiest * 3.0 / n) if busiest else 0.0
        ctx.add(
            Row(
                GROUP,
                f"P={PARTITIONS}: projected ceiling, {n} primaries",
                ceiling,
                "commits/s",
                baseline=one_ceiling,
                baseline_name="one primary (P=1), same run",
                note=f"busiest primary's share {share:.2f}; one core per primary",
            )
        )
    ctx.add(
        Row(
            GROUP,
            f"P={PARTITIONS}: server CPU per commit, all primaries",
            cpu / commits * 1e6,
            "us",
            baseline=one_cpu / commits * 1e6,
            baseline_name="P=1 (its primary), same run",
            note="what partitions cost: per-partition polling, promotion, heartbeats",
        )
    )
    ctx.add(
        Row(
            GROUP,
            "P=1: share of script calls on the namespace's primary",
            max(c for c, _ in single) / (sum(c for c, _ in single) or 1) * 100.0,
            "%",
            note="baseline: one namespace of one partition lives on one primary",
        )
    )
