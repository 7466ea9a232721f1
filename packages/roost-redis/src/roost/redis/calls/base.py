"""The machinery every typed script method runs on: the store protocol and the call itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from roost.redis.contract import Contract, ContractError, decode
from roost.redis.contracts import CONTRACTS

if TYPE_CHECKING:
    from roost.redis.keys import Keys
    from roost.runtime.settings import RoostSettings

__all__ = ["CallsBase", "ScriptRunner", "claim_keys", "job_of"]

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


def job_of(route: Keys, work_id: str, dispatch: str) -> tuple[str, str]:
    """The job key suffix and the job key of a new delivery on ``route``."""
    suffix = route.job_suffix(work_id, dispatch)
    return suffix, route.job(suffix)


def claim_keys(route: Keys, resources: Sequence[str]) -> dict[str, list[str]]:
    """The ``res`` and ``resw`` key slots of a script that claims or frees ``resources``."""
    return {"res": [route.res(r) for r in resources], "resw": [route.resw(r) for r in resources]}


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


class CallsBase:
    """What every group of script methods shares.

    The store they run through, and :meth:`_run`, which lays out a call's KEYS and ARGV and
    reads its reply.
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
