"""Roost's Lua as a Functions library: built from the files there are, reloaded when missing."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from roost.redis.faults import describe, is_outage
from roost.redis.scripts import (
    LIBRARIES,
    LIBRARY,
    SCRIPT_NAMES,
    Library,
    NotReplicated,
    Scripts,
    build_library,
    library_names,
    prune_libraries,
)
from roost.redis.swarm import RedisSwarm
from roost_testkit.engines import HashChainEngine


def test_every_lua_file_is_a_function_without_registration() -> None:
    lua = Path(str(files("roost.redis").joinpath("lua")))
    stems = {p.stem for p in lua.glob("*.lua") if not p.name.startswith("_")}
    assert set(SCRIPT_NAMES) == stems
    for name in SCRIPT_NAMES:
        assert f"redis.register_function('{LIBRARY.functions[name]}'" in LIBRARY.code


def test_a_new_file_joins_and_changes_the_library_name(tmp_path: Path) -> None:
    (tmp_path / "one.lua").write_text("return 1\n")
    before = build_library(tmp_path, "t", prelude="local X = 1")
    (tmp_path / "two-words.lua").write_text("return X\n")
    after = build_library(tmp_path, "t", prelude="local X = 1")
    assert set(after.functions) == {"one", "two-words"}
    assert after.functions["two-words"].endswith("_two_words")
    assert before.name != after.name and after.name.startswith("t_")


async def test_a_flushed_library_is_loaded_again_and_the_call_succeeds(
    swarm: RedisSwarm,
) -> None:
    first = await swarm.enqueue("echo", {"n": 1})
    client = swarm.client
    assert LIBRARY.name in str(await client.execute_command("FUNCTION LIST"))
    await client.execute_command("FUNCTION FLUSH")
    second = await swarm.enqueue("echo", {"n": 2})  # Function not found -> load -> retry
    assert {(await swarm.status(w)).meta.state for w in (first, second)} == {"queued"}
    assert LIBRARY.name in str(await client.execute_command("FUNCTION LIST"))


async def test_a_missing_function_is_an_outage_with_its_own_words(swarm: RedisSwarm) -> None:
    scripts = Scripts(swarm.client)
    with pytest.raises(ResponseError) as caught:
        await swarm.client.execute_command("FCALL", "roost_no_such_function", 0)
    assert is_outage(caught.value)
    assert "Functions library is missing" in describe(caught.value)
    assert scripts.sha("commit") == LIBRARY.functions["commit"]


def touch_library(tmp_path: Path) -> Library:
    (tmp_path / "touch.lua").write_text("redis.call('SET', KEYS[1], ARGV[1])\nreturn 1\n")
    return build_library(tmp_path, "touch")


async def test_a_write_no_replica_confirms_is_not_acknowledged(
    swarm: RedisSwarm, tmp_path: Path
) -> None:
    scripts = Scripts(swarm.client, touch_library(tmp_path))
    key = swarm.keys.base + "touched"
    with pytest.raises(NotReplicated) as caught:
        await scripts.acked("touch", [key], ["v"], replicas=1, probe_key=swarm.keys.ack, wait_ms=50)
    assert is_outage(caught.value)  # backed off and retried, never an attempt
    assert "0 of 1 replicas" in str(caught.value)
    # without replicas asked for, the same call is acknowledged by the primary alone
    assert await scripts.acked("touch", [key], ["w"], fsync=False) == 1
    assert await swarm.client.get(key) == "w"


def old_version(tmp_path: Path, label: str) -> Library:
    """A library as another version of Roost names it (``roost_<hash>``)."""
    (tmp_path / label).mkdir()
    (tmp_path / label / "touch.lua").write_text("redis.call('SET', KEYS[1], ARGV[1])\nreturn 1\n")
    return build_library(tmp_path / label, label)


async def announce_old_worker(swarm: RedisSwarm, worker_id: str) -> None:
    """A live worker's heartbeat as a version before ``libraries`` was announced writes it."""
    seconds, _ = await swarm.client.time()
    await swarm.client.zadd(swarm.keys.workers, {worker_id: (int(seconds) + 60) * 1000})
    info = {"queue": swarm.settings.queue, "engines": ["echo"], "heartbeat": int(seconds)}
    await swarm.client.hset(swarm.keys.worker(worker_id), "info", json.dumps(info))


async def test_a_worker_deletes_other_versions_libraries_once_every_live_worker_runs_its_own(
    swarm: RedisSwarm, running_worker, until, tmp_path: Path
) -> None:
    old, old_sched = old_version(tmp_path, "roost"), old_version(tmp_path, "roost_sched")
    mine = old_version(tmp_path, "mine")  # a user's own library is never Roost's to delete
    for library in (old, old_sched, mine):
        await Scripts(swarm.client, library).load()
    await swarm.enqueue("hashchain", {"steps": 1})  # this version's library is loaded too
    assert set(await library_names(swarm.client)) == {old.name, old_sched.name, LIBRARY.name}
    await announce_old_worker(swarm, "older-1")
    async with running_worker([HashChainEngine()]) as worker:

        async def announced() -> bool:
            mine = [w for w in await swarm.workers() if w["worker_id"] == worker.worker_id]
            return bool(mine) and mine[0]["libraries"] == list(LIBRARIES)

        await until(announced)
        work_id = await swarm.enqueue("hashchain", {"steps": 1})  # it runs steps after pruning
        await until(lambda: is_done(swarm, work_id))
    every = await listed(swarm)
    assert every >= {old.name, old_sched.name, mine.name, LIBRARY.name}
    assert every <= {old.name, old_sched.name, mine.name, *LIBRARIES}  # nothing deleted
    await swarm.client.zrem(swarm.keys.workers, "older-1")
    async with running_worker([HashChainEngine()]):
        await until(lambda: gone(swarm, old.name))
    assert await listed(swarm) == every - {old.name, old_sched.name}
    # An older process still calling its library finds it gone, loads it, and goes on.
    key = swarm.keys.base + "touched"
    assert await Scripts(swarm.client, old)("touch", [key], ["v"]) == 1
    assert old.name in await listed(swarm)


async def is_done(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.state == "done"


async def gone(swarm: RedisSwarm, library: str) -> bool:
    return library not in await listed(swarm)


async def listed(swarm: RedisSwarm) -> set[str]:
    reply: Any = await swarm.client.execute_command("FUNCTION LIST")
    return {str(dict(zip(e[::2], e[1::2], strict=True))["library_name"]) for e in reply}


async def test_pruning_is_housekeeping_that_never_stops_a_caller(
    swarm: RedisSwarm, tmp_path: Path
) -> None:
    old = old_version(tmp_path, "roost")
    await Scripts(swarm.client, old).load()

    async def fleet_of_this_version() -> list[dict[str, Any]]:
        return [{"worker_id": "peer", "libraries": list(LIBRARIES)}]

    async def fleet_unreadable() -> list[dict[str, Any]]:
        raise RedisConnectionError("Redis went away")

    assert await prune_libraries(swarm.client, fleet_unreadable, "me") == []
    assert old.name in await listed(swarm)
    assert await prune_libraries(swarm.client, fleet_of_this_version, "me") == [old.name]
    assert old.name not in await listed(swarm)
    assert await prune_libraries(swarm.client, fleet_of_this_version, "me") == []
