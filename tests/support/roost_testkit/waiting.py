"""An engine that waits for signals and approvals, for runtime, CLI and chaos tests.

``SignalCollector`` (engine id ``collector``): each step records what arrived for the wait
before it (``data.received``: one entry per signal, ``{"id", "name", "payload", "sender"}``,
and ``data.timeouts``: how many waits timed out), then waits again until it has waited
``rounds`` times. Payload:

- ``rounds`` (default 1): how many waits;
- ``until``: instead of ``rounds``, wait again until this many signals were received;
- ``names`` (default ``["go"]``): the signals each wait is for;
- ``timeout``: the wait's timeout in seconds (none when absent);
- ``approval``: ask for an approval instead (message ``approval``), recording the decision
  in ``data.decisions``;
- ``fail_times``: the step after each wait raises on its first ``fail_times`` attempts
  (its signals must survive for the retry);
- ``sleep``: seconds each step sleeps before returning (a signal can arrive meanwhile).
"""

from __future__ import annotations

import asyncio
from typing import Any

from roost.runtime import ApprovalRequest, Snapshot, WorkItem, step_context


class SignalCollector:
    engine_id = "collector"
    max_attempts = 10

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        snap = Snapshot(
            work_id=item.work_id,
            engine=self.engine_id,
            step="wait-1",
            data={"received": [], "timeouts": 0, "decisions": [], "round": 1},
        )
        return self._wait(snap, item)

    def _wait(self, snap: Snapshot, item: WorkItem) -> Snapshot:
        p = item.payload
        if p.get("approval"):
            snap.approval_request = ApprovalRequest(
                message=str(p["approval"]), details={"round": snap.data["round"]}
            )
        else:
            snap.wait_for_signals = list(p.get("names", ["go"]))
        timeout = p.get("timeout")
        snap.wait_timeout_seconds = float(timeout) if timeout is not None else None
        return snap

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        p = item.payload
        if p.get("sleep"):
            await asyncio.sleep(float(p["sleep"]))
        if ctx.attempt <= int(p.get("fail_times", 0)):
            raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
        data: dict[str, Any] = dict(snapshot.data)
        data["received"] = [
            *data["received"],
            *(
                {"id": s.id, "name": s.name, "payload": s.payload, "sender": s.sender}
                for s in ctx.signals
            ),
        ]
        if ctx.wait_timed_out:
            data["timeouts"] += 1
        if p.get("approval"):
            decision = ctx.approval
            data["decisions"] = [
                *data["decisions"],
                None if decision is None else {**decision.payload, "sender": decision.sender},
            ]
        new = snapshot.model_copy(update={"data": data})
        if "until" in p:
            finished = len(data["received"]) >= int(p["until"])
        else:
            finished = data["round"] >= int(p.get("rounds", 1))
        if finished:
            new.is_finished = True
            new.step = "done"
            return new
        data["round"] += 1
        new.step = f"wait-{data['round']}"
        return self._wait(new, item)


class MeteredEngine:
    """Engine ``metered``: each step charges ``charge`` and counts ``data.done``; it finishes
    after ``steps`` steps. With ``fail_times``, each step charges, then raises on its first
    attempts (a failed attempt's charge must not count)."""

    engine_id = "metered"
    max_attempts = 10

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="s0", data={"done": 0})

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        ctx = step_context()
        p = item.payload
        ctx.charge(float(p.get("charge", 1.0)))
        if ctx.attempt <= int(p.get("fail_times", 0)):
            raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
        if p.get("sleep"):
            await asyncio.sleep(float(p["sleep"]))
        done = int(snapshot.data["done"]) + 1
        return snapshot.model_copy(
            update={
                "data": {"done": done},
                "step": f"s{done}",
                "is_finished": done >= int(p.get("steps", 5)),
            }
        )
