"""Time decisions use the server's clock: a worker whose own clock is days off changes nothing.

The workers run with Debian's libfaketime preloaded (package ``faketime``), which shifts
every clock the process reads. (Preloaded directly rather than through the ``faketime``
command, which forks: the worker must be the process the test signals and kills.) Without it
these tests skip, unless ``CI`` is set: then they fail, so CI never passes without having
run them (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from roost.redis import RedisSwarm
from roost.runtime import NotFound, WorkState
from roost_testkit.engines import HashChainEngine, read_log

DAY = 86400.0


@pytest.fixture(scope="session")
def faketime() -> str:
    """libfaketime's shared object; skip without it (fail when ``CI`` is set)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        message = "no libfaketime: apt-get install -y faketime"
        if os.environ.get("CI"):
            pytest.fail(f"clock-skew tests must run in CI: {message}")
        pytest.skip(message)
    return found[0]


def shifted(faketime: str, offset: str) -> dict[str, str]:
    """The environment of a process whose clocks read ``offset`` (``+3d``) off."""
    return {"LD_PRELOAD": faketime, "FAKETIME": offset}


@pytest.fixture
def shm_of() -> Iterator[list[int]]:
    """PIDs of processes run with libfaketime: the shared-memory files it leaves in /dev/shm
    (named by PID) are removed after the test."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/dev/shm/{name}")


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


def test_faketime_shifts_a_python_process(faketime: str, shm_of: list[int]):
    for offset, days in (("+3d", 3), ("-3d", -3)):
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; print(time.time())"],
            env={**os.environ, **shifted(faketime, offset)},
            stdout=subprocess.PIPE,
            text=True,
        )
        shm_of.append(proc.pid)
        out, _ = proc.communicate(timeout=30)
        assert float(out) - time.time() == pytest.approx(days * DAY, abs=60)


async def finished_items(swarm: RedisSwarm, running_worker, until, n: int) -> dict[str, str]:
    """``n`` items run to done by an ordinary worker: {idempotency key: work id}."""
    keys = {
        f"key-{i}": await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=f"key-{i}")
        for i in range(n)
    }
    async with running_worker([HashChainEngine()]):
        for work_id in keys.values():
            await until(lambda w=work_id: is_state(swarm, w, WorkState.DONE))
    return keys


async def test_a_worker_days_ahead_never_purges_work_early(
    shm_of, swarm, running_worker, spawn_worker, until, faketime, tmp_path
):
    keys = await finished_items(swarm, running_worker, until, 3)
    log = tmp_path / "attempts.jsonl"
    env = {**shifted(faketime, "+3d"), "ROOST_TEST_LOG": str(log)}
    proc = spawn_worker(env=env, retention=DAY)
    shm_of.append(proc.pid)
    # The shifted worker runs work, delays included, by the server's clock.
    later = await swarm.enqueue("hashchain", {"steps": 2, "delay": 1.0})
    await until(lambda: is_state(swarm, later, WorkState.DONE), 20.0)
    # A delay runs from the end of the step (as the worker estimates the server's clock),
    # not from its commit; both ends are read off the shifted worker's own clock.
    ends = {r["version"]: r for r in read_log(log) if r["work_id"] == later and "end" in r}
    gap = ends[2]["start"] - ends[1]["end"]
    assert 0.95 <= gap < 10.0, gap  # neither early nor days late
    await asyncio.sleep(1.0)  # its maintenance has made its purge pass by now
    assert proc.poll() is None
    for key, work_id in keys.items():
        assert (await swarm.status(work_id)).meta.state == WorkState.DONE
        assert await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=key) == work_id
    (shifted_worker,) = await swarm.workers()
    assert shifted_worker["pid"] == proc.pid
    assert abs(shifted_worker["started"] - (await swarm.client.time())[0]) < 60


async def test_a_worker_days_behind_still_purges_on_time(
    shm_of, swarm, running_worker, spawn_worker, until, faketime
):
    keys = await finished_items(swarm, running_worker, until, 3)
    await asyncio.sleep(2.5)  # older than the 2 s retention by the server's clock
    shm_of.append(spawn_worker(env=shifted(faketime, "-3d"), retention=2.0).pid)

    async def purged() -> bool:
        for work_id in keys.values():
            try:
                await swarm.status(work_id)
                return False
            except NotFound:
                pass
        return True

    await until(purged, 15.0)
    for key, work_id in keys.items():
        assert await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=key) != work_id
