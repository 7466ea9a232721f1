"""Plugins that fail to load: shown as broken, refused by enqueue, and what `worker` does."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, fake_distribution, start_worker, stop

RAISES_ON_IMPORT = 'raise ImportError("needs libfoo, which is not installed")\n'
ERROR = "ImportError: needs libfoo, which is not installed"


@pytest.fixture
def broken_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A seed-style engine `bad-engine` and a plugin `bad-plugin`, both raising on import."""
    site = tmp_path / "site"
    fake_distribution(site, RAISES_ON_IMPORT, "[roost.engines]\nbad-engine = {module}:build\n")
    fake_distribution(site, RAISES_ON_IMPORT, "[roost]\nbad-plugin = {module}\n")
    monkeypatch.syspath_prepend(str(site))  # in-process commands
    yield site


def with_site(site: Path) -> dict[str, str]:
    """The environment that installs the fake plugins into a `roost` process."""
    return {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])}


def test_engines_shows_broken_engines_and_plugins_with_their_error(
    cli: Cli, broken_site: Path
) -> None:
    result = cli("engines")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    [bad] = [line for line in lines if line.startswith("bad-engine ")]
    assert bad.endswith(f"broken: {ERROR}")
    [ok] = [line for line in lines if line.startswith("watchlist ")]
    assert ok.split()[-1] == "ok"
    [plugin] = [line for line in lines if line.strip().startswith("bad-plugin ")]
    assert ERROR in plugin
    listed = json.loads(cli("engines", "--json").stdout)
    by_id = {e["engine"]: e for e in listed["engines"]}
    assert by_id["bad-engine"]["status"] == "broken" and by_id["bad-engine"]["error"] == ERROR
    assert by_id["watchlist"]["status"] == "ok" and by_id["watchlist"]["error"] is None
    assert [p["plugin"] for p in listed["broken_plugins"]] == ["bad-plugin"]


def test_enqueue_refuses_a_broken_engine(cli: Cli, broken_site: Path) -> None:
    result = cli("enqueue", "--engine", "bad-engine")
    assert result.code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: engine 'bad-engine' is installed but failed to load: {ERROR}")
    assert sum(cli.counts().values()) == 0
    unknown = cli("enqueue", "--engine", "nope")
    assert unknown.code == 2
    assert "plugins that failed to load: bad-plugin" in unknown.stderr


def test_worker_asked_for_a_broken_engine_exits_2_with_one_line(
    cli: Cli, broken_site: Path
) -> None:
    result = cli.proc("worker", "--engines", "watchlist,bad-engine", env=with_site(broken_site))
    assert result.code == 2, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: engine 'bad-engine' is installed but failed to load: {ERROR}")


def test_worker_without_engines_runs_the_healthy_ones(cli: Cli, broken_site: Path) -> None:
    proc = start_worker(cli, env=with_site(broken_site))
    out = stop(proc)
    assert proc.returncode == 0, out
    assert f"  bad-engine failed to load and is not run: {ERROR}" in out
    assert f"  bad-plugin failed to load and is not run: {ERROR}" in out
    assert "engines      watchlist" in out
    assert "Traceback" not in out
