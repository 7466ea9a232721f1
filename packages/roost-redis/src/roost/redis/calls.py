"""One typed Python method per Roost script.

:data:`roost.redis.contracts.CONTRACTS` states, for each ``lua/NAME.lua``, the KEYS, ARGV
and replies it takes and gives, in the notation of the script's header (see
:mod:`roost.redis.contract`); a test holds each one equal to the header. A method names
every key and argument; :meth:`ScriptCalls._run` lays them out in the contract's order
(refusing a name the contract lacks or a slot left without a value), puts the namespace
slots (``@``) first from the route, and reads the reply as the script's reply class
(:mod:`roost.redis.replies`).

To add a script: write ``lua/NAME.lua`` with its header, add its contract to
:mod:`roost.redis.contracts` and a method that calls :meth:`ScriptCalls._run`, and a reply
class if none fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from roost.redis.contract import Contract, ContractError, decode
from roost.redis.contracts import CONTRACTS
from roost.redis.replies import (
    AcquireReply,
    BudgetReply,
    CommitReply,
    CountReply,
    DequeueReply,
    EnqueueReply,
    FailReply,
    HoldReply,
    MigrateReply,
    PromoteReply,
    PurgeReply,
    ReclaimReply,
    RecoverReply,
    ReleaseReply,
    RenewReply,
    ReplayReply,
    SignalReply,
    StateReply,
)

if TYPE_CHECKING:
    from roost.redis.keys import Keys
    from roost.runtime.settings import RoostSettings

__all__ = ["CONTRACTS", "ScriptCalls", "ScriptRunner"]

R = TypeVar("R")


class ScriptRunner(Protocol):
    """What the calls need of a store: its settings, worker id and a way to run a script."""

    settings: RoostSettings
    worker_id: str

    async def fcall(
        self, name: str, keys: list[str], args: list[Any], *, route: Keys, durable: bool
    ) -> Any:
        """Run script ``name`` with its full KEYS and ARGV on ``route``'s node.

        ``durable``: then wait for what acknowledges a write (fsync, replicas) if configured.
        """
        ...

    async def fcall_many(
        self, name: str, calls: list[tuple[list[str], list[Any], Keys]], *, durable: bool
    ) -> list[Any]:
        """Run script ``name`` once per (KEYS, ARGV, route); replies in order.

        The calls to one primary go in one pipeline.
        """
        ...


def _job(route: Keys, work_id: str, dispatch: str) -> tuple[str, str]:
    """The job key suffix and the job key of a new delivery on ``route``."""
    suffix = route.job_suffix(work_id, dispatch)
    return suffix, route.job(suffix)


_NAMESPACE_ARGS: dict[str, Callable[[ScriptRunner, Keys], Any]] = {
    "saq_name": lambda runner, route: route.saq_name,
    "events_maxlen": lambda runner, route: runner.settings.events_maxlen,
    "worker": lambda runner, route: runner.worker_id,
    "lease_ttl": lambda runner, route: int(runner.settings.lease_ttl * 1000),
    "engine": lambda runner, route: route.engine or "",
}
"""How each namespace argument slot (``contract.NAMESPACE_ARGS``) gets its value."""
_GETTERS: dict[str, tuple[Callable[[ScriptRunner, Keys], Any], ...]] = {}


def _namespace_getters(contract: Contract) -> tuple[Callable[[ScriptRunner, Keys], Any], ...]:
    """The getters of a script's namespace arguments, in its order (looked up once)."""
    found = _GETTERS.get(contract.name)
    if found is None:
        unknown = [a for a in contract.namespace_args if a not in _NAMESPACE_ARGS]
        if unknown:
            raise ContractError(f"unknown namespace argument @{unknown[0]}")
        found = _GETTERS[contract.name] = tuple(_NAMESPACE_ARGS[a] for a in contract.namespace_args)
    return found


_MAX_BLOCKS = 4096
"""Namespace blocks kept per :class:`ScriptCalls` (scripts x routes; a few dozen in use)."""


class ScriptCalls:
    """Roost's scripts as typed methods, run through a store (see :class:`ScriptRunner`).

    Every method takes the route (the queue and engine whose lists and indexes the script
    works on) first, then named values.
    """

    def __init__(self, runner: ScriptRunner) -> None:
        self._runner = runner
        self._blocks: dict[tuple[str, str], tuple[str, list[str], list[Any]]] = {}
        """Per script and route (by its SAQ name, which spells out prefix, namespace, queue
        and engine): the worker id they were made for, and the namespace keys and arguments
        that lead its KEYS and ARGV (the same on every call)."""

    def _namespace_blocks(self, name: str, route: Keys) -> tuple[list[str], list[Any]]:
        """The namespace keys and arguments of script ``name`` on ``route``."""
        runner = self._runner
        at = (name, route.saq_name)
        found = self._blocks.get(at)
        if found is None or found[0] != runner.worker_id:
            if len(self._blocks) >= _MAX_BLOCKS:  # routes of many queues: start over
                self._blocks.clear()
            contract = CONTRACTS[name]
            found = (
                runner.worker_id,
                route.slot_keys(contract.namespace_keys),
                [get(runner, route) for get in _namespace_getters(contract)],
            )
            self._blocks[at] = found
        return found[1], found[2]

    async def _run(
        self,
        name: str,
        route: Keys,
        keys: dict[str, Any],
        args: dict[str, Any],
        reply: type[R],
        *,
        durable: bool = False,
    ) -> R:
        contract = CONTRACTS[name]
        ns_keys, ns_args = self._namespace_blocks(name, route)
        full_keys: list[str] = contract.pack_keys(keys, [*ns_keys])
        full_args: list[Any] = contract.pack_args(args, [*ns_args])
        raw = await self._runner.fcall(name, full_keys, full_args, route=route, durable=durable)
        return decode(contract, raw, reply)

    # -- the lease holder's calls ---------------------------------------------------------

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
                "res": [route.res(r) for r in resources],
                "resw": [route.resw(r) for r in resources],
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
        suffix, job = _job(route, work_id, dispatch)
        meta, _item, snap, hist = route.item_keys(work_id)
        keys: dict[str, Any] = {
            "meta": meta,
            "snap": snap,
            "hist": hist,
            "job": job,
            "res": [route.res(r) for r in resources],
            "resw": [route.resw(r) for r in resources],
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
                "res": [route.res(r) for r in resources],
                "resw": [route.resw(r) for r in resources],
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
        suffix, job = _job(route, work_id, dispatch)
        return await self._run(
            "release",
            route,
            {
                "meta": route.meta(work_id),
                "job": job,
                "res": [route.res(r) for r in resources],
                "resw": [route.resw(r) for r in resources],
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

    # -- delivery -------------------------------------------------------------------------

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
            suffix, job = _job(route, work_id, item["dispatch"])
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

    # -- maintenance ----------------------------------------------------------------------

    async def promote(self, route: Keys, *, items: Sequence[tuple[str, str]]) -> PromoteReply:
        """Queue the due ones of ``items`` (work id, new dispatch) on ``route``."""
        keys: list[dict[str, Any]] = []
        args: list[dict[str, Any]] = []
        for work_id, dispatch in items:
            suffix, job = _job(route, work_id, dispatch)
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
            suffix, job = _job(route, work_id, dispatch)
            keys.append(
                {
                    "meta": route.meta(work_id),
                    "job": job,
                    "res": [route.res(r) for r in resources],
                    "resw": [route.resw(r) for r in resources],
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
            "new_job": _job(route, work_id, new_dispatch)[1],
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

    # -- operators ------------------------------------------------------------------------

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
        suffix, job = _job(route, work_id, dispatch)
        return await self._run(
            "resume",
            route,
            {"meta": route.meta(work_id), "sig": route.sig(work_id), "job": job},
            {"work_id": work_id, "dispatch": dispatch, "job_suffix": suffix},
            StateReply,
        )

    async def retry(self, route: Keys, *, work_id: str, dispatch: str) -> StateReply:
        """Queue a failed or dead item again with fresh attempts."""
        suffix, job = _job(route, work_id, dispatch)
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
        suffix, job = _job(route, work_id, dispatch)
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
        suffix, job = _job(route, work_id, dispatch)
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
