"""6. Cost: Redis commands and round trips per step, memory per finished item.

Commands and round trips: a drain run (concurrency 10) with the workers counting, client
side, every command they pack and every socket write (a round trip: one command, or one
pipeline) to Redis, background tasks included. The server's ``INFO commandstats`` counts
commands run inside Lua scripts as well, so "commands inside scripts" = all commands the
server ran minus the commands clients sent (the measuring process's polls and INFO calls
are taken out). "Script time" is the server's ``evalsha``/``fcall`` time (it includes the commands
the scripts run). The baseline is the same for a stock ``saq.Worker`` per no-op job.

Memory: the growth of the keyspace (``MEMORY USAGE`` of every key, all elements counted)
while ``memory_items`` items of one step finish (a snapshot of about 200 bytes), after
warm-up items made scripts and indexes exist, per item; the ``used_memory`` growth is in
the JSON too (it swings by a few hundred KB with allocator, Lua and client buffers). It
includes each item's keys, index entries and events (the stream is capped at
ROOST_EVENTS_MAXLEN, so their share stops growing there). Baseline: the same for a finished
raw SAQ job (SAQ keeps job records for its default ``ttl`` of 600 s).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from benchmarks.core import Row, Target
from benchmarks.procs import private_server, roost_cfg, start_workers
from benchmarks.runs import (
    RunResult,
    bench_items,
    data_memory,
    keyspace_bytes,
    poll_until,
    roost_drain,
    saq_drain,
    swarm_for,
)
from roost.redis.scripts import SCRIPT_NAMES, Scripts

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "cost"
SNAPSHOT_PAD = 25  # with a 32-character work id the stored snapshot is about 200 bytes
SKIP = ("info", "config|resetstat", "config|get", "zcard")


def _sum_counters(run: RunResult) -> Counter[str]:
    total: Counter[str] = Counter()
    for c in run.counters:
        total["commands"] += int(c.get("commands", 0))
        total["round_trips"] += int(c.get("round_trips", 0))
        for sha, n in c.get("evalsha", {}).items():
            total["sha:" + sha] += int(n)
    return total


def _server(run: RunResult) -> dict[str, float]:
    cmds: dict[str, dict[str, int]] = run.stats["commandstats"]
    executed = sum(v["calls"] for k, v in cmds.items() if k not in SKIP)
    zcard = cmds.get("zcard", {"calls": 0})["calls"] - run.polls
    scripts = sum(cmds.get(k, {"calls": 0})["calls"] for k in ("evalsha", "eval", "fcall"))
    script_usec = sum(cmds.get(k, {"usec": 0})["usec"] for k in ("evalsha", "eval", "fcall"))
    return {
        # Blocking reads still waiting at the end were sent but not yet executed.
        "executed": executed + max(zcard, 0) + run.stats["blocked_clients"],
        "scripts": scripts,
        "script_usec": script_usec,
        "reads": run.stats["total_reads_processed"] - run.polls,
    }


async def memory_per_item(ctx: Context) -> tuple[float, dict[str, Any]]:
    n = ctx.sizes["memory_items"]
    payload = {"steps": 1, "pad": SNAPSHOT_PAD}
    with private_server(ctx.tmp) as server:
        cfg = roost_cfg(server.url, ctx.tmp / "home", concurrency=50)
        worker = start_workers(ctx.log_dir, [cfg], label="mem")[0]
        try:
            worker.go()
            async with swarm_for(server.url, ctx) as swarm:
                client = swarm.client
                done = swarm.keys.state("done")
                await swarm.enqueue_many(bench_items(50, payload))

                async def settled(target: int) -> bool:
                    return int(await client.zcard(done)) >= target

                await poll_until(lambda: settled(50), workers=[worker])
                await asyncio.sleep(0.3)
                m0 = data_memory(await client.info("memory"))
                k0 = await keyspace_bytes(client)
                items = bench_items(n, payload)
                await swarm.enqueue_many(items)
                await poll_until(lambda: settled(50 + n), workers=[worker])
                await asyncio.sleep(0.3)
                m1 = data_memory(await client.info("memory"))
                k1 = await keyspace_bytes(client)
                wid = items[0].work_id
                usage = {
                    name: int(await client.memory_usage(key, samples=0) or 0)
                    for name, key in (
                        ("meta hash", swarm.keys.meta(wid)),
                        ("item json", swarm.keys.item(wid)),
                        ("snapshot", swarm.keys.snap(wid)),
                    )
                }
                snap_len = int(await client.strlen(swarm.keys.snap(wid)))
                events = int(await client.xlen(swarm.keys.events))
                stream = int(await client.memory_usage(swarm.keys.events, samples=0) or 0)
        finally:
            worker.kill()
    per_item = (k1 - k0) / n
    detail = {
        "used_memory_per_item": (m1 - m0) / n,
        "snapshot_bytes": snap_len,
        "key_memory_usage": usage,
        "events_per_item": events / (n + 50),
        "event_stream_bytes_per_item": stream / (n + 50),
        "items": n,
    }
    return per_item, detail


async def run(ctx: Context) -> None:
    items, steps = ctx.sizes["cost_items"], ctx.sizes["steps"]
    roost = await roost_drain(ctx, items=items, steps=steps, count=True)
    saq = await saq_drain(ctx, jobs=items * steps, count=True)
    rc, sc = _sum_counters(roost), _sum_counters(saq)
    rs, ss = _server(roost), _server(saq)
    per_r, per_s = roost.units, saq.units
    shas = _script_names()
    by_script = {
        shas.get(k[4:], k[4:]): round(v / per_r, 3) for k, v in rc.items() if k.startswith("sha:")
    }
    note = f"{items} items x {steps} steps, c10; per commit (init counts)"
    rows = [
        ("commands sent per step", rc["commands"] / per_r, sc["commands"] / per_s, "commands"),
        ("round trips per step", rc["round_trips"] / per_r, sc["round_trips"] / per_s, "trips"),
        ("script calls per step", rs["scripts"] / per_r, ss["scripts"] / per_s, "calls"),
        (
            "commands inside scripts per step",
            # A difference of two counters: clamp the noise of the measuring process's own
            # calls (SAQ's figure is about zero) so no negative count or ratio is printed.
            max(0.0, (rs["executed"] - rc["commands"]) / per_r),
            max(0.0, (ss["executed"] - sc["commands"]) / per_s),
            "commands",
        ),
        ("server script time per step", rs["script_usec"] / per_r, ss["script_usec"] / per_s, "us"),
    ]
    slowlog: dict[str, dict[str, float]] = roost.extra.get("slowlog", {})
    per_script = {
        name.removeprefix("script "): {
            "calls_per_step": round(v["calls"] / per_r, 3),
            "usec_per_call": round(v["usec"] / v["calls"], 1),
            "usec_per_step": round(v["usec"] / per_r, 1),
        }
        for name, v in sorted(slowlog.items(), key=lambda kv: -kv[1]["usec"])
        if v["calls"] and name.startswith("script ")
    }
    extras: dict[str, dict[str, Any]] = {
        "server script time per step": {"by_script": per_script},
        "script calls per step": {"scripts_per_step": by_script},
        "round trips per step": {
            "server_reads_per_step": rs["reads"] / per_r,
            "baseline_server_reads_per_job": ss["reads"] / per_s,
        },
    }
    for name, value, base, unit in rows:
        ctx.add(
            Row(
                GROUP,
                name,
                value,
                unit,
                base,
                "the same per raw SAQ job",
                None,
                note,
                extra=extras.get(name, {}),
            )
        )
    per_item, detail = await memory_per_item(ctx)
    ctx.add(
        Row(
            GROUP,
            "Redis memory per finished item",
            per_item,
            "bytes",
            saq.extra["keyspace_bytes"] / per_s,
            "per finished raw SAQ job (kept 600 s)",
            Target("value", "<=", 1536.0),
            f"{detail['items']} items, 2 commits each, {detail['snapshot_bytes']}-byte snapshot; "
            f"incl. {detail['events_per_item']:.1f} events/item "
            f"(~{detail['event_stream_bytes_per_item']:.0f} B, capped stream)",
            extra=detail,
        )
    )


def _script_names() -> dict[str, str]:
    import redis.asyncio as aioredis

    scripts = Scripts(aioredis.Redis())  # only hashes the sources; never connects
    return {scripts.sha(name): name for name in SCRIPT_NAMES}
