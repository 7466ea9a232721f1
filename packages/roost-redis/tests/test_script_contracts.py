"""Every script's header (lua/NAME.lua) states the contract its Python method packs by."""

from __future__ import annotations

import typing
from importlib.resources import files

import pytest

from roost.redis.calls import CONTRACTS, ScriptCalls
from roost.redis.contract import (
    Code,
    Contract,
    ContractError,
    Slot,
    decode,
    pack,
    packer,
    parse_header,
)
from roost.redis.replies import (
    AcquireReply,
    CommitReply,
    DequeueReply,
    EnqueueReply,
    RenewReply,
    StateReply,
)
from roost.redis.scripts import LIBRARY, SCHEDULE_LIBRARY
from roost_testkit.by_hand import lease

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
    contract = Contract.of("x", keys="@due meta res* kids? items*(a b)", args="", replies={"": ""})
    assert contract.namespace_keys == ("due",)
    slots = contract.own_keys
    out = pack(
        slots,
        {"meta": "m", "res": ["r1", "r2"], "items": [{"b": 2, "a": 1}, {"a": 3, "b": 4}]},
        ["N"],
    )
    assert out == ["N", "m", "r1", "r2", 1, 2, 3, 4]
    with pytest.raises(ContractError, match="no slot for"):
        pack(slots, {"meta": "m", "extra": 1}, [])
    with pytest.raises(ContractError, match="no value for meta"):
        pack(slots, {"res": []}, [])
    with pytest.raises(ContractError, match="store's to fill"):
        pack(contract.keys, {"meta": "m"}, [])


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


def sample_values(slots: tuple[Slot, ...], n: int, *, full: bool) -> dict[str, object]:
    """Values for ``slots``: every ``*`` slot ``n`` long (groups of samples too); ``?`` ones
    present when ``full``."""
    values: dict[str, object] = {}
    for slot in slots:
        if slot.group:
            values[slot.name] = [
                sample_values(slot.group, n, full=full) | {"_i": i} for i in range(n)
            ]
        elif slot.many:
            values[slot.name] = [f"{slot.name}{i}" for i in range(n)]
        elif full or not slot.optional:
            values[slot.name] = f"<{slot.name}>"
    return values


def group_free(values: dict[str, object]) -> dict[str, object]:
    """``values`` without the marker sample_values puts in group members."""
    return {
        k: [group_free(m) if isinstance(m, dict) else m for m in v] if isinstance(v, list) else v  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        for k, v in values.items()
        if k != "_i"
    }


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_compiled_packers_lay_out_and_refuse_as_pack_does(name: str) -> None:
    contract = CONTRACTS[name]
    for slots, compiled in (
        (contract.own_keys, contract.pack_keys),
        (contract.own_args, contract.pack_args),
    ):
        for n in (0, 1, 3):
            for full in (False, True):
                values = group_free(sample_values(slots, n, full=full))
                assert compiled(values, ["N"]) == pack(slots, values, ["N"])
        values = group_free(sample_values(slots, 2, full=True))
        with pytest.raises(ContractError, match="no slot for"):
            compiled({**values, "stranger": 1}, [])
        for slot in slots:
            if not (slot.many or slot.optional):
                lacking = {k: v for k, v in values.items() if k != slot.name}
                with pytest.raises(ContractError, match=f"no value for {slot.name}"):
                    compiled(lacking, [])


def test_a_packer_is_compiled_only_from_names_the_notation_makes() -> None:
    with pytest.raises(ContractError, match="not a slot name"):
        packer((Slot("meta"), Slot("x'] + __import__('os').getpid() + ['")))
    with pytest.raises(ContractError, match="store's to fill"):
        packer((Slot("due", namespace=True),))


REPLY_CLASSES = {
    "acquire": AcquireReply,
    "commit": CommitReply,
    "enqueue": EnqueueReply,
    "renew": RenewReply,
    "dequeue": DequeueReply,
    "cancel": StateReply,
}


@pytest.mark.parametrize("name", sorted(REPLY_CLASSES))
def test_a_whole_reply_decodes_as_field_by_field(name: str) -> None:
    """A reply with every field (decoded by the compiled path) and one cut short (the
    general path) type every field they carry alike."""
    contract, cls = CONTRACTS[name], REPLY_CLASSES[name]
    raw_of = {int: ("7", 7), float: ("1.5", 1.5), str: ("s", "s"), bool: ("1", True)}
    hints = typing.get_type_hints(cls)
    for code, fields in contract.replies.items():
        raw: list[object] = [] if code is None else [str(code)]
        expected: dict[str, object] = {} if code is None else {"code": code}
        for slot in fields:
            if slot.group:
                raw += ["a", "1", "b", "0"]
                expected[slot.name] = [("a", "1"), ("b", "0")]
            elif slot.many:
                raw += ["x", "y"]
                expected[slot.name] = ["x", "y"]
            else:
                hint = hints[slot.name]
                inner = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
                raw.append(raw_of[inner][0])
                expected[slot.name] = raw_of[inner][1]
        assert decode(contract, raw, cls) == cls(**expected)
        if fields and not fields[-1].many:
            del expected[fields[-1].name]
            assert decode(contract, raw[:-1], cls) == cls(**expected)
            with pytest.raises(ContractError, match="more than its contract"):
                decode(contract, [*raw, "extra"], cls)
        if code is not None:
            with pytest.raises(ContractError, match="does not answer"):
                decode(contract, ["NOPE", *raw[1:]], cls)


def test_a_header_without_a_contract_is_refused() -> None:
    with pytest.raises(ContractError):
        parse_header("x", "-- does things\nlocal a = 1\n")


# -- only the keys a script uses ------------------------------------------------------------

GLOBAL_SLOTS = {
    "state_key": "states",
    "LEASES": "leases",
    "DUE": "due",
    "EVENTS": "events",
    "STATS": "stats",
    "SAQ_QUEUED": "saq_queued",
    "SAQ_ACTIVE": "saq_active",
    "SAQ_INCOMPLETE": "saq_incomplete",
    "STRAND": "strand",
    "ENGINES": "engines",
    "SAQ_NAME": "saq_name",
    "EVENTS_MAXLEN": "events_maxlen",
    "WORKER": "worker",
    "LEASE_TTL": "lease_ttl",
    "ENGINE": "engine",
}
"""The prelude's per-call values (set by begin) and the namespace slot each comes from."""


def prelude_helpers() -> dict[str, str]:
    """The prelude's top-level functions by name, each with the code that follows it."""
    import re

    parts = re.split(
        r"^local function (\w+)\(", LUA.joinpath("_prelude.lua").read_text(), flags=re.M
    )
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def reached_slots(body: str, helpers: dict[str, str]) -> set[str]:
    """The namespace slots a script's code reaches, through the helpers it calls."""
    import re

    seen: set[str] = set()
    todo, slots = [body], set()
    while todo:
        code = re.sub(r"--[^\n]*", "", todo.pop())  # comments name things they do not use
        for word in set(re.findall(r"\b\w+\b", code)):
            if word in GLOBAL_SLOTS:
                slots.add(GLOBAL_SLOTS[word])
            if word in helpers and word not in seen and word != "begin":
                seen.add(word)
                todo.append(helpers[word])
    return slots


@pytest.mark.parametrize("name", sorted(LIBRARY.functions))
def test_a_script_takes_exactly_the_namespace_keys_its_code_reaches(name: str) -> None:
    """Every key a script touches comes through KEYS, and no unused one is shipped."""
    contract = header(name)
    reached = reached_slots(LUA.joinpath(f"{name}.lua").read_text(), prelude_helpers())
    assert set(contract.namespace_keys) | set(contract.namespace_args) == reached


def test_the_reach_analysis_sees_the_helpers() -> None:
    helpers = prelude_helpers()
    assert {"emit", "set_state", "saq_push", "release_lease", "queue_item"} <= set(helpers)
    assert reached_slots("emit('x', 'w')", helpers) == {"events", "events_maxlen", "worker"}
    assert "states" in reached_slots("queue_item(meta, w, 's', j, k, d)", helpers)


def test_begin_is_called_with_the_header_layout() -> None:
    from roost.redis.scripts import begin_call

    source = LUA.joinpath("renew.lua").read_text()
    # renew takes @leases (KEYS[1]) and @lease_ttl (ARGV[1]) only.
    nils = ", ".join(["nil"] * 3)
    assert begin_call("renew", source) == (
        f"begin(KEYS, ARGV, 1, 1, nil, 1, nil, nil, nil, nil, nil, nil, nil, nil, {nils}, 1, nil)"
    )
    with pytest.raises(ContractError, match="out of order"):
        begin_call("x", "-- KEYS: @due @states\n-- ARGV:\n-- REPLY OK\n")


def test_the_prelude_orders_states_as_python_does() -> None:
    import re

    from roost.redis.keys import STATE_ORDER

    prelude = LUA.joinpath("_prelude.lua").read_text()
    states = re.search(r"local STATES = \{([^}]*)\}", prelude)
    index = re.search(r"local STATE_INDEX = \{([^}]*)\}", prelude)
    assert states and index
    assert re.findall(r"'(\w+)'", states.group(1)) == [str(s) for s in STATE_ORDER]
    offsets = dict(re.findall(r"(\w+) = (\d+)", index.group(1)))
    assert {k: int(v) for k, v in offsets.items()} == {str(s): i for i, s in enumerate(STATE_ORDER)}


# -- the schedule library (lua/schedules) ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEDULE_LIBRARY.functions))
def test_schedule_headers_match_python(name: str) -> None:
    from roost.redis.schedule_data import SCHEDULE_CONTRACTS, ScheduleScripts

    assert set(SCHEDULE_CONTRACTS) == set(SCHEDULE_LIBRARY.functions)
    assert callable(getattr(ScheduleScripts, name, None))
    source = LUA.joinpath("schedules", f"{name}.lua").read_text()
    lua = parse_header(name, source)
    assert lua.describe() == SCHEDULE_CONTRACTS[name].describe()
    assert not lua.namespace_keys and not lua.namespace_args  # no prelude, no namespace block
    import re

    returned = set(re.findall(r"\{'([A-Z]+)'[,}]", source))
    assert returned == {str(c) for c in lua.replies if c is not None}


# -- the namespace block a call starts with -------------------------------------------------


async def test_a_call_carries_the_worker_id_of_the_moment_and_keeps_few_blocks(swarm) -> None:
    """The namespace block of a script on a route is kept, but made again for a new worker id;
    routes built afresh for every call (another queue's) do not pile up blocks."""
    from roost.redis.schema import Meta

    route = swarm.keys.for_engine("hashchain")
    leased: dict[str, str] = {}
    for worker in ("first-worker", "second-worker"):
        swarm.worker_id = worker
        work_id = await swarm.enqueue("hashchain", {})
        await lease(swarm, work_id, route)
        leased[worker] = await swarm.client.hget(swarm.keys.meta(work_id), Meta.LEASE_WORKER)
    assert leased == {"first-worker": "first-worker", "second-worker": "second-worker"}
    for _ in range(50):
        other = swarm.keys.for_queue("another-queue")  # a new Keys object each time
        assert (await swarm.calls.cancel(other, work_id="nobody")).code is Code.GONE
    assert len(swarm.calls._blocks) <= 4  # pyright: ignore[reportPrivateUsage]
