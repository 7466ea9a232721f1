"""Roost's Redis backend: ``RedisSwarm`` runs the step cycle on Redis.

Applications reach it as a :class:`roost.runtime.backends.WorkBackend` through the
``roost_register_backends`` hook (:mod:`roost.redis.plugin`, entry point ``redis``), as
:class:`RedisBackend`.

The names below are imported on first use (module ``__getattr__``): importing a submodule
(``roost.redis.server``, ``roost.redis.keys``) does not load the whole backend.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.redis.faults import describe as describe_redis_error
    from roost.redis.keys import Keys
    from roost.redis.plugin import RedisBackend
    from roost.redis.supervise import WorkerStuck
    from roost.redis.swarm import EmbeddedServerFailed, RedisSwarm

__all__ = [
    "EmbeddedServerFailed",
    "Keys",
    "RedisBackend",
    "RedisSwarm",
    "WorkerStuck",
    "describe_redis_error",
]

_SOURCE_OF: dict[str, tuple[str, str]] = {
    "EmbeddedServerFailed": ("roost.redis.swarm", "EmbeddedServerFailed"),
    "Keys": ("roost.redis.keys", "Keys"),
    "RedisBackend": ("roost.redis.plugin", "RedisBackend"),
    "RedisSwarm": ("roost.redis.swarm", "RedisSwarm"),
    "WorkerStuck": ("roost.redis.supervise", "WorkerStuck"),
    "describe_redis_error": ("roost.redis.faults", "describe"),
}
"""Each name of :data:`__all__` -> the module that defines it, and its name there."""


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use, and keep the name here."""
    source = _SOURCE_OF.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(source[0]), source[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The names defined here and the ones :func:`__getattr__` imports."""
    return sorted({*globals(), *__all__})
