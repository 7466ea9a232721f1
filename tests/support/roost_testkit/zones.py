"""A made-up timezone whose clocks jump forward an hour a few seconds from now.

Real zones change their clocks twice a year; a test cannot wait for that. This writes a
TZif file (the format of the system's zone database) with no transitions and a POSIX rule
in its footer: standard time is UTC plus ``s`` seconds (chosen so that a local minute starts
exactly at the jump), and daylight saving time starts today at that minute. ``zoneinfo``
reads it like any zone once its directory is on the search path; the cron library then
applies its own daylight-saving handling to it.
"""

from __future__ import annotations

import contextlib
import struct
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Jump", "forward_jump"]


def _tzif(footer: str, utoff: int, abbr: str) -> bytes:
    chars = abbr.encode() + b"\0"

    def block() -> bytes:  # one local time type, no transitions (v1 and v2 blocks alike)
        header = b"TZif2" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))
        return header + struct.pack(">lbb", utoff, 0, 0) + chars

    return block() + block() + b"\n" + footer.encode() + b"\n"


@dataclass(frozen=True)
class Jump:
    """The zone ``name``: at ``at`` (epoch s, UTC) local time jumps from ``local`` to +1 h."""

    name: str
    at: int
    local: datetime
    """The local (standard) time of the jump, naive."""


@contextlib.contextmanager
def forward_jump(directory: Path, at: int, name: str = "Roost/Jump") -> Iterator[Jump]:
    """Make zone ``name`` jump forward at ``at`` (whole epoch seconds); restore the path after."""
    offset = (-at) % 60
    local = datetime.fromtimestamp(at + offset, UTC).replace(tzinfo=None)
    # Mm.w.d: the w-th weekday d (0 Sunday) of month m; week 5 means the last, as it is.
    start = f"M{local.month}.{(local.day - 1) // 7 + 1}.{local.isoweekday() % 7}"
    end = "M1.1.0" if local.month != 1 else "M7.1.0"
    footer = f"XST-0:00:{offset:02d}XDT,{start}/{local:%H:%M}:00,{end}/03:00:00"
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_tzif(footer, offset, "XST"))
    zoneinfo.reset_tzpath(to=[str(directory), *zoneinfo.TZPATH])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        yield Jump(name, at, local)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
