"""The delivery scripts: enqueue, dequeue, undeliver, and holding a key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.calls.base import CallsBase, job_of
from roost.redis.replies import CountReply, DequeueReply, EnqueueReply, HoldReply

if TYPE_CHECKING:
    from roost.redis.keys import Keys

__all__ = ["DeliveryCalls"]


class DeliveryCalls(CallsBase):
    """The delivery scripts: enqueue, dequeue, undeliver, and holding a key."""

    async def enqueue(
        self, route: Keys, *, queue: str, items: Sequence[dict[str, Any]]
    ) -> EnqueueReply:
        """Create work items on ``route`` (acknowledged like a commit).

        ``items``: per item the ARGV slots of its group (work_id, item_json, engine,
        resources, priority, delay_ms, idem, dispatch, seed, imax); the job key follows.
        """
        keys: list[dict[str, Any]] = []
        args: list[dict[str, Any]] = []
        for item in items:
            work_id, idem = item["work_id"], item["idem"]
            suffix, job = job_of(route, work_id, item["dispatch"])
            meta, item_key, snap, _hist = route.item_keys(work_id)
            keys.append(
                {
                    "meta": meta,
                    "item": item_key,
                    "snap": snap,
                    "idem": route.idem(idem),
                    "job": job,
                }
            )
            args.append({**item, "job_suffix": suffix})
        return await self._run(
            "enqueue",
            route,
            {"items": keys},
            {"queue": queue, "items": args},
            EnqueueReply,
            durable=True,
        )

    async def dequeue(self, route: Keys, *, n: int) -> DequeueReply:
        """Take up to ``n`` deliveries off ``route``'s list into its active list."""
        return await self._run("dequeue", route, {}, {"n": n}, DequeueReply)

    async def undeliver(self, route: Keys, *, jobs: Sequence[str]) -> CountReply:
        """Put deliveries back at the head of ``route``'s list."""
        return await self._run("undeliver", route, {}, {"jobs": list(jobs)}, CountReply)

    async def hold(self, route: Keys, *, key: str, holder: str, ttl_ms: int) -> HoldReply:
        """Renew ``key`` for ``ttl_ms`` (0: delete it) if it still names ``holder``."""
        return await self._run(
            "hold", route, {"key": key}, {"holder": holder, "ttl_ms": ttl_ms}, HoldReply
        )
