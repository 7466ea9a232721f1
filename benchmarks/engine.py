"""The benchmark engine: a no-op by default, with knobs for the latency and crash runs.

Payload keys (all optional):

- ``steps``: engine steps after ``init_snapshot`` (default 5); the item is finished after
  ``steps`` steps, so it commits ``steps + 1`` snapshots (init is version 1).
- ``pad``: characters of padding kept in ``data`` (to size the snapshot).
- ``record``: append ``[start, end]`` wall-clock times of every call to ``data["t"]``.
- ``delays``: ``next_step_delay_seconds`` after call ``k`` (``k = 0`` is init).
- ``fail``: ``init_snapshot`` returns a snapshot of another engine, a contract error, so the
  item goes straight to ``failed``.
- ``hang``: seconds the step at ``hang_at`` (a call index, default 1) sleeps on its first
  attempt (the crash benchmark kills the worker meanwhile).
- ``sleep``: seconds every step sleeps (the peers' crash runs give steps a duration).
- ``progress``: every step reports its progress once (the memory run's items that do).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.core import bench_state
from roost.runtime import Snapshot, WorkItem, step_context

ENGINE_ID = "bench"


def _record(data: dict[str, Any], payload: dict[str, Any], start: float) -> dict[str, Any]:
    if payload.get("record"):
        data["t"] = [*data.get("t", []), [start, time.time()]]
    return data


class BenchEngine:
    """A no-op engine whose behaviour the payload tunes (see the module docstring)."""

    engine_id = ENGINE_ID

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        start = time.time()
        payload = item.payload
        data = bench_state(int(payload.get("pad", 0)))
        steps = int(payload.get("steps", 5))
        return Snapshot(
            work_id=item.work_id,
            engine="other" if payload.get("fail") else ENGINE_ID,
            step="s0",
            data=_record(data, payload, start),
            is_finished=steps <= 0,
            next_step_delay_seconds=_delay(payload, 0),
        )

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        start = time.time()
        payload = item.payload
        n = int(snapshot.data["n"]) + 1
        if payload.get("hang") and n == int(payload.get("hang_at", 1)):
            if step_context().attempt == 1:
                await asyncio.sleep(float(payload["hang"]))
        if payload.get("sleep"):
            await asyncio.sleep(float(payload["sleep"]))
        if payload.get("progress"):
            steps = int(payload.get("steps", 5))
            await step_context().progress(min(n / steps, 1.0), f"step {n} of {steps}")
        data = dict(snapshot.data)
        data["n"] = n
        return Snapshot(
            work_id=snapshot.work_id,
            engine=ENGINE_ID,
            step=f"s{n}",
            data=_record(data, payload, start),
            is_finished=n >= int(payload.get("steps", 5)),
            next_step_delay_seconds=_delay(payload, n),
        )


def _delay(payload: dict[str, Any], call: int) -> float:
    delays = payload.get("delays") or []
    return float(delays[call]) if call < len(delays) else 0.0


def build_engine(**kwargs: Any) -> BenchEngine:
    """Engine factory (the plugin convention)."""
    return BenchEngine()
