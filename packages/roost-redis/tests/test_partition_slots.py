"""Every script call's keys share one cluster slot, in every partition of a namespace.

Two guards. On paper: every script's KEYS, built for an item of partition ``k`` (of ``P = 1``
and of ``P = 8``), hash to one slot, the slot of that partition's tag, and the partitions'
tags are distinct. On a real server: a workload that goes through most scripts (enqueue,
acquire, commit with children, fail, signal, pause, resume, cancel, retry, replay, budget...)
is watched with ``MONITOR``, and every ``FCALL`` it sends has keys of one slot.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.crc import key_slot

from roost.redis import RedisSwarm
from roost.redis.contract import Slot
from roost.redis.contracts import CONTRACTS
from roost.redis.keys import Keys
from roost.runtime import RoostSettings
from roost.runtime.models import WorkState
from roost_testkit.engines import HashChainEngine
from roost_testkit.family import FanOutEngine
from roost_testkit.waiting import MeteredEngine, SignalCollector

from .conftest import WorkerFactory  # noqa: TID252

WORK_ID = "X:item"
NAME = "r{x}:1"

OWN_KEYS: dict[str, Callable[[Keys], str]] = {
    "meta": lambda k: k.meta(WORK_ID),
    "item": lambda k: k.item(WORK_ID),
    "snap": lambda k: k.snap(WORK_ID),
    "hist": lambda k: k.hist(WORK_ID),
    "sig": lambda k: k.sig(WORK_ID),
    "kids": lambda k: k.kids(WORK_ID),
    "idem": lambda k: k.idem(NAME),
    "res": lambda k: k.res(NAME),
    "resw": lambda k: k.resw(NAME),
    "job": lambda k: k.job(Keys.job_suffix(WORK_ID, "d0")),
    "new_job": lambda k: k.job(Keys.job_suffix(WORK_ID, "d1")),
    "beats": lambda k: k.beats,
    "key": lambda k: k.events_pump,
    "old_queued": lambda k: k.for_queue(k.queue).saq_queued,
    "old_incomplete": lambda k: k.for_queue(k.queue).saq_incomplete,
}
"""How a script's own (non-``@``) key slots are built, as ``roost.redis.calls`` builds them."""


def _own_keys(slots: tuple[Slot, ...], keys: Keys) -> list[str]:
    out: list[str] = []
    for slot in slots:
        if slot.namespace:
            continue
        out += _own_keys(slot.group, keys) if slot.group else [OWN_KEYS[slot.name](keys)]
    return out


def _script_keys(name: str, keys: Keys) -> list[str]:
    contract = CONTRACTS[name]
    return keys.slot_keys(contract.namespace_keys) + _own_keys(contract.keys, keys)


def test_every_key_slot_of_every_script_is_known():
    def names(slots: tuple[Slot, ...]) -> set[str]:
        found: set[str] = set()
        for s in slots:
            if s.group:
                found |= names(s.group)
            elif not s.namespace:
                found.add(s.name)
        return found

    used = set().union(*(names(c.keys) for c in CONTRACTS.values()))
    assert used == set(OWN_KEYS)


@pytest.mark.parametrize(("partitions", "partition"), [(1, 0), *((8, k) for k in range(8))])
@pytest.mark.parametrize("script", sorted(CONTRACTS))
def test_a_scripts_keys_share_their_partitions_slot(script: str, partitions: int, partition: int):
    keys = Keys("roost", "ns", "q", partition=partition).for_engine("e")
    slots = {key_slot(k.encode()) for k in _script_keys(script, keys)}
    assert slots == {key_slot(keys.base.encode())}


def test_partition_zero_keeps_todays_keys_and_the_others_their_own_slots():
    home = Keys("roost", "ns", "q")
    assert Keys("roost", "ns", "q", partition=0).meta("w") == home.meta("w") == "roost:{ns}:w:w"
    assert Keys("roost", "ns", "q", partition=3).meta("w") == "roost:{ns|3}:w:w"
    bases = [Keys("roost", "ns", "q", partition=k).base for k in range(8)]
    assert len({key_slot(b.encode()) for b in bases}) == 8
    # What exists once per namespace stays in the home partition.
    third = home.for_partition(3)
    assert (third.workers, third.worker("w"), third.conf) == (
        home.workers,
        home.worker("w"),
        home.conf,
    )


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@given(names, st.integers(0, 127), names, st.integers(0, 127))
def test_no_partition_tag_is_another_namespaces_or_partitions(
    a: str, i: int, b: str, j: int
) -> None:
    tag_a = Keys("p", a, "q", partition=i).base
    tag_b = Keys("p", b, "q", partition=j).base
    assert (tag_a == tag_b) == ((a, i) == (b, j))


# -- on a real server -------------------------------------------------------------------------

_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


async def _watch(url: str, namespace: str, calls: list[tuple[str, list[str]]]) -> None:
    """Record every FCALL on the server whose keys name ``namespace``: (function, keys)."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        async with client.monitor() as monitor:
            assert monitor.connection is not None
            while True:
                raw: Any = await monitor.connection.read_response()
                line = raw.decode() if isinstance(raw, bytes) else str(raw)
                args = _ARG.findall(line.split("] ", 1)[-1])
                if len(args) < 3 or args[0].upper() not in ("FCALL", "FCALL_RO"):
                    continue
                keys = args[3 : 3 + int(args[2])]
                if any(f"{{{namespace}" in k for k in keys):
                    calls.append((args[1], keys))
    finally:
        await client.aclose()


@pytest.fixture(params=[1, 4], ids=["P=1", "P=4"])
def settings(settings: RoostSettings, request: pytest.FixtureRequest) -> RoostSettings:
    return RoostSettings.from_env({}, **{**settings.model_dump(), "partitions": request.param})


async def test_every_script_call_of_a_workload_has_keys_of_one_slot(
    settings: RoostSettings, swarm: RedisSwarm, running_worker: WorkerFactory, until: Any
):
    assert settings.redis_url is not None
    calls: list[tuple[str, list[str]]] = []
    watcher = asyncio.create_task(_watch(settings.redis_url, settings.namespace, calls))
    await asyncio.sleep(0.2)  # MONITOR is on before the first call
    try:
        engines = [HashChainEngine(), FanOutEngine(), SignalCollector(), MeteredEngine()]
        async with running_worker(engines, concurrency=8, inline_steps=0):
            chained = await swarm.enqueue(
                "hashchain", {"steps": 2}, resources=["gpu/0"], idempotency_key="gpu/k:1"
            )
            later = await swarm.enqueue("hashchain", {"steps": 1}, delay_seconds=0.3)
            parent = await swarm.enqueue("fanout", {"children": 2, "key_prefix": "kid"})
            waiting = await swarm.enqueue("collector", {"rounds": 1})
            doomed = await swarm.enqueue("metered", {"steps": 1, "fail_times": 1}, max_attempts=1)
            to_cancel = await swarm.enqueue("collector", {"rounds": 1})

            async def state(work_id: str, *wanted: WorkState) -> bool:
                return (await swarm.status(work_id)).meta.state in wanted

            await until(lambda: state(waiting, WorkState.WAITING, WorkState.AWAITING))
            await swarm.pause(waiting)
            await swarm.resume(waiting)
            await swarm.raise_budget(waiting, steps=5)
            await swarm.signal(waiting, "go", {"n": 1})
            await until(lambda: state(to_cancel, WorkState.WAITING, WorkState.AWAITING))
            await swarm.cancel(to_cancel)
            await until(lambda: state(doomed, WorkState.DEAD))
            assert (await swarm.retry(doomed)).state is not WorkState.DEAD
            await until(lambda: state(doomed, WorkState.DEAD))  # its first attempt fails again
            for work_id in (chained, later, parent, waiting):
                await until(lambda w=work_id: state(w, WorkState.DONE))
            await swarm.replay(chained)
            await until(lambda: state(chained, WorkState.DONE))
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    slots: set[int] = set()
    for function, keys in calls:
        assert len({key_slot(k.encode()) for k in keys}) == 1, (function, keys)
        slots.add(key_slot(keys[0].encode()))
    assert len(slots) == settings.partitions  # with P = 4, every partition took calls
    seen = {name.rsplit("_", 1)[-1] for name, _ in calls}
    assert seen >= WATCHED, WATCHED - seen


WATCHED = {
    "acquire",
    "budget",
    "cancel",
    "commit",
    "dequeue",
    "enqueue",
    "fail",
    "pause",
    "promote",
    "replay",
    "resume",
    "retry",
    "signal",
}
"""The scripts the workload must send (the others are held to one slot on paper above)."""
