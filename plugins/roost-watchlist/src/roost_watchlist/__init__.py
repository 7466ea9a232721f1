"""The watchlist engine: fetch a URL once per step and write an evidence report."""

from roost_watchlist.config import WatchConfig
from roost_watchlist.engine import WatchlistEngine, build_engine, verdict_of

__all__ = ["WatchConfig", "WatchlistEngine", "build_engine", "verdict_of"]
