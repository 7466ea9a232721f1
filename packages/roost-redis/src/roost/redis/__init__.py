"""Roost's Redis runtime: ``RedisSwarm`` runs the step cycle on Redis + SAQ."""

from roost.redis.keys import Keys
from roost.redis.swarm import RedisSwarm

__all__ = ["Keys", "RedisSwarm"]
