"""Roost's Redis runtime: ``RedisSwarm`` runs the step cycle on Redis."""

from roost.redis.faults import describe as describe_redis_error
from roost.redis.keys import Keys
from roost.redis.supervise import WorkerStuck
from roost.redis.swarm import EmbeddedServerFailed, RedisSwarm

__all__ = ["EmbeddedServerFailed", "Keys", "RedisSwarm", "WorkerStuck", "describe_redis_error"]
