"""Fixtures for CLI tests: a private Redis per test, the CLI in-process and as a process."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cli_support import Cli, Target  # noqa: E402


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
