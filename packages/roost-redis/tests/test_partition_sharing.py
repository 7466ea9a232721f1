"""Workers share a partitioned namespace's partitions (docs/scaling-out.md, "Workers").

Rendezvous hashing over the live workers of an engine gives each partition two servers (all
workers when there are at most two); a worker killed leaves its partitions to the others,
a worker started takes some over, and every item finishes with its chain exactly right.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roost.redis import RedisSwarm
from roost.redis.placement import COPIES, owners, partition_of, served_by
from roost.redis.server.cluster import ClusterGroup
from roost.redis.server.pool import configured_binary
from roost.runtime import RoostSettings
from roost.runtime.models import WorkItem, WorkState
from roost_testkit.engines import expected_state, read_log

P = 8
STEPS = 3


# -- the assignment itself ------------------------------------------------------------------


def _servers(workers: set[str], partitions: int) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {k: set() for k in range(partitions)}
    for w in workers:
        for k in served_by(w, workers, partitions):
            out[k].add(w)
    return out


def test_every_partition_has_two_servers_or_every_worker():
    rng = random.Random(15)
    for n in range(1, 12):
        for _ in range(20):
            workers = {f"w{rng.randrange(10**9)}" for _ in range(n)}
            servers = _servers(workers, 16)
            want = min(COPIES, len(workers))
            assert all(len(s) == want for s in servers.values()), (workers, servers)
            for k, s in servers.items():
                assert s == set(owners(k, workers))
    assert served_by("only", [], 16) == frozenset(range(16))
    assert served_by("a", ["b"], 16) == frozenset(range(16))
    assert served_by("a", ["b", "c"], 1) == frozenset({0})


def test_a_worker_coming_or_going_moves_only_its_own_partitions():
    rng = random.Random(7)
    for _ in range(50):
        workers = {f"w{rng.randrange(10**9)}" for _ in range(rng.randrange(3, 9))}
        newcomer = f"n{rng.randrange(10**9)}"
        before = {w: served_by(w, workers, 64) for w in workers}
        grown = workers | {newcomer}
        after = {w: served_by(w, grown, 64) for w in grown}
        for w in workers:
            # nobody takes anything up when one joins (nor gives up any when it leaves)...
            assert after[w] <= before[w]
            assert before[w] - after[w] <= after[newcomer]  # ...but what the newcomer took
    loads = [len(served_by(w, grown, 64)) for w in grown]
    assert sum(loads) == 64 * COPIES and max(loads) < 64


# -- live workers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    group = ClusterGroup(tmp_path_factory.mktemp("cluster"), binary=configured_binary())
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture(params=["server", pytest.param("cluster", marks=pytest.mark.slow)])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        return request.getfixturevalue("cluster_group").url
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def settings(settings: RoostSettings) -> RoostSettings:
    return RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": P})


def _ids() -> tuple[str, str, str, str]:
    """Four worker ids such that any three of the first three and the fourth share unevenly
    enough: with three live, each serves fewer than all the partitions."""
    names = [f"w{i}" for i in range(40)]
    for a in names:
        for b in names:
            for c in names:
                for d in names:
                    if len({a, b, c, d}) < 4:
                        continue
                    if all(
                        len(served_by(w, trio, P)) < P
                        for trio in ({a, b, c}, {b, c, d})
                        for w in trio
                    ):
                        return a, b, c, d
    raise AssertionError("no such ids")


async def _published(swarm: RedisSwarm) -> dict[str, set[int]]:
    """What each live worker says it serves (its heartbeat's ``partitions``)."""
    return {
        w["worker_id"]: set(w.get("partitions", {}).get("hashchain", []))
        for w in await swarm.workers()
    }


async def _sharing(swarm: RedisSwarm, live: set[str], until: Any) -> dict[str, set[int]]:
    """Wait until exactly ``live`` publish the partitions rendezvous hashing gives them."""
    want = {w: set(served_by(w, live, P)) for w in live}

    async def shared() -> bool:
        return await _published(swarm) == want

    await until(shared, timeout=30)
    return want


async def _finish(swarm: RedisSwarm, ids: list[str], until: Any) -> None:
    async def done() -> bool:
        metas = await swarm.metas(ids)
        return all(m is not None and m.state is WorkState.DONE for m in metas)

    await until(done, timeout=90)
    for work_id in ids:  # every step ran once: the chain is exactly right
        status = await swarm.status(work_id)
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(work_id, STEPS)


async def test_workers_share_partitions_and_rebalance_as_they_come_and_go(
    swarm: RedisSwarm,
    spawn_worker: Callable[..., subprocess.Popen[str]],
    until: Any,
    tmp_path: Path,
):
    a, b, c, d = _ids()
    log = tmp_path / "steps.jsonl"

    def start(wid: str) -> subprocess.Popen[str]:
        env = {
            "ROOST_WORKER_ID": wid,
            "ROOST_PARTITIONS": str(P),
            "ROOST_HEARTBEAT_TIMEOUT": "2",
            "ROOST_TEST_LOG": str(log),
        }
        return spawn_worker(concurrency=4, env=env)

    procs = {w: start(w) for w in (a, b, c)}
    three = await _sharing(swarm, {a, b, c}, until)
    for k in range(P):
        assert sum(k in s for s in three.values()) >= 2, (k, three)
    assert all(len(s) < P for s in three.values()), three

    items = [WorkItem(engine="hashchain", payload={"steps": STEPS, "seconds": 0.05})] * 48
    ids = await swarm.enqueue_many(items)
    assert {partition_of(w, P) for w in ids} == set(range(P))

    async def started() -> bool:
        return (await swarm.counts())["done"] >= 4

    await until(started, timeout=30)
    procs[a].kill()  # a dies holding leases: b and c take its partitions and its work
    procs[a].wait()
    two = await _sharing(swarm, {b, c}, until)
    assert two == {b: set(range(P)), c: set(range(P))}
    await _finish(swarm, ids, until)

    procs[d] = start(d)  # d joins: it takes partitions over, b and c give them up
    now = await _sharing(swarm, {b, c, d}, until)
    assert all(len(s) < P for s in now.values()), now
    more = await swarm.enqueue_many(items)
    await _finish(swarm, more, until)
    # d ran steps of the new items, and only in the partitions it serves
    by_d = {r["work_id"] for r in read_log(log) if r["worker"] == d and r["phase"] == "start"}
    assert by_d and by_d <= set(more), by_d
    assert {partition_of(w, P) for w in by_d} <= now[d]
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        proc.wait(timeout=30)
    await asyncio.sleep(0)
