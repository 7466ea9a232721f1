"""Registers the watchlist engines with Roost (entry point ``roost: watchlist``)."""

from __future__ import annotations

from collections.abc import Callable

from roost.runtime import EngineFactory, hookimpl
from roost_watchlist.engine import build_engine
from roost_watchlist.fanout import build_fanout

__all__ = ["roost_register_engines"]


@hookimpl
def roost_register_engines(register: Callable[[str, EngineFactory], None]) -> None:
    """Register ``watchlist`` and ``watchlist-fanout`` (N URLs in parallel, one child each)."""
    register("watchlist", build_engine)
    register("watchlist-fanout", build_fanout)
