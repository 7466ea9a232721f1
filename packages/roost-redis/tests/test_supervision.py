"""I10: no Redis error stops a worker silently; a worker makes progress or exits non-zero."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import pytest
import redis

from roost.redis import RedisSwarm, describe_redis_error
from roost.redis.connection import make_client
from roost.redis.faults import is_outage
from roost.redis.server import ServerProcess, free_port
from roost.runtime import RoostError, WorkItem, WorkState
from roost_testkit.engines import HashChainEngine, expected_state
from roost_testkit.redis_faults import busy, out_of_memory, read_only

from .conftest import registry  # noqa: TID252

# -- faults on a real server ------------------------------------------------------------------


async def caught(call) -> Exception:  # noqa: ANN001
    try:
        await call()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def test_errors_that_mean_redis_cannot_serve_are_outages_and_are_named(redis_url):
    client = make_client(redis_url)
    try:
        with out_of_memory(redis_url):
            oom = await caught(lambda: client.set("k", "v"))
        with read_only(redis_url):
            ro = await caught(lambda: client.set("k", "v"))
        with busy(redis_url):
            busy_exc = await caught(lambda: client.get("k"))
        noscript = await caught(lambda: client.pipeline().evalsha("0" * 40, 0).execute())
        await client.set("s", "v")
        wrongtype = await caught(lambda: client.hgetall("s"))
    finally:
        await client.aclose()
    closed = make_client(f"redis://127.0.0.1:{free_port()}/0")
    refused = await caught(closed.ping)
    await closed.aclose()
    for exc, code in ((oom, "OOM"), (ro, "READONLY"), (busy_exc, "BUSY"), (noscript, "NOSCRIPT")):
        assert is_outage(exc), exc
        line = describe_redis_error(exc)
        assert f"({code}" in line and "\n" not in line, line
        assert "lost the connection" not in line
    assert is_outage(refused)
    assert describe_redis_error(refused).startswith("lost the connection to Redis")
    assert not is_outage(wrongtype)
    assert "WRONGTYPE" in describe_redis_error(wrongtype)


async def attempts_and_versions(swarm: RedisSwarm, ids: list[str], steps: int) -> None:
    for work_id in ids:
        status = await swarm.status(work_id)
        assert status.meta.state == WorkState.DONE, (work_id, status.meta.state)
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(work_id, steps)
        events = await swarm.events(work_id=work_id, limit=1000)
        kinds = [e.type for e in events]
        # No attempt used by the faults: every lease grant is a first attempt, none expired.
        assert not {"retrying", "lease_expired", "dead", "redispatched"} & set(kinds), kinds
        assert all(e.data.get("attempt") == 1 for e in events if e.type == "started")
        versions = [e.version for e in events if e.type in ("committed", "done")]
        assert versions == list(range(1, steps + 2))


@pytest.mark.parametrize("fault", ["oom", "readonly", "busy", "script-flush"])
async def test_a_worker_rides_out_redis_misbehaving_without_using_attempts(
    swarm, running_worker, until, redis_url, fault
):
    steps = 4
    items = [
        WorkItem(
            engine="hashchain",
            payload={"steps": steps, "mode": "sleep", "seconds": 0.1, "delay": 0.05},
        )
        for _ in range(12)
    ]
    ids = await swarm.enqueue_many(items[:6])

    async def committed(n: int) -> bool:
        return sum(m.version for m in await swarm.metas(ids) if m) >= n

    async with running_worker([HashChainEngine()], concurrency=4, lease_ttl=8.0) as worker:
        await until(lambda: committed(6))
        if fault == "script-flush":
            await worker.client.execute_command("SCRIPT", "FLUSH")  # type: ignore[attr-defined]
            ids += await swarm.enqueue_many(items[6:])
            await worker.client.execute_command("SCRIPT", "FLUSH")  # type: ignore[attr-defined]
        else:
            fault_of = {"oom": out_of_memory, "readonly": read_only, "busy": busy}[fault]
            with fault_of(redis_url):
                await asyncio.sleep(2.0)
            ids += await swarm.enqueue_many(items[6:])

        async def all_done() -> bool:
            return all(m is not None and m.state == WorkState.DONE for m in await swarm.metas(ids))

        await until(all_done, 40.0)
        info = [w for w in await swarm.workers() if w["worker_id"] == worker.worker_id]
        assert info and info[0]["healthy"] is True
    await attempts_and_versions(swarm, ids, steps)


# -- a loop that keeps failing ------------------------------------------------------------------


async def poison_maintenance(swarm: RedisSwarm) -> None:
    """An expired lease entry whose meta key holds a string: recovery fails on WRONGTYPE."""
    await swarm.client.set(swarm.keys.meta("poison"), "not a hash")
    await swarm.client.execute_command("ZADD", swarm.keys.leases, 0, "poison")  # type: ignore[attr-defined]


async def cure_maintenance(swarm: RedisSwarm) -> None:
    await swarm.client.delete(swarm.keys.meta("poison"))
    await swarm.client.zrem(swarm.keys.leases, "poison")


async def test_a_failing_loop_is_logged_once_reported_unhealthy_and_keeps_going(
    swarm, running_worker, spawn_worker, until, tmp_path: Path, caplog
):
    caplog.set_level(logging.WARNING, logger="roost")
    # An item leased by a worker process that is then killed: only recovery can hand it on.
    orphan = await swarm.enqueue(
        "hashchain", {"steps": 1, "mode": "sleep", "seconds": 60, "fail_times": 1}
    )
    doomed = spawn_worker(concurrency=1)
    await until(lambda: state_is(swarm, orphan, WorkState.RUNNING))
    await poison_maintenance(swarm)
    async with running_worker([HashChainEngine()], concurrency=2) as worker:

        async def reported(healthy: bool) -> bool:
            mine = [w for w in await swarm.workers() if w["worker_id"] == worker.worker_id]
            return bool(mine) and mine[0].get("healthy") is healthy

        await until(lambda: reported(False), 10.0)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        await asyncio.sleep(4.0)  # the orphan's lease (3 s) expires; recovery keeps failing
        info = next(w for w in await swarm.workers() if w["worker_id"] == worker.worker_id)
        assert info["healthy"] is False
        assert "maintenance" in info["problem"] and "WRONGTYPE" in info["problem"]
        assert (await swarm.status(orphan)).meta.state == WorkState.RUNNING
        # Other loops go on meanwhile: new work is taken and done.
        fresh = await swarm.enqueue("hashchain", {"steps": 2})
        await until(lambda: state_is(swarm, fresh, WorkState.DONE))
        await cure_maintenance(swarm)
        await until(lambda: state_is(swarm, orphan, WorkState.DONE), 15.0)
        await until(lambda: reported(True), 10.0)
        info = next(w for w in await swarm.workers() if w["worker_id"] == worker.worker_id)
        assert "problem" not in info
    tracebacks = [r for r in caplog.records if r.exc_info and "maintenance" in r.getMessage()]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
    assert "WRONGTYPE" in tracebacks[0].getMessage()


async def state_is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_a_worker_that_cannot_make_progress_exits_non_zero(
    swarm, spawn_worker, until, tmp_path: Path
):
    await poison_maintenance(swarm)
    proc = spawn_worker(concurrency=1, env={"ROOST_STUCK_AFTER": "2s"})
    started = time.monotonic()
    rc = await asyncio.to_thread(proc.wait, 30)
    assert rc not in (0, None)
    assert time.monotonic() - started < 2.0 + 10.0
    log = (tmp_path / "worker-0.log").read_text()
    assert "no progress for" in log and "WRONGTYPE" in log and "maintenance" in log


# -- at start -----------------------------------------------------------------------------------


async def test_a_replica_is_refused_at_start_with_one_line(settings, redis_server_factory):
    replica: ServerProcess = redis_server_factory()
    admin = redis.Redis.from_url(replica.url)
    admin.execute_command("REPLICAOF", "127.0.0.1", free_port())
    admin.close()
    swarm = RedisSwarm(settings, url=replica.url, registry=registry())
    with pytest.raises(RoostError) as caught_exc:
        await swarm.connect()
    message = str(caught_exc.value)
    assert "is a replica" in message and "\n" not in message


async def test_one_items_trouble_is_logged_once_and_leaves_the_worker_healthy(
    swarm, spawn_worker, until, tmp_path: Path
):
    # An item whose stored WorkItem is not JSON: every handler that takes it fails.
    corrupt = await swarm.enqueue("hashchain", {"steps": 1}, max_attempts=2)
    await swarm.client.set(swarm.keys.item(corrupt), "{not json")
    proc = spawn_worker(concurrency=2, env={"ROOST_STUCK_AFTER": "2s"}, lease_ttl=1.0)

    # Its lease lapses after each failure; recovery counts the attempt, like a crash.
    async def dead() -> bool:
        (meta,) = await swarm.metas([corrupt])
        return meta is not None and meta.state == WorkState.DEAD

    await until(dead, 20.0)
    fresh = await swarm.enqueue("hashchain", {"steps": 1})
    await until(lambda: state_is(swarm, fresh, WorkState.DONE))
    await asyncio.sleep(3.0)  # past ROOST_STUCK_AFTER
    assert proc.poll() is None
    (info,) = await swarm.workers()
    assert info["healthy"] is True
    log = (tmp_path / "worker-0.log").read_text()
    assert log.count("Traceback") == 1 and "ValidationError" in log
