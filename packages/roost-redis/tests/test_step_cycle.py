"""The step cycle end to end on a real server: enqueue, lease, step, commit, finish."""

from __future__ import annotations

import asyncio
import json
import time

from roost.redis import RedisSwarm
from roost.runtime import RuntimeEvent, Snapshot, WorkItem, WorkState, step_context
from roost_testkit.engines import HashChainEngine, expected_state


async def done(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.state == WorkState.DONE


async def test_item_runs_to_done_with_contiguous_versions(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"steps": 5})
    queued = await swarm.status(work_id)
    assert queued.meta.state == WorkState.QUEUED
    assert queued.snapshot is None
    assert queued.item is not None and queued.item.payload == {"steps": 5}

    async with running_worker([HashChainEngine()]):
        await until(lambda: done(swarm, work_id))

    status = await swarm.status(work_id)
    assert status.meta.version == 6  # init is version 1, then one per step
    assert status.snapshot is not None
    assert status.snapshot.version == 6
    assert status.snapshot.data["state"] == expected_state(work_id, 5)
    assert status.meta.attempts == 0
    assert status.meta.lease is None
    assert status.meta.finished_at is not None
    events = await swarm.events(work_id=work_id)
    kinds = [e.type for e in events]
    assert kinds[0] == "enqueued"
    assert kinds[-1] == "done"
    versions = [e.version for e in events if e.type in ("committed", "done")]
    assert versions == [1, 2, 3, 4, 5, 6]


async def test_many_items_all_finish_and_state_indexes_agree(swarm, running_worker, until):
    ids = [await swarm.enqueue("hashchain", {"steps": 3}) for _ in range(40)]

    async def all_done() -> bool:
        return (await swarm.counts())["done"] == 40

    async with running_worker([HashChainEngine()], concurrency=8, inline_steps=0):
        await until(all_done)
    counts = await swarm.counts()
    assert {k: v for k, v in counts.items() if v} == {"done": 40}
    page = await swarm.list_work(state=WorkState.DONE, limit=25)
    assert len(page.items) == 25 and page.next_cursor
    rest = await swarm.list_work(state=WorkState.DONE, limit=25, cursor=page.next_cursor)
    assert len(rest.items) == 15 and rest.next_cursor is None
    assert {m.work_id for m in page.items + rest.items} == set(ids)
    for status in [await swarm.status(i) for i in ids]:
        assert status.snapshot is not None
        assert status.snapshot.data["state"] == expected_state(status.meta.work_id, 3)


async def test_delayed_continuation_is_scheduled_then_fires_on_time(swarm, running_worker, until):
    work_id = await swarm.enqueue("hashchain", {"steps": 2, "delay": 0.4})
    async with running_worker([HashChainEngine()]):
        await until(lambda: swarm_state_is(swarm, work_id, WorkState.SCHEDULED))
        started = time.monotonic()
        await until(lambda: done(swarm, work_id))
    events = await swarm.events(work_id=work_id)
    commits = [e for e in events if e.type in ("committed", "done")]
    gaps = [b.ts - a.ts for a, b in zip(commits, commits[1:], strict=False)]
    # init -> step 1 -> step 2: the two gaps after a step with delay 0.4 s are >= 0.4 s.
    assert all(g >= 0.39 for g in gaps[1:]), gaps
    assert time.monotonic() - started < 5


async def swarm_state_is(swarm: RedisSwarm, work_id: str, state: WorkState) -> bool:
    return (await swarm.status(work_id)).meta.state == state


async def test_event_sinks_receive_the_workers_events(swarm, running_worker, until):
    seen: list[RuntimeEvent] = []

    async def sink(event: RuntimeEvent) -> None:
        seen.append(event)

    work_id = await swarm.enqueue("hashchain", {"steps": 2})
    async with running_worker([HashChainEngine()], sinks=[sink]):
        await until(lambda: done(swarm, work_id))
        await until(lambda: _has(seen, "done"))
    kinds = [e.type for e in seen if e.work_id == work_id]
    # The enqueue came before any worker ran: the sinks get it all the same, from the stream.
    assert kinds == ["enqueued", "started", "committed", "committed", "done"]
    assert seen == await swarm.events(work_id=work_id)
    assert all(e.worker for e in seen if e.type != "enqueued")


async def _has(seen: list[RuntimeEvent], kind: str) -> bool:
    return any(e.type == kind for e in seen)


class ContextProbe:
    """Uses everything the step context offers and records what it saw."""

    engine_id = "probe"

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []
        self.gate = asyncio.Event()

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        await ctx.progress(0.5, "half way", items=2)
        await self.gate.wait()
        (ctx.workspace / "notes.txt").write_text("scratch")
        artifact = await ctx.put_artifact({"answer": 42}, kind="json", metadata={"v": 1})
        self.seen.append(
            {
                "work_id": ctx.work_id,
                "version": ctx.version,
                "attempt": ctx.attempt,
                "worker": ctx.worker_id,
                "lease": ctx.lease,
                "workspace": ctx.workspace,
            }
        )
        return snapshot.model_copy(
            update={"is_finished": True, "step": "done", "artifacts": [artifact]}
        )


async def test_a_step_reaches_progress_artifacts_and_its_workspace(swarm, running_worker, until):
    probe = ContextProbe()
    work_id = await swarm.enqueue("probe", {})
    async with running_worker([probe]) as worker:
        await until(lambda: _progress_shown(swarm, work_id))
        meta = (await swarm.status(work_id)).meta
        assert meta.progress is not None
        assert (meta.progress.fraction, meta.progress.message) == (0.5, "half way")
        assert meta.progress.data == {"items": 2}
        # The report is longer than a packed hash's values may be: the meta is unpacked.
        assert await swarm.client.object("encoding", swarm.keys.meta(work_id)) == "hashtable"
        probe.gate.set()
        await until(lambda: done(swarm, work_id))
    status = await swarm.status(work_id)
    assert status.meta.progress is None  # cleared by the commit
    # Done, the item keeps its meta packed again (less than half the memory).
    assert await swarm.client.object("encoding", swarm.keys.meta(work_id)) == "listpack"
    assert status.meta.state == WorkState.DONE and status.meta.version == 2
    [seen] = probe.seen
    assert seen["work_id"] == work_id and seen["version"] == 1 and seen["attempt"] == 1
    assert seen["worker"] == worker.worker_id
    lease = seen["lease"]
    assert lease is not None and lease.work_id == work_id  # type: ignore[attr-defined]
    workspace = seen["workspace"]
    assert workspace == swarm.settings.workspaces / work_id
    assert (workspace / "notes.txt").read_text() == "scratch"  # type: ignore[operator]
    assert status.snapshot is not None
    [artifact] = status.snapshot.artifacts
    assert artifact.metadata == {"v": 1}
    assert json.loads(await swarm.artifacts.read(artifact.artifact_id, "json")) == {"answer": 42}
    kinds = [e.type for e in await swarm.events(work_id=work_id)]
    assert "progress" in kinds


async def _progress_shown(swarm: RedisSwarm, work_id: str) -> bool:
    return (await swarm.status(work_id)).meta.progress is not None
