"""``roost demo approval``: an agent plans, waits for a person's approval, then acts.

The engine here is the smallest one that asks for approval: its first step writes a plan
and asks; the item waits in ``awaiting`` with no lease; the demo approves it the way
``roost approve`` does; the next step reads the decision and the note and finishes.
"""

from __future__ import annotations

import asyncio
import json
import time

from roost.cli.context import CliError, backend_of, open_backend
from roost.runtime import ApprovalRequest, RoostSettings, Snapshot, WorkItem, step_context
from roost.runtime.backends import WorkBackend

__all__ = ["ENGINE_ID", "PlanAndApply", "run_approval_demo"]

ENGINE_ID = "demo-plan-and-apply"
WAIT_LIMIT = 30.0


def say(text: str = "") -> None:
    """Print a line of the story."""
    print(text, flush=True)  # noqa: T201


class PlanAndApply:
    """Plans a change, asks for approval with the plan and its cost, applies it if approved."""

    engine_id = ENGINE_ID

    async def init_snapshot(self, item: WorkItem) -> Snapshot:
        """Start planning."""
        return Snapshot(work_id=item.work_id, engine=self.engine_id, step="plan")

    async def step(self, snapshot: Snapshot, item: WorkItem) -> Snapshot:
        """``plan``: write the plan and ask; ``apply``: act on the decision."""
        ctx = step_context()
        if snapshot.step == "plan":
            plan = [f"restart {name}" for name in item.payload.get("services", ["web", "api"])]
            return snapshot.model_copy(
                update={
                    "step": "apply",
                    "data": {"plan": plan},
                    "approval_request": ApprovalRequest(
                        message=f"Apply this plan ({len(plan)} changes)?",
                        details={"plan": plan, "estimated_cost_usd": 0.42},
                    ),
                }
            )
        decision = ctx.approval
        data = dict(snapshot.data)
        data["decision"] = None if decision is None else decision.payload
        data["decided_by"] = None if decision is None else decision.sender
        data["applied"] = list(data["plan"]) if ctx.approved else []
        return snapshot.model_copy(update={"step": "done", "data": data, "is_finished": True})


async def _until(backend: WorkBackend, work_id: str, state: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while (await backend.status(work_id)).meta.state != state:
        if time.monotonic() > deadline:
            raise CliError(f"the demo item never became {state}")
        await asyncio.sleep(0.05)


async def run_approval_demo(settings: RoostSettings) -> None:
    """Tell the approval story with an in-process worker; it is stopped before returning."""
    ns = settings.namespace
    cmd = f"uv run roost --namespace {ns}"
    async with open_backend(settings) as backend:
        say("Roost demo: an agent waits for a person's approval, holding no worker meanwhile.")
        say(f"  redis      {backend.describe()}")
        say(f"  namespace  {ns} (kept apart from your own work)")
        worker = backend_of(settings)
        await worker.connect()
        task = asyncio.create_task(
            worker.run_worker([PlanAndApply()], concurrency=2, install_signal_handlers=False)
        )
        try:
            work_id = await backend.enqueue(ENGINE_ID, {"services": ["web", "api", "worker"]})
            say(f"\n[1/4] enqueued {ENGINE_ID} job {work_id}; a worker runs its first step")
            await _until(backend, work_id, "awaiting")
            meta = (await backend.status(work_id)).meta
            assert meta.approval is not None
            say(f"\n[2/4] it asks for approval and waits ({cmd} list shows it):")
            say(f"      {meta.work_id}  {meta.engine}  {meta.display_state}")
            say(f"      asks     {meta.approval.message}")
            say(f"      details  {json.dumps(meta.approval.details)}")
            lease = meta.lease.worker_id if meta.lease else "none"
            say(f"      lease    {lease} (waiting is a state, not a lease)")
            say(f'\n[3/4] a person approves: {cmd} approve {work_id} --note "go ahead"')
            await backend.approve(work_id, note="go ahead", sender="demo")
            await _until(backend, work_id, "done")
            status = await backend.status(work_id)
            assert status.snapshot is not None
            say("\n[4/4] the next step read the decision and applied the plan:")
            say("      " + json.dumps(status.snapshot.data))
        finally:
            worker.stop_worker()
            await asyncio.wait_for(task, 30)
            await worker.close()
    say("\nLook at it yourself:")
    say(f"  {cmd} status {work_id} --human")
    say(f"  {cmd} events {work_id}     # signalled: the approval, its sender and id")
    say("Your own engines ask the same way; people answer with roost approve / roost reject")
    say(f"or on the console's Approvals page ({cmd} ui).")
