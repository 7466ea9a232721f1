"""Drain runs: enqueue everything, start the workers together, time until all is done.

A Roost run enqueues ``items`` items of ``steps`` no-op steps with ``enqueue_many``, then
releases the workers at once. It commits ``steps + 1`` snapshots per item (``init_snapshot``
and every ``step``); its throughput is user *steps* (the init commit is not one) per second
from the first step start (the first event after the release) to the last commit (the last
event), both stamped by the server. A SAQ run enqueues ``jobs`` no-op jobs, or ``items``
chains of ``steps`` jobs that carry a state from one job to the next, and times them the same
way from the jobs' own ``started`` and ``completed`` stamps. Workers, and the measuring
process, each have their own process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import saq

from benchmarks.core import bench_state
from benchmarks.engine import ENGINE_ID
from benchmarks.procs import (
    AnyWorker,
    cpu_seconds,
    cpu_wait_seconds,
    private_server,
    roost_cfg,
    saq_cfg,
    spawn_workers,
    stop_all,
    wait_connected,
)
from roost.redis import RedisSwarm
from roost.runtime import Registry, RoostSettings, WorkItem, get_plugin_manager

if TYPE_CHECKING:
    from benchmarks.core import Context

POLL = 0.02
SLOWLOG_MAX = 1_000_000
DRAIN_TIMEOUT = 120.0


@dataclass
class RunResult:
    """What one drain run measured."""

    kind: str
    units: int  # commits (Roost) or jobs (SAQ)
    steps: int  # user steps: commits less init commits (Roost) or jobs (SAQ)
    wall: float  # first start -> last commit/completion, seconds
    worker_cpu: float
    server_cpu: float
    cpu_wait: float = 0.0  # seconds workers + server were runnable but had no CPU
    stats: dict[str, Any] = field(default_factory=dict[str, Any])  # INFO deltas
    counters: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    memory_delta: int = 0
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def cores_used(self) -> float:
        """Worker + server CPU over the wall time of the run."""
        return (self.worker_cpu + self.server_cpu) / self.wall if self.wall > 0 else 0.0

    @property
    def rate(self) -> float:
        """Commits (Roost) or jobs (SAQ) per second."""
        return self.units / self.wall if self.wall > 0 else 0.0

    @property
    def step_rate(self) -> float:
        """User steps per second."""
        return self.steps / self.wall if self.wall > 0 else 0.0


def settings_for(url: str, ctx: Context, namespace: str = "bench", **over: Any) -> RoostSettings:
    return RoostSettings.from_env(
        {}, redis_url=url, namespace=namespace, home=ctx.tmp / "home", **over
    )


def swarm_for(url: str, ctx: Context, namespace: str = "bench", **over: Any) -> RedisSwarm:
    registry = Registry.load(get_plugin_manager(autoload=False))
    return RedisSwarm(settings_for(url, ctx, namespace, **over), registry=registry)


def data_memory(mem: dict[str, Any]) -> int:
    """``used_memory`` less client buffers (which swing by tens of KB between reads)."""
    return int(mem["used_memory"]) - int(mem.get("mem_clients_normal", 0))


async def keyspace_bytes(client: aioredis.Redis) -> int:
    """Sum of ``MEMORY USAGE`` (every element counted) over all keys.

    Unlike ``used_memory`` it does not swing with allocator, Lua and client buffers, so it
    is the figure for per-item memory at a few thousand items.
    """
    total = 0
    batch: list[Any] = []

    async def flush() -> int:
        async with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        batch.clear()
        return sum(int(s or 0) for s in sizes)

    async for key in client.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 500:
            total += await flush()
    if batch:
        total += await flush()
    return total


async def server_stats(client: aioredis.Redis) -> dict[str, Any]:
    """INFO stats, commandstats and memory in one dict."""
    stats = await client.info("stats")
    cmds = await client.info("commandstats")
    mem = await client.info("memory")
    clients = await client.info("clients")
    return {
        "blocked_clients": int(clients["blocked_clients"]),
        "total_commands_processed": int(stats["total_commands_processed"]),
        "total_reads_processed": int(stats["total_reads_processed"]),
        "total_writes_processed": int(stats["total_writes_processed"]),
        "used_memory": data_memory(mem),
        "commandstats": {
            k.removeprefix("cmdstat_"): {"calls": int(v["calls"]), "usec": int(v["usec"])}
            for k, v in cmds.items()
        },
    }


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: after[k] - before[k] for k in after if k != "commandstats"}
    out["blocked_clients"] = after["blocked_clients"]  # a level, not a counter
    cmds: dict[str, dict[str, int]] = {}
    for name, v in after["commandstats"].items():
        b = before["commandstats"].get(name, {"calls": 0, "usec": 0})
        calls, usec = v["calls"] - b["calls"], v["usec"] - b["usec"]
        if calls:
            cmds[name] = {"calls": calls, "usec": usec}
    out["commandstats"] = cmds
    return out


async def poll_until(
    check: Any, within: float = DRAIN_TIMEOUT, workers: Sequence[AnyWorker] = ()
) -> int:
    """Poll ``check()`` every POLL seconds until true; return the number of polls.

    Raises at once if one of ``workers`` exited (with its log), else after ``within`` s.
    """
    polls = 0
    deadline = time.monotonic() + within
    while True:
        polls += 1
        if await check():
            return polls
        for w in workers:
            w.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark run did not finish within {within:g} s")
        await asyncio.sleep(POLL)


def slowlog_by_command(entries: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Calls and server microseconds per command; EVALSHA and FCALL split by script name."""
    from roost.redis.scripts import SCRIPT_NAMES, Scripts

    names = {Scripts(aioredis.Redis()).sha(n): n for n in SCRIPT_NAMES}
    out: dict[str, dict[str, float]] = {}
    for entry in entries:
        command = entry["command"]
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        parts = str(command).split()
        name = parts[0].upper() if parts else "?"
        if name in ("EVALSHA", "FCALL") and len(parts) > 1:
            name = "script " + names.get(parts[1], parts[1][:10])
        agg = out.setdefault(name, {"calls": 0, "usec": 0})
        agg["calls"] += 1
        agg["usec"] += int(entry["duration"])
    return out


def bench_items(n: int, payload: dict[str, Any]) -> list[WorkItem]:
    return [WorkItem(engine=ENGINE_ID, payload=payload) for _ in range(n)]


async def roost_drain(
    ctx: Context,
    *,
    items: int,
    steps: int,
    procs: int = 1,
    concurrency: int = 10,
    count: bool = False,
    payload: dict[str, Any] | None = None,
    slowlog: bool = False,
    on_start: Callable[[list[AnyWorker]], Any] | None = None,
    appendonly: bool = False,
    cli: bool = False,
    **env: str,
) -> RunResult:
    """Drain ``items`` items through ``procs`` Roost worker processes.

    With ``count``, workers count what they send; with ``count`` or ``slowlog`` the server
    logs every command's time (SLOWLOG with a 0 threshold), kept in ``extra["slowlog"]``.
    ``on_start(workers)`` runs just before the workers are released (a profiler attaches).
    ``appendonly`` turns the server's append-only file on (``appendfsync everysec``);
    ``cli`` runs ``roost worker`` processes instead of library workers (``run_worker``).
    """
    payload = {"steps": steps, **(payload or {})}
    slowlog = slowlog or count
    with private_server(ctx.tmp, appendonly=appendonly) as server:
        cfg = roost_cfg(
            server.url, ctx.tmp / "home", concurrency=concurrency, count=count, cli=cli, **env
        )
        workers = spawn_workers(ctx.log_dir, [cfg] * procs, label="roost")
        try:
            async with swarm_for(server.url, ctx) as swarm:
                client = swarm.client
                keys = swarm.keys
                done_key = keys.state("done")
                before_mem = await server_stats(client)
                await swarm.enqueue_many(bench_items(items, payload))
                wait_connected(workers)
                if slowlog:
                    await client.config_set("slowlog-max-len", SLOWLOG_MAX)
                    await client.config_set("slowlog-log-slower-than", 0)
                    await client.slowlog_reset()
                if on_start is not None:
                    await on_start(workers)
                await client.config_resetstat()
                before = await server_stats(client)
                scpu0 = cpu_seconds(server.pid)
                swait0 = cpu_wait_seconds(server.pid)
                t_go = time.time()
                for w in workers:
                    w.go()  # a CLI worker starts here, and returns once it takes work
                cpu0 = [w.cpu() for w in workers]
                wait0 = sum(w.cpu_wait() for w in workers) + swait0

                async def finished() -> bool:
                    return int(await client.zcard(done_key)) >= items

                polls = await poll_until(finished, workers=workers)
                worker_cpu = sum(w.cpu() - c for w, c in zip(workers, cpu0, strict=True))
                server_cpu = cpu_seconds(server.pid) - scpu0
                waited = sum(w.cpu_wait() for w in workers) + cpu_wait_seconds(server.pid) - wait0
                after = await server_stats(client)
                logged = await client.slowlog_get(SLOWLOG_MAX) if slowlog else []
                first = await client.xrange(keys.events, min=f"{int(t_go * 1000)}-0", count=1)
                last = await client.xrevrange(keys.events, count=1)
                stats_hash: dict[str, str] = await client.hgetall(keys.stats)
        finally:
            counters = stop_all(workers, graceful=count)
    commits = sum(int(v) for k, v in stats_hash.items() if k.endswith(":committed"))
    t_first = int(first[0][0].split("-")[0]) / 1000.0
    t_last = int(last[0][0].split("-")[0]) / 1000.0
    return RunResult(
        kind="roost-cli" if cli else "roost",
        units=commits,
        steps=commits - items,
        wall=t_last - t_first,
        worker_cpu=worker_cpu,
        server_cpu=server_cpu,
        cpu_wait=waited,
        stats=stats_delta(before, after),
        counters=counters,
        memory_delta=after["used_memory"] - before_mem["used_memory"],
        polls=polls,
        extra={
            "startup": t_first - t_go,
            "items": items,
            "commits_total": commits,
            "slowlog": slowlog_by_command(logged),
        },
    )


async def saq_enqueue_all(queue: saq.Queue, n: int, function: str = "noop") -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 500):
        jobs = await asyncio.gather(*(queue.enqueue(function) for _ in range(min(500, n - start))))
        ids += [j.id for j in jobs if j is not None]
    return ids


async def saq_enqueue_chains(queue: saq.Queue, items: int, steps: int) -> list[str]:
    """Enqueue the first job of ``items`` chains; return the ids of all their jobs.

    Each job runs one step and enqueues the next (``benchmarks.worker.chain``), under the
    key ``<item>.<step>``, so every id is known in advance.
    """
    state = bench_state()
    for start in range(0, items, 500):
        await asyncio.gather(
            *(
                queue.enqueue("chain", key=f"{i}.1", item=i, step=1, steps=steps, state=state)
                for i in range(start, min(items, start + 500))
            )
        )
    return [queue.job_id(f"{i}.{s}") for i in range(items) for s in range(1, steps + 1)]


async def saq_job_times(client: aioredis.Redis, ids: list[str]) -> tuple[float, float, int, int]:
    """(first started, last completed, completed, not completed) of SAQ job records.

    Times in epoch seconds. A job SAQ's own start-up sweep caught between its dequeue and
    its first status update ends "aborted" without running; it is not counted.
    """
    first, last = float("inf"), 0.0
    complete = other = 0
    for start in range(0, len(ids), 1000):
        for raw in await client.mget(ids[start : start + 1000]):
            job = json.loads(raw) if raw is not None else {}
            if job.get("status") != "complete":
                other += 1
                continue
            complete += 1
            first = min(first, job["started"] / 1000.0)
            last = max(last, job["completed"] / 1000.0)
    return first, last, complete, other


async def saq_drain(
    ctx: Context,
    *,
    jobs: int = 0,
    items: int = 0,
    steps: int = 0,
    procs: int = 1,
    concurrency: int = 10,
    count: bool = False,
    appendonly: bool = False,
) -> RunResult:
    """Drain jobs through ``procs`` stock ``saq.Worker`` processes.

    Either ``jobs`` independent no-op jobs, or ``items`` chains of ``steps`` jobs, each job
    one step that hands its state to the next (see ``benchmarks.worker.chain``).
    ``appendonly`` turns the server's append-only file on (``appendfsync everysec``).
    """
    with private_server(ctx.tmp, appendonly=appendonly) as server:
        cfg = saq_cfg(server.url, concurrency=concurrency, count=count)
        workers = spawn_workers(ctx.log_dir, [cfg] * procs, label="saq")
        try:
            queue = saq.Queue.from_url(server.url)
            client = aioredis.Redis.from_url(server.url)
            try:
                before_mem = await server_stats(client)
                keyspace0 = await keyspace_bytes(client) if count else 0
                if items:
                    ids = await saq_enqueue_chains(queue, items, steps)
                else:
                    ids = await saq_enqueue_all(queue, jobs)
                wait_connected(workers)
                incomplete = queue.namespace("incomplete")  # type: ignore[attr-defined]
                await client.config_resetstat()
                before = await server_stats(client)
                cpu0 = [w.cpu() for w in workers]
                scpu0 = cpu_seconds(server.pid)
                wait0 = sum(w.cpu_wait() for w in workers) + cpu_wait_seconds(server.pid)
                t_go = time.time()
                for w in workers:
                    w.go()

                async def finished() -> bool:
                    return int(await client.zcard(incomplete)) == 0

                polls = await poll_until(finished, workers=workers)
                worker_cpu = sum(w.cpu() - c for w, c in zip(workers, cpu0, strict=True))
                server_cpu = cpu_seconds(server.pid) - scpu0
                waited = sum(w.cpu_wait() for w in workers) + cpu_wait_seconds(server.pid) - wait0
                after = await server_stats(client)
                t_first, t_last, complete, other = await saq_job_times(client, ids)
                keyspace = await keyspace_bytes(client) - keyspace0 if count else 0
            finally:
                await queue.disconnect()
                await client.aclose()
        finally:
            counters = stop_all(workers, graceful=count)
    return RunResult(
        kind="saq",
        units=complete,
        steps=complete,
        wall=t_last - t_first,
        worker_cpu=worker_cpu,
        server_cpu=server_cpu,
        cpu_wait=waited,
        stats=stats_delta(before, after),
        counters=counters,
        memory_delta=after["used_memory"] - before_mem["used_memory"],
        polls=polls,
        extra={
            "startup": t_first - t_go,
            "jobs": len(ids),
            "not_completed": other,
            "keyspace_bytes": keyspace,
        },
    )
