"""The operators' scripts: cancel, pause, resume, retry, replay, signal, budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from roost.redis.calls.base import CallsBase, job_of
from roost.redis.replies import BudgetReply, ReplayReply, SignalReply, StateReply

if TYPE_CHECKING:
    from roost.redis.keys import Keys

__all__ = ["OperatorCalls"]


class OperatorCalls(CallsBase):
    """The operators' scripts: cancel, pause, resume, retry, replay, signal, budget."""

    async def cancel(self, route: Keys, *, work_id: str) -> StateReply:
        """Cancel an unfinished item."""
        return await self._run(
            "cancel", route, {"meta": route.meta(work_id)}, {"work_id": work_id}, StateReply
        )

    async def pause(self, route: Keys, *, work_id: str, reason: str) -> StateReply:
        """Pause an unfinished item (``reason``: operator or budget)."""
        return await self._run(
            "pause",
            route,
            {"meta": route.meta(work_id)},
            {"work_id": work_id, "reason": reason},
            StateReply,
        )

    async def resume(self, route: Keys, *, work_id: str, dispatch: str) -> StateReply:
        """Resume a paused item."""
        suffix, job = job_of(route, work_id, dispatch)
        return await self._run(
            "resume",
            route,
            {"meta": route.meta(work_id), "sig": route.sig(work_id), "job": job},
            {"work_id": work_id, "dispatch": dispatch, "job_suffix": suffix},
            StateReply,
        )

    async def retry(self, route: Keys, *, work_id: str, dispatch: str) -> StateReply:
        """Queue a failed or dead item again with fresh attempts."""
        suffix, job = job_of(route, work_id, dispatch)
        return await self._run(
            "retry",
            route,
            {"meta": route.meta(work_id), "job": job},
            {"work_id": work_id, "dispatch": dispatch, "job_suffix": suffix},
            StateReply,
        )

    async def replay(
        self,
        route: Keys,
        *,
        work_id: str,
        expected_version: int,
        snapshot_json: str,
        dispatch: str,
        history: int,
        from_version: str | int,
    ) -> ReplayReply:
        """Run a finished item again from a snapshot ('' to start over)."""
        suffix, job = job_of(route, work_id, dispatch)
        return await self._run(
            "replay",
            route,
            {
                "meta": route.meta(work_id),
                "snap": route.snap(work_id),
                "hist": route.hist(work_id),
                "job": job,
            },
            {
                "work_id": work_id,
                "expected_version": expected_version,
                "snapshot_json": snapshot_json,
                "dispatch": dispatch,
                "job_suffix": suffix,
                "history": history,
                "from_version": from_version,
            },
            ReplayReply,
        )

    async def signal(
        self,
        route: Keys,
        *,
        work_id: str,
        name: str,
        payload: str,
        sender: str,
        dispatch: str,
        max_pending: int,
    ) -> SignalReply:
        """Send a signal to an item."""
        suffix, job = job_of(route, work_id, dispatch)
        return await self._run(
            "signal",
            route,
            {"meta": route.meta(work_id), "sig": route.sig(work_id), "job": job},
            {
                "work_id": work_id,
                "name": name,
                "payload": payload,
                "sender": sender,
                "dispatch": dispatch,
                "job_suffix": suffix,
                "max_pending": max_pending,
            },
            SignalReply,
        )

    async def budget(
        self,
        route: Keys,
        *,
        work_id: str,
        add_steps: int,
        add_cost: str,
        add_runtime_ms: int,
        own: Sequence[str],
    ) -> BudgetReply:
        """Raise an item's budgets; ``own``: its own limits (steps, cost, runtime ms)."""
        own_steps, own_cost, own_runtime_ms = own
        return await self._run(
            "budget",
            route,
            {"meta": route.meta(work_id)},
            {
                "work_id": work_id,
                "add_steps": add_steps,
                "add_cost": add_cost,
                "add_runtime_ms": add_runtime_ms,
                "own_steps": own_steps,
                "own_cost": own_cost,
                "own_runtime_ms": own_runtime_ms,
            },
            BudgetReply,
        )
