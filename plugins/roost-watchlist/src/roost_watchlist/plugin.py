"""Registers the watchlist engine with Roost (entry point ``roost: watchlist``)."""

from __future__ import annotations

from collections.abc import Callable

from roost.runtime import EngineFactory, hookimpl
from roost_watchlist.engine import build_engine

__all__ = ["roost_register_engines"]


@hookimpl
def roost_register_engines(register: Callable[[str, EngineFactory], None]) -> None:
    """Register ``watchlist``."""
    register("watchlist", build_engine)
