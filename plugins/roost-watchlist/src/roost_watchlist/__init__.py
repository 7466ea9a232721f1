"""The watchlist engine: fetch a URL once per step and write an evidence report.

The names below are imported on first use (module ``__getattr__``): loading the plugin
(:mod:`roost_watchlist.plugin`) does not import the engine and its HTTP client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost_watchlist.config import WatchConfig
    from roost_watchlist.engine import WatchlistEngine, build_engine, verdict_of
    from roost_watchlist.fanout import FanOutWatchlist, build_fanout

__all__ = [
    "FanOutWatchlist",
    "WatchConfig",
    "WatchlistEngine",
    "build_engine",
    "build_fanout",
    "verdict_of",
]

_MODULE_OF = {
    "FanOutWatchlist": "roost_watchlist.fanout",
    "WatchConfig": "roost_watchlist.config",
    "WatchlistEngine": "roost_watchlist.engine",
    "build_engine": "roost_watchlist.engine",
    "build_fanout": "roost_watchlist.fanout",
    "verdict_of": "roost_watchlist.engine",
}
"""Each name of :data:`__all__` -> the module that defines it."""


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use, and keep the name here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The names defined here and the ones :func:`__getattr__` imports."""
    return sorted({*globals(), *__all__})
