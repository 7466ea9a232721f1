"""The chaos suite's engine: the hash chain, with failure modes an operator can switch off."""

from __future__ import annotations

import os

from roost.runtime import Snapshot, WorkItem
from roost_testkit.engines import HashChainEngine


class ChaosEngine(HashChainEngine):
    """:class:`HashChainEngine` plus a ``poison_file`` payload key.

    With ``poison_file`` set, the payload's ``mode``/``modes`` apply only while that file
    exists; once it is gone every step is ``plain``. A test makes an item poisonous, lets it
    go dead, "fixes the bug" by deleting the file, then retries it.
    """

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        path = item.payload.get("poison_file")
        if path and not os.path.exists(path):  # noqa: ASYNC240 (a stat, on purpose)
            payload = {k: v for k, v in item.payload.items() if k not in ("mode", "modes")}
            item = item.model_copy(update={"payload": payload})
        return await super().step(snapshot, item)
