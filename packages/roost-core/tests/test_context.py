from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from roost.runtime import (
    BadInput,
    FileArtifactStore,
    StepContext,
    step_context,
    use_step_context,
)


def make_ctx(tmp_path: Path, work_id: str = "w1") -> StepContext:
    return StepContext(
        work_id=work_id,
        version=3,
        attempt=1,
        worker_id="worker",
        artifacts=FileArtifactStore(tmp_path / "artifacts"),
        workspace_root=tmp_path / "ws",
    )


def test_step_context_raises_outside_a_step() -> None:
    with pytest.raises(RuntimeError, match=r"only available inside Engine\.init_snapshot"):
        step_context()


def test_use_step_context_sets_and_resets(tmp_path: Path) -> None:
    outer, inner = make_ctx(tmp_path, "outer"), make_ctx(tmp_path, "inner")
    with use_step_context(outer) as ctx:
        assert ctx is outer
        assert step_context() is outer
        with use_step_context(inner):
            assert step_context() is inner
        assert step_context() is outer
    with pytest.raises(RuntimeError):
        step_context()


async def test_concurrent_tasks_see_their_own_context(tmp_path: Path) -> None:
    async def run(work_id: str) -> str:
        with use_step_context(make_ctx(tmp_path, work_id)):
            await asyncio.sleep(0.01)
            return step_context().work_id

    assert await asyncio.gather(run("a"), run("b"), run("c")) == ["a", "b", "c"]


async def test_workspace_progress_cancel_and_artifacts(tmp_path: Path) -> None:
    reports: list[tuple[float | None, str | None, dict[str, object]]] = []

    async def report(fraction: float | None, message: str | None, data: dict[str, object]) -> None:
        reports.append((fraction, message, data))

    ctx = make_ctx(tmp_path)
    ctx.report = report
    assert not (tmp_path / "ws" / "w1").exists()
    assert ctx.workspace == tmp_path / "ws" / "w1"
    assert ctx.workspace.is_dir()
    await ctx.progress(0.5, "half", n=1)
    assert reports == [(0.5, "half", {"n": 1})]
    with pytest.raises(ValueError, match="between 0 and 1"):
        await ctx.progress(1.5)
    assert not ctx.cancelled
    ctx.cancel_event.set()
    assert ctx.cancelled
    as_json = await ctx.put_artifact({"b": 1, "a": [1]}, kind="json")
    as_text = await ctx.put_artifact("hé", kind="txt")
    as_bytes = await ctx.put_artifact(b"\x00\x01", kind="bin")
    assert json.loads(await ctx.artifacts.read(as_json.artifact_id)) == {"a": [1], "b": 1}
    assert await ctx.artifacts.read(as_text.artifact_id) == "hé".encode()
    assert await ctx.artifacts.read(as_bytes.artifact_id) == b"\x00\x01"


@pytest.mark.parametrize(
    "content", [{"x": float("nan")}, [float("inf")], {"x": object()}, {1: "a", "b": 2}]
)
async def test_put_artifact_refuses_content_that_is_not_json(
    tmp_path: Path, content: dict[object, object] | list[object]
) -> None:
    ctx = make_ctx(tmp_path)
    with pytest.raises(BadInput, match="not JSON"):
        await ctx.put_artifact(content, kind="json")  # type: ignore[arg-type]
    assert not (tmp_path / "artifacts").exists()
