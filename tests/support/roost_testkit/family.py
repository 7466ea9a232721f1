"""A parent engine for child-work tests: spawn children, wait, gather their outcomes.

``FanOutEngine`` (engine id ``fanout``). Its payload:

- ``children``: how many children to spawn (engine ``child_engine``, default ``hashchain``,
  payload ``child_payload`` plus ``index``, or ``child_payloads[index]`` when given);
  ``key_prefix``: give each an idempotency key ``<key_prefix>-<index>``; ``keep``: the
  data keys the parent keeps; ``child_max_attempts``: each child's attempts per step;
- ``wait``: ``"all"`` (default), ``"any"`` or a number;
- ``nest``: spawn ``fanout`` children with ``nest - 1`` (grandchildren, ...) instead;
- ``spawn_mode``: ``raise`` or ``exit`` after spawning, on the first ``fail_times`` attempts
  (default 1): the spawning step fails or kills its worker before its commit;
- ``spawn_seconds``: the spawning step sleeps after spawning, before it returns;
- ``gather_seconds``: the gathering step sleeps first (children finish meanwhile).

Every attempt appends a JSON line to ``$ROOST_TEST_LOG``: ``phase`` ``spawn`` (with the ids
it spawned) or ``gather`` (with every outcome it received).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from roost.runtime import Snapshot, WorkItem, step_context
from roost_testkit.engines import log_attempt


class FanOutEngine:
    engine_id = "fanout"

    @staticmethod
    def _child_payload(p: dict[str, Any], i: int) -> dict[str, Any]:
        per_child = p.get("child_payloads")
        if per_child:
            return dict(per_child[i % len(per_child)])
        return dict(p.get("child_payload", {"steps": 1}))

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="spawn")

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        p = item.payload
        record: dict[str, Any] = {
            "work_id": item.work_id,
            "version": snapshot.version,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "start": time.time(),
        }
        if snapshot.step == "spawn":
            ids = []
            nest = int(p.get("nest", 0))
            for i in range(int(p.get("children", 3))):
                engine = "fanout" if nest else str(p.get("child_engine", "hashchain"))
                payload = {**p, "nest": nest - 1} if nest else self._child_payload(p, i)
                ids.append(
                    ctx.spawn(
                        engine,
                        {**payload, "index": i},
                        idempotency_key=f"{p['key_prefix']}-{i}" if p.get("key_prefix") else None,
                        keep=p.get("keep"),
                        max_attempts=p.get("child_max_attempts"),
                    )
                )
            ctx.wait_for_children(p.get("wait", "all"))
            log_attempt({**record, "phase": "spawn", "spawned": ids})
            await asyncio.sleep(float(p.get("spawn_seconds", 0.0)))
            failing = ctx.attempt <= int(p.get("fail_times", 1))
            if p.get("spawn_mode") == "raise" and failing:
                raise RuntimeError("spawning step failed on purpose")
            if p.get("spawn_mode") == "exit" and failing:
                os._exit(3)
            return snapshot.model_copy(update={"step": "gather", "data": {"spawned": ids}})
        await asyncio.sleep(float(p.get("gather_seconds", 0.0)))
        outcomes = await ctx.children()
        log_attempt(
            {
                **record,
                "phase": "gather",
                "outcomes": [o.model_dump(mode="json") for o in outcomes],
            }
        )
        data = dict(snapshot.data)
        data["outcomes"] = {o.work_id: str(o.state) for o in outcomes}
        return snapshot.model_copy(update={"step": "gathered", "data": data, "is_finished": True})


def build_engine(**kwargs: Any) -> FanOutEngine:
    return FanOutEngine(**kwargs)
