"""Roost's local web console."""

__all__: list[str] = []
