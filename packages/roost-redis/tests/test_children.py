"""Child work (I12): children exist iff their parent's commit was accepted; the parent
waits without a lease and its next step receives every child's outcome."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from roost.redis import RedisSwarm
from roost.redis.maintenance import Clock, purge_expired
from roost.runtime import Registry, WorkState, get_plugin_manager, limits
from roost_testkit.engines import HashChainEngine, expected_state, read_log
from roost_testkit.family import FanOutEngine
from roost_testkit.redis_faults import out_of_memory


async def state_is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


def gathers(log: Path, parent: str) -> list[dict[str, Any]]:
    return [r for r in read_log(log) if r.get("phase") == "gather" and r["work_id"] == parent]


async def test_parent_gets_every_childs_outcome_after_all_finish(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    parent = await swarm.enqueue(
        "fanout", {"children": 5, "child_payload": {"steps": 2}, "keep": ["state"]}
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    status = await swarm.status(parent)
    assert status.meta.children_total == 5
    assert status.meta.children_finished == 5
    kids = await swarm.children(parent)
    assert [k.parent_id for k in kids] == [parent] * 5
    assert all(k.state == WorkState.DONE for k in kids)
    (gather,) = gathers(log, parent)
    outcomes = gather["outcomes"]
    assert [o["work_id"] for o in outcomes] == [k.work_id for k in kids]
    for o in outcomes:
        assert o["state"] == "done" and o["finished"] is True
        # keep=["state"]: only that key of the child's data, and its value proves 2 steps.
        assert o["data"] == {"state": expected_state(o["work_id"], 2)}
        assert o["error"] is None


async def test_awaiting_parent_holds_no_lease_and_child_outcome_kept(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    # Children take a while; the parent waits in 'awaiting' with no lease meanwhile.
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    parent = await swarm.enqueue(
        "fanout",
        {"children": 2, "child_payload": {"steps": 1, "mode": "sleep", "seconds": 1.0}},
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.AWAITING), timeout=20)
        meta = (await swarm.status(parent)).meta
        assert meta.lease is None
        assert meta.children_wait == 2
        assert meta.children_total == 2
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    events = [e.type for e in await swarm.events(work_id=parent, limit=100)]
    assert "children_ready" in events
    (gather,) = gathers(log, parent)
    assert [o["state"] for o in gather["outcomes"]] == ["done", "done"]


async def test_wait_for_any_goes_on_after_the_first_child(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    slow = {"steps": 1, "mode": "sleep", "seconds": 4.0}
    parent = await swarm.enqueue(
        "fanout", {"children": 3, "wait": "any", "child_payloads": [{"steps": 1}, slow, slow]}
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=6):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
        (gather,) = gathers(log, parent)
        first, *others = gather["outcomes"]
        assert first["state"] == "done" and first["finished"] is True
        assert [o["finished"] for o in others] == [False, False]
        kids = await swarm.children(parent)
        assert not all(k.state.is_terminal for k in kids)


async def test_dead_child_is_reported_to_the_parent_as_a_failure(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    bad = {"steps": 1, "mode": "raise"}
    parent = await swarm.enqueue(
        "fanout", {"children": 3, "child_payloads": [{"steps": 1}, bad, {"steps": 1}]}
    )
    async with running_worker([FanOutEngine(), HashChainEngine(max_attempts=2)], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    (gather,) = gathers(log, parent)
    by_state = [o["state"] for o in gather["outcomes"]]
    assert by_state == ["done", "dead", "done"]
    dead = gather["outcomes"][1]
    assert dead["finished"] is True
    assert dead["error"]["type"] == "RuntimeError"
    assert dead["error"]["attempt"] == 2
    assert (await swarm.status(parent)).meta.children_finished == 3


async def test_cancelling_a_parent_cancels_its_unfinished_children(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    quick = {"steps": 1}
    slow = {"steps": 50, "mode": "sleep", "seconds": 0.2}
    parent = await swarm.enqueue(
        "fanout", {"children": 4, "child_payloads": [quick, slow, slow, slow]}
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=6):
        await until(lambda: state_is(swarm, parent, WorkState.AWAITING), timeout=20)
        kids = [k.work_id for k in await swarm.children(parent)]
        await until(lambda: state_is(swarm, kids[0], WorkState.DONE), timeout=20)
        meta = await swarm.cancel(parent)
        assert meta.state == WorkState.CANCELLED
        states = [m.state for m in await swarm.children(parent)]
        assert states == [WorkState.DONE] + [WorkState.CANCELLED] * 3
        # Their running steps are refused: nothing runs on, nothing is committed after.
        versions = [m.version for m in await swarm.children(parent)]
        await until(lambda: _no_leases(swarm, kids), timeout=20)
        assert [m.version for m in await swarm.children(parent)] == versions
    assert gathers(log, parent) == []
    assert (await swarm.status(parent)).meta.state == WorkState.CANCELLED


async def _no_leases(swarm: RedisSwarm, ids: list[str]) -> bool:
    return all(m is not None and m.lease is None for m in await swarm.metas(ids))


async def test_a_retried_spawning_step_does_not_spawn_twice(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    parent = await swarm.enqueue("fanout", {"children": 3, "spawn_mode": "raise"})
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    spawns = [r for r in read_log(log) if r.get("phase") == "spawn"]
    assert [r["attempt"] for r in spawns] == [1, 2]
    kids = [k.work_id for k in await swarm.children(parent)]
    assert kids == spawns[1]["spawned"]
    assert await swarm.metas(spawns[0]["spawned"]) == [None, None, None]
    assert (await swarm.status(parent)).meta.children_total == 3


async def test_idempotency_keys_make_a_repeated_spawn_the_same_children(
    swarm, running_worker, until, tmp_path: Path, monkeypatch
):
    # A child key that names an existing item (of no parent) adopts it; a second parent
    # asking for the same key is refused (the child is taken) and fails.
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    existing = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key="job-0")
    first = await swarm.enqueue("fanout", {"children": 2, "key_prefix": "job"})
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, first, WorkState.DONE), timeout=30)
        kids = [k.work_id for k in await swarm.children(first)]
        assert kids[0] == existing
        second = await swarm.enqueue("fanout", {"children": 1, "key_prefix": "job"})
        await until(lambda: state_is(swarm, second, WorkState.FAILED), timeout=30)
    err = (await swarm.status(second)).meta.last_error
    assert err is not None and "another parent" in err.message
    assert (await swarm.status(second)).meta.children_total == 0


async def test_a_worker_killed_before_its_spawning_commit_spawns_nothing(
    swarm, spawn_worker, until, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    parent = await swarm.enqueue("fanout", {"children": 4, "spawn_mode": "exit"})
    first = spawn_worker(engines="fanout,hashchain", env={"ROOST_TEST_LOG": str(log)})
    await until(lambda: _exited(first), timeout=20)
    spawn_worker(engines="fanout,hashchain", env={"ROOST_TEST_LOG": str(log)})
    await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=40)
    spawns = [r for r in read_log(log) if r.get("phase") == "spawn"]
    assert [r["attempt"] for r in spawns] == [1, 2]
    assert await swarm.metas(spawns[0]["spawned"]) == [None] * 4
    kids = await swarm.children(parent)
    assert [k.work_id for k in kids] == spawns[1]["spawned"]
    assert all(k.state == WorkState.DONE for k in kids)


async def _exited(proc: Any) -> bool:
    return proc.poll() is not None


async def test_fifty_children_across_three_workers_with_sigkills(
    swarm, spawn_worker, until, tmp_path: Path, monkeypatch
):
    # Every child's hash chain proves each of its steps was committed exactly once and in
    # order; the parent commits its gathering step exactly once, with all 50 outcomes.
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    env = {"ROOST_TEST_LOG": str(log)}
    procs = [spawn_worker(concurrency=2, engines="fanout,hashchain", env=env) for _ in range(3)]
    # Each kill costs the items its worker held one attempt, and a recovered child goes to the
    # front of the list, so one child can be under all four kills: its attempts cover them.
    parent = await swarm.enqueue(
        "fanout",
        {
            "children": 50,
            "child_payload": {"steps": 3, "mode": "sleep", "seconds": 0.5},
            "child_max_attempts": 5,
        },
    )
    # Kill a worker as the children pass 5, 15, 25 and 35 done: all four kills land while
    # children (and so the parent) are unfinished, however slowly workers start.
    kills = 0
    deadline = time.monotonic() + 120
    while not await state_is(swarm, parent, WorkState.DONE):
        assert time.monotonic() < deadline, "the parent did not finish"
        await asyncio.sleep(0.2)
        done = sum(k.state == WorkState.DONE for k in await swarm.children(parent))
        if kills < 4 and done >= 5 + 10 * kills:
            assert done < 50
            victim = kills % 3
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            kills += 1
            procs[victim] = spawn_worker(concurrency=2, engines="fanout,hashchain", env=env)
    assert kills == 4
    status = await swarm.status(parent)
    assert status.meta.version == 3  # init, spawn, gather: no step twice
    assert status.meta.children_total == 50
    assert status.meta.children_finished == 50
    assert status.snapshot is not None
    outcomes = status.snapshot.data["outcomes"]
    assert len(outcomes) == 50 and set(outcomes.values()) == {"done"}
    kids = await swarm.children(parent)
    assert [k.work_id for k in kids] == list(outcomes)
    for kid in kids:
        snap = (await swarm.status(kid.work_id)).snapshot
        assert snap is not None and kid.version == 4
        assert snap.data["state"] == expected_state(kid.work_id, 3)
    done_events = [e for e in await swarm.events(work_id=parent, limit=1000) if e.type == "done"]
    assert len(done_events) == 1
    # The gathering step that committed saw all 50 children finished.
    committed = [g for g in gathers(log, parent) if g["version"] == 2]
    assert any(
        len(g["outcomes"]) == 50 and all(o["state"] == "done" for o in g["outcomes"])
        for g in committed
    )


async def test_children_of_children(swarm, running_worker, until):
    top = await swarm.enqueue("fanout", {"children": 2, "nest": 1})
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=6):
        await until(lambda: state_is(swarm, top, WorkState.DONE), timeout=30)
    kids = await swarm.children(top)
    assert [k.engine for k in kids] == ["fanout", "fanout"]
    grandchildren = [g for k in kids for g in await swarm.children(k.work_id)]
    assert len(grandchildren) == 4
    assert all(g.state == WorkState.DONE and g.engine == "hashchain" for g in grandchildren)
    item = (await swarm.status(grandchildren[0].work_id)).item
    assert item is not None and item.child_of is not None
    assert item.child_of.depth == 2 and item.child_of.parent_id == kids[0].work_id


async def test_nesting_past_the_depth_limit_fails_the_deepest_parent_only(
    swarm, running_worker, until
):
    top = await swarm.enqueue("fanout", {"children": 1, "nest": 40})
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, top, WorkState.DONE), timeout=60)
    chain = [top]
    while kids := await swarm.children(chain[-1]):
        chain.append(kids[0].work_id)
    assert len(chain) == 1 + int(limits.CHILD_DEPTH.high)
    deepest = (await swarm.status(chain[-1])).meta
    assert deepest.state == WorkState.FAILED and deepest.children_total == 0
    assert deepest.last_error is not None
    assert "nest at most 16 deep" in deepest.last_error.message
    metas = await swarm.metas(chain[:-1])
    assert [m.state if m else None for m in metas] == [WorkState.DONE] * 16


async def test_too_many_children_in_one_step_fail_it_and_spawn_nothing(
    swarm, running_worker, until
):
    too_many = int(limits.CHILDREN_PER_STEP.high) + 1
    parent = await swarm.enqueue("fanout", {"children": too_many})
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.FAILED), timeout=30)
    meta = (await swarm.status(parent)).meta
    assert meta.children_total == 0 and await swarm.children(parent) == []
    assert meta.last_error is not None and "at most 1000 children" in meta.last_error.message
    assert (await swarm.counts())["scheduled"] == 0


async def test_a_retried_dead_child_is_unfinished_again_for_its_parent(
    swarm, running_worker, until
):
    bad = {"steps": 1, "mode": "raise"}
    parent = await swarm.enqueue(
        "fanout", {"children": 2, "wait": 2, "child_payloads": [bad, {"steps": 1}]}
    )
    engines = [FanOutEngine(), HashChainEngine(max_attempts=1)]
    async with running_worker(engines, concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    dead, ok = await swarm.children(parent)
    assert (dead.state, ok.state) == (WorkState.DEAD, WorkState.DONE)
    assert (await swarm.status(parent)).meta.children_finished == 2
    # No worker runs: the retried child stays queued, unfinished for its parent.
    await swarm.retry(dead.work_id)
    assert (await swarm.status(parent)).meta.children_finished == 1
    assert (await swarm.child_outcomes(parent))[0].finished is False
    async with running_worker(engines, concurrency=4):
        await until(lambda: state_is(swarm, dead.work_id, WorkState.DEAD), timeout=30)
    assert (await swarm.status(parent)).meta.children_finished == 2
    outcomes = await swarm.child_outcomes(parent)
    assert [o.state for o in outcomes] == [WorkState.DEAD, WorkState.DONE]
    assert outcomes[0].error is not None and outcomes[0].error.type == "RuntimeError"


async def test_a_spawning_commit_held_up_by_redis_oom_spawns_once_and_uses_no_attempt(
    swarm, running_worker, until, redis_url: str, tmp_path: Path, monkeypatch
):
    log = tmp_path / "attempts.jsonl"
    monkeypatch.setenv("ROOST_TEST_LOG", str(log))
    parent = await swarm.enqueue("fanout", {"children": 5, "spawn_seconds": 0.5})

    async def spawned() -> bool:
        return any(r.get("phase") == "spawn" for r in read_log(log)) if log.exists() else False

    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(spawned, timeout=20)
        with out_of_memory(redis_url):  # the commit comes while every write is refused
            await asyncio.sleep(1.5)
            assert (await swarm.status(parent)).meta.children_total == 0
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
    spawns = [r for r in read_log(log) if r.get("phase") == "spawn"]
    assert [r["attempt"] for r in spawns] == [1]
    kids = await swarm.children(parent)
    assert [k.work_id for k in kids] == spawns[0]["spawned"]
    assert all(k.state == WorkState.DONE for k in kids)
    status = await swarm.status(parent)
    assert status.meta.version == 3 and status.meta.children_total == 5


async def test_retention_purges_a_parent_with_its_children_list_and_a_late_child_writes_nothing(
    swarm, settings, running_worker, until
):
    # Fire and forget: the parent finishes at once; one child is still running when the
    # parent is purged, and its finish must not bring back any key of the parent.
    slow = {"steps": 1, "mode": "sleep", "seconds": 3.0}
    parent = await swarm.enqueue(
        "fanout", {"children": 2, "wait": 1, "child_payloads": [{"steps": 1}, slow]}
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.DONE), timeout=30)
        quick, late = [k.work_id for k in await swarm.children(parent)]
        await until(lambda: state_is(swarm, quick, WorkState.DONE), timeout=30)
        assert await swarm.client.exists(swarm.keys.kids(parent)) == 1
        await asyncio.sleep(1.1)
        short = settings.model_copy(update={"retention": 1.0})
        async with RedisSwarm(short, registry=registry()) as purger:
            assert await purge_expired(purger, purger.keys, Clock()) == 2
        assert await swarm.client.exists(swarm.keys.meta(parent), swarm.keys.kids(parent)) == 0
        await until(lambda: state_is(swarm, late, WorkState.DONE), timeout=30)
    assert await swarm.client.exists(swarm.keys.meta(parent), swarm.keys.kids(parent)) == 0
    assert (await swarm.status(late)).meta.parent_id == parent


async def test_a_child_key_naming_the_parent_itself_is_refused(swarm, running_worker, until):
    parent = await swarm.enqueue(
        "fanout", {"children": 1, "key_prefix": "loop"}, idempotency_key="loop-0"
    )
    async with running_worker([FanOutEngine(), HashChainEngine()], concurrency=4):
        await until(lambda: state_is(swarm, parent, WorkState.FAILED), timeout=30)
    meta = (await swarm.status(parent)).meta
    assert meta.parent_id is None and meta.children_total == 0
    assert meta.last_error is not None and "another parent" in meta.last_error.message


def registry() -> Registry:
    return Registry.load(get_plugin_manager(autoload=False))
