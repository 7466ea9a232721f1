"""Roost's Redis runtime."""

__all__: list[str] = []
