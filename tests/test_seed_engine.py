"""The seed README's minimal engine, installed as a real distribution, works unchanged.

tests/fixtures/seed-engine is the README's ``my_package`` with ``engine.py`` copied verbatim
and the README's ``[project.entry-points."roost.engines"]`` table. It is installed together
with the workspace's roost-core into a fresh virtual environment; that environment's Python
then finds the engine through ``Registry.load()`` and runs it with the in-memory harness.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from roost_testkit.venvs import python_json, run_uv, venv_bin

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "seed-engine"

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import json

    import roost.runtime
    from roost.runtime import Registry
    from roost.runtime.testing import EngineRunner

    registry = Registry.load()
    engine = registry.build_engine("my-engine")


    async def main():
        async with EngineRunner(engine) as runner:
            return await runner.run({"task": "ship it"})


    result = asyncio.run(main())
    print(json.dumps({
        "engines": sorted(registry.engines),
        "engine_class": f"{type(engine).__module__}.{type(engine).__qualname__}",
        "roost_runtime": roost.runtime.__file__,
        "snapshots": [s.model_dump(mode="json") for s in result.snapshots],
    }))
    """
)


def test_fixture_is_the_seed_engine() -> None:
    pyproject = (FIXTURE / "pyproject.toml").read_text()
    assert (
        '[project.entry-points."roost.engines"]\nmy-engine = "my_package.engine:build_engine"'
        in (pyproject)
    )
    engine = (FIXTURE / "src" / "my_package" / "engine.py").read_text()
    assert engine.startswith("from roost.runtime.models import Snapshot, WorkItem\n")
    assert "def build_engine(**kwargs):\n    return MyEngine()\n" in engine
    assert "new_snapshot = snapshot.model_copy()" in engine


@pytest.mark.slow
def test_seed_engine_installed_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run_uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv_bin(venv, "python")
    run_uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python),
        str(FIXTURE),
        str(REPO / "packages" / "roost-core"),
    )
    out = python_json(venv, SCRIPT, tmp_path)
    assert out["engines"] == ["my-engine"]
    assert out["engine_class"] == "my_package.engine.MyEngine"
    # roost-core came from the venv (a built copy), not from the workspace's src tree
    assert Path(out["roost_runtime"]).is_relative_to(venv)
    snapshots = out["snapshots"]
    assert [s["version"] for s in snapshots] == [1, 2]
    assert [s["step"] for s in snapshots] == ["start", "done"]
    assert snapshots[-1]["is_finished"] is True
    assert snapshots[-1]["engine"] == "my-engine"
    assert snapshots[-1]["data"] == {"payload": {"task": "ship it"}}
