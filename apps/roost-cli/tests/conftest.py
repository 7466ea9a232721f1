"""Fixtures for CLI tests: a private Redis per test, the CLI in-process and as a process."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cli_support import Cli, Target, fake_distribution  # noqa: E402

FAILING_ENGINE = """
from roost.runtime import Snapshot, step_context


def check(payload, attempt, depth=4):
    if depth:  # a few frames deep, so that the traceback is longer than what is shown
        return check(payload, attempt, depth - 1)
    mode = payload.get("mode", "always")
    if mode == "always" or (mode == "once" and attempt == 1):
        raise ValueError(f"boom on attempt {attempt}")


class Engine:
    engine_id = "fails"

    async def init_snapshot(self, item):
        return Snapshot(work_id=item.work_id, engine="fails", step="go")

    async def step(self, snapshot, item):
        check(item.payload, step_context().attempt)
        return snapshot.model_copy(update={"is_finished": True, "step": "done"})


def build(**kwargs):
    return Engine()
"""


@pytest.fixture
def cli_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """ROOST_* variables for a private server, a fresh namespace and ROOST_HOME."""
    return {
        "ROOST_REDIS_URL": redis_url,
        "ROOST_NAMESPACE": f"t{uuid.uuid4().hex[:8]}",
        "ROOST_HOME": str(tmp_path / "home"),
        "ROOST_LEASE_TTL": "3s",
        "ROOST_RETRY_DELAY": "50ms",
        "ROOST_RETRY_MAX_DELAY": "200ms",
        "ROOST_GRACE_PERIOD": "10s",
    }


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(cli_env, tmp_path)
    yield runner
    for proc in runner.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


@pytest.fixture
def failing_engine(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Install an engine ``fails`` (payload ``{"mode": "always"}``, ``"once"`` or ``"ok"``).

    Its step raises ``ValueError`` on every attempt, on the first one only, or never. In-process
    commands see it at once; pass the returned environment to processes (``roost worker``).
    """
    site = tmp_path / "failing-site"
    fake_distribution(site, FAILING_ENGINE, "[roost.engines]\nfails = {module}:build\n")
    monkeypatch.syspath_prepend(str(site))
    yield {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
