"""The Redis backend declares the core's store contracts, and implements every member.

``RedisSwarm`` is the operator API (:class:`roost.runtime.stores.WorkStore`) and
``RedisLeases`` the lease store the step runner uses
(:class:`roost.runtime.stores.LeaseStore`): each subclasses its protocol, so pyright checks
the signatures, and here every member is its own (none falls back to the protocol's empty
body) and takes the protocol's parameters, of the same kind and default.
"""

from __future__ import annotations

import inspect

import pytest

from roost.redis.holder import RedisLeases
from roost.redis.swarm import RedisSwarm
from roost.redis.worker import Worker
from roost.runtime.stores import LeaseStore, WorkStore
from roost.runtime.testing.chain_engine import CHAIN, ChainEngine

PAIRS = [(RedisSwarm, WorkStore), (RedisLeases, LeaseStore)]


def members(protocol: type) -> list[str]:
    return sorted(
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    )


@pytest.mark.parametrize(("cls", "protocol"), PAIRS, ids=["WorkStore", "LeaseStore"])
def test_the_backend_declares_and_implements_the_protocol(cls: type, protocol: type) -> None:
    assert protocol in cls.__mro__, f"{cls.__name__} does not declare {protocol.__name__}"
    names = members(protocol)
    assert names, f"{protocol.__name__} lists no members"
    for name in names:
        mine, theirs = inspect.getattr_static(cls, name), vars(protocol)[name]
        assert mine is not theirs, f"{cls.__name__}.{name} is the protocol's empty body"
        if isinstance(theirs, property):
            assert isinstance(mine, property), name
            continue
        have = inspect.signature(mine).parameters
        for param in inspect.signature(theirs).parameters.values():
            assert param.name in have, f"{cls.__name__}.{name} lacks {param.name}"
            assert have[param.name].kind == param.kind, f"{name}({param.name})"
            assert have[param.name].default == param.default, f"{name}({param.name})"


def test_a_swarm_and_a_workers_leases_are_instances_of_the_protocols() -> None:
    swarm = RedisSwarm(url="redis://127.0.0.1:1/0")
    assert isinstance(swarm, WorkStore)
    worker = Worker(
        swarm,
        {CHAIN: ChainEngine()},
        slots={CHAIN: 1},
        sinks=[],
        observers=[],
        schedules=swarm.schedules,
    )
    assert isinstance(worker.leases, LeaseStore)
    assert worker.runner.store is worker.leases
