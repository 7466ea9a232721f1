"""One check: a single HTTP GET, recorded as an observation whatever happens."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["observe"]

USER_AGENT = "roost-watchlist/0.1"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def observe(url: str, *, timeout_seconds: float, check: int, worker: str) -> dict[str, Any]:
    """Fetch ``url`` once (no retries, redirects followed) and describe the outcome.

    A failed fetch (refused connection, timeout, TLS error, a status of 400 or more) is an
    observation with ``ok`` false and an ``error`` string; it never raises.

    Args:
        url: what to fetch.
        timeout_seconds: seconds for connecting, and for each read and write.
        check: the 1-based number of this check.
        worker: the id of the worker making it (recorded for inspection).

    Returns:
        ``{"check", "ok", "status", "url", "time", "elapsed_ms", "worker"}``, plus
        ``"error"`` when ``ok`` is false. ``time`` is UTC ISO 8601 with milliseconds.
    """
    started_at = _now_iso()
    start = time.perf_counter()
    status: int | None = None
    error: str | None = None
    transport = httpx.AsyncHTTPTransport(retries=0)
    try:
        async with httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            response = await client.get(url)
            status = response.status_code
            if status >= 400:
                error = f"HTTP {status} {response.reason_phrase}".strip()
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    elapsed_ms = round((time.perf_counter() - start) * 1000, 1)
    observation: dict[str, Any] = {
        "check": check,
        "ok": error is None,
        "status": status,
        "url": url,
        "time": started_at,
        "elapsed_ms": elapsed_ms,
        "worker": worker,
    }
    if error is not None:
        observation["error"] = error[:500]
    return observation
