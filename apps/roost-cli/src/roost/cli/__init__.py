"""The ``roost`` command."""

__all__: list[str] = []
