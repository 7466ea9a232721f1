"""Snapshot history (optional): earlier versions are kept and can be replayed from."""

from __future__ import annotations

import pytest

from roost.runtime.errors import NotFound
from roost.runtime.models import WorkState
from roost.runtime.testing.backend_conformance.base import (
    Capability,
    ConformanceSuite,
    Scenario,
    scenario,
)

__all__ = ["SnapshotHistoryConformance"]


class SnapshotHistoryConformance(ConformanceSuite):
    """With the ``history`` setting, ``replay(version=n)`` starts from a kept version."""

    @scenario(Capability.SNAPSHOT_HISTORY)
    async def test_replay_from_a_kept_version(self, sc: Scenario) -> None:
        """Replaying from version 2 runs the steps after it again.

        The chosen snapshot becomes the next version, so versions stay contiguous.
        """
        await sc.start_worker(history=5)
        work_id = await sc.enqueue(steps=3)
        await sc.until_state(work_id, WorkState.DONE)
        await sc.assert_contiguous(work_id, steps=3)
        assert await sc.store.replay(work_id, version=2) == work_id
        status = await sc.until_done_at(work_id, 7)
        assert status.snapshot is not None
        # Version 5 is version 2 again (one step done); steps from 5 and 6 finish it.
        assert [entry["v"] for entry in status.snapshot.data["trail"]] == [1, 5, 6]
        # The replay itself writes version 5; steps commit the others.
        written = await sc.committed_versions(work_id, ("committed", "done", "replayed"))
        assert written == [1, 2, 3, 4, 5, 6, 7]
        with pytest.raises(NotFound):
            await sc.store.replay(work_id, version=99)
