"""Every script's header (lua/NAME.lua) states the contract its Python method packs by."""

from __future__ import annotations

from importlib.resources import files

import pytest

from roost.redis.calls import CONTRACTS, ScriptCalls
from roost.redis.contract import (
    Code,
    Contract,
    ContractError,
    decode,
    pack,
    parse_header,
    parse_slots,
)
from roost.redis.replies import CommitReply, EnqueueReply, StateReply
from roost.redis.scripts import LIBRARY

LUA = files("roost.redis").joinpath("lua")


def header(name: str) -> Contract:
    return parse_header(name, LUA.joinpath(f"{name}.lua").read_text())


def test_every_script_has_a_contract_and_a_method() -> None:
    assert set(CONTRACTS) == set(LIBRARY.functions)
    for name in LIBRARY.functions:
        assert callable(getattr(ScriptCalls, name, None)), name


@pytest.mark.parametrize("name", sorted(LIBRARY.functions))
def test_header_matches_python(name: str) -> None:
    lua, py = header(name), CONTRACTS[name]
    # Names, order and count of KEYS and ARGV, and every reply code with its fields.
    assert [str(s) for s in lua.keys] == [str(s) for s in py.keys]
    assert [str(s) for s in lua.args] == [str(s) for s in py.args]
    assert {c: [str(s) for s in f] for c, f in lua.replies.items()} == {
        c: [str(s) for s in f] for c, f in py.replies.items()
    }
    assert lua.describe() == py.describe()


@pytest.mark.parametrize("name", sorted(LIBRARY.functions))
def test_every_returned_code_is_in_the_header(name: str) -> None:
    """A code the script's body returns (``return {'CODE'...``) is listed in its header."""
    import re

    body = LUA.joinpath(f"{name}.lua").read_text()
    returned = set(re.findall(r"\{'([A-Z]+)'[,}]", body))
    if name in ("commit", "fail", "release"):
        returned |= {"GONE", "DUP", "STALE", "CANCELLED"}  # holder_call in the prelude
    if name == "commit":
        returned |= {"TAKEN", "RACE"}  # kids_plan in the prelude
    if name == "progress":
        returned |= {"STALE", "GONE"}  # check_lease in the prelude
    assert returned == {str(c) for c in header(name).replies if c is not None}


def test_pack_lays_out_by_name_and_refuses_strangers() -> None:
    slots = parse_slots("@ns meta res* kids? items*(a b)")
    out = pack(
        slots,
        {"meta": "m", "res": ["r1", "r2"], "items": [{"b": 2, "a": 1}, {"a": 3, "b": 4}]},
        [],
        lambda _name: ["N1", "N2"],
    )
    assert out == ["N1", "N2", "m", "r1", "r2", 1, 2, 3, 4]
    with pytest.raises(ContractError, match="no slot for"):
        pack(slots, {"meta": "m", "extra": 1}, [], lambda _n: [])
    with pytest.raises(ContractError, match="no value for meta"):
        pack(slots, {"res": []}, [], lambda _n: [])


def test_decode_types_the_reply() -> None:
    commit = CONTRACTS["commit"]
    ok = decode(commit, ["OK", 7, "1-0", 1, 1000, 0, 1], CommitReply)
    assert ok == CommitReply(Code.OK, version=7, event_id="1-0", woken=1, now=1000.0, paused=True)
    assert decode(commit, ["CONFLICT", "3"], CommitReply).version == 3
    assert decode(commit, ["RACE", "k"], CommitReply).key == "k"
    with pytest.raises(ContractError):
        decode(commit, ["WOKE", "1"], CommitReply)  # not a code commit answers
    with pytest.raises(ContractError):
        decode(CONTRACTS["cancel"], ["OK", "queued", "extra"], StateReply)
    pairs = decode(CONTRACTS["enqueue"], ["a", 1, "b", 0], EnqueueReply)
    assert pairs.items == [("a", 1), ("b", 0)]


def test_a_header_without_a_contract_is_refused() -> None:
    with pytest.raises(ContractError):
        parse_header("x", "-- does things\nlocal a = 1\n")
