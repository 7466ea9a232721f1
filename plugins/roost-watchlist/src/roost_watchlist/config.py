"""The watchlist payload: what to watch, how often, and for how many checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from roost.runtime import BadInput

__all__ = ["MAX_CHECKS", "WatchConfig"]

MAX_CHECKS = 1000
"""Upper bound of ``checks_required``: every observation lives in the snapshot."""

_FIELDS = ("url", "claim", "checks_required", "delay_seconds", "timeout_seconds")


def _number(payload: Mapping[str, Any], name: str, default: float) -> float:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"watchlist payload: {name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise BadInput(f"watchlist payload: {name} must be a finite number >= 0, not {value!r}")
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
            BadInput: a field is missing, unknown or of the wrong type; the message names it.
        """
        unknown = sorted(set(payload) - set(_FIELDS))
        if unknown:
            raise BadInput(
                f"watchlist payload: unknown field(s) {', '.join(unknown)} "
                f"(known: {', '.join(_FIELDS)})"
            )
        url = payload.get("url")
        if not isinstance(url, str) or not url:
            raise BadInput("watchlist payload: url is required (an http:// or https:// URL)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"watchlist payload: url {url!r} must be an http:// or https:// URL")
        claim = payload.get("claim", f"{url} is reachable")
        if not isinstance(claim, str) or not claim.strip():
            raise BadInput("watchlist payload: claim must be a non-empty string")
        checks = payload.get("checks_required", 3)
        if isinstance(checks, bool) or not isinstance(checks, int):
            raise BadInput(f"watchlist payload: checks_required must be an integer, not {checks!r}")
        if not 1 <= checks <= MAX_CHECKS:
            raise BadInput(
                f"watchlist payload: checks_required must be 1-{MAX_CHECKS}, not {checks}"
            )
        delay = _number(payload, "delay_seconds", 5.0)
        fetch_timeout = _number(payload, "timeout_seconds", timeout)
        if fetch_timeout <= 0:
            raise BadInput("watchlist payload: timeout_seconds must be greater than 0")
        return cls(url, claim, checks, delay, fetch_timeout)

    def to_data(self) -> dict[str, Any]:
        """The config as snapshot data (JSON types only)."""
        return asdict(self)
