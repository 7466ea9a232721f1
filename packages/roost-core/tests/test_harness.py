from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from roost.runtime import FileArtifactStore, step_context
from roost.runtime.errors import BadInput, EngineContractError, RoostError
from roost.runtime.models import Snapshot, WorkItem
from roost.runtime.testing import EngineRunner, ProgressReport, StepLimitExceeded


class SeedEngine:
    """The seed README's minimal engine."""

    engine_id = "my-engine"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="start",
            data={"payload": item.payload},
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        new_snapshot = snapshot.model_copy()
        new_snapshot.step = "done"
        new_snapshot.is_finished = True
        return new_snapshot


class CountingEngine:
    """Counts to payload["n"], asking for a delay between steps, reporting progress."""

    engine_id = "counter"

    def __init__(self) -> None:
        self.contexts: list[tuple[str, int, int, str]] = []

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        ctx = step_context()
        self.contexts.append((ctx.work_id, ctx.version, ctx.attempt, ctx.worker_id))
        return Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            data={"count": 0},
            next_step_delay_seconds=30.0,
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        self.contexts.append((ctx.work_id, ctx.version, ctx.attempt, ctx.worker_id))
        count = snapshot.data["count"] + 1
        await ctx.progress(count / item.payload["n"], f"counted {count}", count=count)
        new = snapshot.model_copy(update={"data": {"count": count}, "step": f"count-{count}"})
        new.is_finished = count >= item.payload["n"]
        new.next_step_delay_seconds = 0.0 if new.is_finished else 30.0
        return new


class ReportEngine:
    """Writes a JSON artifact and a workspace file in its only step."""

    engine_id = "report"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        (ctx.workspace / "notes.txt").write_text("scratch")
        artifact = await ctx.put_artifact(
            {"verdict": "reachable"}, kind="json", metadata={"verdict": "reachable"}
        )
        new = snapshot.model_copy(deep=True)
        new.artifacts.append(artifact)
        new.step = "done"
        new.is_finished = True
        return new


class FlakyMutatingEngine:
    """Mutates data in place through the seed's shallow model_copy, then fails once."""

    engine_id = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, data={"seen": []})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        self.calls += 1
        new = snapshot.model_copy()  # shallow: new.data is snapshot.data
        new.data["seen"].append(step_context().attempt)
        if step_context().attempt == 1:
            raise ConnectionError("transient")
        new.is_finished = True
        return new


class NeverEnding:
    engine_id = "forever"

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id)

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        return snapshot.model_copy(update={"step": f"v{snapshot.version}"})


async def test_seed_engine_runs_to_finished() -> None:
    async with EngineRunner(SeedEngine()) as runner:
        result = await runner.run({"task": "ship it"})
    assert result.final.is_finished
    assert [s.version for s in result.snapshots] == [1, 2]
    assert [s.step for s in result.snapshots] == ["start", "done"]
    assert result.final.data == {"payload": {"task": "ship it"}}
    assert result.item.engine == "my-engine"
    assert result.final.work_id == result.item.work_id
    assert result.steps == 1
    assert result.delays == [0.0]
    assert result.version(1).step == "start"
    with pytest.raises(KeyError):
        result.version(3)


async def test_delays_are_recorded_not_slept_and_context_is_set() -> None:
    engine = CountingEngine()
    runner = EngineRunner(engine, worker_id="w-1")
    item = runner.work_item({"n": 3})
    started = time.monotonic()
    result = await runner.run(item)
    assert time.monotonic() - started < 5
    assert result.delays == [30.0, 30.0, 30.0]
    assert result.total_delay == 90.0
    assert [s.version for s in result.snapshots] == [1, 2, 3, 4]
    assert result.final.data == {"count": 3}
    assert engine.contexts == [
        (item.work_id, 0, 1, "w-1"),
        (item.work_id, 1, 1, "w-1"),
        (item.work_id, 2, 1, "w-1"),
        (item.work_id, 3, 1, "w-1"),
    ]
    assert result.progress[0] == ProgressReport(
        item.work_id, 1, 1, 1 / 3, "counted 1", {"count": 1}
    )
    assert [p.version for p in result.progress] == [1, 2, 3]
    assert runner.progress == result.progress
    runner.close()


async def test_artifacts_and_workspace(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    runner = EngineRunner(ReportEngine(), artifacts=store, workspace_root=tmp_path / "ws")
    result = await runner.run()
    [artifact] = result.artifacts
    assert artifact.kind == "json"
    assert artifact.metadata == {"verdict": "reachable"}
    assert json.loads(await result.read_artifact(artifact)) == {"verdict": "reachable"}
    assert await store.exists(artifact.artifact_id, "json")
    assert (tmp_path / "ws" / result.item.work_id / "notes.txt").read_text() == "scratch"
    assert runner._tmp is None  # nothing temporary was made  # pyright: ignore[reportPrivateUsage]


async def test_default_store_lives_in_a_temp_dir_removed_on_close() -> None:
    runner = EngineRunner(ReportEngine())
    result = await runner.run()
    assert isinstance(runner.artifacts, FileArtifactStore)
    root = runner.artifacts.root
    assert (await result.read_artifact(result.artifacts[0])).startswith(b"{")
    assert (runner.workspace_root / result.item.work_id / "notes.txt").exists()
    runner.close()
    assert not root.exists()
    assert not runner.workspace_root.exists()
    runner.close()  # idempotent


async def test_max_steps_exceeded() -> None:
    runner = EngineRunner(NeverEnding())
    with pytest.raises(StepLimitExceeded, match="max_steps=5") as excinfo:
        await runner.run(max_steps=5)
    partial = excinfo.value.result
    assert [s.version for s in partial.snapshots] == [1, 2, 3, 4, 5, 6]
    assert partial.final.step == "v5"
    with pytest.raises(BadInput):
        await runner.run(max_steps=-1)
    runner.close()


async def test_max_steps_zero_is_fine_when_init_finishes() -> None:
    class Done(SeedEngine):
        async def init_snapshot(self, item: WorkItem) -> Snapshot:
            snapshot = await super().init_snapshot(item)
            snapshot.is_finished = True
            return snapshot

    with EngineRunner(Done()) as runner:
        result = await runner.run(max_steps=0)
    assert result.steps == 0
    assert result.final.version == 1


async def test_retry_from_same_snapshot_is_not_corrupted_by_a_failed_attempt() -> None:
    engine = FlakyMutatingEngine()
    with EngineRunner(engine) as runner:
        item = runner.work_item()
        first = await runner.init(item)
        with pytest.raises(ConnectionError):
            await runner.step(first, item, attempt=1)
        assert first.data == {"seen": []}  # the failed attempt's mutation did not leak
        second = await runner.step(first, item, attempt=2)
    assert second.data == {"seen": [2]}
    assert second.version == 2
    assert engine.calls == 2


async def test_stepping_twice_from_one_snapshot() -> None:
    with EngineRunner(CountingEngine()) as runner:
        item = runner.work_item({"n": 2})
        first = await runner.init(item)
        once = await runner.step(first, item)
        again = await runner.step(first, item, attempt=2)
    assert once == again
    assert once.version == 2
    assert [(p.version, p.attempt) for p in runner.progress] == [(1, 1), (1, 2)]


async def test_cancelled_flag_reaches_the_step() -> None:
    seen: list[bool] = []

    class Watcher(SeedEngine):
        async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            seen.append(step_context().cancelled)
            return await super().step(snapshot, item)

    with EngineRunner(Watcher()) as runner:
        item = runner.work_item()
        first = await runner.init(item)
        await runner.step(first, item)
        await runner.step(first, item, cancelled=True)
    assert seen == [False, True]


async def test_contract_violations_surface() -> None:
    class ReturnsDict(SeedEngine):
        async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            return snapshot.model_dump()  # type: ignore[return-value]

    class StealsWork(SeedEngine):
        async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            return snapshot.model_copy(update={"work_id": "someone-else"})

    with EngineRunner(ReturnsDict()) as runner:
        with pytest.raises(EngineContractError, match="not a Snapshot"):
            await runner.run()
    with EngineRunner(StealsWork()) as runner:
        with pytest.raises(EngineContractError, match="someone-else"):
            await runner.run()


async def test_engine_errors_propagate_unchanged() -> None:
    class Broken(SeedEngine):
        async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            raise KeyError("boom")

    with EngineRunner(Broken()) as runner, pytest.raises(KeyError, match="boom"):
        await runner.run()


def test_non_engines_are_refused() -> None:
    class SyncStep:
        engine_id = "sync"

        async def init_snapshot(self, item: WorkItem) -> Snapshot:
            raise NotImplementedError

        def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            raise NotImplementedError

    with pytest.raises(EngineContractError, match="async"):
        EngineRunner(SyncStep())  # type: ignore[arg-type]
    with pytest.raises(EngineContractError, match="lacks"):
        EngineRunner(object())  # type: ignore[arg-type]


async def test_progress_data_must_be_json() -> None:
    class Chatty(SeedEngine):
        async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
            await step_context().progress(message="x", blob=object())
            return await super().step(snapshot, item)

    with EngineRunner(Chatty()) as runner, pytest.raises(BadInput, match="progress data"):
        await runner.run()


async def test_work_item_accepts_item_payload_or_none() -> None:
    with EngineRunner(SeedEngine()) as runner:
        item = WorkItem(engine="my-engine", payload={"a": 1}, resources=["domain:x"])
        assert runner.work_item(item) is item
        assert runner.work_item(None).payload == {}
        assert runner.work_item({"b": 2}).payload == {"b": 2}
        result = await runner.run(item)
    assert result.item is item
    assert result.final.data == {"payload": {"a": 1}}


async def test_engine_receives_copies_of_the_item() -> None:
    received: list[WorkItem] = []

    class Keeper(SeedEngine):
        async def init_snapshot(self, item: WorkItem) -> Snapshot:
            received.append(item)
            item.payload["mutated"] = True
            return await super().init_snapshot(item)

    with EngineRunner(Keeper()) as runner:
        item = runner.work_item({"a": 1})
        await runner.run(item)
    assert received[0] is not item
    assert item.payload == {"a": 1}


async def test_step_context_is_gone_after_a_run() -> None:
    with EngineRunner(SeedEngine()) as runner:
        await runner.run()
    with pytest.raises(RuntimeError, match="only available inside"):
        step_context()


async def test_run_result_without_store_cannot_read() -> None:
    from roost.runtime.models import Artifact
    from roost.runtime.testing import RunResult

    result = RunResult(item=WorkItem(engine="e"), snapshots=[Snapshot(work_id="w", engine="e")])
    assert result.total_delay == 0
    with pytest.raises(RoostError, match="no artifact store"):
        await result.read_artifact(Artifact(artifact_id="a" * 64, kind="json"))
