"""Registers the watchlist engines with Roost (entry point ``roost: watchlist``).

The engines are registered as lazily imported factories, the way Roost serves the
``roost.engines`` entry points: every command that loads plugins (``roost status``,
``roost list``...) would otherwise import the HTTP client (httpx, and with it rich and
pygments) that only a worker uses. A worker imports them before it starts taking work
(:meth:`roost.runtime.Registry.probe`), ``roost engines`` to show whether they load.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint

from roost.runtime import EngineFactory, hookimpl
from roost.runtime.builtin_plugins import ENGINE_ENTRY_POINT_GROUP, EntryPointEngine

__all__ = ["ENGINES", "roost_register_engines"]

ENGINES = {
    "watchlist": "roost_watchlist.engine:build_engine",
    "watchlist-fanout": "roost_watchlist.fanout:build_fanout",
}
"""Engine id -> its factory, as ``module:name`` (N URLs in parallel, one child each)."""


def _lazy(engine_id: str, target: str) -> EngineFactory:
    """``target``'s factory, imported when first probed or called."""
    factory = EntryPointEngine(EntryPoint(engine_id, target, ENGINE_ENTRY_POINT_GROUP))
    factory.roost_source = target.replace(":", ".")  # `roost engines` shows the factory
    return factory


@hookimpl
def roost_register_engines(register: Callable[[str, EngineFactory], None]) -> None:
    """Register ``watchlist`` and ``watchlist-fanout`` (N URLs in parallel, one child each)."""
    for engine_id, target in ENGINES.items():
        register(engine_id, _lazy(engine_id, target))
