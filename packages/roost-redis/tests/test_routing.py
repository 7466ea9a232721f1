"""Mixed fleets: an item goes only to a worker that runs its engine, per-engine slots, and
work whose engine no live worker runs waits (and is reported) instead of failing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from roost.redis import RedisSwarm
from roost.redis.keys import new_token
from roost.redis.maintenance import Clock, recover_expired
from roost.runtime import BadInput, RuntimeEvent, WorkItem, WorkState
from roost_testkit.chaos.contention import attempts_beyond_crashes
from roost_testkit.engines import HashChainEngine, expected_state, read_log


def engine(engine_id: str) -> HashChainEngine:
    return HashChainEngine(engine_id=engine_id)


async def states(swarm: RedisSwarm, work_ids: list[str]) -> list[WorkState | None]:
    return [m.state if m else None for m in await swarm.metas(work_ids)]


async def all_in(swarm: RedisSwarm, work_ids: list[str], state: WorkState) -> bool:
    return all(s == state for s in await states(swarm, work_ids))


async def all_events(swarm: RedisSwarm) -> list[RuntimeEvent]:
    out: list[RuntimeEvent] = []
    after = "0-0"
    while True:
        batch = await swarm.events(after=after, limit=10_000)
        out += batch
        if len(batch) < 10_000:
            return out
        after = batch[-1].id


async def test_each_item_goes_only_to_a_worker_that_runs_its_engine(swarm, running_worker, until):
    names = ["alpha", "beta", "gamma"]
    ids = {name: [] for name in names}
    for i in range(30):
        name = names[i % 3]
        ids[name].append(await swarm.enqueue(name, {"steps": 2}))
    async with (
        running_worker([engine("alpha")], concurrency=2) as a,
        running_worker([engine("beta")], concurrency=2) as b,
    ):
        await until(lambda: all_in(swarm, ids["alpha"] + ids["beta"], WorkState.DONE))
        # Nobody runs gamma: its items wait, untouched, and that is what the swarm says.
        assert await all_in(swarm, ids["gamma"], WorkState.QUEUED)
        assert {m.attempts for m in await swarm.metas(ids["gamma"]) if m} == {0}
        assert await swarm.unserved_engines() == {"gamma": 10}
        assert await swarm.unserved_engines("other-queue") == {}
        async with running_worker([engine("gamma")], concurrency=2) as c:
            await until(lambda: all_in(swarm, ids["gamma"], WorkState.DONE))
            assert await swarm.unserved_engines() == {}
    runs = {"alpha": a.worker_id, "beta": b.worker_id, "gamma": c.worker_id}
    for name, work_ids in ids.items():
        for work_id in work_ids:
            started = [e for e in await swarm.events(work_id=work_id) if e.type == "started"]
            assert [e.worker for e in started] == [runs[name]], (name, work_id)
    with pytest.raises(BadInput):
        await swarm.unserved_engines("bad{queue}")


async def test_each_engine_has_its_own_slots(swarm, running_worker, until, tmp_path: Path):
    log = tmp_path / "attempts.jsonl"
    os.environ["ROOST_TEST_LOG"] = str(log)
    try:
        slow = {"steps": 1, "mode": "sleep", "seconds": 0.4}
        ids = [await swarm.enqueue(name, slow) for name in ["solo"] * 4 + ["pool"] * 6]
        async with running_worker({engine("solo"): 1, engine("pool"): 3}, concurrency=9):
            await until(lambda: all_in(swarm, ids, WorkState.DONE))
            live = await swarm.workers()
    finally:
        del os.environ["ROOST_TEST_LOG"]
    assert [(w["slots"], w["concurrency"]) for w in live] == [({"pool": 3, "solo": 1}, 4)]
    overlap = {"solo": 0, "pool": 0}
    records = read_log(log)
    ends = {r["work_id"]: r["end"] for r in records if r["phase"] == "end"}
    engines = dict(zip(ids, ["solo"] * 4 + ["pool"] * 6, strict=True))
    for r in records:
        if r["phase"] != "start":
            continue
        same = [
            s
            for s in records
            if s["phase"] == "start" and engines[s["work_id"]] == engines[r["work_id"]]
        ]
        running = sum(1 for s in same if s["start"] <= r["start"] < ends[s["work_id"]])
        overlap[engines[r["work_id"]]] = max(overlap[engines[r["work_id"]]], running)
    assert overlap == {"solo": 1, "pool": 3}


async def test_bad_slots_are_refused_before_anything_runs(swarm):
    for slots in (0, -1, 1.5, True):
        with pytest.raises(BadInput, match="slots must be a whole number"):
            await swarm.run_worker({engine("alpha"): slots}, install_signal_handlers=False)


async def test_priority_and_recovered_items_go_to_the_front_of_their_engines_backlog(
    swarm, spawn_worker, until
):
    route = swarm.keys.for_engine("alpha")

    async def head() -> str:
        parsed = route.parse_job((await swarm.client.lrange(route.saq_queued, 0, 0))[0])
        assert parsed is not None
        return parsed[0]

    # A worker takes one item and dies holding its lease.
    victim_id = await swarm.enqueue("alpha", {"steps": 1, "mode": "sleep", "seconds": 60})
    victim = spawn_worker(concurrency=1, engines="alpha", lease_ttl=1.0)
    await until(lambda: all_in(swarm, [victim_id], WorkState.RUNNING))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    backlog = [await swarm.enqueue("alpha", {"steps": 1}) for _ in range(5)]
    other = await swarm.enqueue("beta", {"steps": 1}, priority=1)
    assert await head() == backlog[0]
    urgent = await swarm.enqueue("alpha", {"steps": 1}, priority=1)
    assert await head() == urgent
    # A priority item of another engine goes to the front of its own list only.
    beta = swarm.keys.for_engine("beta")
    assert route.parse_job((await swarm.client.lrange(beta.saq_queued, 0, 0))[0]) is None
    assert beta.parse_job((await swarm.client.lrange(beta.saq_queued, 0, 0))[0])[0] == other
    await asyncio.sleep(1.2)  # the victim's lease expires
    keys = swarm.keys
    assert await recover_expired(swarm, keys, Clock()) == (1, 0)
    assert await head() == victim_id
    order = [route.parse_job(j) for j in await swarm.client.lrange(route.saq_queued, 0, -1)]
    assert [p[0] for p in order if p] == [victim_id, urgent, *backlog]


# -- a mixed fleet under kills ------------------------------------------------------------


async def test_a_mixed_fleet_runs_every_item_once_through_kills_and_restarts(
    swarm, spawn_worker, until
):
    # Two workers with disjoint engine sets, a third with both; nobody runs gamma at first.
    fleet = {"a": "alpha=4", "b": "beta=4", "ab": "alpha=2,beta=2"}
    names = ["alpha", "beta", "gamma"]
    steps = 3
    payload = {"steps": steps, "mode": "sleep", "seconds": 0.03}
    items = [WorkItem(engine=names[i % 3], payload=payload) for i in range(1000)]
    ids = await swarm.enqueue_many(items)
    by_engine: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_engine[item.engine].append(item.work_id)
    served = by_engine["alpha"] + by_engine["beta"]

    pids: dict[int, set[str]] = {}
    procs: dict[str, subprocess.Popen[str]] = {}

    def start(name: str) -> None:
        procs[name] = spawn_worker(engines=fleet[name], lease_ttl=1.0)
        pids[procs[name].pid] = {e.split("=")[0] for e in fleet[name].split(",")}

    for name in fleet:
        start(name)
    kills = 0
    for name in ["a", "ab", "b", "ab", "a"]:
        await asyncio.sleep(random.uniform(0.6, 1.2))
        procs[name].send_signal(signal.SIGKILL)
        procs[name].wait(10)
        kills += 1
        start(name)
    await until(lambda: all_in(swarm, served, WorkState.DONE), timeout=120)

    # gamma: no live worker runs it, so it waits, untouched, and is reported as such.
    gamma = by_engine["gamma"]
    assert await all_in(swarm, gamma, WorkState.QUEUED)
    assert {m.attempts for m in await swarm.metas(gamma) if m} == {0}
    assert await swarm.unserved_engines() == {"gamma": len(gamma)}
    fleet["g"] = "gamma=8"
    start("g")
    await until(lambda: all_in(swarm, gamma, WorkState.DONE), timeout=60)
    assert await swarm.unserved_engines() == {}

    events = await all_events(swarm)
    kinds = [e.type for e in events]
    assert kills == 5 and kinds.count("lease_expired") > 0, "no kill hit a running step"
    assert "failed" not in kinds and "dead" not in kinds
    assert [e for e in events if e.type == "released"] == []
    # Done exactly once, every step committed once and in order.
    done = [e.work_id for e in events if e.type == "done"]
    assert sorted(done) == sorted(ids)
    for status in [await swarm.status(w) for w in ids]:
        assert status.meta.state == WorkState.DONE and status.meta.last_error is None
        assert status.snapshot is not None and status.snapshot.version == steps + 1
        assert status.snapshot.data["state"] == expected_state(status.meta.work_id, steps)
    # Every lease went to a worker that runs the item's engine, and only crashes used
    # attempts (routing used none).
    engine_of = {item.work_id: item.engine for item in items}
    for e in events:
        if e.type == "started":
            assert e.worker is not None
            assert engine_of[e.work_id] in pids[int(e.worker.split(":")[1])], e
    assert attempts_beyond_crashes(events) == []


# -- a slow engine's backlog does not hold up another engine --------------------------------


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)]


async def test_a_slow_engines_backlog_does_not_delay_another_engine(
    swarm, settings, spawn_worker, until, tmp_path: Path
):
    # Two workers running both engines, each in its own namespace: one with a 10,000-item
    # backlog of the slow engine, one idle. Their fast items are measured alternately, so
    # whatever else this machine does at the time hits both alike.
    busy_log, idle_log = tmp_path / "busy.jsonl", tmp_path / "idle.jsonl"
    idle_ns = settings.namespace + "-idle"
    both = "slow=4,fast=4"
    spawn_worker(engines=both, env={"ROOST_TEST_LOG": str(busy_log)})
    spawn_worker(engines=both, env={"ROOST_TEST_LOG": str(idle_log)}, namespace=idle_ns)
    slow = {"steps": 1, "mode": "sleep", "seconds": 0.2}
    await swarm.enqueue_many([WorkItem(engine="slow", payload=slow) for _ in range(10_000)])
    slow_list = swarm.keys.for_engine("slow").saq_queued
    t0: dict[str, float] = {}
    measured: dict[str, list[str]] = {"busy": [], "idle": []}
    idle_settings = settings.model_copy(update={"namespace": idle_ns})
    async with RedisSwarm(idle_settings, registry=swarm.registry) as idle:
        await until(lambda: _slots_busy(swarm, 4))
        for _ in range(100):
            for name, target in (("busy", swarm), ("idle", idle)):
                start = time.time()
                work_id = await target.enqueue("fast", {"steps": 1})
                t0[work_id] = start
                measured[name].append(work_id)
                await until(
                    lambda t=target, w=work_id: all_in(t, [w], WorkState.DONE), interval=0.002
                )
                await asyncio.sleep(random.uniform(0.005, 0.015))
        backlog = await swarm.client.llen(slow_list)
        assert await _slots_busy(swarm, 4), "the slow engine stopped running"
    started = {
        r["work_id"]: r["start"]
        for r in read_log(busy_log) + read_log(idle_log)
        if r["phase"] == "start" and r["work_id"] in t0
    }
    assert backlog > 9_000, "the slow engine's backlog drained during the measurement"
    busy_ms = [1000 * (started[w] - t0[w]) for w in measured["busy"]]
    idle_ms = [1000 * (started[w] - t0[w]) for w in measured["idle"]]
    assert p99(busy_ms) <= 2 * p99(idle_ms), (p99(busy_ms), p99(idle_ms))


async def _slots_busy(swarm: RedisSwarm, n: int) -> bool:
    return (await swarm.counts())["running"] == n


# -- upgrading from the single-list layout --------------------------------------------------


async def enqueue_old_layout(swarm: RedisSwarm, engine_id: str, priority: int = 0) -> str:
    """Enqueue as a version before per-engine delivery did: onto the queue's single list."""
    item = WorkItem(engine=engine_id, payload={"steps": 1}, priority=priority)
    item = item.model_copy(update={"queue": swarm.settings.queue})
    old = swarm.keys  # no engine: the single list's SAQ names, and no engine to register
    w = item.work_id
    fields = {"work_id": w, "item_json": item.model_dump_json(), "engine": engine_id}
    fields |= {"resources": "", "priority": priority, "delay_ms": 0, "idem": ""}
    fields |= {"dispatch": new_token(), "seed": "", "imax": ""}
    await swarm.calls.enqueue(old, queue=swarm.settings.queue, items=[fields])
    return w


async def test_deliveries_queued_before_per_engine_delivery_are_delivered_after_upgrade(
    swarm, running_worker, until
):
    old = swarm.keys
    backlog = [await enqueue_old_layout(swarm, "alpha") for _ in range(3)]
    urgent = await enqueue_old_layout(swarm, "alpha", priority=1)
    beta = await enqueue_old_layout(swarm, "beta")
    # An old worker took this one off the single list and died before acquiring it.
    stranded = await enqueue_old_layout(swarm, "beta")
    job = (await swarm.client.lrange(old.saq_queued, -1, -1))[0]
    assert await swarm.client.lrem(old.saq_queued, -1, job) == 1
    await swarm.client.rpush(old.saq_active, job)
    # This one moved on (cancelled) while its delivery sat on the list.
    cancelled = await enqueue_old_layout(swarm, "alpha")
    await swarm.cancel(cancelled)
    assert await swarm.client.llen(old.saq_queued) == 6
    after_upgrade = await swarm.enqueue("alpha", {"steps": 1})
    ids = [*backlog, urgent, beta, stranded, after_upgrade]
    async with running_worker({engine("alpha"): 1, engine("beta"): 1}):
        await until(lambda: all_in(swarm, ids, WorkState.DONE))
    assert (await swarm.status(cancelled)).meta.state == WorkState.CANCELLED
    events = await all_events(swarm)
    alpha = {*backlog, urgent, after_upgrade}
    alpha_starts = [e.work_id for e in events if e.type == "started" and e.work_id in alpha]
    # The old list's order (a priority item at its head) is kept, ahead of newer work.
    assert alpha_starts == [urgent, *backlog, after_upgrade]
    assert [e.type for e in events if e.work_id == stranded].count("redispatched") == 1
    assert not [e for e in events if e.type in ("failed", "dead", "released")]
    # Nothing is left of the single list: its lists and job records are gone.
    for key in (old.saq_queued, old.saq_active, old.saq_incomplete):
        assert await swarm.client.exists(key) == 0, key
    jobs = await swarm.client.keys(old.job("*"))
    assert jobs == []
