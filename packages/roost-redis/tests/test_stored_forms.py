"""What a finished item keeps in Redis, and that the forms earlier versions wrote still read."""

from __future__ import annotations

import json

import pytest

from roost.redis import RedisSwarm
from roost.redis.codec import (
    read_item,
    read_snapshot,
    stored_item,
    stored_snapshot,
    stored_snapshot_text,
)
from roost.runtime import Snapshot, WorkItem, WorkState
from roost.runtime.contract import snapshot_to_json
from roost_testkit.engines import HashChainEngine

DELIVERY_AND_LEASE = {"disp", "wcount", "qdue", "ltok", "lw", "lexp"}
DONE_DROPS = {"att", "maxatt", "prio", "finished"}
"""What a done item of priority 0 no longer keeps: each reads as its default or ``updated``."""
SNAPSHOT_DEFAULTS = {
    "next_step_delay_seconds",
    "wait_for_signals",
    "wait_timeout_seconds",
    "approval_request",
    "artifacts",
}


async def state_of(swarm: RedisSwarm, work_id: str) -> WorkState:
    return (await swarm.status(work_id)).meta.state


async def test_a_finished_item_keeps_compact_json_and_no_delivery_or_lease_fields(
    swarm, running_worker, until
):
    work_id = await swarm.enqueue("hashchain", {"steps": 2})
    async with running_worker([HashChainEngine()]):
        await until(lambda: _is(swarm, work_id, WorkState.DONE))

    client, keys = swarm.client, swarm.keys
    meta = await client.hgetall(keys.meta(work_id))
    assert not DELIVERY_AND_LEASE & set(meta), meta
    assert not DONE_DROPS & set(meta), meta
    assert {"lep", "op", "fev", "updated"} <= set(meta)  # fencing, lost replies, events, end
    item = json.loads(await client.get(keys.item(work_id)) or "{}")
    assert set(item) == {"engine", "payload", "queue", "created_at"}  # the key holds the id
    snap = json.loads(await client.get(keys.snap(work_id)) or "{}")
    assert not SNAPSHOT_DEFAULTS & set(snap), snap
    assert "work_id" not in snap and snap["engine"] == "hashchain"  # the key holds the id
    assert snap["version"] == 3 and snap["is_finished"]
    # Nothing of its deliveries is left: no SAQ job record, list or index entry.
    assert [k async for k in client.scan_iter("saq:*")] == []
    # Snapshot history stays off by default: no earlier versions are kept.
    assert swarm.settings.history == 0
    assert await client.exists(keys.hist(work_id)) == 0

    status = await swarm.status(work_id)
    assert status.meta.attempts == 0 and status.meta.priority == 0
    assert status.meta.finished_at == status.meta.updated_at == int(meta["updated"]) / 1000
    assert status.item is not None and status.snapshot is not None
    assert status.item.work_id == work_id and status.item.payload == {"steps": 2}
    assert status.snapshot.work_id == work_id and status.snapshot.version == 3
    assert status.item.resources == [] and status.item.headers == {}
    assert status.snapshot.artifacts == [] and status.snapshot.wait_for_signals == []
    assert status.snapshot.next_step_delay_seconds == 0.0


async def test_items_in_the_full_form_of_earlier_versions_read_and_run(
    swarm, running_worker, until
):
    """Items stored before the compact form (every field written, delivery fields kept)."""
    client, keys = swarm.client, swarm.keys
    finished = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([HashChainEngine()]):
        await until(lambda: _is(swarm, finished, WorkState.DONE))
    before = await swarm.status(finished)
    assert before.item is not None and before.snapshot is not None
    # What an earlier version left: full JSON, and the delivery fields on the meta.
    await client.set(keys.item(finished), before.item.model_dump_json())
    await client.set(keys.snap(finished), before.snapshot.model_dump_json())
    await client.hset(keys.meta(finished), mapping={"disp": "0123456789abcdef", "wcount": 0})
    after = await swarm.status(finished)
    assert after.item == before.item and after.snapshot == before.snapshot
    assert after.meta.state == WorkState.DONE and after.meta.version == before.meta.version
    page = await swarm.list_work(state=WorkState.DONE)
    assert [m.work_id for m in page.items] == [finished]

    # A queued item in the full form, with a resource wait counted, runs to done.
    queued = await swarm.enqueue("hashchain", {"steps": 2})
    full = (await swarm.status(queued)).item
    assert full is not None
    await client.set(keys.item(queued), full.model_dump_json())
    await client.hset(keys.meta(queued), "wcount", 2)
    async with running_worker([HashChainEngine()]):
        await until(lambda: _is(swarm, queued, WorkState.DONE))
    status = await swarm.status(queued)
    assert status.snapshot is not None and status.snapshot.version == 3
    assert status.item == full
    meta = await client.hgetall(keys.meta(queued))
    assert not DELIVERY_AND_LEASE & set(meta), meta


async def test_a_done_item_in_the_layout_before_reads_the_same_and_replays_compact(
    swarm, running_worker, until
):
    """A done item as the version before wrote it: work ids in its JSON, and on its meta a
    finish time, an attempt count, the lease's attempt limit and priority 0."""
    client, keys = swarm.client, swarm.keys
    work_id = await swarm.enqueue("hashchain", {"steps": 1})
    async with running_worker([HashChainEngine()]):
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    new = await swarm.status(work_id)
    assert new.item is not None and new.snapshot is not None
    updated = await client.hget(keys.meta(work_id), "updated")
    await client.set(keys.item(work_id), new.item.model_dump_json(exclude_defaults=True))
    await client.set(keys.snap(work_id), new.snapshot.model_dump_json(exclude_defaults=True))
    old_fields = {"finished": updated, "att": "0", "maxatt": "3", "prio": "0"}
    await client.hset(keys.meta(work_id), mapping=old_fields)
    assert json.loads(await client.get(keys.item(work_id)) or "{}")["work_id"] == work_id

    old = await swarm.status(work_id)
    assert old.item == new.item and old.snapshot == new.snapshot
    assert old.meta.finished_at == new.meta.finished_at == int(updated or 0) / 1000
    assert (old.meta.attempts, old.meta.priority) == (new.meta.attempts, new.meta.priority)
    page = await swarm.list_work(state=WorkState.DONE)
    assert [m.work_id for m in page.items] == [work_id]

    # Replayed in place, it runs again and finishes in the compact layout.
    assert await swarm.replay(work_id) == work_id
    running = await swarm.status(work_id)
    assert running.meta.finished_at is None
    assert "finished" not in await client.hgetall(keys.meta(work_id))
    async with running_worker([HashChainEngine()]):
        await until(lambda: _version_at_least(swarm, work_id, new.meta.version + 2))
        await until(lambda: _is(swarm, work_id, WorkState.DONE))
    meta = await client.hgetall(keys.meta(work_id))
    assert not DONE_DROPS & set(meta), meta
    snap = json.loads(await client.get(keys.snap(work_id)) or "{}")
    assert "work_id" not in snap and snap["version"] == new.meta.version + 2
    done = await swarm.status(work_id)
    assert done.snapshot is not None and done.snapshot.work_id == work_id
    assert done.snapshot.engine == "hashchain"
    assert done.meta.finished_at == int(meta["updated"]) / 1000 > (old.meta.finished_at or 0)


async def _version_at_least(swarm: RedisSwarm, work_id: str, version: int) -> bool:
    return (await swarm.status(work_id)).meta.version >= version


async def _is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return await state_of(swarm, work_id) == state


@pytest.mark.parametrize("work_id", ["plain", "ns:a/b@c_1.2-x"])
def test_stored_forms_leave_out_the_work_id_and_defaults_and_reads_take_both_forms(work_id):
    item = WorkItem(work_id=work_id, engine="e", payload={"work_id": "x"}, queue="q")
    text = stored_item(item)
    assert set(json.loads(text)) == {"engine", "payload", "queue", "created_at"}
    assert read_item(work_id, text) == item
    assert read_item(work_id, item.model_dump_json()) == item  # the earlier full form
    assert read_item(work_id, item.model_dump_json(exclude_defaults=True)) == item
    snap = Snapshot(work_id=work_id, engine="e", step="s", data={"x": []}, version=2)
    text = stored_snapshot(snap)
    assert set(json.loads(text)) == {"engine", "step", "data", "version"}
    assert read_snapshot(work_id, text, engine="e") == snap
    assert (
        read_snapshot(work_id, snap.model_dump_json(), engine="e") == snap
    )  # the earlier full form
    assert read_snapshot(work_id, snap.model_dump_json(exclude_defaults=True), engine="e") == snap
    assert read_snapshot(work_id, '{"engine":"e"}', engine="e").work_id == work_id
    # What the step contract writes loses its work id on the way in, and reads back whole.
    written = snapshot_to_json(snap)
    assert set(json.loads(written)) == {"work_id", "engine", "step", "data", "version"}
    kept = stored_snapshot_text(work_id, written)
    assert kept == text and read_snapshot(work_id, kept, engine="e") == snap
    # Text that does not open with this item's id is kept whole (and still reads).
    other = snapshot_to_json(snap.model_copy(update={"work_id": "other"}))
    assert stored_snapshot_text(work_id, other) == other
    assert stored_snapshot_text(work_id, "{}") == "{}"
    # Without the engine too (a later version's form; the item holds it): it is put back.
    bare = snap.model_dump_json(exclude_defaults=True, exclude={"work_id", "engine"})
    assert set(json.loads(bare)) == {"step", "data", "version"}
    assert read_snapshot(work_id, bare, engine="e") == snap
    assert read_snapshot(work_id, "{}", engine="e") == Snapshot(work_id=work_id, engine="e")
