"""Contention scenarios: exclusive resources under load, concurrent idempotent enqueue."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from roost.redis import RedisSwarm
from roost.runtime import RuntimeEvent, WorkItem
from roost_testkit.chaos.base import ChaosEnv, Result, audit, stop_workers, until
from roost_testkit.chaos.faults import all_in, attempts_of
from roost_testkit.chaos.history import COMMITS, Problems, read_jsonl
from roost_testkit.chaos.invariants import Sampler
from roost_testkit.chaos.procs import Proc, worker_env

# -- 6. resource contention ---------------------------------------------------------------


@dataclass(frozen=True)
class ResourceConfig:
    items: int = 200
    both_every: int = 4
    """Every n-th gpu item also needs ``disk``."""
    disk_only: int = 20
    steps: int = 1
    step_seconds: float = 0.01
    holder_seconds: float = 2.5
    workers: int = 3
    concurrency: int = 4
    lease_ttl: float = 2.0
    timeout: float = 300.0


async def _freed_at(swarm: RedisSwarm, work_id: str, default: float) -> float:
    """When recovery freed ``work_id``'s claims: its ``lease_expired`` event's time."""
    events = await swarm.events(work_id=work_id, limit=1000)
    return next((e.ts for e in events if e.type == "lease_expired"), default)


def overlaps(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of intervals (start, end, who) that overlap in time."""
    out: list[tuple[str, str]] = []
    latest_end, latest_who = float("-inf"), ""
    for start, end, who in sorted(intervals):
        if start < latest_end:
            out.append((latest_who, who))
        if end > latest_end:
            latest_end, latest_who = end, who
    return out


def holder_intervals(
    attempts: list[dict[str, Any]], needs: dict[str, list[str]], killed: dict[int, float]
) -> tuple[dict[str, list[tuple[float, float, str]]], Problems]:
    """Per resource, the intervals during which a step that needs it ran.

    A step of a SIGKILLed worker that never ended ran until the kill.
    """
    problems = Problems()
    ends: dict[tuple[str, int, int, int], float] = {}
    for r in attempts:
        if r.get("phase") == "end":
            ends[(r["work_id"], r["version"], r["pid"], r["epoch"])] = r["end"]
    out: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for r in attempts:
        if r.get("phase") != "start" or r["work_id"] not in needs:
            continue
        key = (r["work_id"], r["version"], r["pid"], r["epoch"])
        end = ends.get(key, killed.get(r["pid"]))
        if end is None:
            problems.add("step never ended", f"{key} on a live worker")
            continue
        for res in needs[r["work_id"]]:
            out[res].append((r["start"], end, f"{r['work_id']}@v{r['version']}"))
    return out, problems


async def resource_contention(env: ChaosEnv, cfg: ResourceConfig) -> Result:
    """Scenario 6: every item needs ``gpu`` (some ``gpu`` + ``disk``); a holder is killed."""
    result = Result("resource contention")
    server = env.server(appendonly=False)
    settings = env.settings(server, lease_ttl=cfg.lease_ttl)
    holder = WorkItem(
        engine="hashchain",
        payload={"steps": 1, "mode": "sleep", "seconds": cfg.holder_seconds},
        resources=["gpu"],
    )
    items = [
        WorkItem(
            engine="hashchain",
            payload={"steps": cfg.steps, "mode": "sleep", "seconds": cfg.step_seconds},
            resources=["gpu", "disk"] if i % cfg.both_every == 0 else ["gpu"],
        )
        for i in range(cfg.items)
    ] + [
        WorkItem(
            engine="hashchain",
            payload={"steps": cfg.steps, "mode": "sleep", "seconds": 5 * cfg.step_seconds},
            resources=["disk"],
        )
        for _ in range(cfg.disk_only)
    ]
    needs = {i.work_id: list(i.resources) for i in [holder, *items]}
    steps = {holder.work_id: 1, **{i.work_id: cfg.steps for i in items}}
    result.items = len(steps)
    workers = await env.workers(settings, cfg.workers, cfg.concurrency)
    killed: dict[int, float] = {}
    async with env.swarm(settings) as swarm:
        await swarm.enqueue_many([holder])
        ok = await until(lambda: _running_step(env, holder.work_id), 30.0)
        result.check(ok, "the holder never started its step")
        pid = attempts_of(env, holder.work_id)[0]["pid"]
        victim = next(p for p in workers if p.pid == pid)
        await swarm.enqueue_many(items)
        probe = Sampler(swarm)
        probe.start()
        await asyncio.sleep(0.5)  # waiters pile up behind the holder
        res_key = swarm.keys.res("gpu")
        killed[pid] = await asyncio.to_thread(env.procs.kill, victim)
        replacement = asyncio.create_task(asyncio.to_thread(env.worker, settings, cfg.concurrency))

        async def freed() -> bool:
            return await swarm.client.get(res_key) != holder.work_id

        ok = await until(freed, cfg.lease_ttl + 10.0, 0.01)
        result.check(ok, "the killed holder's gpu claim was never freed")
        # When the claim was freed is what Redis recorded (the recovery's event), not when this
        # process, sharing two cores with four workers, got round to seeing it.
        freed_after = await _freed_at(swarm, holder.work_id, time.time()) - killed[pid]
        result.check(
            freed_after <= cfg.lease_ttl + 1.0,
            f"killed holder's claim freed after {freed_after:.2f}s (TTL + 1 s bound)",
        )
        result.max_resume = freed_after
        workers.append(await replacement)
        done = await until(lambda: all_in(swarm, list(steps), "done"), cfg.timeout, 0.5)
        result.check(done, "not every item finished (deadlock or starvation)")
        await probe.stop()
        probe.report(result)
        codes = await stop_workers(env, workers, settings.grace_period + 10)
        result.check(all(c == 0 for c in codes.values()), f"bad exit on SIGTERM: {codes}")
        events = await audit(swarm, env, result, steps)
    intervals, problems = holder_intervals(read_jsonl(env.attempt_log), needs, killed)
    result.absorb(problems)
    for res, spans in sorted(intervals.items()):
        clash = overlaps(spans)
        result.check(not clash, f"{len(clash)} overlapping holders of {res}: {clash[:3]}")
    result.notes["holder_intervals"] = {r: len(s) for r, s in intervals.items()}
    mine = [e for e in events if e.work_id in steps]
    extra = attempts_beyond_crashes(mine)
    result.check(not extra, f"waiting used attempts: {extra[:3]}")
    for kind in ("retrying", "dead", "failed"):
        n = sum(1 for e in mine if e.type == kind)
        result.check(n == 0, f"{n} {kind} events")
    result.notes["waits"] = sum(1 for e in mine if e.type == "waiting")
    return result


def attempts_beyond_crashes(events: list[RuntimeEvent]) -> list[str]:
    """Lease grants whose attempt number is not explained by crashes.

    Per item, the attempt expected at a grant is 1 after a commit, plus one for each
    lease that expired since (a crash counts as an attempt, I5); waiting must add nothing.
    """
    expected: dict[str, int] = {}
    out: list[str] = []
    for e in events:
        if e.type in COMMITS:
            expected[e.work_id] = 1
        elif e.type == "lease_expired":
            expected[e.work_id] = expected.get(e.work_id, 1) + 1
        elif e.type == "started":
            want = expected.get(e.work_id, 1)
            if e.data.get("attempt") != want:
                out.append(f"{e.work_id}@v{e.version}: attempt {e.data.get('attempt')}, not {want}")
    return out


def _running_step(env: ChaosEnv, work_id: str) -> Any:
    async def check() -> bool:
        return bool(attempts_of(env, work_id))

    return check()


# -- 7. idempotent enqueue ----------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueConfig:
    processes: int = 4
    connections: int = 5
    keys: int = 20
    timeout: float = 120.0


async def idempotent_enqueue(env: ChaosEnv, cfg: EnqueueConfig) -> Result:
    """Scenario 7: 20 clients enqueue the same idempotency keys at the same moment."""
    clients = cfg.processes * cfg.connections
    result = Result(f"idempotent enqueue ({clients} clients)", items=cfg.keys)
    server = env.server(appendonly=False)
    settings = env.settings(server)
    cenv = worker_env(settings)
    argv = [
        sys.executable,
        "-m",
        "roost_testkit.chaos.enqueue_client",
        "--connections",
        str(cfg.connections),
        "--keys",
        str(cfg.keys),
    ]
    procs = [env.procs.start(argv, cenv, "client", stdin=True) for _ in range(cfg.processes)]
    lines = await asyncio.gather(
        *(asyncio.to_thread(env.procs.readline, p, cfg.timeout) for p in procs)
    )
    result.check(all(line.strip() == "ready" for line in lines), f"clients not ready: {lines}")
    for p in procs:  # the barrier: every client is connected before any enqueues
        assert p.popen.stdin is not None
        p.popen.stdin.write("go\n")
        p.popen.stdin.flush()
    outputs = await asyncio.gather(*(asyncio.to_thread(_output, p, cfg.timeout) for p in procs))
    ids: dict[str, set[str]] = defaultdict(set)
    answers = 0
    for out in outputs:
        for _conn, key, work_id in out:
            ids[key].add(work_id)
            answers += 1
    result.check(answers == clients * cfg.keys, f"{answers} answers, expected {clients * cfg.keys}")
    split = {k: v for k, v in ids.items() if len(v) != 1}
    result.check(not split, f"keys that yielded several work ids: {list(split.items())[:3]}")
    async with env.swarm(settings) as swarm:
        counts = await swarm.counts()
        total = sum(v for k, v in counts.items() if not k.startswith("saq_"))
        result.check(total == cfg.keys, f"{total} work items exist for {cfg.keys} keys")
        result.check(counts["saq_queued"] == cfg.keys, f"{counts['saq_queued']} deliveries queued")
        enqueued = [e for e in await swarm.events(limit=10_000) if e.type == "enqueued"]
        result.check(len(enqueued) == cfg.keys, f"{len(enqueued)} enqueued events")
        worker = await asyncio.to_thread(env.worker, settings, 4)
        work = [next(iter(v)) for v in ids.values() if len(v) == 1]
        done = await until(lambda: all_in(swarm, work, "done"), cfg.timeout)
        result.check(done, "the enqueued items did not finish")
        await stop_workers(env, [worker], settings.grace_period + 10)
        await audit(swarm, env, result, {w: 1 for w in work})
    result.notes.update(clients=clients, processes=cfg.processes, answers=answers)
    return result


def _output(proc: Proc, timeout: float) -> list[list[str]]:
    out, _ = proc.popen.communicate(timeout=timeout)
    if proc.popen.returncode != 0:
        raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}")
    return json.loads(out.strip().splitlines()[-1])["results"]
