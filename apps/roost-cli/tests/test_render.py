"""Human output helpers: times that never crash, whatever was stored."""

from __future__ import annotations

import pytest

from roost.cli import render
from roost.runtime import WorkState

NOW = 1_800_000_000.0


@pytest.mark.parametrize("ts", [1e300, -1e300, 1e20])
def test_times_out_of_range_do_not_crash(ts: float) -> None:
    text = render.when(ts, NOW)
    assert len(text) < 60 and "\n" not in text


def test_ago_uses_years_past_a_year() -> None:
    assert render.ago(NOW + 2 * 365 * 86400 + 5, NOW) == "in 2y"
    assert render.ago(NOW - 400 * 86400, NOW) == "1y ago"
    assert render.ago(NOW - 3 * 86400, NOW) == "3d ago"


def test_every_state_has_a_colour() -> None:
    assert set(render.STATE_STYLES) == set(WorkState)
    for state in WorkState:
        assert render.STYLES[state.value] == render.STATE_STYLES[state]
