"""The watchlist engine: fetch a URL once per step and write an evidence report."""

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
