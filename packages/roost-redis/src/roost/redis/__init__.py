"""Roost's Redis backend: ``RedisSwarm`` runs the step cycle on Redis.

Applications reach it as a :class:`roost.runtime.backends.WorkBackend` through the
``roost_register_backends`` hook (:mod:`roost.redis.plugin`, entry point ``redis``), as
:class:`RedisBackend`.
"""

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
