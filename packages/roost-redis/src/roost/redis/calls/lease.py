"""The lease holder's scripts: acquire, commit, fail, release, progress, renew."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.calls.base import CallsBase, claim_keys, job_of
from roost.redis.replies import (
    AcquireReply,
    CommitReply,
    FailReply,
    ReleaseReply,
    RenewReply,
    StateReply,
)

if TYPE_CHECKING:
    from roost.redis.keys import Keys

__all__ = ["LeaseCalls"]


class LeaseCalls(CallsBase):
    """The lease holder's scripts: acquire, commit, fail, release, progress, renew."""

    async def acquire(
        self,
        route: Keys,
        *,
        work_id: str,
        dispatch: str,
        token: str,
        job: str,
        resources: Sequence[str],
        max_attempts: int,
        wait_base_ms: int,
        wait_cap_ms: int,
        engine_limits: str,
    ) -> AcquireReply:
        """Lease the item of delivery ``job`` (``resources``: those the caller read)."""
        meta, item, snap, _hist = route.item_keys(work_id)
        return await self._run(
            "acquire",
            route,
            {
                "meta": meta,
                "item": item,
                "snap": snap,
                "job": job,
                **claim_keys(route, resources),
            },
            {
                "work_id": work_id,
                "dispatch": dispatch,
                "token": token,
                "max_attempts": max_attempts,
                "nres": len(resources),
                "resources": " ".join(resources),
                "wait_base_ms": wait_base_ms,
                "wait_cap_ms": wait_cap_ms,
                "engine_limits": engine_limits,
            },
            AcquireReply,
        )

    async def commit(
        self,
        route: Keys,
        *,
        work_id: str,
        token: str,
        epoch: int,
        op: str,
        resources: Sequence[str],
        expected_version: int,
        snapshot_json: str,
        step: str,
        outcome: str,
        delay_ms: int,
        dispatch: str,
        history: int,
        event_data: str,
        init_json: str,
        init_step: str,
        ended_ms: int | None,
        wait: str,
        budget: str,
        children: Sequence[tuple[str, str, str]] | None = None,
        children_args: Sequence[dict[str, Any]] = (),
        kids_wait: str = "",
        durable: bool = False,
    ) -> CommitReply:
        """Commit a step (see commit.lua).

        ``children`` (the spawn block, with ``children_args`` and ``kids_wait``): per child
        its meta, item and idempotency keys, present when the step spawned or waits for its
        children.
        """
        suffix, job = job_of(route, work_id, dispatch)
        meta, _item, snap, hist = route.item_keys(work_id)
        keys: dict[str, Any] = {
            "meta": meta,
            "snap": snap,
            "hist": hist,
            "job": job,
            **claim_keys(route, resources),
            "sig": route.sig(work_id),
        }
        args: dict[str, Any] = {
            "work_id": work_id,
            "token": token,
            "epoch": epoch,
            "op": op,
            "expected_version": expected_version,
            "snapshot_json": snapshot_json,
            "step": step,
            "outcome": outcome,
            "delay_ms": delay_ms,
            "dispatch": dispatch,
            "job_suffix": suffix,
            "history": history,
            "nres": len(resources),
            "event_data": event_data,
            "init_json": init_json,
            "init_step": init_step,
            "ended_ms": "" if ended_ms is None else ended_ms,
            "wait": wait,
            "budget": budget,
        }
        if children is not None:
            keys["kids"] = route.kids(work_id)
            keys["children"] = [{"meta": m, "item": i, "idem": d} for m, i, d in children]
            args["nkids"] = len(children)
            args["kids_wait"] = kids_wait
            args["children"] = children_args
        return await self._run("commit", route, keys, args, CommitReply, durable=durable)

    async def fail(
        self,
        route: Keys,
        *,
        work_id: str,
        token: str,
        epoch: int,
        op: str,
        resources: Sequence[str],
        error_json: str,
        backoff_ms: int,
        terminal: bool,
        data: str,
        retry_data: str,
        durable: bool = False,
    ) -> FailReply:
        """Record a failed attempt (see fail.lua)."""
        return await self._run(
            "fail",
            route,
            {
                "meta": route.meta(work_id),
                **claim_keys(route, resources),
            },
            {
                "work_id": work_id,
                "token": token,
                "epoch": epoch,
                "op": op,
                "error_json": error_json,
                "backoff_ms": backoff_ms,
                "terminal": "1" if terminal else "0",
                "nres": len(resources),
                "data": data,
                "retry_data": retry_data,
            },
            FailReply,
            durable=durable,
        )

    async def release(
        self,
        route: Keys,
        *,
        work_id: str,
        token: str,
        epoch: int,
        op: str,
        resources: Sequence[str],
        dispatch: str,
        reason: str,
    ) -> ReleaseReply:
        """Give a leased item back without using an attempt (see release.lua)."""
        suffix, job = job_of(route, work_id, dispatch)
        return await self._run(
            "release",
            route,
            {
                "meta": route.meta(work_id),
                "job": job,
                **claim_keys(route, resources),
            },
            {
                "work_id": work_id,
                "token": token,
                "epoch": epoch,
                "op": op,
                "dispatch": dispatch,
                "job_suffix": suffix,
                "nres": len(resources),
                "reason": reason,
            },
            ReleaseReply,
        )

    async def progress(
        self, route: Keys, *, work_id: str, token: str, epoch: int, report: str
    ) -> StateReply:
        """Store a running step's progress report."""
        return await self._run(
            "progress",
            route,
            {"meta": route.meta(work_id)},
            {"work_id": work_id, "token": token, "epoch": epoch, "report": report},
            StateReply,
        )

    async def renew(
        self, route: Keys, leases: Sequence[tuple[str, str, int, Sequence[str]]]
    ) -> RenewReply:
        """Renew ``leases`` (work id, token, epoch, resources each) in one call."""
        return await self._run(
            "renew",
            route,
            {
                "items": [
                    {"meta": route.meta(w), "res": [route.res(r) for r in res]}
                    for w, _t, _e, res in leases
                ]
            },
            {
                "count": len(leases),
                "items": [
                    {"work_id": w, "token": t, "epoch": e, "nres": len(res)}
                    for w, t, e, res in leases
                ],
            },
            RenewReply,
        )
