"""Roost's scripts as typed methods: every group of them on one object."""

from __future__ import annotations

from roost.redis.calls.delivery import DeliveryCalls
from roost.redis.calls.lease import LeaseCalls
from roost.redis.calls.operators import OperatorCalls
from roost.redis.calls.upkeep import UpkeepCalls

__all__ = ["ScriptCalls"]


class ScriptCalls(LeaseCalls, DeliveryCalls, UpkeepCalls, OperatorCalls):
    """Roost's scripts as typed methods, run through a store (see :class:`ScriptRunner`).

    Every method takes the route (the queue and engine whose lists and indexes the script
    works on) first, then named values.
    """
