"""Registers the watchlist engine with Roost (placeholder until the engine lands)."""

from __future__ import annotations

__all__: list[str] = []
