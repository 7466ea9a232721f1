"""Roost's Redis runtime: ``RedisSwarm`` runs the step cycle on Redis + SAQ."""

from roost.redis.keys import Keys
from roost.redis.swarm import EmbeddedServerFailed, RedisSwarm

__all__ = ["EmbeddedServerFailed", "Keys", "RedisSwarm"]
