"""I11: no work id, idempotency key, resource or queue name can form another one's key."""

from __future__ import annotations

import asyncio
import re
import uuid
from importlib.resources import files

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.redis import RedisSwarm
from roost.redis.keys import STATE_ORDER, Keys, decode_part, encode_part
from roost.runtime import RoostSettings, WorkItem, WorkState
from roost_testkit.engines import HashChainEngine, expected_state

from .conftest import registry  # noqa: TID252

SUFFIXES = (
    "item",
    "snap",
    "hist",
    "sig",
    "kids",
    "leases",
    "due",
    "strand",
    "lock:recover",
    "events",
)

# Names chosen to collide under a layout that writes names into keys as they are.
names = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text(alphabet=":|{}%~/@ .-_aX", min_size=0, max_size=12),
    st.text(min_size=300, max_size=600),
    st.builds(
        lambda base, suffix: f"{base}:{suffix}",
        st.text(alphabet="aX:{}", max_size=6),
        st.sampled_from(SUFFIXES),
    ),
)


def keys_of(keys: Keys, name: str) -> set[str]:
    """Every key a name can occupy, whatever kind of name it is."""
    return {
        *keys.item_keys(name),
        keys.sig(name),
        keys.kids(name),
        keys.idem(name),
        keys.res(name),
        keys.resw(name),
        keys.worker(name),
        keys.job(Keys.job_suffix(name, "0123456789abcdef")),
    }


@given(names)
def test_encoding_is_one_to_one_and_never_holds_a_separator(name: str):
    part = encode_part(name)
    assert decode_part(part) == name
    assert not set(part) & set(":|{} ")
    assert part.isascii()


@given(st.from_regex(r"[A-Za-z0-9_.-]*", fullmatch=True))
def test_ordinary_names_keep_the_keys_of_the_earlier_layout(name: str):
    keys = Keys("roost", "default", "roost")
    assert encode_part(name) == name
    assert keys.meta(name) == f"roost:{{default}}:w:{name}"
    assert keys.item(name) == f"roost:{{default}}:w:{name}:item"
    assert keys.idem(name) == f"roost:{{default}}:idem:{name}"
    assert keys.res(name) == f"roost:{{default}}:res:{name}"
    assert Keys.job_suffix(name, "d") == f"{name}|d"


@given(names, names)
def test_two_names_never_share_a_key(a: str, b: str):
    keys = Keys("roost", "default", "roost")
    mine, theirs = keys_of(keys, a), keys_of(keys, b)
    assert len(mine) == 11  # a name's own keys are distinct too
    if a != b:
        assert not mine & theirs
    assert not mine & set(keys.ns)


@given(names, names)
def test_a_delivery_names_its_item_whatever_the_id(work_id: str, other: str):
    keys = Keys("roost", "default", "roost")
    job = keys.job(Keys.job_suffix(work_id, "00ff"))
    if work_id:
        assert keys.parse_job(job) == (work_id, "00ff")
    assert keys.for_queue(other or "q").parse_job(job) is None or (other or "q") == "roost"


def per_queue(k: Keys) -> set[str]:
    return {k.leases, k.due, k.strand, k.recover_lock, k.saq_queued, k.saq_active, k.job("s|d")}


def per_namespace(k: Keys) -> set[str]:
    return {k.events, k.stats, k.workers, k.state("queued"), k.meta("x"), k.idem("x")}


Triple = tuple[str, str, str]


@given(st.tuples(names, names, names), st.tuples(names, names, names))
def test_namespaces_and_queues_never_share_keys(one: Triple, two: Triple):
    a, b = Keys(*one), Keys(*two)
    if one != two:
        assert not per_queue(a) & (per_queue(b) | per_namespace(b))
    if one[:2] != two[:2]:
        assert not per_namespace(a) & per_namespace(b)


def test_parse_job_refuses_what_is_not_an_encoding():
    keys = Keys("roost", "default", "roost")
    prefix = keys.job("")
    for tail in ("%zz|00", "a%3a|00", "%41|00", "|00", "abc|", "abc"):
        assert keys.parse_job(prefix + tail) is None


# -- on a real server -------------------------------------------------------------------------

WORK_IDS = ["X", "X:item", "X:snap", "X:hist", "X:item:item", "a/b", "a@b:snap", "q:roost:leases"]
IDEMPOTENCY = ["k", "k:x", "{k}", "%", "%25", "ключ 🔑", "a|b", "x" * 200, " ", "w:X"]
RESOURCES = [["r"], ["r:x"], ["r/x"], [], ["r"], ["r:x:item"], [], ["a@b"]]


async def test_colliding_names_each_keep_their_own_item_end_to_end(swarm, running_worker, until):
    items = [
        WorkItem(
            work_id=work_id,
            engine="hashchain",
            payload={"steps": 2},
            resources=resources,
            idempotency_key=idem,
        )
        for work_id, idem, resources in zip(WORK_IDS, IDEMPOTENCY, RESOURCES, strict=False)
    ]
    extra = [
        WorkItem(engine="hashchain", payload={"steps": 2}, idempotency_key=k)
        for k in IDEMPOTENCY[len(WORK_IDS) :]
    ]
    ids = await swarm.enqueue_many([*items, *extra])
    assert ids[: len(WORK_IDS)] == WORK_IDS
    assert len(set(ids)) == len(ids)

    async def all_done() -> bool:
        return (await swarm.counts())["done"] == len(ids)

    async with running_worker([HashChainEngine()], concurrency=4):
        await until(all_done, 30.0)
    for work_id in ids:
        status = await swarm.status(work_id)
        assert status.meta.state == WorkState.DONE and status.meta.version == 3
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(work_id, 2)
        kinds = [e.type for e in await swarm.events(work_id=work_id)]
        assert kinds[0] == "enqueued" and kinds[-1] == "done"
    # Each idempotency key still names its own item.
    for idem, work_id in zip(IDEMPOTENCY, ids, strict=True):
        assert await swarm.enqueue("hashchain", {}, idempotency_key=idem) == work_id
    assert (await swarm.counts())["done"] == len(ids)


async def test_an_id_that_looks_like_another_items_key_is_simply_unknown(swarm):
    work_id = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key="k")
    for probe in (f"{work_id}:item", f"{work_id}:snap", "k", f"{work_id}|x", "{x}", "%"):
        with pytest.raises(LookupError):
            await swarm.status(probe)
    assert (await swarm.status(work_id)).meta.state == WorkState.QUEUED


# An id next to ids that extend it the way item keys extend the id's meta key.
id_families = st.builds(
    lambda base, tails: list(dict.fromkeys([base, *(base + t for t in tails)])),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,20}", fullmatch=True),
    st.lists(st.sampled_from([":item", ":snap", ":hist", ":item:item", "/x", ":"]), max_size=3),
)
work_ids = st.lists(id_families, min_size=1, max_size=3).map(
    lambda families: list(dict.fromkeys(i for family in families for i in family))
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    work_ids,
    st.lists(st.text(min_size=1, max_size=200), min_size=12, max_size=12, unique=True),
)
def test_adversarial_names_never_disturb_each_other_on_a_real_server(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, ids: list[str], idems: list[str]
):
    settings_ = RoostSettings.from_env(
        {},
        redis_url=redis_url,
        home=tmp_path_factory.mktemp("home"),
        namespace=f"t{uuid.uuid4().hex[:8]}",
    )

    async def check() -> None:
        async with RedisSwarm(settings_, registry=registry()) as swarm:
            items = [
                WorkItem(
                    work_id=work_id,
                    engine="hashchain",
                    payload={"n": i},
                    idempotency_key=idems[i],
                    resources=[work_id],
                )
                for i, work_id in enumerate(ids)
            ]
            assert await swarm.enqueue_many(items) == ids
            for i, work_id in enumerate(ids):
                status = await swarm.status(work_id)
                assert status.item is not None and status.item.payload == {"n": i}
                assert status.meta.idempotency_key == idems[i]
                assert await swarm.enqueue("hashchain", {}, idempotency_key=idems[i]) == work_id
            await swarm.cancel(ids[0])
            assert (await swarm.status(ids[0])).meta.state == WorkState.CANCELLED
            for work_id in ids[1:]:
                assert (await swarm.status(work_id)).meta.state == WorkState.QUEUED
            assert (await swarm.counts())["queued"] == len(ids) - 1

    asyncio.run(check())


def _lua_table(name: str) -> list[str]:
    """The names in one of the prelude's tables: ``{'a', 'b'}`` or ``{a = true, b = true}``."""
    prelude = files("roost.redis").joinpath("lua", "_prelude.lua").read_text()
    body = re.search(rf"local {name} = \{{(.*?)\}}", prelude, re.S)
    assert body is not None, name
    return [a or b for a, b in re.findall(r"'([a-z_]+)'|([a-z_]+) = true", body.group(1))]


def test_the_scripts_know_the_states_python_knows() -> None:
    # One state index per state, in the order both sides use for KEYS.
    assert _lua_table("STATES") == [s.value for s in STATE_ORDER]
    assert set(STATE_ORDER) == set(WorkState)
    assert set(_lua_table("TERMINAL")) == {s.value for s in WorkState if s.is_terminal}
