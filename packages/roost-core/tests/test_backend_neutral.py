"""roost.runtime speaks of no backend: the word "redis" appears only in an allow-list.

A backend plugin brings its own words. What core keeps is the user contract of the seed: the
environment variables ``ROOST_REDIS_URL`` and ``ROOST_REDIS_PREFIX`` (and so the settings
fields ``redis_url`` and ``redis_prefix``), and the old name of ``BackendUnreachable``.
"""

from __future__ import annotations

import re
from pathlib import Path

import roost.runtime

SOURCE = Path(roost.runtime.__file__).parent

ALLOWED = (
    "ROOST_REDIS_URL",
    "ROOST_REDIS_PREFIX",
    "redis_url",
    "redis_prefix",
    "RedisUnreachable",  # kept as an alias of BackendUnreachable (CHANGELOG)
)
"""Every use of the word that core may make."""

WORD = re.compile(r"redis(?!patch)", re.IGNORECASE)  # "redispatched" is not the word


def offenders(text: str, where: str) -> list[str]:
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line
        for allowed in ALLOWED:
            stripped = stripped.replace(allowed, "")
        if WORD.search(stripped):
            found.append(f"{where}:{number}: {line.strip()}")
    return found


def test_roost_runtime_names_no_backend() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 20  # the scan sees the package
    found = [
        o for path in files for o in offenders(path.read_text(), str(path.relative_to(SOURCE)))
    ]
    assert found == []


def test_the_scan_finds_the_word_outside_the_allow_list() -> None:
    assert offenders("ok = redis_url\nREDISPATCHED = 1\n", "x.py") == []
    assert offenders('"""Talks to Redis."""\n', "x.py") == ['x.py:1: """Talks to Redis."""']
    assert offenders("from roost.redis import X", "y.py") == ["y.py:1: from roost.redis import X"]
