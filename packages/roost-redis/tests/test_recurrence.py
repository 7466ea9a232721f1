"""Tick arithmetic: intervals on the epoch's multiples, cron by cronsim in real zones."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from roost.redis.recurrence import Recurrence
from roost.runtime import BadInput


def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def ticks(r: Recurrence, start: datetime, n: int) -> list[datetime]:
    zone = start.tzinfo
    out: list[datetime] = []
    t = ms(start)
    for _ in range(n):
        nxt = r.next_after(t)
        assert nxt is not None and nxt > t
        out.append(datetime.fromtimestamp(nxt / 1000, zone))
        t = nxt
    return out


def test_intervals_fall_on_multiples_of_the_epoch():
    r = Recurrence.parse(every="1h", timezone=None)
    assert r.every_ms == 3_600_000 and r.describe() == "every 1h"
    assert r.next_after(3_600_000 * 5 + 1) == 3_600_000 * 6
    assert r.next_after(3_600_000 * 6) == 3_600_000 * 7  # strictly after
    assert Recurrence.parse(every=1.5, timezone=None).next_after(0) == 1500


BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_daily_job_in_the_skipped_hour_runs_right_after_the_clocks_go_forward():
    # Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    r = Recurrence.parse(cron="30 2 * * *", timezone="Europe/Berlin")
    got = ticks(r, datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), 3)
    assert [(d.day, d.hour, d.minute) for d in got] == [(29, 3, 0), (30, 2, 30), (31, 2, 30)]


def test_a_daily_job_in_the_repeated_hour_runs_once_when_the_clocks_go_back():
    # America/New_York, 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
    r = Recurrence.parse(cron="30 1 * * *", timezone="America/New_York")
    got = ticks(r, datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK), 3)
    assert [(d.day, d.hour, d.minute) for d in got] == [(1, 1, 30), (2, 1, 30), (3, 1, 30)]
    assert got[0].utcoffset() is not None and got[0].utcoffset().total_seconds() == -4 * 3600
    gaps = [(ms(b) - ms(a)) / 3_600_000 for a, b in zip(got, got[1:], strict=False)]
    assert gaps == [25.0, 24.0]  # the day with the extra hour is 25 h long, and runs once


def test_a_frequent_job_keeps_real_time_across_the_change():
    # Every 30 minutes of real time, both passes of the repeated hour included (as Debian).
    r = Recurrence.parse(cron="*/30 * * * *", timezone="Europe/Berlin")
    got = ticks(r, datetime(2026, 10, 25, 1, 50, tzinfo=BERLIN), 5)
    steps = {ms(b) - ms(a) for a, b in zip(got, got[1:], strict=False)}
    assert steps == {1_800_000}
    assert [d.utcoffset().total_seconds() / 3600 for d in got if d.utcoffset()] == [
        2.0,
        2.0,
        1.0,
        1.0,
        1.0,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 0 31 2 *"}, "Bad day-of-month"),
        ({"cron": "* * *"}, "Wrong number of fields"),
        ({"cron": "* * * * *\n"}, None),
        ({"cron": "x" * 201}, "1-200"),
        ({"every": "366d"}, "between 1s and 365d"),
        ({"every": 1.0001}, "whole number of milliseconds"),
    ],
)
def test_bad_recurrences(kwargs: dict[str, object], message: str | None):
    if message is None:  # surrounding whitespace is tidied, not refused
        assert Recurrence.parse(timezone=None, **kwargs).cron == "* * * * *"  # type: ignore[arg-type]
        return
    with pytest.raises(BadInput, match=message):
        Recurrence.parse(timezone=None, **kwargs)  # type: ignore[arg-type]
