"""The results table (Markdown, so it can go into the README as it is)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchmarks.core import Row


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| group | measurement | value | unit | baseline | ratio | target | met |",
        "|---|---|---:|---|---|---:|---|---|",
    ]
    for row in rows:
        baseline = "-"
        if row.baseline is not None:
            baseline = f"{fmt(row.baseline)} ({row.baseline_name})"
        ratio = row.ratio
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(
            f"| {row.group} | {row.name} | {fmt(row.value)} | {row.unit} | {baseline} "
            f"| {fmt(ratio) + 'x' if ratio is not None else '-'} "
            f"| {row.target.describe(row.unit) if row.target else '-'} | {met} |"
        )
    return "\n".join(lines)
