"""Roost's Redis backend: ``RedisSwarm`` runs the step cycle on Redis.

Applications reach it as a :class:`roost.runtime.backends.WorkBackend` through the
``roost_register_backends`` hook (:mod:`roost.redis.plugin`, entry point ``redis``), as
:class:`RedisBackend`.

The names below are imported on first use (module ``__getattr__``): importing a submodule
(``roost.redis.server``, ``roost.redis.keys``) does not load the whole backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.runtime.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EmbeddedServerFailed": "roost.redis.swarm",
        "Keys": "roost.redis.keys",
        "RedisBackend": "roost.redis.plugin",
        "RedisSwarm": "roost.redis.swarm",
        "WorkerStuck": "roost.redis.supervise",
        "describe_redis_error": "roost.redis.faults:describe",
    },
)
