"""The upkeep scripts: promote, recover, reclaim, migrate, purge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.calls.base import CallsBase, claim_keys, job_of
from roost.redis.replies import (
    MigrateReply,
    PromoteReply,
    PurgeReply,
    ReclaimReply,
    RecoverReply,
)

if TYPE_CHECKING:
    from roost.redis.keys import Keys

__all__ = ["UpkeepCalls"]


class UpkeepCalls(CallsBase):
    """The upkeep scripts: promote, recover, reclaim, migrate, purge."""

    async def promote(self, route: Keys, *, items: Sequence[tuple[str, str]]) -> PromoteReply:
        """Queue the due ones of ``items`` (work id, new dispatch) on ``route``."""
        keys: list[dict[str, Any]] = []
        args: list[dict[str, Any]] = []
        for work_id, dispatch in items:
            suffix, job = job_of(route, work_id, dispatch)
            keys.append({"meta": route.meta(work_id), "job": job})
            args.append({"work_id": work_id, "dispatch": dispatch, "job_suffix": suffix})
        return await self._run(
            "promote",
            route,
            {"items": keys},
            {"count": len(items), "items": args},
            PromoteReply,
        )

    async def recover(
        self,
        route: Keys,
        *,
        holder: str,
        beat_seen: int | None,
        forget: bool,
        items: Sequence[tuple[str, str, str, str]],
    ) -> RecoverReply:
        """Recover leases (see recover.lua); ``items``: work id, token, resources, dispatch."""
        keys: list[dict[str, Any]] = []
        args: list[dict[str, Any]] = []
        for work_id, token, res, dispatch in items:
            resources = res.split(" ") if res else []
            suffix, job = job_of(route, work_id, dispatch)
            keys.append(
                {
                    "meta": route.meta(work_id),
                    "job": job,
                    **claim_keys(route, resources),
                }
            )
            args.append(
                {
                    "work_id": work_id,
                    "token": token,
                    "dispatch": dispatch,
                    "job_suffix": suffix,
                    "resources": res,
                    "nres": len(resources),
                }
            )
        return await self._run(
            "recover",
            route,
            {"beats": route.beats, "items": keys},
            {
                "count": len(items),
                "holder": holder,
                "beat_seen": "" if beat_seen is None else beat_seen,
                "forget": 1 if forget else 0,
                "items": args,
            },
            RecoverReply,
        )

    async def reclaim(
        self, route: Keys, *, grace_ms: int, jobs: Sequence[tuple[str, str, str, str]]
    ) -> ReclaimReply:
        """Re-dispatch stranded deliveries; ``jobs``: job id, work id, dispatch, new dispatch."""
        return await self._run(
            "reclaim",
            route,
            {"jobs": [self._moved_keys(route, j) for j in jobs]},
            {
                "count": len(jobs),
                "grace_ms": grace_ms,
                "jobs": [self._moved(route, j) for j in jobs],
            },
            ReclaimReply,
        )

    async def migrate(
        self, route: Keys, *, legacy: Keys, jobs: Sequence[tuple[str, str, str, str]]
    ) -> MigrateReply:
        """Move ``legacy``'s deliveries onto ``route``; ``jobs`` as for :meth:`reclaim`."""
        return await self._run(
            "migrate",
            route,
            {
                "old_queued": legacy.saq_queued,
                "old_incomplete": legacy.saq_incomplete,
                "jobs": [self._moved_keys(route, j) for j in jobs],
            },
            {"count": len(jobs), "jobs": [self._moved(route, j) for j in jobs]},
            MigrateReply,
        )

    @staticmethod
    def _moved_keys(route: Keys, job: tuple[str, str, str, str]) -> dict[str, str]:
        job_id, work_id, _dispatch, new_dispatch = job
        return {
            "meta": route.meta(work_id),
            "job": job_id,
            "new_job": job_of(route, work_id, new_dispatch)[1],
        }

    @staticmethod
    def _moved(route: Keys, job: tuple[str, str, str, str]) -> dict[str, str]:
        _job_id, work_id, dispatch, new_dispatch = job
        return {
            "work_id": work_id,
            "dispatch": dispatch,
            "new_dispatch": new_dispatch,
            "new_job_suffix": route.job_suffix(work_id, new_dispatch),
        }

    async def purge(
        self, route: Keys, *, retention_ms: int, items: Sequence[tuple[str, str]]
    ) -> PurgeReply:
        """Delete the finished ones of ``items`` (work id, idempotency key or '')."""
        return await self._run(
            "purge",
            route,
            {
                "items": [
                    {
                        "meta": route.meta(w),
                        "item": route.item(w),
                        "snap": route.snap(w),
                        "hist": route.hist(w),
                        "idem": route.idem(idem),
                        "sig": route.sig(w),
                        "kids": route.kids(w),
                    }
                    for w, idem in items
                ]
            },
            {
                "count": len(items),
                "retention_ms": retention_ms,
                "work_ids": [w for w, _ in items],
            },
            PurgeReply,
        )
