"""Roost's Lua as a Functions library: built from the files there are, reloaded when missing."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from roost.redis.faults import describe, is_outage
from roost.redis.scripts import (
    LIBRARY,
    SCRIPT_NAMES,
    Library,
    NotReplicated,
    Scripts,
    build_library,
)
from roost.redis.swarm import RedisSwarm


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
