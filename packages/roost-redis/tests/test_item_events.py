"""An item's events: complete to its last one, and saying only what is true."""

from __future__ import annotations

from roost.redis import RedisSwarm
from roost.runtime import PermanentError, RuntimeEvent, Snapshot, WorkItem, WorkState
from roost_testkit.engines import HashChainEngine


async def all_finished(swarm: RedisSwarm, ids: list[str]) -> bool:
    metas = await swarm.metas(ids)
    return all(m is not None and m.state.is_terminal for m in metas)


class Refuses(HashChainEngine):
    engine_id = "refuses"

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        raise PermanentError("this payload can never work")


async def test_a_dead_or_failed_event_never_carries_a_retry_delay(swarm, running_worker, until):
    dead = await swarm.enqueue("hashchain", {"mode": "raise"}, max_attempts=2)
    failed = await swarm.enqueue("refuses", {})
    seen: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        seen.append(event)

    async with running_worker([HashChainEngine(), Refuses()], sinks=[sink]):
        await until(lambda: all_finished(swarm, [dead, failed]))
    stored = {e.type: e for e in await swarm.events(work_id=dead)}
    assert "delay" in stored["retrying"].data
    assert "delay" not in stored["dead"].data
    assert stored["dead"].data["attempt"] == 2 and stored["dead"].data["error"] == "RuntimeError"
    (final,) = [e for e in await swarm.events(work_id=failed) if e.type == "failed"]
    assert "delay" not in final.data and final.data["error"] == "PermanentError"
    sunk = {(e.work_id, e.type): e for e in seen}
    assert "delay" not in sunk[(dead, "dead")].data
    assert "delay" not in sunk[(failed, "failed")].data
    assert "delay" in sunk[(dead, "retrying")].data


async def test_an_items_events_end_with_its_last_one_even_when_stream_ids_run_ahead(
    swarm, running_worker, until
):
    # After a failover to a server whose clock is behind, new event ids keep counting from
    # the stream's last id, ahead of the server's TIME that stamps the item's fields.
    seconds, _ = await swarm.client.time()
    await swarm.client.execute_command(  # type: ignore[attr-defined]
        "XADD", swarm.keys.events, f"{(int(seconds) + 600) * 1000}-0", "t", "marker"
    )
    ids = await swarm.enqueue_many(
        [WorkItem(engine="hashchain", payload={"steps": 2}) for _ in range(5)]
    )
    cancelled = await swarm.enqueue("hashchain", {}, delay_seconds=60)
    await swarm.cancel(cancelled)
    async with running_worker([HashChainEngine()]):
        await until(lambda: all_finished(swarm, ids))
    for work_id in ids:
        kinds = [e.type for e in await swarm.events(work_id=work_id)]
        assert kinds[0] == "enqueued" and kinds[-1] == "done", kinds
        assert kinds.count("committed") + kinds.count("done") == 3
        first = (await swarm.events(work_id=work_id, limit=1_000))[0]
        rest = await swarm.events(work_id=work_id, after=first.id)
        assert [e.type for e in rest] == kinds[1:]
    assert [e.type for e in await swarm.events(work_id=cancelled)] == ["enqueued", "cancelled"]


async def test_many_items_each_list_their_last_event(swarm, running_worker, until):
    ids = await swarm.enqueue_many(
        [WorkItem(engine="hashchain", payload={"steps": 1}) for _ in range(300)]
    )
    async with running_worker([HashChainEngine()], concurrency=20):
        await until(lambda: all_finished(swarm, ids), 60.0)
    missing = []
    for work_id in ids:
        events = await swarm.events(work_id=work_id)
        if not events or events[-1].type != "done":
            missing.append(work_id)
    assert not missing, f"{len(missing)} of {len(ids)} items lack their last event"
    assert (await swarm.counts())["done"] == len(ids)
    assert all(m is not None and m.state == WorkState.DONE for m in await swarm.metas(ids))
