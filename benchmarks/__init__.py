"""Roost's benchmark suite: ``uv run python -m benchmarks --help``.

Every figure is measured next to a baseline taken in the same run (SAQ on the same kind of
private server, Roost itself for the peers and the CLI worker, or the smallest size of a
scale series), so a noisy shared machine moves both together. See ``benchmarks/cli.py`` for
the flags and docs/performance.md for what each row means.
"""

__all__: list[str] = []
