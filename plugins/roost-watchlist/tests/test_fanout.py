"""The fan-out watchlist without Redis: payload checks, registration, the spawn it asks for.

Its fan-in over real children runs in apps/roost-cli/tests/test_cli_children.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roost.runtime import (
    FileArtifactStore,
    PermanentError,
    Registry,
    StepContext,
    WorkItem,
    get_plugin_manager,
    use_step_context,
)
from roost.runtime.children import Family
from roost.runtime.testing import EngineRunner
from roost_watchlist import FanOutWatchlist, build_fanout
from roost_watchlist.fanout import MAX_URLS


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({}, "urls is required"),
        ({"urls": []}, "urls is required"),
        ({"urls": "http://127.0.0.1/"}, "urls is required"),
        ({"urls": ["http://127.0.0.1/", 3]}, "every url must be a non-empty string"),
        ({"urls": ["http://127.0.0.1/"] * (MAX_URLS + 1)}, f"at most {MAX_URLS} urls"),
    ],
)
async def test_bad_payload_fails_at_init(bad: dict[str, Any], message: str) -> None:
    async with EngineRunner(build_fanout()) as runner:
        with pytest.raises(PermanentError, match=message):
            await runner.init(runner.work_item(bad))


async def test_first_step_spawns_one_watchlist_child_per_url_and_waits_for_all(
    tmp_path: Path,
) -> None:
    urls = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    engine = FanOutWatchlist()
    item = WorkItem(engine=engine.engine_id, payload={"urls": urls})
    snap = await engine.init_snapshot(item)
    ctx = StepContext(
        work_id=item.work_id,
        version=1,
        attempt=1,
        worker_id="test",
        artifacts=FileArtifactStore(tmp_path / "artifacts"),
        workspace_root=tmp_path / "ws",
        family=Family(work_id=item.work_id),
    )
    with use_step_context(ctx):
        after = await engine.step(snap, item)
    assert after.step == "summarise" and not after.is_finished
    spawned = ctx.family.spawned
    assert [c.engine for c in spawned] == ["watchlist", "watchlist"]
    assert [c.payload["url"] for c in spawned] == urls
    assert all(c.child_of and c.child_of.keep == ["url", "verdict"] for c in spawned)
    assert all(c.child_of and c.child_of.parent_id == item.work_id for c in spawned)
    assert ctx.family.wait == "all"


def test_registered_with_the_watchlist() -> None:
    registry = Registry.load(get_plugin_manager())
    engine = registry.build_engine("watchlist-fanout")
    assert isinstance(engine, FanOutWatchlist) and engine.engine_id == "watchlist-fanout"
