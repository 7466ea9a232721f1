"""The watchlist engine: fetch a URL once per step and write an evidence report.

The names below are imported on first use (module ``__getattr__``): loading the plugin
(:mod:`roost_watchlist.plugin`) does not import the engine and its HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.runtime.lazy import lazy_exports

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

_MODULE_OF: dict[str, str] = {
    "FanOutWatchlist": "roost_watchlist.fanout",
    "WatchConfig": "roost_watchlist.config",
    "WatchlistEngine": "roost_watchlist.engine",
    "build_engine": "roost_watchlist.engine",
    "build_fanout": "roost_watchlist.fanout",
    "verdict_of": "roost_watchlist.engine",
}
"""Each name of :data:`__all__` -> the module that defines it."""


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
