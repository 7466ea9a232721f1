"""SAQ as the delivery: its records and lists, stranded deliveries, no lost jobs.

Each engine has its own SAQ queue inside a queue (``Keys.for_engine``); the tests of routing
itself are in test_routing.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis
from saq.queue.redis import RedisQueue

from roost.redis import Keys, RedisSwarm
from roost.runtime import WorkState
from roost_testkit.engines import HashChainEngine


async def is_state(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_key_names_match_saqs_own_and_share_one_hash_slot(swarm):
    raw = aioredis.from_url(swarm.url)
    for keys in (swarm.keys, swarm.keys.for_engine("my-engine")):
        queue = RedisQueue(raw, name=keys.saq_name)
        try:
            assert queue.namespace("queued") == keys.saq_queued
            assert queue.namespace("active") == keys.saq_active
            assert queue.namespace("incomplete") == keys.saq_incomplete
            assert queue.job_id("abc|def") == keys.job("abc|def")
        finally:
            await queue.disconnect()
    keys = swarm.keys
    route = keys.for_engine("my-engine")
    names = [
        *keys.ns,
        *route.ns,
        *keys.item_keys("w1"),
        keys.idem("k"),
        *keys.res_block(["gpu"]),
        keys.job("w1|d"),
        route.job("w1|d"),
        keys.workers,
        keys.worker("x"),
        keys.live("my-engine"),
        keys.recover_lock,
    ]
    slots = {await raw_slot(name) for name in names}
    assert len(slots) == 1


async def raw_slot(key: str) -> int:
    """Redis Cluster's slot of a key (CRC16/XMODEM of the hash tag, mod 16384)."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


async def test_queued_items_are_real_saq_jobs_that_saq_would_never_rerun(swarm):
    work_id = await swarm.enqueue("hashchain", {})
    route = swarm.keys.for_engine("hashchain")
    raw = aioredis.from_url(swarm.url)
    queue = RedisQueue(raw, name=route.saq_name)
    try:
        job_ids = await raw.lrange(route.saq_queued, 0, -1)
        assert len(job_ids) == 1
        parsed = route.parse_job(job_ids[0].decode())
        assert parsed is not None and parsed[0] == work_id
        job = await queue.job(queue.job_key_from_id(job_ids[0].decode()))
        assert job is not None
        assert job.function == "roost.step"
        assert job.kwargs == {"work_id": work_id, "dispatch": parsed[1]}
        # SAQ's sweep can neither time it out nor retry it into a second run behind the lease.
        assert (job.timeout, job.heartbeat, job.retries, job.ttl) == (0, 0, 1, -1)
        assert await queue.count("queued") == 1
    finally:
        await queue.disconnect()


async def test_names_that_json_escapes_read_back_from_the_job_record_and_the_event(settings):
    # The enqueue script writes the SAQ job record and the event's data as JSON by hand for
    # names that need no escaping; a queue name with a quote, a backslash, a slash and
    # non-ASCII text takes cjson's way. Both must parse back to the very names.
    queue_name = 'q"\\/é\tx'
    async with RedisSwarm(settings.model_copy(update={"queue": queue_name})) as swarm:
        work_id = await swarm.enqueue("hashchain", {}, delay_seconds=0)
        route = swarm.keys.for_engine("hashchain")
        raw = aioredis.from_url(swarm.url)
        queue = RedisQueue(raw, name=route.saq_name)
        try:
            job_ids = await raw.lrange(route.saq_queued, 0, -1)
            assert len(job_ids) == 1
            job = await queue.job(queue.job_key_from_id(job_ids[0].decode()))
            assert job is not None
            assert job.queue.name == route.saq_name
            assert job.kwargs is not None and job.kwargs["work_id"] == work_id
            record = json.loads(await raw.get(job_ids[0]))
            assert record["queue"] == route.saq_name
            assert record["key"] == job_ids[0].decode().rsplit(":", 1)[1]
            assert record["queued"] == int(record["queued"]) > 0
        finally:
            await queue.disconnect()
            await raw.aclose()
        (event,) = await swarm.events(work_id=work_id)
        assert event.type == "enqueued"
        assert event.data == {"engine": "hashchain", "delay_ms": 0, "queue": queue_name}


async def test_a_delivery_taken_by_a_dead_worker_is_redispatched(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"steps": 1})
    route = swarm.keys.for_engine("hashchain")
    # A worker took the job off its engine's queue and died before acquiring the lease.
    taken = await swarm.client.blmove(route.saq_queued, route.saq_active, 1.0, "LEFT", "RIGHT")
    assert taken is not None
    async with running_worker([HashChainEngine()]):
        await until(lambda: is_state(swarm, work_id, WorkState.DONE), timeout=15)
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert kinds.count("redispatched") == 1
    assert kinds.count("started") == 1
    assert await swarm.client.llen(route.saq_active) == 0
    assert await swarm.client.get(route.job(Keys.job_suffix(*_parsed(route, taken)))) is None


def _parsed(route: Keys, job_id: str) -> tuple[str, str]:
    parsed = route.parse_job(job_id)
    assert parsed is not None
    return parsed


async def test_an_idle_worker_starts_every_job_within_a_second(swarm, running_worker, until):
    # The failure mode of SAQ on redis-py 8 (a client-side timeout under a blocking dequeue)
    # left about one job in sixty in the active list for a minute. Enqueue one job a second
    # against an otherwise idle worker: every one must start promptly.
    ids: list[str] = []
    async with running_worker([HashChainEngine()], concurrency=2):
        await asyncio.sleep(1.5)
        for _ in range(8):
            ids.append(await swarm.enqueue("hashchain", {"steps": 1}))
            await asyncio.sleep(1.0)
        for work_id in ids:
            await until(lambda w=work_id: is_state(swarm, w, WorkState.DONE), timeout=10)
    for work_id in ids:
        events = await swarm.events(work_id=work_id)
        enqueued = next(e.ts for e in events if e.type == "enqueued")
        started = next(e.ts for e in events if e.type == "started")
        assert started - enqueued < 1.0, (work_id, started - enqueued)
    assert await swarm.client.llen(swarm.keys.for_engine("hashchain").saq_active) == 0


async def test_a_stopping_worker_puts_back_what_it_took(swarm, running_worker, until):
    async with running_worker([HashChainEngine()], concurrency=1) as worker:
        await asyncio.sleep(0.3)
        worker.stop_worker()
        work_id = await swarm.enqueue("hashchain", {"steps": 1})
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            await asyncio.sleep(0.1)
    route = swarm.keys.for_engine("hashchain")
    assert await is_state(swarm, work_id, WorkState.QUEUED)
    assert await swarm.client.llen(route.saq_queued) == 1
    assert await swarm.client.llen(route.saq_active) == 0
