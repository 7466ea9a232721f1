"""The watchlist payload: what to watch, how often, and for how many checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from roost.runtime import PermanentError
from roost.runtime.limits import DELAY

__all__ = ["MAX_CHECKS", "WatchConfig"]

MAX_CHECKS = 1000
"""Upper bound of ``checks_required``: every observation lives in the snapshot."""


def invalid(message: str) -> PermanentError:
    """The error for an invalid payload: retrying cannot fix it, so the item fails at once."""
    return PermanentError(f"watchlist payload: {message}")


_FIELDS = ("url", "claim", "checks_required", "delay_seconds", "timeout_seconds")


def _number(payload: Mapping[str, Any], name: str, default: float) -> float:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise invalid(f"{name} must be a finite number >= 0, not {value!r}")
    return number


@dataclass(frozen=True)
class WatchConfig:
    """A validated watchlist payload.

    Attributes:
        url: the ``http://`` or ``https://`` URL fetched once per check.
        claim: the sentence the evidence report is about.
        checks_required: how many checks to make (1-1000, default 3).
        delay_seconds: pause between two checks (default 5).
        timeout_seconds: timeout of one fetch (default: the engine's, 10 s).
    """

    url: str
    claim: str
    checks_required: int = 3
    delay_seconds: float = 5.0
    timeout_seconds: float = 10.0

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, timeout: float = 10.0) -> WatchConfig:
        """Validate a work item's payload.

        Args:
            payload: ``{"url": ..., "claim": ..., "checks_required": 3, "delay_seconds": 5}``;
                ``claim`` defaults to "<url> is reachable", ``timeout_seconds`` to ``timeout``.
            timeout: the default fetch timeout.

        Raises:
            PermanentError: a field is missing, unknown or of the wrong type; the message
                names it. Retrying cannot fix a payload, so the item fails at once.
        """
        unknown = sorted(set(payload) - set(_FIELDS))
        if unknown:
            raise invalid(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
        url = payload.get("url")
        if not isinstance(url, str) or not url:
            raise invalid("url is required (an http:// or https:// URL)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid(f"url {url!r} must be an http:// or https:// URL")
        claim = payload.get("claim", f"{url} is reachable")
        if not isinstance(claim, str) or not claim.strip():
            raise invalid("claim must be a non-empty string")
        checks = payload.get("checks_required", 3)
        if isinstance(checks, bool) or not isinstance(checks, int):
            raise invalid(f"checks_required must be an integer, not {checks!r}")
        if not 1 <= checks <= MAX_CHECKS:
            raise invalid(f"checks_required must be 1-{MAX_CHECKS}, not {checks}")
        delay = _number(payload, "delay_seconds", 5.0)
        if not DELAY.contains(delay):
            raise invalid(f"delay_seconds must be {DELAY.describe()}, not {delay:g}")
        fetch_timeout = _number(payload, "timeout_seconds", timeout)
        if fetch_timeout <= 0:
            raise invalid("timeout_seconds must be greater than 0")
        return cls(url, claim, checks, delay, fetch_timeout)

    def to_data(self) -> dict[str, Any]:
        """The config as snapshot data (JSON types only)."""
        return asdict(self)
