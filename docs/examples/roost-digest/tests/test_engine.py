import pytest
from roost_digest.engine import build_engine

from roost.runtime import PermanentError
from roost.runtime.testing import EngineRunner


async def test_digests_each_text_then_writes_the_report() -> None:
    async with EngineRunner(build_engine()) as runner:
        result = await runner.run({"texts": ["one two three", "four five"]})
        report = await result.read_artifact(result.artifacts[0])
    assert [s.version for s in result.snapshots] == [1, 2, 3]
    assert result.final.is_finished
    assert result.final.data == {"done": 2, "words": [3, 2]}
    assert result.delays == [0.0, 0.5]  # recorded, not slept
    assert [p.fraction for p in result.progress] == [0.5, 1.0]
    assert report.decode() == "# Digest\n\n- text 1: 3 words\n- text 2: 2 words\n"


async def test_a_step_run_twice_gives_the_same_snapshot() -> None:
    async with EngineRunner(build_engine()) as runner:
        item = runner.work_item({"texts": ["a b", "c"]})
        first = await runner.init(item)
        once = await runner.step(first, item)
        again = await runner.step(first, item, attempt=2)
    assert once == again


async def test_a_bad_payload_is_a_permanent_error() -> None:
    async with EngineRunner(build_engine(max_texts=1)) as runner:
        with pytest.raises(PermanentError, match="at most 1 texts"):
            await runner.run({"texts": ["a", "b"]})
