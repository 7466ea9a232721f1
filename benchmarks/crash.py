"""7. Crash resume: SIGKILL a worker mid-step; time until another worker commits that step.

Three rows. *Lease expiry*: described below. *Restart with the same id*: one worker with
``ROOST_WORKER_ID`` and the default 30 s lease is SIGKILLed mid-step, and a new worker with
the same id is started at once: from its start (just before the fork, the server's
``TIME``) to the commit of the killed step (its event's server time). *No restart*: two
workers with the defaults (30 s lease, 5 s heartbeat timeout); the holder is SIGKILLed and
never replaced: from the kill to the other worker's commit.

Two workers run (lease TTL ``crash_ttl``). An item's first step hangs on its first attempt;
once it is running (leased, the step under way: its init snapshot is committed together
with that step) and ``kill_after`` seconds later, the worker holding its lease is
SIGKILLed, so the lease has most of a TTL left. Resume = the commit of that step (version 2)
by the other worker (its event's server time) minus the moment of the kill. The lease's
expiry at the kill is read too, so the row shows how long recovery took past that expiry.
Each trial replaces the killed worker afterwards.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from benchmarks.core import Row, Target, median
from benchmarks.engine import ENGINE_ID
from benchmarks.procs import WorkerProc, private_server, roost_cfg, start_workers, stop_all
from benchmarks.runs import swarm_for
from roost.redis import RedisSwarm
from roost.runtime import WorkState

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "crash"


async def _running(swarm: RedisSwarm, work_id: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        meta = (await swarm.status(work_id)).meta
        if meta.state == WorkState.RUNNING and meta.lease is not None:
            return meta
        await asyncio.sleep(0.01)
    raise TimeoutError("the item never started its first step")


async def _committed_at(swarm: RedisSwarm, work_id: str, version: int, within: float) -> float:
    """Server time (s) of the event that committed ``version``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for event in await swarm.events(work_id=work_id):
            if event.type in ("committed", "done") and event.version == version:
                return event.ts
        await asyncio.sleep(0.02)
    raise TimeoutError(f"version {version} of {work_id} was never committed")


async def trial(
    ctx: Context, swarm: RedisSwarm, workers: list[WorkerProc], ttl: float
) -> dict[str, float]:
    payload = {"steps": 1, "hang": 120, "hang_at": 1}
    work_id = await swarm.enqueue(ENGINE_ID, payload)
    meta = await _running(swarm, work_id)
    await asyncio.sleep(ctx.sizes["kill_after"])
    meta = (await swarm.status(work_id)).meta
    assert meta.lease is not None
    pid = int(meta.lease.worker_id.split(":")[1])
    victim = next(w for w in workers if w.pid == pid)
    t_kill = time.time()
    victim.kill()
    expires_in = meta.lease.expires_at - t_kill
    t_commit = await _committed_at(swarm, work_id, 2, within=ttl * 3 + 30)
    workers.remove(victim)
    resume = t_commit - t_kill
    return {"resume": resume, "expires_in": expires_in, "after_expiry": resume - expires_in}


async def _server_s(swarm: RedisSwarm) -> float:
    seconds, micros = await swarm.client.time()
    return seconds + micros / 1e6


async def _mid_step(swarm: RedisSwarm, work_id: str, ctx: Context) -> None:
    await _running(swarm, work_id)
    await asyncio.sleep(ctx.sizes["kill_after"])


async def restart_trial(ctx: Context, swarm: RedisSwarm, cfg: dict[str, Any]) -> dict[str, float]:
    """Kill the only worker mid-step, start one with its id: restart to commit."""
    workers = start_workers(ctx.log_dir, [cfg], label="crash-id")
    workers[0].go()
    try:
        payload = {"steps": 1, "hang": 120, "hang_at": 1}
        work_id = await swarm.enqueue(ENGINE_ID, payload)
        await _mid_step(swarm, work_id, ctx)
        t_kill = await _server_s(swarm)
        workers[0].kill()
        t_restart = await _server_s(swarm)
        workers += start_workers(ctx.log_dir, [cfg], label="crash-id")
        workers[-1].go()
        t_commit = await _committed_at(swarm, work_id, 2, within=120)
        return {"resume": t_commit - t_restart, "after_kill": t_commit - t_kill}
    finally:
        stop_all(workers, graceful=False)


async def vanish_trial(ctx: Context, swarm: RedisSwarm, cfg: dict[str, Any]) -> dict[str, float]:
    """Kill the holder of two workers (defaults), replace nobody: kill to commit."""
    workers = start_workers(ctx.log_dir, [cfg, cfg], label="crash-gone")
    for w in workers:
        w.go()
    try:
        payload = {"steps": 1, "hang": 120, "hang_at": 1}
        work_id = await swarm.enqueue(ENGINE_ID, payload)
        await _mid_step(swarm, work_id, ctx)
        meta = (await swarm.status(work_id)).meta
        assert meta.lease is not None
        pid = int(meta.lease.worker_id.split(":")[1])
        victim = next(w for w in workers if w.pid == pid)
        t_kill = await _server_s(swarm)
        victim.kill()
        t_commit = await _committed_at(swarm, work_id, 2, within=120)
        return {"resume": t_commit - t_kill}
    finally:
        stop_all(workers, graceful=False)


async def run_identity(ctx: Context) -> None:
    """The rows with the default lease TTL: restart with the same id, and no restart."""
    restarts: list[dict[str, float]] = []
    gone: list[dict[str, float]] = []
    ttl = 30.0
    with private_server(ctx.tmp) as server:
        async with swarm_for(server.url, ctx, namespace="crash-id") as swarm:
            for i in range(ctx.sizes["crash_trials"]):
                cfg = roost_cfg(
                    server.url, ctx.tmp / "home", namespace="crash-id", ROOST_WORKER_ID=f"w{i}"
                )
                restarts.append(await restart_trial(ctx, swarm, cfg))
        async with swarm_for(server.url, ctx, namespace="crash-gone") as swarm:
            for _ in range(ctx.sizes["crash_trials"]):
                cfg = roost_cfg(server.url, ctx.tmp / "home", namespace="crash-gone")
                gone.append(await vanish_trial(ctx, swarm, cfg))
    resume = median([r["resume"] for r in restarts])
    ctx.add(
        Row(
            GROUP,
            "crash resume, restart with the same ROOST_WORKER_ID (restart -> step committed)",
            resume,
            "s",
            ttl,
            "lease TTL (default)",
            Target("value", "<=", 2.0),
            f"median of {len(restarts)}; from the kill: "
            f"{median([r['after_kill'] for r in restarts]):.2f} s; the new worker is forked "
            "from a process that imported Roost (an interpreter's start is not included)",
            samples=[r["resume"] for r in restarts],
            extra={"trials": restarts},
        )
    )
    resume = median([r["resume"] for r in gone])
    ctx.add(
        Row(
            GROUP,
            "crash resume, no restart (SIGKILL -> step committed elsewhere, defaults)",
            resume,
            "s",
            ttl,
            "lease TTL (default)",
            Target("value", "<=", 10.0),
            f"median of {len(gone)}; ROOST_HEARTBEAT_TIMEOUT 5 s (default)",
            samples=[r["resume"] for r in gone],
            extra={"trials": gone},
        )
    )


async def run(ctx: Context) -> None:
    ttl = float(ctx.sizes["crash_ttl"])
    home = ctx.tmp / "home"
    results: list[dict[str, float]] = []
    with private_server(ctx.tmp) as server:
        # A heartbeat timeout past the test: this row times recovery by lease expiry.
        cfg = roost_cfg(
            server.url,
            home,
            namespace="crash",
            ROOST_LEASE_TTL=str(ttl),
            ROOST_HEARTBEAT_TIMEOUT="1h",
        )
        workers = start_workers(ctx.log_dir, [cfg, cfg], label="crash")
        try:
            for w in workers:
                w.go()
            async with swarm_for(server.url, ctx, namespace="crash") as swarm:
                for i in range(ctx.sizes["crash_trials"]):
                    results.append(await trial(ctx, swarm, workers, ttl))
                    if i == ctx.sizes["crash_trials"] - 1:
                        break
                    fresh = start_workers(ctx.log_dir, [cfg], label="crash")[0]
                    fresh.go()
                    workers.append(fresh)
                    await asyncio.sleep(0.3)
        finally:
            stop_all(workers, graceful=False)
    resume = median([r["resume"] for r in results])
    ctx.add(
        Row(
            GROUP,
            "crash resume (SIGKILL -> step committed elsewhere)",
            resume,
            "s",
            ttl,
            "lease TTL",
            Target("value", "<=", ttl + 1.0),
            f"median of {len(results)}; resume - TTL = {resume - ttl:+.2f} s; "
            f"after the lease's actual expiry: "
            f"{median([r['after_expiry'] for r in results]):.2f} s",
            samples=[r["resume"] for r in results],
            extra={"trials": results},
        )
    )
    await run_identity(ctx)
