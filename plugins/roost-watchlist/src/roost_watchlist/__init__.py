"""The watchlist engine: fetch a URL once per step and write an evidence report."""

__all__: list[str] = []
