"""Settings for tests: a fresh namespace on a test's own server, a short lease, fast retries."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from roost.runtime import RoostSettings


def fast_settings(redis_url: str, home: Path, **overrides: Any) -> RoostSettings:
    """Settings on ``redis_url`` in a new namespace, with ``home`` as ``ROOST_HOME``.

    A 3 s lease, 50-200 ms retry backoff and a 2 s grace period keep tests of failures and
    recovery short; ``overrides`` win over them.
    """
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "home": home,
        "namespace": f"t{uuid.uuid4().hex[:8]}",
        "lease_ttl": 3.0,
        "retry_delay": 0.05,
        "retry_max_delay": 0.2,
        "grace_period": 2.0,
    }
    return RoostSettings.from_env({}, **{**values, **overrides})
