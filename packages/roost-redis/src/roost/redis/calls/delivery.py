"""The delivery scripts: enqueue, dequeue, undeliver, and holding a key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roost.redis.calls.base import CallsBase, job_of
from roost.redis.contract import decode
from roost.redis.contracts import CONTRACTS
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
        keys, args = self._enqueue_blocks(route, items)
        return await self._run(
            "enqueue",
            route,
            {"items": keys},
            {"queue": queue, "items": args},
            EnqueueReply,
            durable=True,
        )

    async def enqueue_many(
        self, calls: Sequence[tuple[Keys, Sequence[dict[str, Any]]]], *, queue: str
    ) -> list[EnqueueReply]:
        """Several :meth:`enqueue` calls (route, items), those of one primary pipelined."""
        contract = CONTRACTS["enqueue"]
        packed: list[tuple[list[str], list[Any], Keys]] = []
        for route, items in calls:
            keys, args = self._enqueue_blocks(route, items)
            ns_keys, ns_args = self._namespace_blocks("enqueue", route)
            packed.append(
                (
                    contract.pack_keys({"items": keys}, [*ns_keys]),
                    contract.pack_args({"queue": queue, "items": args}, [*ns_args]),
                    route,
                )
            )
        raws = await self._runner.fcall_many("enqueue", packed, durable=True)
        return [decode(contract, raw, EnqueueReply) for raw in raws]

    @staticmethod
    def _enqueue_blocks(
        route: Keys, items: Sequence[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
        return keys, args

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
