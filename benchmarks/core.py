"""Rows, targets, the run context and small statistics helpers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_PAD = 200
"""Padding that makes the state a step carries about 220 bytes of JSON."""


def bench_state(pad: int = STATE_PAD) -> dict[str, Any]:
    """The state an item starts with: a step counter and ``pad`` characters."""
    return {"n": 0, "pad": "x" * pad} if pad else {"n": 0}


@dataclass(frozen=True)
class Target:
    """A target from issue 7: ``value`` or ``ratio`` compared with ``limit``."""

    on: str  # "value" or "ratio"
    op: str  # ">=" or "<="
    limit: float
    also_value_max: float | None = None  # scale rows: value <= this as well
    slack: float = 0.0  # a "<=" ratio target also holds within this absolute margin

    def describe(self, unit: str) -> str:
        if self.on == "ratio":
            text = f"{self.op} {self.limit:g}x"
            if self.slack:
                text += f" + {self.slack:g} {unit}"
        else:
            text = f"{self.op} {self.limit:g} {unit}"
        if self.also_value_max is not None:
            text = f"<= {self.also_value_max:g} {unit}, {text}"
        return text

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = value if self.on == "value" else ratio
        if subject is None or math.isnan(subject):
            return None
        ok = subject >= self.limit if self.op == ">=" else subject <= self.limit
        if not ok and self.slack and self.on == "ratio" and self.op == "<=" and ratio:
            ok = value <= self.limit * (value / ratio) + self.slack
        if self.also_value_max is not None:
            ok = ok and value <= self.also_value_max
        return ok


@dataclass
class Row:
    """One measurement: a value, its same-run baseline and the ratio between them."""

    group: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list[float])
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value, self.ratio) if self.target else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["target"] = self.target.describe(self.unit) if self.target else None
        out["met"] = self.met
        return out


@dataclass
class Context:
    """What every benchmark gets: sizes, where to put servers and logs, the rows so far."""

    quick: bool
    tmp: Path
    repeat: int
    sizes: dict[str, Any]
    rows: list[Row] = field(default_factory=list[Row])
    profile: dict[str, Any] = field(default_factory=dict[str, Any])

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    @property
    def log_dir(self) -> Path:
        path = self.tmp / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan
