"""Schedules on real servers: one item per tick across workers, missed ticks, cron and DST."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from roost.redis import RedisSwarm
from roost.redis.contract import Code
from roost.redis.schedule_data import tick_key
from roost.redis.ticks import MISSED_AFTER
from roost.runtime import BadInput, ConflictError, NotFound, RoostSettings, WorkState
from roost_testkit.engines import HashChainEngine
from roost_testkit.zones import forward_jump

SECOND = 1000


async def server_ms(swarm: RedisSwarm) -> int:
    seconds, micros = await swarm.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def items_of(swarm: RedisSwarm, name: str) -> dict[int, list[str]]:
    """Tick (ms) -> work ids of the items the schedule's ticks made."""
    prefix = tick_key(name, 0)[:-1]
    out: dict[int, list[str]] = {}
    cursor = None
    while True:
        page = await swarm.list_work(limit=1000, cursor=cursor)
        for meta in page.items:
            key = meta.idempotency_key
            if key and key.startswith(prefix):
                out.setdefault(int(key[len(prefix) :]), []).append(meta.work_id)
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


async def enqueued_events(swarm: RedisSwarm) -> Counter[str]:
    events = await swarm.events(limit=10_000)
    return Counter(e.work_id for e in events if e.type == "enqueued")


def contiguous(ticks: list[int], step: int = SECOND) -> bool:
    return ticks == list(range(ticks[0], ticks[-1] + step, step))


async def namespace_keys(swarm: RedisSwarm) -> list[str]:
    found: list[str] = []
    async for key in swarm.client.scan_iter(match=f"{swarm.keys.base}*"):  # type: ignore[attr-defined]
        if key != swarm.keys.conf:  # the namespace's own record, written by its first writer
            found.append(key)
    return found


# -- defining schedules -------------------------------------------------------------------------


async def test_add_get_list_pause_resume_remove(swarm: RedisSwarm):
    before = await server_ms(swarm)
    s = await swarm.schedules.add("hourly", "hashchain", {"steps": 1}, every="1h")
    assert s.every == 3600.0 and s.cron is None and s.queue == swarm.settings.queue
    assert s.next_run is not None and int(s.next_run * 1000) % 3_600_000 == 0
    assert before < s.next_run * 1000 <= before + 3_600_000
    assert not s.paused and s.fired == 0 and s.last_work_id is None
    cron = await swarm.schedules.add(
        "nine", "hashchain", cron="0 9 * * 1-5", timezone="Europe/Berlin", missed="skip"
    )
    assert cron.timezone == "Europe/Berlin" and cron.missed == "skip"
    assert [x.name for x in await swarm.schedules.list()] == ["hourly", "nine"]

    with pytest.raises(ConflictError, match="exists"):
        await swarm.schedules.add("hourly", "hashchain", every="5m")
    replaced = await swarm.schedules.add("hourly", "hashchain", {"n": 2}, every="5m", replace=True)
    assert replaced.payload == {"n": 2} and replaced.every == 300.0
    assert replaced.created_at == s.created_at

    paused = await swarm.schedules.pause("hourly")
    assert paused.paused and paused.next_run is None
    assert await swarm.client.zrange(swarm.schedules.keys.due(swarm.settings.queue), 0, -1) == [
        "nine"
    ]
    assert (await swarm.schedules.pause("hourly")).paused  # twice: a no-op
    resumed = await swarm.schedules.resume("hourly")
    assert not resumed.paused and resumed.next_run is not None

    await swarm.schedules.remove("hourly")
    with pytest.raises(NotFound):
        await swarm.schedules.get("hourly")
    with pytest.raises(NotFound):
        await swarm.schedules.remove("hourly")
    assert [x.name for x in await swarm.schedules.list()] == ["nine"]
    due = await swarm.client.zrange(swarm.schedules.keys.due(swarm.settings.queue), 0, -1)
    assert due == ["nine"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "every": "1m"}, "invalid schedule name"),
        ({"name": "a b", "every": "1m"}, "invalid schedule name"),
        ({"every": "1m", "cron": "* * * * *"}, "exactly one"),
        ({}, "exactly one"),
        ({"every": "500ms"}, "between 1s and 365d"),
        ({"every": "soon"}, "not a duration"),
        ({"cron": "61 * * * *"}, "Bad minute"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"cron": "* * * * *", "timezone": "../../etc/passwd"}, "unknown timezone"),
        ({"every": "1m", "timezone": "UTC"}, "cron schedules only"),
        ({"every": "1m", "engine": "bad engine"}, "invalid engine"),
        ({"every": "1m", "resources": ["x y"]}, "invalid resource"),
        ({"every": "1m", "payload": {"x": float("nan")}}, "payload"),
        ({"every": "1m", "missed": "later"}, "missed must be"),
    ],
)
async def test_bad_input_writes_nothing(swarm: RedisSwarm, kwargs: dict[str, Any], message: str):
    args: dict[str, Any] = {"name": "s", "engine": "hashchain", **kwargs}
    with pytest.raises(BadInput, match=message):
        await swarm.schedules.add(**args)
    assert await namespace_keys(swarm) == []


# -- firing -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_three_workers_make_one_item_per_tick_for_a_minute(
    swarm: RedisSwarm, spawn_worker: Any
):
    """3 worker processes and a 1 s schedule for 60 s: every tick one item, none doubled."""
    workers = [spawn_worker(concurrency=2) for _ in range(3)]
    await swarm.schedules.add("second", "hashchain", {"steps": 1}, every="1s")
    started = await server_ms(swarm)
    await asyncio.sleep(60)
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert await asyncio.to_thread(proc.wait, 30) == 0
    stopped = await server_ms(swarm)

    made = await items_of(swarm, "second")
    ticks = sorted(made)
    assert all(len(ids) == 1 for ids in made.values()), "a tick made two items"
    assert contiguous(ticks), "a tick made no item"
    assert ticks[0] <= started + 2 * SECOND and ticks[-1] >= stopped - 2 * SECOND
    assert len(ticks) >= 58
    schedule = await swarm.schedules.get("second")
    assert schedule.fired == len(ticks) and schedule.skipped == 0
    ids = [ids[0] for ids in made.values()]
    events = await enqueued_events(swarm)
    assert all(events[w] == 1 for w in ids)
    metas = await swarm.metas(ids)
    assert sum(1 for m in metas if m and m.state == WorkState.DONE) >= len(ids) - 2


async def test_passes_racing_on_one_tick_make_one_item(settings: RoostSettings):
    """Five swarms run the tick pass at the same moment on the same due tick."""
    swarms = [RedisSwarm(settings) for _ in range(5)]
    for s in swarms:
        await s.connect()
    try:
        schedule = await swarms[0].schedules.add("race", "hashchain", every="1s")
        await swarms[0].schedules.tick()  # a pass before the tick: it is not missed
        assert schedule.next_run is not None
        await asyncio.sleep(max(0.0, schedule.next_run - (await server_ms(swarms[0])) / 1000))
        await asyncio.sleep(0.05)
        await asyncio.gather(*(s.schedules.tick() for s in swarms))
        made = await items_of(swarms[0], "race")
        assert list(made) == [int(schedule.next_run * 1000)]
        assert len(made[int(schedule.next_run * 1000)]) == 1
        after = await swarms[0].schedules.get("race")
        assert after.fired == 1 and after.last_outcome == "fired"
        assert after.next_run == schedule.next_run + 1
    finally:
        for s in swarms:
            await s.close()


async def test_a_pass_that_died_after_its_enqueue_is_finished_by_the_next(swarm: RedisSwarm):
    """decide + enqueue, then the worker dies: the next pass enqueues the same key and advances."""
    store, queue = swarm.schedules, swarm.settings.queue
    schedule = await store.add("crash", "hashchain", every="1s")
    await store.tick()  # note a pass, so that the tick below is on time
    assert schedule.next_run is not None
    tick = int(schedule.next_run * 1000)
    await asyncio.sleep(max(0.0, tick - await server_ms(swarm)) / 1000 + 0.05)
    # The first half of a pass, by hand: scan, decide, enqueue; then nothing (a SIGKILL).
    scan = await store.scripts.scan(
        due=store.keys.due(queue), clock=store.keys.clock(queue), missed_after_ms=5000, count=10
    )
    assert scan.rows[:1] == [("crash", str(tick))]
    decided = await store.scripts.decide(
        sched=store.keys.schedule("crash"),
        due=store.keys.due(queue),
        clock=store.keys.clock(queue),
        last_meta=store.keys.schedule("crash"),
        name="crash",
        tick=tick,
        last="",
        version="1",
        finished_states="done failed dead cancelled",
    )
    assert (decided.code, decided.outcome, decided.mark) == (Code.DECIDED, "fired", "")
    first = (await swarm.enqueue_many([schedule.item(tick_ms=tick)]))[0]

    await store.tick()  # another worker's pass
    after = await store.get("crash")
    made = await items_of(swarm, "crash")
    assert made[tick] == [first]
    assert after.last_work_id == first and after.fired == 1
    assert after.next_run is not None and after.next_run * 1000 > tick
    assert (await enqueued_events(swarm))[first] == 1


async def _decide_by_hand(swarm: RedisSwarm, name: str) -> tuple[int, str]:
    """The first half of a pass for ``name``'s next tick: wait for it, decide, enqueue; then
    nothing, as if the worker was SIGKILLed. Returns the tick and the item's work id."""
    store, queue = swarm.schedules, swarm.settings.queue
    await store.tick()  # note a pass, so that the tick below is on time
    schedule = await store.get(name)
    assert schedule.next_run is not None
    tick = int(schedule.next_run * 1000)
    await asyncio.sleep(max(0.0, tick - await server_ms(swarm)) / 1000 + 0.05)
    decided = await store.scripts.decide(
        sched=store.keys.schedule(name),
        due=store.keys.due(queue),
        clock=store.keys.clock(queue),
        last_meta=store.keys.schedule(name),
        name=name,
        tick=tick,
        last="",
        version="1",
        finished_states="done failed dead cancelled",
    )
    assert (decided.code, decided.outcome, decided.mark) == (Code.DECIDED, "fired", "")
    return tick, (await swarm.enqueue_many([schedule.item(tick_ms=tick)]))[0]


async def test_a_decided_tick_is_carried_out_through_a_pause(swarm: RedisSwarm):
    store = swarm.schedules
    await store.add("held", "hashchain", every="1s")
    tick, first = await _decide_by_hand(swarm, "held")
    await store.pause("held")

    await store.tick()  # another worker's pass
    after = await store.get("held")
    assert (await items_of(swarm, "held"))[tick] == [first]
    assert after.paused and after.fired == 1 and after.last_work_id == first
    await asyncio.sleep(1.2)  # a tick's worth: a paused schedule makes nothing more
    await store.tick()
    assert list(await items_of(swarm, "held")) == [tick]


async def test_a_resume_before_the_decided_tick_ran_goes_on_after_now(swarm: RedisSwarm):
    store = swarm.schedules
    await store.add("quick", "hashchain", every="1s")
    tick, first = await _decide_by_hand(swarm, "quick")
    await store.pause("quick")
    await asyncio.sleep(2.5)  # ticks fall in the pause
    resumed_at = await server_ms(swarm)
    await store.resume("quick")

    await store.tick()
    after = await store.get("quick")
    made = await items_of(swarm, "quick")
    assert made == {tick: [first]}  # the decided tick, and none of the pause's
    assert not after.paused and after.fired == 1
    assert after.next_run is not None and after.next_run * 1000 > resumed_at


@pytest.mark.slow
async def test_ticks_missed_while_no_worker_ran_follow_each_policy(
    swarm: RedisSwarm, running_worker: Any
):
    """Every worker stops for longer than MISSED_AFTER: run-once makes one item, skip none."""
    store = swarm.schedules
    await store.add("once", "hashchain", every="1s", missed="run-once")
    await store.add("skip", "hashchain", every="1s", missed="skip")
    async with running_worker([HashChainEngine()]):
        await asyncio.sleep(3.2)
    stopped = await server_ms(swarm)
    before = {name: sorted(await items_of(swarm, name)) for name in ("once", "skip")}
    await asyncio.sleep(MISSED_AFTER + 2.5)
    restarted = await server_ms(swarm)
    async with running_worker([HashChainEngine()]):
        await asyncio.sleep(3.2)
    clock = await swarm.client.hgetall(store.keys.clock(swarm.settings.queue))
    mark = int(clock["missed"])
    assert restarted <= mark <= restarted + 2 * SECOND

    for name in ("once", "skip"):
        ticks = sorted(await items_of(swarm, name))
        old = before[name]
        assert len(old) >= 2 and contiguous(old) and old[-1] <= stopped
        pending = old[-1] + SECOND  # the first tick no worker was there for
        gap = [t for t in ticks if old[-1] < t <= mark]
        after = [t for t in ticks if t > mark]
        assert len(after) >= 2 and contiguous(after)
        assert after[0] == (mark // SECOND + 1) * SECOND  # straight on after the gap
        schedule = await store.get(name)
        if name == "once":
            assert gap == [pending], "run-once: one item, for the first missed tick"
            assert schedule.skipped == 0
        else:
            assert gap == [], "skip: no item for the missed ticks"
            assert schedule.skipped == 1
        assert schedule.fired == len(ticks)


@pytest.mark.slow
async def test_skip_if_running_never_overlaps_items(swarm: RedisSwarm, running_worker: Any):
    """A 1 s schedule whose items take 2.5 s: ticks meanwhile are skipped, items never overlap."""
    await swarm.schedules.add(
        "slow",
        "hashchain",
        {"steps": 1, "mode": "sleep", "seconds": 2.5},
        every="1s",
        skip_if_running=True,
    )
    async with running_worker([HashChainEngine()]):
        await asyncio.sleep(7.5)
    schedule = await swarm.schedules.get("slow")
    made = await items_of(swarm, "slow")
    metas = [m for m in await swarm.metas([ids[0] for ids in made.values()]) if m]
    metas.sort(key=lambda m: m.created_at)
    assert len(metas) >= 2 and schedule.skipped >= 3
    assert schedule.fired == len(metas)
    for earlier, later in zip(metas, metas[1:], strict=False):
        assert earlier.finished_at is not None
        assert later.created_at >= earlier.finished_at, "an item started while one ran"


@pytest.mark.slow
async def test_pause_run_now_resume_and_remove_with_a_worker(
    swarm: RedisSwarm, running_worker: Any
):
    store = swarm.schedules
    await store.add("op", "hashchain", every="1s")
    async with running_worker([HashChainEngine()]):
        await asyncio.sleep(2.2)
        await store.pause("op")
        paused_at = await server_ms(swarm)
        now_id = await store.run_now("op")
        await asyncio.sleep(2.5)
        assert (await store.get("op")).last_work_id == now_id
        status = await swarm.status(now_id)
        assert status.item is not None and status.item.idempotency_key is None
        resumed = await store.resume("op")
        resumed_at = await server_ms(swarm)
        assert resumed.next_run is not None and resumed.next_run * 1000 > resumed_at
        await asyncio.sleep(2.2)
        await store.remove("op")
        removed_at = await server_ms(swarm)
        await asyncio.sleep(1.5)
    ticks = sorted(await items_of(swarm, "op"))
    assert not [t for t in ticks if paused_at + SECOND < t <= resumed_at], "fired while paused"
    assert [t for t in ticks if t > resumed_at], "no tick after resume"
    assert not [t for t in ticks if t > removed_at + SECOND], "fired after removal"
    assert not [k for k in await namespace_keys(swarm) if ":sched:op" in k or "sched:due" in k]


# -- cron and time zones -----------------------------------------------------------------------


async def test_cron_in_a_timezone_fires_on_its_wall_clock(swarm: RedisSwarm, running_worker: Any):
    """A six-field (seconds) cron in Asia/Kolkata (UTC+5:30) fires at each matching second."""
    await swarm.schedules.add("kolkata", "hashchain", cron="*/2 * * * * *", timezone="Asia/Kolkata")
    async with running_worker([HashChainEngine()]):
        await asyncio.sleep(5.3)
    ticks = sorted(await items_of(swarm, "kolkata"))
    assert len(ticks) >= 2 and contiguous(ticks, 2 * SECOND)
    assert all(t % (2 * SECOND) == 0 for t in ticks)


@pytest.mark.slow
async def test_cron_across_a_daylight_saving_jump(
    swarm: RedisSwarm, running_worker: Any, tmp_path: Path
):
    """Clocks jump forward an hour: a job whose time falls in the skipped hour runs at the jump.

    That is cronsim's own handling (Debian cron's rule); a naive evaluation would not run
    the job that day at all. The zone is made up so that the jump comes seconds from now.
    """
    at = int(time.time()) + 8
    with forward_jump(tmp_path / "zones", at) as jump:
        in_gap = jump.local + timedelta(minutes=30)  # a local time that does not exist today
        schedule = await swarm.schedules.add(
            "jump", "hashchain", cron=f"{in_gap.minute} {in_gap.hour} * * *", timezone=jump.name
        )
        assert schedule.next_run == jump.at
        async with running_worker([HashChainEngine()]):
            await asyncio.sleep(max(0.0, jump.at - time.time()) + 1.5)
        made = await items_of(swarm, "jump")
        assert list(made) == [jump.at * SECOND]
        after = await swarm.schedules.get("jump")
        # The next day at the same wall-clock time, now on daylight saving time (+1 h).
        assert after.next_run == jump.at + 23.5 * 3600


async def test_a_recorded_decision_holds_for_every_later_pass(swarm: RedisSwarm):
    """A pass decides to skip (the last item runs), then dies; the item finishes; the next
    pass still skips that tick: every worker carries out the one decision made for a tick."""
    store, queue = swarm.schedules, swarm.settings.queue
    schedule = await store.add("busy", "hashchain", every="1s", skip_if_running=True)
    running = await store.run_now("busy")  # stays queued: no worker runs
    await store.tick()
    assert schedule.next_run is not None
    tick = int(schedule.next_run * 1000)
    await asyncio.sleep(max(0.0, tick - await server_ms(swarm)) / 1000 + 0.05)
    decided = await store.scripts.decide(
        sched=store.keys.schedule("busy"),
        due=store.keys.due(queue),
        clock=store.keys.clock(queue),
        last_meta=swarm.keys.meta(running),
        name="busy",
        tick=tick,
        last=running,
        version="1",
        finished_states="done failed dead cancelled",
    )
    assert (decided.code, decided.outcome, decided.mark) == (Code.DECIDED, "skipped-running", "")
    await swarm.cancel(running)  # the last item is finished now

    await store.tick()
    after = await store.get("busy")
    assert tick not in await items_of(swarm, "busy")
    assert after.skipped == 1
    assert after.next_run is not None and after.next_run * 1000 > tick


async def test_keys_encode_names_under_the_namespace_tag(
    swarm: RedisSwarm, settings: RoostSettings
):
    keys = swarm.schedules.keys
    base = swarm.keys.base
    assert keys.schedule("a:b/c@d") == f"{base}sched:a%3Ab%2Fc%40d"
    assert keys.schedule("a") != keys.schedule("a:b") and keys.names == f"{base}scheds"
    assert (
        keys.due("q.1") == f"{base}q:q.1:sched:due" and keys.clock("q") == f"{base}q:q:sched:clock"
    )
    assert all("{" + settings.namespace + "}" in k for k in (keys.names, keys.due("x")))


async def test_run_now_from_another_queue_is_refused(swarm: RedisSwarm, settings: RoostSettings):
    await swarm.schedules.add("elsewhere", "hashchain", every="1m")
    async with RedisSwarm(settings.model_copy(update={"queue": "other"})) as other:
        with pytest.raises(BadInput, match="belongs to queue roost"):
            await other.schedules.run_now("elsewhere")
        assert (await other.schedules.pause("elsewhere")).paused  # the rest works from anywhere
    assert (await swarm.counts())["queued"] == 0
